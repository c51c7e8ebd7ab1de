//! End-to-end `reprobox verify` / `resume` against the real Docker Engine, with the local
//! `reprobox/shell:1` image that `scripts/setup` builds. Each test makes a compliant submission
//! (the check fixture, with a training script of its own) and an inputs mirror in a temp dir,
//! runs the CLI, and checks the verdict, the report, the journal and `audit verify`. The
//! evaluation runs `reprobox-test/eval:1`, a stand-in for an organizer's evaluation image built
//! here from tests/fixtures/eval-image (it grades the model's `answers.txt` against a key).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reprobox::digest::{DigestOptions, digest_tree};

#[path = "support/chromium.rs"]
mod chromium;

#[path = "support/fs.rs"]
mod fs_support;
use fs_support::copy_dir;

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

/// The test evaluation image, built once per test process (`docker build` is idempotent, so
/// processes that race build the same thing).
fn eval_image() -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        shell_image_id();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval-image");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", EVAL_IMAGE])
            .arg(&dir)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("the docker client runs");
        assert!(
            out.status.success(),
            "cannot build {EVAL_IMAGE}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    EVAL_IMAGE
}

const EVAL_IMAGE: &str = "reprobox-test/eval:1";

/// What every policy task is claimed at: the test model answers 7 of the key's 10 lines.
const HONEST_CLAIM: &str = "0.7";

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
    let manifest = with_claims(&manifest, HONEST_CLAIM);
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

/// The manifest with every task of the NeurIPS policy claimed at `value`.
fn with_claims(manifest: &str, value: &str) -> String {
    let line = manifest
        .lines()
        .find(|l| l.starts_with("scores = {"))
        .expect("the fixture claims scores on one line");
    let claims = [
        "bigbench",
        "mmlu",
        "truthful_qa",
        "summarization_cnndm",
        "gsm",
        "bbq",
    ]
    .map(|t| format!("{t} = {value}"))
    .join(", ");
    manifest.replace(line, &format!("scores = {{ {claims} }}"))
}

impl Setup {
    /// Claims `value` for every task.
    fn claim(&self, value: &str) {
        let path = self.submission.join("reprobox.toml");
        let m = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, with_claims(&m, value)).unwrap();
    }

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
        if !extra.contains(&"--eval-image") {
            c.args(["--eval-image", eval_image()]);
        }
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

/// Writes a model that the test evaluator grades 7/10 on every task.
const WRITES_MODEL: &str = "set -e\nmkdir -p /out/model\necho '{\"model_type\": \"llama\"}' > /out/model/config.json\necho weights > /out/model/model.safetensors\nprintf 'paris\\n4\\nblue\\nnewton\\n1969\\noxygen\\nseven\\nneon\\nright\\nfalse\\n' > /out/model/answers.txt\necho step 1 loss 2.5\n";

/// `--format json`: stderr is NDJSON progress (docs/progress.md) that follows every stage, with
/// the build's steps counted and the training log's last line, and ends with the verdict.
#[test]
fn json_progress_on_stderr_follows_every_stage_of_a_run() {
    let s = setup(&format!(
        "echo 'epoch 1 of 1: warming up'\nsleep 3\n{WRITES_MODEL}"
    ));
    let out = s.verify_cmd(&[]).output().unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let (code, v) = parse(out);
    assert_eq!(v["verdict"], "REPRODUCED", "{v}\n{stderr}");
    assert_eq!(code, 0);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stderr line is not an event ({e}): {l}"))
        })
        .collect();
    assert!(events.iter().all(|e| e["v"] == 1), "{stderr}");
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "stage")
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    let order = ["check", "inputs", "build", "train", "collect", "evaluate"];
    let mut at = 0;
    for stage in order {
        at += started[at..]
            .iter()
            .position(|s| *s == stage)
            .unwrap_or_else(|| {
                panic!(
                    "no `{stage}` stage event after {:?}: {started:?}",
                    &started[..at]
                )
            });
    }
    let last = events.last().unwrap();
    assert_eq!(
        (
            last["event"].as_str(),
            last["stage"].as_str(),
            last["detail"].as_str()
        ),
        (Some("done"), Some("verdict"), Some("REPRODUCED"))
    );
    // Every step the builder announced is seen, each against the same total.
    let build: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "tick" && e["stage"] == "build")
        .collect();
    let total = build[0]["count"]["total"].as_u64().unwrap();
    assert!(total >= 2, "FROM and COPY at least: {stderr}");
    let mut steps: Vec<u64> = build
        .iter()
        .map(|e| {
            assert_eq!(e["count"]["unit"], "steps", "{e}");
            assert_eq!(e["count"]["total"], total, "{e}");
            e["count"]["done"].as_u64().unwrap()
        })
        .collect();
    steps.dedup();
    assert_eq!(steps, (1..=total).collect::<Vec<_>>(), "{stderr}");
    let copy = events
        .iter()
        .find(|e| e["stage"] == "build" && e["count"]["done"] == 2)
        .unwrap();
    let from = build[0]["detail"].as_str().unwrap();
    assert!(
        from.starts_with("step 1/") && from.contains(": FROM sha256:"),
        "{from}"
    );
    assert!(
        copy["detail"]
            .as_str()
            .unwrap()
            .contains("COPY train.sh /app/train.sh"),
        "{copy}"
    );
    // While the training sleeps, a tick shows its last line against the dry run's budget.
    let train = events
        .iter()
        .find(|e| e["event"] == "tick" && e["detail"] == "epoch 1 of 1: warming up")
        .unwrap_or_else(|| panic!("no train tick with the log's last line: {stderr}"));
    assert_eq!(train["stage"], "train");
    assert!(train["limit_secs"].as_f64().unwrap() > 0.0, "{train}");
    assert!(train["log_lines"].as_u64().unwrap() >= 1, "{train}");
}

#[test]
fn a_training_run_is_built_trained_hashed_and_audited() {
    let s = setup(WRITES_MODEL);
    let (code, v) = s.verify(&[]);
    assert_eq!(v["verdict"], "REPRODUCED", "{v}");
    assert_eq!(v["stage"], "compare", "{v}");
    assert_eq!(code, 0);
    let rd = s.run_dir();
    let r = report(&rd);
    let cmp = &r["evaluation"]["comparison"];
    assert_eq!(cmp["verdict"], "REPRODUCED", "{r}");
    assert_eq!(cmp["tasks"].as_array().unwrap().len(), 6);
    assert_eq!(cmp["tasks"][1]["task"], "mmlu");
    assert_eq!(cmp["tasks"][1]["reproduced"], 0.7);
    assert_eq!(cmp["aggregate"]["within_tolerance"], true);
    assert_eq!(r["evaluation"]["image"], EVAL_IMAGE);
    assert_eq!(r["evaluation"]["outcome"]["status"]["status"], "succeeded");
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["training"]["status"]["status"], "succeeded", "{r}");
    let model = r["model"]["digest"].as_str().unwrap();
    let recomputed = digest_tree(&rd.join("out/model"), &DigestOptions::default()).unwrap();
    assert_eq!(model, recomputed.root.to_string());
    // The model's per-file digests are in its listing; the report keeps the count and the
    // largest files, and the exact count of the training's output.
    let rec = r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "model")
        .unwrap();
    assert!(rec.get("files").is_none(), "{rec}");
    assert_eq!(rec["file_count"], 3, "{rec}");
    assert_eq!(
        std::fs::read_to_string(rd.join(rec["listing"].as_str().unwrap()))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert_eq!(rec["largest"].as_array().unwrap().len(), 3, "{rec}");
    assert_eq!(
        r["training"]["log"]["bytes_seen"], 16,
        "{}",
        r["training"]["log"]
    );
    assert_eq!(r["training"]["log"]["bytes_seen_exact"], true);
    assert_eq!(r["inputs"].as_array().unwrap().len(), 2);
    assert!(
        std::fs::read_to_string(rd.join("logs/train.log"))
            .unwrap()
            .contains("step 1 loss 2.5")
    );
    assert!(rd.join("plan.json").is_file());
    // The policy grants 128 GiB; the limit is planned against this host's memory, below it.
    let host: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024;
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rd.join("plan.json")).unwrap()).unwrap();
    let limits = &plan["limits"];
    assert!(limits["memory_bytes"].as_u64().unwrap() < host, "{limits}");
    assert_eq!(
        limits["memory"]["requested_bytes"],
        128u64 << 30,
        "{limits}"
    );
    assert_eq!(limits["memory"]["capped"], host < 130 << 30, "{limits}");
    assert_eq!(r["plan"]["limits"], *limits);
    // report.html shows the peak against the plan's limit, not the daemon's (the host's) one;
    // report.md says where the re-check command runs.
    let limit = limits["memory_bytes"].as_u64().unwrap() as f64 / f64::from(1u32 << 30);
    let html = std::fs::read_to_string(rd.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("of the {limit:.1} GiB limit.")),
        "no memory line against the plan's {limit:.1} GiB limit"
    );
    let md = std::fs::read_to_string(rd.join("report.md")).unwrap();
    assert!(
        md.contains("run in the directory that holds the run directory"),
        "{md}"
    );
    audit_ok(&rd);
    no_containers_left(r["run_id"].as_str().unwrap());

    // The real run's statements pass the in-toto attestation bindings, and the provenance
    // names the base image by the id the Dockerfile pins, and the evaluation's byproducts.
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/validate_intoto.py");
    let python = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let out = Command::new(&python)
        .arg(&script)
        .arg(rd.join("provenance.intoto.jsonl"))
        .output()
        .unwrap_or_else(|e| panic!("{} does not run ({e}); run scripts/setup", python.display()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let prov = std::fs::read_to_string(rd.join("provenance.intoto.jsonl")).unwrap();
    let slsa: serde_json::Value = serde_json::from_str(prov.lines().next().unwrap()).unwrap();
    let build = &slsa["predicate"]["buildDefinition"];
    let base = build["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "base_image")
        .unwrap_or_else(|| panic!("no base image in {build}"));
    let id = shell_image_id();
    assert_eq!(base["digest"]["sha256"], id.trim_start_matches("sha256:"));
    let builder = &slsa["predicate"]["runDetails"]["builder"]["version"];
    assert!(
        builder["docker"].as_str().is_some_and(|v| !v.is_empty()),
        "{builder}"
    );
    let byproducts = slsa["predicate"]["runDetails"]["byproducts"].to_string();
    for b in ["logs/eval.log", "eval/scores.json", "logs/train.log"] {
        assert!(byproducts.contains(b), "{b} in {byproducts}");
    }
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
    assert_eq!(v["verdict"], "REPRODUCED", "{v}");
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
    let cases: [(&str, &[&str], &str, i32); 4] = [
        ("echo boom >&2; exit 7\n", &[], "TRAIN_FAILED", 4),
        (WRITES_MODEL, &[], "BUILD_FAILED", 4),
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
        if verdict == "BUILD_FAILED" {
            let df = s.submission.join("Dockerfile");
            let text = std::fs::read_to_string(&df).unwrap();
            std::fs::write(
                &df,
                format!("{text}RUN echo the-build-broke-here && exit 3\n"),
            )
            .unwrap();
        }
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
        if verdict == "BUILD_FAILED" {
            // The report says why in the builder's own words: the log's last lines.
            assert!(
                v["reason"]
                    .as_str()
                    .unwrap()
                    .contains("the-build-broke-here"),
                "{v}"
            );
            assert!(report(&rd)["training"].is_null());
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
    assert_eq!(v["verdict"], "REPRODUCED", "{v}");
    assert_eq!(code, 0);
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
    assert_eq!(v["verdict"], "REPRODUCED", "{v}");
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
        .args(["--eval-image", eval_image()])
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
    assert_eq!(v["verdict"], "REPRODUCED", "{v}");
    assert_eq!(code, 0);
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

#[test]
fn an_inflated_claim_is_not_reproduced_and_the_report_names_the_task() {
    let s = setup(WRITES_MODEL);
    s.claim("0.9");
    let (code, v) = s.verify(&[]);
    assert_eq!(v["verdict"], "NOT_REPRODUCED", "{v}");
    assert_eq!(v["stage"], "compare", "{v}");
    assert_eq!(code, 1);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("bigbench") && reason.contains("worse than claimed"),
        "{reason}"
    );
    let rd = s.run_dir();
    let r = report(&rd);
    let cmp = &r["evaluation"]["comparison"];
    assert_eq!(cmp["decided_by"], "bigbench", "{r}");
    let first = &cmp["tasks"][0];
    assert_eq!(first["claimed"], 0.9);
    assert_eq!(first["reproduced"], 0.7);
    assert_eq!(first["within_tolerance"], false);
    assert_eq!(first["examples"], 10);
    let interval: Vec<f64> = serde_json::from_value(first["interval"].clone()).unwrap();
    assert!(
        interval[0] < 0.7 && 0.7 < interval[1] && interval[1] <= 1.0,
        "{interval:?}"
    );
    // The scores the harness wrote are kept, hashed, and covered by the audit.
    assert!(rd.join("eval/scores.json").is_file());
    let artifacts = r["artifacts"].to_string();
    assert!(artifacts.contains("eval/scores.json"), "{artifacts}");
    assert!(
        std::fs::read_to_string(rd.join("logs/eval.log"))
            .unwrap()
            .contains("eval: wrote /out/scores.json")
    );
    audit_ok(&rd);
    no_containers_left(r["run_id"].as_str().unwrap());
}

#[test]
fn an_evaluation_that_fails_is_eval_failed() {
    let cases = [
        ("touch /out/model/eval-crash", "crashing as asked"),
        ("touch /out/model/eval-no-scores", "scores.json"),
    ];
    for (extra_train, needle) in cases {
        let s = setup(&format!("{WRITES_MODEL}{extra_train}\n"));
        let (code, v) = s.verify(&[]);
        assert_eq!(v["verdict"], "EVAL_FAILED", "{extra_train}: {v}");
        assert_eq!(v["stage"], "evaluate", "{v}");
        assert_eq!(code, 5, "{v}");
        assert!(v["reason"].as_str().unwrap().contains(needle), "{v}");
        let rd = s.run_dir();
        let r = report(&rd);
        assert_eq!(r["evaluation"]["verdict"], "EVAL_FAILED", "{r}");
        assert!(
            r["model"]["digest"].is_string(),
            "the model is still hashed"
        );
        audit_ok(&rd);
        no_containers_left(r["run_id"].as_str().unwrap());
    }
}

#[test]
fn a_missing_evaluation_image_is_an_infra_error_before_anything_is_built() {
    let s = setup(WRITES_MODEL);
    let (code, v) = s.verify(&["--eval-image", "reprobox-test/absent:1"]);
    assert_eq!(v["verdict"], "INFRA_ERROR", "{v}");
    assert_eq!(v["stage"], "plan", "{v}");
    assert_eq!(code, 6);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("reprobox-test/absent:1") && reason.contains("docker load"),
        "{reason}"
    );
    let rd = s.run_dir();
    let events = journal_events(&rd);
    assert!(
        !events.iter().any(|e| e["event"] == "build_started"),
        "nothing was built: {events:?}"
    );
    audit_ok(&rd);
}

#[test]
fn a_runner_that_died_after_evaluating_is_resumed_without_evaluating_again() {
    let s = setup(WRITES_MODEL);
    s.claim("0.9");
    let (code, _) = s.verify(&[]);
    assert_eq!(code, 1);
    let rd = s.run_dir();
    // As if the runner died right after recording the evaluation: the verdict line and the
    // report go (a prefix of the chain is still a valid journal).
    let journal = rd.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let last: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    assert_eq!(last["event"], "verdict");
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    std::fs::remove_file(rd.join("report.json")).unwrap();

    let (code, v) = resume(&rd, &s.sandboxes);
    assert_eq!(v["verdict"], "NOT_REPRODUCED", "{v}");
    assert_eq!(code, 1);
    let events = journal_events(&rd);
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("eval_started"), 1, "the evaluation is not repeated");
    assert_eq!(count("eval_finished"), 1);
    assert_eq!(
        report(&rd)["evaluation"]["comparison"]["decided_by"],
        "bigbench"
    );
    audit_ok(&rd);
}

#[test]
fn the_html_report_shows_the_verdict_and_its_charts_in_a_headless_browser() {
    let s = setup(&format!(
        "{WRITES_MODEL}for i in 2 3 4 5 6 7 8; do echo \"step $i/8 loss 2.$((9 - i))\"; sleep 0.3; done\n"
    ));
    s.claim("0.9");
    let (code, v) = s.verify(&[]);
    assert_eq!(code, 1, "{v}");
    let rd = s.run_dir();

    let md = std::fs::read_to_string(rd.join("report.md")).unwrap();
    assert!(md.starts_with("# reprobox: NOT_REPRODUCED"), "{md}");
    assert!(md.contains("| bigbench (decided) | 0.9 | 0.7 |"), "{md}");
    assert!(md.contains("reprobox audit verify"), "{md}");
    // A dry run whose log shows `step N/M` projects the full run against the policy's 24 h.
    let est = &report(&rd)["estimate"];
    assert_eq!(est["steps_done"], 8, "{est}");
    assert_eq!(est["steps_total"], 8);
    assert_eq!(est["limit_secs"], 24 * 3600);
    assert_eq!(est["fits"], true);
    assert!(
        est["projected_secs"].as_f64().unwrap() >= 1.5,
        "steps 2 to 8 are 0.3 s apart: {est}"
    );
    assert!(
        md.contains("| full-run estimate | step 8 of 8 after "),
        "{md}"
    );

    let page = rd.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(
            !html.contains(external),
            "the page must be self-contained: {external}"
        );
    }

    // What the browser built from the page: the verdict and three charts with lines drawn (the
    // claims, container memory, the loss); this dry run has no GPU, so each GPU chart is one line
    // saying so instead of an empty box.
    let dom = String::from_utf8(chromium::run(&page, &["--dump-dom"]).stdout).unwrap();
    assert!(dom.contains("<h1>NOT_REPRODUCED</h1>"), "{dom}");
    assert_eq!(dom.matches("<svg").count(), 3, "{dom}");
    for chart in ["GPU utilization", "GPU memory"] {
        assert!(
            dom.contains(&format!(
                r#"<p class="nodata">{chart}: no samples, the run had no GPU</p>"#
            )),
            "{dom}"
        );
    }
    assert!(dom.contains("Training loss"), "{dom}");
    assert!(
        dom.matches("<polyline").count() >= 2,
        "loss and container memory are drawn"
    );
    assert_eq!(
        dom.matches(r#"class="reproduced""#).count(),
        6,
        "one dot per task"
    );

    // What a person sees: the red verdict banner, and the loss line in its colour.
    let shot = rd.parent().unwrap().join("report.png");
    chromium::run(
        &page,
        &[
            "--window-size=1024,3000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let banner = chromium::pixels_near(&shot, [0xc0, 0x39, 0x2b], 4);
    assert!(
        banner > 20_000,
        "the red banner fills its box: {banner} pixels"
    );
    let loss = chromium::pixels_near(&shot, [0xca, 0x6f, 0x1e], 40);
    assert!(loss > 100, "the loss line is drawn: {loss} pixels");
    audit_ok(&rd);
}

/// Waits for the campaign's entry directory `runs/<entry>` to hold a run whose journal has
/// `event`; returns that run directory.
fn wait_for_entry_event(out: &Path, entry: &str, event: &str, limit: Duration) -> PathBuf {
    let started = Instant::now();
    loop {
        for campaign in std::fs::read_dir(out).into_iter().flatten().flatten() {
            let runs = campaign.path().join("runs").join(entry);
            if runs.is_dir() {
                return wait_for_journal_event(
                    &runs,
                    event,
                    limit.saturating_sub(started.elapsed()),
                );
            }
        }
        assert!(
            started.elapsed() < limit,
            "no entry {entry} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn finalists_falls_back_past_an_inflated_claim_and_a_killed_campaign_resumes() {
    let s = setup(WRITES_MODEL);
    let subs = s.audits.parent().unwrap().join("subs");
    for (dir, claim, train) in [
        ("a", "0.9", WRITES_MODEL.to_owned()),
        ("b", HONEST_CLAIM, format!("sleep 4\n{WRITES_MODEL}")),
        ("c", HONEST_CLAIM, WRITES_MODEL.to_owned()),
    ] {
        copy_dir(&s.submission, &subs.join(dir));
        let m = subs.join(dir).join("reprobox.toml");
        let text = std::fs::read_to_string(&m).unwrap();
        std::fs::write(&m, with_claims(&text, claim)).unwrap();
        std::fs::write(subs.join(dir).join("train.sh"), train).unwrap();
    }
    let board = subs.join("leaderboard.csv");
    std::fs::write(
        &board,
        "rank,team,submission,score\n1,alpha,a,0.9\n2,beta,b,0.7\n3,gamma,c,0.7\n",
    )
    .unwrap();
    let out = s.audits.parent().unwrap().join("campaigns");
    let finalists = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("finalists")
            .args(extra)
            .args(["--format", "json"])
            .env("REPROBOX_SANDBOXES", &s.sandboxes);
        c
    };
    let mut child = finalists(&[
        board.to_str().unwrap(),
        "--policy",
        "neurips-2023-llm-efficiency",
        "--track",
        "a100-40gb",
        "--top",
        "1",
        "--submissions",
        subs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--inputs",
        s.mirror.to_str().unwrap(),
        "--dry-run",
        "--eval-image",
        eval_image(),
    ])
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // alpha is verified and replaced; kill the campaign while beta trains.
    let beta_run =
        wait_for_entry_event(&out, "002-beta", "train_started", Duration::from_secs(120));
    child.kill().unwrap();
    child.wait().unwrap();
    let campaign = beta_run
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();

    let o = finalists(&["--resume", campaign.to_str().unwrap()])
        .output()
        .unwrap();
    let (code, v) = parse(o);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["status"], "complete", "{v}");
    assert_eq!(v["winners"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["winners"][0]["team"], "beta", "{v}");
    assert_eq!(v["entries"][0]["team"], "alpha");
    assert_eq!(v["entries"][0]["outcome"], "replaced");
    assert_eq!(v["entries"][0]["verdict"], "NOT_REPRODUCED");

    // beta's run was continued, not started again, and gamma was never run.
    let events = journal_events(&beta_run);
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("train_starting"), 1, "no second training container");
    assert!(!campaign.join("runs/003-gamma").exists());
    let cj = std::fs::read_to_string(campaign.join("campaign.jsonl")).unwrap();
    assert!(cj.contains("\"event\":\"entry_resumed\""), "{cj}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(campaign.join("campaign.json")).unwrap())
            .unwrap();
    assert_eq!(summary["not_reached"], serde_json::json!(["gamma"]));
    let md = std::fs::read_to_string(campaign.join("campaign.md")).unwrap();
    assert!(
        md.contains("| 1 | alpha | 0.9 | replaced | NOT_REPRODUCED |"),
        "{md}"
    );
    assert!(md.contains("| 3 | gamma | 0.7 | not reached |"), "{md}");
    for run in [
        v["entries"][0]["run_dir"].as_str().unwrap(),
        beta_run.to_str().unwrap(),
    ] {
        audit_ok(Path::new(run));
    }

    // A finished campaign is not run again.
    let again = finalists(&["--resume", campaign.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));
}

#[test]
fn finalists_rejects_a_bad_leaderboard_before_running_anything() {
    let s = setup(WRITES_MODEL);
    let board = s.audits.parent().unwrap().join("lb.csv");
    std::fs::write(&board, "rank,team,submission\n1,alpha,missing\n").unwrap();
    let out = s.audits.parent().unwrap().join("campaigns");
    let o = Command::new(BIN)
        .arg("finalists")
        .arg(&board)
        .args([
            "--policy",
            "neurips-2023-llm-efficiency",
            "--track",
            "a100-40gb",
            "--dry-run",
        ])
        .arg("--submissions")
        .arg(s.audits.parent().unwrap())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 2") && err.contains("not a directory") && err.contains("hint:"),
        "{err}"
    );
    assert!(!out.exists(), "nothing was written");
    let o = Command::new(BIN)
        .arg("finalists")
        .arg(&board)
        .args([
            "--policy",
            "neurips-2023-llm-efficiency",
            "--track",
            "h100",
            "--dry-run",
        ])
        .arg("--submissions")
        .arg(s.audits.parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no track `h100`"));
    // A GPU-only policy without a GPU is the operator's mistake: refused before anything runs.
    let o = Command::new(BIN)
        .arg("finalists")
        .arg(&board)
        .args([
            "--policy",
            "neurips-2023-llm-efficiency",
            "--track",
            "a100-40gb",
        ])
        .arg("--submissions")
        .arg(s.audits.parent().unwrap())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not allow a run without a GPU"));
    assert!(!out.exists(), "nothing was written");
}

#[test]
fn the_submitted_model_is_scored_side_by_side_on_the_same_examples() {
    let s = setup(WRITES_MODEL);
    // The team's own model: the rebuilt model's answers but the first, so 6/10 against 7/10.
    let submitted = s.submission.join("submitted-model");
    std::fs::create_dir_all(&submitted).unwrap();
    std::fs::write(
        submitted.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#,
    )
    .unwrap();
    // `check` inspects the submitted model: one real (tiny) safetensors tensor.
    let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header);
    st.extend_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(submitted.join("model.safetensors"), st).unwrap();
    std::fs::write(
        submitted.join("answers.txt"),
        "london\n4\nblue\nnewton\n1969\noxygen\nseven\nneon\nright\nfalse\n",
    )
    .unwrap();
    let path = s.submission.join("reprobox.toml");
    let m = std::fs::read_to_string(&path).unwrap();
    let scores = m.lines().find(|l| l.starts_with("scores = {")).unwrap();
    std::fs::write(
        &path,
        m.replace(
            scores,
            &format!("{scores}\nsubmitted_model = \"submitted-model\""),
        ),
    )
    .unwrap();

    let (code, v) = s.verify(&[]);
    assert_eq!(v["verdict"], "REPRODUCED", "the claims decide: {v}");
    assert_eq!(code, 0);
    let rd = s.run_dir();
    let r = report(&rd);
    let sbs = &r["evaluation"]["side_by_side"];
    assert_eq!(sbs["model"], "submitted-model", "{r}");
    assert!(sbs["error"].is_null(), "{sbs}");
    assert!(sbs["digest"].as_str().unwrap().starts_with("sha256:"));
    let tasks = sbs["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 6, "{sbs}");
    for t in tasks {
        assert_eq!(t["rebuilt"], 0.7, "{t}");
        assert_eq!(t["submitted"], 0.6, "{t}");
        assert!(
            (t["difference"].as_f64().unwrap() - 0.1).abs() < 1e-9,
            "{t}"
        );
        let i: Vec<f64> = serde_json::from_value(t["interval"].clone()).unwrap();
        assert!(i[0] <= 0.1 && 0.1 <= i[1] && i[1] <= 0.5, "{t}");
        assert_eq!(t["examples"], 10);
    }
    assert!(rd.join("eval/submitted/scores.json").is_file());
    assert!(
        std::fs::read_to_string(rd.join("logs/eval-submitted.log"))
            .unwrap()
            .contains("/inputs/model")
    );
    let artifacts = r["artifacts"].to_string();
    assert!(
        artifacts.contains("eval/submitted/scores.json"),
        "{artifacts}"
    );
    let md = std::fs::read_to_string(rd.join("report.md")).unwrap();
    assert!(md.contains("## Rebuilt vs submitted model"), "{md}");
    assert!(md.contains("| mmlu | 0.7 | 0.6 | 0.1 |"), "{md}");
    audit_ok(&rd);
    no_containers_left(r["run_id"].as_str().unwrap());
}

// The HTTP harness: the submission's image serves the rebuilt model on an internal network and
// the evaluator talks to it (tests/fixtures/http-eval; docs/evaluation.md, "An HTTP harness").

const HTTP_EVAL_IMAGE: &str = "reprobox-test/http-eval:1";

fn http_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http-eval")
}

/// The HTTP evaluator image, built once per test process.
fn http_eval_image() -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        shell_image_id();
        let out = Command::new("docker")
            .args(["build", "-q", "-t", HTTP_EVAL_IMAGE])
            .arg(http_fixture().join("eval"))
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("the docker client runs");
        assert!(
            out.status.success(),
            "cannot build {HTTP_EVAL_IMAGE}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    HTTP_EVAL_IMAGE
}

/// A submission whose image also carries the fixture's model server, and a policy directory
/// holding the NeurIPS 2023 policy with `[evaluation.harness.server]` (readiness as the
/// organizers' script asked it, C§1.3: POST /process, here within `ready_timeout`).
fn http_setup(train_sh: &str, ready_timeout: &str) -> (Setup, PathBuf) {
    let s = setup(train_sh);
    for f in ["serve.sh", "handler.sh"] {
        std::fs::copy(http_fixture().join("server").join(f), s.submission.join(f)).unwrap();
    }
    std::fs::write(
        s.submission.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY train.sh /app/train.sh\nCOPY serve.sh handler.sh /app/\n",
            shell_image_id()
        ),
    )
    .unwrap();
    let policies = s.audits.parent().unwrap().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    std::fs::copy(repo.join("open-data.toml"), policies.join("open-data.toml")).unwrap();
    let neurips = std::fs::read_to_string(repo.join("neurips-2023-llm-efficiency.toml")).unwrap();
    let server = format!(
        "scores_file = \"scores.json\"\n\n[evaluation.harness.server]\ncommand = [\"sh\", \"/app/serve.sh\"]\nport = 8080\nready_method = \"POST\"\nready_path = \"/process\"\nready_body = '{{\"prompt\": \"The capital of France is \"}}'\nready_timeout = \"{ready_timeout}\"\n"
    );
    let policy = neurips.replace("scores_file = \"scores.json\"\n", &server);
    assert_ne!(policy, neurips);
    std::fs::write(policies.join("neurips-2023-llm-efficiency.toml"), policy).unwrap();
    (s, policies)
}

fn http_verify(s: &Setup, policies: &Path) -> (i32, serde_json::Value) {
    let out = s
        .verify_cmd(&["--eval-image", http_eval_image()])
        .env("REPROBOX_POLICIES", policies)
        .output()
        .unwrap();
    parse(out)
}

fn no_networks_left(run_id: &str) {
    let out = Command::new("docker")
        .args([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=reprobox.run={run_id}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "networks of run {run_id} were left behind"
    );
}

#[test]
fn an_http_harness_scores_the_model_the_submission_serves() {
    let (s, policies) = http_setup(WRITES_MODEL, "30s");
    let (code, v) = http_verify(&s, &policies);
    assert_eq!(v["verdict"], "REPRODUCED", "{v}");
    assert_eq!(code, 0);
    let rd = s.run_dir();
    let r = report(&rd);
    let run_id = r["run_id"].as_str().unwrap();
    let server = &r["evaluation"]["server"];
    assert_eq!(server["url"], "http://model:8080", "{r}");
    assert_eq!(server["log"], "logs/server.log");
    assert_eq!(
        server["network"],
        format!("reprobox-{run_id}-eval-net"),
        "{server}"
    );
    assert!(server["image"].as_str().unwrap().starts_with("sha256:"));
    assert!(server["ready_after_s"].as_f64().unwrap() < 30.0, "{server}");
    assert_eq!(r["evaluation"]["comparison"]["tasks"][1]["reproduced"], 0.7);
    let server_log = std::fs::read_to_string(rd.join("logs/server.log")).unwrap();
    assert!(
        server_log.contains("server: serving /inputs/model on port 8080"),
        "{server_log}"
    );
    // The readiness request, then the evaluator's requests, all reached the submission's server.
    assert!(
        server_log.contains("POST /process {\"prompt\": \"The capital of France is \"}"),
        "{server_log}"
    );
    assert!(server_log.contains("POST /tokenize"), "{server_log}");
    assert_eq!(server_log.matches("\"max_new_tokens\": 5").count(), 10);
    let eval_log = std::fs::read_to_string(rd.join("logs/eval.log")).unwrap();
    assert!(
        eval_log.contains("eval: 7 of 10 answers right"),
        "{eval_log}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rd.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["harness"]["server"]["port"], 8080, "{plan}");
    assert!(!rd.join("eval-server/scores.json").exists());
    audit_ok(&rd);
    no_containers_left(run_id);
    no_networks_left(run_id);
}

#[test]
fn a_model_server_that_never_gets_ready_is_eval_failed_with_its_log_tail() {
    let never = WRITES_MODEL.replace(
        "echo step 1 loss 2.5\n",
        "touch /out/model/server-never-ready\n",
    );
    let crash = WRITES_MODEL.replace("echo step 1 loss 2.5\n", "touch /out/model/server-crash\n");
    let cases = [
        (
            never,
            "within its readiness timeout of 3 s",
            "loading weights forever",
        ),
        (
            crash,
            "exited with code 9 before it answered",
            "crashing as asked",
        ),
    ];
    for (train, says, tail) in cases {
        let (s, policies) = http_setup(&train, "3s");
        let started = Instant::now();
        let (code, v) = http_verify(&s, &policies);
        assert_eq!(v["verdict"], "EVAL_FAILED", "{v}");
        assert_eq!(code, 5);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
        let reason = v["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{reason}");
        assert!(reason.contains("POST /process"), "{reason}");
        assert!(reason.contains("logs/server.log"), "{reason}");
        assert!(
            reason.contains(tail),
            "the log tail is in the reason: {reason}"
        );
        let rd = s.run_dir();
        let log = std::fs::read_to_string(rd.join("logs/server.log")).unwrap();
        assert!(log.contains(tail), "{log}");
        // The evaluator never ran.
        assert!(
            !rd.join("logs/eval.log").exists() || {
                let l = std::fs::read_to_string(rd.join("logs/eval.log")).unwrap();
                !l.contains("eval: model server at")
            }
        );
        let r = report(&rd);
        assert!(r["evaluation"]["server"]["ready_after_s"].is_null(), "{r}");
        audit_ok(&rd);
        let run_id = r["run_id"].as_str().unwrap();
        no_containers_left(run_id);
        no_networks_left(run_id);
    }
}

#[test]
fn the_evaluator_on_the_model_network_reaches_nothing_beyond_it() {
    // A web server on Docker's default bridge, reachable from the host: the control.
    let name = format!("reprobox-test-outside-{}", std::process::id());
    let out = Command::new("docker")
        .args(["run", "-d", "--rm", "--name", &name, "--label", "reprobox-test=outside"])
        .arg("reprobox/shell:1")
        .args([
            "sh",
            "-c",
            "mkdir -p /tmp/w && echo outside > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    let _outside = Remove(name.clone());
    let ip = String::from_utf8(
        Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &name,
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let target = format!("http://{ip}:8080/");
    let reached = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        std::net::TcpStream::connect_timeout(
            &format!("{ip}:8080").parse().unwrap(),
            Duration::from_secs(1),
        )
        .is_ok()
    });
    assert!(
        reached,
        "the control server at {target} is reachable from the host"
    );

    let probes = [target.as_str(), "http://1.1.1.1/", "http://example.com/"].join("\\n");
    let train = WRITES_MODEL.replace(
        "echo step 1 loss 2.5\n",
        &format!("printf '{probes}\\n' > /out/model/probe.txt\n"),
    );
    let (s, policies) = http_setup(&train, "30s");
    let (code, v) = http_verify(&s, &policies);
    assert_eq!(
        v["verdict"], "REPRODUCED",
        "the model server was reached: {v}"
    );
    assert_eq!(code, 0);
    let rd = s.run_dir();
    let log = std::fs::read_to_string(rd.join("logs/eval.log")).unwrap();
    for t in [target.as_str(), "http://1.1.1.1/", "http://example.com/"] {
        assert!(
            log.contains(&format!("probe: unreachable {t}")),
            "{t}: {log}"
        );
    }
    assert!(!log.contains("probe: reached"), "{log}");
    let run_id = report(&rd)["run_id"].as_str().unwrap().to_owned();
    no_containers_left(&run_id);
    no_networks_left(&run_id);
}

#[test]
fn ctrl_c_while_the_model_server_loads_leaves_no_container_or_network() {
    let train = WRITES_MODEL.replace(
        "echo step 1 loss 2.5\n",
        "touch /out/model/server-never-ready\n",
    );
    let (s, policies) = http_setup(&train, "120s");
    let child = s
        .verify_cmd(&["--eval-image", http_eval_image()])
        .env("REPROBOX_POLICIES", &policies)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rd = wait_for_journal_event(&s.audits, "eval_started", Duration::from_secs(60));
    let started = Instant::now();
    while !std::fs::read_to_string(rd.join("logs/server.log"))
        .is_ok_and(|l| l.contains("loading weights forever"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no server log line"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = Command::new("sh")
        .args(["-c", "kill -INT \"$0\"", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let (code, v) = parse(out);
    assert_eq!(v["verdict"], "INFRA_ERROR", "{v}");
    assert_eq!(code, 6);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "not the readiness timeout"
    );
    let r = report(&rd);
    audit_ok(&rd);
    let run_id = r["run_id"].as_str().unwrap();
    no_containers_left(run_id);
    no_networks_left(run_id);
}

#[path = "support/eval_models.rs"]
mod eval_models;

/// A subnet-37 submission whose training writes the evaluator fixtures' tiny Llama, and the
/// task data for sn37-b7-multichoice.
fn sn37_submission(claims: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("submission");
    copy_dir(&eval_models::models().join("llama"), &sub.join("model-src"));
    std::fs::write(
        sub.join("reprobox.toml"),
        format!(
            "schema_version = 1\n\n[submission]\nteam = \"native-nellie\"\npolicy = \"sn37-b7-multichoice\"\ntrack = \"default\"\n\n[train]\ndockerfile = \"Dockerfile\"\ncontext = \".\"\ncommand = [\"sh\", \"/app/train.sh\"]\noutput = \"model\"\n\n[claims]\nscores = {{ {claims} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        sub.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY model-src /app/model-src\nCOPY train.sh /app/train.sh\n",
            shell_image_id()
        ),
    )
    .unwrap();
    std::fs::write(
        sub.join("train.sh"),
        "set -e\necho step 1/1 loss 1.0\ncp -r /app/model-src /out/model\n",
    )
    .unwrap();
    let data = tmp.path().join("task-data");
    eval_models::task_data(&data);
    (tmp, sub, data)
}

fn native_verify(
    sub: &Path,
    data: &Path,
    audits: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(sub)
        .args(["--dry-run", "--gpu", "none", "--format", "json", "--inputs"])
        .arg(audits.with_file_name("no-mirror"))
        .arg("--out")
        .arg(audits)
        .arg("--task-data")
        .arg(data)
        .args(extra)
        .env("REPROBOX_EVAL_BIN", eval_models::evaluator())
        .output()
        .unwrap();
    parse(out)
}

#[test]
fn a_subnet_37_submission_is_scored_natively_and_compared_task_by_task() {
    // The claims are what the native evaluator scores for this model on this data, drawn from
    // the competition's block hash (SYNTHETIC_MMLU from its pool, WORD_SORTING from the words).
    let hash = "0x1f2e3d4c5b6a79880123456789abcdef0123456789abcdef0123456789abcdef";
    let words = eval_models::fixtures().join("words.txt");
    let (tmp, _, data) = sn37_submission("");
    // With a seed the word list replaces WORD_SORTING.jsonl, at plan too.
    std::fs::copy(&words, data.join("WORD_SORTING.words.txt")).unwrap();
    std::fs::remove_file(data.join("WORD_SORTING.jsonl")).unwrap();
    let out = Command::new(BIN)
        .arg("eval")
        .arg(eval_models::models().join("llama"))
        .args([
            "--policy",
            "sn37-b7-multichoice",
            "--max-examples",
            "1000",
            "--block-hash",
            hash,
            "--format",
            "json",
            "--data-dir",
        ])
        .arg(&data)
        .env("REPROBOX_EVAL_BIN", eval_models::evaluator())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let claims: Vec<String> = scored["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{} = {}", t["task"].as_str().unwrap(), t["score"]))
        .collect();
    drop(tmp);

    let (tmp, sub, data) = sn37_submission(&claims.join(", "));
    std::fs::copy(&words, data.join("WORD_SORTING.words.txt")).unwrap();
    std::fs::remove_file(data.join("WORD_SORTING.jsonl")).unwrap();
    let audits = tmp.path().join("audits");
    let (code, v) = native_verify(&sub, &data, &audits, &["--task-block-hash", hash]);
    assert_eq!(v["verdict"], "REPRODUCED", "{v}");
    assert_eq!(v["stage"], "compare");
    assert_eq!(code, 0);
    let rd = PathBuf::from(v["run_dir"].as_str().unwrap());
    let r = report(&rd);
    let e = &r["evaluation"];
    assert_eq!(e["evaluator"], "native", "{e}");
    let tasks = e["native"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "{e}");
    assert!(
        tasks
            .iter()
            .all(|t| t["data_sha256"].as_str().unwrap().starts_with("sha256:"))
    );
    // 400 word-sorting samples generated from the block hash; the MMLU pool's three rows.
    let drawn = |name: &str| tasks.iter().find(|t| t["task"] == name).unwrap()["drawn"].clone();
    assert_eq!(drawn("WORD_SORTING")["examples"], 400, "{e}");
    assert_eq!(drawn("SYNTHETIC_MMLU")["pool"], 3, "{e}");
    assert!(drawn("FINEWEB").is_null());
    assert_eq!(e["comparison"]["tasks"].as_array().unwrap().len(), 4);
    assert!(rd.join("eval/scores.json").is_file());
    let artifacts = r["artifacts"].to_string();
    assert!(
        artifacts.contains("eval/SYNTHETIC_MMLU.data.jsonl"),
        "{artifacts}"
    );
    let plan = &r["plan"]["native"];
    assert_eq!(
        plan["seed"],
        serde_json::json!({"block_hash": hash}),
        "{plan}"
    );
    assert!(
        plan["evaluator_sha256"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{plan}"
    );
    audit_ok(&rd);

    // The same run claiming a much lower word-sorting loss is refuted by that task.
    let worse = claims
        .iter()
        .map(|c| {
            if c.starts_with("WORD_SORTING") {
                "WORD_SORTING = 0.01".to_owned()
            } else {
                c.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (tmp2, sub2, data2) = sn37_submission(&worse);
    std::fs::copy(&words, data2.join("WORD_SORTING.words.txt")).unwrap();
    let (code, v) = native_verify(
        &sub2,
        &data2,
        &tmp2.path().join("audits"),
        &["--task-block-hash", hash],
    );
    assert_eq!(v["verdict"], "NOT_REPRODUCED", "{v}");
    assert_eq!(code, 1);
    assert!(
        v["reason"].as_str().unwrap().contains("WORD_SORTING"),
        "{v}"
    );
}

/// A rebuilt model that fails FINEWEB's reasonable-output gate (two samples with the same text
/// give the same 20 greedy tokens) scores the subnet's inf there: a finite claim is not
/// reproduced, decided by that task, and the reports say inf.
#[test]
fn a_failed_reasonable_output_gate_is_not_reproduced_by_fineweb() {
    let (tmp, sub, data) = sn37_submission("FINEWEB = 6.5");
    std::fs::write(
        data.join("FINEWEB.jsonl"),
        "{\"id\": \"a\", \"text\": \"The quick brown fox jumps over the lazy dog.\"}\n\
         {\"id\": \"b\", \"text\": \"The quick brown fox jumps over the lazy dog.\"}\n",
    )
    .unwrap();
    let audits = tmp.path().join("audits");
    let (code, v) = native_verify(&sub, &data, &audits, &[]);
    assert_eq!(v["verdict"], "NOT_REPRODUCED", "{v}");
    assert_eq!(code, 1);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("FINEWEB") && reason.contains("reproduced inf"),
        "{reason}"
    );
    let rd = PathBuf::from(v["run_dir"].as_str().unwrap());
    let r = report(&rd);
    let e = &r["evaluation"];
    let fineweb = e["native"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "FINEWEB")
        .unwrap();
    assert!(fineweb["score"].is_null(), "{fineweb}");
    assert!(
        fineweb["gate_failed"].as_str().unwrap().contains("agree"),
        "{fineweb}"
    );
    let row = e["comparison"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "FINEWEB")
        .unwrap();
    assert!(row["reproduced"].is_null(), "{row}");
    assert_eq!(row["reproduced_normalized"], 1.0, "{row}");
    assert_eq!(e["comparison"]["decided_by"], "FINEWEB");
    let md = std::fs::read_to_string(rd.join("report.md")).unwrap();
    assert!(
        md.lines()
            .any(|l| l.contains("FINEWEB") && l.contains("inf")),
        "{md}"
    );
    audit_ok(&rd);
}

#[test]
fn missing_task_data_is_an_infra_error_before_anything_is_built() {
    let (tmp, sub, data) = sn37_submission("SYNTHETIC_MMLU = 0.5");
    std::fs::remove_file(data.join("FINEWEB.jsonl")).unwrap();
    let audits = tmp.path().join("audits");
    let (code, v) = native_verify(&sub, &data, &audits, &[]);
    assert_eq!(v["verdict"], "INFRA_ERROR", "{v}");
    assert_eq!(v["stage"], "plan");
    assert_eq!(code, 6);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("FINEWEB.jsonl") && reason.contains("hint:"),
        "{reason}"
    );
    let events = journal_events(Path::new(v["run_dir"].as_str().unwrap()));
    assert!(
        !events.iter().any(|e| e["event"] == "build_started"),
        "{events:?}"
    );
}

#[test]
fn a_full_native_run_without_task_data_is_refused_at_plan() {
    // Without task data the rebuilt model could not be scored: a full run stops before a day of
    // training (a dry run rehearses and ends EVAL_FAILED at evaluate).
    let (tmp, sub, _) = sn37_submission("SYNTHETIC_MMLU = 0.5");
    let lib = fake_nvml(tmp.path());
    let audits = tmp.path().join("audits");
    let out = Command::new(BIN)
        .arg("verify")
        .arg(&sub)
        .args(["--gpu", "0", "--format", "json", "--inputs"])
        .arg(tmp.path().join("no-mirror"))
        .arg("--out")
        .arg(&audits)
        .arg("--nvml-lib")
        .arg(&lib)
        .arg("--lease-dir")
        .arg(tmp.path().join("leases"))
        .env("FAKE_NVML_GPUS", "NVIDIA A100-SXM4-40GB")
        .env("REPROBOX_EVAL_BIN", eval_models::evaluator())
        .output()
        .unwrap();
    let (code, v) = parse(out);
    assert_eq!(v["verdict"], "INFRA_ERROR", "{v}");
    assert_eq!(v["stage"], "plan", "{v}");
    assert_eq!(code, 6);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("--task-data DIR") && reason.contains("sn37-b7-multichoice"),
        "{reason}"
    );
    let events = journal_events(Path::new(v["run_dir"].as_str().unwrap()));
    assert!(
        !events.iter().any(|e| e["event"] == "build_started"),
        "{events:?}"
    );
}

/// `verify` in text mode (what a terminal shows): exit code, stdout, stderr.
fn verify_text(s: &Setup) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(&s.submission)
        .args(["--dry-run", "--gpu", "none", "--inputs"])
        .arg(&s.mirror)
        .arg("--out")
        .arg(&s.audits)
        .args(["--eval-image", eval_image()])
        .env("REPROBOX_SANDBOXES", &s.sandboxes)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `text` holds a character that acts on a terminal (ESC, BEL, CR, C1, a bidi override).
fn has_active_control(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c)
    })
}

#[test]
fn a_symlink_with_a_hostile_name_in_the_output_is_refused_and_printed_inert() {
    // The file name alone carries an OSC window title, a clear screen, a colour and a bidi
    // override; the log line and the team name carry escapes too.
    let s = setup(
        "set -e\nmkdir -p /out/model\necho '{\"model_type\": \"llama\"}' > /out/model/config.json\necho weights > /out/model/model.safetensors\nln -s /etc/passwd \"/out/model/$(printf '\\033]0;pwned\\007\\033[2J\\033[31m\\342\\200\\256')passwd\"\nprintf 'step 1 \\033]0;from-the-log\\007\\033[2J done\\n'\n",
    );
    let manifest_path = s.submission.join("reprobox.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        manifest.replace(
            "team = \"lora-lions\"",
            "team = \"lora-lions\\u001b]0;team\\u0007\"",
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = verify_text(&s);
    assert_eq!(code, 4, "stdout: {stdout:?}\nstderr: {stderr:?}");
    assert!(stdout.contains("verdict: MISSING_ARTIFACT"), "{stdout:?}");
    // The link is named, in visible escapes: nothing in it acts on the terminal.
    assert!(
        stdout.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{1b}[31m\\u{202e}passwd"),
        "{stdout:?}"
    );
    assert!(stdout.contains("symbolic link"), "{stdout:?}");
    assert!(!has_active_control(&stdout), "{stdout:?}");
    assert!(!has_active_control(&stderr), "{stderr:?}");

    let rd = s.run_dir();
    let md = std::fs::read_to_string(rd.join("report.md")).unwrap();
    assert!(!has_active_control(&md), "{md:?}");
    assert!(md.contains("lora-lions\\\\u{1b}]0;team\\\\u{7}"), "{md}");
    assert!(md.contains("step 1 \\u{1b}]0;from-the-log\\u{7}"), "{md}");
    // The link was not followed: the host file it names is not in the run directory.
    let r = report(&rd);
    assert!(r["model"].is_null(), "{r}");
    audit_ok(&rd);
}

#[test]
fn a_fifo_in_the_output_is_refused_without_blocking() {
    let s = setup(
        "set -e\nmkdir -p /out/model\necho '{\"model_type\": \"llama\"}' > /out/model/config.json\nmkfifo /out/model/model.safetensors\n",
    );
    let t = Instant::now();
    let (code, v) = s.verify(&[]);
    assert_eq!(v["verdict"], "MISSING_ARTIFACT", "{v}");
    assert_eq!(code, 4);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("model.safetensors") && reason.contains("fifo"),
        "{reason}"
    );
    // Nothing opened the FIFO (it would block for ever with no writer).
    assert!(t.elapsed() < Duration::from_secs(300), "{:?}", t.elapsed());
    audit_ok(&s.run_dir());
}

#[test]
fn a_safetensors_header_bomb_in_the_output_fails_the_evaluation_quickly() {
    // The header's length prefix claims 2^60 bytes: a reader that believed it would try to
    // allocate an exabyte. The evaluator refuses it and the run ends EVAL_FAILED, promptly.
    let (tmp, sub, data) = sn37_submission("FINEWEB = 2.0");
    std::fs::write(
        sub.join("train.sh"),
        "set -e\necho step 1/1 loss 1.0\ncp -r /app/model-src /out/model\nfor f in /out/model/model-00001-of-*.safetensors; do printf '\\000\\000\\000\\000\\000\\000\\000\\020{\"a\":' > \"$f\"; done\n",
    )
    .unwrap();
    let audits = tmp.path().join("audits");
    let t = Instant::now();
    let (code, v) = native_verify(&sub, &data, &audits, &[]);
    assert_eq!(v["verdict"], "EVAL_FAILED", "{v}");
    assert_eq!(code, 5);
    assert!(
        v["reason"].as_str().unwrap().contains("model-00001-of-"),
        "the reason names the file: {v}"
    );
    assert!(t.elapsed() < Duration::from_secs(300), "{:?}", t.elapsed());
    audit_ok(Path::new(v["run_dir"].as_str().unwrap()));
}
