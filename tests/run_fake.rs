//! Every stage of `verify` and `resume` through the library's API on the recording
//! [`FakeEngine`], without a Docker daemon: the success path, each failure path (build fails,
//! training exits non-zero, OOM, deadline, no model, evaluation fails, a claim not reproduced)
//! and a runner that died at each stage boundary, resumed. tests/verify.rs keeps what only a
//! real daemon can show (the sandbox's confinement, real logs and images).

use std::path::{Path, PathBuf};
use std::time::Duration;

use reprobox::digest::{DigestOptions, digest_tree};
use reprobox::engine::fake::{BuildScript, ContainerScript, EngineCall, FakeEngine};
use reprobox::gpu::GpuInfo;
use reprobox::gpu::GpuSelector;
use reprobox::gpu::fake::FakeGpuProbe;
use reprobox::pipeline::{
    FakeHost, NoProgress, ResumeOptions, RunResult, VerifyOptions, resume_with, verify_with,
};
use reprobox::policy::PolicySet;
use reprobox::stage::InputsMirror;
use reprobox::verdict::Verdict;

#[path = "support/fs.rs"]
mod fs_support;
use fs_support::copy_dir;

const BASE_REV: &str = "bce5d60d3b0c68318862270ec4e794d83308d80a";
const DATA_REV: &str = "bdd27f4d94b9c1f951818a7da7fd7aeeb1ce0b63";
/// The base image the Dockerfile names, present in the fake engine.
const BASE_IMAGE: &str = "sha256:5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const EVAL_IMAGE: &str = "fake/eval:1";
const TASKS: [&str; 6] = [
    "bigbench",
    "mmlu",
    "truthful_qa",
    "summarization_cnndm",
    "gsm",
    "bbq",
];

struct Fixture {
    _tmp: tempfile::TempDir,
    submission: PathBuf,
    mirror: PathBuf,
    audits: PathBuf,
}

/// The compliant check fixture claiming 0.7 on every task, its Dockerfile on [`BASE_IMAGE`],
/// and a mirror with its base model and dataset at the manifest's digests.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let submission = tmp.path().join("submission");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/submissions/compliant"),
        &submission,
    );
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
    let claims = TASKS.map(|t| format!("{t} = 0.7")).join(", ");
    let manifest = std::fs::read_to_string(submission.join("reprobox.toml")).unwrap();
    let scores = manifest
        .lines()
        .find(|l| l.starts_with("scores = {"))
        .unwrap()
        .to_owned();
    let manifest = manifest
        .replace(&format!("sha256:{}", "1".repeat(64)), &digest(&base))
        .replace(&format!("sha256:{}", "2".repeat(64)), &digest(&data))
        .replace(&scores, &format!("scores = {{ {claims} }}"));
    std::fs::write(submission.join("reprobox.toml"), manifest).unwrap();
    std::fs::write(
        submission.join("Dockerfile"),
        format!("FROM {BASE_IMAGE}\nCOPY train.py /app/train.py\n"),
    )
    .unwrap();
    let audits = tmp.path().join("audits");
    Fixture {
        _tmp: tmp,
        submission,
        mirror,
        audits,
    }
}

/// A training container that writes a model and says so.
fn trains() -> ContainerScript {
    ContainerScript {
        lines: vec!["step 1/2 loss 2.5".into(), "step 2/2 loss 1.5".into()],
        writes: vec![
            (
                "model/config.json".into(),
                br#"{"model_type": "llama"}"#.to_vec(),
            ),
            ("model/model.safetensors".into(), b"weights".to_vec()),
        ],
        memory_bytes: 64 << 20,
        ..ContainerScript::default()
    }
}

/// An evaluator that scores `score` on every task.
fn scores(score: f64) -> ContainerScript {
    let tasks: Vec<String> = TASKS
        .iter()
        .map(|t| format!("\"{t}\": {{\"score\": {score}}}"))
        .collect();
    ContainerScript {
        lines: vec!["eval: scoring".into()],
        writes: vec![(
            "scores.json".into(),
            format!("{{\"tasks\": {{{}}}}}", tasks.join(", ")).into_bytes(),
        )],
        ..ContainerScript::default()
    }
}

fn engine(train: ContainerScript, eval: ContainerScript) -> FakeEngine {
    let e = FakeEngine::with_images([BASE_IMAGE, EVAL_IMAGE]);
    e.script("train", train);
    e.script("eval", eval);
    e
}

fn options(f: &Fixture, train_limit: Option<Duration>) -> VerifyOptions {
    VerifyOptions {
        submission: f.submission.clone(),
        audits_dir: f.audits.clone(),
        dry_run: true,
        gpu: GpuSelector::None,
        nvml_lib: None,
        lease_dir: None,
        inputs: InputsMirror::new(&f.mirror),
        policies: PolicySet::builtin().unwrap(),
        train_limit,
        sign_key: None,
        eval_image: Some(EVAL_IMAGE.into()),
        task_data: None,
        task_seed: None,
        sandboxes_dir: None,
        evaluator: None,
    }
}

fn run(f: &Fixture, e: &FakeEngine, train_limit: Option<Duration>) -> RunResult {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(verify_with(
        e.clone(),
        &options(f, train_limit),
        &mut NoProgress,
    ))
    .unwrap()
}

fn events(run_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn audit_intact(run_dir: &Path) {
    let r =
        reprobox::audit::verify_run(run_dir, &reprobox::audit::AuditOptions { key: None }).unwrap();
    assert!(r.intact, "{:?}", r.problems);
}

fn stage_created(e: &FakeEngine, stage: &str) -> usize {
    e.calls()
        .iter()
        .filter(|c| matches!(c, EngineCall::Create { stage: s, .. } if s == stage))
        .count()
}

#[test]
fn a_run_on_the_fake_engine_goes_through_every_stage_and_is_reproduced() {
    let f = fixture();
    let e = engine(trains(), scores(0.7));
    let r = run(&f, &e, None);
    assert_eq!(r.verdict, Verdict::Reproduced, "{}", r.reason);
    assert_eq!(r.stage, "compare");
    // The build had no network, one training and one evaluation container ran, and nothing of
    // the run is left on the engine.
    let calls = e.calls();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, EngineCall::Build { network, .. } if network == "none")),
        "{calls:?}"
    );
    assert_eq!(stage_created(&e, "train"), 1);
    assert_eq!(stage_created(&e, "eval"), 1);
    assert_eq!(e.live_containers(), 0, "{calls:?}");
    // The training container is the sandbox's: no network, a read-only root, no capability,
    // a memory limit, and the run's out/ as its only writable mount.
    let body = e
        .created("train")
        .expect("a training container was created");
    let host = body.host_config.unwrap();
    assert_eq!(body.network_disabled, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert!(host.cap_drop.unwrap().contains(&"ALL".to_owned()));
    assert!(host.memory.is_some_and(|m| m > 0));
    let binds = host.binds.unwrap();
    let writable: Vec<&String> = binds.iter().filter(|b| b.ends_with(":rw")).collect();
    assert_eq!(writable.len(), 1, "{binds:?}");
    assert!(
        writable[0].ends_with(&format!("{}/out:/out:rw", r.run_dir.display())),
        "{binds:?}"
    );
    assert_eq!(
        events(&r.run_dir),
        [
            "run_started",
            "check_finished",
            "plan_written",
            "inputs_started",
            "inputs_staged",
            "build_started",
            "build_finished",
            "train_starting",
            "train_started",
            "train_finished",
            "model_collected",
            "eval_started",
            "eval_finished",
            "verdict"
        ]
    );
    let log = std::fs::read_to_string(r.run_dir.join("logs/train.log")).unwrap();
    assert!(log.contains("step 2/2 loss 1.5"), "{log}");
    audit_intact(&r.run_dir);
}

#[test]
fn a_build_that_fails_is_build_failed_with_the_builders_words() {
    let f = fixture();
    let e = engine(trains(), scores(0.7));
    e.script_build(BuildScript {
        output: vec![
            "Step 2/2 : RUN pip install torch==9.9".into(),
            "ERROR: No matching distribution found for torch==9.9".into(),
        ],
        result: Err(
            "The command '/bin/sh -c pip install torch==9.9' returned a non-zero code: 1".into(),
        ),
    });
    let r = run(&f, &e, None);
    assert_eq!(r.verdict, Verdict::BuildFailed, "{}", r.reason);
    assert_eq!(r.stage, "build");
    assert!(
        r.reason
            .contains("No matching distribution found for torch==9.9"),
        "the build log's tail is in the reason: {}",
        r.reason
    );
    assert_eq!(stage_created(&e, "train"), 0);
    audit_intact(&r.run_dir);
}

#[test]
fn training_that_exits_non_zero_is_train_failed() {
    let f = fixture();
    let e = engine(
        ContainerScript {
            lines: vec![
                "Traceback (most recent call last):".into(),
                "KeyError: 'lr'".into(),
            ],
            exit_code: 1,
            ..ContainerScript::default()
        },
        scores(0.7),
    );
    let r = run(&f, &e, None);
    assert_eq!(r.verdict, Verdict::TrainFailed, "{}", r.reason);
    assert_eq!(r.stage, "train");
    assert_eq!(stage_created(&e, "eval"), 0);
    audit_intact(&r.run_dir);
}

#[test]
fn training_killed_by_the_oom_killer_is_oom() {
    let f = fixture();
    let e = engine(
        ContainerScript {
            oom: true,
            ..trains()
        },
        scores(0.7),
    );
    let r = run(&f, &e, None);
    assert_eq!(r.verdict, Verdict::Oom, "{}", r.reason);
    assert_eq!(r.stage, "train");
}

#[test]
fn training_past_its_deadline_is_stopped_and_timed_out() {
    let f = fixture();
    let e = engine(
        ContainerScript {
            runs_until_killed: true,
            ..trains()
        },
        scores(0.7),
    );
    let r = run(&f, &e, Some(Duration::from_secs(1)));
    assert_eq!(r.verdict, Verdict::Timeout, "{}", r.reason);
    assert_eq!(r.stage, "train");
    assert!(
        e.calls()
            .iter()
            .any(|c| matches!(c, EngineCall::Kill { signal, .. } if signal == "SIGTERM")),
        "the deadline sends SIGTERM: {:?}",
        e.calls()
    );
    assert_eq!(stage_created(&e, "eval"), 0);
}

#[test]
fn training_that_writes_no_model_is_a_missing_artifact() {
    let f = fixture();
    let e = engine(
        ContainerScript {
            writes: vec![],
            ..trains()
        },
        scores(0.7),
    );
    let r = run(&f, &e, None);
    assert_eq!(r.verdict, Verdict::MissingArtifact, "{}", r.reason);
    assert_eq!(r.stage, "collect");
}

#[test]
fn an_evaluator_that_fails_is_eval_failed() {
    let f = fixture();
    let e = engine(
        trains(),
        ContainerScript {
            lines: vec!["eval: crashing".into()],
            exit_code: 7,
            ..ContainerScript::default()
        },
    );
    let r = run(&f, &e, None);
    assert_eq!(r.verdict, Verdict::EvalFailed, "{}", r.reason);
    assert_eq!(r.stage, "evaluate");
    audit_intact(&r.run_dir);
}

#[test]
fn a_score_below_the_claim_is_not_reproduced() {
    let f = fixture();
    let e = engine(trains(), scores(0.5));
    let r = run(&f, &e, None);
    assert_eq!(r.verdict, Verdict::NotReproduced, "{}", r.reason);
    assert_eq!(r.stage, "compare");
    audit_intact(&r.run_dir);
}

/// A runner that died right after each stage's last event: `resume` continues from there,
/// repeats no finished stage, and ends as the uninterrupted run did.
#[test]
fn a_runner_that_died_at_any_stage_boundary_is_resumed_to_the_same_verdict() {
    for boundary in [
        "run_started",
        "check_finished",
        "plan_written",
        "inputs_staged",
        "build_finished",
        "train_finished",
        "model_collected",
        "eval_finished",
    ] {
        let f = fixture();
        let first = run(&f, &engine(trains(), scores(0.7)), None);
        assert_eq!(first.verdict, Verdict::Reproduced, "{}", first.reason);
        // The journal as the dead runner left it: every line up to the boundary.
        let journal = first.run_dir.join("journal.jsonl");
        let text = std::fs::read_to_string(&journal).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let keep = lines
            .iter()
            .position(|l| l.contains(&format!("\"event\":\"{boundary}\"")))
            .unwrap_or_else(|| panic!("no {boundary} in {text}"))
            + 1;
        std::fs::write(&journal, lines[..keep].join("\n") + "\n").unwrap();
        for f in ["report.json", "report.md", "report.html"] {
            let _ = std::fs::remove_file(first.run_dir.join(f));
        }

        let e = engine(trains(), scores(0.7));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let again = rt
            .block_on(resume_with(
                e.clone(),
                &first.run_dir,
                &ResumeOptions {
                    policies: PolicySet::builtin().unwrap(),
                    lease_dir: None,
                    sign_key: None,
                    sandboxes_dir: None,
                    inputs: InputsMirror::new(&f.mirror),
                },
                &mut NoProgress,
            ))
            .unwrap_or_else(|err| panic!("resume after {boundary}: {err}"));
        assert_eq!(
            again.verdict,
            Verdict::Reproduced,
            "after {boundary}: {}",
            again.reason
        );
        let trained_before = lines[..keep]
            .iter()
            .any(|l| l.contains("\"event\":\"train_finished\""));
        assert_eq!(
            stage_created(&e, "train"),
            usize::from(!trained_before),
            "after {boundary}: training runs again only if it had not finished"
        );
        let evaluated_before = lines[..keep]
            .iter()
            .any(|l| l.contains("\"event\":\"eval_finished\""));
        assert_eq!(
            stage_created(&e, "eval"),
            usize::from(!evaluated_before),
            "after {boundary}"
        );
        let ev = events(&first.run_dir);
        assert_eq!(
            ev.iter().filter(|e| *e == "run_resumed").count(),
            1,
            "after {boundary}: {ev:?}"
        );
        assert_eq!(ev.last().map(String::as_str), Some("verdict"));
        audit_intact(&first.run_dir);
    }
}

fn gpu(name: &str) -> GpuInfo {
    GpuInfo {
        index: 0,
        name: name.into(),
        uuid: "GPU-0a1b2c3d-0000-4000-8000-000000000001".into(),
        memory_total_bytes: 40 << 30,
        driver_version: "550.54.15".into(),
        cuda_driver_version: Some("12.4".into()),
    }
}

/// A GPU run on fakes (the engine and the GPU probe): `gpu` at index 0, its leases in the
/// fixture's directory.
fn run_on_gpu(f: &Fixture, host: &FakeHost) -> RunResult {
    let mut opts = options(f, None);
    opts.gpu = GpuSelector::Index(0);
    opts.lease_dir = Some(f.audits.with_file_name("leases"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(verify_with(host.clone(), &opts, &mut NoProgress))
        .unwrap()
}

#[test]
fn a_gpu_run_leases_the_gpu_hands_it_to_the_container_and_samples_it() {
    let f = fixture();
    let host = FakeHost {
        engine: engine(trains(), scores(0.7)),
        gpu: std::sync::Arc::new(FakeGpuProbe::new(vec![gpu("NVIDIA A100-SXM4-40GB")])),
    };
    let r = run_on_gpu(&f, &host);
    assert_eq!(r.verdict, Verdict::Reproduced, "{}", r.reason);
    let uuid = gpu("x").uuid;
    // The container asked for exactly that GPU.
    let body = host.engine.created("train").unwrap();
    let requests = body.host_config.unwrap().device_requests.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].device_ids.as_deref(), Some(&[uuid.clone()][..]));
    // The plan and the telemetry name it; the sampler ran while the container did.
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.run_dir.join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(plan["gpu"]["uuid"], uuid.as_str());
    let telemetry = std::fs::read_to_string(r.run_dir.join("telemetry.jsonl")).unwrap();
    assert!(
        telemetry.lines().any(|l| l.contains("\"source\":\"gpu\"")),
        "{telemetry}"
    );
    // The lease went with the run: another run may take the GPU now.
    reprobox::gpu::GpuLease::acquire(&f.audits.with_file_name("leases"), &uuid, "next-run")
        .expect("the lease was released");
    audit_intact(&r.run_dir);
}

#[test]
fn a_gpu_the_track_does_not_approve_is_non_compliant_before_anything_runs() {
    let f = fixture();
    let host = FakeHost {
        engine: engine(trains(), scores(0.7)),
        gpu: std::sync::Arc::new(FakeGpuProbe::new(vec![gpu("NVIDIA GeForce RTX 3090")])),
    };
    let r = run_on_gpu(&f, &host);
    assert_eq!(r.verdict, Verdict::NonCompliant, "{}", r.reason);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.run_dir.join("report.json")).unwrap())
            .unwrap();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "gpu_not_approved"),
        "{report}"
    );
    assert_eq!(stage_created(&host.engine, "train"), 0);
}

#[test]
fn a_gpu_lost_during_training_is_the_hosts_failure_not_the_submissions() {
    let f = fixture();
    // The GPU answers the selection and the first sample, then falls off the bus; the training
    // would run to its deadline. The strict profile samples every second here.
    let host = FakeHost {
        engine: engine(
            ContainerScript {
                runs_until_killed: true,
                ..trains()
            },
            scores(0.7),
        ),
        gpu: std::sync::Arc::new(
            FakeGpuProbe::new(vec![gpu("NVIDIA A100-SXM4-40GB")]).lost_after(1),
        ),
    };
    let sandboxes = f.audits.with_file_name("sandboxes");
    std::fs::create_dir_all(&sandboxes).unwrap();
    let strict = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sandboxes/strict.toml"),
    )
    .unwrap()
    .replace(
        "telemetry_interval = \"10s\"",
        "telemetry_interval = \"1s\"",
    );
    assert!(strict.contains("telemetry_interval = \"1s\""));
    std::fs::write(sandboxes.join("strict.toml"), strict).unwrap();
    let mut opts = options(&f, Some(Duration::from_secs(3)));
    opts.gpu = GpuSelector::Index(0);
    opts.lease_dir = Some(f.audits.with_file_name("leases"));
    opts.sandboxes_dir = Some(sandboxes);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt
        .block_on(verify_with(host.clone(), &opts, &mut NoProgress))
        .unwrap();
    assert_eq!(r.verdict, Verdict::InfraError, "{}", r.reason);
    assert_eq!(r.stage, "train");
    assert!(r.reason.contains("the GPU was lost"), "{}", r.reason);
    assert_eq!(stage_created(&host.engine, "eval"), 0);
}

/// The plan records the sandbox profile's digest (and so does the provenance); a runner resumed
/// with a profile edited since refuses to start a container under it.
#[test]
fn a_sandbox_profile_changed_since_the_plan_is_refused_on_resume() {
    let f = fixture();
    let sandboxes = f.audits.with_file_name("sandboxes");
    std::fs::create_dir_all(&sandboxes).unwrap();
    let strict = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sandboxes/strict.toml"),
    )
    .unwrap();
    std::fs::write(sandboxes.join("strict.toml"), &strict).unwrap();
    let mut opts = options(&f, None);
    opts.sandboxes_dir = Some(sandboxes.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = rt
        .block_on(verify_with(
            engine(trains(), scores(0.7)),
            &opts,
            &mut NoProgress,
        ))
        .unwrap();
    assert_eq!(first.verdict, Verdict::Reproduced, "{}", first.reason);
    let digest = reprobox::digest::bytes_sha256(strict.as_bytes()).to_string();
    let plan = std::fs::read_to_string(first.run_dir.join("plan.json")).unwrap();
    assert!(
        plan.contains(&format!("\"sandbox_profile_digest\": \"{digest}\"")),
        "{plan}"
    );
    let provenance =
        std::fs::read_to_string(first.run_dir.join("provenance.intoto.jsonl")).unwrap();
    assert!(provenance.contains(&digest), "{provenance}");

    // Died after the build; the site's profile is edited before the resume.
    let journal = first.run_dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let keep = lines
        .iter()
        .position(|l| l.contains("\"event\":\"build_finished\""))
        .unwrap()
        + 1;
    std::fs::write(&journal, lines[..keep].join("\n") + "\n").unwrap();
    std::fs::write(
        sandboxes.join("strict.toml"),
        strict.replace("grace_period = \"30s\"", "grace_period = \"31s\""),
    )
    .unwrap();
    let e = engine(trains(), scores(0.7));
    let again = rt
        .block_on(resume_with(
            e.clone(),
            &first.run_dir,
            &ResumeOptions {
                policies: PolicySet::builtin().unwrap(),
                lease_dir: None,
                sign_key: None,
                sandboxes_dir: Some(sandboxes),
                inputs: InputsMirror::new(&f.mirror),
            },
            &mut NoProgress,
        ))
        .unwrap();
    assert_eq!(again.verdict, Verdict::InfraError, "{}", again.reason);
    assert_eq!(again.stage, "train");
    assert!(
        again
            .reason
            .contains("the sandbox profile `strict` changed since the run was planned"),
        "{}",
        again.reason
    );
    assert_eq!(stage_created(&e, "train"), 0);
}
