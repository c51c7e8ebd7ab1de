//! Issue 17, item 1: no input file hangs a verb, eats the machine's memory or is read when it is
//! not a regular file. Each verb that reads a user-supplied file is run through the binary with
//! that file replaced by a FIFO, a symlink to `/dev/zero`, a directory, a symlink loop and a
//! (sparse) file past its format's cap. Each run must end with a clear error: the documented exit
//! code and a message naming the path and what it is.
//!
//! Every run is held by a watchdog: a child still running after [`WATCHDOG`] is killed and fails
//! the test (a FIFO that blocks shows up as that, never as a hung test run), and its address
//! space is capped at [`MEMORY_CAP`] so that reading `/dev/zero` fails the run instead of the
//! machine. None of this needs Docker or a GPU.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/fs.rs"]
mod fs_support;
use fs_support::copy_dir;

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");
const COMPLIANT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/submissions/compliant"
);
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// A run still going after this is killed and fails the test.
const WATCHDOG: Duration = Duration::from_secs(10);
/// The address-space limit of each run: far above what a refused input costs, far below what
/// reading `/dev/zero` would take.
const MEMORY_CAP: u64 = 4 << 30;

/// What a file is replaced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hostile {
    Fifo,
    DevZero,
    Directory,
    SymlinkLoop,
    /// A sparse regular file one byte past this cap.
    PastCap(u64),
}

impl Hostile {
    /// The five replacements, `cap` being the format's cap.
    fn all(cap: u64) -> [Hostile; 5] {
        [
            Hostile::Fifo,
            Hostile::DevZero,
            Hostile::Directory,
            Hostile::SymlinkLoop,
            Hostile::PastCap(cap),
        ]
    }

    /// What the error must say about the file.
    fn said(self) -> &'static str {
        match self {
            Hostile::Fifo => "is a FIFO (named pipe), not a regular file",
            Hostile::DevZero => "is a character device, not a regular file",
            Hostile::Directory => "is a directory, not a regular file",
            Hostile::SymlinkLoop => "is a symlink loop (ELOOP",
            Hostile::PastCap(_) => "is larger than",
        }
    }

    /// Replaces whatever is at `path`.
    fn plant(self, path: &Path) {
        if let Ok(m) = path.symlink_metadata() {
            if m.is_dir() {
                fs::remove_dir_all(path).unwrap();
            } else {
                fs::remove_file(path).unwrap();
            }
        }
        match self {
            Hostile::Fifo => {
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
            }
            Hostile::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
            Hostile::Directory => fs::create_dir(path).unwrap(),
            Hostile::SymlinkLoop => {
                let other = path.with_extension("loop");
                let _ = fs::remove_file(&other);
                std::os::unix::fs::symlink(&other, path).unwrap();
                std::os::unix::fs::symlink(path, &other).unwrap();
            }
            Hostile::PastCap(cap) => fs::File::create(path).unwrap().set_len(cap + 1).unwrap(),
        }
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` under the watchdog and the memory cap.
fn bounded(mut cmd: Command) -> Out {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("REPROBOX_INPUTS")
        .env_remove("REPROBOX_POLICIES");
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY_CAP,
                rlim_max: MEMORY_CAP,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(WATCHDOG) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: plain kill(2) of the child we spawned; it has not been reaped (the waiting
            // thread has not returned), so the pid is still ours.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{cmd:?} still ran after {WATCHDOG:?}: killed");
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{cmd:?} panicked: {stderr}");
    Out {
        code: out.status.code().unwrap_or_else(|| {
            panic!(
                "{cmd:?} was killed by a signal ({:?}): {stderr}",
                out.status
            )
        }),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

fn reprobox(args: &[&std::ffi::OsStr]) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    bounded(cmd)
}

/// Asserts that `out` exited `code` and that `text` names `path` and says what it is.
fn assert_refused(out: &Out, code: i32, text: &str, path: &Path, h: Hostile, what: &str) {
    assert_eq!(
        out.code, code,
        "{what} as {h:?}: exit {} (want {code})\nstdout: {}\nstderr: {}",
        out.code, out.stdout, out.stderr
    );
    assert!(
        text.contains(&path.display().to_string()),
        "{what} as {h:?}: the path is not named: {text}"
    );
    assert!(
        text.contains(h.said()),
        "{what} as {h:?}: expected `{}` in: {text}",
        h.said()
    );
}

fn submission(t: &Path) -> PathBuf {
    let sub = t.join("sub");
    copy_dir(Path::new(COMPLIANT), &sub);
    sub
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn check_refuses_a_manifest_that_is_not_a_regular_file() {
    for h in Hostile::all(reprobox::manifest::MAX_MANIFEST_BYTES) {
        let t = tempfile::tempdir().unwrap();
        let sub = submission(t.path());
        let manifest = sub.join("reprobox.toml");
        h.plant(&manifest);
        let out = reprobox(&[os("check"), sub.as_os_str()]);
        let said = match h {
            // The manifest reader's own words for a file past its cap.
            Hostile::PastCap(_) => Hostile::PastCap(0),
            h => h,
        };
        assert_refused(&out, 2, &out.stderr, &manifest, said, "reprobox.toml");
    }
}

#[test]
fn check_reports_a_dockerfile_that_is_not_a_regular_text_file_as_a_finding() {
    let mut cases: Vec<Option<Hostile>> =
        Hostile::all(reprobox::dockerfile::DOCKERFILE_CAP.max_bytes)
            .map(Some)
            .to_vec();
    cases.push(None); // a binary file
    for h in cases {
        let t = tempfile::tempdir().unwrap();
        let sub = submission(t.path());
        let dockerfile = sub.join("Dockerfile");
        match h {
            Some(h) => h.plant(&dockerfile),
            None => fs::write(&dockerfile, b"FROM scratch\n\0\x01\x02ELF").unwrap(),
        }
        let out = reprobox(&[os("check"), sub.as_os_str(), os("--format"), os("json")]);
        assert_eq!(out.code, 3, "{h:?}: {}{}", out.stdout, out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        // A symlink to /dev/zero leaves the submission: refused as an escape, never opened.
        let (kind, path, said) = match h {
            Some(Hostile::DevZero) => (
                "path_escape",
                "reprobox.toml",
                "resolves outside the submission directory",
            ),
            Some(h) => ("dockerfile_syntax", "Dockerfile", h.said()),
            None => ("dockerfile_syntax", "Dockerfile", "is binary"),
        };
        let finding = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("{h:?}: no {kind} finding: {v}"));
        assert_eq!(finding["severity"], "error");
        assert_eq!(finding["path"], path);
        let message = finding["message"].as_str().unwrap();
        assert!(message.contains(said), "{h:?}: {message}");
    }
}

#[test]
fn verify_refuses_a_manifest_or_a_signing_key_that_is_not_a_regular_file() {
    for h in Hostile::all(reprobox::manifest::MAX_MANIFEST_BYTES) {
        let t = tempfile::tempdir().unwrap();
        let sub = submission(t.path());
        let manifest = sub.join("reprobox.toml");
        h.plant(&manifest);
        let out = reprobox(&[
            os("verify"),
            sub.as_os_str(),
            os("--dry-run"),
            os("--gpu"),
            os("none"),
            os("--out"),
            t.path().join("audits").as_os_str(),
        ]);
        let said = match h {
            Hostile::PastCap(_) => Hostile::PastCap(0),
            h => h,
        };
        assert_refused(&out, 2, &out.stderr, &manifest, said, "reprobox.toml");
        assert!(
            !t.path().join("audits").exists(),
            "{h:?}: nothing is written"
        );
    }
    for h in Hostile::all(reprobox::provenance::KEY_CAP.max_bytes) {
        let t = tempfile::tempdir().unwrap();
        let sub = submission(t.path());
        let key = t.path().join("signing.key");
        h.plant(&key);
        let out = reprobox(&[
            os("verify"),
            sub.as_os_str(),
            os("--dry-run"),
            os("--gpu"),
            os("none"),
            os("--sign-key"),
            key.as_os_str(),
            os("--out"),
            t.path().join("audits").as_os_str(),
        ]);
        assert_refused(&out, 2, &out.stderr, &key, h, "--sign-key");
    }
}

#[test]
fn resume_refuses_a_journal_that_is_not_a_regular_file() {
    for h in Hostile::all(reprobox::journal::MAX_JOURNAL_BYTES) {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        fs::create_dir(&run).unwrap();
        let journal = run.join("journal.jsonl");
        h.plant(&journal);
        let out = reprobox(&[os("resume"), run.as_os_str()]);
        assert_refused(&out, 2, &out.stderr, &journal, h, "journal.jsonl");
    }
}

#[test]
fn audit_verify_names_a_journal_or_report_that_is_not_a_regular_file() {
    for (name, cap) in [
        ("journal.jsonl", reprobox::journal::MAX_JOURNAL_BYTES),
        ("report.json", reprobox::rundir::MAX_REPORT_BYTES),
    ] {
        for h in Hostile::all(cap) {
            let t = tempfile::tempdir().unwrap();
            let run = t.path().join("run");
            fs::create_dir(&run).unwrap();
            let target = run.join(name);
            h.plant(&target);
            let out = reprobox(&[
                os("audit"),
                os("--format"),
                os("json"),
                os("verify"),
                run.as_os_str(),
            ]);
            let v: serde_json::Value = serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("{name} as {h:?}: {e}: {}{}", out.stdout, out.stderr));
            let problem = v["problems"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["file"] == name)
                .unwrap_or_else(|| panic!("{name} as {h:?}: no problem names it: {v}"));
            assert_eq!(problem["kind"], "unreadable", "{name} as {h:?}: {problem}");
            let message = problem["message"].as_str().unwrap();
            assert_refused(&out, 4, message, &target, h, name);
        }
    }
}

#[test]
fn finalists_refuses_a_leaderboard_that_is_not_a_regular_file() {
    for h in Hostile::all(reprobox::campaign::leaderboard::MAX_LEADERBOARD_BYTES) {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("a")).unwrap();
        let lb = t.path().join("lb.csv");
        h.plant(&lb);
        let out = reprobox(&[
            os("finalists"),
            lb.as_os_str(),
            os("--policy"),
            os("neurips-2023-llm-efficiency"),
            os("--track"),
            os("a100-40gb"),
            os("--dry-run"),
            os("--submissions"),
            t.path().as_os_str(),
            os("--out"),
            t.path().join("out").as_os_str(),
        ]);
        assert_refused(&out, 2, &out.stderr, &lb, h, "the leaderboard");
        assert!(!t.path().join("out").exists(), "{h:?}: nothing is written");
    }
}

#[test]
fn policy_show_refuses_a_policy_file_that_is_not_a_regular_file() {
    for (name, cap) in [
        ("extra.toml", reprobox::policy::MAX_POLICY_BYTES),
        ("open-data.toml", reprobox::policy::MAX_OPEN_DATA_BYTES),
    ] {
        for h in Hostile::all(cap) {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path().join("policies");
            copy_dir(Path::new(POLICIES), &dir);
            let target = dir.join(name);
            h.plant(&target);
            let out = reprobox(&[
                os("policy"),
                os("--policies"),
                dir.as_os_str(),
                os("show"),
                os("neurips-2023-llm-efficiency"),
            ]);
            if h == Hostile::DevZero {
                // A link out of the policy directory is refused as such, before it is opened.
                assert_eq!(out.code, 2, "{name} as {h:?}: {}", out.stderr);
                assert!(
                    out.stderr.contains("outside the policy directory")
                        && out.stderr.contains(&target.display().to_string()),
                    "{name} as {h:?}: {}",
                    out.stderr
                );
                continue;
            }
            assert_refused(&out, 2, &out.stderr, &target, h, name);
        }
    }
}

#[test]
fn hash_refuses_a_path_or_a_tree_entry_that_is_not_a_regular_file_or_directory() {
    // `hash` has no size cap (models are large, and it streams); the four other kinds are refused,
    // given as PATH (following symlinks) and inside a tree.
    for h in [Hostile::Fifo, Hostile::DevZero, Hostile::SymlinkLoop] {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("weights.bin");
        h.plant(&path);
        let out = reprobox(&[os("hash"), path.as_os_str(), os("--allow-symlinks")]);
        assert_eq!(out.code, 2, "{h:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(&path.display().to_string()),
            "{h:?}: {}",
            out.stderr
        );
        let said = match h {
            Hostile::Fifo => "is a fifo",
            Hostile::DevZero => "is a character device",
            _ => "symbolic link whose target cannot be reached",
        };
        assert!(out.stderr.contains(said), "{h:?}: {}", out.stderr);

        let tree = t.path().join("model");
        fs::create_dir(&tree).unwrap();
        fs::write(tree.join("config.json"), "{}").unwrap();
        let entry = tree.join("weights.bin");
        h.plant(&entry);
        for extra in [None, Some("--allow-symlinks")] {
            let mut args = vec![os("hash"), tree.as_os_str()];
            args.extend(extra.map(os));
            let out = reprobox(&args);
            assert_eq!(out.code, 2, "{h:?} {extra:?}: {}{}", out.stdout, out.stderr);
            // The walk is sorted, so a loop is named by whichever of its two links comes first.
            assert!(
                out.stderr.contains(&tree.display().to_string()),
                "{h:?}: {}",
                out.stderr
            );
            assert!(out.stderr.contains("weights."), "{h:?}: {}", out.stderr);
        }
    }
}

/// The native evaluator built beside `reprobox` by a workspace build (scripts/test builds it).
fn evaluator() -> PathBuf {
    let p = Path::new(BIN).with_file_name("reprobox-eval");
    assert!(
        p.is_file(),
        "{} is missing (hint: `cargo build --workspace`; scripts/test builds it)",
        p.display()
    );
    p
}

fn eval(model: &Path, data: &Path) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.arg("eval")
        .arg(model)
        .args(["--method", "text_loss", "--data"])
        .arg(data)
        .env("REPROBOX_EVAL_BIN", evaluator());
    bounded(cmd)
}

const TEXT_LOSS_DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/eval/text_loss.jsonl"
);

#[test]
fn eval_refuses_a_data_file_or_a_model_file_that_is_not_a_regular_file() {
    // The data file is read before the model: an unreadable input, exit 2.
    for h in Hostile::all(256 << 20) {
        let t = tempfile::tempdir().unwrap();
        let model = t.path().join("model");
        fs::create_dir(&model).unwrap();
        let data = t.path().join("data.jsonl");
        h.plant(&data);
        let out = eval(&model, &data);
        assert_refused(&out, 2, &out.stderr, &data, h, "--data");
    }
    // A model file is the model's failure: EVAL_FAILED, exit 5.
    for h in Hostile::all(16 << 20) {
        let t = tempfile::tempdir().unwrap();
        let model = t.path().join("model");
        fs::create_dir(&model).unwrap();
        let config = model.join("config.json");
        h.plant(&config);
        let out = eval(&model, Path::new(TEXT_LOSS_DATA));
        assert_refused(&out, 5, &out.stderr, &config, h, "config.json");
    }
}
