//! Static compliance checks of a submission against a competition policy: no Docker, no GPU.
//!
//! [`check_submission`] runs them all; each module is one family of checks and returns plain
//! [`Finding`]s. docs/checks.md lists every finding kind, its trigger, severity and hint.

pub mod archive;
pub mod buildpath;
pub mod compose;
pub mod context;
pub mod deps;
pub mod dockerfile;
pub mod entry;
pub mod ignore;
pub mod pip;
pub mod python;
pub mod resolve;
pub mod rules;
pub mod run;
pub mod secrets;
pub mod training;

/// Findings are their own module (`crate::finding`), shared with `model` and `gpu`; re-exported
/// here where `check` produces them.
pub use crate::finding::{Finding, FindingKind, Severity, has_errors};
pub use run::{CheckError, CheckOptions, CheckReport, Counts, InspectedModel, check_submission};
