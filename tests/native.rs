//! `reprobox eval MODEL --policy ID --data-dir DIR`: every task of a subnet-37 policy scored by
//! the real native evaluator (`reprobox-eval`, built beside `reprobox` by a workspace build) on a
//! tiny model that tests/fixtures/eval/make_models.py creates, then normalized and aggregated
//! the policy's way.

use std::process::Command;

#[path = "support/eval_models.rs"]
mod eval_models;
use eval_models::{evaluator, models, task_data};

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");

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

    // FINEWEB is tokenized in the policy's v2.x layout and goes through the reasonable-output gate.
    let fineweb: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/FINEWEB.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        fineweb["text_layout"],
        serde_json::json!({"kind": "append_eos", "max_length": 4096}),
        "{fineweb}"
    );
    assert_eq!(fineweb["gate"]["passed"], true, "{fineweb}");
    assert_eq!(
        fineweb["gate"]["generated"][0].as_array().unwrap().len(),
        20
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

/// With the competition's seed (here a block hash), SYNTHETIC_MMLU is drawn from its file as a
/// pool and WORD_SORTING generated from the word list, exactly as CPython's `random` draws them
/// in the subnet's loaders (checked by running those steps in Python).
#[test]
fn eval_policy_draws_the_task_data_from_the_block_hash_as_the_subnet_does() {
    let model = models().join("llama");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    task_data(&data);
    let words = eval_models::fixtures().join("words.txt");
    std::fs::copy(&words, data.join("WORD_SORTING.words.txt")).unwrap();
    let hash = "0x5d0c6b6a9e5e2c3f1e7a4b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a";
    let out = Command::new(BIN)
        .arg("eval")
        .arg(&model)
        .args(["--policy", "sn37-b7-multichoice", "--max-examples", "2"])
        .args(["--block-hash", hash, "--format", "json", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .env("REPROBOX_EVAL_BIN", evaluator())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = |name: &str| {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == name)
            .unwrap()
            .clone()
    };
    let mmlu = task("SYNTHETIC_MMLU");
    assert_eq!(mmlu["drawn"]["pool"], 3, "{mmlu}");
    assert_eq!(mmlu["drawn"]["examples"], 2, "{mmlu}");
    let ws = task("WORD_SORTING");
    assert!(
        ws["data"]
            .as_str()
            .unwrap()
            .ends_with("WORD_SORTING.words.txt"),
        "{ws}"
    );
    assert!(task("FINEWEB")["drawn"].is_null());

    let lines = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(tmp.path().join(format!("out/{name}.data.jsonl")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let got_mmlu: Vec<String> = lines("SYNTHETIC_MMLU")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let got_ws: Vec<String> = lines("WORD_SORTING")
        .iter()
        .map(|r| r["challenge"].as_str().unwrap().to_owned())
        .collect();
    // The loaders' steps on CPython's random.
    let script = r#"
import hashlib, json, random, sys
seed = int(hashlib.sha256(sys.argv[1].encode("utf-8")).hexdigest(), 16)
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
random.seed(seed)
kept = [r["id"] for r in rows if r["reference"] in ("A", "B", "C", "D")]
random.shuffle(kept)
words = [w.lower() for w in open(sys.argv[3]).read().splitlines() if w.strip() and len(w) >= 3]
random.seed(seed)
ws = []
for _ in range(2):
    k = random.randint(2, 20)
    ws.append("Sort the following words alphabetically: " + " ".join(random.sample(words, k)) + ". ")
print(json.dumps({"mmlu": kept[:2], "ws": ws}))
"#;
    let py = Command::new(eval_models::python())
        .args(["-c", script, hash])
        .arg(data.join("SYNTHETIC_MMLU.jsonl"))
        .arg(&words)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let want: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(serde_json::json!(got_mmlu), want["mmlu"]);
    assert_eq!(serde_json::json!(got_ws), want["ws"]);
}

/// Two FINEWEB samples with the same text make every model fail the reasonable-output gate (the
/// same prompt gives the same greedy tokens): the task scores the subnet's inf, normalized 1.0.
#[test]
fn a_failed_gate_scores_fineweb_inf_and_the_aggregate_counts_it_as_one() {
    let model = models().join("llama");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    task_data(&data);
    std::fs::write(
        data.join("FINEWEB.jsonl"),
        "{\"id\": \"a\", \"text\": \"The quick brown fox jumps over the lazy dog.\"}\n\
         {\"id\": \"b\", \"text\": \"The quick brown fox jumps over the lazy dog.\"}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("eval")
        .arg(&model)
        .args(["--policy", "sn37-b7-multichoice", "--max-examples", "2"])
        .args(["--format", "json", "--data-dir"])
        .arg(&data)
        .env("REPROBOX_EVAL_BIN", evaluator())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fineweb = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "FINEWEB")
        .unwrap();
    assert!(fineweb["score"].is_null(), "{fineweb}");
    assert_eq!(fineweb["normalized"], 1.0, "{fineweb}");
    assert!(
        fineweb["gate_failed"]
            .as_str()
            .unwrap()
            .contains("20 of 20 positions"),
        "{fineweb}"
    );
    assert!(v["aggregate"].as_f64().unwrap().is_finite(), "{v}");
}
