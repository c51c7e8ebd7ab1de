//! `reprobox eval …` hands its arguments to the native evaluator, `reprobox-eval`, a binary of
//! its own (crates/reprobox-eval). These tests use a stand-in evaluator, so they hold on hosts
//! built without libtorch; the evaluator itself is tested in its package.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");

fn stand_in(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("fake-eval");
    std::fs::write(
        &p,
        "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\nexit 7\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn arguments_and_the_exit_code_pass_through_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["eval", "model dir", "--method", "text_loss", "--help", "-x"])
        .env("REPROBOX_EVAL_BIN", stand_in(t.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[model dir]\n[--method]\n[text_loss]\n[--help]\n[-x]\n"
    );
}

#[test]
fn a_missing_evaluator_is_eval_failed_with_the_path() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no-such-eval");
    let out = Command::new(BIN)
        .args(["eval", "m", "--method", "text_loss"])
        .env("REPROBOX_EVAL_BIN", &missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(reprobox::exit_codes::EVAL_FAILED));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
}

/// The point of the separate evaluator: every other verb starts without libtorch.
#[test]
fn reprobox_itself_does_not_link_libtorch() {
    let out = Command::new("ldd").arg(BIN).output().expect("ldd runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(libs.contains("libc.so"), "ldd lists the libraries: {libs}");
    assert!(
        !libs.contains("libtorch"),
        "reprobox links libtorch:\n{libs}"
    );
    assert!(!libs.contains("libc10"), "reprobox links libc10:\n{libs}");
}
