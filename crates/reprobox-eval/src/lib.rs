//! The native evaluator: loads a Hugging Face model directory (config.json, safetensors weights,
//! tokenizer.json) with libtorch through tch, and scores JSONL examples with the exact semantics
//! of subnet 37's TEXT_LOSS, REFERENCE_LOSS, MULTIPLE_CHOICE (generation style, chat templates
//! through minijinja), WORD_SORTING and IF_EVAL, and lm-evaluation-harness's choice
//! log-likelihood (docs/references.md S§2.1–S§2.4, S§3.2, S§3.4; docs/evaluation.md).
//!
//! Parsing (the data file, config.json) needs no libtorch; the forward passes are compiled only
//! with the `tch` feature. Without it [`evaluate`] still validates the data file, then fails with
//! [`EvalError::NotEnabled`].

pub mod chat;
pub mod config;
pub mod data;
pub mod gate;
pub mod ifeval;
pub mod multiple_choice;
pub mod synthetic_mmlu;
pub mod tokenize;
pub mod word_sorting;

#[cfg(feature = "tch")]
mod model;
#[cfg(feature = "tch")]
mod run;
#[cfg(feature = "tch")]
mod weights;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reprobox::input_file::{Cap, InputFileError};
use serde::Serialize;

pub use data::{
    ChoiceExample, Dataset, MultipleChoiceExample, ReferenceExample, TextExample, read_dataset,
};
pub use ifeval::IfEvalExample;
pub use word_sorting::WordSortingExample;

/// The largest data file the evaluator reads (task data, word lists, MMLU pools): 256 MiB.
pub const MAX_DATA_BYTES: u64 = 256 << 20;

/// A data file's cap, as [`reprobox::input_file`] enforces it.
pub const DATA_CAP: Cap = Cap::new(
    "data file",
    MAX_DATA_BYTES,
    "task data is JSON lines of examples; check the file given with --data or --data-dir",
);

/// The largest small model file read whole (config.json, the shard index, generation and
/// tokenizer configs, a chat template): 16 MiB.
pub const MAX_MODEL_JSON_BYTES: u64 = 16 << 20;

/// The cap on a model directory's small files, as [`reprobox::input_file`] enforces it.
pub const MODEL_JSON_CAP: Cap = Cap::new(
    "model file",
    MAX_MODEL_JSON_BYTES,
    "config.json and its siblings are a few kilobytes; check the model directory",
);

/// The largest `tokenizer.json` read: 64 MiB (the largest real ones are about 10 MiB).
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// `tokenizer.json`'s cap, as [`reprobox::input_file`] enforces it.
pub const TOKENIZER_CAP: Cap = Cap::new(
    "tokenizer",
    MAX_TOKENIZER_BYTES,
    "a fast tokenizer's tokenizer.json is at most a few megabytes; check the model directory",
);

/// Everything that can go wrong while evaluating.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file is not a regular file (a FIFO, a device, a directory, a symlink loop) or is past
    /// its cap: refused before a byte is read.
    #[error(transparent)]
    Input(#[from] InputFileError),
    /// The data file could not be read.
    #[error("cannot read the data file {path}: {source}")]
    ReadData {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A data line is not a valid example.
    #[error("{path}:{line}: {message}")]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The data file holds no example.
    #[error("{path}: no examples (hint: one JSON object per line)")]
    NoExamples { path: PathBuf },
    /// A command-line argument is invalid (e.g. a seed that is not an integer).
    #[error("{message}")]
    BadArgument { message: String },
    /// A model file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// config.json is malformed.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// The model uses something the native evaluator does not implement.
    #[error(
        "unsupported by the native evaluator: {what} (hint: it implements Llama, Mistral, Qwen2, GPT-2 and \
         GPT-NeoX; evaluate other models with the harness evaluator, an organizer's evaluation image)"
    )]
    Unsupported { what: String },
    /// Only pickle checkpoints are present; they are never unpickled (arbitrary code execution).
    #[error(
        "{path} is a pickle checkpoint, which reprobox never loads (hint: convert it to safetensors in a \
         sandbox, e.g. `model.save_pretrained(dir, safe_serialization=True)`)"
    )]
    PickleWeights { path: PathBuf },
    /// No weight file at all.
    #[error("no model.safetensors or model.safetensors.index.json in {dir}")]
    NoWeights { dir: PathBuf },
    /// A safetensors file or index is malformed.
    #[error("{path}: {message}")]
    Safetensors { path: PathBuf, message: String },
    /// A weight the architecture needs is missing.
    #[error("weight `{name}` is missing from the checkpoint in {dir}")]
    MissingWeight { name: String, dir: PathBuf },
    /// A weight has the wrong shape for config.json.
    #[error("weight `{name}` has shape {found:?}, config.json implies {expected:?}")]
    WeightShape {
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    /// tokenizer.json is missing or malformed.
    #[error("{path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    /// The chat template is missing, malformed, or fails to render (`raise_exception`).
    #[error("{path}: {message}")]
    ChatTemplate { path: PathBuf, message: String },
    /// An example could not be tokenized.
    #[error("example `{id}`: tokenization failed: {message}")]
    Tokenize { id: String, message: String },
    /// An example gives too few tokens to score.
    #[error("example `{id}`: {message}")]
    Degenerate { id: String, message: String },
    /// A token id is outside the model's vocabulary, or the sequence is longer than the model allows.
    #[error("example `{id}`: {message}")]
    OutOfRange { id: String, message: String },
    /// The score is NaN or infinite: there is nothing to compare with a claim.
    #[error(
        "{method}: the mean over {examples} examples is {mean}, not a finite number{} (hint: the model's weights or outputs hold NaN or infinite values, usually a diverged training; `reprobox check --model DIR` applies a policy's weight-norm rule)",
        first.as_ref().map(|id| format!("; the first example without a finite value is `{id}`")).unwrap_or_default()
    )]
    NotFinite {
        method: String,
        mean: f64,
        examples: usize,
        first: Option<String>,
    },
    /// libtorch failed.
    #[error("libtorch: {message}")]
    Torch { message: String },
    /// The binary was built without the `tch` feature.
    #[error(
        "the native evaluator is not enabled at compile time (hint: build with default features)"
    )]
    NotEnabled,
}

impl EvalError {
    /// Whether the error is in the caller's input (the data file) rather than in the evaluation:
    /// the CLI maps these to `UNREADABLE_INPUT`, the rest to `EVAL_FAILED`.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            EvalError::ReadData { .. }
                | EvalError::BadLine { .. }
                | EvalError::NoExamples { .. }
                | EvalError::BadArgument { .. }
        ) || matches!(self, EvalError::Input(e) if e.format() == DATA_CAP.format)
    }
}

#[cfg(feature = "tch")]
impl From<tch::TchError> for EvalError {
    fn from(e: tch::TchError) -> Self {
        EvalError::Torch {
            message: e.to_string(),
        }
    }
}

/// An evaluation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Subnet 37 TEXT_LOSS: mean next-token cross-entropy over the whole sample.
    TextLoss,
    /// Subnet 37 REFERENCE_LOSS: mean cross-entropy over the reference tokens given the context.
    ReferenceLoss,
    /// lm-evaluation-harness multiple choice: summed log-likelihood of each choice.
    ChoiceLoglikelihood,
    /// Subnet 37 MULTIPLE_CHOICE: greedy generation from the chat-templated challenge, correct when
    /// the first standalone letter is the reference.
    MultipleChoice,
    /// Subnet 37 WORD_SORTING: REFERENCE_LOSS of the sorted words after the chat-templated
    /// challenge.
    WordSorting,
    /// Subnet 37 IF_EVAL: greedy responses to pairs of prompts with rules, judged by the rules.
    IfEval,
}

impl Method {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::TextLoss => "text_loss",
            Method::ReferenceLoss => "reference_loss",
            Method::ChoiceLoglikelihood => "choice_loglikelihood",
            Method::MultipleChoice => "multiple_choice",
            Method::WordSorting => "word_sorting",
            Method::IfEval => "if_eval",
        }
    }

    /// The JSONL layout of one example.
    pub fn layout(self) -> &'static str {
        match self {
            Method::TextLoss => r#"{"id", "text"}"#,
            Method::ReferenceLoss => r#"{"id", "context", "reference"}"#,
            Method::ChoiceLoglikelihood => r#"{"id", "context", "choices", "answer"}"#,
            Method::MultipleChoice => {
                r#"{"id", "challenge", "reference"} or {"id", "question", "choices", "answer"}"#
            }
            Method::WordSorting => r#"{"id", "challenge", "reference"}"#,
            Method::IfEval => {
                r#"{"id", "rules": [{"rule": …}, …], "questions": [q1, q2]} or {"id", "rules", "prompts": [p1, p2]}"#
            }
        }
    }
}

/// The dtype the weights are converted to and the forward pass runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    #[default]
    Fp32,
    Bf16,
    Fp16,
}

impl Dtype {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Fp32 => "fp32",
            Dtype::Bf16 => "bf16",
            Dtype::Fp16 => "fp16",
        }
    }
}

/// Where the forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvalDevice {
    /// The first CUDA device when libtorch sees one, else the CPU.
    #[default]
    Auto,
    Cpu,
}

/// Evaluation settings.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    pub dtype: Dtype,
    pub device: EvalDevice,
    /// Stop each IF_EVAL generation (and [`generate_greedy`]) once this much wall clock has
    /// passed since it started, as transformers' `max_time` (the subnet's is 5 s). `None`, the
    /// default, never stops on time, so results do not depend on the hardware.
    pub max_time: Option<Duration>,
    /// TEXT_LOSS: how a sample's text becomes token ids (the subnet changed this in v3.0.0).
    pub text_layout: TextLayout,
    /// TEXT_LOSS: run the subnet's "reasonable output" gate on samples 0 and 1 first.
    pub gate: bool,
    /// TEXT_LOSS and REFERENCE_LOSS: read up to this many examples of the same token length in
    /// one forward pass (0 and 1: one at a time). Rows of equal length need no padding or mask,
    /// so no number changes.
    pub batch_size: usize,
    /// Hears `(examples done, examples in all)` as scoring goes on (the library never prints).
    pub progress: Option<Progress>,
}

/// A progress callback: `(examples done, examples in all)`.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// How TEXT_LOSS tokenizes a sample (docs/references.md S§3.3; docs/evaluation.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TextLayout {
    /// `tokenizer(text)`: the tokenizer's special tokens, nothing else.
    #[default]
    Plain,
    /// Subnet v2.x (2024-11-06 to 2025-03-12): `tokenizer(text, max_length, truncation=True)` and
    /// then the EOS appended.
    AppendEos { max_length: usize },
    /// Subnet v3.0.0 and later: `tokenizer.encode(text, max_length, padding="max_length",
    /// truncation=True)`: truncated, then padded with the pad token (the EOS when the tokenizer
    /// has none) to exactly `max_length`; every pad is attended to and scored.
    PadToMaxLength { max_length: usize },
}

/// The outcome of TEXT_LOSS's "reasonable output" gate (docs/references.md S§2.3 (a)): 20 new
/// tokens are generated from the whole of samples 0 and 1, and the model fails when 10 or more
/// positions are equal between the two, or when both have a token that occurs more than 10 times.
/// A model that fails gets the raw score `inf` from the subnet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    pub passed: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The 20 generated token ids after sample 0 and after sample 1.
    pub generated: [Vec<i64>; 2],
    /// Positions where the two generations have the same token.
    pub equal_positions: usize,
    /// The count of the most common token in each generation.
    pub most_common: [usize; 2],
    /// The model's generation_config.json samples (`do_sample`), so the subnet's gate was a
    /// random draw; reprobox generated greedily.
    pub sampled_by_subnet: bool,
    /// generation_config.json settings that would change the decoding and that reprobox does
    /// not apply (e.g. `no_repeat_ngram_size`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// One example's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleResult {
    pub id: String,
    /// The loss (loss methods), the summed log-likelihood of each choice, or 1/0 (correct or
    /// not, MULTIPLE_CHOICE).
    pub value: ExampleValue,
    /// The number of scored tokens (for choices: of every choice together).
    pub tokens: usize,
    /// Choices: whether the highest log-likelihood is the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correct: Option<bool>,
    /// Choices: whether the highest log-likelihood per character is the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correct_norm: Option<bool>,
    /// MULTIPLE_CHOICE: the decoded generation (special tokens skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    /// MULTIPLE_CHOICE: the first standalone letter of `generated` ("" when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letter: Option<String>,
    /// IF_EVAL: the pair's two responses and how they were judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_eval: Option<IfEvalPair>,
}

/// Why a greedy generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It generated the EOS token.
    Eos,
    /// It reached `max_new_tokens`.
    Length,
    /// It ran past `max_time`.
    Time,
}

/// One IF_EVAL pair after generation and judgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IfEvalPair {
    /// The decoded responses to the two prompts (special tokens skipped).
    pub responses: [String; 2],
    /// The number of generated tokens of each response.
    pub new_tokens: [usize; 2],
    pub stopped: [StopReason; 2],
    /// The number of rules; each response's score counts this many times in the mean.
    pub rules: usize,
    /// Rules each response satisfies.
    pub correct: [usize; 2],
    /// `1 − (correct / rules)²` for each response.
    pub response_scores: [f64; 2],
    /// The responses are near-identical (difflib ratio > 0.6).
    pub duplicate: bool,
}

/// A per-example value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ExampleValue {
    Loss(f64),
    Choices(Vec<f64>),
    /// A per-example score: MULTIPLE_CHOICE gives 1 when correct, else 0; IF_EVAL the mean of
    /// the pair's two response scores.
    Score(f64),
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub method: Method,
    /// The architecture config.json named.
    pub architecture: String,
    pub dtype: Dtype,
    /// "cpu" or "cuda:N".
    pub device: String,
    pub examples: Vec<ExampleResult>,
    /// Loss methods: the mean of the per-example values (subnet 37's raw score). Choices and
    /// MULTIPLE_CHOICE: `acc` (the subnet's MULTIPLE_CHOICE raw score is `1 − acc`). IF_EVAL: the
    /// subnet's raw score (the rule-weighted mean of the response scores, or 1 with too many
    /// duplicates).
    pub mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
    /// IF_EVAL: the number of pairs with duplicate responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<usize>,
    /// IF_EVAL: more than 10 % of the pairs were duplicates, so the score is 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_penalty: Option<bool>,
    /// Wall-clock seconds spent loading the model and scoring the examples (for benchmarks; not
    /// part of any score).
    pub timing: Timing,
    /// TEXT_LOSS: how samples were tokenized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_layout: Option<TextLayout>,
    /// TEXT_LOSS with the gate: its outcome. When it failed, the subnet's raw score is `inf`
    /// (`mean` still holds the losses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateResult>,
}

/// Where an evaluation's time went.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Timing {
    /// Reading config.json, the tokenizer and the weights.
    pub load_secs: f64,
    /// Tokenizing and scoring every example (the gate included).
    pub score_secs: f64,
}

/// Settings of [`generate_greedy`].
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// transformers' `repetition_penalty` (1.0: none; subnet 37 uses 1.1 for MULTIPLE_CHOICE).
    pub repetition_penalty: f64,
    /// Stop after config.json's `eos_token_id`.
    pub stop_at_eos: bool,
    /// Render the prompt as a user turn of the model's chat template (with the generation
    /// prompt) and tokenize it without special tokens, as the subnet's MULTIPLE_CHOICE; the EOS
    /// is then tokenizer_config.json's `eos_token` (config.json's when it sets none).
    pub chat: bool,
    /// Dtype, device, and `max_time` (wall-clock stop, off by default).
    pub eval: EvalOptions,
}

/// The result of [`generate_greedy`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// The prompt's tokens (with special tokens, as `tokenizer(prompt)`; with `chat`, of the
    /// rendered prompt without special tokens, as `apply_chat_template(tokenize=True)`).
    pub prompt_ids: Vec<i64>,
    /// The generated tokens (the EOS included when generation stopped on it).
    pub new_ids: Vec<i64>,
    /// `new_ids` decoded, special tokens skipped.
    pub text: String,
    pub stopped: StopReason,
}

/// Greedy decoding with a KV cache and transformers' repetition penalty (see docs/evaluation.md).
#[cfg(feature = "tch")]
pub fn generate_greedy(
    model_dir: &Path,
    prompt: &str,
    options: &GenerateOptions,
) -> Result<Generation, EvalError> {
    run::generate_greedy(model_dir, prompt, options)
}

/// Greedy decoding (stub: built without the `tch` feature).
#[cfg(not(feature = "tch"))]
pub fn generate_greedy(
    _model_dir: &Path,
    _prompt: &str,
    _options: &GenerateOptions,
) -> Result<Generation, EvalError> {
    Err(EvalError::NotEnabled)
}

/// Evaluates the model in `model_dir` on the JSONL file `data` with `method`. The data file is
/// read and validated before the model is loaded.
pub fn evaluate(
    model_dir: &Path,
    method: Method,
    data: &Path,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let dataset = read_dataset(data, method)?;
    evaluate_dataset(model_dir, &dataset, options)
}

/// Evaluates already parsed examples.
#[cfg(feature = "tch")]
pub fn evaluate_dataset(
    model_dir: &Path,
    dataset: &Dataset,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    run::evaluate_dataset(model_dir, dataset, options)
}

/// Evaluates already parsed examples (stub: built without the `tch` feature).
#[cfg(not(feature = "tch"))]
pub fn evaluate_dataset(
    _model_dir: &Path,
    _dataset: &Dataset,
    _options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    Err(EvalError::NotEnabled)
}
