//! The state of a run, folded from its journal. Each stage appends a `*_finished` event whose
//! data is everything later stages (and `resume`, and the report) need from it; nothing else is
//! kept in memory between stages, so a resumed runner sees exactly what the dead one recorded.

use serde::{Deserialize, Serialize};

use crate::check::Finding;
use crate::digest::Sha256Digest;
use crate::journal::Entry;
use crate::verdict::Verdict;

/// Journal event names. Stages are `check`, `gpu`, `intake`, `inputs`, `build`, `train`,
/// `collect`, `evaluate`, `verdict`.
pub(crate) mod events {
    pub const RUN_STARTED: &str = "run_started";
    pub const RUN_RESUMED: &str = "run_resumed";
    pub const CHECK_FINISHED: &str = "check_finished";
    pub const PLAN_WRITTEN: &str = "plan_written";
    pub const INPUTS_STARTED: &str = "inputs_started";
    pub const INPUTS_STAGED: &str = "inputs_staged";
    pub const BUILD_STARTED: &str = "build_started";
    pub const BUILD_FINISHED: &str = "build_finished";
    pub const TRAIN_STARTED: &str = "train_started";
    pub const TRAIN_FINISHED: &str = "train_finished";
    pub const MODEL_COLLECTED: &str = "model_collected";
    pub const EVAL_FINISHED: &str = "eval_finished";
    pub const VERDICT: &str = "verdict";
    pub const CONTAINERS_REAPED: &str = "containers_reaped";
}

/// One staged input, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// `base_model` or `datasets/<name>`.
    pub name: String,
    pub id: String,
    pub revision: String,
    pub digest: Sha256Digest,
    pub files: usize,
    pub bytes: u64,
}

/// The training container, once started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainStart {
    pub container_id: String,
    /// The absolute deadline, UNIX seconds: never recomputed after this event.
    pub deadline_unix: f64,
}

/// The collected model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Relative to the run directory, e.g. `out/model`.
    pub path: String,
    pub digest: Sha256Digest,
    pub files: usize,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub verdict: Verdict,
    /// The stage that decided it.
    pub stage: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// Everything a run has recorded so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunState {
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    pub findings: Option<Vec<Finding>>,
    pub plan_written: bool,
    pub inputs: Option<Vec<InputRecord>>,
    pub image_id: Option<String>,
    pub build_ms: Option<u64>,
    pub train: Option<TrainStart>,
    /// The training outcome as recorded (`sandbox::RunOutcome`'s JSON).
    pub outcome: Option<serde_json::Value>,
    /// The GPU telemetry summary of training, when a GPU was used.
    pub gpu: Option<serde_json::Value>,
    pub model: Option<ModelRecord>,
    pub eval: Option<serde_json::Value>,
    pub verdict: Option<VerdictRecord>,
    /// How many times the run was resumed.
    pub resumes: u32,
}

impl RunState {
    /// Folds the journal's entries, in order. Unknown events are ignored (a newer reprobox may
    /// add some); a known event whose data does not parse is an error naming its line.
    pub fn from_entries(entries: &[Entry]) -> Result<RunState, String> {
        let mut s = RunState::default();
        for e in entries {
            let bad =
                |err: serde_json::Error| format!("journal line {} (`{}`): {err}", e.seq, e.event);
            let field = |name: &str| e.data.get(name).cloned().unwrap_or_default();
            match e.event.as_str() {
                events::RUN_STARTED => s.started = Some(e.ts),
                events::RUN_RESUMED => s.resumes += 1,
                events::CHECK_FINISHED => {
                    s.findings = Some(serde_json::from_value(field("findings")).map_err(bad)?)
                }
                events::PLAN_WRITTEN => s.plan_written = true,
                events::INPUTS_STAGED => {
                    s.inputs = Some(serde_json::from_value(field("inputs")).map_err(bad)?)
                }
                events::BUILD_FINISHED => {
                    s.image_id = Some(serde_json::from_value(field("image_id")).map_err(bad)?);
                    s.build_ms = serde_json::from_value(field("duration_ms")).ok();
                }
                events::TRAIN_STARTED => {
                    s.train = Some(serde_json::from_value(e.data.clone()).map_err(bad)?)
                }
                events::TRAIN_FINISHED => s.outcome = Some(field("outcome")),
                events::MODEL_COLLECTED => {
                    s.model = Some(serde_json::from_value(e.data.clone()).map_err(bad)?)
                }
                events::EVAL_FINISHED => s.eval = Some(e.data.clone()),
                events::VERDICT => {
                    s.verdict = Some(serde_json::from_value(e.data.clone()).map_err(bad)?)
                }
                _ => {}
            }
        }
        Ok(s)
    }
}
