//! `reprobox finalists` argument checks that need no Docker: bad `--gpus` lists are refused
//! before anything is written. (Campaigns against the real engine are in tests/verify.rs and
//! tests/examples.rs.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");

fn finalists(gpus: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("a")).unwrap();
    std::fs::write(d.path().join("lb.csv"), "team,submission\nalpha,a\n").unwrap();
    let out = Command::new(BIN)
        .arg("finalists")
        .arg(d.path().join("lb.csv"))
        .args([
            "--policy",
            "neurips-2023-llm-efficiency",
            "--track",
            "a100-40gb",
            "--gpus",
            gpus,
        ])
        .arg("--submissions")
        .arg(d.path())
        .arg("--out")
        .arg(d.path().join("out"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        d,
    )
}

#[test]
fn a_gpu_listed_twice_or_none_is_refused_without_side_effects() {
    for (gpus, needle) in [
        ("0,0", "names `0` twice"),
        ("GPU-1,none", "`none` is not one"),
        ("0,x", "x"),
    ] {
        let (code, err, d) = finalists(gpus);
        assert_eq!(code, Some(2), "{gpus}: {err}");
        assert!(err.contains(needle), "{gpus}: {err}");
        assert!(!d.path().join("out").exists(), "{gpus}: nothing written");
    }
}

#[test]
fn gpu_and_gpus_conflict() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["finalists", "lb.csv", "--gpu", "0", "--gpus", "1,2"])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
