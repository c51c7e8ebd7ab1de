//! End-to-end `reprobox verify` / `resume` against the real Docker Engine, with the local
//! `reprobox/shell:1` image that `scripts/setup` builds. Each test makes a compliant submission
//! (the check fixture, with a training script of its own) and an inputs mirror in a temp dir,
//! runs the CLI, and checks the verdict, the report, the journal and `audit verify`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reprobox::digest::{DigestOptions, digest_tree};

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");
const BASE_REV: &str = "bce5d60d3b0c68318862270ec4e794d83308d80a";
const DATA_REV: &str = "bdd27f4d94b9c1f951818a7da7fd7aeeb1ce0b63";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/submissions/compliant")
}

/// The local shell image's id: `FROM sha256:<id>` pins it by content without a registry.
fn shell_image_id() -> String {
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            "reprobox/shell:1",
        ])
        .output()
        .expect("the docker client runs");
    assert!(
        out.status.success(),
        "the image reprobox/shell:1 is missing (hint: run scripts/setup, which builds it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    submission: PathBuf,
    mirror: PathBuf,
    audits: PathBuf,
    sandboxes: PathBuf,
}

/// A compliant submission whose training command is `sh /app/train.sh` with `train_sh` as the
/// script, and a mirror holding its base model and dataset with matching digests.
fn setup(train_sh: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let submission = tmp.path().join("submission");
    copy_dir(&fixture(), &submission);
    let mirror = tmp.path().join("mirror");
    let base = mirror
        .join("models/openlm-research/open_llama_3b_v2")
        .join(BASE_REV);
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(
        base.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#,
    )
    .unwrap();
    std::fs::write(base.join("model.safetensors"), b"not really weights").unwrap();
    let data = mirror
        .join("datasets/databricks/databricks-dolly-15k")
        .join(DATA_REV);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("train.jsonl"), "{\"instruction\": \"hi\"}\n").unwrap();
    let digest = |p: &Path| {
        digest_tree(p, &DigestOptions::default())
            .unwrap()
            .root
            .to_string()
    };

    let manifest = std::fs::read_to_string(submission.join("reprobox.toml")).unwrap();
    let manifest = manifest
        .replace(&format!("sha256:{}", "1".repeat(64)), &digest(&base))
        .replace(&format!("sha256:{}", "2".repeat(64)), &digest(&data))
        .replace(
            r#"command = ["python3", "train.py"]"#,
            r#"command = ["sh", "/app/train.sh"]"#,
        );
    std::fs::write(submission.join("reprobox.toml"), manifest).unwrap();
    std::fs::write(
        submission.join("Dockerfile"),
        format!("FROM {}\nCOPY train.sh /app/train.sh\n", shell_image_id()),
    )
    .unwrap();
    std::fs::write(submission.join("train.sh"), train_sh).unwrap();

    // The strict profile with a 2 s grace period, so deadline tests are quick.
    let sandboxes = tmp.path().join("sandboxes");
    std::fs::create_dir_all(&sandboxes).unwrap();
    let strict = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sandboxes/strict.toml"),
    )
    .unwrap()
    .replace("grace_period = \"30s\"", "grace_period = \"2s\"")
    .replace(
        "telemetry_interval = \"10s\"",
        "telemetry_interval = \"1s\"",
    );
    std::fs::write(sandboxes.join("strict.toml"), strict).unwrap();
    let audits = tmp.path().join("audits");
    Setup {
        _tmp: tmp,
        submission,
        mirror,
        audits,
        sandboxes,
    }
}

impl Setup {
    fn verify_cmd(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("verify")
            .arg(&self.submission)
            .args(["--dry-run", "--gpu", "none", "--format", "json", "--inputs"])
            .arg(&self.mirror)
            .arg("--out")
            .arg(&self.audits)
            .args(extra)
            .env("REPROBOX_SANDBOXES", &self.sandboxes);
        c
    }

    fn verify(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let out = self.verify_cmd(extra).output().unwrap();
        parse(out)
    }

    fn run_dir(&self) -> PathBuf {
        let dirs: Vec<_> = std::fs::read_dir(&self.audits)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "one run directory: {dirs:?}");
        dirs[0].clone()
    }
}

fn parse(out: Output) -> (i32, serde_json::Value) {
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

fn report(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap()).unwrap()
}

fn audit_ok(run_dir: &Path) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(run_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "audit verify must pass on a fresh run directory:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn no_containers_left(run_id: &str) {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=reprobox.run={run_id}"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "containers of run {run_id} were left behind"
    );
}

const WRITES_MODEL: &str = "set -e\nmkdir -p /out/model\necho '{\"model_type\": \"llama\"}' > /out/model/config.json\necho weights > /out/model/model.safetensors\necho step 1 loss 2.5\n";

#[test]
fn a_training_run_is_built_trained_hashed_and_audited() {
    let s = setup(WRITES_MODEL);
    let (code, v) = s.verify(&[]);
    // The evaluate stage cannot score policy tasks yet, so a run that trains and hashes its
    // model ends there, saying so.
    assert_eq!(v["verdict"], "EVAL_FAILED", "{v}");
    assert_eq!(v["stage"], "evaluate", "{v}");
    assert_eq!(code, 5);
    let rd = s.run_dir();
    let r = report(&rd);
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["training"]["status"]["status"], "succeeded", "{r}");
    let model = r["model"]["digest"].as_str().unwrap();
    let recomputed = digest_tree(&rd.join("out/model"), &DigestOptions::default()).unwrap();
    assert_eq!(model, recomputed.root.to_string());
    assert_eq!(r["inputs"].as_array().unwrap().len(), 2);
    assert!(
        std::fs::read_to_string(rd.join("logs/train.log"))
            .unwrap()
            .contains("step 1 loss 2.5")
    );
    assert!(rd.join("plan.json").is_file());
    audit_ok(&rd);
    no_containers_left(r["run_id"].as_str().unwrap());
}

#[test]
fn signed_provenance_verifies_with_the_public_key() {
    let s = setup(WRITES_MODEL);
    let key = s.audits.parent().unwrap().join("key");
    let st = Command::new(BIN)
        .args(["audit", "keygen"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (_, v) = s.verify(&["--sign-key", key.to_str().unwrap()]);
    assert_eq!(v["verdict"], "EVAL_FAILED", "{v}");
    let rd = s.run_dir();
    let prov = std::fs::read_to_string(rd.join("provenance.intoto.jsonl")).unwrap();
    assert_eq!(prov.lines().count(), 2);
    assert!(
        prov.lines().all(|l| l.contains("\"payloadType\"")),
        "DSSE envelopes: {prov}"
    );
    let pubkey = format!("{}.pub", key.display());
    let out = Command::new(BIN)
        .args(["audit", "verify", "--key", &pubkey])
        .arg(&rd)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn failures_map_to_their_verdicts() {
    let cases: [(&str, &[&str], &str, i32); 3] = [
        ("echo boom >&2; exit 7\n", &[], "TRAIN_FAILED", 4),
        ("echo trained nothing\n", &[], "MISSING_ARTIFACT", 4),
        (
            "trap '' TERM\nwhile true; do sleep 1; done\n",
            &["--train-limit", "3"],
            "TIMEOUT",
            4,
        ),
    ];
    for (script, extra, verdict, exit) in cases {
        let s = setup(script);
        let started = Instant::now();
        let (code, v) = s.verify(extra);
        assert_eq!(v["verdict"], verdict, "{script}: {v}");
        assert_eq!(code, exit, "{script}");
        if verdict == "TIMEOUT" {
            // 3 s limit + 2 s grace, plus build and start-up: well under 30 s.
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{:?}",
                started.elapsed()
            );
        }
        let rd = s.run_dir();
        if verdict == "TRAIN_FAILED" {
            let r = report(&rd);
            assert_eq!(r["training"]["exit_code"], 7, "{r}");
        }
        audit_ok(&rd);
    }
}

#[test]
fn a_non_compliant_submission_never_reaches_docker() {
    let s = setup(WRITES_MODEL);
    std::fs::write(
        s.submission.join("notes.txt"),
        format!("token = {}{}\n", "hf_", "a".repeat(34)),
    )
    .unwrap();
    let (code, v) = s.verify(&[]);
    assert_eq!(v["verdict"], "NON_COMPLIANT", "{v}");
    assert_eq!(v["stage"], "check");
    assert_eq!(code, 3);
    let rd = s.run_dir();
    let r = report(&rd);
    assert!(r["image_id"].is_null(), "nothing was built: {r}");
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "secret_in_context")
    );
    audit_ok(&rd);
}

#[test]
fn a_mirror_that_differs_from_the_declared_digest_is_non_compliant() {
    let s = setup(WRITES_MODEL);
    let base = s
        .mirror
        .join("models/openlm-research/open_llama_3b_v2")
        .join(BASE_REV);
    std::fs::write(base.join("model.safetensors"), b"other weights").unwrap();
    let (code, v) = s.verify(&[]);
    assert_eq!(v["verdict"], "NON_COMPLIANT", "{v}");
    assert_eq!(v["stage"], "inputs");
    assert!(v["reason"].as_str().unwrap().contains("differs"), "{v}");
    assert_eq!(code, 3);
}

#[test]
fn gpu_none_is_refused_outside_a_dry_run_without_side_effects() {
    let s = setup(WRITES_MODEL);
    let out = Command::new(BIN)
        .arg("verify")
        .arg(&s.submission)
        .args(["--gpu", "none", "--out"])
        .arg(&s.audits)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dry-run"));
    assert!(
        !s.audits.exists(),
        "no run directory for rejected arguments"
    );
}

fn wait_for_journal_event(audits: &Path, event: &str, limit: Duration) -> PathBuf {
    let started = Instant::now();
    loop {
        if let Ok(rd) = std::fs::read_dir(audits) {
            for d in rd.flatten() {
                let j = d.path().join("journal.jsonl");
                if std::fs::read_to_string(&j)
                    .map(|t| t.contains(&format!("\"event\":\"{event}\"")))
                    .unwrap_or(false)
                {
                    return d.path();
                }
            }
        }
        assert!(
            started.elapsed() < limit,
            "no `{event}` in the journal after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn journal_events(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn resume(run_dir: &Path, sandboxes: &Path) -> (i32, serde_json::Value) {
    let out = Command::new(BIN)
        .arg("resume")
        .arg(run_dir)
        .args(["--format", "json"])
        .env("REPROBOX_SANDBOXES", sandboxes)
        .output()
        .unwrap();
    parse(out)
}

#[test]
fn a_runner_killed_mid_training_is_resumed_without_repeating_stages() {
    let s = setup(&format!("sleep 4\n{WRITES_MODEL}"));
    let mut child = s.verify_cmd(&[]).spawn().unwrap();
    let rd = wait_for_journal_event(&s.audits, "train_started", Duration::from_secs(60));
    child.kill().unwrap(); // SIGKILL: no cleanup, no last words.
    child.wait().unwrap();

    let (code, v) = resume(&rd, &s.sandboxes);
    assert_eq!(v["verdict"], "EVAL_FAILED", "{v}");
    assert_eq!(code, 5);
    let events = journal_events(&rd);
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("build_finished"), 1, "the build is not repeated");
    assert_eq!(count("train_started"), 1, "training is not restarted");
    assert_eq!(count("run_resumed"), 1);
    assert_eq!(count("train_finished"), 1);
    let r = report(&rd);
    assert_eq!(r["resumes"], 1);
    assert_eq!(r["training"]["status"]["status"], "succeeded", "{r}");
    assert!(
        std::fs::read_to_string(rd.join("logs/train.log"))
            .unwrap()
            .contains("step 1 loss")
    );
    audit_ok(&rd);
    no_containers_left(r["run_id"].as_str().unwrap());
}

#[test]
fn a_resumed_run_keeps_the_original_deadline() {
    let s = setup("trap '' TERM\nwhile true; do sleep 1; done\n");
    let mut child = s.verify_cmd(&["--train-limit", "6"]).spawn().unwrap();
    let rd = wait_for_journal_event(&s.audits, "train_started", Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(3));

    let (code, v) = resume(&rd, &s.sandboxes);
    let done = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_eq!(v["verdict"], "TIMEOUT", "{v}");
    assert_eq!(code, 4);
    let r = report(&rd);
    let deadline = r["train"]["deadline_unix"].as_f64().unwrap();
    let started = journal_events(&rd)
        .into_iter()
        .find(|e| e["event"] == "train_started")
        .unwrap();
    assert_eq!(started["data"]["deadline_unix"].as_f64().unwrap(), deadline);
    // Killed at the original deadline (+ 2 s grace), not 6 s after the resume.
    assert!(
        done < deadline + 2.0 + 5.0,
        "finished {:.1} s after the original deadline",
        done - deadline
    );
    audit_ok(&rd);
}

fn container_running(id: &str) -> bool {
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Running}}", id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

#[test]
fn a_later_runner_stops_an_orphaned_container_past_its_deadline() {
    let orphan = setup("trap '' TERM\nwhile true; do sleep 1; done\n");
    let mut child = orphan.verify_cmd(&["--train-limit", "3"]).spawn().unwrap();
    let rd = wait_for_journal_event(&orphan.audits, "train_started", Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    let started = journal_events(&rd)
        .into_iter()
        .find(|e| e["event"] == "train_started")
        .unwrap();
    let id = started["data"]["container_id"].as_str().unwrap().to_owned();
    // Past the deadline (3 s) and the grace period (2 s), nobody watches the container.
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        container_running(&id),
        "the orphan still runs before any runner looks"
    );

    // Any later run on the host stops it, and says so in its own journal.
    let other = setup(WRITES_MODEL);
    let (_, v) = other.verify(&[]);
    assert_eq!(v["verdict"], "EVAL_FAILED", "{v}");
    assert!(!container_running(&id), "the orphan was stopped");
    let reaped = journal_events(&other.run_dir())
        .into_iter()
        .find(|e| e["event"] == "containers_reaped")
        .expect("the later run records what it stopped");
    assert!(reaped.to_string().contains(&id));

    // Resuming the orphan's run records the timeout it had.
    let (code, v) = resume(&rd, &orphan.sandboxes);
    assert_eq!(v["verdict"], "TIMEOUT", "{v}");
    assert_eq!(code, 4);
    audit_ok(&rd);
}

/// Compiles the fake libnvidia-ml.so (tests/fixtures/fake-nvml) into `dir`.
fn fake_nvml(dir: &Path) -> PathBuf {
    let lib = dir.join("libnvidia-ml-fake.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-nvml/fake_nvml.c");
    let st = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(st.success(), "the fake NVML library compiles");
    lib
}

fn gpu_verify(s: &Setup, gpu_name: &str) -> (i32, serde_json::Value) {
    let dir = s.audits.parent().unwrap();
    let lib = fake_nvml(dir);
    let leases = dir.join("leases");
    let out = Command::new(BIN)
        .arg("verify")
        .arg(&s.submission)
        .args(["--gpu", "0", "--format", "json", "--inputs"])
        .arg(&s.mirror)
        .arg("--out")
        .arg(&s.audits)
        .arg("--nvml-lib")
        .arg(&lib)
        .arg("--lease-dir")
        .arg(&leases)
        .env("FAKE_NVML_GPUS", gpu_name)
        .env("REPROBOX_SANDBOXES", &s.sandboxes)
        .output()
        .unwrap();
    parse(out)
}

#[test]
fn a_gpu_the_track_does_not_approve_makes_the_run_non_compliant() {
    let s = setup(WRITES_MODEL);
    let (code, v) = gpu_verify(&s, "NVIDIA GeForce RTX 3090");
    assert_eq!(v["verdict"], "NON_COMPLIANT", "{v}");
    assert_eq!(code, 3);
    let r = report(&s.run_dir());
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "gpu_not_approved"),
        "{r}"
    );
}

#[test]
fn an_approved_gpu_reaches_the_sandbox_and_a_host_without_the_nvidia_runtime_is_an_infra_error() {
    let s = setup(WRITES_MODEL);
    let (code, v) = gpu_verify(&s, "NVIDIA A100-SXM4-40GB");
    // This host's Docker has no NVIDIA runtime: the container that requests the GPU cannot
    // start, which is the host's fault, not the submission's.
    assert_eq!(v["verdict"], "INFRA_ERROR", "{v}");
    assert_eq!(v["stage"], "train", "{v}");
    assert_eq!(code, 6);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.run_dir().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(plan["gpu"]["name"], "NVIDIA A100-SXM4-40GB");
    assert!(plan["gpu"]["uuid"].as_str().unwrap().starts_with("GPU-"));
}

#[test]
fn a_runner_that_died_before_recording_its_container_is_resumed_by_label() {
    let s = setup(&format!("sleep 4\n{WRITES_MODEL}"));
    let mut child = s.verify_cmd(&[]).spawn().unwrap();
    let rd = wait_for_journal_event(&s.audits, "train_started", Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    // Make it as if the runner died between creating the container and recording its id: the
    // last line goes (a prefix of the chain is still a valid journal).
    let journal = rd.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let last: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    assert_eq!(last["event"], "train_started");
    let id = last["data"]["container_id"].as_str().unwrap().to_owned();
    let deadline = last["data"]["deadline_unix"].as_f64().unwrap();
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();

    let (code, v) = resume(&rd, &s.sandboxes);
    assert_eq!(v["verdict"], "EVAL_FAILED", "{v}");
    assert_eq!(code, 5);
    let events = journal_events(&rd);
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("train_starting"), 1, "no second container");
    let started = events
        .iter()
        .find(|e| e["event"] == "train_started")
        .expect("resume records the container it found");
    assert_eq!(started["data"]["container_id"], id.as_str());
    assert_eq!(started["data"]["deadline_unix"].as_f64().unwrap(), deadline);
    assert_eq!(report(&rd)["training"]["status"]["status"], "succeeded");
    audit_ok(&rd);
    no_containers_left(report(&rd)["run_id"].as_str().unwrap());
}

#[test]
fn ctrl_c_during_training_is_an_infra_error_with_the_report_written() {
    let s = setup("echo training\nwhile true; do sleep 1; done\n");
    let child = s
        .verify_cmd(&[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rd = wait_for_journal_event(&s.audits, "train_started", Duration::from_secs(60));
    // The runner is watching once the first log line is in.
    let started = Instant::now();
    while !std::fs::read_to_string(rd.join("logs/train.log")).is_ok_and(|l| l.contains("training"))
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no log line");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    // The shell's builtin `kill`: no procps needed.
    let sent = Command::new("sh")
        .args(["-c", "kill -INT \"$0\"", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let (code, v) = parse(out);
    assert_eq!(v["verdict"], "INFRA_ERROR", "{v}");
    assert_eq!(code, 6);
    let events = journal_events(&rd);
    assert!(events.iter().any(|e| e["event"] == "train_interrupted"));
    let r = report(&rd);
    assert_eq!(r["verdict"], "INFRA_ERROR");
    assert!(r["reason"].as_str().unwrap().contains("interrupted"), "{r}");
    audit_ok(&rd);
    no_containers_left(r["run_id"].as_str().unwrap());

    // The decision stands: resuming does not train again.
    let (code, v) = resume(&rd, &s.sandboxes);
    assert_eq!((code, v["verdict"].as_str()), (6, Some("INFRA_ERROR")));
}

#[test]
fn ctrl_c_during_the_build_is_an_infra_error_and_leaves_no_image() {
    let s = setup(WRITES_MODEL);
    std::fs::write(
        s.submission.join("Dockerfile"),
        format!(
            "FROM {}\nRUN sleep 60\nCOPY train.sh /app/train.sh\n",
            shell_image_id()
        ),
    )
    .unwrap();
    let child = s
        .verify_cmd(&[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rd = wait_for_journal_event(&s.audits, "build_started", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    let sent = Command::new("sh")
        .args(["-c", "kill -INT \"$0\"", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let (code, v) = parse(child.wait_with_output().unwrap());
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the runner waited for the build"
    );
    assert_eq!(
        (code, v["verdict"].as_str()),
        (6, Some("INFRA_ERROR")),
        "{v}"
    );
    let interrupted = journal_events(&rd)
        .into_iter()
        .find(|e| e["event"] == "run_interrupted")
        .expect("the interruption is recorded");
    assert_eq!(interrupted["stage"], "build");
    let r = report(&rd);
    assert!(r["reason"].as_str().unwrap().contains("interrupted"), "{r}");
    audit_ok(&rd);
    let run_id = r["run_id"].as_str().unwrap();
    no_containers_left(run_id);
    let images = Command::new("docker")
        .args([
            "images",
            "-q",
            "--filter",
            &format!("label=reprobox.run={run_id}"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&images.stdout).trim().is_empty(),
        "no image of the run is left"
    );
}
