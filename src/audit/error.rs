//! Why `audit verify` could not audit a directory at all (as opposed to finding it tampered,
//! which is a [`super::AuditReport`] with problems).

use std::path::PathBuf;

/// The directory is not something `audit verify` can judge.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Neither `journal.jsonl` nor `report.json` is there.
    #[error(
        "`{path}` is not a run directory: it holds neither journal.jsonl nor report.json (hint: pass the directory `reprobox verify` wrote, e.g. audits/<run-id>)"
    )]
    NotRunDir { path: PathBuf },
}
