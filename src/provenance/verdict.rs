//! The reprobox verdict statement: the second line of `provenance.intoto.jsonl`, about the same
//! model digest as the SLSA statement, carrying the verdict, the per-task claimed and reproduced
//! scores and the journal head (predicate type [`VERDICT_PREDICATE_TYPE`], specified in
//! docs/report-format.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ProvenanceError;
use super::artifacts::ArtifactRecord;
use super::slsa::slsa_timestamp;
use super::statement::{ResourceDescriptor, Statement};
use crate::digest::Sha256Digest;
use crate::journal::EntryHead;

/// `predicateType` of the reprobox verdict predicate.
pub const VERDICT_PREDICATE_TYPE: &str = "https://reprobox.dev/verdict/v1";

/// Every verdict report.json and the verdict predicate may carry (docs/ARCHITECTURE.md,
/// "Verdicts").
pub const VERDICTS: [&str; 10] = [
    "REPRODUCED",
    "NOT_REPRODUCED",
    "NON_COMPLIANT",
    "BUILD_FAILED",
    "TRAIN_FAILED",
    "TIMEOUT",
    "OOM",
    "MISSING_ARTIFACT",
    "EVAL_FAILED",
    "INFRA_ERROR",
];

/// One task's claimed and reproduced score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskScore {
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed: Option<f64>,
    /// `None` when the evaluation did not produce it, or when it is infinite (the subnet's inf
    /// for a failed TEXT_LOSS gate; JSON has no infinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproduced: Option<f64>,
    /// The policy's absolute tolerance for this task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_tolerance: Option<bool>,
    /// The bootstrap interval `[low, high]` of the reproduced score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
}

/// The policy the verdict was judged under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub id: String,
    pub track: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Sha256Digest>,
}

/// The journal head when the verdict was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRef {
    pub seq: u64,
    pub head: Sha256Digest,
}

/// The verdict predicate, for writing and reading back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictPredicate {
    pub verdict: String,
    pub dry_run: bool,
    pub run_id: String,
    pub policy: PolicyRef,
    pub tasks: Vec<TaskScore>,
    pub reprobox_version: String,
    pub journal: JournalRef,
    /// report.json, with its digest and path (absent if the report is written later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ResourceDescriptor>,
    pub evaluated_on: String,
}

/// What the report code knows about the verdict, to be turned into the statement.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictRecord {
    pub run_id: String,
    /// The rebuilt model (the subject; the same record as [`super::TrainingRun::model`]).
    pub model: ArtifactRecord,
    /// One of [`VERDICTS`].
    pub verdict: String,
    pub dry_run: bool,
    pub policy: PolicyRef,
    pub tasks: Vec<TaskScore>,
    /// The journal head after the last event (nothing may be appended afterwards).
    pub journal_head: EntryHead,
    /// report.json's record, when the report is written before the provenance.
    pub report: Option<ArtifactRecord>,
    pub evaluated_on: DateTime<Utc>,
}

impl VerdictRecord {
    /// The in-toto statement: subject = the model, predicate = [`VerdictPredicate`].
    pub fn statement(&self) -> Result<Statement, ProvenanceError> {
        let predicate = VerdictPredicate {
            verdict: self.verdict.clone(),
            dry_run: self.dry_run,
            run_id: self.run_id.clone(),
            policy: self.policy.clone(),
            tasks: self.tasks.clone(),
            reprobox_version: crate::VERSION.to_owned(),
            journal: JournalRef {
                seq: self.journal_head.seq,
                head: self.journal_head.hash,
            },
            report: self.report.as_ref().map(ArtifactRecord::descriptor),
            evaluated_on: slsa_timestamp(self.evaluated_on),
        };
        let value = serde_json::to_value(&predicate).map_err(|source| ProvenanceError::Json {
            what: "the verdict predicate",
            source,
        })?;
        Ok(Statement::new(
            vec![self.model.descriptor()],
            VERDICT_PREDICATE_TYPE,
            value,
        ))
    }
}

impl VerdictPredicate {
    /// Problems with a predicate read back, empty when well-formed.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !VERDICTS.contains(&self.verdict.as_str()) {
            out.push(format!(
                "verdict `{}` is not a reprobox verdict",
                self.verdict
            ));
        }
        if self.run_id.is_empty() {
            out.push("runId is empty".to_owned());
        }
        if DateTime::parse_from_rfc3339(&self.evaluated_on).is_err() {
            out.push(format!(
                "evaluatedOn `{}` is not an RFC 3339 timestamp",
                self.evaluated_on
            ));
        }
        if let Some(r) = &self.report {
            out.extend(r.problems().into_iter().map(|p| format!("report {p}")));
        }
        out
    }
}
