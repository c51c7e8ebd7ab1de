//! Progress reporting: the pipeline tells a sink what it is doing; the CLI decides how to show
//! it (a status line on a terminal, plain lines otherwise).

use std::time::Duration;

/// Receives progress from a run. Calls are cheap and frequent (a tick every second or so during
/// training); implementations must not block.
pub trait Progress: Send {
    /// A stage begins.
    fn stage(&mut self, stage: &str, detail: &str);
    /// A long stage is still running.
    fn tick(&mut self, tick: &Tick<'_>);
    /// A stage ended.
    fn done(&mut self, stage: &str, detail: &str);
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
    /// Log lines seen by this runner (a resumed runner counts from where it re-attached).
    pub log_lines: u64,
    /// Bytes of output seen by this runner.
    pub log_bytes: u64,
    /// The container's memory use at the last sample.
    pub memory_bytes: Option<u64>,
    /// The GPU's utilization at the last sample, percent, when the stage runs on a GPU.
    pub gpu_utilization_pct: Option<u32>,
}

/// Discards progress (tests, `--format json`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&mut self, _: &str, _: &str) {}
    fn tick(&mut self, _: &Tick<'_>) {}
    fn done(&mut self, _: &str, _: &str) {}
}
