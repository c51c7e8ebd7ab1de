//! Progress reporting: the pipeline tells a sink what it is doing; the CLI decides how to show
//! it (a status line on a terminal, plain lines otherwise).

use std::time::Duration;

/// Receives progress from a run. Calls are cheap and frequent (a tick every second or so during
/// training); implementations must not block.
pub trait Progress: Send {
    /// A stage begins.
    fn stage(&mut self, stage: &str, detail: &str);
    /// A long stage is still running: elapsed time against its limit, and log lines seen.
    fn tick(&mut self, stage: &str, elapsed: Duration, limit: Option<Duration>, log_lines: u64);
    /// A stage ended.
    fn done(&mut self, stage: &str, detail: &str);
}

/// Discards progress (tests, `--format json`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&mut self, _: &str, _: &str) {}
    fn tick(&mut self, _: &str, _: Duration, _: Option<Duration>, _: u64) {}
    fn done(&mut self, _: &str, _: &str) {}
}
