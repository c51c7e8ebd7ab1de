//! The policy file format as written on disk: plain serde types with `deny_unknown_fields`
//! everywhere, because a misspelt key must be an error and never a silently ignored (and therefore
//! loosened) limit. No `untagged`, no `flatten`. These types only describe shape; every rule that
//! spans fields lives in `validate.rs`, which turns them into the domain types of `model.rs`.
//! `docs/schemas/policy.schema.json` is generated from [`RawPolicy`].

use schemars::JsonSchema;
use serde::Deserialize;

use crate::units::{HumanDuration, HumanSize};

/// The schema version this reprobox reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Only `schema_version`, read before anything else, so a file written for a newer reprobox fails
/// with "requires a newer reprobox" instead of a confusing unknown-key error.
#[derive(Debug, Deserialize)]
pub struct VersionOnly {
    /// The file's schema version, if it has one.
    pub schema_version: Option<u32>,
}

/// One competition's rules (`policies/<id>.toml`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "reprobox policy",
    description = "A competition's rules as data (policies/<id>.toml)."
)]
pub struct RawPolicy {
    /// Format version of this file; this reprobox reads version 1.
    pub schema_version: u32,
    /// Stable id; must equal the file name without `.toml`.
    pub id: String,
    /// Human-readable competition name.
    pub name: String,
    /// One paragraph: what the competition is and what this policy covers.
    pub summary: String,
    /// Where the rules were published (https URLs).
    #[serde(default)]
    pub rules_urls: Vec<String>,
    /// The sandbox profile id (`sandboxes/<id>.toml`) runs use.
    pub sandbox: String,
    /// Whether a run may proceed without a GPU (`--gpu none`). Default false.
    #[serde(default)]
    pub cpu_allowed: bool,
    /// Hardware tracks, each ranked separately, each with its approved GPU models.
    pub tracks: Vec<RawTrack>,
    /// Wall-clock and resource limits.
    pub limits: RawLimits,
    /// Maximum prompt + completion length in tokens, if the rules set one.
    pub sequence_length: Option<u32>,
    /// Rules about the base model a submission starts from.
    pub base_model: RawBaseModel,
    /// Rules about the submitted or rebuilt model itself.
    #[serde(default)]
    pub model: RawModel,
    /// Rules about training data.
    pub data: RawData,
    /// Limits on the submission directory.
    #[serde(default)]
    pub submission: RawSubmission,
    /// Network per stage; absent stages get `none`.
    #[serde(default)]
    pub network: RawNetwork,
    /// The short budget of `verify --dry-run`.
    #[serde(default)]
    pub dry_run: RawDryRun,
    /// How the model is scored.
    pub evaluation: RawEvaluation,
}

/// A hardware track.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTrack {
    /// Track id, as manifests name it (`a100-40gb`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Approved GPU model names exactly as NVML reports them (`NVIDIA A100-SXM4-40GB`); `*` and `?`
    /// wildcards are allowed. Must not be empty.
    pub gpus: Vec<String>,
}

/// Wall-clock and resource limits. Absent values mean the rules set none.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Image build limit. Absent: the build has no separate limit and counts toward `train`.
    pub build: Option<HumanDuration>,
    /// Training wall-clock limit.
    pub train: Option<HumanDuration>,
    /// Evaluation wall-clock limit.
    pub eval: Option<HumanDuration>,
    /// One limit for training (or merging) and evaluation together.
    pub train_plus_eval: Option<HumanDuration>,
    /// Container memory (RAM) limit.
    pub memory: Option<HumanSize>,
    /// Disk limit for the run's writable storage.
    pub disk: Option<HumanSize>,
    /// /dev/shm size; absent: the sandbox profile decides.
    pub shm: Option<HumanSize>,
}

/// Rules about the base model.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBaseModel {
    /// Whether a submission must declare a base model.
    pub required: bool,
    /// Whether an instruction-tuned (chat/instruct) base is allowed.
    pub allow_instruction_tuned: bool,
    /// Whether the base model must be pinned by a commit revision. Default true.
    #[serde(default = "default_true")]
    pub require_revision: bool,
    /// The model must have been uploaded before this date (`YYYY-MM-DD`).
    pub uploaded_before: Option<String>,
    /// Licenses a base model may carry (SPDX-like Hub license ids); `*` allows any.
    #[serde(default)]
    pub licenses: Vec<String>,
    /// Approved model families.
    #[serde(default)]
    pub families: Vec<RawFamily>,
    /// Globs over Hub ids that identify instruction-tuned models (`*-chat*`).
    #[serde(default)]
    pub instruction_tuned: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// An approved base-model family.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFamily {
    /// Family name (`Llama 2`).
    pub name: String,
    /// Glob over Hub ids (`meta-llama/Llama-2-*`).
    pub pattern: String,
    /// The license models of this family carry; absent: any license in `licenses`.
    pub license: Option<String>,
}

/// Rules about the model.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Minimum parameter count (tied weights count once).
    pub min_parameters: Option<u64>,
    /// Maximum parameter count (tied weights count once).
    pub max_parameters: Option<u64>,
    /// Allowed `architectures` values of config.json (exact class names); empty: any.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Maximum size of the model repository.
    pub max_bytes: Option<HumanSize>,
    /// The tokenizer the competition forces (a Hub id); absent: the model's own.
    pub tokenizer: Option<String>,
    /// The dtype the evaluator loads weights in (`bfloat16`).
    pub dtype: Option<String>,
    /// Per-layer weight-norm limits.
    pub weight_norm: Option<RawWeightNorm>,
}

/// Frobenius-norm limits on per-layer projection weights.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWeightNorm {
    /// Any tensor with a norm above this rejects the model.
    pub hard_max: f64,
    /// The "soft" norm threshold.
    pub soft_max: f64,
    /// The mean, over tensor kinds, of the fraction of layers above `soft_max` must not exceed this.
    pub soft_fraction_max: f64,
    /// Tensor names inside each layer, e.g. `self_attn.q_proj.weight`.
    pub tensors: Vec<String>,
}

/// Rules about training data.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// Every dataset must be open (a known open dataset or an open license).
    pub open_data_only: bool,
    /// Whether data generated by an (approved, open) LLM is allowed. Data generated by closed
    /// models whose terms forbid it is on the open-data deny list regardless.
    pub allow_llm_generated: bool,
}

/// Limits on the submission directory. Absent: the check's built-in behaviour.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSubmission {
    /// Largest single file allowed in the submission.
    pub max_file_bytes: Option<HumanSize>,
    /// Largest total build context.
    pub max_context_bytes: Option<HumanSize>,
    /// A data-like file the manifest does not declare, above this size, is a finding.
    pub undeclared_data_bytes: Option<HumanSize>,
}

/// Network mode of one stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// No network at all (`--network none`).
    #[default]
    None,
    /// A bridge network (egress possible).
    Bridge,
}

/// Network per stage.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// During `docker build`.
    #[serde(default)]
    pub build: NetworkMode,
    /// During training.
    #[serde(default)]
    pub train: NetworkMode,
    /// During evaluation.
    #[serde(default)]
    pub eval: NetworkMode,
}

/// The dry-run budget.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDryRun {
    /// Training wall clock in a dry run.
    pub train: Option<HumanDuration>,
    /// Examples per task evaluated in a dry run.
    pub eval_examples: Option<u32>,
}

/// Evaluation method of a task (see docs/references.md S§2 for the native ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Mean next-token cross-entropy over whole texts.
    TextLoss,
    /// Mean cross-entropy over reference tokens after a context.
    ReferenceLoss,
    /// Multiple-choice deviation (fraction incorrect).
    MultipleChoice,
    /// Reference loss on generated word-sorting samples.
    WordSorting,
    /// Instruction-following rule checks.
    IfEval,
    /// Scored by the organizer's harness image.
    Harness,
}

/// How TEXT_LOSS turns a sample's text into tokens (docs/references.md S§3.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextLayout {
    /// `tokenizer(text)`.
    #[default]
    Plain,
    /// The subnet's v2.x: truncated to `sequence_length`, then the EOS appended.
    AppendEos,
    /// The subnet's v3.0.0+: truncated, then padded with the pad token to exactly
    /// `sequence_length`; pads are attended to and scored.
    PadToMaxLength,
}

/// How a task's raw score is normalized before weighting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalizationKind {
    /// The raw score.
    #[default]
    None,
    /// `(1 - exp(-raw/ceiling)) / (1 - e^-1)`, capped at 1; needs `ceiling`.
    InverseExponential,
}

/// How task scores combine into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Weighted geometric mean.
    GeometricMean,
    /// Sum of weight × normalized score (weights renormalized over scored tasks).
    WeightedSum,
    /// Arithmetic mean.
    Mean,
}

/// Claimed-vs-reproduced tolerance.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTolerance {
    /// Absolute tolerance.
    pub absolute: Option<f64>,
    /// Relative tolerance (fraction of the claimed value).
    pub relative: Option<f64>,
}

/// The evaluation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEvaluation {
    /// How task scores combine.
    pub aggregate: Aggregate,
    /// When some tasks fail to load, renormalize the remaining weights. Default false.
    #[serde(default)]
    pub renormalize_failed: bool,
    /// Tolerance on the combined score; absent: exact.
    pub tolerance: Option<RawTolerance>,
    /// The tasks.
    pub tasks: Vec<RawTask>,
    /// The organizer's harness, required when a task uses `method = "harness"`.
    pub harness: Option<RawHarness>,
}

/// One evaluation task.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    /// Task name, as claims in manifests name it.
    pub name: String,
    /// Evaluation method.
    pub method: Method,
    /// Dataset id or generator the samples come from.
    pub data: Option<String>,
    /// Number of samples the competition evaluates.
    pub samples: Option<u32>,
    /// Fewer samples than this and the task is skipped.
    pub min_samples: Option<u32>,
    /// Weight in the aggregate; must be positive.
    pub weight: f64,
    /// Normalization; default none.
    #[serde(default)]
    pub normalization: NormalizationKind,
    /// Ceiling of `inverse_exponential` normalization.
    pub ceiling: Option<f64>,
    /// Claimed-vs-reproduced tolerance; absent: exact.
    pub tolerance: Option<RawTolerance>,
    /// Whether a higher score is better.
    pub higher_is_better: bool,
    /// `text_loss` only: how a sample becomes tokens; default `plain`.
    #[serde(default)]
    pub text_layout: TextLayout,
    /// `text_loss` only: the subnet's "reasonable output" gate before the losses; default false.
    #[serde(default)]
    pub reasonable_output_gate: bool,
}

/// The organizer's evaluation image.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHarness {
    /// Image reference; operators may override it.
    pub image: String,
    /// Command; empty: the image's CMD.
    #[serde(default)]
    pub command: Vec<String>,
    /// File the harness writes under its output directory. Default `scores.json`.
    pub scores_file: Option<String>,
    /// An HTTP model server the harness talks to (the NeurIPS 2023 `/process` + `/tokenize`
    /// contract): run in the submission's built image on an internal network before the
    /// harness starts.
    pub server: Option<RawHarnessServer>,
}

/// The model server of an HTTP harness (`[evaluation.harness.server]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHarnessServer {
    /// Command run in the submission's built image; empty: the image's CMD.
    #[serde(default)]
    pub command: Vec<String>,
    /// TCP port the server listens on inside its container (1-65535).
    pub port: u16,
    /// Path of the readiness request, e.g. `/process`; starts with `/`.
    pub ready_path: String,
    /// Method of the readiness request. Default `GET`.
    pub ready_method: Option<ReadyMethod>,
    /// Body of the readiness request (JSON, sent as `application/json`); `POST` only.
    pub ready_body: Option<String>,
    /// How long the server may take to answer the readiness request with a 2xx status,
    /// counted from its container's start (e.g. `"20m"`).
    pub ready_timeout: HumanDuration,
}

/// HTTP method of a readiness request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
pub enum ReadyMethod {
    /// `GET`.
    #[serde(rename = "GET")]
    Get,
    /// `POST`, with `ready_body`.
    #[serde(rename = "POST")]
    Post,
}

impl ReadyMethod {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyMethod::Get => "GET",
            ReadyMethod::Post => "POST",
        }
    }
}

/// The open-data registry (`policies/open-data.toml`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOpenData {
    /// Format version; this reprobox reads version 1.
    pub schema_version: u32,
    /// License ids counted as open for data.
    pub open_licenses: Vec<String>,
    /// Known open datasets.
    #[serde(default)]
    pub datasets: Vec<RawDataset>,
    /// Datasets that must not be used.
    #[serde(default)]
    pub denied: Vec<RawDenied>,
}

/// A known open dataset.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    /// Hub id.
    pub id: String,
    /// License id.
    pub license: String,
    /// Free text.
    #[serde(default)]
    pub notes: String,
}

/// A denied dataset or family of datasets.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDenied {
    /// Hub id or glob (`*ShareGPT*`).
    pub pattern: String,
    /// Which model generated it, when it is LLM-generated.
    pub generated_by: Option<String>,
    /// Why it is denied.
    pub reason: String,
}
