//! Parity of the IF_EVAL judgement with the subnet's own libraries: every sample of
//! tests/fixtures/ifeval/samples.jsonl is judged here and by reference.py (NLTK's untrained
//! Punkt tokenizer and difflib, from the project virtualenv), and the two must agree on every
//! rule count, sentence count, duplicate flag and the final score.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use reprobox_eval::ifeval::{self, IfEvalError, punkt};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/ifeval");

fn python() -> PathBuf {
    let py = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&py)
        .args(["-c", "import nltk"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import nltk (hint: run `REPROBOX_SETUP_SKIP_BUILD=1 scripts/setup`)",
        py.display()
    );
    py
}

fn reference(samples: &Path) -> Value {
    let mut child = Command::new(python())
        .arg(Path::new(FIXTURES).join("reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(samples).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_sample_is_judged_as_the_subnet_judges_it() {
    let path = Path::new(FIXTURES).join("samples.jsonl");
    let samples = ifeval::read_samples(&path).unwrap();
    let ours = ifeval::score(&samples);
    let theirs = reference(&path);
    let their_samples = theirs["samples"].as_array().unwrap();
    assert_eq!(their_samples.len(), samples.len());
    assert!(samples.len() >= 15, "the fixture covers every rule");

    let mut mismatches = Vec::new();
    for ((sample, mine), theirs) in samples.iter().zip(&ours.samples).zip(their_samples) {
        assert_eq!(theirs["id"], sample.id.as_str());
        let sentences: Vec<usize> = sample
            .responses
            .iter()
            .map(|r| punkt::count_sentences(r))
            .collect();
        let their_sentences: Vec<usize> =
            serde_json::from_value(theirs["sentences"].clone()).unwrap();
        if sentences != their_sentences {
            mismatches.push(format!(
                "{}: sentences {sentences:?}, NLTK {their_sentences:?}",
                sample.id
            ));
        }
        let their_correct: [usize; 2] = serde_json::from_value(theirs["correct"].clone()).unwrap();
        if mine.correct != their_correct {
            mismatches.push(format!(
                "{}: rules met {:?}, reference {their_correct:?}",
                sample.id, mine.correct
            ));
        }
        if Value::Bool(mine.duplicate) != theirs["duplicate"] {
            mismatches.push(format!("{}: duplicate {}", sample.id, mine.duplicate));
        }
        let ratio = ifeval::difflib::ratio(&sample.responses[0], &sample.responses[1], |c| {
            c == ' ' || c == '\t'
        });
        let their_ratio = theirs["ratio"].as_f64().unwrap();
        if (ratio - their_ratio).abs() > 1e-12 {
            mismatches.push(format!(
                "{}: difflib ratio {ratio}, Python {their_ratio}",
                sample.id
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        ours.duplicates as u64,
        theirs["duplicates"].as_u64().unwrap()
    );
    assert!((ours.score - theirs["score"].as_f64().unwrap()).abs() < 1e-12);
    // The fixture is built so that the score is informative, not the duplicate penalty.
    assert!(!ours.duplicate_penalty && ours.score > 0.0 && ours.score < 1.0);
}

#[test]
fn a_bad_line_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"rules\": [{\"rule\": \"no_commas\"}], \"responses\": [\"x\", \"y\"]}\n\n\
         {\"id\": \"b\", \"rules\": [{\"rule\": \"shout\"}], \"responses\": [\"x\", \"y\"]}\n",
    )
    .unwrap();
    let err = ifeval::read_samples(&path).unwrap_err();
    assert!(
        matches!(err, IfEvalError::BadLine { line: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("s.jsonl:3"), "{err}");
    assert!(err.to_string().contains("shout"), "{err}");

    std::fs::write(
        &path,
        "{\"id\": \"a\", \"rules\": [], \"responses\": [\"x\", \"y\"]}\n",
    )
    .unwrap();
    let err = ifeval::read_samples(&path).unwrap_err();
    assert!(
        matches!(err, IfEvalError::NoRules { line: 1, .. }),
        "{err:?}"
    );
}
