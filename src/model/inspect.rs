//! Facts about a Hugging Face model directory, from `config.json`, `tokenizer_config.json` and the
//! safetensors headers only: no tensor data is read and no pickle is opened.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ModelError;
use super::header::read_header;

/// What `inspect` learned about a model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// `config.json` `architectures`, e.g. `["LlamaForCausalLM"]`.
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    /// Parameters as `sum(p.numel() for p in model.parameters())` counts them: every tensor
    /// once, and a saved `lm_head.weight` not counted when embeddings are tied
    /// (docs/references.md S§1.1).
    pub parameters: u64,
    /// Bytes of every regular file in the directory (recursively), as a repository size limit
    /// counts them.
    pub total_bytes: u64,
    /// Bytes of tensor data in the safetensors files.
    pub weight_bytes: u64,
    /// Distinct tensors.
    pub tensors: usize,
    /// Tensor count per dtype.
    pub dtypes: BTreeMap<String, usize>,
    pub max_position_embeddings: Option<u64>,
    pub tie_word_embeddings: Option<bool>,
    pub hidden_size: Option<u64>,
    pub num_hidden_layers: Option<u64>,
    pub vocab_size: Option<u64>,
    /// The tied `lm_head` tensor that was saved but not counted, if any.
    pub tied_tensor_skipped: Option<String>,
    /// Files in the directory, relative, sorted.
    pub files: Vec<String>,
    /// Pickle checkpoints present (`.bin`, `.pt`, `.pth`, `.pkl`, `.pickle`, `.ckpt`); never opened.
    pub pickle_files: Vec<String>,
    /// Signs that the model is instruction-tuned (a chat template, a `-chat`/`-instruct` name).
    pub instruction_signals: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ConfigJson {
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    max_position_embeddings: Option<u64>,
    /// GPT-2 names it `n_positions`.
    #[serde(default)]
    n_positions: Option<u64>,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    hidden_size: Option<u64>,
    #[serde(default)]
    n_embd: Option<u64>,
    #[serde(default)]
    num_hidden_layers: Option<u64>,
    #[serde(default)]
    n_layer: Option<u64>,
    #[serde(default)]
    vocab_size: Option<u64>,
    #[serde(default, rename = "_name_or_path")]
    name_or_path: Option<String>,
}

#[derive(Deserialize)]
struct IndexJson {
    weight_map: BTreeMap<String, String>,
}

/// Small JSON files (config, tokenizer config, shard index) larger than this are refused: 16 MiB.
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// The cap on a model directory's JSON files, as [`crate::input_file`] enforces it.
pub const MODEL_JSON_CAP: crate::input_file::Cap = crate::input_file::Cap::new(
    "model JSON file",
    MAX_JSON_BYTES,
    "config.json and its siblings are a few kilobytes; check the model directory",
);

const PICKLE_EXTENSIONS: &[&str] = &[".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"];

/// Name fragments that mark an instruction-tuned checkpoint.
const INSTRUCT_MARKERS: &[&str] = &[
    "-chat",
    "-instruct",
    "-it",
    "_chat",
    "_instruct",
    "-sft",
    "-dpo",
    "-rlhf",
];

/// True when a model id or name looks instruction-tuned (`-chat`, `-instruct`, `-it`, …).
pub fn name_looks_instruction_tuned(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    INSTRUCT_MARKERS.iter().any(|m| {
        lower.match_indices(m).any(|(i, _)| {
            // The marker must end the name or be followed by a separator or version (`-it-v2`).
            let after = &lower[i + m.len()..];
            after.is_empty()
                || after.starts_with(['-', '_', '.', '/'])
                || after.starts_with(|c: char| c.is_ascii_digit())
        })
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ModelError> {
    let bytes = crate::input_file::read(path, MODEL_JSON_CAP)?;
    serde_json::from_slice(&bytes).map_err(|e| ModelError::BadJson {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Lists regular files under `dir` (no symlink following), relative and sorted, with sizes.
pub(super) fn list_files(dir: &Path) -> Result<Vec<(String, u64)>, ModelError> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let rd = fs::read_dir(dir.join(&rel)).map_err(|source| ModelError::Io {
            path: dir.join(&rel),
            source,
        })?;
        for entry in rd.filter_map(Result::ok) {
            let rel_path = rel.join(entry.file_name());
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(rel_path);
                }
            } else if meta.is_file() {
                out.push((rel_path.to_string_lossy().into_owned(), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Shard file names, and the index's tensor-to-shard map when there is an index.
pub(super) type Shards = (Vec<String>, Option<BTreeMap<String, String>>);

/// The safetensors files that hold a model's weights, and the index's tensor-to-shard map when
/// there is one: the shards `model.safetensors.index.json` names, else every top-level
/// `.safetensors` file in `files` (as [`list_files`] returns them: regular files, no symlinks).
pub(super) fn weight_shards(dir: &Path, files: &[(String, u64)]) -> Result<Shards, ModelError> {
    let index_path = dir.join("model.safetensors.index.json");
    if !index_path.is_file() {
        let shards = files
            .iter()
            .filter(|(f, _)| f.ends_with(".safetensors") && !f.contains('/'))
            .map(|(f, _)| f.clone())
            .collect();
        return Ok((shards, None));
    }
    let index: IndexJson = read_json(&index_path)?;
    let shards: BTreeSet<String> = index.weight_map.values().cloned().collect();
    // The index is untrusted too: a shard name must be a plain file in this directory.
    if let Some(shard) = shards
        .iter()
        .find(|s| s.contains('/') || s.contains('\\') || s.starts_with('.'))
    {
        return Err(ModelError::BadJson {
            path: index_path,
            reason: format!("shard name `{shard}` is not a file in the model directory"),
        });
    }
    Ok((shards.into_iter().collect(), Some(index.weight_map)))
}

/// Inspects a model directory. Fails when it is not a readable model directory: no config.json,
/// a malformed config or index, or a safetensors header that does not validate. A directory with
/// only pickle checkpoints is not an error: the facts list them and `check_model` refuses them.
pub fn inspect(dir: &Path) -> Result<ModelFacts, ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    let files = list_files(dir)?;
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(ModelError::MissingConfig { path: config_path });
    }
    let config: ConfigJson = read_json(&config_path)?;

    let mut instruction_signals = Vec::new();
    if let Some(name) = &config.name_or_path
        && name_looks_instruction_tuned(name)
    {
        instruction_signals.push(format!(
            "config.json _name_or_path `{name}` names an instruction-tuned model"
        ));
    }
    let tok_config = dir.join("tokenizer_config.json");
    if tok_config.is_file() {
        let v: serde_json::Value = read_json(&tok_config)?;
        if v.get("chat_template").is_some_and(|t| !t.is_null()) {
            instruction_signals.push("tokenizer_config.json has a chat_template".to_owned());
        }
        if let Some(name) = v.get("name_or_path").and_then(|n| n.as_str())
            && name_looks_instruction_tuned(name)
        {
            instruction_signals.push(format!(
                "tokenizer_config.json name_or_path `{name}` names an instruction-tuned model"
            ));
        }
    }
    if dir.join("chat_template.jinja").is_file() || dir.join("chat_template.json").is_file() {
        instruction_signals.push("the directory ships a chat template file".to_owned());
    }

    let pickle_files: Vec<String> = files
        .iter()
        .filter(|(f, _)| {
            let lower = f.to_ascii_lowercase();
            PICKLE_EXTENSIONS.iter().any(|e| lower.ends_with(e))
        })
        .map(|(f, _)| f.clone())
        .collect();

    let index_path = dir.join("model.safetensors.index.json");
    let (shards, weight_map) = weight_shards(dir, &files)?;

    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut dtypes: BTreeMap<String, usize> = BTreeMap::new();
    let mut weight_bytes = 0u64;
    for shard in &shards {
        let header = read_header(&dir.join(shard))?;
        for t in header.tensors {
            if let Some(map) = &weight_map
                && map.get(&t.name) != Some(shard)
            {
                return Err(ModelError::BadSafetensors {
                    path: dir.join(shard),
                    reason: format!(
                        "tensor `{}` is not mapped to this shard by model.safetensors.index.json",
                        t.name
                    ),
                });
            }
            if seen.contains_key(&t.name) {
                return Err(ModelError::BadSafetensors {
                    path: dir.join(shard),
                    reason: format!("tensor `{}` appears in more than one shard", t.name),
                });
            }
            weight_bytes = weight_bytes.saturating_add(t.bytes);
            *dtypes.entry(t.dtype.clone()).or_default() += 1;
            seen.insert(t.name, (t.elements, shard.clone()));
        }
    }
    if let Some(map) = &weight_map
        && let Some(missing) = map.keys().find(|k| !seen.contains_key(*k))
    {
        return Err(ModelError::BadSafetensors {
            path: index_path,
            reason: format!("tensor `{missing}` is in the index but in no shard"),
        });
    }
    if shards.is_empty() && pickle_files.is_empty() {
        return Err(ModelError::NoWeights {
            path: dir.to_owned(),
        });
    }

    // Tied embeddings: HF counts the shared matrix once. Some checkpoints still save lm_head.
    let tied = config.tie_word_embeddings.unwrap_or(false);
    let mut tied_tensor_skipped = None;
    let mut parameters: u64 = seen
        .values()
        .map(|(e, _)| *e)
        .fold(0u64, u64::saturating_add);
    if tied {
        let has_embed = seen.keys().any(|k| {
            k.ends_with("embed_tokens.weight")
                || k.ends_with("wte.weight")
                || k.ends_with("embed_in.weight")
        });
        for head in ["lm_head.weight", "embed_out.weight"] {
            if has_embed && let Some((e, _)) = seen.get(head) {
                parameters = parameters.saturating_sub(*e);
                tied_tensor_skipped = Some(head.to_owned());
            }
        }
    }

    Ok(ModelFacts {
        architectures: config.architectures.unwrap_or_default(),
        model_type: config.model_type,
        parameters,
        total_bytes: files
            .iter()
            .map(|(_, s)| *s)
            .fold(0u64, u64::saturating_add),
        weight_bytes,
        tensors: seen.len(),
        dtypes,
        max_position_embeddings: config.max_position_embeddings.or(config.n_positions),
        tie_word_embeddings: config.tie_word_embeddings,
        hidden_size: config.hidden_size.or(config.n_embd),
        num_hidden_layers: config.num_hidden_layers.or(config.n_layer),
        vocab_size: config.vocab_size,
        tied_tensor_skipped,
        files: files.into_iter().map(|(f, _)| f).collect(),
        pickle_files,
        instruction_signals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruct_names() {
        for n in [
            "meta-llama/Llama-2-7b-chat-hf",
            "mistralai/Mistral-7B-Instruct-v0.2",
            "google/gemma-2b-it",
            "Qwen/Qwen2-7B-Instruct",
        ] {
            assert!(name_looks_instruction_tuned(n), "{n}");
        }
        for n in [
            "meta-llama/Llama-2-7b-hf",
            "mistralai/Mistral-7B-v0.1",
            "openlm-research/open_llama_3b_v2",
            "EleutherAI/pythia-1b-italian",
        ] {
            assert!(!name_looks_instruction_tuned(n), "{n}");
        }
    }
}
