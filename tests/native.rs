//! `reprobox eval MODEL --policy ID --data-dir DIR`: every task of a subnet-37 policy scored by
//! the real native evaluator (`reprobox-eval`, built beside `reprobox` by a workspace build) on a
//! tiny model that tests/fixtures/eval/make_models.py creates, then normalized and aggregated
//! the policy's way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

fn python() -> PathBuf {
    let p = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python not found at {} (hint: run scripts/setup)",
        p.display()
    );
    p
}

/// The evaluator next to the `reprobox` under test.
fn evaluator() -> PathBuf {
    let p = Path::new(BIN).with_file_name("reprobox-eval");
    assert!(
        p.is_file(),
        "{} is missing (hint: `cargo build --workspace`; scripts/test builds it)",
        p.display()
    );
    p
}

/// The tiny models, generated once and shared with crates/reprobox-eval/tests/eval.rs (same
/// cache key and lock: the workspace's target/tmp).
fn models() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut h = Sha256::new();
        for f in [
            "make_models.py",
            "text_loss.jsonl",
            "reference_loss.jsonl",
            "choice.jsonl",
            "multiple_choice.jsonl",
            "if_eval.jsonl",
            "words.txt",
        ] {
            h.update(std::fs::read(fixtures().join(f)).unwrap());
        }
        let tag = hex::encode(h.finalize());
        let tmpdir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmpdir.join(format!("eval-models-{}", &tag[..16]));
        let lock = std::fs::File::create(tmpdir.join("eval-models.lock")).unwrap();
        lock.lock().unwrap();
        if dir.join("done").is_file() {
            return dir;
        }
        let tmp = tempfile::tempdir_in(tmpdir).unwrap();
        let out = Command::new(python())
            .arg(fixtures().join("make_models.py"))
            .arg(tmp.path())
            .env("OMP_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make_models.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(tmp.path().join("done"), b"").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(tmp.keep(), &dir).unwrap();
        dir
    })
    .clone()
}

/// `<DIR>/<TASK>.jsonl` for the four tasks of sn37-b7-multichoice, from the evaluator fixtures.
fn task_data(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (task, src) in [
        ("SYNTHETIC_MMLU", "multiple_choice.jsonl"),
        ("FINEWEB", "text_loss.jsonl"),
        ("IF_EVAL_V2", "if_eval.jsonl"),
    ] {
        std::fs::copy(fixtures().join(src), dir.join(format!("{task}.jsonl"))).unwrap();
    }
    std::fs::write(
        dir.join("WORD_SORTING.jsonl"),
        concat!(
            r#"{"id": "w0", "challenge": "Sort the following words alphabetically: fox, dog, cat", "reference": "cat dog fox"}"#,
            "\n",
            r#"{"id": "w1", "challenge": "Sort the following words alphabetically: water, apple", "reference": "apple water"}"#,
            "\n"
        ),
    )
    .unwrap();
}

#[test]
fn eval_policy_scores_every_task_natively_and_aggregates_the_policy_s_way() {
    let model = models().join("llama");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    task_data(&data);
    let out = Command::new(BIN)
        .arg("eval")
        .arg(&model)
        .args([
            "--policy",
            "sn37-b7-multichoice",
            "--max-examples",
            "2",
            "--format",
            "json",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .env("REPROBOX_EVAL_BIN", evaluator())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "{v}");
    let policy = reprobox::policy::PolicySet::builtin()
        .unwrap()
        .get("sn37-b7-multichoice")
        .unwrap()
        .clone();
    let mut pairs = Vec::new();
    for t in tasks {
        let name = t["task"].as_str().unwrap();
        let score = t["score"].as_f64().unwrap();
        assert!(score.is_finite() && score >= 0.0, "{t}");
        assert_eq!(t["examples"], 2, "{t}");
        assert!(t["data_sha256"].as_str().unwrap().starts_with("sha256:"));
        let pt = policy.evaluation.task(name).unwrap();
        assert_eq!(
            t["normalized"].as_f64().unwrap(),
            pt.normalization.apply(score)
        );
        pairs.push((name.to_owned(), pt.normalization.apply(score)));
    }
    let agg = policy
        .evaluation
        .combine(pairs.iter().map(|(n, s)| (n.as_str(), *s)))
        .unwrap();
    assert!(
        (v["aggregate"].as_f64().unwrap() - agg).abs() < 1e-12,
        "{v}"
    );

    // The MULTIPLE_CHOICE score is the fraction incorrect of what the evaluator itself reports.
    let direct = Command::new(evaluator())
        .arg(&model)
        .args([
            "--method",
            "multiple_choice",
            "--dtype",
            "bf16",
            "--format",
            "json",
            "--data",
        ])
        .arg(tmp.path().join("out/SYNTHETIC_MMLU.data.jsonl"))
        .output()
        .unwrap();
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&direct.stdout).unwrap();
    let mc = tasks
        .iter()
        .find(|t| t["task"] == "SYNTHETIC_MMLU")
        .unwrap();
    assert!(
        (mc["score"].as_f64().unwrap() - (1.0 - d["mean"].as_f64().unwrap())).abs() < 1e-12,
        "{mc} vs {d}"
    );
}

#[test]
fn eval_policy_names_a_missing_task_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("eval")
        .arg(tmp.path())
        .args(["--policy", "sn37-b7-multichoice", "--data-dir"])
        .arg(tmp.path().join("nothing"))
        .env("REPROBOX_EVAL_BIN", evaluator())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(reprobox::exit_codes::EVAL_FAILED));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SYNTHETIC_MMLU.jsonl") && err.contains("hint:"),
        "{err}"
    );
}
