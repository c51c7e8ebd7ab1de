//! The stage driver shared by `verify` and `resume`.
//!
//! Every stage first looks at the [`RunState`] folded from the journal: a stage whose
//! `*_finished` event is there is not repeated. The training deadline is written to the journal
//! before the container is created (`train_starting`) and only ever read back afterwards, so a
//! resumed run keeps the original wall clock; the outcome is written before the container is
//! removed. docs/report-format.md has the table of what `resume` does after each event.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;

use super::evaluate::{EvalRecord, HarnessPlan, SUBMITTED_DIR, ServerRecord, SideBySide};
use super::gpu_watch::{GpuSummary, GpuWatch, container_pids};
use super::plan::{PlanLimits, RunPlan, new_run_id};
use super::progress::{Count, CountUnit, Progress, Tick};
use super::report::{Report, write_json_atomic};
use super::state::{
    InputRecord, ModelRecord, RunStarted, RunState, TrainStart, TrainStarting, VerdictRecord,
    events,
};
use crate::check::{CheckOptions, Finding, check_submission, has_errors};
use crate::digest::{DigestOptions, HashCounter, digest_tree, digest_tree_counted};
use crate::engine::{ContainerEngine, DockerHost, EngineError};
use crate::gpu::{GpuError, GpuInfo, GpuLease, GpuSelector};
use crate::journal::{Journal, JournalError};
use crate::manifest::{LoadedManifest, ManifestError};
use crate::pipeline::host::Host;
use crate::policy::{Policy, PolicySet};
use crate::provenance::{ArtifactRecord, Artifacts};
use crate::rundir::{self, RunDir};
use crate::sandbox::{
    self, BuildSpec, ContainerLimits, Deadline, InputMount, RunPaths, RunSpec, SandboxError,
    SandboxProfile,
};
use crate::stage::{InputsMirror, stage_inputs};
use crate::verdict::Verdict;

mod stages;
mod start;

use start::{abs, digest_submission, train_deadline};
pub use start::{recorded_verdict, resume, resume_with, verify, verify_with};

/// What `verify` needs beyond the submission.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub submission: PathBuf,
    /// Where run directories are created (`audits/` by default).
    pub audits_dir: PathBuf,
    pub dry_run: bool,
    pub gpu: GpuSelector,
    /// The NVML library (default: `libnvidia-ml.so.1`, or `$REPROBOX_NVML_LIB`).
    pub nvml_lib: Option<PathBuf>,
    /// Where GPU leases live (default: [`crate::gpu::default_lease_dir`]).
    pub lease_dir: Option<PathBuf>,
    pub inputs: InputsMirror,
    pub policies: PolicySet,
    /// Overrides the training wall clock (a dry run's budget, or a test's few seconds). It may
    /// only shorten the policy's limit.
    pub train_limit: Option<Duration>,
    /// Sign each provenance statement in a DSSE envelope with this Ed25519 key file.
    pub sign_key: Option<PathBuf>,
    /// The organizer's evaluation image (a local tag or id), replacing the policy's harness
    /// image.
    pub eval_image: Option<String>,
    /// Where a natively scored policy's task data is (`<TASK>.jsonl`, docs/evaluation.md).
    pub task_data: Option<PathBuf>,
    /// The competition's evaluation seed the subnet's loaders draw the task data with.
    pub task_seed: Option<crate::native::TaskSeed>,
    /// A directory of sandbox profiles replacing the built-in ones of the same name.
    pub sandboxes_dir: Option<PathBuf>,
    /// The native evaluator binary (default: `reprobox-eval` next to the running executable).
    pub evaluator: Option<PathBuf>,
}

/// What `resume` needs beyond the run directory.
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    pub policies: PolicySet,
    pub lease_dir: Option<PathBuf>,
    pub sign_key: Option<PathBuf>,
    /// As [`VerifyOptions::sandboxes_dir`].
    pub sandboxes_dir: Option<PathBuf>,
    /// The mirror for a run that died before recording its own (its plan names the mirror).
    pub inputs: InputsMirror,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub verdict: Verdict,
    pub stage: String,
    pub reason: String,
    /// A cleanup that failed after the verdict was decided (reported beside it, never instead).
    pub cleanup_error: Option<String>,
}

/// Errors that prevent a run from producing a verdict at all.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "policy `{policy}` does not allow a run without a GPU (hint: pass --gpu UUID|INDEX, or --dry-run for a CPU rehearsal)"
    )]
    CpuRunNotAllowed { policy: String },
    #[error("cannot use the GPU: {0}")]
    Gpu(#[from] GpuError),
    #[error("cannot create the run directory `{}`: {source} (hint: pass --audits DIR on a writable disk)", path.display())]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("`{}` is not a run directory: it has no journal.jsonl (hint: pass the directory `reprobox verify` printed, e.g. audits/<run-id>)", path.display())]
    NotARunDir { path: PathBuf },
    #[error("the run's plan `{}` cannot be read: {detail} (hint: the run directory is damaged; run `reprobox audit verify` on it)", path.display())]
    Plan { path: PathBuf, detail: String },
    #[error("the journal of `{}` cannot be replayed: {detail}", path.display())]
    State { path: PathBuf, detail: String },
    #[error("the submission `{}` changed since the run started: its digest is {now}, the run recorded {then} (hint: resume needs the same submission; start a new run with `reprobox verify`)", path.display())]
    SubmissionChanged {
        path: PathBuf,
        then: String,
        now: String,
    },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the signing key: {0}")]
    SignKey(#[source] crate::provenance::ProvenanceError),
    #[error("cannot read the submission `{}` to hash it: {detail} (hint: every file in the submission must be readable by the user running reprobox)", path.display())]
    ReadSubmission { path: PathBuf, detail: String },
    #[error("cannot write the provenance statements in `{}`", path.display())]
    Provenance {
        path: PathBuf,
        #[source]
        source: crate::provenance::ProvenanceError,
    },
}

impl PipelineError {
    /// The exit code: bad input 2, infrastructure 6.
    pub fn exit_code(&self) -> i32 {
        use crate::exit_codes::*;
        match self {
            PipelineError::Manifest(_)
            | PipelineError::CpuRunNotAllowed { .. }
            | PipelineError::NotARunDir { .. }
            | PipelineError::SubmissionChanged { .. }
            | PipelineError::SignKey(_)
            | PipelineError::Journal(JournalError::Input(_)) => UNREADABLE_INPUT,
            PipelineError::Gpu(e) if !e.is_infra() => UNREADABLE_INPUT,
            _ => INFRA_ERROR,
        }
    }
}

/// A verdict decided by a stage: the driver stops there and writes the report.
struct Decided(VerdictRecord);

fn decide(verdict: Verdict, stage: &str, reason: impl Into<String>) -> Decided {
    Decided(VerdictRecord {
        verdict,
        stage: stage.into(),
        reason: reason.into(),
    })
}

struct Driver<H: Host> {
    /// The container engine and GPU probe the stages reach the host through.
    host: H,
    run_dir: RunDir,
    run_id: String,
    journal: Journal,
    state: RunState,
    lm: LoadedManifest,
    policy: Option<Policy>,
    policies: PolicySet,
    gpu: Option<GpuInfo>,
    /// Held for the whole run; dropping it releases the GPU.
    _lease: Option<GpuLease>,
    dry_run: bool,
    inputs: InputsMirror,
    train_limit: Option<Duration>,
    eval_image: Option<String>,
    task_data: Option<PathBuf>,
    task_seed: Option<crate::native::TaskSeed>,
    plan: Option<RunPlan>,
    sign_key: Option<crate::provenance::SigningKey>,
    nvml_lib: Option<PathBuf>,
    /// The stage under way, for an interruption's reason.
    stage: &'static str,
    /// True while the training container is watched.
    watching: Arc<AtomicBool>,
    /// Where site sandbox profiles are, if anywhere.
    sandboxes_dir: Option<PathBuf>,
    /// The native evaluator binary, when not the one next to this executable.
    evaluator: Option<PathBuf>,
}

/// Ctrl-C was pressed.
struct Interrupted;

/// Completes on the first Ctrl-C pressed while `watching` is false (while it is true, the
/// training watcher handles Ctrl-C itself: it kills the container and records the GPU summary);
/// never, when the handler cannot be installed.
async fn ctrl_c_unless(watching: Arc<AtomicBool>) {
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        if !watching.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Runs hashing or staging on the blocking pool, so the runner's task still sees Ctrl-C. The
/// work has no other side effects than its result. A panic in it (or a cancelled task) is not
/// re-raised: it comes back as `Err` with what happened, for the stage to decide `INFRA_ERROR`
/// with the report written, since no panic may reach the user.
/// Meanwhile `progress` ticks twice a second with the bytes and files `counter` has seen hashed.
async fn blocking_counted<T: Send + 'static>(
    what: &str,
    stage: &str,
    counter: &HashCounter,
    progress: &mut dyn Progress,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let started = Instant::now();
    let mut task = tokio::task::spawn_blocking(f);
    let every = Duration::from_millis(500);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            r = &mut task => return r.map_err(|e| join_failure(what, e)),
            _ = tick.tick() => {
                let (bytes, bytes_total) = counter.bytes();
                let (files, files_total) = counter.files();
                let detail = format!("{what}: {files} of {files_total} file(s)");
                progress.tick(&Tick {
                    stage,
                    elapsed: started.elapsed(),
                    count: Some(Count {
                        done: bytes,
                        total: Some(bytes_total),
                        unit: CountUnit::Bytes,
                    }),
                    detail: Some(&detail),
                    ..Tick::default()
                });
            }
        }
    }
}

/// A failed worker task in words: its panic message when it panicked.
fn join_failure(what: &str, e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return format!(
            "{what} was cancelled before it finished (hint: start a new run with `reprobox verify`)"
        );
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!(
        "{what} failed inside reprobox: {message} (hint: this is a bug in reprobox, please report it; start a new run with `reprobox verify`)"
    )
}

impl<H: Host> Driver<H> {
    fn refresh_state(&mut self) -> Result<(), PipelineError> {
        let (entries, _) = crate::journal::read_verified(self.journal.path())?;
        self.state = RunState::from_entries(&entries).map_err(|detail| PipelineError::State {
            path: self.run_dir.root().to_owned(),
            detail,
        })?;
        Ok(())
    }

    /// The plan's sandbox profile, read again for a stage that runs a container: refused when
    /// its text is not the one planned (a site profile edited while the run went on, or between
    /// a runner's death and its resume), so every container of a run has the same sandbox.
    fn planned_profile(&self, plan: &RunPlan) -> Result<SandboxProfile, String> {
        let p = load_profile(self.sandboxes_dir.as_deref(), &plan.sandbox_profile)
            .map_err(|e| e.to_string())?;
        match plan.sandbox_profile_digest {
            Some(planned) if planned != p.source_sha256 => Err(format!(
                "the sandbox profile `{}` changed since the run was planned (planned {planned}, now {}) (hint: restore the profile the run started with, or start a new run)",
                plan.sandbox_profile, p.source_sha256
            )),
            _ => Ok(p),
        }
    }

    fn record(
        &mut self,
        event: &str,
        stage: &str,
        data: serde_json::Value,
    ) -> Result<(), PipelineError> {
        // Folded entry by entry: the file was verified once when the journal was opened, and
        // reading it back on every append made a run quadratic in its journal's length.
        let entry = self.journal.append_entry(event, Some(stage), data)?;
        self.state
            .apply(&entry)
            .map_err(|detail| PipelineError::State {
                path: self.run_dir.root().to_owned(),
                detail,
            })
    }

    async fn run(mut self, progress: &mut dyn Progress) -> Result<RunResult, PipelineError> {
        let decided = match &self.state.verdict {
            Some(v) => v.clone(),
            None => {
                // Ctrl-C anywhere in the run (training handles its own first, and kills the
                // container) stops it with INFRA_ERROR and the report written. The heavy hashing
                // runs off this task, so the signal is seen while it goes on.
                let watching = self.watching.clone();
                let run = tokio::select! {
                    biased;
                    r = self.stages(progress) => Ok(r),
                    () = ctrl_c_unless(watching) => Err(Interrupted),
                };
                let run = match run {
                    Ok(r) => r,
                    Err(Interrupted) => {
                        let stage = self.stage;
                        let reason = format!(
                            "the run was interrupted (Ctrl-C) during the {stage} stage; it says nothing about the submission (hint: start a new run with `reprobox verify`)"
                        );
                        self.record(
                            events::RUN_INTERRUPTED,
                            stage,
                            serde_json::json!({ "reason": reason }),
                        )
                        .map(|()| decide(Verdict::InfraError, stage, reason))
                    }
                };
                let Decided(decided) = match run {
                    Ok(d) => d,
                    Err(e) => {
                        // Nothing more can be recorded: no container of this run may go on
                        // running (and holding the GPU) with no runner and no journal.
                        if let Ok(engine) = self.host.connect().await {
                            let _ = sandbox::cleanup_by_label(&engine, &self.run_id).await;
                        }
                        return Err(e);
                    }
                };
                self.record(
                    events::VERDICT,
                    "verdict",
                    serde_json::to_value(&decided).unwrap_or_default(),
                )?;
                decided
            }
        };
        // Containers and images of this run go on every path; a failure is reported beside the
        // verdict, never instead of it.
        let cleanup_error = match self.host.connect().await {
            Ok(engine) => sandbox::cleanup_by_label(&engine, &self.run_id)
                .await
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        self.write_report(&decided)?;
        progress.done("verdict", decided.verdict.as_str());
        Ok(RunResult {
            run_id: self.run_id.clone(),
            run_dir: self.run_dir.root().to_owned(),
            verdict: decided.verdict,
            stage: decided.stage,
            reason: decided.reason,
            cleanup_error,
        })
    }

    /// Runs the stages in order until one decides the verdict. `Err` is a failure to record
    /// anything at all.
    async fn stages(&mut self, progress: &mut dyn Progress) -> Result<Decided, PipelineError> {
        // Each stage returns `Ok(Err(decided))` to stop the run with a verdict.
        macro_rules! step {
            ($e:expr) => {
                match $e? {
                    Ok(v) => v,
                    Err(decided) => return Ok(decided),
                }
            };
        }
        if let Some(reason) = &self.state.interrupted {
            // The runner recorded an interruption and died before its verdict.
            return Ok(decide(Verdict::InfraError, "train", reason.clone()));
        }
        self.stage = "check";
        step!(self.check(progress));
        self.stage = "plan";
        let plan = step!(self.plan());
        self.stage = "inputs";
        step!(self.stage_inputs(&plan, progress).await);
        // Only now is the engine needed: a non-compliant submission is decided without it.
        self.stage = "build";
        let engine = match self.host.connect().await {
            Ok(e) => e,
            Err(e) => return Ok(infra("build", &e)),
        };
        self.reap(&engine).await?;
        step!(self.eval_image_present(&engine, &plan).await);
        step!(self.build(&engine, &plan, progress).await);
        self.stage = "train";
        step!(self.train(&engine, &plan, progress).await);
        self.stage = "collect";
        step!(self.collect(&plan, progress).await);
        self.stage = "evaluate";
        self.evaluate(&engine, &plan, progress).await
    }

    /// Stops any reprobox container on this host whose deadline passed while no runner watched
    /// it (its runner died and nobody resumed it), and records what it stopped.
    async fn reap(&mut self, engine: &H::Engine) -> Result<(), PipelineError> {
        let grace = load_profile(
            self.sandboxes_dir.as_deref(),
            self.plan
                .as_ref()
                .map(|p| p.sandbox_profile.as_str())
                .unwrap_or("strict"),
        )
        .map(|p| p.grace_period)
        .unwrap_or(Duration::from_secs(30));
        match sandbox::reap_expired(engine, SystemTime::now(), grace).await {
            Ok(reaped) if !reaped.is_empty() => self.record(
                events::CONTAINERS_REAPED,
                "train",
                serde_json::json!({ "containers": reaped }),
            ),
            // Housekeeping for other runs must not fail this one.
            _ => Ok(()),
        }
    }
}

/// The last `n` lines of a text file (at most 64 KiB are read), or nothing when it cannot be read.
fn last_lines(path: &Path, n: usize) -> String {
    crate::input_file::last_lines(path, n).join("\n")
}

/// The sandbox profile `name`: from `dir` when one is given (an organizer's site profiles, or a
/// test's short grace period), else the built-in one.
fn load_profile(
    dir: Option<&Path>,
    name: &str,
) -> Result<SandboxProfile, crate::sandbox::ProfileError> {
    match dir {
        Some(dir) if !dir.as_os_str().is_empty() => SandboxProfile::load(dir, name),
        _ => SandboxProfile::builtin(name),
    }
}

fn infra(stage: &str, e: &EngineError) -> Decided {
    decide(Verdict::InfraError, stage, e.to_string())
}

fn seed_env(seed: Option<u64>) -> Vec<(String, String)> {
    match seed {
        Some(s) => vec![("REPROBOX_SEED".into(), s.to_string())],
        None => Vec::new(),
    }
}

/// Docker refuses to start a container that requests a GPU when the host has no NVIDIA container
/// runtime: the host's fault, not the submission's.
fn missing_gpu_runtime(e: &SandboxError) -> bool {
    e.to_string().contains("could not select device driver")
}

/// Awaits `fut` (a container being watched with `live`), ticking `progress` about once a second
/// with the time since `already` ago against `limit`, the log's volume and last line, and the
/// samples.
async fn ticking<F: std::future::Future>(
    fut: F,
    stage: &str,
    limit: Duration,
    live: &sandbox::LiveStats,
    gpu: Option<&GpuWatch>,
    progress: &mut dyn Progress,
) -> F::Output {
    ticking_from(fut, stage, Duration::ZERO, limit, live, gpu, progress).await
}

/// [`ticking`] for a stage whose clock started `already` ago (a resumed training).
async fn ticking_from<F: std::future::Future>(
    fut: F,
    stage: &str,
    already: Duration,
    limit: Duration,
    live: &sandbox::LiveStats,
    gpu: Option<&GpuWatch>,
    progress: &mut dyn Progress,
) -> F::Output {
    let started = Instant::now();
    let fut = fut.fuse();
    futures_util::pin_mut!(fut);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            r = &mut fut => return r,
            _ = tick.tick() => {
                let last = live.last_line();
                progress.tick(&Tick {
                    stage,
                    elapsed: already + started.elapsed(),
                    limit: Some(limit),
                    count: None,
                    detail: last.as_deref(),
                    log_lines: live.log_lines(),
                    log_bytes: live.log_bytes(),
                    memory_bytes: live.memory_bytes(),
                    gpu_utilization_pct: gpu.and_then(GpuWatch::utilization_gpu_pct),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 9: a panic in a blocking worker was re-raised with `resume_unwind`, taking
    /// the runner down; it is now the stage's `INFRA_ERROR` reason.
    #[tokio::test]
    async fn a_panicking_worker_is_an_error_not_a_panic() {
        let c = HashCounter::default();
        let mut p = super::super::NoProgress;
        let e = blocking_counted(
            "hashing the rebuilt model",
            "collect",
            &c,
            &mut p,
            || -> u8 { panic!("boom {}", 42) },
        )
        .await
        .unwrap_err();
        assert!(
            e.contains("hashing the rebuilt model failed inside reprobox: boom 42")
                && e.contains("hint"),
            "{e}"
        );
        let e = blocking_counted("staging the inputs", "inputs", &c, &mut p, || -> u8 {
            panic!("static")
        })
        .await
        .unwrap_err();
        assert!(e.contains(": static ("), "{e}");
        assert_eq!(
            blocking_counted("x", "inputs", &c, &mut p, || 7).await,
            Ok(7)
        );
    }

    /// Ticks the lines it sees; lets the worker finish once a tick showed all bytes hashed.
    struct Release {
        lines: Vec<(Option<Count>, String)>,
        release: Option<std::sync::mpsc::Sender<()>>,
    }

    impl Progress for Release {
        fn stage(&mut self, _: &str, _: &str) {}
        fn done(&mut self, _: &str, _: &str) {}
        fn tick(&mut self, t: &Tick<'_>) {
            self.lines
                .push((t.count, format!("{} {}", t.stage, t.detail.unwrap_or(""))));
            if t.count
                .is_some_and(|c| c.total == Some(c.done) && c.done > 0)
                && let Some(tx) = self.release.take()
            {
                let _ = tx.send(());
            }
        }
    }

    #[tokio::test]
    async fn hashing_ticks_the_bytes_and_files_it_has_done() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.bin"), vec![7u8; 3000]).unwrap();
        std::fs::write(dir.path().join("b.txt"), "hello").unwrap();
        let counter = Arc::new(HashCounter::default());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut sink = Release {
            lines: Vec::new(),
            release: Some(tx),
        };
        let (hashing, root) = (counter.clone(), dir.path().to_owned());
        let tree = blocking_counted(
            "hashing the rebuilt model",
            "collect",
            &counter,
            &mut sink,
            move || {
                let t = digest_tree_counted(&root, &DigestOptions::default(), &hashing);
                // Held until a tick has shown the finished count (bounded: a test must end).
                let _ = rx.recv_timeout(Duration::from_secs(60));
                t
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(tree.resources.len(), 2);
        let (count, line) = sink.lines.last().unwrap();
        assert_eq!(
            *count,
            Some(Count {
                done: 3005,
                total: Some(3005),
                unit: CountUnit::Bytes
            })
        );
        assert_eq!(line, "collect hashing the rebuilt model: 2 of 2 file(s)");
    }
}
