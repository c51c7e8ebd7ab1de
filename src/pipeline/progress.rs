//! Progress reporting: the pipeline tells a sink what it is doing; the CLI decides how to show
//! it (a status line on a terminal, plain lines otherwise, NDJSON events for `--format json`).
//!
//! [`ProgressEvent`] is the one record every sink can write: the NDJSON schema of
//! docs/progress.md (`docs/schemas/progress.schema.json`).

use std::time::Duration;

use serde::Serialize;

/// Receives progress from a run. Calls are cheap and frequent (a tick every second or so during
/// training, one per build step); implementations must not block.
pub trait Progress: Send {
    /// A stage begins.
    fn stage(&mut self, stage: &str, detail: &str);
    /// A long stage is still running.
    fn tick(&mut self, tick: &Tick<'_>);
    /// A stage ended.
    fn done(&mut self, stage: &str, detail: &str);
}

/// What a count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountUnit {
    /// Build steps (`Step N/M` of the Dockerfile).
    Steps,
    /// Bytes hashed or copied.
    Bytes,
    /// Evaluation examples scored.
    Examples,
}

/// Work done of a total: build steps, bytes hashed, examples scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Count {
    pub done: u64,
    /// Unknown until the stage knows it (the build's step count before its first step).
    pub total: Option<u64>,
    pub unit: CountUnit,
}

/// Where a long stage stands, as a [`Progress::tick`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tick<'a> {
    /// The stage (`train`).
    pub stage: &'a str,
    /// Time on the stage's clock (for training: since the container started, across resumes).
    pub elapsed: Duration,
    /// The stage's limit, when it has one.
    pub limit: Option<Duration>,
    /// Work done of a total, when the stage counts it.
    pub count: Option<Count>,
    /// The latest thing the stage did, in a line: the build's instruction, the training log's
    /// last line, the task being scored. From untrusted output: a sink neutralizes it.
    pub detail: Option<&'a str>,
    /// Log lines seen by this runner (a resumed runner counts from where it re-attached).
    pub log_lines: u64,
    /// Bytes of output seen by this runner.
    pub log_bytes: u64,
    /// The container's memory use at the last sample.
    pub memory_bytes: Option<u64>,
    /// The GPU's utilization at the last sample, percent, when the stage runs on a GPU.
    pub gpu_utilization_pct: Option<u32>,
}

/// The version of [`ProgressEvent`]'s shape; a reader refuses a version it does not know.
pub const PROGRESS_FORMAT_VERSION: u32 = 1;

/// One line of `--format json`'s progress on stderr (NDJSON).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ProgressEvent<'a> {
    /// [`PROGRESS_FORMAT_VERSION`].
    pub v: u32,
    /// When the event was written, RFC 3339 UTC with milliseconds.
    pub ts: String,
    #[serde(flatten)]
    pub kind: EventKind<'a>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind<'a> {
    /// A stage begins.
    Stage { stage: &'a str, detail: &'a str },
    /// A long stage is still running.
    Tick {
        stage: &'a str,
        elapsed_secs: f64,
        limit_secs: Option<f64>,
        count: Option<Count>,
        detail: Option<&'a str>,
        log_lines: u64,
        log_bytes: u64,
        memory_bytes: Option<u64>,
        gpu_utilization_pct: Option<u32>,
    },
    /// A stage ended (`stage: "verdict"` last, with the verdict as its detail).
    Done { stage: &'a str, detail: &'a str },
}

impl<'a> EventKind<'a> {
    /// The event of a tick.
    pub fn of_tick(t: &Tick<'a>) -> Self {
        EventKind::Tick {
            stage: t.stage,
            elapsed_secs: round_ms(t.elapsed),
            limit_secs: t.limit.map(round_ms),
            count: t.count,
            detail: t.detail,
            log_lines: t.log_lines,
            log_bytes: t.log_bytes,
            memory_bytes: t.memory_bytes,
            gpu_utilization_pct: t.gpu_utilization_pct,
        }
    }
}

impl<'a> ProgressEvent<'a> {
    /// `kind`, stamped now.
    pub fn now(kind: EventKind<'a>) -> Self {
        ProgressEvent {
            v: PROGRESS_FORMAT_VERSION,
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind,
        }
    }
}

/// Seconds with millisecond precision (what a reader needs, and short lines).
fn round_ms(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

/// The JSON Schema of [`ProgressEvent`] (docs/schemas/progress.schema.json).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ProgressEvent<'static>)).unwrap_or_default()
}

/// Discards progress (tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&mut self, _: &str, _: &str) {}
    fn tick(&mut self, _: &Tick<'_>) {}
    fn done(&mut self, _: &str, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_flat_with_their_kind() {
        let tick = Tick {
            stage: "build",
            elapsed: Duration::from_millis(3_250),
            count: Some(Count {
                done: 3,
                total: Some(7),
                unit: CountUnit::Steps,
            }),
            detail: Some("RUN pip install -r requirements.txt"),
            ..Tick::default()
        };
        let e = ProgressEvent {
            v: 1,
            ts: "2026-12-03T11:00:00.000Z".into(),
            kind: EventKind::of_tick(&tick),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"v":1,"ts":"2026-12-03T11:00:00.000Z","event":"tick","stage":"build","elapsed_secs":3.25,"limit_secs":null,"count":{"done":3,"total":7,"unit":"steps"},"detail":"RUN pip install -r requirements.txt","log_lines":0,"log_bytes":0,"memory_bytes":null,"gpu_utilization_pct":null}"#
        );
        let d = ProgressEvent::now(EventKind::Done {
            stage: "verdict",
            detail: "REPRODUCED",
        });
        let line = serde_json::to_string(&d).unwrap();
        assert!(
            line.starts_with(r#"{"v":1,"ts":"20"#)
                && line.ends_with(r#"Z","event":"done","stage":"verdict","detail":"REPRODUCED"}"#),
            "{line}"
        );
    }
}
