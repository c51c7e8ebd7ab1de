//! Model facts against a policy's model rules: architecture, parameter bounds, repository bytes,
//! sequence length, pickle checkpoints and instruction tuning.
//!
//! The numbers come from the policy (for subnet 37, docs/references.md S§1.1:
//! parameter bounds, exact architecture match, max bytes). [`check_model`] never reads weights;
//! the weight-norm rule, which needs tensor data, is [`super::check_weight_norms`], applied with
//! [`ModelLimits::weight_norm`].

use crate::finding::{Finding, FindingKind};
use crate::policy::Policy;

use super::{ModelFacts, NormLimits};

/// The model rules `check_model` applies, decoupled from the policy file's layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelLimits {
    /// Allowed config.json `architectures` (exact class names); empty allows any.
    pub architectures: Vec<String>,
    pub min_parameters: Option<u64>,
    pub max_parameters: Option<u64>,
    /// Largest total bytes of the model directory.
    pub max_bytes: Option<u64>,
    /// The sequence length the competition evaluates at; a smaller `max_position_embeddings`
    /// cannot hold its prompts.
    pub min_sequence_length: Option<u64>,
    pub allow_instruction_tuned: bool,
    /// The weight-norm rule, when the policy has one (not applied by [`check_model`]).
    pub weight_norm: Option<NormLimits>,
}

impl ModelLimits {
    /// The model rules of a policy.
    pub fn from_policy(policy: &Policy) -> ModelLimits {
        ModelLimits {
            architectures: policy.model.architectures.clone(),
            min_parameters: policy.model.min_parameters,
            max_parameters: policy.model.max_parameters,
            max_bytes: policy.model.max_bytes,
            min_sequence_length: policy.sequence_length.map(u64::from),
            allow_instruction_tuned: policy.base_model.allow_instruction_tuned,
            weight_norm: policy
                .model
                .weight_norm
                .as_ref()
                .map(|w| NormLimits::from_policy(w, policy.model.dtype.as_deref())),
        }
    }
}

/// Findings for one inspected model. `label` is the path findings carry (the model directory as
/// the user named it).
pub fn check_model(facts: &ModelFacts, limits: &ModelLimits, label: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &facts.pickle_files {
        out.push(
            Finding::error(
                FindingKind::PickleCheckpoint,
                "pickle checkpoint: loading it can run arbitrary code, so reprobox never opens it",
                "save the model with `save_pretrained(dir, safe_serialization=True)` and delete the pickle files",
            )
            .at(format!("{}/{p}", label.trim_end_matches('/'))),
        );
    }
    if !limits.architectures.is_empty() {
        if facts.architectures.is_empty() {
            out.push(
                Finding::error(
                    FindingKind::ArchitectureNotAllowed,
                    "config.json names no `architectures`",
                    format!(
                        "set `architectures` to one of: {}",
                        limits.architectures.join(", ")
                    ),
                )
                .at(format!("{label}/config.json")),
            );
        }
        for a in &facts.architectures {
            if !limits.architectures.iter().any(|x| x == a) {
                out.push(
                    Finding::error(
                        FindingKind::ArchitectureNotAllowed,
                        format!("architecture `{a}` is not allowed by the policy"),
                        format!("use one of: {}", limits.architectures.join(", ")),
                    )
                    .at(format!("{label}/config.json")),
                );
            }
        }
    }
    let tied = match &facts.tied_tensor_skipped {
        Some(t) => format!(" (tied embeddings: `{t}` counted once)"),
        None => String::new(),
    };
    if let Some(max) = limits.max_parameters
        && facts.parameters > max
    {
        out.push(
            Finding::error(
                FindingKind::TooManyParameters,
                format!(
                    "{} parameters{tied}; the policy allows at most {max}",
                    facts.parameters
                ),
                "use a smaller model or prune it below the limit",
            )
            .at(label),
        );
    }
    if let Some(min) = limits.min_parameters
        && facts.parameters < min
    {
        out.push(
            Finding::error(
                FindingKind::TooFewParameters,
                format!(
                    "{} parameters{tied}; the policy requires at least {min}",
                    facts.parameters
                ),
                "use a model within the competition's parameter range",
            )
            .at(label),
        );
    }
    if let Some(max) = limits.max_bytes
        && facts.total_bytes > max
    {
        out.push(
            Finding::error(
                FindingKind::ModelTooLarge,
                format!("the model directory holds {} bytes; the policy allows at most {max}", facts.total_bytes),
                "store weights in bf16/fp16 safetensors and remove optimizer states and extra files",
            )
            .at(label),
        );
    }
    if let (Some(min), Some(have)) = (limits.min_sequence_length, facts.max_position_embeddings)
        && have < min
    {
        out.push(
            Finding::error(
                FindingKind::SequenceLengthTooShort,
                format!("max_position_embeddings is {have}; the competition evaluates sequences of {min} tokens"),
                "use a model whose context window covers the competition's sequence length",
            )
            .at(format!("{label}/config.json")),
        );
    }
    if !limits.allow_instruction_tuned {
        for s in &facts.instruction_signals {
            out.push(
                Finding::error(
                    FindingKind::InstructionTunedBase,
                    format!("the model looks instruction-tuned: {s}"),
                    "start from a base (pretrained, not chat/instruct) model, as the rules require",
                )
                .at(label),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ModelFacts {
        ModelFacts {
            architectures: vec!["LlamaForCausalLM".into()],
            model_type: Some("llama".into()),
            parameters: 1000,
            total_bytes: 5000,
            weight_bytes: 2000,
            tensors: 3,
            dtypes: Default::default(),
            max_position_embeddings: Some(2048),
            tie_word_embeddings: Some(false),
            hidden_size: None,
            num_hidden_layers: None,
            vocab_size: None,
            tied_tensor_skipped: None,
            files: vec![],
            pickle_files: vec![],
            instruction_signals: vec![],
        }
    }

    fn kinds(f: &ModelFacts, l: &ModelLimits) -> Vec<FindingKind> {
        check_model(f, l, "m").into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn each_limit_fires_alone() {
        let ok = ModelLimits {
            architectures: vec!["LlamaForCausalLM".into()],
            min_parameters: Some(10),
            max_parameters: Some(2000),
            max_bytes: Some(10_000),
            min_sequence_length: Some(2048),
            allow_instruction_tuned: false,
            weight_norm: None,
        };
        assert!(kinds(&facts(), &ok).is_empty());
        let l = |f: fn(&mut ModelLimits)| {
            let mut l = ok.clone();
            f(&mut l);
            kinds(&facts(), &l)
        };
        assert_eq!(
            l(|l| l.architectures = vec!["GPT2LMHeadModel".into()]),
            vec![FindingKind::ArchitectureNotAllowed]
        );
        assert_eq!(
            l(|l| l.max_parameters = Some(999)),
            vec![FindingKind::TooManyParameters]
        );
        assert_eq!(
            l(|l| l.min_parameters = Some(1001)),
            vec![FindingKind::TooFewParameters]
        );
        assert_eq!(
            l(|l| l.max_bytes = Some(4999)),
            vec![FindingKind::ModelTooLarge]
        );
        assert_eq!(
            l(|l| l.min_sequence_length = Some(4096)),
            vec![FindingKind::SequenceLengthTooShort]
        );
        let mut f = facts();
        f.instruction_signals.push("x".into());
        f.pickle_files.push("pytorch_model.bin".into());
        assert_eq!(
            kinds(&f, &ok),
            vec![
                FindingKind::PickleCheckpoint,
                FindingKind::InstructionTunedBase
            ]
        );
        assert_eq!(
            kinds(
                &f,
                &ModelLimits {
                    allow_instruction_tuned: true,
                    ..ok.clone()
                }
            ),
            vec![FindingKind::PickleCheckpoint]
        );
    }
}
