//! The accuracy corpus: `reprobox check` on repositories shaped like real NeurIPS 2023 LLM
//! efficiency finalists (tests/fixtures/repos/*: several Dockerfiles, dependency files on and off
//! the build path, Hub ids in code, YAML configs and argparse defaults, W&B, torch.save, …),
//! each with the findings a careful reviewer expects in its `expected.csv` (`kind,path,line`).
//! The test prints precision and recall over the whole corpus and per repository, and fails
//! below 0.95 for either.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;

const REPOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/repos");

#[derive(Deserialize)]
struct ReportView {
    findings: Vec<FindingView>,
}

#[derive(Deserialize)]
struct FindingView {
    kind: String,
    path: Option<String>,
    line: Option<u32>,
}

type Key = (String, String, String);

/// A multiset of (kind, path, line).
fn count(keys: impl IntoIterator<Item = Key>) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn expected(dir: &Path) -> BTreeMap<Key, usize> {
    let text = std::fs::read_to_string(dir.join("expected.csv"))
        .unwrap_or_else(|e| panic!("{}: expected.csv: {e}", dir.display()));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("kind,path,line"), "{}", dir.display());
    count(lines.filter(|l| !l.trim().is_empty()).map(|l| {
        let cols: Vec<&str> = l.split(',').collect();
        assert_eq!(cols.len(), 3, "{}: bad row `{l}`", dir.display());
        (cols[0].to_owned(), cols[1].to_owned(), cols[2].to_owned())
    }))
}

fn found(dir: &Path) -> BTreeMap<Key, usize> {
    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(["check", &dir.display().to_string(), "--format", "json"])
        .env_remove("REPROBOX_INPUTS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}: {stderr}", dir.display());
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}: exit {:?}: {stderr}",
        dir.display(),
        out.status.code()
    );
    let report: ReportView =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    count(report.findings.into_iter().map(|f| {
        (
            f.kind,
            f.path.unwrap_or_default(),
            f.line.map(|l| l.to_string()).unwrap_or_default(),
        )
    }))
}

fn overlap(a: &BTreeMap<Key, usize>, b: &BTreeMap<Key, usize>) -> usize {
    a.iter()
        .map(|(k, n)| (*n).min(b.get(k).copied().unwrap_or(0)))
        .sum()
}

fn minus(a: &BTreeMap<Key, usize>, b: &BTreeMap<Key, usize>) -> Vec<String> {
    a.iter()
        .filter_map(|(k, n)| {
            let extra = n.saturating_sub(b.get(k).copied().unwrap_or(0));
            (extra > 0).then(|| format!("{}x {},{},{}", extra, k.0, k.1, k.2))
        })
        .collect()
}

#[test]
fn check_is_precise_and_complete_on_the_corpus() {
    let mut dirs: Vec<_> = std::fs::read_dir(REPOS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("reprobox.toml").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 8,
        "the corpus has {} repositories, want at least 8",
        dirs.len()
    );
    let (mut tp, mut n_found, mut n_expected) = (0, 0, 0);
    let mut report = Vec::new();
    for dir in &dirs {
        let want = expected(dir);
        let got = found(dir);
        let hit = overlap(&got, &want);
        let g: usize = got.values().sum();
        let w: usize = want.values().sum();
        tp += hit;
        n_found += g;
        n_expected += w;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        report.push(format!(
            "{name:<22} expected {w:>3}  found {g:>3}  correct {hit:>3}"
        ));
        for m in minus(&want, &got) {
            report.push(format!("    missed   {m}"));
        }
        for x in minus(&got, &want) {
            report.push(format!("    spurious {x}"));
        }
    }
    let precision = tp as f64 / n_found.max(1) as f64;
    let recall = tp as f64 / n_expected.max(1) as f64;
    println!("{}", report.join("\n"));
    println!(
        "corpus: {} repositories, {n_expected} expected findings, {n_found} found, {tp} correct: precision {precision:.3}, recall {recall:.3}",
        dirs.len()
    );
    assert!(
        precision >= 0.95 && recall >= 0.95,
        "precision {precision:.3}, recall {recall:.3} (want both >= 0.95)\n{}",
        report.join("\n")
    );
}
