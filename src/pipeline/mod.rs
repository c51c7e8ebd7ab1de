//! `verify` and `resume`: the stages joined into one run, each recorded in the run's journal
//! before and after it acts, so a runner that died can be resumed without repeating finished
//! stages and without resetting the training deadline.
//!
//! ```text
//! check ─► gpu ─► hash submission ─► plan ─► stage inputs ─► build ─► train ─► collect ─► evaluate ─► compare ─► verdict
//! ```
//!
//! The journal is the source of truth: [`state::RunState`] is folded from its entries, and
//! `resume` continues from there. The library never prints: progress goes to a [`Progress`]
//! sink the CLI provides.

mod attest;
mod evaluate;
mod gpu_watch;
pub mod host;
pub mod memory;
mod plan;
mod progress;
mod report;
mod runner;
mod state;

pub use evaluate::{EvalRecord, HarnessPlan, MODEL_TARGET};
pub use gpu_watch::GpuSummary;
pub use host::{FakeHost, Host};
pub use plan::{PlanLimits, RunPlan, new_run_id, slug, stamped};
pub use progress::{
    Count, CountUnit, EventKind, NoProgress, PROGRESS_FORMAT_VERSION, Progress, ProgressEvent,
    Tick, json_schema as progress_json_schema,
};
pub use report::{REPORT_FORMAT_VERSION, Report, json_schema as report_json_schema};
pub use runner::{
    PipelineError, ResumeOptions, RunResult, VerifyOptions, recorded_verdict, resume, resume_with,
    verify, verify_with,
};
pub use state::RunState;
