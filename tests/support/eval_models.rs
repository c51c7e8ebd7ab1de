#![allow(dead_code)]
//! Shared by tests that need the native evaluator's tiny models and task data: included with
//! `#[path = "support/eval_models.rs"] mod eval_models;`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

pub fn python() -> PathBuf {
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
pub fn evaluator() -> PathBuf {
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
pub fn models() -> PathBuf {
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
pub fn task_data(dir: &Path) {
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
