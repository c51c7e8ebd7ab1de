//! Parity of the native evaluator with Hugging Face transformers, on tiny random models that
//! tests/fixtures/eval/make_models.py creates (one per architecture), and the `reprobox-eval`
//! command line. The models are generated once per fixture version into
//! `target/tmp/eval-models-<hash>/`.

#![cfg(feature = "tch")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use reprobox_eval::chat::ChatTemplate;
use reprobox_eval::{
    Dataset, Dtype, EvalDevice, EvalError, EvalOptions, ExampleValue, GenerateOptions, Method,
    StopReason, TextLayout, WordSortingExample, evaluate, evaluate_dataset, generate_greedy,
    ifeval, read_dataset, word_sorting,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/eval");
const IFEVAL_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/ifeval");

fn python() -> PathBuf {
    let py = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&py)
        .args(["-c", "import transformers, tokenizers, safetensors, torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import transformers/tokenizers/safetensors/torch (hint: run `REPROBOX_SETUP_SKIP_BUILD=1 scripts/setup`)",
        py.display()
    );
    py
}

/// The generated models, created on first use. A process-wide `OnceLock` and an exclusive file
/// lock (nextest runs tests as separate processes) make one process generate them while the
/// others wait.
fn models() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(generate_models).clone()
}

fn generate_models() -> PathBuf {
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
        h.update(std::fs::read(Path::new(FIXTURES).join(f)).unwrap());
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
        .arg(Path::new(FIXTURES).join("make_models.py"))
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
}

fn reference(model: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(model.join("reference.json")).unwrap()).unwrap()
}

fn cpu() -> EvalOptions {
    EvalOptions {
        device: EvalDevice::Cpu,
        ..EvalOptions::default()
    }
}

fn assert_rel(got: f64, want: f64, tol: f64, what: &str) {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        rel <= tol,
        "{what}: reprobox {got} vs transformers {want} (relative error {rel:e} > {tol:e})"
    );
}

/// Checks every method against transformers for the model `name`.
fn parity(name: &str) {
    let model = models().join(name);
    let want = reference(&model);
    for (method, file, key) in [
        (Method::TextLoss, "text_loss.jsonl", "text_loss"),
        (
            Method::ReferenceLoss,
            "reference_loss.jsonl",
            "reference_loss",
        ),
    ] {
        let report = evaluate(&model, method, &Path::new(FIXTURES).join(file), &cpu()).unwrap();
        let rows = want[key].as_array().unwrap();
        assert_eq!(report.examples.len(), rows.len());
        let mut sum = 0.0;
        for (got, row) in report.examples.iter().zip(rows) {
            assert_eq!(got.id, row["id"].as_str().unwrap());
            let ExampleValue::Loss(v) = got.value else {
                panic!("{key}: not a loss")
            };
            let w = row["value"].as_f64().unwrap();
            assert_rel(v, w, 1e-5, &format!("{name} {key} {}", got.id));
            sum += w;
        }
        // REFERENCE_LOSS / TEXT_LOSS raw score: the plain mean of per-sample means.
        assert_rel(
            report.mean,
            sum / rows.len() as f64,
            1e-5,
            &format!("{name} {key} mean"),
        );
    }
    let report = evaluate(
        &model,
        Method::ChoiceLoglikelihood,
        &Path::new(FIXTURES).join("choice.jsonl"),
        &cpu(),
    )
    .unwrap();
    let rows = want["choice_loglikelihood"].as_array().unwrap();
    for (got, row) in report.examples.iter().zip(rows) {
        let ExampleValue::Choices(lls) = &got.value else {
            panic!("not choices")
        };
        let w: Vec<f64> = row["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(lls.len(), w.len());
        for (a, b) in lls.iter().zip(&w) {
            assert!(
                (a - b).abs() <= 1e-4,
                "{name} choice {}: reprobox {a} vs transformers {b}",
                got.id
            );
        }
    }
    assert_eq!(report.acc, want["choice_acc"].as_f64(), "{name} acc");
    assert_eq!(
        report.acc_norm,
        want["choice_acc_norm"].as_f64(),
        "{name} acc_norm"
    );
    assert_eq!(report.mean, report.acc.unwrap());

    // bf16, the subnet's setting: the loss is a bf16 scalar (docs/references.md S§2.2), so agree
    // within one bf16 step (8 significant bits) of transformers' value.
    let bf16 = EvalOptions {
        dtype: Dtype::Bf16,
        ..cpu()
    };
    for (method, file, key) in [
        (Method::TextLoss, "text_loss.jsonl", "text_loss"),
        (
            Method::ReferenceLoss,
            "reference_loss.jsonl",
            "reference_loss",
        ),
    ] {
        let report = evaluate(&model, method, &Path::new(FIXTURES).join(file), &bf16).unwrap();
        for (got, row) in report
            .examples
            .iter()
            .zip(want["bf16"][key].as_array().unwrap())
        {
            let ExampleValue::Loss(v) = got.value else {
                panic!("{key}: not a loss")
            };
            let w = row["value"].as_f64().unwrap();
            let ulp = 2f64.powi(w.abs().log2().floor() as i32 - 7);
            assert!(
                (v - w).abs() <= ulp,
                "{name} bf16 {key} {}: reprobox {v} vs transformers {w}",
                got.id
            );
        }
    }

    // Greedy decoding with the KV cache and repetition penalty 1.1: the same 64 tokens.
    let g = &want["generate"];
    let options = GenerateOptions {
        max_new_tokens: 64,
        repetition_penalty: 1.1,
        stop_at_eos: false,
        chat: false,
        eval: cpu(),
    };
    let got = generate_greedy(&model, g["prompt"].as_str().unwrap(), &options).unwrap();
    assert_eq!(
        got.prompt_ids,
        ids(&g["prompt_ids"]),
        "{name} prompt tokens"
    );
    assert_eq!(got.new_ids, ids(&g["new_ids"]), "{name} generated tokens");

    text_layout_and_gate_parity(name, &model, &want);
    multiple_choice_parity(name, &model, &want);
    word_sorting_parity(name, &model, &want);
    if_eval_parity(name, &model, &want);
}

/// TEXT_LOSS in the subnet's two FINEWEB layouts (v2.x append-EOS, v3 pad-to-max-length) and
/// its reasonable-output gate, against make_models.py's transformers values: every loss within
/// 1e-5 relative, the same token counts, the same 20 generated ids and the same verdict.
fn text_layout_and_gate_parity(name: &str, model: &Path, want: &Value) {
    let data = read_dataset(
        &Path::new(FIXTURES).join("text_loss.jsonl"),
        Method::TextLoss,
    )
    .unwrap();
    for (key, layout) in [
        ("append_eos", TextLayout::AppendEos { max_length: 8 }),
        (
            "pad_to_max_length",
            TextLayout::PadToMaxLength { max_length: 40 },
        ),
    ] {
        let options = EvalOptions {
            text_layout: layout,
            ..cpu()
        };
        let report = evaluate_dataset(model, &data, &options).unwrap();
        assert_eq!(report.text_layout, Some(layout));
        // Read three at a time (every padded sample has the same length): the same numbers,
        // bit for bit.
        let batched = evaluate_dataset(
            model,
            &data,
            &EvalOptions {
                batch_size: 3,
                ..options.clone()
            },
        )
        .unwrap();
        assert_eq!(batched.examples, report.examples, "{name} {key} batched");
        let rows = want["text_layouts"][key].as_array().unwrap();
        assert_eq!(report.examples.len(), rows.len());
        for (got, row) in report.examples.iter().zip(rows) {
            let ExampleValue::Loss(v) = got.value else {
                panic!("not a loss")
            };
            assert_eq!(
                got.tokens,
                row["ids"].as_array().unwrap().len() - 1,
                "{name} {key} {}: scored positions",
                got.id
            );
            assert_rel(
                v,
                row["value"].as_f64().unwrap(),
                1e-5,
                &format!("{name} {key} {}", got.id),
            );
        }
    }
    let Dataset::Text(rows) = &data else {
        panic!("not text")
    };
    // REFERENCE_LOSS with batching: only samples of equal length share a forward pass.
    let refs = read_dataset(
        &Path::new(FIXTURES).join("reference_loss.jsonl"),
        Method::ReferenceLoss,
    )
    .unwrap();
    let one = evaluate_dataset(model, &refs, &cpu()).unwrap();
    let four = evaluate_dataset(
        model,
        &refs,
        &EvalOptions {
            batch_size: 4,
            ..cpu()
        },
    )
    .unwrap();
    assert_eq!(one.examples, four.examples, "{name} reference_loss batched");
    let same = Dataset::Text(vec![rows[0].clone(), rows[0].clone()]);
    for (key, layout, data) in [
        ("plain", TextLayout::Plain, &data),
        (
            "pad_to_max_length",
            TextLayout::PadToMaxLength { max_length: 40 },
            &data,
        ),
        ("same_sample", TextLayout::Plain, &same),
    ] {
        let options = EvalOptions {
            text_layout: layout,
            gate: true,
            ..cpu()
        };
        let report = evaluate_dataset(model, data, &options).unwrap();
        let gate = report.gate.expect("a gate result");
        let w = &want["gate"][key];
        let generated: Vec<Vec<i64>> = w["generated"].as_array().unwrap().iter().map(ids).collect();
        assert_eq!(
            gate.generated.to_vec(),
            generated,
            "{name} gate {key}: generated ids"
        );
        assert_eq!(
            gate.passed,
            w["passed"].as_bool().unwrap(),
            "{name} gate {key}: {gate:?}"
        );
        assert_eq!(
            gate.equal_positions as u64,
            w["equal_positions"].as_u64().unwrap()
        );
        assert!(!gate.sampled_by_subnet && gate.ignored.is_empty());
        if key == "same_sample" {
            assert!(!gate.passed && gate.equal_positions == 20, "{gate:?}");
        }
    }
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

/// Subnet-37 MULTIPLE_CHOICE: the rendered prompt equals `apply_chat_template(tokenize=False,
/// add_generation_prompt=True)`, the prompt and generated ids equal transformers'
/// `apply_chat_template` + `generate(do_sample=False, repetition_penalty=1.1, max_new_tokens=20)`,
/// and the decoded text, letter and 1/0 value agree.
fn multiple_choice_parity(name: &str, model: &Path, want: &Value) {
    let rows = want["multiple_choice"].as_array().unwrap();
    let template = ChatTemplate::load(model).unwrap();
    let data = read_dataset(
        &Path::new(FIXTURES).join("multiple_choice.jsonl"),
        Method::MultipleChoice,
    )
    .unwrap();
    let Dataset::MultipleChoice(examples) = &data else {
        panic!("not multiple choice")
    };
    let options = GenerateOptions {
        max_new_tokens: reprobox_eval::multiple_choice::MAX_NEW_TOKENS,
        repetition_penalty: reprobox_eval::multiple_choice::REPETITION_PENALTY,
        stop_at_eos: true,
        chat: true,
        eval: cpu(),
    };
    for (ex, row) in examples.iter().zip(rows) {
        let rendered = template.render_user_turn(&ex.challenge).unwrap();
        assert_eq!(
            rendered,
            row["prompt"].as_str().unwrap(),
            "{name} {} prompt",
            ex.id
        );
        let got = generate_greedy(model, &ex.challenge, &options).unwrap();
        assert_eq!(
            got.prompt_ids,
            ids(&row["prompt_ids"]),
            "{name} {} prompt ids",
            ex.id
        );
        assert_eq!(
            got.new_ids,
            ids(&row["new_ids"]),
            "{name} {} generated ids",
            ex.id
        );
    }
    let report = evaluate_dataset(model, &data, &cpu()).unwrap();
    assert_eq!(report.method, Method::MultipleChoice);
    let mut sum = 0.0;
    for (got, row) in report.examples.iter().zip(rows) {
        assert_eq!(got.id, row["id"].as_str().unwrap());
        assert_eq!(
            got.generated.as_deref(),
            row["text"].as_str(),
            "{name} {}",
            got.id
        );
        assert_eq!(
            got.letter.as_deref(),
            Some(row["letter"].as_str().unwrap_or("")),
            "{name} {}",
            got.id
        );
        let w = row["value"].as_f64().unwrap();
        assert_eq!(got.value, ExampleValue::Score(w), "{name} {}", got.id);
        sum += w;
    }
    assert_eq!(report.mean, sum / rows.len() as f64);
    assert_eq!(report.acc, Some(report.mean));
}

fn fixture_words() -> Vec<String> {
    word_sorting::read_words(&Path::new(FIXTURES).join("words.txt")).unwrap()
}

fn ws_rows(v: &Value) -> Vec<WordSortingExample> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| WordSortingExample {
            id: r["id"].as_str().unwrap().to_string(),
            challenge: r["challenge"].as_str().unwrap().to_string(),
            reference: r["reference"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// Subnet-37 WORD_SORTING: the samples Python's `random` draws for the seed, and their
/// REFERENCE_LOSS after the chat-templated challenge (models without a short position limit).
fn word_sorting_parity(name: &str, model: &Path, want: &Value) {
    let Some(rows) = want.get("word_sorting") else {
        return;
    };
    let seed = want["word_sorting_seed"].as_str().unwrap();
    let expected = ws_rows(rows);
    let generated = word_sorting::generate(&fixture_words(), seed, expected.len()).unwrap();
    assert_eq!(
        generated, expected,
        "{name}: word-sorting samples differ from Python's"
    );
    let report = evaluate_dataset(model, &Dataset::WordSorting(generated), &cpu()).unwrap();
    assert_eq!(report.method, Method::WordSorting);
    for (got, row) in report.examples.iter().zip(rows.as_array().unwrap()) {
        let ExampleValue::Loss(v) = got.value else {
            panic!("word_sorting: not a loss")
        };
        assert_rel(
            v,
            row["value"].as_f64().unwrap(),
            1e-5,
            &format!("{name} word_sorting {}", got.id),
        );
    }
}

/// tests/fixtures/ifeval/reference.py (the subnet's rule checks with NLTK and difflib, and its
/// scoring formula) on `samples`, JSONL in the recorded-responses layout.
fn if_eval_reference_score(samples: &str) -> Value {
    let mut child = Command::new(python())
        .arg(Path::new(IFEVAL_FIXTURES).join("reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(samples.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Subnet-37 IF_EVAL: each prompt rendered from the rules and question equals the subnet's
/// `PROMPT_FORMAT` text, the prompt and generated ids equal transformers' `apply_chat_template` +
/// `generate(do_sample=False, repetition_penalty=1.2, max_new_tokens=200)`, and the score equals
/// the reference formula (reference.py) applied to transformers' responses.
fn if_eval_parity(name: &str, model: &Path, want: &Value) {
    let Some(rows) = want.get("if_eval").and_then(Value::as_array) else {
        return;
    };
    let data = read_dataset(&Path::new(FIXTURES).join("if_eval.jsonl"), Method::IfEval).unwrap();
    let Dataset::IfEval(examples) = &data else {
        panic!("not if_eval")
    };
    let options = GenerateOptions {
        max_new_tokens: ifeval::MAX_NEW_TOKENS,
        repetition_penalty: ifeval::REPETITION_PENALTY,
        stop_at_eos: true,
        chat: true,
        eval: cpu(),
    };
    let mut samples = String::new();
    for (ex, row) in examples.iter().zip(rows) {
        assert_eq!(ex.id, row["id"].as_str().unwrap());
        for i in 0..2 {
            assert_eq!(
                ex.prompts[i],
                row["prompts"][i].as_str().unwrap(),
                "{name} {} prompt {i}",
                ex.id
            );
            let got = generate_greedy(model, &ex.prompts[i], &options).unwrap();
            assert_eq!(
                got.prompt_ids,
                ids(&row["prompt_ids"][i]),
                "{name} {} prompt ids {i}",
                ex.id
            );
            assert_eq!(
                got.new_ids,
                ids(&row["new_ids"][i]),
                "{name} {} generated ids {i}",
                ex.id
            );
        }
        let rules = serde_json::to_value(&ex.rules).unwrap();
        samples.push_str(
            &serde_json::json!({"id": ex.id, "rules": rules, "responses": row["responses"]})
                .to_string(),
        );
        samples.push('\n');
    }
    let theirs = if_eval_reference_score(&samples);
    let report = evaluate_dataset(model, &data, &cpu()).unwrap();
    assert_eq!(report.method, Method::IfEval);
    for ((got, row), judged) in report
        .examples
        .iter()
        .zip(rows)
        .zip(theirs["samples"].as_array().unwrap())
    {
        let pair = got.if_eval.as_ref().unwrap();
        let responses: Vec<&str> = pair.responses.iter().map(String::as_str).collect();
        let want_responses: Vec<&str> = row["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(responses, want_responses, "{name} {} responses", got.id);
        for i in 0..2 {
            let n = ids(&row["new_ids"][i]).len();
            assert_eq!(pair.new_tokens[i], n);
            if n < ifeval::MAX_NEW_TOKENS {
                assert_eq!(
                    pair.stopped[i],
                    StopReason::Eos,
                    "{name} {} stop {i}",
                    got.id
                );
            } else {
                assert_ne!(
                    pair.stopped[i],
                    StopReason::Time,
                    "{name} {} stop {i}",
                    got.id
                );
            }
        }
        assert_eq!(
            serde_json::to_value(pair.correct).unwrap(),
            judged["correct"],
            "{name} {} rules met",
            got.id
        );
        assert_eq!(Value::Bool(pair.duplicate), judged["duplicate"]);
    }
    assert_eq!(
        report.duplicates.map(|d| d as u64),
        theirs["duplicates"].as_u64(),
        "{name} duplicates"
    );
    let want_score = theirs["score"].as_f64().unwrap();
    assert!(
        (report.mean - want_score).abs() < 1e-12,
        "{name} if_eval score: reprobox {} vs reference {want_score}",
        report.mean
    );
}

/// The issue's "multiple-choice log-likelihood accuracy equals lm-eval's": lm-evaluation-harness
/// itself (HFLM, a task YAML over a local JSONL, offline; tests/fixtures/eval/lm_eval_choice.py)
/// scores every model on lm_eval_choice.jsonl; acc and acc_norm must be equal and each choice's
/// log-likelihood within 1e-4.
#[test]
fn choice_accuracy_equals_lm_eval_on_a_local_task() {
    let py = python();
    let ok = Command::new(&py)
        .args(["-c", "import lm_eval, accelerate"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import lm_eval (hint: run `REPROBOX_SETUP_SKIP_BUILD=1 scripts/setup`, which installs lm-eval[hf] from scripts/requirements.txt)",
        py.display()
    );
    let names = [
        "llama",
        "qwen2",
        "mistral",
        "mistral_window",
        "gpt2",
        "gpt_neox",
        "gpt_neox_seq",
    ];
    let data = Path::new(FIXTURES).join("lm_eval_choice.jsonl");
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(&py)
        .arg(Path::new(FIXTURES).join("lm_eval_choice.py"))
        .arg(&data)
        .args(names.iter().map(|n| models().join(n)))
        .current_dir(cwd.path())
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lm_eval_choice.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs["lm_eval_version"], "0.4.13");
    for name in names {
        let want = &theirs[name];
        let report = evaluate(
            &models().join(name),
            Method::ChoiceLoglikelihood,
            &data,
            &cpu(),
        )
        .unwrap();
        assert_eq!(report.acc, want["acc"].as_f64(), "{name} acc vs lm-eval");
        assert_eq!(
            report.acc_norm,
            want["acc_norm"].as_f64(),
            "{name} acc_norm vs lm-eval"
        );
        let rows = want["examples"].as_array().unwrap();
        assert_eq!(report.examples.len(), rows.len());
        for (got, row) in report.examples.iter().zip(rows) {
            assert_eq!(got.id, row["id"].as_str().unwrap());
            let ExampleValue::Choices(lls) = &got.value else {
                panic!("not choices")
            };
            let w = row["lls"].as_array().unwrap();
            assert_eq!(lls.len(), w.len());
            for (a, b) in lls.iter().zip(w) {
                let b = b.as_f64().unwrap();
                assert!(
                    (a - b).abs() <= 1e-4,
                    "{name} {}: reprobox {a} vs lm-eval {b}",
                    got.id
                );
            }
        }
    }
}

#[test]
fn chat_templates_render_as_transformers() {
    let want = reference(&models().join("llama"));
    for case in want["chat"].as_array().unwrap() {
        let template = ChatTemplate::new(
            case["template"].as_str().unwrap(),
            &[("bos_token", "<s>"), ("eos_token", "</s>")],
        );
        let got = template.render_json(
            case["messages_json"].as_str().unwrap(),
            case["add_generation_prompt"].as_bool().unwrap(),
        );
        match (&got, case.get("rendered"), case.get("error")) {
            (Ok(text), Some(r), None) => assert_eq!(text, r.as_str().unwrap(), "{case}"),
            (Err(e), None, Some(msg)) => {
                assert!(
                    e.to_string().contains(msg.as_str().unwrap()),
                    "{e} vs {msg}"
                )
            }
            _ => panic!("reprobox {got:?} vs transformers {case}"),
        }
    }
}

#[test]
fn word_sorting_pool_branch_matches_python_random() {
    // random.sample's pool branch: a population no larger than its set size.
    let want = reference(&models().join("llama"));
    let words = fixture_words();
    let got = word_sorting::generate(&words[..40], "7", 30).unwrap();
    assert_eq!(got, ws_rows(&want["word_sorting_pool"]));
}

#[test]
fn parity_llama_gqa_linear_rope_sharded() {
    parity("llama");
}

#[test]
fn parity_qwen2_qkv_bias_tied_embeddings() {
    parity("qwen2");
}

#[test]
fn parity_mistral() {
    parity("mistral");
}

#[test]
fn parity_mistral_sliding_window_shorter_than_the_samples() {
    parity("mistral_window");
}

#[test]
fn parity_gpt2() {
    parity("gpt2");
}

#[test]
fn parity_gpt_neox_partial_rotary_parallel_residual() {
    parity("gpt_neox");
}

#[test]
fn parity_gpt_neox_sequential_residual() {
    parity("gpt_neox_seq");
}

#[test]
fn bf16_is_close_to_fp32_but_computed_in_bf16() {
    let model = models().join("llama");
    let data = read_dataset(
        &Path::new(FIXTURES).join("text_loss.jsonl"),
        Method::TextLoss,
    )
    .unwrap();
    let fp32 = evaluate_dataset(&model, &data, &cpu()).unwrap();
    let bf16 = evaluate_dataset(
        &model,
        &data,
        &EvalOptions {
            dtype: reprobox_eval::Dtype::Bf16,
            ..cpu()
        },
    )
    .unwrap();
    // bf16 keeps ~3 significant digits (docs/references.md S§2.2): close, and not identical.
    assert_rel(bf16.mean, fp32.mean, 2e-2, "bf16 vs fp32");
    assert_ne!(bf16.mean, fp32.mean);
}

#[test]
fn unsupported_architecture_is_named_and_points_to_the_harness() {
    let src = models().join("gpt2");
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures":["FalconForCausalLM"],"model_type":"falcon"}"#,
    )
    .unwrap();
    let data = Dataset::Text(vec![reprobox_eval::TextExample {
        id: "a".into(),
        text: "hello there".into(),
    }]);
    let err = evaluate_dataset(dir.path(), &data, &cpu()).unwrap_err();
    assert!(matches!(err, EvalError::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("FalconForCausalLM") && msg.contains("harness evaluator"),
        "{msg}"
    );
}

#[test]
fn pickle_only_checkpoint_is_refused_with_a_hint() {
    let src = models().join("gpt2");
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    // Never parsed: the loader refuses on the file name alone.
    std::fs::write(dir.path().join("pytorch_model.bin"), b"\x80\x02}q\x00.").unwrap();
    let data = Dataset::Text(vec![reprobox_eval::TextExample {
        id: "a".into(),
        text: "hello there".into(),
    }]);
    let err = evaluate_dataset(dir.path(), &data, &cpu()).unwrap_err();
    assert!(matches!(err, EvalError::PickleWeights { .. }), "{err}");
    assert!(err.to_string().contains("hint"), "{err}");
}

/// The evaluator binary, as `reprobox eval` execs it (the forwarding itself is tested in the
/// reprobox package with a stand-in evaluator).
fn reprobox_eval(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reprobox-eval"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_prints_json_and_exits_0() {
    let model = models().join("gpt_neox");
    let data = Path::new(FIXTURES).join("choice.jsonl");
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "choice_loglikelihood",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "json",
        "--device",
        "cpu",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "choice_loglikelihood");
    let want = reference(&model);
    assert_eq!(v["acc"].as_f64(), want["choice_acc"].as_f64());
    assert_eq!(v["examples"].as_array().unwrap().len(), 3);
    assert_eq!(v["examples"][0]["value"].as_array().unwrap().len(), 3);
}

#[test]
fn cli_multiple_choice_and_word_sorting() {
    let model = models().join("llama");
    let want = reference(&model);
    let data = Path::new(FIXTURES).join("multiple_choice.jsonl");
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "multiple_choice",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "json",
        "--device",
        "cpu",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "multiple_choice");
    let rows = want["multiple_choice"].as_array().unwrap();
    for (ex, row) in v["examples"].as_array().unwrap().iter().zip(rows) {
        assert_eq!(ex["generated"], row["text"]);
        assert_eq!(ex["value"].as_f64(), row["value"].as_f64());
    }

    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("ws.jsonl");
    let words = Path::new(FIXTURES).join("words.txt");
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "word_sorting",
        "--seed",
        want["word_sorting_seed"].as_str().unwrap(),
        "--words",
        words.to_str().unwrap(),
        "--samples",
        "6",
        "--write-data",
        written.to_str().unwrap(),
        "--format",
        "json",
        "--device",
        "cpu",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = want["word_sorting"].as_array().unwrap();
    for (ex, row) in v["examples"].as_array().unwrap().iter().zip(rows) {
        assert_rel(
            ex["value"].as_f64().unwrap(),
            row["value"].as_f64().unwrap(),
            1e-5,
            "cli word_sorting",
        );
    }
    // The written samples are a data file of their own, scored the same.
    let data = read_dataset(&written, Method::WordSorting).unwrap();
    assert_eq!(data, Dataset::WordSorting(ws_rows(&want["word_sorting"])));

    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "word_sorting",
        "--seed",
        "0x12",
        "--words",
        words.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::UNREADABLE_INPUT)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("decimal"));
}

#[test]
fn cli_if_eval() {
    let model = models().join("qwen2");
    let want = reference(&model);
    let data = Path::new(FIXTURES).join("if_eval.jsonl");
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "if_eval",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "json",
        "--device",
        "cpu",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "if_eval");
    let rows = want["if_eval"].as_array().unwrap();
    for (ex, row) in v["examples"].as_array().unwrap().iter().zip(rows) {
        assert_eq!(ex["if_eval"]["responses"], row["responses"]);
    }
    assert!(v["duplicates"].is_u64() && v["duplicate_penalty"].is_boolean());
    let mean = v["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean), "{mean}");

    // The subnet's wall-clock limit is available, and validated.
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "if_eval",
        "--data",
        data.to_str().unwrap(),
        "--max-time",
        "0",
    ]);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::UNREADABLE_INPUT)
    );
}

#[test]
fn if_eval_max_time_stops_after_the_first_token_past_the_limit() {
    let model = models().join("llama");
    let options = GenerateOptions {
        max_new_tokens: ifeval::MAX_NEW_TOKENS,
        repetition_penalty: ifeval::REPETITION_PENALTY,
        stop_at_eos: false,
        chat: true,
        eval: EvalOptions {
            max_time: Some(std::time::Duration::from_nanos(1)),
            ..cpu()
        },
    };
    let got = generate_greedy(&model, "Is the dog lazy?", &options).unwrap();
    // As transformers' MaxTimeCriteria: checked after each new token, so one token comes out.
    assert_eq!(got.new_ids.len(), 1);
    assert_eq!(got.stopped, StopReason::Time);
}

#[test]
fn cli_bad_jsonl_line_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    std::fs::write(&data, "{\"id\":\"a\",\"text\":\"x y\"}\n{\"id\":\"b\"\n").unwrap();
    let out = reprobox_eval(&[
        dir.path().to_str().unwrap(),
        "--method",
        "text_loss",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::UNREADABLE_INPUT)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:2"), "{err}");
}

#[test]
fn cli_missing_model_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(FIXTURES).join("text_loss.jsonl");
    let out = reprobox_eval(&[
        dir.path().to_str().unwrap(),
        "--method",
        "text_loss",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::EVAL_FAILED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}

#[test]
fn cli_text_loss_layout_and_gate() {
    let model = models().join("gpt_neox_seq");
    let data = Path::new(FIXTURES).join("text_loss.jsonl");
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "text_loss",
        "--data",
        data.to_str().unwrap(),
        "--text-layout",
        "pad_to_max_length",
        "--max-length",
        "40",
        "--gate",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = reference(&model);
    assert_eq!(
        v["gate"]["passed"],
        want["gate"]["pad_to_max_length"]["passed"]
    );
    assert_eq!(
        v["text_layout"],
        serde_json::json!({"kind": "pad_to_max_length", "max_length": 40})
    );
    // The text summary says when the subnet would score inf.
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "text_loss",
        "--data",
        data.to_str().unwrap(),
        "--gate",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        want["gate"]["plain"]["passed"], false,
        "the fixture's plain gate fails"
    );
    assert!(
        text.contains("gate FAILED, the subnet's score is inf"),
        "{text}"
    );
    // The flags belong to text_loss.
    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "reference_loss",
        "--data",
        Path::new(FIXTURES)
            .join("reference_loss.jsonl")
            .to_str()
            .unwrap(),
        "--gate",
    ]);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::UNREADABLE_INPUT)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("text_loss only"));
}

#[test]
fn cli_sample_only_draws_without_a_model_and_refuses_what_it_cannot_draw() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Path::new(FIXTURES).join("multiple_choice.jsonl");
    let out_file = dir.path().join("drawn.jsonl");
    let out = reprobox_eval(&[
        "--sample-only",
        "--method",
        "multiple_choice",
        "--data",
        pool.to_str().unwrap(),
        "--seed",
        "42",
        "--samples",
        "2",
        "--write-data",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["pool"].as_u64(), v["examples"].as_u64()),
        (Some(3), Some(2)),
        "{v}"
    );
    // The written lines are the library's draw, and read back as a multiple_choice data file.
    let rows = reprobox_eval::synthetic_mmlu::read_pool(&pool).unwrap();
    let mut rng = word_sorting::PyRandom::from_decimal("42").unwrap();
    let want = reprobox_eval::synthetic_mmlu::sample(&rows, &mut rng, 2).examples;
    let Dataset::MultipleChoice(got) = read_dataset(&out_file, Method::MultipleChoice).unwrap()
    else {
        panic!("not multiple choice")
    };
    assert_eq!(got, want);

    for (args, says) in [
        (
            vec!["--method", "text_loss", "--seed", "1", "--data", "x.jsonl"],
            "reads --data only",
        ),
        (
            vec![
                "--method",
                "word_sorting",
                "--seed",
                "1",
                "--data",
                "x.jsonl",
            ],
            "not --data",
        ),
        (
            vec![
                "--method",
                "multiple_choice",
                "--seed",
                "0x1",
                "--data",
                "x.jsonl",
            ],
            "not a decimal",
        ),
        (
            vec![
                "--method",
                "multiple_choice",
                "--data",
                "x.jsonl",
                "--samples",
                "3",
            ],
            "need --seed",
        ),
    ] {
        let mut a = vec!["--sample-only", "--write-data", out_file.to_str().unwrap()];
        a.extend(args);
        let out = reprobox_eval(&a);
        assert_eq!(
            out.status.code(),
            Some(reprobox::exit_codes::UNREADABLE_INPUT),
            "{a:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{a:?}: {err}");
    }
}

/// Greedy generation in bf16, the subnet's dtype, against transformers' bf16 `generate` on the
/// same prompts: MULTIPLE_CHOICE (20 tokens, penalty 1.1) on all seven models and IF_EVAL (200
/// tokens, penalty 1.2) on six. Every generated token is compared (docs/evaluation.md, "Dtype").
#[test]
fn bf16_generation_matches_transformers_bf16() {
    let bf16 = EvalOptions {
        dtype: Dtype::Bf16,
        ..cpu()
    };
    let mc = read_dataset(
        &Path::new(FIXTURES).join("multiple_choice.jsonl"),
        Method::MultipleChoice,
    )
    .unwrap();
    let Dataset::MultipleChoice(mc_rows) = &mc else {
        panic!("not multiple choice")
    };
    let (mut sequences, mut identical, mut tokens, mut agreeing) = (0, 0, 0, 0);
    let mut report = String::new();
    for name in [
        "llama",
        "qwen2",
        "mistral",
        "mistral_window",
        "gpt2",
        "gpt_neox",
        "gpt_neox_seq",
    ] {
        let model = models().join(name);
        let want = reference(&model);
        let options = GenerateOptions {
            max_new_tokens: reprobox_eval::multiple_choice::MAX_NEW_TOKENS,
            repetition_penalty: reprobox_eval::multiple_choice::REPETITION_PENALTY,
            stop_at_eos: true,
            chat: true,
            eval: bf16.clone(),
        };
        let mut compare = |what: String, got: &[i64], want: &[i64]| {
            let prefix = got.iter().zip(want).take_while(|(a, b)| a == b).count();
            sequences += 1;
            identical += usize::from(got == want);
            tokens += want.len();
            agreeing += prefix;
            if got != want {
                report.push_str(&format!(
                    "{what}: first {prefix} of {} tokens agree\n",
                    want.len()
                ));
            }
        };
        for (ex, row) in mc_rows
            .iter()
            .zip(want["bf16"]["multiple_choice"].as_array().unwrap())
        {
            let got = generate_greedy(&model, &ex.challenge, &options).unwrap();
            compare(
                format!("{name} mc {}", ex.id),
                &got.new_ids,
                &ids(&row["new_ids"]),
            );
        }
        let Some(rows) = want["bf16"]["if_eval"].as_array() else {
            continue;
        };
        let options = GenerateOptions {
            max_new_tokens: ifeval::MAX_NEW_TOKENS,
            repetition_penalty: ifeval::REPETITION_PENALTY,
            ..options
        };
        for row in rows {
            for (prompt, new_ids) in row["prompts"]
                .as_array()
                .unwrap()
                .iter()
                .zip(row["new_ids"].as_array().unwrap())
            {
                let got = generate_greedy(&model, prompt.as_str().unwrap(), &options).unwrap();
                compare(
                    format!("{name} if_eval {}", row["id"]),
                    &got.new_ids,
                    &ids(new_ids),
                );
            }
        }
    }
    eprintln!(
        "bf16 generation: {identical} of {sequences} sequences identical, {agreeing} of {tokens} \
         tokens before the first divergence\n{report}"
    );
    assert_eq!(identical, sequences, "{report}");
}

#[test]
fn progress_is_heard_for_every_example_and_printed_on_stderr() {
    let model = models().join("llama");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let options = EvalOptions {
        batch_size: 3,
        progress: Some(reprobox_eval::Progress(std::sync::Arc::new(move |d, t| {
            s.lock().unwrap().push((d, t))
        }))),
        ..cpu()
    };
    evaluate(
        &model,
        Method::TextLoss,
        &Path::new(FIXTURES).join("text_loss.jsonl"),
        &options,
    )
    .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.last(), Some(&(4, 4)), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");

    let out = reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "reference_loss",
        "--data",
        Path::new(FIXTURES)
            .join("reference_loss.jsonl")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[eval] reference_loss"), "{err}");
}

/// A copy of the generated `gpt2` model (one `model.safetensors`) in a temporary directory.
fn gpt2_copy() -> (tempfile::TempDir, PathBuf) {
    let src = models().join("gpt2");
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("gpt2");
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    assert!(dst.join("model.safetensors").is_file());
    (t, dst)
}

fn text_loss_cli(model: &Path, data: &Path) -> std::process::Output {
    reprobox_eval(&[
        model.to_str().unwrap(),
        "--method",
        "text_loss",
        "--data",
        data.to_str().unwrap(),
        "--device",
        "cpu",
    ])
}

/// Issue 17 item 6: a damaged safetensors file is described in words (the byte or tensor and what
/// was expected), never by the safetensors crate's enum names (`HeaderTooSmall`).
#[test]
fn cli_damaged_safetensors_are_named_in_words() {
    let data = Path::new(FIXTURES).join("text_loss.jsonl");
    let (_t, model) = gpt2_copy();
    let weights = model.join("model.safetensors");
    let good = std::fs::read(&weights).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut bad_json = good.clone();
    bad_json[8] = b'[';
    let cases: [(&str, Vec<u8>, &[&str]); 4] = [
        (
            "too short",
            good[..5].to_vec(),
            &["shorter than the 8-byte header length"],
        ),
        (
            "truncated data",
            good[..good.len() - 100].to_vec(),
            &["data_offsets end", "is past the data section"],
        ),
        (
            "header past the end",
            good[..8 + header_len / 2].to_vec(),
            &["runs past the end of the", "-byte file"],
        ),
        (
            "not a JSON object",
            bad_json,
            &["header is not a JSON object"],
        ),
    ];
    for (what, bytes, wants) in cases {
        std::fs::write(&weights, &bytes).unwrap();
        let out = text_loss_cli(&model, &data);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(reprobox::exit_codes::EVAL_FAILED),
            "{what}: {err}"
        );
        assert!(err.contains("model.safetensors"), "{what}: {err}");
        for want in wants {
            assert!(err.contains(want), "{what}: no `{want}` in {err}");
        }
        assert!(
            err.contains("8-byte little-endian header length"),
            "{what}: {err}"
        );
        for name in [
            "HeaderTooSmall",
            "InvalidHeader",
            "MetadataIncompleteBuffer",
            "InvalidOffset",
        ] {
            assert!(!err.contains(name), "{what}: {err}");
        }
    }
}

/// Issue 17 item 6: a bad JSONL line names the file, the line, the column and the layout.
#[test]
fn cli_bad_jsonl_line_names_line_column_and_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"id\":\"a\",\"text\":\"x y\"}\n\n{\"id\":\"b\",\"text\" 1}\n[1]\n",
    )
    .unwrap();
    let out = text_loss_cli(dir.path(), &data);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::UNREADABLE_INPUT)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:3: not valid JSON at column")
            && err.contains(r#"the text_loss layout is {"id", "text"}"#)
            && !err.contains("at line 1 column"),
        "{err}"
    );
    std::fs::write(&data, "[1]\n").unwrap();
    let out = text_loss_cli(dir.path(), &data);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:1: not a JSON object (expected one JSON object per line"),
        "{err}"
    );
}

/// Issue 17 item 4: a model whose weights are NaN scores NaN, which is an evaluation failure
/// (exit 5) naming the example, not a score (it exited 0 with `mean NaN`).
#[test]
fn cli_a_nan_score_is_an_evaluation_failure() {
    let data = Path::new(FIXTURES).join("text_loss.jsonl");
    let (_t, model) = gpt2_copy();
    let weights = model.join("model.safetensors");
    let header = reprobox::model::header::read_header(&weights).unwrap();
    let mut bytes = std::fs::read(&weights).unwrap();
    for t in &header.tensors {
        let nan: &[u8] = match t.dtype.as_str() {
            "F32" => &[0x00, 0x00, 0xc0, 0x7f],
            "F16" => &[0x00, 0x7e],
            "BF16" => &[0xc0, 0x7f],
            _ => continue,
        };
        let at = t.offset as usize;
        for chunk in bytes[at..at + t.bytes as usize].chunks_mut(nan.len()) {
            chunk.copy_from_slice(nan);
        }
    }
    std::fs::write(&weights, &bytes).unwrap();
    let out = text_loss_cli(&model, &data);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::EVAL_FAILED),
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains("text_loss: the mean over") && err.contains("not a finite number"),
        "{err}"
    );
    assert!(
        err.contains("the first example without a finite value is"),
        "{err}"
    );
}

/// Issue 12 item 9: `--max-time 1e300` panicked converting to a `Duration`.
#[test]
fn cli_max_time_past_the_bound_is_refused_not_a_panic() {
    let data = Path::new(FIXTURES).join("if_eval.jsonl");
    let out = reprobox_eval(&[
        "/nonexistent-model",
        "--method",
        "if_eval",
        "--data",
        data.to_str().unwrap(),
        "--max-time",
        "1e300",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(reprobox::exit_codes::UNREADABLE_INPUT),
        "{err}"
    );
    assert!(
        err.contains("30 days") && !err.contains("panicked"),
        "{err}"
    );
}

/// `reprobox eval --help` (the evaluator run by `reprobox`) calls itself `reprobox eval`, the
/// verb the user typed, not the binary's file name.
#[test]
fn reprobox_eval_help_is_right_about_its_name() {
    let eval = Path::new(env!("CARGO_BIN_EXE_reprobox-eval"));
    let reprobox = eval.with_file_name("reprobox");
    assert!(
        reprobox.is_file(),
        "{} is missing: build the workspace (cargo nextest run --workspace)",
        reprobox.display()
    );
    let out = Command::new(&reprobox)
        .args(["eval", "--help"])
        .env("REPROBOX_EVAL_BIN", eval)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{help}");
    assert!(help.contains("Usage: reprobox eval "), "{help}");
    assert!(!help.contains("reprobox-eval"), "{help}");
}
