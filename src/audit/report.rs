//! The result of `audit verify`: what was checked and every difference found, serialized as the
//! verb's `--format json` output (docs/report-format.md, "audit verify").

use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Sha256Digest;

/// What kind of difference a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A file the run directory must hold, or a recorded artifact, is missing.
    Missing,
    /// A recomputed digest differs from the recorded one.
    DigestMismatch,
    /// A file could not be read or hashed.
    Unreadable,
    /// The journal's hash chain is broken at a line.
    JournalBroken,
    /// The journal ends in a line without a newline.
    JournalTorn,
    /// A recorded journal head is not the chain's head.
    HeadMismatch,
    /// A record or statement is not well-formed.
    Malformed,
    /// A statement is not signed although `--key` was given.
    Unsigned,
    /// A DSSE signature does not verify with the given key.
    BadSignature,
    /// Two records that must agree do not (e.g. subjects of the two statements).
    Inconsistent,
}

/// One difference: the file (relative to the run directory) and, when known, the line and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The file that differs or holds the bad record, relative to the run directory.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Where the expected value was recorded (`report.json artifacts[0]`,
    /// `provenance.intoto.jsonl line 1 subject[0]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_in: Option<String>,
    pub message: String,
}

/// One check that passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub file: String,
    pub what: String,
}

/// The journal as `audit verify` found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalSummary {
    pub lines: u64,
    pub head: Sha256Digest,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    pub run_dir: PathBuf,
    /// True when `problems` is empty.
    pub intact: bool,
    /// The journal, when its chain verified.
    pub journal: Option<JournalSummary>,
    /// How many statements were read and whether their signatures were checked (`--key`).
    pub statements: usize,
    pub signatures_checked: bool,
    pub checks: Vec<Check>,
    pub problems: Vec<Problem>,
}
