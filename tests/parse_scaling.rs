//! Issue 17, item 2: every parser of untrusted input runs in linear time. Each test feeds one
//! parser an input of 10^5 to 10^6 lines, of the shape that made it slow (a journal of 200,000
//! lines, a leaderboard of 10^5 rows, one Dockerfile instruction continued over 10^5 lines), and
//! checks that it finishes with the right result. The scaling itself (lines against seconds) is
//! what `scripts/bench-parse` prints; a quadratic parser takes minutes here, not seconds, so the
//! watchdog below fails it instead of hanging the test run.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use reprobox::audit::{AuditOptions, verify_run};
use reprobox::campaign::leaderboard;
use reprobox::check::dockerfile;
use sha2::{Digest, Sha256};

/// A parser still running after this fails the test (a linear one needs well under a second per
/// 10^5 lines in a debug build).
const WATCHDOG: Duration = Duration::from_secs(120);

/// Runs `f` on a thread and fails the test if it has not finished within [`WATCHDOG`].
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("{what} did not finish within {WATCHDOG:?}"))
}

/// A valid journal of `n` lines in the format journal.rs documents: each `prev` the SHA-256 of
/// the previous line.
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

#[test]
fn audit_verify_of_a_journal_of_200_000_lines_finishes() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("journal.jsonl"), journal(200_000)).unwrap();
    let dir = t.path().to_owned();
    let report = finishes("audit verify", move || {
        verify_run(&dir, &AuditOptions::default()).unwrap()
    });
    assert_eq!(report.journal.unwrap().lines, 200_000);
}

fn board_dir() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("a")).unwrap();
    t
}

#[test]
fn a_csv_leaderboard_of_100_000_rows_loads() {
    let t = board_dir();
    let mut text = String::from("rank,team,submission,score\n");
    for i in 1..=100_000 {
        writeln!(text, "{i},\"team {i}, \"\"quoted\"\"\",a,0.{i}").unwrap();
    }
    let path = t.path().join("lb.csv");
    std::fs::write(&path, text).unwrap();
    let dir = t.path().to_owned();
    let board = finishes("the CSV leaderboard", move || {
        leaderboard::load(&path, &dir).unwrap()
    });
    assert_eq!(board.entries.len(), 100_000);
    assert_eq!(board.entries[99_999].team, "team 100000, \"quoted\"");
    assert_eq!(board.entries[0].rank, 1);
}

#[test]
fn a_json_leaderboard_of_100_000_entries_one_per_line_loads() {
    let t = board_dir();
    let mut text = String::from("[\n");
    for i in 1..=100_000 {
        let sep = if i == 100_000 { "" } else { "," };
        writeln!(
            text,
            r#"  {{"rank": {i}, "team": "t{i}", "submission": "a", "score": 0.5}}{sep}"#
        )
        .unwrap();
    }
    text.push(']');
    let path = t.path().join("lb.json");
    std::fs::write(&path, text).unwrap();
    let dir = t.path().to_owned();
    let board = finishes("the JSON leaderboard", move || {
        leaderboard::load(&path, &dir).unwrap()
    });
    assert_eq!(board.entries.len(), 100_000);
    assert_eq!(board.entries[41].team, "t42");
}

/// One `RUN` continued over `n` lines, each line a word, with an unpinned `pip install` at the
/// end so the lint has something to find (and to place at its physical line).
fn continued_dockerfile(n: usize) -> String {
    let mut text = String::from("FROM sha256:");
    text.push_str(&"0".repeat(64));
    text.push_str("\nRUN echo \\\n");
    for i in 0..n {
        writeln!(text, "  word{i} \\").unwrap();
    }
    text.push_str("  && pip install torch\n");
    text
}

#[test]
fn a_dockerfile_instruction_continued_over_100_000_lines_is_linted() {
    let n = 100_000;
    let text = continued_dockerfile(n);
    let findings = finishes("the Dockerfile lint", move || {
        dockerfile::lint_dockerfile(&text, "Dockerfile")
    });
    let unpinned: Vec<_> = findings
        .iter()
        .filter(|f| f.kind == reprobox::check::FindingKind::UnpinnedDependency)
        .collect();
    assert_eq!(unpinned.len(), 1, "{findings:?}");
    // The `pip install` is on the last physical line: 1 FROM + 1 RUN + n words + 1.
    assert_eq!(unpinned[0].line, Some(n as u32 + 3), "{:?}", unpinned[0]);
}

#[test]
fn a_dockerfile_of_50_000_runs_each_checking_out_and_fetching_is_linted() {
    let n = 50_000;
    let mut text = format!("FROM sha256:{}\n", "0".repeat(64));
    for i in 0..n {
        writeln!(
            text,
            "RUN git clone file:///srv/r{i} && git checkout {} && gdown {i}",
            "a".repeat(40)
        )
        .unwrap();
    }
    let findings = finishes("the Dockerfile lint", move || {
        dockerfile::lint_dockerfile(&text, "Dockerfile")
    });
    // Every RUN fetches with gdown: one Google Drive finding on each of its lines; every clone
    // is pinned by its checkout.
    let drive: std::collections::BTreeSet<_> = findings
        .iter()
        .filter(|f| f.message.contains("Google Drive"))
        .map(|f| f.line)
        .collect();
    assert_eq!(drive.len(), n);
    // (Each clone still needs the network: that is a build_network finding, not a pin.)
    assert!(
        !findings
            .iter()
            .any(|f| f.kind != reprobox::check::FindingKind::BuildNetwork
                && f.message.contains("git clone")),
        "{:?}",
        findings.iter().find(|f| f.message.contains("git clone"))
    );
}

#[test]
fn the_build_s_base_images_of_a_dockerfile_of_500_000_continuation_lines_are_found() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("Dockerfile");
    // Just under the Dockerfile cap: 500,000 continuation lines.
    let mut text = String::from("FROM sha256:");
    text.push_str(&"0".repeat(64));
    text.push_str("\nRUN echo \\\n");
    text.push_str(&"x \\\n".repeat(500_000));
    text.push_str("done\n");
    assert!((text.len() as u64) < reprobox::dockerfile::DOCKERFILE_CAP.max_bytes);
    std::fs::write(&path, &text).unwrap();
    let images = finishes("base_images", move || {
        reprobox::sandbox::context::base_images(Path::new(&path)).unwrap()
    });
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].line, 1);
}
