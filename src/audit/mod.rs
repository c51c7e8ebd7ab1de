//! `audit verify`: re-checks a finished run directory (journal chain, every recorded digest, the
//! provenance statements and their signatures) without changing anything in it.

mod error;
mod report;
mod verify;

pub use error::AuditError;
pub use report::{AuditReport, Check, JournalSummary, Problem, ProblemKind};
pub use verify::{AuditOptions, verify_run};
