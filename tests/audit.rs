//! `reprobox audit verify` end to end: a synthetic run directory is built through the public API
//! (journal, model tree, logs, telemetry, report.json with `artifacts` and `journal_head`, the
//! provenance bundle, optionally signed), then tampered with one way at a time; each change must
//! be named and exit 4, the intact directory must exit 0. The statements are also validated
//! against the in-toto Statement v1 and SLSA Provenance v1 schemas by the in-toto-attestation
//! Python bindings (tests/fixtures/audit/validate_intoto.py, venv python from
//! `REPROBOX_TEST_PYTHON`, else `<repo>/.venv/bin/python`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use reprobox::exit_codes;
use reprobox::journal::Journal;
use reprobox::provenance::{
    ArtifactRecord, Artifacts, ExternalParameters, GpuParameters, InternalParameters, Limits,
    PolicyRef, Runtime, SandboxParameters, SigningKey, TaskScore, TrainingRun, VerdictRecord,
    dependency, write_bundle, write_key_pair,
};
use reprobox::rundir::{self, RunDir};

const SETUP_HINT: &str = "run `REPROBOX_SETUP_SKIP_BUILD=1 scripts/setup` (it installs in-toto-attestation==0.9.3 into the venv), or set REPROBOX_TEST_PYTHON";

fn python() -> PathBuf {
    let p = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python not found at {} (hint: {SETUP_HINT})",
        p.display()
    );
    p
}

fn test_key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

/// Builds a finished run directory the way the runner and the report writer will.
fn build_run(root: &Path, key: Option<&SigningKey>) -> RunDir {
    build_run_with(root, key, false)
}

/// [`build_run`]; with `inline_files`, each tree's files are inline in its record and there is
/// no listing, as reprobox wrote run directories before report format 0.3.
fn build_run_with(root: &Path, key: Option<&SigningKey>, inline_files: bool) -> RunDir {
    let run = RunDir::create_layout(root.join("run-0001")).unwrap();
    let mut j = Journal::create(run.journal()).unwrap();
    j.append("run_started", None, json!({"run_id": "run-0001"}))
        .unwrap();
    j.append("stage_started", Some("build"), json!({})).unwrap();
    fs::write(run.build_log(), "Step 1/3 : FROM scratch\n").unwrap();
    j.append(
        "stage_finished",
        Some("build"),
        json!({"image_id": "sha256:abc"}),
    )
    .unwrap();
    j.append(
        "stage_started",
        Some("train"),
        json!({"deadline": "2026-11-23T23:00:00Z"}),
    )
    .unwrap();
    let model = run.out_dir().join("model");
    fs::create_dir_all(&model).unwrap();
    fs::write(model.join("config.json"), r#"{"model_type":"llama"}"#).unwrap();
    fs::write(
        model.join("model.safetensors"),
        (0..4096u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    fs::write(model.join("tokenizer.json"), "{}").unwrap();
    fs::write(run.train_log(), "epoch 1 loss 2.5\nepoch 2 loss 2.3\n").unwrap();
    fs::write(run.telemetry(), "{\"gpu_util\":97}\n{\"gpu_util\":98}\n").unwrap();
    j.append("stage_finished", Some("train"), json!({"exit_code": 0}))
        .unwrap();
    fs::write(run.eval_log(), "mmlu 0.509\n").unwrap();
    let base = run.inputs_dir().join("base_model");
    fs::create_dir_all(&base).unwrap();
    fs::write(base.join("weights.bin"), b"base weights").unwrap();
    j.append("stage_finished", Some("eval"), json!({"mmlu": 0.509}))
        .unwrap();
    j.append(
        "verdict",
        Some("verdict"),
        json!({"verdict": "REPRODUCED", "stage": "compare", "reason": "every claimed task is within tolerance"}),
    )
    .unwrap();
    let head = j.head();
    drop(j);

    let mut model_rec = ArtifactRecord::tree(&run, "model", "out/model", None).unwrap();
    let mut base_rec =
        ArtifactRecord::tree(&run, "inputs/base_model", "inputs/base_model", Some(8)).unwrap();
    if inline_files {
        for rec in [&mut model_rec, &mut base_rec] {
            rec.files = rec.recorded_files(&run).unwrap();
            fs::remove_file(run.root().join(rec.listing.take().unwrap())).unwrap();
            rec.listing_digest = None;
            rec.file_count = None;
            rec.largest.clear();
        }
    }
    let mut artifacts = Artifacts::new();
    artifacts.push(model_rec.clone());
    for (name, rel) in [
        ("logs/build.log", rundir::BUILD_LOG),
        ("logs/train.log", rundir::TRAIN_LOG),
        ("logs/eval.log", rundir::EVAL_LOG),
        ("telemetry", rundir::TELEMETRY),
    ] {
        artifacts.push(ArtifactRecord::file(&run, name, rel).unwrap());
    }
    artifacts.push(base_rec.clone());
    let report = json!({
        "report_version": "0.1",
        "run_id": "run-0001",
        "verdict": "REPRODUCED",
        "journal_head": head.hash,
        "artifacts": artifacts,
    });
    fs::write(
        run.report_json(),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();

    let mut byproducts: Vec<ArtifactRecord> = artifacts
        .iter()
        .filter(|r| r.name.starts_with("logs/") || r.name == "telemetry")
        .cloned()
        .collect();
    byproducts.push(ArtifactRecord::file(&run, "journal", rundir::JOURNAL).unwrap());
    let started = Utc.with_ymd_and_hms(2026, 11, 22, 20, 0, 0).unwrap();
    let training = TrainingRun {
        run_id: "run-0001".into(),
        model: model_rec.clone(),
        external: ExternalParameters {
            manifest: "reprobox.toml".into(),
            team: "lora-lions".into(),
            policy: "neurips-2023-llm-efficiency".into(),
            track: "a100-40gb".into(),
            dockerfile: "Dockerfile.train".into(),
            context: ".".into(),
            command: Some(vec!["python3".into(), "train.py".into()]),
            output: "model".into(),
            seed: Some(1234),
            claims: BTreeMap::from([("mmlu".into(), 0.512)]),
            submitted_model: None,
        },
        internal: InternalParameters {
            policy: "neurips-2023-llm-efficiency".into(),
            policy_digest: Some(reprobox::digest::bytes_sha256(b"policy")),
            track: "a100-40gb".into(),
            gpu: Some(GpuParameters {
                model: "NVIDIA A100-SXM4-40GB".into(),
                uuid: "GPU-00000000-1111-2222-3333-444444444444".into(),
                driver_version: "570.86.15".into(),
                cuda_version: Some("12.8".into()),
            }),
            sandbox: SandboxParameters {
                profile: "strict".into(),
                profile_digest: None,
                runtime: Runtime::Runsc,
                network_mode: "none".into(),
                readonly_rootfs: true,
            },
            limits: Limits {
                train_seconds: Some(86_400),
                memory_bytes: Some(128 << 30),
                pids: Some(512),
                ..Limits::default()
            },
            image_id: Some("sha256:abc".into()),
            dry_run: false,
        },
        resolved_dependencies: vec![
            dependency(
                "submission",
                Some("file:submission"),
                reprobox::digest::bytes_sha256(b"submission"),
            ),
            dependency(
                "base_image",
                Some("pkg:docker/reprobox-base@1"),
                reprobox::digest::bytes_sha256(b"image"),
            ),
            base_rec.descriptor(),
        ],
        byproducts,
        builder_version: BTreeMap::from([("docker".into(), "20.10".into())]),
        started_on: started,
        finished_on: started + chrono::Duration::hours(3),
    };
    let verdict = VerdictRecord {
        run_id: "run-0001".into(),
        model: model_rec,
        verdict: "REPRODUCED".into(),
        dry_run: false,
        policy: PolicyRef {
            id: "neurips-2023-llm-efficiency".into(),
            track: "a100-40gb".into(),
            digest: None,
        },
        tasks: vec![TaskScore {
            task: "mmlu".into(),
            claimed: Some(0.512),
            reproduced: Some(0.509),
            tolerance: Some(0.01),
            within_tolerance: Some(true),
            interval: Some([0.49, 0.53]),
        }],
        journal_head: head,
        report: Some(ArtifactRecord::file(&run, "report.json", rundir::REPORT_JSON).unwrap()),
        evaluated_on: started + chrono::Duration::hours(4),
    };
    let statements = [training.statement().unwrap(), verdict.statement().unwrap()];
    write_bundle(&run.provenance(), &statements, key).unwrap();
    run
}

/// Runs `reprobox audit verify` with `--format json`; returns the exit code and the parsed output.
fn audit(run: &Path, key: Option<&Path>) -> (i32, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reprobox"));
    cmd.args(["audit", "verify", "--format", "json"]).arg(run);
    if let Some(k) = key {
        cmd.arg("--key").arg(k);
    }
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (code, v)
}

fn problems(v: &Value) -> Vec<(String, Option<u64>, String, String)> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_owned(),
                p["line"].as_u64(),
                p["kind"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_tampered(run: &Path, file: &str, line: Option<u64>, kind: &str) -> Value {
    let (code, v) = audit(run, None);
    assert_eq!(code, exit_codes::TAMPERED, "{v:#}");
    assert_eq!(v["intact"], false);
    let ps = problems(&v);
    assert!(
        ps.iter()
            .any(|p| p.0 == file && (line.is_none() || p.1 == line) && p.2 == kind),
        "no {kind} problem for {file}:{line:?} in {ps:#?}"
    );
    v
}

fn journal_lines(run: &RunDir) -> Vec<String> {
    fs::read_to_string(run.journal())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_journal(run: &RunDir, lines: &[String]) {
    fs::write(run.journal(), lines.join("\n") + "\n").unwrap();
}

#[test]
fn intact_run_directory_verifies() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let (code, v) = audit(run.root(), None);
    assert_eq!(code, exit_codes::OK, "{v:#}");
    assert_eq!(v["intact"], true);
    assert_eq!(v["statements"], 2);
    assert_eq!(v["journal"]["lines"], 7);
    // Every artifact, every in-run-dir descriptor and both heads were checked.
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.len() >= 15, "{checks:#?}");
    assert!(checks.iter().any(|c| c["file"] == "inputs/base_model"));
    // Text output too.
    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(["audit", "verify"])
        .arg(run.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("intact: "));
}

#[test]
fn changed_model_byte_is_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let f = run.out_dir().join("model/model.safetensors");
    let mut b = fs::read(&f).unwrap();
    b[100] ^= 0x01;
    fs::write(&f, b).unwrap();
    let v = assert_tampered(
        run.root(),
        "out/model/model.safetensors",
        None,
        "digest_mismatch",
    );
    // The statements' subject (a tree digest without a file list) names the tree.
    assert!(
        problems(&v).iter().any(
            |p| p.0 == "out/model" && p.3.contains("provenance.intoto.jsonl line 1 subject[0]")
        )
    );
    assert!(!problems(&v).iter().any(|p| p.0.contains("config.json")));
}

#[test]
fn an_older_report_with_inline_files_still_verifies_and_names_a_changed_file() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run_with(t.path(), None, true);
    let report = fs::read_to_string(run.report_json()).unwrap();
    assert!(report.contains("\"files\"") && !report.contains("\"listing\""));
    let (code, v) = audit(run.root(), None);
    assert_eq!(code, exit_codes::OK, "{v:#}");
    let f = run.out_dir().join("model/model.safetensors");
    let mut b = fs::read(&f).unwrap();
    b[100] ^= 0x01;
    fs::write(&f, b).unwrap();
    assert_tampered(
        run.root(),
        "out/model/model.safetensors",
        None,
        "digest_mismatch",
    );
}

#[test]
fn added_model_file_is_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    fs::write(run.out_dir().join("model/extra.bin"), b"x").unwrap();
    let v = assert_tampered(run.root(), "out/model/extra.bin", None, "digest_mismatch");
    assert!(problems(&v).iter().any(|p| p.3.contains("was added")));
}

#[test]
fn changed_log_is_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    fs::write(run.train_log(), "epoch 1 loss 2.5\nepoch 2 loss 1.0\n").unwrap();
    let v = assert_tampered(run.root(), "logs/train.log", None, "digest_mismatch");
    // Recorded both in report.json's artifacts and in the SLSA byproducts.
    let ps = problems(&v);
    assert!(
        ps.iter()
            .any(|p| p.0 == "logs/train.log" && p.3.contains("report.json artifacts[2]")),
        "{ps:#?}"
    );
    assert!(
        ps.iter()
            .any(|p| p.0 == "logs/train.log" && p.3.contains("byproducts[1]")),
        "{ps:#?}"
    );
}

#[test]
fn deleted_artifact_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    fs::remove_file(run.eval_log()).unwrap();
    assert_tampered(run.root(), "logs/eval.log", None, "missing");
}

#[test]
fn changed_report_field_is_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let mut report: Value = serde_json::from_slice(&fs::read(run.report_json()).unwrap()).unwrap();
    // Someone "fixes" the recorded digest of the training log.
    report["artifacts"][2]["digest"] = json!(reprobox::digest::bytes_sha256(b"forged").to_string());
    fs::write(
        run.report_json(),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
    let v = assert_tampered(run.root(), "report.json", None, "digest_mismatch");
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.0 == "logs/train.log" && p.3.contains("report.json artifacts[2]"))
    );
}

#[test]
fn changed_journal_line_is_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let mut l = journal_lines(&run);
    l[3] = l[3].replace("2026-11-23T23:00:00Z", "2026-11-24T23:00:00Z");
    write_journal(&run, &l);
    let v = assert_tampered(run.root(), "journal.jsonl", Some(5), "journal_broken");
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.3.contains("line 4 or this line was changed"))
    );
    // The journal is also a byproduct with a digest.
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.0 == "journal.jsonl" && p.2 == "digest_mismatch")
    );
}

#[test]
fn changed_last_journal_line_breaks_the_recorded_head() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let mut l = journal_lines(&run);
    let last = l.len() - 1;
    l[last] = l[last].replace("REPRODUCED", "NOT_REPRODUCED");
    write_journal(&run, &l);
    let v = assert_tampered(run.root(), "journal.jsonl", Some(7), "head_mismatch");
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.3.contains("report.json records journal_head"))
    );
}

#[test]
fn deleted_journal_line_is_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let mut l = journal_lines(&run);
    l.remove(2);
    write_journal(&run, &l);
    let v = assert_tampered(run.root(), "journal.jsonl", Some(3), "journal_broken");
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.3.contains("a line was deleted"))
    );
}

#[test]
fn reordered_journal_lines_are_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let mut l = journal_lines(&run);
    l.swap(3, 4);
    write_journal(&run, &l);
    let v = assert_tampered(run.root(), "journal.jsonl", Some(4), "journal_broken");
    assert!(problems(&v).iter().any(|p| p.3.contains("reordered")));
}

#[test]
fn appended_journal_event_after_the_report_is_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let (mut j, _) = Journal::open(run.journal()).unwrap();
    j.append("late_event", None, json!({})).unwrap();
    drop(j);
    assert_tampered(run.root(), "journal.jsonl", Some(8), "head_mismatch");
}

#[test]
fn not_a_run_directory_exits_2() {
    let t = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(["audit", "verify"])
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit_codes::UNREADABLE_INPUT));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a run directory"));
    let (code, _) = audit(&t.path().join("nope"), None);
    assert_eq!(code, exit_codes::UNREADABLE_INPUT);
}

fn write_pub(dir: &Path, key: &SigningKey) -> PathBuf {
    let (sk, pk) = (dir.join("sign.key"), dir.join("sign.key.pub"));
    write_key_pair(key, &sk, &pk).unwrap();
    pk
}

#[test]
fn signed_statements_verify_and_a_flipped_payload_byte_fails() {
    let t = tempfile::tempdir().unwrap();
    let key = test_key();
    let run = build_run(t.path(), Some(&key));
    let pk = write_pub(t.path(), &key);
    let (code, v) = audit(run.root(), Some(&pk));
    assert_eq!(code, exit_codes::OK, "{v:#}");
    assert_eq!(v["signatures_checked"], true);

    // Another key does not verify.
    let other = t.path().join("other");
    fs::create_dir(&other).unwrap();
    let other_pk = write_pub(&other, &SigningKey::from_bytes(&[1u8; 32]));
    let (code, v) = audit(run.root(), Some(&other_pk));
    assert_eq!(code, exit_codes::TAMPERED);
    assert_eq!(
        problems(&v)
            .iter()
            .filter(|p| p.2 == "bad_signature")
            .count(),
        2
    );

    // Flip one payload byte of the verdict statement (run id run-0001 -> run-0003).
    let text = fs::read_to_string(run.provenance()).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut payload = B64.decode(lines[1]["payload"].as_str().unwrap()).unwrap();
    let at = payload.windows(8).position(|w| w == b"run-0001").unwrap() + 7;
    payload[at] ^= 0x02;
    lines[1]["payload"] = json!(B64.encode(&payload));
    let body: Vec<String> = lines
        .iter()
        .map(|l| serde_json::to_string(l).unwrap())
        .collect();
    fs::write(run.provenance(), body.join("\n") + "\n").unwrap();
    let (code, v) = audit(run.root(), Some(&pk));
    assert_eq!(code, exit_codes::TAMPERED);
    let ps = problems(&v);
    assert!(
        ps.iter()
            .any(|p| p.0 == rundir::PROVENANCE && p.1 == Some(2) && p.2 == "bad_signature"),
        "{ps:#?}"
    );
    assert!(
        !ps.iter().any(|p| p.1 == Some(1) && p.2 == "bad_signature"),
        "{ps:#?}"
    );
}

#[test]
fn unsigned_statements_fail_when_a_key_is_required() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let pk = write_pub(t.path(), &test_key());
    let (code, v) = audit(run.root(), Some(&pk));
    assert_eq!(code, exit_codes::TAMPERED);
    assert_eq!(problems(&v).iter().filter(|p| p.2 == "unsigned").count(), 2);
    // A malformed key file is an input error, not tampering.
    fs::write(t.path().join("bad.pub"), "not hex\n").unwrap();
    let (code, _) = audit(run.root(), Some(&t.path().join("bad.pub")));
    assert_eq!(code, exit_codes::UNREADABLE_INPUT);
}

#[test]
fn keygen_writes_a_usable_pair() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("k");
    let st = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(["audit", "keygen"])
        .arg(&out)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let sk = reprobox::provenance::read_signing_key(&out).unwrap();
    let run = build_run(t.path(), Some(&sk));
    let (code, v) = audit(run.root(), Some(&t.path().join("k.pub")));
    assert_eq!(code, exit_codes::OK, "{v:#}");
    // Refuses to overwrite.
    let st = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(["audit", "keygen"])
        .arg(&out)
        .status()
        .unwrap();
    assert_ne!(st.code(), Some(0));
}

fn validate_with_intoto(bundle: &Path, pubkey: Option<&Path>) -> (i32, Value) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/validate_intoto.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script).arg(bundle);
    if let Some(k) = pubkey {
        cmd.arg("--pubkey").arg(k);
    }
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code,
        3,
        "{} (hint: {SETUP_HINT})",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "validator printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

#[test]
fn statements_validate_against_the_intoto_and_slsa_schemas() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let (code, v) = validate_with_intoto(&run.provenance(), None);
    assert_eq!(code, 0, "{v:#}");
    let types: Vec<&str> = v["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "https://slsa.dev/provenance/v1",
            "https://reprobox.dev/verdict/v1"
        ]
    );

    // The validator is not a rubber stamp: an unknown SLSA field and a missing builder id fail.
    let text = fs::read_to_string(run.provenance()).unwrap();
    let mut first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    first["predicate"]["runDetails"]["builder"]["id"] = json!("");
    first["predicate"]["buildDefinition"]["bogus"] = json!(1);
    let bad = t.path().join("bad.intoto.jsonl");
    fs::write(&bad, serde_json::to_string(&first).unwrap() + "\n").unwrap();
    let (code, v) = validate_with_intoto(&bad, None);
    assert_eq!(code, 1, "{v:#}");
    assert!(v["errors"][0].as_str().unwrap().contains("bogus"), "{v:#}");
}

#[test]
fn signed_statements_validate_with_an_independent_dsse_check() {
    let t = tempfile::tempdir().unwrap();
    let key = test_key();
    let run = build_run(t.path(), Some(&key));
    let pk = write_pub(t.path(), &key);
    let (code, v) = validate_with_intoto(&run.provenance(), Some(&pk));
    assert_eq!(code, 0, "{v:#}");
    assert!(
        v["statements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["signed"] == true)
    );
    let other = t.path().join("o");
    fs::create_dir(&other).unwrap();
    let opk = write_pub(&other, &SigningKey::from_bytes(&[3u8; 32]));
    let (code, _) = validate_with_intoto(&run.provenance(), Some(&opk));
    assert_eq!(code, 1);
}

#[test]
fn torn_journal_tail_is_named_and_audit_does_not_repair_it() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let mut bytes = fs::read(run.journal()).unwrap();
    bytes.extend_from_slice(br#"{"seq":8,"ts":"2026-11-2"#);
    fs::write(run.journal(), &bytes).unwrap();
    assert_tampered(run.root(), "journal.jsonl", Some(8), "journal_torn");
    // audit verify only reads: the torn bytes are still there.
    assert_eq!(fs::read(run.journal()).unwrap(), bytes);
}

#[test]
fn missing_report_and_provenance_are_named() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    fs::remove_file(run.provenance()).unwrap();
    assert_tampered(run.root(), "provenance.intoto.jsonl", None, "missing");
    fs::remove_file(run.report_json()).unwrap();
    assert_tampered(run.root(), "report.json", None, "missing");
}

#[test]
fn report_verdict_and_file_list_must_agree_with_the_records() {
    let t = tempfile::tempdir().unwrap();
    let run = build_run(t.path(), None);
    let original = fs::read(run.report_json()).unwrap();
    let mut report: Value = serde_json::from_slice(&original).unwrap();
    report["verdict"] = json!("NOT_REPRODUCED");
    fs::write(
        run.report_json(),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
    let v = assert_tampered(run.root(), "report.json", None, "inconsistent");
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.3.contains("report.json says NOT_REPRODUCED"))
    );

    // A forged file list under an unchanged root digest is caught too: the tree's listing
    // rewritten, and its recorded digest with it.
    let mut report: Value = serde_json::from_slice(&original).unwrap();
    let listing = run
        .root()
        .join(report["artifacts"][0]["listing"].as_str().unwrap());
    let text = fs::read_to_string(&listing).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let forged = text.replacen(
        first["digest"].as_str().unwrap(),
        &reprobox::digest::bytes_sha256(b"x").to_string(),
        1,
    );
    fs::write(&listing, &forged).unwrap();
    report["artifacts"][0]["listing_digest"] =
        json!(reprobox::digest::bytes_sha256(forged.as_bytes()).to_string());
    fs::write(
        run.report_json(),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
    let v = assert_tampered(run.root(), "report.json", None, "inconsistent");
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.3.contains("do not hash to its recorded digest"))
    );
}

/// Every file under `dir` with its bytes, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_owned(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// A copy of tests/fixtures/submissions/compliant at `to`.
fn copy_compliant_submission(to: &Path) {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/submissions/compliant");
    let mut todo = vec![fixture.clone()];
    while let Some(d) = todo.pop() {
        let dst = to.join(d.strip_prefix(&fixture).unwrap());
        fs::create_dir_all(&dst).unwrap();
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// `reprobox resume RUN_DIR` (text output); the exit code, stdout and stderr.
fn resume(run: &Path, format: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .arg("resume")
        .arg(run)
        .args(["--format", format])
        // A decided run must not reach Docker; an engine that cannot be reached shows it.
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/reprobox-test/docker.sock",
        )
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 17 item 3: `resume` of a decided, signed run changes nothing, says so in one line, and
/// exits with the recorded verdict's code; the signatures still verify.
#[test]
fn resume_of_a_decided_signed_run_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let key = test_key();
    let run = build_run(t.path(), Some(&key));
    let pk = write_pub(t.path(), &key);
    let before = snapshot(run.root());
    let (code, out, err) = resume(run.root(), "text");
    assert_eq!(code, exit_codes::OK, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        out,
        "run run-0001 was already decided: REPRODUCED (decided by compare); nothing was changed\n",
        "stderr: {err}"
    );
    assert_eq!(
        snapshot(run.root()),
        before,
        "resume changed the run directory"
    );
    let (code, v) = audit(run.root(), Some(&pk));
    assert_eq!(code, exit_codes::OK, "{v:#}");
    assert_eq!(v["signatures_checked"], true);

    let (code, out, err) = resume(run.root(), "json");
    assert_eq!(code, exit_codes::OK, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["already_decided"], true, "{v:#}");
    assert_eq!(v["verdict"], "REPRODUCED");
    assert_eq!(snapshot(run.root()), before);

    // A runner that died between its verdict and its report has not finished: resume goes on to
    // write the report (here it cannot: this synthetic journal's `run_started` lacks what a
    // runner records, and resume refuses it naming the field instead of guessing).
    fs::remove_file(run.report_json()).unwrap();
    let (code, out, err) = resume(run.root(), "text");
    assert!(!out.contains("already decided"), "{out}");
    assert_eq!(code, exit_codes::INFRA_ERROR, "{out}\n{err}");
    assert!(
        err.contains("journal line 1 (`run_started`): missing field `dry_run`")
            && err.contains("hint:"),
        "{err}"
    );
}

/// The same for a run `verify` decided (NON_COMPLIANT at check, no Docker needed): before the
/// fix, resume rewrote its report (a new `finished_at`) and the human reports.
#[test]
fn resume_of_a_non_compliant_run_keeps_its_report_and_exit_code() {
    let t = tempfile::tempdir().unwrap();
    let submission = t.path().join("submission");
    copy_compliant_submission(&submission);
    fs::write(
        submission.join("notes.txt"),
        format!("token = {}{}\n", "hf_", "a".repeat(34)),
    )
    .unwrap();
    let audits = t.path().join("audits");
    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .arg("verify")
        .arg(&submission)
        .args(["--dry-run", "--gpu", "none", "--format", "json", "--out"])
        .arg(&audits)
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/reprobox-test/docker.sock",
        )
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["verdict"], "NON_COMPLIANT", "{v:#}");
    assert_eq!(out.status.code(), Some(exit_codes::NON_COMPLIANT));
    let run = PathBuf::from(v["run_dir"].as_str().unwrap());
    let before = snapshot(&run);
    assert!(before.contains_key(Path::new(rundir::REPORT_JSON)));
    let (code, out, err) = resume(&run, "text");
    assert_eq!(
        code,
        exit_codes::NON_COMPLIANT,
        "stdout: {out}\nstderr: {err}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("already decided: NON_COMPLIANT (decided by check)"),
        "{out}"
    );
    assert_eq!(snapshot(&run), before, "resume changed the run directory");
    let (code, v) = audit(&run, None);
    assert_eq!(code, exit_codes::OK, "{v:#}");
}

/// Issue 12 item 9: a resume whose journal records a huge training limit panicked in
/// `Duration::from_secs_f64`; it is refused naming the field, before anything runs.
#[test]
fn resume_with_a_huge_recorded_train_limit_is_refused_not_a_panic() {
    let t = tempfile::tempdir().unwrap();
    let submission = t.path().join("submission");
    copy_compliant_submission(&submission);
    for (i, limit) in [json!(1e300), json!(-3), json!("24h")]
        .into_iter()
        .enumerate()
    {
        let run = RunDir::create_layout(t.path().join(format!("run-{i}"))).unwrap();
        let mut j = Journal::create(run.journal()).unwrap();
        j.append(
            "run_started",
            None,
            json!({
                "run_id": "run-0002",
                "submission": submission,
                "dry_run": true,
                "gpu": null,
                "train_limit_s": limit,
            }),
        )
        .unwrap();
        drop(j);
        let (code, out, err) = resume(run.root(), "text");
        assert_eq!(code, exit_codes::INFRA_ERROR, "{limit}: {out}\n{err}");
        assert!(
            err.contains("`train_limit_s`") && err.contains("hint") && !err.contains("panicked"),
            "{limit}: {err}"
        );
    }
}
