//! `reprobox check` through the binary: the compliant fixture passes, each one-defect copy of it
//! reports its finding kind with the documented exit code, malformed manifests exit 2 naming the
//! field, and secrets never appear in the output. Model rules (`--model DIR`) are tested the same
//! way with tiny model directories written here (sparse files stand in for big ones), and through
//! the library; the weight norms are compared with torch's (`REPROBOX_TEST_PYTHON`, else
//! `<repo>/.venv/bin/python`).
//!
//! Fake secrets are assembled at run time so the repository holds no secret-looking literal.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use reprobox::check::FindingKind;
use reprobox::model::{self, ModelLimits, NormLimits};

#[path = "support/fs.rs"]
mod fs_support;
use fs_support::copy_dir;

const COMPLIANT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/submissions/compliant"
);
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn reprobox(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(args)
        .env_remove("REPROBOX_INPUTS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "reprobox panicked: {stderr}");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

fn kinds_of(json: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "fixture {} lacks `{from}`",
        path.display()
    );
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut t = fs::read_to_string(path).unwrap_or_default();
    t.push_str(text);
    fs::write(path, t).unwrap();
}

fn fake_hf_token() -> String {
    ["hf", "_", &"Zq8Lm3Xr".repeat(5)].concat()
}

fn fake_wandb_key() -> String {
    "9f8e7d6c5b4a".repeat(4)[..40].to_owned()
}

fn fake_aws_key() -> String {
    ["AK", "IA", "Q3EXAMPLE7ZZTOPK"].concat()
}

/// Writes a safetensors file with zeroed data: `(name, dtype, shape)`.
fn write_safetensors(path: &Path, tensors: &[(&str, &str, &[u64])]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, dtype, shape) in tensors {
        let size = match *dtype {
            "F32" => 4,
            "BF16" | "F16" => 2,
            _ => 1,
        };
        let bytes = shape.iter().product::<u64>() * size;
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.resize(out.len() + offset as usize, 0);
    fs::write(path, out).unwrap();
}

/// A tiny Llama-shaped model with tied embeddings (lm_head saved anyway): 32·8 + 8·8 = 320
/// parameters counted, lm_head not.
fn tiny_model(dir: &Path, max_pos: u64) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("config.json"),
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
            "num_hidden_layers": 1, "vocab_size": 32, "max_position_embeddings": max_pos,
            "tie_word_embeddings": true, "_name_or_path": "openlm-research/open_llama_3b_v2"
        })
        .to_string(),
    )
    .unwrap();
    write_safetensors(
        &dir.join("model.safetensors"),
        &[
            ("model.embed_tokens.weight", "BF16", &[32, 8]),
            ("model.layers.0.self_attn.q_proj.weight", "BF16", &[8, 8]),
            ("lm_head.weight", "BF16", &[32, 8]),
        ],
    );
}

fn fake_private_key() -> String {
    let armor = ["-----", "BEGIN RSA ", "PRIVATE KEY", "-----"].concat();
    format!(
        "{armor}\n{}\n{}\n",
        "MIIEowIBAAKCAQEA7s2k".repeat(3),
        armor.replace("BEGIN", "END")
    )
}

/// The six projections the subnet-37 weight-norm rule reads in each layer (policy
/// `model.weight_norm.tensors`).
const PROJECTIONS: [&str; 6] = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
];

/// Writes a safetensors file from raw little-endian data: `(name, dtype, shape, bytes)`.
fn write_raw_safetensors(path: &Path, tensors: &[(String, &str, Vec<u64>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [data.len(), data.len() + bytes.len()]}),
        );
        data.extend_from_slice(bytes);
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    fs::write(path, out).unwrap();
}

/// Writes a safetensors file whose one U8 tensor of `elements` bytes is a hole: the file is
/// `elements` bytes long on paper and almost nothing on disk.
fn write_sparse_safetensors(path: &Path, name: &str, elements: u64) {
    let h = serde_json::to_vec(&serde_json::json!({
        name: {"dtype": "U8", "shape": [elements], "data_offsets": [0, elements]}
    }))
    .unwrap();
    let mut f = fs::File::create(path).unwrap();
    f.write_all(&(h.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&h).unwrap();
    f.set_len(8 + h.len() as u64 + elements).unwrap();
}

/// A one-layer Llama model as subnet 37 checks it: the six projections, 8x8 F32 each, q_proj
/// filled with `q_value` (Frobenius norm 8·q_value), the others with 1.0 (norm 8).
fn sn37_model(dir: &Path, max_pos: u64, q_value: f32) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("config.json"),
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
            "num_hidden_layers": 1, "vocab_size": 32, "max_position_embeddings": max_pos,
            "tie_word_embeddings": false
        })
        .to_string(),
    )
    .unwrap();
    let tensors: Vec<(String, &str, Vec<u64>, Vec<u8>)> = PROJECTIONS
        .iter()
        .map(|p| {
            let v: f32 = if p.contains("q_proj") { q_value } else { 1.0 };
            (
                format!("model.layers.0.{p}"),
                "F32",
                vec![8, 8],
                v.to_le_bytes().repeat(64),
            )
        })
        .collect();
    write_raw_safetensors(&dir.join("model.safetensors"), &tensors);
}

/// Switches the compliant fixture to a subnet-37 policy (track `default`), claiming its tasks,
/// without a base model.
fn to_sn37(p: &Path, policy: &str) {
    let claims = match policy {
        "sn37-distilled-reasoning-3b" => "SYNTHETIC_1_SFT = 0.9, CODEFORCES_COTS = 1.1",
        _ => "SYNTHETIC_MMLU = 0.4, WORD_SORTING = 3.1, FINEWEB = 2.5, IF_EVAL_V2 = 0.3",
    };
    let m = p.join("reprobox.toml");
    // Subnet 37 mandates no base model (`base_model.required = false`) and lists no licenses.
    let text = fs::read_to_string(&m).unwrap();
    let (start, end) = (
        text.find("[base_model]").unwrap(),
        text.find("[[datasets]]").unwrap(),
    );
    fs::write(&m, format!("{}{}", &text[..start], &text[end..])).unwrap();
    edit(&m, "neurips-2023-llm-efficiency", policy);
    edit(&m, "track = \"a100-40gb\"", "track = \"default\"");
    edit(
        &m,
        "bigbench = 0.41, mmlu = 0.512, truthful_qa = 0.38, summarization_cnndm = 0.11, gsm = 0.2, bbq = 0.6",
        claims,
    );
}

type Mutation = fn(&Path);

/// One defect per row: (name, mutation, extra args, expected exit, expected kind).
fn table() -> Vec<(&'static str, Mutation, Vec<String>, i32, &'static str)> {
    fn m(p: &Path) -> PathBuf {
        p.join("reprobox.toml")
    }
    fn d(p: &Path) -> PathBuf {
        p.join("Dockerfile")
    }
    vec![
        (
            "hf token in ENV",
            |p| {
                append(
                    &d(p),
                    &format!("ENV HUGGINGFACE_TOKEN=\"{}\"\n", fake_hf_token()),
                )
            },
            vec![],
            3,
            "secret_in_context",
        ),
        (
            "wandb key in a script",
            |p| {
                fs::write(
                    p.join("env.sh"),
                    format!("export WANDB_API_KEY={}\n", fake_wandb_key()),
                )
                .unwrap()
            },
            vec![],
            3,
            "secret_in_context",
        ),
        (
            "aws key in config",
            |p| fs::write(p.join("aws.cfg"), format!("key = {}\n", fake_aws_key())).unwrap(),
            vec![],
            3,
            "secret_in_context",
        ),
        (
            "netrc",
            |p| fs::write(p.join(".netrc"), "machine api.wandb.ai\n").unwrap(),
            vec![],
            3,
            "secret_in_context",
        ),
        (
            "denied dataset",
            |p| edit(&m(p), "databricks/databricks-dolly-15k", "tatsu-lab/alpaca"),
            vec![],
            3,
            "denied_dataset",
        ),
        (
            "unknown dataset (warning)",
            |p| {
                edit(
                    &m(p),
                    "databricks/databricks-dolly-15k",
                    "someone/homemade-open-set",
                )
            },
            vec![],
            0,
            "unknown_dataset",
        ),
        (
            "dataset license not open",
            |p| edit(&m(p), "cc-by-sa-3.0", "cc-by-nc-4.0"),
            vec![],
            3,
            "license_not_allowed",
        ),
        (
            "base license",
            |p| edit(&m(p), "license = \"apache-2.0\"", "license = \"gpl-3.0\""),
            vec![],
            3,
            "license_not_allowed",
        ),
        (
            "unapproved base",
            |p| edit(&m(p), "openlm-research/open_llama_3b_v2", "gpt2"),
            vec![],
            3,
            "unapproved_base_model",
        ),
        (
            "instruction-tuned base id",
            |p| {
                edit(
                    &m(p),
                    "openlm-research/open_llama_3b_v2",
                    "mistralai/Mistral-7B-Instruct-v0.2",
                )
            },
            vec![],
            3,
            "instruction_tuned_base",
        ),
        (
            "unknown track",
            |p| edit(&m(p), "a100-40gb", "h100-80gb"),
            vec![],
            3,
            "unknown_track",
        ),
        (
            "unknown policy",
            |p| edit(&m(p), "neurips-2023-llm-efficiency", "kaggle-2031"),
            vec![],
            3,
            "unknown_policy",
        ),
        (
            "missing digest",
            |p| {
                edit(
                    &m(p),
                    "digest = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n",
                    "",
                )
            },
            vec![],
            3,
            "missing_digest",
        ),
        (
            "base revision is a branch",
            |p| edit(&m(p), "bce5d60d3b0c68318862270ec4e794d83308d80a", "main"),
            vec![],
            3,
            "unpinned_download",
        ),
        (
            "unpinned base image",
            |p| {
                edit(
                    &d(p),
                    "python:3.11-slim@sha256:3333333333333333333333333333333333333333333333333333333333333333",
                    "python:3.11-slim",
                )
            },
            vec![],
            3,
            "unpinned_base_image",
        ),
        (
            "pip -U",
            |p| {
                append(
                    &d(p),
                    "RUN pip install -U git+https://github.com/huggingface/peft.git\n",
                )
            },
            vec![],
            3,
            "unpinned_dependency",
        ),
        (
            "unpinned requirement",
            |p| append(&p.join("requirements.txt"), "accelerate>=0.20\n"),
            vec![],
            3,
            "unpinned_dependency",
        ),
        (
            "hf download without revision",
            |p| {
                append(
                    &d(p),
                    "RUN huggingface-cli download mistralai/Mistral-7B-v0.1 \\\n    --local-dir /w\n",
                )
            },
            vec![],
            3,
            "unpinned_download",
        ),
        (
            "git clone at HEAD",
            |p| append(&d(p), "RUN git clone https://github.com/x/fork.git\n"),
            vec![],
            3,
            "unpinned_download",
        ),
        (
            "google drive",
            |p| append(&d(p), "RUN gdown 1AbCdEfGh\n"),
            vec![],
            3,
            "unpinned_download",
        ),
        (
            "ADD url",
            |p| append(&d(p), "ADD https://example.com/data.tar /data.tar\n"),
            vec![],
            3,
            "remote_add",
        ),
        (
            "undeclared data",
            |p| fs::write(p.join("data/extra.jsonl"), vec![b'x'; 2 * 1024 * 1024]).unwrap(),
            vec![],
            3,
            "undeclared_data",
        ),
        (
            "undeclared weights",
            |p| fs::write(p.join("adapter.safetensors"), vec![0u8; 2 * 1024 * 1024]).unwrap(),
            vec![],
            3,
            "undeclared_data",
        ),
        (
            "symlink escape",
            |p| std::os::unix::fs::symlink("/etc/passwd", p.join("passwd")).unwrap(),
            vec![],
            3,
            "symlink_escape",
        ),
        (
            "manifest path through an escaping symlink",
            |p| {
                std::os::unix::fs::symlink("/etc", p.join("etc")).unwrap();
                edit(
                    &m(p),
                    "dockerfile = \"Dockerfile\"",
                    "dockerfile = \"etc/hostname\"",
                );
            },
            vec![],
            3,
            "path_escape",
        ),
        (
            "dockerfile is a directory (issue 15)",
            |p| {
                fs::create_dir(p.join("Dockerfile.d")).unwrap();
                edit(
                    &m(p),
                    "dockerfile = \"Dockerfile\"",
                    "dockerfile = \"Dockerfile.d\"",
                );
            },
            vec![],
            3,
            "dockerfile_syntax",
        ),
        (
            "binary dockerfile (issue 15)",
            |p| fs::write(p.join("Dockerfile"), b"FROM scratch\n\x00\xff\xfe").unwrap(),
            vec![],
            3,
            "dockerfile_syntax",
        ),
        (
            "instruction the builder rejects (issue 15)",
            |p| append(&d(p), "COPY train.py\n"),
            vec![],
            3,
            "dockerfile_syntax",
        ),
        (
            "build step fetches under build network none (issue 15)",
            |p| append(&d(p), "RUN apt-get install -y git=1:2.39.2-1.1\n"),
            vec![],
            3,
            "build_network",
        ),
        (
            "requirements file with another name on the build path (issue 15)",
            |p| {
                fs::write(p.join("reqs-gpu.txt"), "flash-attn\n").unwrap();
                append(
                    &d(p),
                    "COPY reqs-gpu.txt .\nRUN pip install --no-index --find-links /opt/wheels -r reqs-gpu.txt\n",
                );
            },
            vec![],
            3,
            "unpinned_dependency",
        ),
        (
            "undeclared hub id in training code (issue 15)",
            |p| {
                append(
                    &p.join("train.py"),
                    "\nfrom transformers import AutoModel\nAutoModel.from_pretrained(\"mistralai/Mistral-7B-v0.1\")\n",
                )
            },
            vec![],
            3,
            "runtime_download",
        ),
        (
            "image runs nothing that trains (issue 15)",
            |p| {
                edit(&m(p), "command = [\"python3\", \"train.py\"]\n", "");
                edit(
                    &d(p),
                    "CMD [\"python3\", \"train.py\"]",
                    "CMD [\"sleep\", \"infinity\"]",
                );
            },
            vec![],
            3,
            "no_training_entry",
        ),
        (
            "missing dockerfile",
            |p| {
                edit(
                    &m(p),
                    "dockerfile = \"Dockerfile\"",
                    "dockerfile = \"Dockerfile.train\"",
                )
            },
            vec![],
            3,
            "missing_file",
        ),
        (
            "junk (warning)",
            |p| {
                fs::write(p.join(".DS_Store"), b"\0\0\0\x01Bud1").unwrap();
                fs::create_dir(p.join("__pycache__")).unwrap();
                fs::write(p.join("__pycache__/train.cpython-311.pyc"), b"\x0d\x0d").unwrap();
            },
            vec![],
            0,
            "junk_file",
        ),
        (
            "unknown task",
            |p| edit(&m(p), "bbq = 0.6", "bbq = 0.6, hellaswag = 0.7"),
            vec![],
            3,
            "unknown_task",
        ),
        (
            "missing claim (warning)",
            |p| edit(&m(p), ", bbq = 0.6", ""),
            vec![],
            0,
            "missing_claim",
        ),
        (
            "submitted model holds a pickle",
            |p| {
                tiny_model(&p.join("submitted-model"), 4096);
                fs::write(
                    p.join("submitted-model/pytorch_model.bin"),
                    vec![0x80u8; 2 * 1024 * 1024],
                )
                .unwrap();
                edit(
                    &m(p),
                    "[claims]\n",
                    "[claims]\nsubmitted_model = \"submitted-model\"\n",
                );
            },
            vec![],
            3,
            "pickle_checkpoint",
        ),
        (
            "--model with a chat template",
            |p| {
                tiny_model(&p.join("../model"), 4096);
                fs::write(
                    p.join("../model/tokenizer_config.json"),
                    r#"{"chat_template": "{{ m }}"}"#,
                )
                .unwrap();
            },
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "instruction_tuned_base",
        ),
        (
            "--model with a short context",
            |p| tiny_model(&p.join("../model"), 1024),
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "sequence_length_too_short",
        ),
        (
            "--model with a hostile header",
            |p| {
                tiny_model(&p.join("../model"), 4096);
                let mut bytes = u64::MAX.to_le_bytes().to_vec();
                bytes.extend_from_slice(b"{}");
                fs::write(p.join("../model/model.safetensors"), bytes).unwrap();
            },
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "model_unreadable",
        ),
        (
            "private key block",
            |p| fs::write(p.join("deploy_key.pem"), fake_private_key()).unwrap(),
            vec![],
            3,
            "secret_in_context",
        ),
        (
            "curl download in RUN",
            |p| {
                append(
                    &d(p),
                    "RUN curl -fsSL https://example.com/weights.tar -o /w.tar\n",
                )
            },
            vec![],
            3,
            "unpinned_download",
        ),
        (
            "wget download in RUN",
            |p| append(&d(p), "RUN wget -q https://example.com/data.jsonl\n"),
            vec![],
            3,
            "unpinned_download",
        ),
        (
            "__MACOSX (warning)",
            |p| {
                fs::create_dir(p.join("__MACOSX")).unwrap();
                fs::write(p.join("__MACOSX/._train.py"), b"\0\x05\x16\x07").unwrap();
            },
            vec![],
            0,
            "junk_file",
        ),
        (
            "--model architecture not in the sn37 list",
            |p| {
                to_sn37(p, "sn37-b7-multichoice");
                sn37_model(&p.join("../model"), 4096, 1.0);
                edit(
                    &p.join("../model/config.json"),
                    "LlamaForCausalLM",
                    "GPT2LMHeadModel",
                );
            },
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "architecture_not_allowed",
        ),
        (
            "--model above sn37's 6.9B parameters",
            |p| {
                to_sn37(p, "sn37-b7-multichoice");
                sn37_model(&p.join("../model"), 4096, 1.0);
                write_sparse_safetensors(
                    &p.join("../model/embeddings.safetensors"),
                    "model.embed_tokens.weight",
                    6_900_000_000,
                );
            },
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "too_many_parameters",
        ),
        (
            "--model below sn37 3B's 3.2B parameters",
            |p| {
                to_sn37(p, "sn37-distilled-reasoning-3b");
                sn37_model(&p.join("../model"), 16384, 1.0);
            },
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "too_few_parameters",
        ),
        (
            "--model above sn37's 15 GiB",
            |p| {
                to_sn37(p, "sn37-b7-multichoice");
                sn37_model(&p.join("../model"), 4096, 1.0);
                let f = fs::File::create(p.join("../model/optimizer_state.npy")).unwrap();
                f.set_len(15 * 1024 * 1024 * 1024 + 1).unwrap();
            },
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "model_too_large",
        ),
        (
            "--model with a projection norm above 1000",
            |p| {
                to_sn37(p, "sn37-b7-multichoice");
                // q_proj: 8x8 of 150.0, Frobenius norm 1200.
                sn37_model(&p.join("../model"), 4096, 150.0);
            },
            vec!["--model".into(), "{dir}/../model".into()],
            3,
            "weight_norm_exceeded",
        ),
        (
            "base model in the mirror is a chat model",
            |p| {
                let base = p.join("../mirror/models/openlm-research/open_llama_3b_v2/bce5d60d3b0c68318862270ec4e794d83308d80a");
                tiny_model(&base, 2048);
                fs::write(
                    base.join("tokenizer_config.json"),
                    r#"{"chat_template": "x"}"#,
                )
                .unwrap();
            },
            vec!["--inputs".into(), "{dir}/../mirror".into()],
            3,
            "instruction_tuned_base",
        ),
    ]
}

#[test]
fn compliant_fixture_passes_with_no_findings() {
    let out = reprobox(&["check", COMPLIANT, "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(kinds_of(&out.stdout).is_empty(), "{}", out.stdout);
    let text = reprobox(&["check", COMPLIANT]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("compliant: 0 error(s), 0 warning(s)"),
        "{}",
        text.stdout
    );
}

#[test]
fn each_defect_reports_its_kind() {
    let mut failures = Vec::new();
    for (name, mutate, extra, want_code, want_kind) in table() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sub");
        copy_dir(Path::new(COMPLIANT), &dir);
        mutate(&dir);
        let dir_s = dir.display().to_string();
        let extra: Vec<String> = extra.iter().map(|a| a.replace("{dir}", &dir_s)).collect();
        let mut args = vec!["check", dir_s.as_str(), "--format", "json"];
        args.extend(extra.iter().map(String::as_str));
        let out = reprobox(&args);
        let kinds = if out.stdout.trim_start().starts_with('{') {
            kinds_of(&out.stdout)
        } else {
            vec![]
        };
        if out.code != want_code || !kinds.iter().any(|k| k == want_kind) {
            failures.push(format!(
                "{name}: exit {} (want {want_code}), kinds {kinds:?} (want {want_kind})\n{}",
                out.code, out.stderr
            ));
        }
        // Secrets are reported, never echoed.
        for secret in [
            fake_hf_token(),
            fake_wandb_key(),
            fake_aws_key(),
            "MIIEowIBAAKCAQEA7s2k".to_owned(),
        ] {
            assert!(
                !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
                "{name}: output echoes a secret"
            );
        }
        // The text form agrees on the exit code and names the kind.
        let mut targs = vec!["check", dir_s.as_str()];
        targs.extend(extra.iter().map(String::as_str));
        let text = reprobox(&targs);
        assert_eq!(
            text.code, out.code,
            "{name}: text and json exit codes differ"
        );
        assert!(
            text.stdout.contains(&format!("[{want_kind}]")) || out.code != want_code,
            "{name}: text lacks [{want_kind}]:\n{}",
            text.stdout
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue 15: dependency files no build step uses are listed in one `info` finding and not
/// linted; `info` never makes `check` exit 3.
#[test]
fn unused_dependency_files_are_one_info_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sub");
    copy_dir(Path::new(COMPLIANT), &dir);
    fs::write(dir.join("requirements-old.txt"), "torch\ntransformers>=4\n").unwrap();
    fs::create_dir(dir.join("legacy")).unwrap();
    fs::write(
        dir.join("legacy/environment.yml"),
        "dependencies:\n  - pytorch\n",
    )
    .unwrap();
    let out = reprobox(&["check", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{}", out.stdout);
    assert_eq!(findings[0]["kind"], "unused_dependency_file");
    assert_eq!(findings[0]["severity"], "info");
    let msg = findings[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("legacy/environment.yml") && msg.contains("requirements-old.txt"),
        "{msg}"
    );
    assert_eq!(v["counts"]["info"], 1);
    assert_eq!(v["compliant"], true);
    let text = reprobox(&["check", dir.to_str().unwrap()]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("info [unused_dependency_file]"),
        "{}",
        text.stdout
    );
}

#[test]
fn findings_point_at_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sub");
    copy_dir(Path::new(COMPLIANT), &dir);
    edit(&dir.join("reprobox.toml"), "a100-40gb", "h100");
    append(
        &dir.join("Dockerfile"),
        "RUN echo a \\\n    && pip install \\\n      torch\n",
    );
    let out = reprobox(&["check", dir.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let find = |kind: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .cloned()
            .unwrap()
    };
    let track = find("unknown_track");
    assert_eq!(track["path"], "reprobox.toml");
    assert_eq!(track["line"], 8);
    let pip = find("unpinned_dependency");
    assert_eq!(pip["path"], "Dockerfile");
    // The Dockerfile has 12 lines; `torch` is on the third appended line.
    assert_eq!(pip["line"], 15);
    // The appended `pip install` also needs the network, which the policy's build does not have.
    let net = find("build_network");
    assert_eq!(net["line"], 14);
    assert_eq!(net["severity"], "error");
    assert!(v["elapsed_ms"].is_u64());
    assert_eq!(v["counts"]["errors"], 3);
}

#[test]
fn unreadable_input_exits_2_naming_the_field() {
    let missing = reprobox(&["check", "/nonexistent/submission"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("/nonexistent/submission"),
        "{}",
        missing.stderr
    );

    let cases: [(&str, &str, &str); 3] = [
        (
            "team = \"lora-lions\"",
            "team = \"lora-lions\"\ncolour = \"red\"",
            "colour",
        ),
        ("seed = 1234", "seed = \"many\"", "seed"),
        ("[claims]", "[claims", "reprobox.toml"),
    ];
    for (from, to, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sub");
        copy_dir(Path::new(COMPLIANT), &dir);
        edit(&dir.join("reprobox.toml"), from, to);
        let out = reprobox(&["check", dir.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{to}: {}", out.stderr);
        assert!(
            out.stderr.contains(want),
            "{to}: stderr should name {want}: {}",
            out.stderr
        );
        let json = reprobox(&["check", dir.to_str().unwrap(), "--format", "json"]);
        assert_eq!(json.code, 2);
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert!(v["error"].as_str().unwrap().contains(want));
    }
}

#[test]
fn policy_size_limits_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let policies = tmp.path().join("policies");
    copy_dir(Path::new(POLICIES), &policies);
    append(
        &policies.join("neurips-2023-llm-efficiency.toml"),
        "\n[submission]\nmax_file_bytes = \"1KiB\"\nmax_context_bytes = \"2KiB\"\n",
    );
    let dir = tmp.path().join("sub");
    copy_dir(Path::new(COMPLIANT), &dir);
    fs::write(dir.join("notes.md"), vec![b'n'; 1500]).unwrap();
    let out = reprobox(&[
        "check",
        dir.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    let kinds = kinds_of(&out.stdout);
    assert!(kinds.contains(&"file_too_large".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"context_too_large".to_owned()), "{kinds:?}");
}

#[test]
fn sn37_model_within_limits_is_compliant() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sub");
    copy_dir(Path::new(COMPLIANT), &dir);
    to_sn37(&dir, "sn37-b7-multichoice");
    let model = tmp.path().join("model");
    // Every projection norm 8 (q_proj 8x8 of 1.0), far under the soft limit of 200.
    sn37_model(&model, 4096, 1.0);
    let (d, m) = (dir.to_str().unwrap(), model.to_str().unwrap());
    let out = reprobox(&["check", d, "--model", m, "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(kinds_of(&out.stdout).is_empty(), "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let norms = &v["models"][0]["weight_norms"];
    assert_eq!(norms["tensors"], 6, "{norms}");
    assert_eq!(norms["max_norm"], 8.0, "{norms}");
    assert_eq!(norms["soft_fraction"], 0.0, "{norms}");
    assert_eq!(norms["bfloat16"], true, "{norms}");
    let text = reprobox(&["check", d, "--model", m]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("weight norms: 6 tensors in 1 layers"),
        "{}",
        text.stdout
    );
}

/// The venv python that holds torch, for reference norms.
fn python() -> PathBuf {
    let p = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python not found at {} (hint: run `scripts/setup`, or set REPROBOX_TEST_PYTHON)",
        p.display()
    );
    p
}

/// Reads every tensor of a safetensors file with torch and prints, per tensor, the norm the
/// subnet-37 validator sees (`w.to(torch.bfloat16).norm().item()`, after loading with
/// `torch_dtype=bfloat16`) and the exact norm in float64.
const TORCH_NORMS: &str = r#"
import json, struct, sys, torch
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
out = {}
for k, v in h.items():
    s, e = v["data_offsets"]
    t = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=dt[v["dtype"]]).reshape(v["shape"])
    out[k] = [t.to(torch.bfloat16).norm().item(), t.double().norm().item()]
print(json.dumps(out))
"#;

#[test]
fn weight_norms_match_torch() {
    // Random weights (xorshift64), two layers, every projection, in F32, F16 and BF16, at
    // scales around the soft and hard limits.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut tensors = Vec::new();
    for layer in 0..2 {
        for (i, p) in PROJECTIONS.iter().enumerate() {
            let dtype = ["F32", "F16", "BF16"][(layer * 6 + i) % 3];
            let mut bytes = Vec::new();
            for _ in 0..48 * 32 {
                let r = next();
                let sign = if r & 1 == 1 { -1.0f32 } else { 1.0 };
                // Magnitudes up to 2^(i+1): norms from about 30 to about 2000.
                let x = sign * ((r >> 11) as f32 / (1u64 << 53) as f32) * (1u32 << (i + 1)) as f32;
                match dtype {
                    "F32" => bytes.extend_from_slice(&x.to_le_bytes()),
                    // Truncated to bfloat16 bits; any bfloat16 value is a valid input.
                    "BF16" => bytes.extend_from_slice(&((x.to_bits() >> 16) as u16).to_le_bytes()),
                    // Half precision: sign, exponent 10..=19 (2^-5..2^4), random mantissa.
                    _ => {
                        let h = ((r as u16 & 1) << 15)
                            | (((10 + (r >> 1) % 10) as u16) << 10)
                            | ((r >> 8) as u16 & 0x3ff);
                        bytes.extend_from_slice(&h.to_le_bytes());
                    }
                }
            }
            tensors.push((
                format!("model.layers.{layer}.{p}"),
                dtype,
                vec![48, 32],
                bytes,
            ));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model.safetensors");
    write_raw_safetensors(&file, &tensors);

    let out = Command::new(python())
        .args(["-c", TORCH_NORMS])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "torch reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let limits = |bfloat16| NormLimits {
        hard_max: 1000.0,
        soft_max: 200.0,
        soft_fraction_max: 0.15,
        tensors: PROJECTIONS.iter().map(|p| (*p).to_owned()).collect(),
        bfloat16,
    };
    let bf = model::weight_norms(tmp.path(), &limits(true)).unwrap();
    let exact = model::weight_norms(tmp.path(), &limits(false)).unwrap();
    assert_eq!(bf.norms.len(), 12);
    for (b, e) in bf.norms.iter().zip(&exact.norms) {
        let w = &want[&b.name];
        let (torch_bf, torch_exact) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
        // torch sums the squares in float32 and reprobox in float64; both round the result to
        // bfloat16, so they agree unless the float32 sum lands on the other side of a rounding
        // boundary: at most one bfloat16 step (2^-7 relative) apart.
        assert!(
            (b.norm - torch_bf).abs() <= torch_bf * 2f64.powi(-7),
            "{}: reprobox {} torch {torch_bf}",
            b.name,
            b.norm
        );
        assert!(
            (e.norm - torch_exact).abs() <= torch_exact * 1e-12,
            "{}: reprobox {} torch {torch_exact}",
            e.name,
            e.norm
        );
    }
    // Both verdicts agree with torch's numbers too.
    let torch_above_hard = bf
        .norms
        .iter()
        .filter(|n| want[&n.name][0].as_f64().unwrap() > 1000.0)
        .count();
    assert_eq!(bf.above_hard(&limits(true)).len(), torch_above_hard);
}

#[test]
fn model_inspection_counts_and_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    tiny_model(&dir, 2048);
    let facts = model::inspect(&dir).unwrap();
    assert_eq!(facts.parameters, 32 * 8 + 8 * 8);
    assert_eq!(facts.tied_tensor_skipped.as_deref(), Some("lm_head.weight"));
    assert_eq!(facts.tensors, 3);
    assert_eq!(facts.dtypes["BF16"], 3);
    assert_eq!(facts.architectures, vec!["LlamaForCausalLM"]);
    assert_eq!(facts.max_position_embeddings, Some(2048));

    let limits = ModelLimits {
        architectures: vec!["MistralForCausalLM".into()],
        min_parameters: Some(1000),
        max_parameters: Some(100),
        max_bytes: Some(10),
        min_sequence_length: Some(2048),
        allow_instruction_tuned: false,
        weight_norm: None,
    };
    let kinds: Vec<FindingKind> = model::check_model(&facts, &limits, "m")
        .into_iter()
        .map(|f| f.kind)
        .collect();
    for k in [
        FindingKind::ArchitectureNotAllowed,
        FindingKind::TooManyParameters,
        FindingKind::TooFewParameters,
        FindingKind::ModelTooLarge,
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }

    // Sharded: two files and an index; every tensor counted once.
    let sharded = tmp.path().join("s");
    fs::create_dir_all(&sharded).unwrap();
    fs::copy(dir.join("config.json"), sharded.join("config.json")).unwrap();
    write_safetensors(
        &sharded.join("model-00001-of-00002.safetensors"),
        &[("a", "F32", &[4, 4])],
    );
    write_safetensors(
        &sharded.join("model-00002-of-00002.safetensors"),
        &[("b", "F16", &[3])],
    );
    fs::write(
        sharded.join("model.safetensors.index.json"),
        r#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let f = model::inspect(&sharded).unwrap();
    assert_eq!((f.parameters, f.tensors, f.weight_bytes), (19, 2, 64 + 6));

    // An index naming a shard outside the directory is refused.
    fs::write(
        sharded.join("model.safetensors.index.json"),
        r#"{"weight_map":{"a":"../x.safetensors"}}"#,
    )
    .unwrap();
    assert!(model::inspect(&sharded).is_err());
}

#[test]
fn check_is_fast_on_a_normal_submission() {
    // 2,000 small source files and one 64 MiB declared-data-sized blob outside the threshold list.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sub");
    copy_dir(Path::new(COMPLIANT), &dir);
    for i in 0..20 {
        let sub = dir.join(format!("pkg{i}"));
        fs::create_dir(&sub).unwrap();
        for j in 0..100 {
            fs::write(
                sub.join(format!("m{j}.py")),
                "def f(x):\n    return x + 1\n".repeat(20),
            )
            .unwrap();
        }
    }
    let out = reprobox(&["check", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ms = v["elapsed_ms"].as_u64().unwrap();
    assert_eq!(v["files_scanned"], 2005);
    assert!(ms < 1000, "check took {ms} ms on 2,005 files");
}

mod never_panics {
    use proptest::prelude::*;
    use reprobox::check::{dockerfile, python, secrets};
    use reprobox::model::header::parse_header;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn dockerfile_lint(text in "(FROM|RUN|ADD|ARG|#|pip|install|-U|git|clone|curl|hf|download|\\\\|\n| |\"|'|\\(|\\)|=|@|sha256:|[a-z0-9]{1,8}){0,60}") {
            let _ = dockerfile::lint_dockerfile(&text, "Dockerfile");
            let _ = dockerfile::lint_requirements(&text, "requirements.txt");
        }

        #[test]
        fn python_scan(src in "(import|from|def|class|\\(|\\)|\\[|\\]|\\{|\\}|,|=|:|\\.|'|\"|#|\\\\|\n| |r|f|b|[a-z_]{1,6}|[0-9]{1,3}|from_pretrained|add_argument|default|field){0,80}") {
            let _ = python::facts(&src);
        }

        #[test]
        fn python_scan_unicode(src in "\\PC{0,200}") {
            let _ = python::facts(&src);
            let _ = dockerfile::lint_dockerfile(&src, "Dockerfile");
        }

        #[test]
        fn secret_scan(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = secrets::scan_bytes(&bytes, "f", ".netrc");
        }

        #[test]
        fn safetensors_header(json in "\\{(\"[a-z]\":\\{\"dtype\":\"(F32|BF16|X)\",\"shape\":\\[[0-9]{0,3}(,[0-9]{1,20})?\\],\"data_offsets\":\\[[0-9]{1,20},[0-9]{1,20}\\]\\},?){0,3}\\}", data in 0u64..64) {
            let _ = parse_header(json.as_bytes(), data, data + 8 + json.len() as u64);
        }
    }
}

/// Secrets hide in archives and notebook checkpoints, and datasets in `.json` files: each is
/// found, a zip bomb is a finding (not a hang), and no secret is echoed.
#[test]
fn archives_checkpoints_and_json_records_are_read() {
    let secret = format!("HF_TOKEN={}\n", fake_hf_token());
    type Mutate<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Mutate, &str, i32)> = vec![
        (
            "secret in a zip member",
            Box::new(|p: &Path| {
                let mut z = zip::ZipWriter::new(fs::File::create(p.join("extras.zip")).unwrap());
                z.start_file("conf/.env", zip::write::FileOptions::default())
                    .unwrap();
                z.write_all(secret.as_bytes()).unwrap();
                z.finish().unwrap();
            }),
            "secret_in_context",
            3,
        ),
        (
            "secret in a tar.gz member",
            Box::new(|p: &Path| {
                let gz = flate2::write::GzEncoder::new(
                    fs::File::create(p.join("extras.tar.gz")).unwrap(),
                    flate2::Compression::default(),
                );
                let mut b = tar::Builder::new(gz);
                let mut h = tar::Header::new_gnu();
                h.set_size(secret.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, "conf/.env", secret.as_bytes())
                    .unwrap();
                b.into_inner().unwrap().finish().unwrap();
            }),
            "secret_in_context",
            3,
        ),
        (
            "secret in a notebook checkpoint",
            Box::new(|p: &Path| {
                fs::create_dir_all(p.join(".ipynb_checkpoints")).unwrap();
                fs::write(
                    p.join(".ipynb_checkpoints/train-checkpoint.ipynb"),
                    format!("{{\"source\": [\"{}\"]}}", secret.trim()),
                )
                .unwrap();
            }),
            "secret_in_context",
            3,
        ),
        (
            "zip bomb",
            Box::new(|p: &Path| {
                let mut z = zip::ZipWriter::new(fs::File::create(p.join("weights.zip")).unwrap());
                let opts = zip::write::FileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated);
                z.start_file("zeros.bin", opts).unwrap();
                let mb = vec![0u8; 1024 * 1024];
                for _ in 0..64 {
                    z.write_all(&mb).unwrap();
                }
                z.finish().unwrap();
            }),
            "archive_bomb",
            3,
        ),
        (
            "dataset as a json array",
            Box::new(|p: &Path| {
                let rows: Vec<String> = (0..40_000)
                    .map(|i| format!("{{\"instruction\": \"q{i}\", \"output\": \"a{i}\"}}"))
                    .collect();
                fs::write(p.join("train_data.json"), format!("[{}]", rows.join(",\n"))).unwrap();
            }),
            "undeclared_data",
            3,
        ),
    ];
    for (name, mutate, want_kind, want_code) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sub");
        copy_dir(Path::new(COMPLIANT), &dir);
        mutate(&dir);
        let out = reprobox(&["check", &dir.display().to_string(), "--format", "json"]);
        assert_eq!(out.code, want_code, "{name}: {}{}", out.stdout, out.stderr);
        let kinds = kinds_of(&out.stdout);
        assert!(kinds.iter().any(|k| k == want_kind), "{name}: {kinds:?}");
        assert!(
            !out.stdout.contains(&fake_hf_token()),
            "{name}: echoes the secret"
        );
    }
}
