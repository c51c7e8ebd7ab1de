//! `report.json`: the machine-readable record of a run (docs/report-format.md).
//!
//! Format 0.1 carries the verdict and the stage that decided it, the plan, the findings, the
//! training outcome, the digests of every input and output (`artifacts`, recomputed by `audit
//! verify`) and the journal's head hash. The human reports (`report.md`, `report.html`) and the
//! per-task score comparison come with the evaluation stage.
//!
//! Changelog: 0.1: first version. 0.2: `estimate` (a dry run's projection of the full
//! training time); `plan.limits.policy_train_secs`.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::RunPlan;
use super::state::{InputRecord, ModelRecord, RunState, TrainStart};
use crate::digest::Sha256Digest;
use crate::finding::Finding;
use crate::provenance::Artifacts;
use crate::verdict::Verdict;

/// The report format, major.minor. Readers accept the same major.
pub const REPORT_FORMAT_VERSION: &str = "0.3";

/// The report.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(
    title = "reprobox report.json",
    description = "The record of one reprobox run (docs/report-format.md)."
)]
pub struct Report {
    pub format_version: String,
    pub reprobox_version: String,
    pub run_id: String,
    pub dry_run: bool,
    pub verdict: Verdict,
    /// The stage that decided the verdict.
    pub decided_by: String,
    pub reason: String,
    pub started_at: Option<String>,
    pub finished_at: String,
    pub resumes: u32,
    /// The resolved plan; absent when the run stopped before planning (non-compliant at check).
    pub plan: Option<RunPlan>,
    pub findings: Vec<Finding>,
    pub inputs: Vec<InputRecord>,
    pub image_id: Option<String>,
    pub build_ms: Option<u64>,
    pub train: Option<TrainStart>,
    /// The training outcome (exit code, OOM, timeout, log summary with its tail, telemetry).
    pub training: Option<serde_json::Value>,
    /// GPU telemetry over training: samples, peak memory, mean utilization, energy, and any
    /// process on the GPU that was not the sandbox's.
    pub gpu_telemetry: Option<serde_json::Value>,
    pub model: Option<ModelRecord>,
    pub evaluation: Option<serde_json::Value>,
    /// A dry run's estimate of whether the full training fits the policy's wall clock; absent
    /// for a full run or when the training log shows no `step N/M` progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<crate::estimate::FitEstimate>,
    /// Every file and tree this report vouches for, with its digest.
    pub artifacts: Artifacts,
    /// The journal's last line hash when the report was written.
    pub journal_head: Sha256Digest,
}

impl Report {
    pub(crate) fn new(
        plan: Option<&RunPlan>,
        run_id: &str,
        dry_run: bool,
        state: &RunState,
        verdict: &super::state::VerdictRecord,
        artifacts: Artifacts,
        journal_head: Sha256Digest,
    ) -> Report {
        Report {
            format_version: REPORT_FORMAT_VERSION.into(),
            reprobox_version: crate::VERSION.into(),
            run_id: run_id.into(),
            dry_run,
            verdict: verdict.verdict,
            decided_by: verdict.stage.clone(),
            reason: verdict.reason.clone(),
            started_at: state.started.map(|t| t.to_rfc3339()),
            finished_at: chrono::Utc::now().to_rfc3339(),
            resumes: state.resumes,
            plan: plan.cloned(),
            findings: state.findings.clone().unwrap_or_default(),
            inputs: state.inputs.clone().unwrap_or_default(),
            image_id: state.image_id.clone(),
            build_ms: state.build_ms,
            train: state.train.clone(),
            training: state.outcome.clone(),
            gpu_telemetry: state.gpu.clone(),
            model: state.model.clone(),
            evaluation: state.eval.clone(),
            estimate: None,
            artifacts,
            journal_head,
        }
    }

    /// Writes the report atomically (temp file, fsync, rename), so a crash never leaves half a
    /// report behind.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_json_atomic(path, self)
    }
}

/// The JSON Schema of `report.json` (committed as docs/schemas/report.schema.json; a test fails
/// when the two drift apart).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

/// Writes `value` as pretty JSON to `path` through a temp file and a rename.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, value).map_err(std::io::Error::other)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
