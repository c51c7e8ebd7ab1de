//! Measures how the parsers of untrusted input scale (scripts/bench-parse drives it): for each
//! parser and each size N (lines), it writes an input of N lines of the shape that once made a
//! parser quadratic, parses it through the public API, checks the result, and prints one
//! `parser=… lines=N seconds=S` line. Linear parsers show seconds growing 10x per row.
//!
//! `parse_bench [N ...]` (default 10000 100000 1000000).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use reprobox::audit::{AuditOptions, verify_run};
use reprobox::campaign::leaderboard;
use reprobox::check::dockerfile;
use sha2::{Digest, Sha256};

fn journal(n: u64) -> String {
    let mut out = String::with_capacity(n as usize * 200);
    let mut prev = format!("sha256:{}", hex::encode(Sha256::digest(b"")));
    for seq in 1..=n {
        let line = format!(
            r#"{{"seq":{seq},"ts":"2026-11-22T23:41:41.123456789Z","prev":"{prev}","event":"train_progress","stage":"train","data":{{"log":"step {seq} \\\\\n"}}}}"#
        );
        prev = format!("sha256:{}", hex::encode(Sha256::digest(line.as_bytes())));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn csv_board(n: usize) -> String {
    let mut text = String::from("rank,team,submission,score\n");
    for i in 1..=n {
        writeln!(text, "{i},\"team {i}, \"\"q\"\"\",a,0.5").unwrap();
    }
    text
}

fn json_board(n: usize) -> String {
    let mut text = String::from("[\n");
    for i in 1..=n {
        let sep = if i == n { "" } else { "," };
        writeln!(
            text,
            r#"{{"rank": {i}, "team": "t{i}", "submission": "a"}}{sep}"#
        )
        .unwrap();
    }
    text.push(']');
    text
}

fn continued_dockerfile(n: usize) -> String {
    let mut text = format!("FROM sha256:{}\nRUN echo \\\n", "0".repeat(64));
    for i in 0..n {
        writeln!(text, "  w{i} \\").unwrap();
    }
    text.push_str("  && pip install torch\n");
    text
}

fn time<T>(parser: &str, lines: usize, f: impl FnOnce() -> T, check: impl FnOnce(&T) -> bool) {
    let start = Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    assert!(check(&out), "{parser} at {lines} lines: wrong result");
    println!("parser={parser} lines={lines} seconds={secs:.3}");
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are line counts"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let t = tempfile::tempdir().expect("a scratch directory");
    let dir = t.path();
    std::fs::create_dir(dir.join("a")).expect("a submission directory");
    for &n in &sizes {
        std::fs::write(dir.join("journal.jsonl"), journal(n as u64)).unwrap();
        time(
            "journal (audit verify)",
            n,
            || verify_run(dir, &AuditOptions::default()).unwrap(),
            |r| r.journal.as_ref().is_some_and(|j| j.lines == n as u64),
        );
        std::fs::remove_file(dir.join("journal.jsonl")).unwrap();

        for (parser, name, text) in [
            ("leaderboard csv", "lb.csv", csv_board(n)),
            ("leaderboard json", "lb.json", json_board(n)),
        ] {
            let lb = dir.join(name);
            std::fs::write(&lb, &text).unwrap();
            if text.len() as u64 > leaderboard::MAX_LEADERBOARD_BYTES {
                // Past the 16 MiB cap: refused by its size before a byte is read.
                let label = format!("{parser} (past cap)");
                time(&label, n, || leaderboard::load(&lb, dir), |r| r.is_err());
                continue;
            }
            time(
                parser,
                n,
                || leaderboard::load(&lb, dir),
                |r| r.as_ref().is_ok_and(|b| b.entries.len() == n),
            );
        }

        let text = continued_dockerfile(n);
        time(
            "dockerfile lint (check)",
            n,
            || dockerfile::lint_dockerfile(&text, "Dockerfile"),
            |f| f.iter().any(|f| f.line == Some(n as u32 + 3)),
        );
        // The sandbox's FROM reader reads the same text from a file; past the 4 MiB Dockerfile
        // cap it is refused by its size before a byte is read.
        let path = dir.join("Dockerfile");
        std::fs::write(&path, &text).unwrap();
        let read = || reprobox::sandbox::context::base_images(Path::new(&path));
        if (text.len() as u64) <= reprobox::dockerfile::DOCKERFILE_CAP.max_bytes {
            time("dockerfile FROM (verify)", n, read, |r| {
                r.as_ref().is_ok_and(|i| i.len() == 1)
            });
        } else {
            time("dockerfile FROM (verify) (past cap)", n, read, |r| {
                r.is_err()
            });
        }
    }
}
