//! Reading Hugging Face model directories without loading weights: config.json and safetensors headers.
//!
//! Model files are untrusted (docs/ARCHITECTURE.md, "Trust boundaries"): only JSON and safetensors
//! headers are parsed, with bounded sizes; pickle checkpoints are listed, never opened.
//! [`inspect`] gathers [`ModelFacts`]; [`check_model`] turns them into findings against a policy.
//! The one rule that needs tensor data, the weight-norm limit, is [`check_weight_norms`]: it
//! streams only the layer tensors it names.

mod check;
mod error;
pub mod header;
mod inspect;
mod norms;

pub use check::{ModelLimits, check_model};
pub use error::ModelError;
pub use inspect::{ModelFacts, inspect, name_looks_instruction_tuned};
pub use norms::{
    NormLimits, NormSummary, SoftCount, TensorNorm, WeightNorms, check_weight_norms, norm_findings,
    weight_norms,
};
