//! The example submission `examples/submissions/honest` and the demo mirror that
//! `scripts/make-inputs` generates: the generator's bytes must keep matching the digests committed
//! in the example's manifest, `check` must accept the example, and a CPU dry run of it against the
//! real Docker Engine (with the local `reprobox/python:1` and `reprobox/eval-demo:1` images that
//! `scripts/setup` builds) must train, hash and evaluate the model, reproduce the honest claims,
//! refute an inflated one, and leave intact run directories. The same path as `scripts/demo`.

use std::path::{Path, PathBuf};
use std::process::Command;

use reprobox::digest::{DigestOptions, digest_tree};
use reprobox::stage::InputsMirror;

#[path = "support/fs.rs"]
mod fs_support;
use fs_support::copy_dir;

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");
const SETUP_HINT: &str = "run `scripts/setup`, or set REPROBOX_TEST_PYTHON";
/// The Dockerfile's placeholder base image; `scripts/demo` and the end-to-end test replace it.
const PLACEHOLDER_FROM: &str = "FROM reprobox/python:1@sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example() -> PathBuf {
    repo().join("examples/submissions/honest")
}

fn python() -> PathBuf {
    let p = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python not found at {} (hint: {SETUP_HINT})",
        p.display()
    );
    p
}

/// Runs `scripts/make-inputs DIR` and returns DIR.
fn make_inputs(dir: &Path) -> PathBuf {
    let out = Command::new(python())
        .arg(repo().join("scripts/make-inputs"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/make-inputs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.to_str().unwrap(),
        "make-inputs prints the mirror it filled"
    );
    dir.to_owned()
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_generated_mirror_matches_the_committed_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = make_inputs(&tmp.path().join("mirror"));
    let lm = reprobox::manifest::load(&example()).unwrap();
    let m = InputsMirror::new(&mirror);
    let opts = DigestOptions::default();

    let base = lm
        .manifest
        .base_model
        .as_ref()
        .expect("the example declares a base model");
    let dir = m.model_dir(&base.id, &base.revision).unwrap();
    assert!(dir.join("model.safetensors").is_file(), "{}", dir.display());
    assert_eq!(
        Some(digest_tree(&dir, &opts).unwrap().root),
        base.digest,
        "scripts/make-inputs no longer produces the base model the manifest declares (hint: \
         if the change is intended, run `reprobox hash {}` and update base_model.digest)",
        dir.display()
    );

    assert_eq!(lm.manifest.datasets.len(), 1);
    let ds = &lm.manifest.datasets[0];
    let dir = m.dataset_dir(&ds.id, &ds.revision).unwrap();
    assert!(dir.join("train.txt").is_file(), "{}", dir.display());
    assert_eq!(
        Some(digest_tree(&dir, &opts).unwrap().root),
        ds.digest,
        "scripts/make-inputs no longer produces the dataset the manifest declares (hint: \
         if the change is intended, run `reprobox hash {}` and update the dataset's digest)",
        dir.display()
    );

    // A second run leaves the same bytes, and a stray file in an input directory is removed
    // (it would change the digest).
    let before = files(&mirror);
    std::fs::write(dir.join("stray.txt"), "x").unwrap();
    make_inputs(&mirror);
    assert_eq!(files(&mirror), before);
}

#[test]
fn check_accepts_the_example_with_and_without_the_mirror() {
    let out = Command::new(BIN)
        .arg("check")
        .arg(example())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let mirror = make_inputs(&tmp.path().join("mirror"));
    let out = Command::new(BIN)
        .args(["check", "--format", "json", "--inputs"])
        .arg(&mirror)
        .arg(example())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["compliant"], true, "{v}");
    assert_eq!(v["findings"].as_array().map(Vec::len), Some(0), "{v}");
    // With the mirror, the base model was inspected: the generated stand-in is a Llama.
    let models = v["models"].as_array().unwrap();
    assert!(
        models.iter().any(|m| m["role"] == "base_model"),
        "the mirror's base model was inspected: {v}"
    );
}

fn python_image_id() -> String {
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            "reprobox/python:1",
        ])
        .output()
        .expect("the docker client runs");
    assert!(
        out.status.success(),
        "the image reprobox/python:1 is missing (hint: run scripts/setup, which builds it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The evaluation image `scripts/setup` builds from examples/evaluator.
const EVAL_IMAGE: &str = "reprobox/eval-demo:1";

struct DryRun {
    _tmp: tempfile::TempDir,
    mirror: PathBuf,
    run_dir: PathBuf,
    code: Option<i32>,
    v: serde_json::Value,
}

/// `reprobox verify --dry-run` of a copy of the example (its base image pinned by id, `edit`
/// applied to the copy) with the demo evaluation image: what `scripts/demo` does.
fn dry_run(edit: impl FnOnce(&Path)) -> DryRun {
    let image = python_image_id();
    let tmp = tempfile::tempdir().unwrap();
    let mirror = make_inputs(&tmp.path().join("mirror"));
    let sub = tmp.path().join("honest");
    copy_dir(&example(), &sub);
    let dockerfile = std::fs::read_to_string(sub.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains(PLACEHOLDER_FROM), "{dockerfile}");
    std::fs::write(
        sub.join("Dockerfile"),
        dockerfile.replace(PLACEHOLDER_FROM, &format!("FROM {image}")),
    )
    .unwrap();
    edit(&sub);
    let audits = tmp.path().join("audits");

    let out = Command::new(BIN)
        .arg("verify")
        .arg(&sub)
        .args(["--dry-run", "--gpu", "none", "--format", "json", "--inputs"])
        .arg(&mirror)
        .arg("--out")
        .arg(&audits)
        .args(["--eval-image", EVAL_IMAGE])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e})\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let run_dir = std::fs::read_dir(&audits)
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .expect("a run directory");
    DryRun {
        _tmp: tmp,
        mirror,
        run_dir,
        code: out.status.code(),
        v,
    }
}

#[test]
fn a_dry_run_of_the_honest_example_is_reproduced() {
    let DryRun {
        _tmp,
        mirror,
        run_dir,
        code,
        v,
    } = dry_run(|_| {});
    let train_log = std::fs::read_to_string(run_dir.join("logs/train.log")).unwrap_or_default();
    let eval_log = std::fs::read_to_string(run_dir.join("logs/eval.log")).unwrap_or_default();
    assert_eq!(
        v["verdict"], "REPRODUCED",
        "{v}\ntrain.log:\n{train_log}\neval.log:\n{eval_log}"
    );
    assert_eq!(v["stage"], "compare", "{v}");
    assert_eq!(code, Some(reprobox::exit_codes::OK));
    // The evaluator really ran the rebuilt model: it scored every task, from ten examples each.
    assert!(eval_log.contains("evaluate.py: gsm: 10/10"), "{eval_log}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["training"]["status"]["status"], "succeeded",
        "{report}"
    );
    // The rehearsal ran under the policy's dry-run budget, and its banner says so.
    assert_eq!(report["plan"]["limits"]["train_secs"], 1800, "{report}");
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        md.contains(
            "> **Dry run**: a rehearsal with a training budget of 30 min (a real run has 24.0 h)"
        ),
        "{md}"
    );
    assert_eq!(
        report["inputs"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    let model_dir = run_dir.join("out/model");
    let recomputed = digest_tree(&model_dir, &DigestOptions::default()).unwrap();
    assert_eq!(
        report["model"]["digest"].as_str(),
        Some(recomputed.root.to_string().as_str()),
        "{report}"
    );
    // The model really is the trained one: the base config, new weights, and a falling loss.
    assert_eq!(
        std::fs::read(model_dir.join("config.json")).unwrap(),
        std::fs::read(
            InputsMirror::new(&mirror)
                .model_dir(
                    "openlm-research/open_llama_3b_v2",
                    "0000000000000000000000000000000000000001"
                )
                .unwrap()
                .join("config.json")
        )
        .unwrap()
    );
    let loss = |step: u32| -> f64 {
        let tag = format!("step {step} loss ");
        let line = train_log
            .lines()
            .find_map(|l| l.split_once(&tag).map(|(_, rest)| rest.trim().to_owned()))
            .unwrap_or_else(|| panic!("no `{tag}` line in train.log:\n{train_log}"));
        line.parse().unwrap()
    };
    assert!(
        loss(200) < loss(1) / 2.0,
        "the loss fell: {} -> {}",
        loss(1),
        loss(200)
    );
    assert!(
        train_log.contains("seed 1863"),
        "REPROBOX_SEED reached the container:\n{train_log}"
    );

    let audit = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(
        audit.status.code(),
        Some(0),
        "audit verify on a fresh run directory:\n{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
}

#[test]
fn an_inflated_claim_on_the_example_is_not_reproduced() {
    let run = dry_run(|sub| {
        let path = sub.join("reprobox.toml");
        let m = std::fs::read_to_string(&path).unwrap();
        assert!(m.contains("mmlu = 0.2,"), "{m}");
        std::fs::write(&path, m.replace("mmlu = 0.2,", "mmlu = 0.45,")).unwrap();
    });
    assert_eq!(run.v["verdict"], "NOT_REPRODUCED", "{}", run.v);
    assert_eq!(run.code, Some(reprobox::exit_codes::NOT_REPRODUCED));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.run_dir.join("report.json")).unwrap())
            .unwrap();
    let cmp = &report["evaluation"]["comparison"];
    assert_eq!(cmp["decided_by"], "mmlu", "{report}");
    assert_eq!(cmp["tasks"][1]["claimed"], 0.45);
    assert_eq!(cmp["tasks"][1]["reproduced"], 0.2);
    // Every other task was reproduced exactly.
    let others: Vec<&serde_json::Value> = cmp["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["task"] != "mmlu")
        .collect();
    assert!(
        others.iter().all(|t| t["within_tolerance"] == true),
        "{cmp}"
    );
}

#[test]
fn the_rule_breaking_example_is_non_compliant_before_anything_runs() {
    let sub = repo().join("examples/submissions/rule-breaker");
    let out = Command::new(BIN)
        .args(["check", "--format", "json"])
        .arg(&sub)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(reprobox::exit_codes::NON_COMPLIANT));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for k in [
        "unpinned_base_image",
        "unpinned_dependency",
        "unpinned_download",
        "instruction_tuned_base",
        "denied_dataset",
        "license_not_allowed",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }

    // verify decides at check: no mirror is read, nothing is built.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("verify")
        .arg(&sub)
        .args(["--dry-run", "--format", "json", "--inputs"])
        .arg(tmp.path().join("no-mirror"))
        .arg("--out")
        .arg(tmp.path().join("audits"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::NON_COMPLIANT),
        "{v}"
    );
    assert_eq!(v["verdict"], "NON_COMPLIANT");
    assert_eq!(v["stage"], "check");
    let md = std::fs::read_to_string(Path::new(v["run_dir"].as_str().unwrap()).join("report.md"))
        .unwrap();
    assert!(md.contains("`denied_dataset`"), "{md}");
}

#[test]
fn finalists_walks_the_example_leaderboard_down_to_the_honest_team() {
    let image = python_image_id();
    let tmp = tempfile::tempdir().unwrap();
    let mirror = make_inputs(&tmp.path().join("mirror"));
    let subs = tmp.path().join("submissions");
    copy_dir(&repo().join("examples/submissions"), &subs);
    for name in ["honest", "no-model"] {
        let path = subs.join(name).join("Dockerfile");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(PLACEHOLDER_FROM), "{name}: {text}");
        std::fs::write(
            &path,
            text.replace(PLACEHOLDER_FROM, &format!("FROM {image}")),
        )
        .unwrap();
    }
    let out = Command::new(BIN)
        .arg("finalists")
        .arg(repo().join("examples/leaderboard.csv"))
        .args([
            "--policy",
            "neurips-2023-llm-efficiency",
            "--track",
            "a100-40gb",
            "--top",
            "1",
            "--dry-run",
            "--eval-image",
            EVAL_IMAGE,
            "--format",
            "json",
        ])
        .arg("--submissions")
        .arg(&subs)
        .arg("--inputs")
        .arg(&mirror)
        .arg("--out")
        .arg(tmp.path().join("campaigns"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "complete", "{v}");
    let results: Vec<(&str, &str, &str)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["team"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("shortcut-sam", "replaced", "NON_COMPLIANT"),
            ("forgetful-fred", "replaced", "MISSING_ARTIFACT"),
            ("gettysburg-bytes", "accepted", "REPRODUCED"),
        ],
        "{v}"
    );
    let md =
        std::fs::read_to_string(Path::new(v["dir"].as_str().unwrap()).join("campaign.md")).unwrap();
    assert!(md.contains("| 1 | 3 | gettysburg-bytes |"), "{md}");
    for e in v["entries"].as_array().unwrap() {
        let run = e["run_dir"].as_str().unwrap();
        let audit = Command::new(BIN)
            .args(["audit", "verify", run])
            .output()
            .unwrap();
        assert_eq!(
            audit.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&audit.stdout)
        );
    }
}
