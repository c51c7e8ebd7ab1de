//! The validated policy: what the rest of reprobox codes against. Every value here has passed
//! `validate.rs`, so callers may rely on, e.g., non-empty GPU lists, `min ≤ max` parameters and
//! positive task weights. Durations serialize as whole seconds (`*_secs`) and sizes as bytes.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Serialize, Serializer};

use super::glob::glob_match;
pub use super::raw::{Aggregate, Method, NetworkMode, TextLayout};

fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// One competition's rules, validated.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Policy {
    /// Stable id (the file stem).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// What the competition is.
    pub summary: String,
    /// Where the rules were published.
    pub rules_urls: Vec<String>,
    /// `sha256:<hex>` of the policy file's bytes, for reports.
    pub source_digest: String,
    /// Hardware tracks.
    pub tracks: Vec<Track>,
    /// Wall-clock and resource limits.
    pub limits: Limits,
    /// Maximum prompt + completion length in tokens.
    pub sequence_length: Option<u32>,
    /// Base-model rules.
    pub base_model: BaseModelRules,
    /// Model rules.
    pub model: ModelRules,
    /// Data rules.
    pub data: DataRules,
    /// Submission-directory limits.
    pub submission: SubmissionRules,
    /// Network per stage.
    pub network: NetworkRules,
    /// Sandbox profile id.
    pub sandbox: String,
    /// Whether a run may proceed without a GPU.
    pub cpu_allowed: bool,
    /// Dry-run budget.
    pub dry_run: DryRunRules,
    /// Evaluation.
    pub evaluation: Evaluation,
}

/// A hardware track.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Track {
    /// Track id.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Approved GPU model names as NVML reports them (globs allowed); never empty.
    pub gpus: Vec<String>,
}

/// Wall-clock and resource limits; `None` means the rules set none.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Limits {
    /// Build limit; `None`: the build counts toward `train`.
    #[serde(rename = "build_secs", serialize_with = "opt_secs")]
    #[schemars(with = "Option<u64>")]
    pub build: Option<Duration>,
    /// Training limit.
    #[serde(rename = "train_secs", serialize_with = "opt_secs")]
    #[schemars(with = "Option<u64>")]
    pub train: Option<Duration>,
    /// Evaluation limit.
    #[serde(rename = "eval_secs", serialize_with = "opt_secs")]
    #[schemars(with = "Option<u64>")]
    pub eval: Option<Duration>,
    /// One limit for training and evaluation together.
    #[serde(rename = "train_plus_eval_secs", serialize_with = "opt_secs")]
    #[schemars(with = "Option<u64>")]
    pub train_plus_eval: Option<Duration>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Disk limit in bytes.
    pub disk_bytes: Option<u64>,
    /// /dev/shm size in bytes; `None`: the sandbox profile decides.
    pub shm_bytes: Option<u64>,
}

impl Limits {
    /// Whether the image build has no limit of its own and its time counts toward training
    /// (docs/references.md C§7, recommendation 4).
    pub fn build_counts_toward_train(&self) -> bool {
        self.build.is_none()
    }
}

/// Base-model rules.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BaseModelRules {
    /// A submission must declare a base model.
    pub required: bool,
    /// Instruction-tuned bases are allowed.
    pub allow_instruction_tuned: bool,
    /// The base model must be pinned by revision.
    pub require_revision: bool,
    /// Uploaded before this date (`YYYY-MM-DD`).
    pub uploaded_before: Option<String>,
    /// Allowed licenses; `*` allows any.
    pub licenses: Vec<String>,
    /// Approved families.
    pub families: Vec<BaseFamily>,
    /// Globs identifying instruction-tuned models.
    pub instruction_tuned: Vec<String>,
}

impl BaseModelRules {
    /// Whether `license` is allowed (ASCII case ignored).
    pub fn license_allowed(&self, license: &str) -> bool {
        self.licenses
            .iter()
            .any(|l| l == "*" || l.eq_ignore_ascii_case(license))
    }

    /// Whether `model_id` matches one of the instruction-tuned globs.
    pub fn is_instruction_tuned(&self, model_id: &str) -> bool {
        self.instruction_tuned
            .iter()
            .any(|p| glob_match(p, model_id))
    }
}

/// An approved base-model family.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BaseFamily {
    /// Family name.
    pub name: String,
    /// Glob over Hub ids.
    pub pattern: String,
    /// The license this family's models carry.
    pub license: Option<String>,
}

/// Model rules.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ModelRules {
    /// Minimum parameters.
    pub min_parameters: Option<u64>,
    /// Maximum parameters.
    pub max_parameters: Option<u64>,
    /// Allowed config.json `architectures`; empty: any.
    pub architectures: Vec<String>,
    /// Maximum repository bytes.
    pub max_bytes: Option<u64>,
    /// Forced tokenizer.
    pub tokenizer: Option<String>,
    /// Evaluation dtype.
    pub dtype: Option<String>,
    /// Weight-norm limits.
    pub weight_norm: Option<WeightNorm>,
}

impl ModelRules {
    /// Whether an architecture class name is allowed (exact match, as the subnet checks it).
    pub fn architecture_allowed(&self, arch: &str) -> bool {
        self.architectures.is_empty() || self.architectures.iter().any(|a| a == arch)
    }
}

/// Frobenius-norm limits (docs/references.md S§1.1).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WeightNorm {
    /// Any norm above this rejects.
    pub hard_max: f64,
    /// Soft threshold.
    pub soft_max: f64,
    /// Maximum mean fraction of layers above `soft_max`.
    pub soft_fraction_max: f64,
    /// Tensor names inside each layer.
    pub tensors: Vec<String>,
}

/// Data rules.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DataRules {
    /// Every dataset must be open.
    pub open_data_only: bool,
    /// Data generated by approved open LLMs is allowed.
    pub allow_llm_generated: bool,
}

/// Submission-directory limits in bytes; `None`: the check's own behaviour.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SubmissionRules {
    /// Largest single file.
    pub max_file_bytes: Option<u64>,
    /// Largest build context.
    pub max_context_bytes: Option<u64>,
    /// Undeclared data-like files above this are findings.
    pub undeclared_data_bytes: Option<u64>,
}

/// Network per stage.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NetworkRules {
    /// Build.
    pub build: NetworkMode,
    /// Train.
    pub train: NetworkMode,
    /// Eval.
    pub eval: NetworkMode,
}

/// Dry-run budget.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DryRunRules {
    /// Training wall clock in a dry run.
    #[serde(rename = "train_secs", serialize_with = "opt_secs")]
    #[schemars(with = "Option<u64>")]
    pub train: Option<Duration>,
    /// Examples per task in a dry run.
    pub eval_examples: Option<u32>,
}

/// Evaluation.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Evaluation {
    /// How task scores combine.
    pub aggregate: Aggregate,
    /// Renormalize weights over tasks that loaded.
    pub renormalize_failed: bool,
    /// Tolerance on the combined score.
    pub tolerance: Tolerance,
    /// Tasks; never empty, names unique.
    pub tasks: Vec<Task>,
    /// The organizer's harness.
    pub harness: Option<Harness>,
}

impl Evaluation {
    /// The task with this name.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Combines `(task name, normalized score)` pairs with the policy's aggregate and weights.
    /// Unknown names are ignored; `None` when no known task is given.
    pub fn combine<'a>(&self, scores: impl IntoIterator<Item = (&'a str, f64)>) -> Option<f64> {
        let pairs: Vec<(f64, f64)> = scores
            .into_iter()
            .filter_map(|(name, s)| self.task(name).map(|t| (s, t.weight)))
            .collect();
        self.aggregate.combine(&pairs)
    }
}

impl Aggregate {
    /// Combines `(score, weight)` pairs. Weights are renormalized over the pairs given, which is
    /// the subnet's rule when tasks fail to load (docs/references.md S§2.5) and a no-op
    /// when all tasks are present and the weights sum to 1. `None` for an empty input.
    pub fn combine(self, pairs: &[(f64, f64)]) -> Option<f64> {
        if pairs.is_empty() {
            return None;
        }
        let total_w: f64 = pairs.iter().map(|(_, w)| w).sum();
        Some(match self {
            Aggregate::WeightedSum => pairs.iter().map(|(s, w)| s * w).sum::<f64>() / total_w,
            Aggregate::Mean => pairs.iter().map(|(s, _)| s).sum::<f64>() / pairs.len() as f64,
            Aggregate::GeometricMean => {
                // A zero score makes the product zero, as `Π mean-win-rate` does.
                if pairs.iter().any(|(s, _)| *s <= 0.0) {
                    0.0
                } else {
                    (pairs.iter().map(|(s, w)| w * s.ln()).sum::<f64>() / total_w).exp()
                }
            }
        })
    }
}

/// One task.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Task {
    /// Name.
    pub name: String,
    /// Method.
    pub method: Method,
    /// Dataset id or generator.
    pub data: Option<String>,
    /// Samples the competition evaluates.
    pub samples: Option<u32>,
    /// Skip the task below this many samples.
    pub min_samples: Option<u32>,
    /// Positive weight.
    pub weight: f64,
    /// Normalization.
    pub normalization: Normalization,
    /// Claimed-vs-reproduced tolerance.
    pub tolerance: Tolerance,
    /// Whether higher is better.
    pub higher_is_better: bool,
    /// TEXT_LOSS tokenization.
    pub text_layout: TextLayout,
    /// TEXT_LOSS: the subnet's "reasonable output" gate.
    pub reasonable_output_gate: bool,
}

/// Normalization of a raw task score (docs/references.md S§2.6).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// The raw score.
    None,
    /// `1` if `raw ≥ ceiling` (inf included), else `(1 − exp(−raw/ceiling)) / (1 − e⁻¹)`.
    InverseExponential {
        /// Positive ceiling.
        ceiling: f64,
    },
}

impl Normalization {
    /// Applies the normalization to a raw score.
    pub fn apply(self, raw: f64) -> f64 {
        match self {
            Normalization::None => raw,
            Normalization::InverseExponential { ceiling } => {
                if raw.is_nan() || raw >= ceiling {
                    1.0
                } else {
                    (1.0 - (-raw / ceiling).exp()) / (1.0 - (-1.0f64).exp())
                }
            }
        }
    }
}

/// Claimed-vs-reproduced tolerance. Both `None`: the values must be equal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, JsonSchema)]
pub struct Tolerance {
    /// Absolute tolerance (≥ 0).
    pub absolute: Option<f64>,
    /// Relative tolerance, a fraction of |claimed| (≥ 0).
    pub relative: Option<f64>,
}

impl Tolerance {
    /// Whether `reproduced` is within tolerance of `claimed`: `|Δ| ≤ absolute + relative·|claimed|`
    /// (numpy `isclose` form; an absent bound counts as 0). NaN is never within tolerance.
    pub fn accepts(self, claimed: f64, reproduced: f64) -> bool {
        if claimed.is_nan() || reproduced.is_nan() {
            return false;
        }
        if claimed == reproduced {
            return true;
        }
        let bound = self.absolute.unwrap_or(0.0) + self.relative.unwrap_or(0.0) * claimed.abs();
        (claimed - reproduced).abs() <= bound
    }
}

/// The organizer's evaluation image.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Harness {
    /// Image reference.
    pub image: String,
    /// Command; empty: the image's CMD.
    pub command: Vec<String>,
    /// File of scores the harness writes.
    pub scores_file: String,
    /// The HTTP model server the harness talks to, when the policy gives one.
    pub server: Option<HarnessServer>,
}

/// The model server of an HTTP harness (`[evaluation.harness.server]`, docs/policies.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HarnessServer {
    /// Command run in the submission's built image; empty: the image's CMD.
    pub command: Vec<String>,
    /// The port it listens on in its container.
    pub port: u16,
    /// The readiness request's method.
    pub ready_method: super::raw::ReadyMethod,
    /// The readiness request's path.
    pub ready_path: String,
    /// The readiness request's body (`POST` only).
    pub ready_body: Option<String>,
    /// How long it may take to become ready, from its container's start.
    #[serde(rename = "ready_timeout_secs", serialize_with = "secs")]
    #[schemars(with = "u64")]
    pub ready_timeout: Duration,
}

impl Policy {
    /// The track with this id.
    pub fn track(&self, id: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// The first approved family whose pattern matches `model_id`.
    pub fn approved_family(&self, model_id: &str) -> Option<&BaseFamily> {
        self.base_model
            .families
            .iter()
            .find(|f| glob_match(&f.pattern, model_id))
    }

    /// Whether a GPU, named as NVML reports it, is approved for `track`. False for an unknown
    /// track. Leading and trailing spaces of the NVML name are ignored.
    pub fn gpu_approved(&self, track: &str, gpu_name: &str) -> bool {
        self.track(track)
            .is_some_and(|t| t.gpus.iter().any(|g| glob_match(g, gpu_name.trim())))
    }

    /// The track ids, for hints.
    pub fn track_ids(&self) -> Vec<&str> {
        self.tracks.iter().map(|t| t.id.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_exponential_matches_reference_table() {
        // docs/references.md S§2.6 worked values.
        let c20 = Normalization::InverseExponential { ceiling: 20.0 };
        let c40 = Normalization::InverseExponential { ceiling: 40.0 };
        for (n, raw, want) in [
            (c20, 2.0, 0.1505),
            (c20, 2.5, 0.1859),
            (c20, 3.0, 0.2204),
            (c40, 0.5, 0.0197),
            (c40, 1.0, 0.0391),
            (c40, 2.0, 0.0772),
        ] {
            assert!(
                (n.apply(raw) - want).abs() < 5e-5,
                "{raw} -> {}",
                n.apply(raw)
            );
        }
        assert_eq!(c20.apply(20.0), 1.0);
        assert_eq!(c20.apply(f64::INFINITY), 1.0);
        assert_eq!(c20.apply(f64::NAN), 1.0);
        assert_eq!(Normalization::None.apply(0.3), 0.3);
    }

    #[test]
    fn aggregates() {
        let pairs = [(0.2, 0.75), (0.4, 0.25)];
        assert!((Aggregate::WeightedSum.combine(&pairs).unwrap() - 0.25).abs() < 1e-12);
        // Renormalized when a task is missing (S§2.5): one task left keeps its own score.
        assert!((Aggregate::WeightedSum.combine(&[(0.4, 0.25)]).unwrap() - 0.4).abs() < 1e-12);
        assert!((Aggregate::Mean.combine(&pairs).unwrap() - 0.3).abs() < 1e-12);
        let g = Aggregate::GeometricMean
            .combine(&[(0.25, 1.0), (1.0, 1.0)])
            .unwrap();
        assert!((g - 0.5).abs() < 1e-12);
        assert_eq!(
            Aggregate::GeometricMean.combine(&[(0.0, 1.0), (1.0, 1.0)]),
            Some(0.0)
        );
        assert_eq!(Aggregate::Mean.combine(&[]), None);
    }

    #[test]
    fn tolerance() {
        let exact = Tolerance::default();
        assert!(exact.accepts(0.5, 0.5));
        assert!(!exact.accepts(0.5, 0.5000001));
        let rel = Tolerance {
            absolute: None,
            relative: Some(0.01),
        };
        assert!(rel.accepts(2.0, 2.019));
        assert!(!rel.accepts(2.0, 2.03));
        let abs = Tolerance {
            absolute: Some(0.1),
            relative: None,
        };
        assert!(abs.accepts(-1.0, -0.95));
        assert!(!abs.accepts(1.0, f64::NAN));
        assert!(!abs.accepts(1.0, f64::INFINITY));
    }
}
