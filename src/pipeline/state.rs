//! The state of a run, folded from its journal. Each stage appends a `*_finished` event whose
//! data is everything later stages (and `resume`, and the report) need from it; nothing else is
//! kept in memory between stages, so a resumed runner sees exactly what the dead one recorded.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::finding::Finding;
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
    /// The deadline is fixed, before the container is created.
    pub const TRAIN_STARTING: &str = "train_starting";
    pub const TRAIN_STARTED: &str = "train_started";
    /// The operator stopped training (Ctrl-C): the run says nothing about the submission.
    pub const TRAIN_INTERRUPTED: &str = "train_interrupted";
    /// The operator stopped the run (Ctrl-C) outside training.
    pub const RUN_INTERRUPTED: &str = "run_interrupted";
    pub const TRAIN_FINISHED: &str = "train_finished";
    pub const MODEL_COLLECTED: &str = "model_collected";
    /// The evaluation container is about to be created.
    pub const EVAL_STARTED: &str = "eval_started";
    pub const EVAL_FINISHED: &str = "eval_finished";
    pub const VERDICT: &str = "verdict";
    pub const CONTAINERS_REAPED: &str = "containers_reaped";
}

/// `run_started`'s data: the arguments a run was started with, which `resume` needs when the
/// runner died before writing its plan. Read strictly: an unknown field, a missing `dry_run` or
/// a `gpu` that is not a GPU is refused, naming the field, instead of guessed (a bad `gpu` once
/// gave a run with no GPU lease; a missing `dry_run`, a full run). Fields in the order the
/// journal has always written them (alphabetical), so the bytes of a new run's line are those of
/// the `json!` object it replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunStarted {
    pub dry_run: bool,
    #[serde(default)]
    pub eval_image: Option<String>,
    #[serde(default)]
    pub gpu: Option<crate::gpu::GpuInfo>,
    #[serde(default)]
    pub inputs_mirror: Option<std::path::PathBuf>,
    #[serde(default)]
    pub nvml_lib: Option<std::path::PathBuf>,
    #[serde(default)]
    pub reprobox_version: Option<String>,
    pub run_id: String,
    pub submission: std::path::PathBuf,
    #[serde(default)]
    pub task_data: Option<std::path::PathBuf>,
    #[serde(default)]
    pub task_seed: Option<crate::native::TaskSeed>,
    /// Seconds; checked by the reader (`resume`), since a damaged value must be refused by name.
    #[serde(default)]
    pub train_limit_s: Option<f64>,
}

impl RunStarted {
    /// The first journal entry as a `run_started` record, or why not, naming the field.
    pub fn from_entry(e: &Entry) -> Result<RunStarted, String> {
        let hint = "(hint: the journal is damaged, or was written by another version of reprobox; run `reprobox audit verify` on the run directory, or start a new run with `reprobox verify`)";
        if e.event != events::RUN_STARTED {
            return Err(format!(
                "journal line {} is `{}`, not `{}` {hint}",
                e.seq,
                e.event,
                events::RUN_STARTED
            ));
        }
        serde_path_to_error::deserialize(&e.data).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if path == "." {
                format!("journal line {} (`{}`): {inner} {hint}", e.seq, e.event)
            } else {
                format!(
                    "journal line {} (`{}`): `{path}`: {inner} {hint}",
                    e.seq, e.event
                )
            }
        })
    }
}

/// One staged input, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainStart {
    pub container_id: String,
    /// The absolute deadline, UNIX seconds: never recomputed after this event.
    pub deadline_unix: f64,
}

/// The deadline, fixed before the training container is created: a runner that dies between
/// creating the container and recording its id leaves enough for `resume` to find it by label
/// and keep this wall clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainStarting {
    /// The absolute deadline, UNIX seconds.
    pub deadline_unix: f64,
}

/// The collected model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The Docker Engine's version that built the image (the provenance's builder version).
    pub engine_version: Option<String>,
    /// The deadline of a training container being created (`train_starting`).
    pub train_starting: Option<TrainStarting>,
    pub train: Option<TrainStart>,
    /// Why the run was interrupted, when the operator stopped it.
    pub interrupted: Option<String>,
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
            s.apply(e)?;
        }
        Ok(s)
    }

    /// Folds one more entry into the state (what [`RunState::from_entries`] does for each).
    pub fn apply(&mut self, e: &Entry) -> Result<(), String> {
        let s = self;
        {
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
                    s.engine_version = field("engine_version").as_str().map(str::to_owned);
                }
                events::TRAIN_STARTING => {
                    let t: TrainStarting = serde_json::from_value(e.data.clone()).map_err(bad)?;
                    check_deadline(e, t.deadline_unix)?;
                    s.train_starting = Some(t);
                }
                events::TRAIN_STARTED => {
                    let t: TrainStart = serde_json::from_value(e.data.clone()).map_err(bad)?;
                    check_deadline(e, t.deadline_unix)?;
                    s.train = Some(t);
                }
                events::TRAIN_INTERRUPTED | events::RUN_INTERRUPTED => {
                    s.interrupted = Some(
                        field("reason")
                            .as_str()
                            .unwrap_or("training was interrupted")
                            .to_owned(),
                    )
                }
                events::TRAIN_FINISHED => {
                    s.outcome = Some(field("outcome"));
                    s.gpu = Some(field("gpu")).filter(|g| !g.is_null());
                }
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
        Ok(())
    }

    /// The instant `unix` seconds after the epoch; `None` for a value no clock can hold
    /// (negative, not finite, or too far ahead for `SystemTime`).
    pub fn unix_time(unix: f64) -> Option<SystemTime> {
        let since = Duration::try_from_secs_f64(unix).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(since)
    }

    /// True when the recorded GPU summary says the GPU fell off the bus during training.
    pub fn gpu_lost(&self) -> bool {
        self.gpu
            .as_ref()
            .and_then(|g| g.get("lost"))
            .and_then(|l| l.as_bool())
            .unwrap_or(false)
    }
}

/// A recorded deadline must be a time the clock can hold: `resume` adds nothing to it, but
/// compares it with the clock and hands it to the container watcher.
fn check_deadline(e: &Entry, unix: f64) -> Result<(), String> {
    match RunState::unix_time(unix) {
        Some(_) => Ok(()),
        None => Err(format!(
            "journal line {} (`{}`): `deadline_unix` is {unix}, which is not a time this clock can hold (hint: the journal is damaged; run `reprobox audit verify` on the run directory)",
            e.seq, e.event
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::GENESIS;

    fn entries(events: &[(&str, serde_json::Value)]) -> Vec<Entry> {
        events
            .iter()
            .enumerate()
            .map(|(i, (event, data))| Entry {
                seq: i as u64 + 1,
                ts: chrono::Utc::now(),
                prev: GENESIS,
                hash: GENESIS,
                event: (*event).into(),
                stage: None,
                data: data.clone(),
            })
            .collect()
    }

    #[test]
    fn the_training_events_fold_into_deadline_container_outcome_and_gpu() {
        let s = RunState::from_entries(&entries(&[
            (
                events::TRAIN_STARTING,
                serde_json::json!({ "deadline_unix": 1700000000.5 }),
            ),
            (
                events::TRAIN_STARTED,
                serde_json::json!({ "container_id": "abc", "deadline_unix": 1700000000.5 }),
            ),
            (
                events::TRAIN_FINISHED,
                serde_json::json!({ "outcome": { "status": { "status": "succeeded" } }, "gpu": { "lost": true } }),
            ),
        ]))
        .unwrap();
        assert_eq!(s.train_starting.unwrap().deadline_unix, 1700000000.5);
        assert_eq!(s.train.unwrap().container_id, "abc");
        assert!(s.outcome.is_some());
        assert!(s.gpu.is_some());
        assert!(
            RunState {
                gpu: Some(serde_json::json!({ "lost": true })),
                ..RunState::default()
            }
            .gpu_lost()
        );
    }

    #[test]
    fn a_run_without_a_gpu_records_no_gpu_summary_and_no_loss() {
        let s = RunState::from_entries(&entries(&[(
            events::TRAIN_FINISHED,
            serde_json::json!({ "outcome": {}, "gpu": null }),
        )]))
        .unwrap();
        assert_eq!(s.gpu, None);
        assert!(!s.gpu_lost());
    }

    #[test]
    fn an_interruption_keeps_its_reason() {
        let s = RunState::from_entries(&entries(&[(
            events::TRAIN_INTERRUPTED,
            serde_json::json!({ "reason": "training was interrupted (Ctrl-C)" }),
        )]))
        .unwrap();
        assert_eq!(
            s.interrupted.as_deref(),
            Some("training was interrupted (Ctrl-C)")
        );
    }

    #[test]
    fn run_started_is_read_strictly_and_names_the_field_it_refuses() {
        let ok =
            serde_json::json!({ "run_id": "r", "submission": "/s", "dry_run": true, "gpu": null });
        let e = &entries(&[(events::RUN_STARTED, ok)])[0];
        let r = RunStarted::from_entry(e).unwrap();
        assert!(r.dry_run && r.gpu.is_none() && r.train_limit_s.is_none());
        // What a runner writes reads back the same, and in the journal's field order.
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.starts_with(r#"{"dry_run":true,"eval_image":null,"gpu":null,"#),
            "{text}"
        );
        for (data, field) in [
            (
                serde_json::json!({ "run_id": "r", "submission": "/s" }),
                "dry_run",
            ),
            (
                serde_json::json!({ "run_id": "r", "submission": "/s", "dry_run": false, "gpu": "GPU-1" }),
                "`gpu`",
            ),
            (
                serde_json::json!({ "run_id": "r", "submission": "/s", "dry_run": false, "gpus": [] }),
                "gpus",
            ),
            (
                serde_json::json!({ "run_id": "r", "submission": "/s", "dry_run": "yes" }),
                "`dry_run`",
            ),
        ] {
            let e = &entries(&[(events::RUN_STARTED, data.clone())])[0];
            let err = RunStarted::from_entry(e).unwrap_err();
            assert!(
                err.contains("journal line 1 (`run_started`)")
                    && err.contains(field)
                    && err.contains("hint:"),
                "{data}: {err}"
            );
        }
        let e = &entries(&[(events::CHECK_FINISHED, serde_json::json!({}))])[0];
        assert!(
            RunStarted::from_entry(e)
                .unwrap_err()
                .contains("is `check_finished`, not `run_started`")
        );
    }

    #[test]
    fn a_malformed_known_event_names_its_line() {
        let err = RunState::from_entries(&entries(&[
            (events::RUN_STARTED, serde_json::json!({})),
            (
                events::TRAIN_STARTING,
                serde_json::json!({ "deadline_unix": "soon" }),
            ),
        ]))
        .unwrap_err();
        assert!(err.contains("journal line 2 (`train_starting`)"), "{err}");
    }

    #[test]
    fn a_deadline_no_clock_can_hold_is_refused_not_a_panic() {
        // Issue 12 item 9: `UNIX_EPOCH + Duration::from_secs_f64(1e300)` panicked on resume.
        for bad in [1e300, -5.0, f64::MAX] {
            for event in [events::TRAIN_STARTING, events::TRAIN_STARTED] {
                let err = RunState::from_entries(&entries(&[
                    (events::RUN_STARTED, serde_json::json!({})),
                    (
                        event,
                        serde_json::json!({ "container_id": "abc", "deadline_unix": bad }),
                    ),
                ]))
                .unwrap_err();
                assert!(
                    err.contains("journal line 2") && err.contains("`deadline_unix`"),
                    "{err}"
                );
            }
        }
        assert!(RunState::unix_time(1_700_000_000.5).is_some());
        assert!(RunState::unix_time(f64::NAN).is_none());
    }
}
