//! Competition policies (`policies/*.toml`) and the open-data registry, as data.
//!
//! A policy holds everything a competition's rules say: tracks and their approved GPUs, wall-clock
//! and resource limits, base-model and model rules, data rules, network per stage, the sandbox
//! profile, and the evaluation tasks with their normalization, weights and tolerances. Files are
//! parsed strictly (`raw`), validated in one place (`validate`) into the domain types (`model`),
//! and collected into a [`PolicySet`], either built into the binary or loaded from a directory.
//! docs/policies.md describes the format field by field.

mod error;
mod glob;
mod locate;
mod model;
mod open_data;
pub mod raw;
mod set;
mod validate;

pub use error::{PolicyError, Problem};
pub use glob::glob_match;
/// The TOML line lookups policies use; sandbox profiles use them too.
pub(crate) use locate::{line_of, line_of_path};
pub use model::{
    Aggregate, BaseFamily, BaseModelRules, DataRules, DryRunRules, Evaluation, Harness,
    HarnessServer, Limits, Method, ModelRules, NetworkMode, NetworkRules, Normalization, Policy,
    SubmissionRules, Task, TextLayout, Tolerance, Track, WeightNorm,
};
pub use open_data::{DataStatus, DeniedEntry, OpenDataRegistry, OpenDataset};
pub use raw::ReadyMethod;
pub(crate) use set::resolves_outside;
pub use set::{
    BUILTIN_OPEN_DATA, BUILTIN_POLICIES, MAX_OPEN_DATA_BYTES, MAX_POLICY_BYTES, OPEN_DATA_CAP,
    OPEN_DATA_FILE, POLICY_CAP, PolicySet, PolicySource, policy_json_schema,
};
pub use validate::{is_relative_inside, parse_open_data, parse_policy};
