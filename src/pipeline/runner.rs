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
    InputRecord, ModelRecord, RunState, TrainStart, TrainStarting, VerdictRecord, events,
};
use crate::check::{CheckOptions, Finding, check_submission, has_errors};
use crate::digest::{DigestOptions, HashCounter, digest_tree, digest_tree_counted};
use crate::engine::{ContainerEngine, DockerEngine, EngineError};
use crate::gpu::{GpuError, GpuInfo, GpuLease, GpuProbe, GpuSelector, NvmlProbe};
use crate::journal::{Journal, JournalError};
use crate::manifest::{LoadedManifest, ManifestError};
use crate::policy::{Policy, PolicySet};
use crate::provenance::{ArtifactRecord, Artifacts};
use crate::rundir::{self, RunDir};
use crate::sandbox::{
    self, BuildSpec, ContainerLimits, Deadline, InputMount, RunPaths, RunSpec, SandboxError,
    SandboxProfile,
};
use crate::stage::{InputsMirror, stage_inputs};
use crate::verdict::Verdict;

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
}

/// What `resume` needs beyond the run directory.
#[derive(Debug, Clone)]
pub struct ResumeOptions {
    pub policies: PolicySet,
    pub lease_dir: Option<PathBuf>,
    pub sign_key: Option<PathBuf>,
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

/// Runs the whole pipeline on a submission and returns its verdict.
pub async fn verify(
    opts: &VerifyOptions,
    progress: &mut dyn Progress,
) -> Result<RunResult, PipelineError> {
    // Everything that can be wrong with the arguments is found before a run directory exists.
    let lm = crate::manifest::load(&opts.submission)?;
    let policy = opts.policies.get(&lm.manifest.submission.policy).cloned();
    if opts.gpu == GpuSelector::None
        && let Some(p) = &policy
        && !(p.cpu_allowed || opts.dry_run)
    {
        return Err(PipelineError::CpuRunNotAllowed {
            policy: p.id.clone(),
        });
    }
    let sign_key = read_key(opts.sign_key.as_deref())?;
    let gpu = resolve_gpu(&opts.gpu, opts.nvml_lib.as_deref())?;
    let run_id = new_run_id(&lm.manifest.submission.team);
    let lease = match &gpu {
        Some(g) => Some(acquire_lease(opts.lease_dir.as_deref(), &g.uuid, &run_id)?),
        None => None,
    };

    let root = opts.audits_dir.join(&run_id);
    let run_dir = RunDir::create_layout(&root).map_err(|e| PipelineError::RunDir {
        path: root.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut journal = Journal::create(run_dir.journal())?;
    journal.append(
        events::RUN_STARTED,
        None,
        serde_json::json!({
            "run_id": run_id,
            "submission": abs(&opts.submission),
            "dry_run": opts.dry_run,
            "gpu": gpu,
            "nvml_lib": opts.nvml_lib,
            "inputs_mirror": abs(opts.inputs.root()),
            "train_limit_s": opts.train_limit.map(|d| d.as_secs_f64()),
            "eval_image": opts.eval_image,
            "task_data": opts.task_data.as_ref().map(|p| abs(p)),
            "task_seed": opts.task_seed,
            "reprobox_version": crate::VERSION,
        }),
    )?;
    let mut driver = Driver {
        run_dir,
        run_id,
        journal,
        state: RunState::default(),
        lm,
        policy,
        policies: opts.policies.clone(),
        gpu,
        _lease: lease,
        dry_run: opts.dry_run,
        inputs: opts.inputs.clone(),
        train_limit: opts.train_limit,
        eval_image: opts.eval_image.clone(),
        task_data: opts.task_data.clone(),
        task_seed: opts.task_seed.clone(),
        plan: None,
        sign_key,
        nvml_lib: opts.nvml_lib.clone(),
        stage: "check",
        watching: Arc::default(),
    };
    driver.refresh_state()?;
    driver.run(progress).await
}

/// The verdict of a finished run, read without changing anything (no journal line, no lock held
/// after it returns): `Some` when the journal records a verdict and report.json was written.
/// `None` while the run is undecided, and also for a runner that died between its verdict and
/// its report, whose resume writes the report and nothing else. `resume` of a finished run
/// returns this and writes nothing: rewriting its report and provenance would change what
/// `audit verify` checked (and leave a signed run unsigned).
pub fn recorded_verdict(run_dir: &Path) -> Result<Option<RunResult>, PipelineError> {
    let rd = RunDir::new(run_dir);
    // Whatever is at the journal's name is read (and a FIFO or a device refused by name by the
    // journal reader); only a missing one means this is no run directory.
    if rd.journal().symlink_metadata().is_err() {
        return Err(PipelineError::NotARunDir {
            path: run_dir.to_owned(),
        });
    }
    let (entries, _) = crate::journal::read_verified(rd.journal())?;
    let state = RunState::from_entries(&entries).map_err(|detail| PipelineError::State {
        path: run_dir.to_owned(),
        detail,
    })?;
    let Some(decided) = state.verdict else {
        return Ok(None);
    };
    if !rd.report_json().is_file() {
        return Ok(None);
    }
    let run_id = entries
        .first()
        .and_then(|e| e.data.get("run_id"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| PipelineError::State {
            path: run_dir.to_owned(),
            detail: "the first journal line does not name the run id".into(),
        })?;
    Ok(Some(RunResult {
        run_id,
        run_dir: run_dir.to_owned(),
        verdict: decided.verdict,
        stage: decided.stage,
        reason: decided.reason,
        cleanup_error: None,
    }))
}

/// Continues a run whose runner died. Finished stages are not repeated; a training container
/// that is still running is watched again with the deadline recorded when it started. A run
/// that already has a verdict is returned as recorded ([`recorded_verdict`]), unchanged.
pub async fn resume(
    run_dir: &Path,
    opts: &ResumeOptions,
    progress: &mut dyn Progress,
) -> Result<RunResult, PipelineError> {
    if let Some(done) = recorded_verdict(run_dir)? {
        return Ok(done);
    }
    let opts_policies = &opts.policies;
    let lease_dir = opts.lease_dir.as_deref();
    let sign_key = read_key(opts.sign_key.as_deref())?;
    let rd = RunDir::new(run_dir);
    // A journal that is there but not a regular file is refused by the journal reader, by name.
    if rd.journal().symlink_metadata().is_err() {
        return Err(PipelineError::NotARunDir {
            path: run_dir.to_owned(),
        });
    }
    let (mut journal, entries) = Journal::open_for_append(rd.journal())?;
    let state = RunState::from_entries(&entries).map_err(|detail| PipelineError::State {
        path: run_dir.to_owned(),
        detail,
    })?;
    let run_id = entries
        .first()
        .and_then(|e| e.data.get("run_id"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| PipelineError::State {
            path: run_dir.to_owned(),
            detail: "the first journal line does not name the run id".into(),
        })?;
    let plan: Option<RunPlan> = if state.plan_written {
        let text = crate::input_file::read_to_string(&rd.plan(), crate::rundir::PLAN_CAP).map_err(
            |e| PipelineError::Plan {
                path: rd.plan(),
                detail: e.to_string(),
            },
        )?;
        Some(
            serde_json::from_str(&text).map_err(|e| PipelineError::Plan {
                path: rd.plan(),
                detail: e.to_string(),
            })?,
        )
    } else {
        None
    };
    let first = entries.first().map(|e| e.data.clone()).unwrap_or_default();
    let submission = plan
        .as_ref()
        .map(|p| p.submission.clone())
        .or_else(|| {
            first
                .get("submission")
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
        })
        .ok_or_else(|| PipelineError::State {
            path: run_dir.to_owned(),
            detail: "the journal does not name the submission".into(),
        })?;
    let dry_run = first
        .get("dry_run")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let gpu: Option<GpuInfo> =
        serde_json::from_value(first.get("gpu").cloned().unwrap_or_default())
            .ok()
            .flatten();
    let lm = crate::manifest::load(&submission)?;
    if let Some(p) = &plan {
        let now = digest_submission(&submission)?;
        if now != p.submission_digest.to_string() {
            return Err(PipelineError::SubmissionChanged {
                path: submission,
                then: p.submission_digest.to_string(),
                now,
            });
        }
    }
    let lease = match &gpu {
        Some(g) if state.verdict.is_none() => Some(acquire_lease(lease_dir, &g.uuid, &run_id)?),
        _ => None,
    };
    if state.verdict.is_none() {
        journal.append(
            events::RUN_RESUMED,
            None,
            serde_json::json!({ "pid": std::process::id() }),
        )?;
    }
    // The plan holds what the first runner decided; a runner that died before writing it
    // recorded its arguments in `run_started`.
    let inputs = plan
        .as_ref()
        .map(|p| p.inputs_mirror.clone())
        .or_else(|| {
            first
                .get("inputs_mirror")
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
        })
        .map(|root| InputsMirror::new(&root))
        .unwrap_or_else(InputsMirror::default_location);
    let train_limit = match &plan {
        Some(p) => Some(p.limits.train()),
        None => recorded_train_limit(&first).map_err(|detail| PipelineError::State {
            path: run_dir.to_owned(),
            detail,
        })?,
    };
    let mut driver = Driver {
        run_dir: rd,
        run_id,
        journal,
        state,
        policy: opts_policies.get(&lm.manifest.submission.policy).cloned(),
        lm,
        policies: opts_policies.clone(),
        gpu,
        _lease: lease,
        dry_run,
        inputs,
        train_limit,
        eval_image: first
            .get("eval_image")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        task_data: first
            .get("task_data")
            .and_then(|v| v.as_str())
            .map(PathBuf::from),
        task_seed: first
            .get("task_seed")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok()),
        plan,
        sign_key,
        nvml_lib: first
            .get("nvml_lib")
            .and_then(|v| v.as_str())
            .map(PathBuf::from),
        stage: "check",
        watching: Arc::default(),
    };
    driver.refresh_state()?;
    driver.run(progress).await
}

/// The training deadline `now + limits.train`; a limit that puts it past what the clock can hold
/// (only a damaged plan.json can: policies are bounded by [`crate::units::MAX_DURATION`]) is an
/// error naming the field, not an overflow panic.
fn train_deadline(
    now: SystemTime,
    limits: &PlanLimits,
    plan: &Path,
) -> Result<SystemTime, PipelineError> {
    now.checked_add(limits.train())
        .ok_or_else(|| PipelineError::Plan {
            path: plan.to_owned(),
            detail: format!(
                "`limits.train_secs` is {} s, which puts the deadline past what the clock can hold",
                limits.train_secs
            ),
        })
}

/// `run_started.train_limit_s`: absent or null for none; otherwise a positive number of seconds
/// no longer than [`crate::units::MAX_DURATION`], which `verify` never exceeds. Anything else is
/// a damaged journal, refused (a huge value made `Duration::from_secs_f64` panic).
fn recorded_train_limit(first: &serde_json::Value) -> Result<Option<Duration>, String> {
    let v = match first.get("train_limit_s") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let max = crate::units::MAX_DURATION;
    match v.as_f64() {
        Some(s) if s > 0.0 && s <= max.as_secs_f64() => Ok(Duration::try_from_secs_f64(s).ok()),
        _ => Err(format!(
            "journal line 1 (`run_started`): `train_limit_s` is {v}, not a number of seconds between 0 and {} (hint: the journal is damaged; run `reprobox audit verify` on the run directory, or start a new run with `reprobox verify`)",
            max.as_secs()
        )),
    }
}

fn abs(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

fn read_key(path: Option<&Path>) -> Result<Option<crate::provenance::SigningKey>, PipelineError> {
    path.map(crate::provenance::read_signing_key)
        .transpose()
        .map_err(PipelineError::SignKey)
}

fn resolve_gpu(
    selector: &GpuSelector,
    nvml_lib: Option<&Path>,
) -> Result<Option<GpuInfo>, PipelineError> {
    if *selector == GpuSelector::None {
        return Ok(None);
    }
    let probe = NvmlProbe::new(nvml_lib)?;
    let gpus = probe.gpus()?;
    Ok(crate::gpu::select(&gpus, selector)?)
}

fn acquire_lease(dir: Option<&Path>, uuid: &str, run_id: &str) -> Result<GpuLease, PipelineError> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => crate::gpu::default_lease_dir()?,
    };
    Ok(GpuLease::acquire(&dir, uuid, run_id)?)
}

fn digest_submission(dir: &Path) -> Result<String, PipelineError> {
    let opts = DigestOptions {
        allow_symlinks: true,
        ..DigestOptions::default()
    };
    digest_tree(dir, &opts)
        .map(|t| t.root.to_string())
        .map_err(|e| PipelineError::ReadSubmission {
            path: dir.to_owned(),
            detail: e.to_string(),
        })
}

struct Driver {
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

impl Driver {
    fn refresh_state(&mut self) -> Result<(), PipelineError> {
        let (entries, _) = crate::journal::read_verified(self.journal.path())?;
        self.state = RunState::from_entries(&entries).map_err(|detail| PipelineError::State {
            path: self.run_dir.root().to_owned(),
            detail,
        })?;
        Ok(())
    }

    fn record(
        &mut self,
        event: &str,
        stage: &str,
        data: serde_json::Value,
    ) -> Result<(), PipelineError> {
        self.journal.append(event, Some(stage), data)?;
        self.refresh_state()
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
                        if let Ok(engine) = DockerEngine::connect().await {
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
        let cleanup_error = match DockerEngine::connect().await {
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
        let engine = match DockerEngine::connect().await {
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
    async fn reap(&mut self, engine: &DockerEngine) -> Result<(), PipelineError> {
        let grace = load_profile(
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

    fn check(&mut self, progress: &mut dyn Progress) -> Result<Result<(), Decided>, PipelineError> {
        if self.state.findings.is_none() {
            progress.stage("check", "static compliance");
            let opts = CheckOptions {
                model_dir: None,
                inputs: Some(self.inputs.root().to_owned()),
            };
            let mut findings: Vec<Finding> =
                match check_submission(&self.lm.root, &self.policies, &opts) {
                    Ok(r) => r.findings,
                    // The manifest loaded before the run began; what fails now is this host
                    // reading the submission, which says nothing about the rules.
                    Err(e) => {
                        return Ok(Err(decide(
                            Verdict::InfraError,
                            "check",
                            format!("the submission cannot be checked: {e}"),
                        )));
                    }
                };
            if let (Some(gpu), Some(policy)) = (&self.gpu, &self.policy) {
                let track = &self.lm.manifest.submission.track;
                if let Some(t) = policy.track(track)
                    && let Some(f) = crate::gpu::approval_finding(gpu, track, &t.gpus)
                {
                    findings.push(f);
                }
            }
            let errors = findings
                .iter()
                .filter(|f| f.severity == crate::check::Severity::Error)
                .count();
            self.record(
                events::CHECK_FINISHED,
                "check",
                serde_json::json!({ "errors": errors, "findings": findings }),
            )?;
            progress.done("check", &format!("{errors} error finding(s)"));
        }
        let findings = self.state.findings.clone().unwrap_or_default();
        if has_errors(&findings) {
            let first = findings
                .iter()
                .find(|f| f.severity == crate::check::Severity::Error)
                .map(|f| format!("{}: {}", f.kind, f.message))
                .unwrap_or_default();
            return Ok(Err(decide(
                Verdict::NonCompliant,
                "check",
                format!("the submission breaks the competition's rules ({first})"),
            )));
        }
        Ok(Ok(()))
    }

    fn plan(&mut self) -> Result<Result<RunPlan, Decided>, PipelineError> {
        if let Some(p) = &self.plan {
            return Ok(Ok(p.clone()));
        }
        // Check passed, so the policy and track exist.
        let Some(policy) = self.policy.clone() else {
            return Ok(Err(decide(
                Verdict::NonCompliant,
                "check",
                format!("unknown policy `{}`", self.lm.manifest.submission.policy),
            )));
        };
        let profile = match load_profile(&policy.sandbox) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Err(decide(
                    Verdict::InfraError,
                    "plan",
                    format!("the policy's sandbox profile cannot be loaded: {e}"),
                )));
            }
        };
        let m = &self.lm.manifest;
        let train_policy = policy
            .limits
            .train
            .or(policy.limits.train_plus_eval)
            .unwrap_or(Duration::from_secs(24 * 3600));
        let mut train = train_policy;
        if self.dry_run
            && let Some(d) = policy.dry_run.train
        {
            train = train.min(d);
        }
        if let Some(t) = self.train_limit {
            train = train.min(t);
        }
        // Without a build limit of its own the build counts toward the training clock
        // (docs/references.md C§7): bound it by the same number.
        let build = policy.limits.build.unwrap_or(train_policy);
        // Planned against the host: a limit above its memory would enforce nothing (memory.rs).
        let memory = super::memory::plan_memory(
            policy.limits.memory_bytes.unwrap_or(16 << 30),
            super::memory::host_memory_bytes(),
        );
        let submission_digest = digest_submission(&self.lm.root)?;
        let plan = RunPlan {
            run_id: self.run_id.clone(),
            reprobox_version: crate::VERSION.into(),
            dry_run: self.dry_run,
            submission: abs(&self.lm.root),
            submission_digest: submission_digest.parse().map_err(|_| PipelineError::Plan {
                path: self.run_dir.plan(),
                detail: "the submission digest is malformed".into(),
            })?,
            team: m.submission.team.clone(),
            policy: policy.id.clone(),
            policy_digest: policy.source_digest.clone(),
            track: m.submission.track.clone(),
            sandbox_profile: policy.sandbox.clone(),
            runtime: profile.runtime.docker_name().into(),
            gpu: self.gpu.clone(),
            context_dir: abs(&self.lm.root.join(m.train.context.as_path())),
            dockerfile: abs(&self.lm.root.join(m.train.dockerfile.as_path())),
            command: m.train.command.clone(),
            output: m.train.output.as_str().to_owned(),
            seed: m.train.seed,
            build_network: match policy.network.build {
                crate::policy::NetworkMode::None => "none".into(),
                crate::policy::NetworkMode::Bridge => "bridge".into(),
            },
            limits: PlanLimits {
                build_secs: build.as_secs(),
                train_secs: train.as_secs().max(1),
                policy_train_secs: Some(train_policy.as_secs()),
                eval_secs: policy.limits.eval.map(|d| d.as_secs()),
                memory_bytes: memory.limit_bytes,
                memory: Some(memory),
                disk_bytes: policy.limits.disk_bytes,
                max_context_bytes: policy.submission.max_context_bytes.unwrap_or(1 << 30),
            },
            inputs_mirror: self.inputs.root().to_owned(),
            harness: super::evaluate::harness_plan(&policy, self.eval_image.as_deref()),
            native: None,
        };
        let mut plan = plan;
        if plan.harness.is_none()
            && let Some(dir) = &self.task_data
            && crate::native::is_native(&policy)
        {
            match super::evaluate::native_plan(&policy, dir, self.dry_run, self.task_seed.clone()) {
                Ok(n) => plan.native = Some(n),
                Err(reason) => return Ok(Err(decide(Verdict::InfraError, "plan", reason))),
            }
        }
        // A full run that could not be scored is refused before a day of training; a dry run
        // rehearses the build and the training and ends EVAL_FAILED saying what to pass.
        if plan.harness.is_none()
            && plan.native.is_none()
            && !self.dry_run
            && crate::native::is_native(&policy)
        {
            return Ok(Err(decide(
                Verdict::InfraError,
                "plan",
                format!(
                    "policy `{}` scores its tasks natively, and no task data was given, so the rebuilt model could not be scored (hint: pass --task-data DIR with the samples the competition scored, one `<TASK>.jsonl` each, or --eval-image with an organizer's evaluation image)",
                    policy.id
                ),
            )));
        }
        write_json_atomic(&self.run_dir.plan(), &plan).map_err(|source| PipelineError::Write {
            path: self.run_dir.plan(),
            source,
        })?;
        self.record(
            events::PLAN_WRITTEN,
            "plan",
            serde_json::json!({ "submission_digest": plan.submission_digest, "limits": plan.limits }),
        )?;
        self.plan = Some(plan.clone());
        Ok(Ok(plan))
    }

    async fn stage_inputs(
        &mut self,
        _plan: &RunPlan,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
        if self.state.inputs.is_some() {
            return Ok(Ok(()));
        }
        progress.stage("inputs", "staging and verifying declared inputs");
        self.record(events::INPUTS_STARTED, "inputs", serde_json::json!({}))?;
        let (manifest, mirror, dir) = (
            self.lm.manifest.clone(),
            self.inputs.clone(),
            self.run_dir.inputs_dir(),
        );
        let require_digests = !self.dry_run;
        let counter = Arc::new(HashCounter::default());
        let hashing = counter.clone();
        let staged = match blocking_counted(
            "staging the inputs",
            "inputs",
            &counter,
            progress,
            move || stage_inputs(&manifest, &mirror, &dir, require_digests, &hashing),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) if e.is_non_compliant() => {
                return Ok(Err(decide(Verdict::NonCompliant, "inputs", e.to_string())));
            }
            Ok(Err(e)) => return Ok(Err(decide(Verdict::InfraError, "inputs", e.to_string()))),
            Err(why) => return Ok(Err(decide(Verdict::InfraError, "inputs", why))),
        };
        let records: Vec<InputRecord> = staged
            .iter()
            .map(|s| InputRecord {
                name: s.name.clone(),
                id: s.id.clone(),
                revision: s.revision.clone(),
                digest: s.digest,
                files: s.files,
                bytes: s.bytes,
            })
            .collect();
        self.record(
            events::INPUTS_STAGED,
            "inputs",
            serde_json::json!({ "inputs": records }),
        )?;
        progress.done("inputs", &format!("{} input(s) verified", records.len()));
        Ok(Ok(()))
    }

    async fn build(
        &mut self,
        engine: &DockerEngine,
        plan: &RunPlan,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
        if let Some(id) = &self.state.image_id {
            // Training under way or done: the image is not needed again, even if it is gone.
            if self.state.train.is_some() || self.state.outcome.is_some() {
                return Ok(Ok(()));
            }
            match engine.image_exists(id).await {
                Ok(true) => return Ok(Ok(())),
                Ok(false) => {} // cleaned up while no runner watched: build again
                Err(e) => return Ok(Err(infra("build", &e))),
            }
        }
        progress.stage("build", "building the submission's image");
        self.record(events::BUILD_STARTED, "build", serde_json::json!({}))?;
        let spec = BuildSpec {
            run_id: self.run_id.clone(),
            context_dir: plan.context_dir.clone(),
            dockerfile: plan.dockerfile.clone(),
            network: plan.build_network.clone(),
            time_limit: plan.limits.build(),
            max_context_bytes: plan.limits.max_context_bytes,
        };
        let mut on_progress = |b: &sandbox::BuildProgress<'_>| {
            let sent = crate::units::human_size(b.context_bytes);
            let detail = match (b.step, b.instruction) {
                (Some((n, m)), Some(i)) => format!("step {n}/{m}: {i} (context {sent} sent)"),
                _ => format!("context {sent} sent, waiting for the builder's first step"),
            };
            progress.tick(&Tick {
                stage: "build",
                elapsed: b.elapsed,
                limit: Some(spec.time_limit),
                count: b.step.map(|(n, m)| Count {
                    done: u64::from(n),
                    total: Some(u64::from(m)),
                    unit: CountUnit::Steps,
                }),
                detail: Some(&detail),
                log_bytes: b.log_bytes,
                ..Tick::default()
            });
        };
        let built =
            sandbox::build_image_with(engine, &spec, &self.run_dir.build_log(), &mut on_progress)
                .await;
        match built {
            Ok(img) => {
                // The engine's version goes into the provenance's builder version.
                let engine_version = engine.version().await.ok().map(|v| v.version);
                self.record(
                    events::BUILD_FINISHED,
                    "build",
                    serde_json::json!({ "image_id": img.image_id, "tag": img.tag, "duration_ms": img.duration_ms, "engine_version": engine_version }),
                )?;
                progress.done("build", &img.image_id);
                Ok(Ok(()))
            }
            Err(e) if e.is_infra() => Ok(Err(decide(Verdict::InfraError, "build", e.to_string()))),
            Err(e) => {
                // The builder's last words say why more often than its error does.
                let tail = last_lines(&self.run_dir.build_log(), 10);
                let reason = if tail.is_empty() {
                    e.to_string()
                } else {
                    format!("{e}; logs/build.log ends:\n{tail}")
                };
                Ok(Err(decide(Verdict::BuildFailed, "build", reason)))
            }
        }
    }

    async fn train(
        &mut self,
        engine: &DockerEngine,
        plan: &RunPlan,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
        if self.state.outcome.is_none() && self.state.interrupted.is_none() {
            let profile = match load_profile(&plan.sandbox_profile) {
                Ok(p) => p,
                Err(e) => {
                    return Ok(Err(decide(Verdict::InfraError, "train", e.to_string())));
                }
            };
            let paths = RunPaths {
                log: self.run_dir.train_log(),
                telemetry: self.run_dir.telemetry(),
            };
            let (id, deadline) = match self.find_or_start(engine, plan, &profile, progress).await? {
                Ok(started) => started,
                Err(decided) => return Ok(Err(decided)),
            };
            let since = sandbox::logs::last_timestamp_in(&paths.log).ok().flatten();
            self.watching.store(true, Ordering::SeqCst);
            let watched = self
                .watch_training(
                    engine, plan, &profile, &paths, &id, deadline, since, progress,
                )
                .await;
            self.watching.store(false, Ordering::SeqCst);
            if let Err(decided) = watched? {
                return Ok(Err(decided));
            }
        }
        Ok(self.train_verdict(plan))
    }

    /// The training container of this run: the one a dead runner started (found by the id it
    /// recorded, or by label when it died before recording the id), or a new one. The deadline
    /// is written to the journal before the container is created and only read back after.
    async fn find_or_start(
        &mut self,
        engine: &DockerEngine,
        plan: &RunPlan,
        profile: &SandboxProfile,
        progress: &mut dyn Progress,
    ) -> Result<Result<(String, SystemTime), Decided>, PipelineError> {
        // The fold refused any deadline the clock cannot hold (`RunState::unix_time`).
        let at = |unix: f64| RunState::unix_time(unix).unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some(t) = self.state.train.clone() {
            return Ok(match engine.inspect_container(&t.container_id).await {
                Ok(_) => Ok((t.container_id, at(t.deadline_unix))),
                Err(e) => Err(decide(
                    Verdict::InfraError,
                    "train",
                    format!(
                        "the training container {} cannot be found again: {e} (hint: it was removed while no runner watched it; start a new run with `reprobox verify`)",
                        t.container_id
                    ),
                )),
            });
        }
        if let Some(starting) = self.state.train_starting.clone() {
            // The last runner fixed the deadline and died before recording a container id.
            let found = match engine
                .list_containers(&format!("{}={}", sandbox::LABEL_RUN, self.run_id))
                .await
            {
                Ok(list) => list.into_iter().find(|c| {
                    c.labels.get(sandbox::LABEL_STAGE).map(String::as_str) == Some("train")
                }),
                Err(e) => return Ok(Err(infra("train", &e))),
            };
            if let Some(c) = found {
                self.record(
                    events::TRAIN_STARTED,
                    "train",
                    serde_json::to_value(TrainStart {
                        container_id: c.id.clone(),
                        deadline_unix: starting.deadline_unix,
                    })
                    .unwrap_or_default(),
                )?;
                return Ok(Ok((c.id, at(starting.deadline_unix))));
            }
            // No container carries the run's label: it was never created, and the wall clock
            // (which counts from the container's start) had not begun.
        }
        let Some(image) = self.state.image_id.clone() else {
            return Ok(Err(decide(
                Verdict::BuildFailed,
                "build",
                "no image was recorded",
            )));
        };
        // Fixed just before the container is created, so the container can carry it as a label:
        // the submission gets a fraction of a second less, never more.
        let deadline = train_deadline(SystemTime::now(), &plan.limits, &self.run_dir.plan())?;
        let unix = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.record(
            events::TRAIN_STARTING,
            "train",
            serde_json::to_value(TrainStarting {
                deadline_unix: unix,
            })
            .unwrap_or_default(),
        )?;
        let spec = RunSpec {
            run_id: self.run_id.clone(),
            stage: "train".into(),
            image,
            command: plan.command.clone(),
            env: seed_env(plan.seed),
            workdir: None,
            profile: profile.clone(),
            limits: ContainerLimits {
                memory_bytes: plan.limits.memory_bytes,
                disk_bytes: plan.limits.disk_bytes,
                cpus: None,
            },
            out_dir: self.run_dir.out_dir(),
            inputs: self
                .state
                .inputs
                .iter()
                .flatten()
                .map(|i| InputMount {
                    host: self.run_dir.inputs_dir().join(&i.name),
                    target: i.name.clone(),
                })
                .collect(),
            gpu: plan
                .gpu
                .as_ref()
                .map(|g| crate::gpu::device_request(&g.uuid)),
            storage_quota_supported: false,
            deadline_unix: Some(unix.ceil() as u64),
        };
        progress.stage("train", "training in the sandbox");
        let id = match sandbox::start_container(engine, &spec).await {
            Ok(id) => id,
            Err(e) if e.is_infra() => {
                return Ok(Err(decide(Verdict::InfraError, "train", e.to_string())));
            }
            Err(e) if missing_gpu_runtime(&e) => {
                return Ok(Err(decide(
                    Verdict::InfraError,
                    "train",
                    format!(
                        "{e} (hint: this host's Docker cannot hand out NVIDIA GPUs; install the NVIDIA Container Toolkit and restart dockerd)"
                    ),
                )));
            }
            Err(e) => {
                return Ok(Err(decide(Verdict::TrainFailed, "train", e.to_string())));
            }
        };
        self.record(
            events::TRAIN_STARTED,
            "train",
            serde_json::to_value(TrainStart {
                container_id: id.clone(),
                deadline_unix: unix,
            })
            .unwrap_or_default(),
        )?;
        Ok(Ok((id, deadline)))
    }

    /// Watches the training container (and its GPU) until it stops, then records the outcome
    /// before the container is removed.
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is a distinct part of the run"
    )]
    async fn watch_training(
        &mut self,
        engine: &DockerEngine,
        plan: &RunPlan,
        profile: &SandboxProfile,
        paths: &RunPaths,
        id: &str,
        deadline: SystemTime,
        since: Option<String>,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
        // GPU telemetry for the whole time the container runs under this runner.
        let gpu_watch = match &plan.gpu {
            Some(g) => match NvmlProbe::new(self.nvml_lib.as_deref()) {
                Ok(probe) => Some(GpuWatch::start(
                    std::sync::Arc::new(probe),
                    g.uuid.clone(),
                    profile.telemetry_interval,
                    paths.telemetry.clone(),
                    container_pids(id),
                )),
                Err(e) => {
                    let _ = engine.kill_container(id, "SIGKILL").await;
                    return Ok(Err(decide(
                        Verdict::InfraError,
                        "train",
                        format!("the GPU cannot be watched: {e}"),
                    )));
                }
            },
            None => None,
        };
        let outcome = watch(
            engine,
            id,
            profile,
            paths,
            deadline,
            since,
            plan.limits.train(),
            gpu_watch.as_ref(),
            progress,
        )
        .await;
        let gpu_summary: Option<GpuSummary> = gpu_watch.map(GpuWatch::stop);
        let outcome = match outcome {
            Ok(o) => stopped_after_deadline(o, deadline),
            Err(SandboxError::Interrupted { .. }) => {
                let reason = "training was interrupted (Ctrl-C) and its container killed; the run says nothing about the submission (hint: start a new run with `reprobox verify`)";
                self.record(
                    events::TRAIN_INTERRUPTED,
                    "train",
                    serde_json::json!({ "container_id": id, "reason": reason, "gpu": gpu_summary }),
                )?;
                return Ok(Err(decide(Verdict::InfraError, "train", reason)));
            }
            // The decided verdict's cleanup removes the container, running or not.
            Err(e) if e.is_infra() => {
                return Ok(Err(decide(Verdict::InfraError, "train", e.to_string())));
            }
            Err(e) => return Ok(Err(decide(Verdict::TrainFailed, "train", e.to_string()))),
        };
        // Recorded while the container still exists: a runner that dies here leaves it for
        // `resume` to read again, never a removed container with no outcome.
        self.record(
            events::TRAIN_FINISHED,
            "train",
            serde_json::json!({ "outcome": outcome, "gpu": gpu_summary }),
        )?;
        let _ = engine.remove_container(id).await;
        progress.done("train", &format!("{:?}", outcome.status));
        Ok(Ok(()))
    }

    /// The verdict of the training stage, from what the journal recorded.
    fn train_verdict(&self, plan: &RunPlan) -> Result<(), Decided> {
        if let Some(reason) = &self.state.interrupted {
            return Err(decide(Verdict::InfraError, "train", reason.clone()));
        }
        if self.state.gpu_lost() {
            return Err(decide(
                Verdict::InfraError,
                "train",
                "the GPU was lost during training; the run says nothing about the submission (hint: retry it on another GPU)",
            ));
        }
        let outcome = self.state.outcome.as_ref();
        let status = outcome
            .and_then(|o| o.get("status"))
            .and_then(|s| s.get("status"))
            .and_then(|s| s.as_str())
            .unwrap_or("");
        let code = outcome
            .and_then(|o| o.get("exit_code"))
            .and_then(|c| c.as_i64());
        let limit = plan.limits.train_secs;
        match status {
            "succeeded" => Ok(()),
            "oom" => Err(decide(
                Verdict::Oom,
                "train",
                format!(
                    "training was killed by the out-of-memory killer at the {} MiB limit{}",
                    plan.limits.memory_bytes >> 20,
                    match plan.limits.memory {
                        Some(m) if m.capped => format!(
                            ", which this host capped below the {} MiB the policy grants (hint: the host has {} MiB; rerun on one with at least {} MiB before deciding)",
                            m.requested_bytes >> 20,
                            m.host_bytes.unwrap_or(0) >> 20,
                            (m.requested_bytes + m.reserve_bytes) >> 20
                        ),
                        _ => String::new(),
                    }
                ),
            )),
            "timeout" => Err(decide(
                Verdict::Timeout,
                "train",
                format!("training ran past the {limit} s wall clock and was stopped"),
            )),
            _ => Err(decide(
                Verdict::TrainFailed,
                "train",
                format!(
                    "training exited with code {} (the log tail is in the report)",
                    code.map(|c| c.to_string())
                        .unwrap_or_else(|| "unknown".into())
                ),
            )),
        }
    }

    async fn collect(
        &mut self,
        plan: &RunPlan,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
        if self.state.model.is_some() {
            return Ok(Ok(()));
        }
        progress.stage("collect", "hashing the rebuilt model");
        let rel = format!("{}/{}", rundir::OUT_DIR, plan.output);
        let dir = self.run_dir.root().join(&rel);
        if let Some(problem) = model_dir_problem(&dir) {
            return Ok(Err(decide(
                Verdict::MissingArtifact,
                "collect",
                format!(
                    "training succeeded but /out/{} {problem} (hint: the training command must write a Hugging Face model directory with config.json and *.safetensors there)",
                    plan.output
                ),
            )));
        }
        let model_dir = dir.clone();
        let counter = Arc::new(HashCounter::default());
        let hashing = counter.clone();
        let tree = match blocking_counted(
            "hashing the rebuilt model",
            "collect",
            &counter,
            progress,
            move || digest_tree_counted(&model_dir, &DigestOptions::default(), &hashing),
        )
        .await
        {
            Ok(Ok(t)) => t,
            Err(why) => return Ok(Err(decide(Verdict::InfraError, "collect", why))),
            Ok(Err(e)) => {
                return Ok(Err(decide(
                    Verdict::MissingArtifact,
                    "collect",
                    format!("the rebuilt model cannot be hashed: {e}"),
                )));
            }
        };
        let rec = ModelRecord {
            path: rel,
            digest: tree.root,
            files: tree.resources.len(),
        };
        self.record(
            events::MODEL_COLLECTED,
            "collect",
            serde_json::to_value(&rec).unwrap_or_default(),
        )?;
        progress.done("collect", &rec.digest.to_string());
        Ok(Ok(()))
    }

    /// The evaluate and compare stages. A policy evaluated natively (subnet 37) cannot be
    /// scored inside `verify` yet, so such a run ends `EVAL_FAILED` and says so plainly; a
    /// harness evaluation runs the organizer's image in the sandbox and compares its scores
    /// with the claims ([`crate::compare`]). The decision is journaled with the scores, so a
    /// resumed run decides the same without evaluating again.
    async fn evaluate(
        &mut self,
        engine: &DockerEngine,
        plan: &RunPlan,
        progress: &mut dyn Progress,
    ) -> Result<Decided, PipelineError> {
        if let Some(rec) = self
            .state
            .eval
            .clone()
            .and_then(|v| serde_json::from_value::<EvalRecord>(v).ok())
        {
            return Ok(decide(rec.verdict, &rec.stage, rec.reason));
        }
        let digest = self
            .state
            .model
            .as_ref()
            .map(|m| m.digest.to_string())
            .unwrap_or_default();
        if plan.harness.is_none()
            && let Some(native) = plan.native.clone()
        {
            let decided = self.run_native(&native, progress).await?;
            let Decided(v) = &decided.0;
            self.record(
                events::EVAL_FINISHED,
                &v.stage,
                serde_json::to_value(&decided.1).unwrap_or_default(),
            )?;
            progress.done("evaluate", v.verdict.as_str());
            return Ok(decided.0);
        }
        let Some(harness) = plan.harness.clone() else {
            let tasks: Vec<String> = self
                .policy
                .as_ref()
                .map(|p| p.evaluation.tasks.iter().map(|t| t.name.clone()).collect())
                .unwrap_or_default();
            return Ok(decide(
                Verdict::EvalFailed,
                "evaluate",
                format!(
                    "the rebuilt model was trained and hashed ({digest}, at out/{}), but the policy's tasks ({}) are scored natively and no task data was given (hint: pass --task-data DIR with the samples the competition scored, one `<TASK>.jsonl` each, or --eval-image with an organizer's evaluation image)",
                    plan.output,
                    tasks.join(", ")
                ),
            ));
        };
        let decided = self.run_harness(engine, plan, &harness, progress).await?;
        let Decided(v) = &decided.0;
        self.record(
            events::EVAL_FINISHED,
            &v.stage,
            serde_json::to_value(&decided.1).unwrap_or_default(),
        )?;
        progress.done("evaluate", v.verdict.as_str());
        Ok(decided.0)
    }

    /// The harness image must be on the host before anything is built or trained: finding it
    /// missing after a day of training would waste the day. Checked until the evaluation ran.
    async fn eval_image_present(
        &self,
        engine: &DockerEngine,
        plan: &RunPlan,
    ) -> Result<Result<(), Decided>, PipelineError> {
        let Some(h) = &plan.harness else {
            return Ok(Ok(()));
        };
        if self.state.eval.is_some() {
            return Ok(Ok(()));
        }
        Ok(match engine.image_exists(&h.image).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(decide(
                Verdict::InfraError,
                "plan",
                format!(
                    "the evaluation image `{}` is not on this host, so nothing was built or trained; the verdict says nothing about the submission (hint: load the organizer's image with `docker load -i FILE`, or name a local one with --eval-image, then run verify again)",
                    h.image
                ),
            )),
            Err(e) => Err(infra("plan", &e)),
        })
    }

    /// Scores the rebuilt model natively: `reprobox-eval` per task on the organizer's task data
    /// (off the runner's task: it is CPU- or GPU-bound for minutes), then the same comparison
    /// as a harness's scores.
    async fn run_native(
        &mut self,
        native: &super::evaluate::NativePlan,
        progress: &mut dyn Progress,
    ) -> Result<(Decided, EvalRecord), PipelineError> {
        let record = |verdict: Verdict, stage: &str, reason: String| EvalRecord {
            evaluator: "native".into(),
            image: native.evaluator.display().to_string(),
            outcome: None,
            scores_file: None,
            scores_sha256: None,
            comparison: None,
            side_by_side: None,
            server: None,
            native: None,
            verdict,
            stage: stage.into(),
            reason,
        };
        let plan_gpu = self
            .plan
            .as_ref()
            .and_then(|p| p.gpu.as_ref())
            .map(|g| g.uuid.clone());
        let (Some(model), Some(policy)) = (self.state.model.clone(), self.policy.clone()) else {
            let reason = "no rebuilt model or policy was recorded".to_owned();
            return Ok((
                decide(Verdict::MissingArtifact, "collect", reason.clone()),
                record(Verdict::MissingArtifact, "collect", reason),
            ));
        };
        self.record(
            events::EVAL_STARTED,
            "evaluate",
            serde_json::json!({
                "evaluator": native.evaluator,
                "evaluator_sha256": native.evaluator_sha256,
                "data_dir": native.data_dir,
                "eval_secs": native.eval_secs,
                "model": model.digest,
            }),
        )?;
        progress.stage(
            "evaluate",
            &format!(
                "scoring the rebuilt model natively on {} task(s) with {}",
                policy.evaluation.tasks.len(),
                native.evaluator.display()
            ),
        );
        let opts = crate::native::NativeOptions {
            evaluator: native.evaluator.clone(),
            data_dir: native.data_dir.clone(),
            out_dir: self.run_dir.eval_dir(),
            max_examples: native.max_examples,
            enforce_minimum: !self.dry_run,
            time_limit: Duration::from_secs(native.eval_secs),
            // Only the GPU this run holds the lease on; none for a CPU run.
            device: match &plan_gpu {
                Some(uuid) => crate::native::NativeDevice::Gpu(uuid.clone()),
                None => crate::native::NativeDevice::Cpu,
            },
            handle: crate::native::NativeHandle::default(),
            seed: native.seed.clone(),
        };
        // If this future is dropped (Ctrl-C), the evaluator dies with it.
        struct KillOnDrop(crate::native::NativeHandle, bool);
        impl Drop for KillOnDrop {
            fn drop(&mut self) {
                if self.1 {
                    self.0.kill();
                }
            }
        }
        let mut guard = KillOnDrop(opts.handle.clone(), true);
        let model_dir = self.run_dir.root().join(&model.path);
        let scored_policy = policy.clone();
        let handle = opts.handle.clone();
        let limit = opts.time_limit;
        let mut task = tokio::task::spawn_blocking(move || {
            crate::native::evaluate(&model_dir, &scored_policy, &opts, &mut |_| {})
        });
        let started = Instant::now();
        let every = Duration::from_secs(1);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let result = loop {
            tokio::select! {
                r = &mut task => break r,
                _ = tick.tick() => {
                    let s = handle.status();
                    let detail = format!("{} (task {} of {})", s.task, s.index, s.tasks);
                    progress.tick(&Tick {
                        stage: "evaluate",
                        elapsed: started.elapsed(),
                        limit: Some(limit),
                        count: (s.examples > 0).then_some(Count {
                            done: s.done,
                            total: Some(s.examples),
                            unit: CountUnit::Examples,
                        }),
                        detail: (!s.task.is_empty()).then_some(detail.as_str()),
                        ..Tick::default()
                    });
                }
            }
        };
        guard.1 = false;
        let (scores, tasks) = match result {
            Ok(Ok(r)) => r,
            Ok(Err(
                e @ (crate::native::NativeError::Spawn { .. }
                | crate::native::NativeError::Io { .. }),
            )) => {
                let reason = e.to_string();
                return Ok((
                    decide(Verdict::InfraError, "evaluate", reason.clone()),
                    record(Verdict::InfraError, "evaluate", reason),
                ));
            }
            Ok(Err(e)) => {
                let reason = e.to_string();
                return Ok((
                    decide(Verdict::EvalFailed, "evaluate", reason.clone()),
                    record(Verdict::EvalFailed, "evaluate", reason),
                ));
            }
            Err(e) => {
                let reason = format!("the native evaluation stopped: {e}");
                return Ok((
                    decide(Verdict::InfraError, "evaluate", reason.clone()),
                    record(Verdict::InfraError, "evaluate", reason),
                ));
            }
        };
        // The same scores.json a harness writes: what compare reads and audit verify rehashes.
        let scores_path = self.run_dir.eval_dir().join("scores.json");
        let body = serde_json::to_vec_pretty(&scores).unwrap_or_default();
        std::fs::write(&scores_path, &body).map_err(|source| PipelineError::Write {
            path: scores_path.clone(),
            source,
        })?;
        let claims = &self.lm.manifest.claims.scores;
        let mut rec;
        let decided =
            match crate::compare::compare(&policy.evaluation, claims, &scores, &self.run_id) {
                Ok(c) => {
                    rec = record(c.verdict, "compare", c.reason.clone()).with_comparison(&c);
                    decide(c.verdict, "compare", c.reason)
                }
                Err(e) => {
                    rec = record(Verdict::EvalFailed, "compare", e.to_string());
                    decide(Verdict::EvalFailed, "compare", e.to_string())
                }
            };
        rec.scores_file = Some(format!("{}/scores.json", rundir::EVAL_DIR));
        rec.scores_sha256 = {
            use sha2::Digest as _;
            Some(format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(&body))
            ))
        };
        rec.native = serde_json::to_value(&tasks).ok();
        Ok((decided, rec))
    }

    /// The harness container for one model: `model_dir` read-only at `/inputs/model`,
    /// `out_dir` as its only writable mount, the policy's tasks and the dry-run settings in its
    /// environment.
    fn harness_spec(
        &self,
        plan: &RunPlan,
        harness: &HarnessPlan,
        profile: &SandboxProfile,
        stage: &str,
        model_dir: PathBuf,
        out_dir: PathBuf,
    ) -> RunSpec {
        let tasks: Vec<String> = self
            .policy
            .as_ref()
            .map(|p| p.evaluation.tasks.iter().map(|t| t.name.clone()).collect())
            .unwrap_or_default();
        let mut env = vec![
            (
                "REPROBOX_MODEL".to_string(),
                format!(
                    "{}/{}",
                    sandbox::container::INPUTS_ROOT,
                    super::evaluate::MODEL_TARGET
                ),
            ),
            (
                "REPROBOX_SCORES".to_string(),
                format!("{}/{}", sandbox::container::OUT_MOUNT, harness.scores_file),
            ),
            ("REPROBOX_TASKS".to_string(), tasks.join(",")),
            (
                "REPROBOX_DRY_RUN".to_string(),
                if self.dry_run { "1" } else { "0" }.to_string(),
            ),
        ];
        if self.dry_run
            && let Some(n) = self.policy.as_ref().and_then(|p| p.dry_run.eval_examples)
        {
            env.push(("REPROBOX_DRY_RUN_EXAMPLES".into(), n.to_string()));
        }
        RunSpec {
            run_id: self.run_id.clone(),
            stage: stage.into(),
            image: harness.image.clone(),
            command: harness.command.clone(),
            env,
            workdir: None,
            profile: profile.clone(),
            limits: ContainerLimits {
                memory_bytes: plan.limits.memory_bytes,
                disk_bytes: plan.limits.disk_bytes,
                cpus: None,
            },
            out_dir,
            inputs: vec![InputMount {
                host: model_dir,
                target: super::evaluate::MODEL_TARGET.into(),
            }],
            gpu: plan
                .gpu
                .as_ref()
                .map(|g| crate::gpu::device_request(&g.uuid)),
            storage_quota_supported: false,
            // A runner that dies mid-evaluation leaves a container that any later runner stops
            // once this passes (`sandbox::reap_expired`): the evaluation's wall clock and a
            // grace period, counted from now.
            deadline_unix: Some(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    .saturating_add(harness.eval_secs)
                    .saturating_add(profile.grace_period.as_secs()),
            ),
        }
    }

    /// Runs one evaluator container (`spec`, from [`Self::harness_spec`]). With an HTTP harness
    /// (`harness.server`), the submission's built image first serves `model_dir` on an internal
    /// network and the evaluator gets `REPROBOX_MODEL_URL` ([`sandbox::serve`]). Returns the
    /// evaluator's outcome, or the verdict and reason that end the evaluation, and the server's
    /// record when there was one.
    #[expect(
        clippy::too_many_arguments,
        reason = "the evaluator's container, its model and the sink it ticks"
    )]
    async fn run_evaluator(
        &self,
        engine: &DockerEngine,
        harness: &HarnessPlan,
        spec: &RunSpec,
        paths: &RunPaths,
        model_dir: PathBuf,
        submitted: bool,
        progress: &mut dyn Progress,
    ) -> (
        Result<sandbox::RunOutcome, (Verdict, String)>,
        Option<ServerRecord>,
    ) {
        let limit = Duration::from_secs(harness.eval_secs);
        let map_err = |e: &SandboxError| {
            if e.is_infra() || missing_gpu_runtime(e) {
                Verdict::InfraError
            } else {
                Verdict::EvalFailed
            }
        };
        let Some(server) = &harness.server else {
            let live = Arc::new(sandbox::LiveStats::default());
            let run = sandbox::run_container_live(
                engine,
                spec,
                paths,
                Deadline::AfterStart(limit),
                live.clone(),
            );
            let ran = ticking(run, "evaluate", limit, &live, None, progress)
                .await
                .map_err(|e| (map_err(&e), e.to_string()));
            return (ran, None);
        };
        // The server is the submission's own image, by the id the build recorded.
        let Some(image) = self.state.image_id.clone() else {
            return (
                Err((
                    Verdict::InfraError,
                    "no built image was recorded, so the model server cannot be started (hint: start a new run)".into(),
                )),
                None,
            );
        };
        match engine.image_exists(&image).await {
            Ok(true) => {}
            Ok(false) => {
                return (
                    Err((
                        Verdict::InfraError,
                        format!(
                            "the submission's image {image} was removed from this host after it was built, so the model server cannot be started; the verdict says nothing about the submission (hint: start a new run)"
                        ),
                    )),
                    None,
                );
            }
            Err(e) => return (Err((Verdict::InfraError, e.to_string())), None),
        }
        let (stage, log, out) = if submitted {
            (
                "eval-submitted-server",
                super::evaluate::SERVER_SUBMITTED_LOG,
                self.run_dir
                    .root()
                    .join(super::evaluate::SERVER_OUT_DIR)
                    .join(SUBMITTED_DIR),
            )
        } else {
            (
                "eval-server",
                super::evaluate::SERVER_LOG,
                self.run_dir.root().join(super::evaluate::SERVER_OUT_DIR),
            )
        };
        let url = sandbox::ServeSpec::model_url(server.port);
        let server_spec = RunSpec {
            run_id: self.run_id.clone(),
            stage: stage.into(),
            image: image.clone(),
            command: server.command.clone(),
            env: vec![
                (
                    "REPROBOX_MODEL".into(),
                    format!(
                        "{}/{}",
                        sandbox::container::INPUTS_ROOT,
                        super::evaluate::MODEL_TARGET
                    ),
                ),
                ("REPROBOX_PORT".into(), server.port.to_string()),
            ],
            workdir: None,
            profile: spec.profile.clone(),
            limits: spec.limits,
            out_dir: out,
            inputs: vec![InputMount {
                host: model_dir,
                target: super::evaluate::MODEL_TARGET.into(),
            }],
            // The server does the inference, so it holds the GPU; the harness is a client.
            gpu: spec.gpu.clone(),
            storage_quota_supported: false,
            // Readiness comes first, then the evaluation: both bound its life.
            deadline_unix: spec
                .deadline_unix
                .map(|d| d.saturating_add(server.ready_timeout_secs)),
        };
        let mut client = spec.clone();
        client.env.push(("REPROBOX_MODEL_URL".into(), url.clone()));
        client.gpu = None;
        let serve = sandbox::ServeSpec {
            server: server_spec,
            server_paths: RunPaths {
                log: self.run_dir.root().join(log),
                telemetry: self.run_dir.telemetry(),
            },
            port: server.port,
            readiness: sandbox::Readiness {
                method: server.ready_method.clone(),
                path: server.ready_path.clone(),
                body: server.ready_body.clone(),
                timeout: Duration::from_secs(server.ready_timeout_secs),
            },
            client,
            client_paths: paths.clone(),
            client_limit: limit,
        };
        let mut record = ServerRecord {
            image,
            network: serve.network_name(),
            url,
            ready_after_s: None,
            outcome: None,
            log: log.to_owned(),
            cleanup_error: None,
        };
        match sandbox::run_with_server(engine, &serve).await {
            Ok(done) => {
                record.cleanup_error = done.cleanup_error.clone();
                record.outcome = done
                    .server
                    .as_ref()
                    .and_then(|o| serde_json::to_value(o).ok());
                match done.served {
                    sandbox::Served::Evaluated {
                        client,
                        ready_after_s,
                    } => {
                        record.ready_after_s = Some(ready_after_s);
                        (Ok(*client), Some(record))
                    }
                    sandbox::Served::NotReady { reason } => {
                        let tail = done
                            .server
                            .as_ref()
                            .map(|o| o.log.tail.join("\n"))
                            .filter(|t| !t.trim().is_empty())
                            .map(|t| format!("; the server's log ({log}) ends:\n{t}"))
                            .unwrap_or_else(|| format!("; the server wrote nothing ({log})"));
                        (
                            Err((Verdict::EvalFailed, format!("{reason}{tail}"))),
                            Some(record),
                        )
                    }
                }
            }
            Err(e) => {
                let verdict = match &e {
                    sandbox::ServeError::Server(inner) | sandbox::ServeError::Client(inner)
                        if missing_gpu_runtime(inner) =>
                    {
                        Verdict::InfraError
                    }
                    e if e.is_infra() => Verdict::InfraError,
                    _ => Verdict::EvalFailed,
                };
                (Err((verdict, e.to_string())), Some(record))
            }
        }
    }

    /// Runs the harness container and judges what it wrote. Returns the verdict and the record
    /// to journal; `Err` only when nothing can be recorded.
    async fn run_harness(
        &mut self,
        engine: &DockerEngine,
        plan: &RunPlan,
        harness: &HarnessPlan,
        progress: &mut dyn Progress,
    ) -> Result<(Decided, EvalRecord), PipelineError> {
        let fail = |verdict: Verdict,
                    stage: &str,
                    outcome: Option<&sandbox::RunOutcome>,
                    reason: String| {
            let rec = EvalRecord::new(harness, outcome, verdict, stage, reason.clone());
            Ok((decide(verdict, stage, reason), rec))
        };
        if !super::evaluate::scores_file_is_safe(&harness.scores_file) {
            return fail(
                Verdict::InfraError,
                "evaluate",
                None,
                format!(
                    "the policy's harness scores_file `{}` leaves the evaluation directory (hint: name a file such as `scores.json`)",
                    harness.scores_file
                ),
            );
        }
        match engine.image_exists(&harness.image).await {
            Ok(true) => {}
            Ok(false) => {
                return fail(
                    Verdict::InfraError,
                    "evaluate",
                    None,
                    format!(
                        "the evaluation image `{}` was removed from this host after the run began; nothing was evaluated and the verdict says nothing about the submission (hint: the rebuilt model is kept at {}; load the image with `docker load -i FILE` and start a new run)",
                        harness.image,
                        self.run_dir.root().join(&plan.output).display()
                    ),
                );
            }
            Err(e) => return fail(Verdict::InfraError, "evaluate", None, e.to_string()),
        }
        let profile = match load_profile(&plan.sandbox_profile) {
            Ok(p) => p,
            Err(e) => return fail(Verdict::InfraError, "evaluate", None, e.to_string()),
        };
        let Some(model) = self.state.model.clone() else {
            return fail(
                Verdict::MissingArtifact,
                "collect",
                None,
                "no rebuilt model was recorded".into(),
            );
        };
        // A container of an earlier runner of this run (it died during evaluation) goes first:
        // the evaluation starts over, with nothing of the last attempt's output.
        match engine
            .list_containers(&format!("{}={}", sandbox::LABEL_RUN, self.run_id))
            .await
        {
            Ok(list) => {
                for c in list {
                    if matches!(
                        c.labels.get(sandbox::LABEL_STAGE).map(String::as_str),
                        Some("eval" | "eval-submitted" | "eval-server" | "eval-submitted-server")
                    ) && let Err(e) = engine.remove_container(&c.id).await
                    {
                        return fail(Verdict::InfraError, "evaluate", None, e.to_string());
                    }
                }
            }
            Err(e) => return fail(Verdict::InfraError, "evaluate", None, e.to_string()),
        }
        let eval_dir = self.run_dir.eval_dir();
        let scores_path = eval_dir.join(&harness.scores_file);
        if let Err(e) = std::fs::remove_file(&scores_path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(PipelineError::Write {
                path: scores_path,
                source: e,
            });
        }
        let spec = self.harness_spec(
            plan,
            harness,
            &profile,
            "eval",
            self.run_dir.root().join(&model.path),
            eval_dir,
        );
        self.record(
            events::EVAL_STARTED,
            "evaluate",
            serde_json::json!({
                "image": harness.image,
                "command": harness.command,
                "eval_secs": harness.eval_secs,
                "model": model.digest,
            }),
        )?;
        progress.stage(
            "evaluate",
            &match harness.server {
                Some(_) => format!(
                    "serving the rebuilt model from the submission's image and evaluating it with {}",
                    harness.image
                ),
                None => format!("evaluating the rebuilt model with {}", harness.image),
            },
        );
        let paths = RunPaths {
            log: self.run_dir.eval_log(),
            telemetry: self.run_dir.telemetry(),
        };
        let model_dir = self.run_dir.root().join(&model.path);
        let (ran, server) = self
            .run_evaluator(engine, harness, &spec, &paths, model_dir, false, progress)
            .await;
        let server = server.and_then(|s| serde_json::to_value(s).ok());
        let outcome = match ran {
            Ok(o) => o,
            Err((verdict, reason)) => {
                let mut rec = EvalRecord::new(harness, None, verdict, "evaluate", reason.clone());
                rec.server = server;
                return Ok((decide(verdict, "evaluate", reason), rec));
            }
        };
        let tail = || {
            let t = outcome.log.tail.join("\n");
            if t.trim().is_empty() {
                String::new()
            } else {
                format!("; the log ends:\n{t}")
            }
        };
        let failed = match outcome.status {
            sandbox::RunStatus::Succeeded => None,
            sandbox::RunStatus::Failed { exit_code } => Some(format!(
                "the evaluation exited with code {exit_code} (logs/eval.log){}",
                tail()
            )),
            sandbox::RunStatus::Oom => Some(format!(
                "the evaluation ran out of memory ({} bytes){}",
                plan.limits.memory_bytes,
                tail()
            )),
            sandbox::RunStatus::Timeout => Some(format!(
                "the evaluation ran past its wall clock of {} s{}",
                harness.eval_secs,
                tail()
            )),
        };
        if let Some(reason) = failed {
            let mut rec = EvalRecord::new(
                harness,
                Some(&outcome),
                Verdict::EvalFailed,
                "evaluate",
                reason.clone(),
            );
            rec.server = server;
            return Ok((decide(Verdict::EvalFailed, "evaluate", reason), rec));
        }
        let scores = match crate::compare::read_scores(&scores_path) {
            Ok(s) => s,
            Err(e) => {
                return fail(
                    Verdict::EvalFailed,
                    "evaluate",
                    Some(&outcome),
                    e.to_string(),
                );
            }
        };
        use sha2::Digest as _;
        let scores_sha256 = crate::input_file::read(&scores_path, crate::compare::SCORES_CAP)
            .ok()
            .map(|b| format!("sha256:{}", hex::encode(sha2::Sha256::digest(&b))));
        let claims = &self.lm.manifest.claims.scores;
        let Some(policy) = self.policy.as_ref() else {
            return fail(
                Verdict::InfraError,
                "compare",
                Some(&outcome),
                format!("the policy `{}` is no longer available", plan.policy),
            );
        };
        let mut rec;
        let decided =
            match crate::compare::compare(&policy.evaluation, claims, &scores, &self.run_id) {
                Ok(c) => {
                    rec = EvalRecord::new(
                        harness,
                        Some(&outcome),
                        c.verdict,
                        "compare",
                        c.reason.clone(),
                    )
                    .with_comparison(&c);
                    decide(c.verdict, "compare", c.reason)
                }
                Err(e) => {
                    rec = EvalRecord::new(
                        harness,
                        Some(&outcome),
                        Verdict::EvalFailed,
                        "compare",
                        e.to_string(),
                    );
                    decide(Verdict::EvalFailed, "compare", e.to_string())
                }
            };
        rec.scores_file = Some(format!("{}/{}", rundir::EVAL_DIR, harness.scores_file));
        rec.scores_sha256 = scores_sha256;
        rec.server = server;
        if rec.comparison.is_some() && self.lm.manifest.claims.submitted_model.is_some() {
            let sbs = self
                .score_submitted(engine, plan, harness, &profile, &scores, progress)
                .await?;
            rec.side_by_side = serde_json::to_value(sbs).ok();
        }
        Ok((decided, rec))
    }

    /// Scores the model the team submitted (`claims.submitted_model`) with the same harness, in
    /// the same sandbox, on the same examples, and pairs it with the rebuilt model's scores.
    /// Whatever goes wrong is recorded in the result: the verdict is the claims' alone.
    async fn score_submitted(
        &mut self,
        engine: &DockerEngine,
        plan: &RunPlan,
        harness: &HarnessPlan,
        profile: &SandboxProfile,
        rebuilt: &crate::compare::Scores,
        progress: &mut dyn Progress,
    ) -> Result<SideBySide, PipelineError> {
        let rel = self
            .lm
            .manifest
            .claims
            .submitted_model
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let mut sbs = SideBySide {
            model: rel.clone(),
            digest: None,
            outcome: None,
            scores_file: None,
            tasks: Vec::new(),
            error: None,
        };
        let dir = self.lm.root.join(&rel);
        if !dir.is_dir() {
            sbs.error = Some(format!(
                "`{rel}` (claims.submitted_model) is not a directory in the submission"
            ));
            return Ok(sbs);
        }
        let hashed = dir.clone();
        sbs.digest = tokio::task::spawn_blocking(move || {
            digest_tree(&hashed, &DigestOptions::default()).map(|m| m.root.to_string())
        })
        .await
        .ok()
        .and_then(Result::ok);
        let out_dir = self.run_dir.eval_dir().join(SUBMITTED_DIR);
        let scores_path = out_dir.join(&harness.scores_file);
        let prepared =
            std::fs::create_dir_all(&out_dir).and_then(|()| {
                match std::fs::remove_file(&scores_path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            });
        if let Err(source) = prepared {
            return Err(PipelineError::Write {
                path: scores_path,
                source,
            });
        }
        let spec = self.harness_spec(
            plan,
            harness,
            profile,
            "eval-submitted",
            dir.clone(),
            out_dir,
        );
        progress.stage(
            "evaluate",
            &format!(
                "evaluating the submitted model {rel} with {}",
                harness.image
            ),
        );
        let paths = RunPaths {
            log: self.run_dir.root().join(rundir::EVAL_SUBMITTED_LOG),
            telemetry: self.run_dir.telemetry(),
        };
        let (ran, _server) = self
            .run_evaluator(engine, harness, &spec, &paths, dir, true, progress)
            .await;
        let outcome = match ran {
            Ok(o) => o,
            Err((_, reason)) => {
                sbs.error = Some(reason);
                return Ok(sbs);
            }
        };
        sbs.outcome = serde_json::to_value(&outcome).ok();
        if outcome.status != sandbox::RunStatus::Succeeded {
            sbs.error = Some(format!(
                "the evaluation of the submitted model did not succeed ({:?}; {})",
                outcome.status,
                rundir::EVAL_SUBMITTED_LOG
            ));
            return Ok(sbs);
        }
        let submitted = match crate::compare::read_scores(&scores_path) {
            Ok(s) => s,
            Err(e) => {
                sbs.error = Some(e.to_string());
                return Ok(sbs);
            }
        };
        sbs.scores_file = Some(format!(
            "{}/{SUBMITTED_DIR}/{}",
            rundir::EVAL_DIR,
            harness.scores_file
        ));
        if let Some(policy) = &self.policy {
            sbs.tasks =
                crate::compare::paired(&policy.evaluation, rebuilt, &submitted, &self.run_id)
                    .iter()
                    .filter_map(|t| serde_json::to_value(t).ok())
                    .collect();
        }
        Ok(sbs)
    }

    /// A dry run's estimate of whether the full training fits the policy's wall clock, from
    /// the progress its log shows.
    fn fit_estimate(&self) -> Option<crate::estimate::FitEstimate> {
        if !self.dry_run {
            return None;
        }
        let limits = &self.plan.as_ref()?.limits;
        let limit = limits.policy_train_secs.unwrap_or(limits.train_secs);
        let started = self.state.outcome.as_ref()?.get("started_at")?.as_str()?;
        let started = chrono::DateTime::parse_from_rfc3339(started).ok()?;
        crate::estimate::from_log(&self.run_dir.train_log(), started.to_utc(), limit)
    }

    fn write_report(&mut self, decided: &VerdictRecord) -> Result<(), PipelineError> {
        let mut artifacts = Artifacts::new();
        let rd = self.run_dir.clone();
        let mut add = |r: Result<ArtifactRecord, crate::provenance::ProvenanceError>| {
            if let Ok(r) = r {
                artifacts.push(r);
            }
        };
        for (name, rel) in [
            ("journal", None),
            ("plan", Some(rundir::PLAN)),
            ("build_log", Some(rundir::BUILD_LOG)),
            ("train_log", Some(rundir::TRAIN_LOG)),
            ("eval_log", Some(rundir::EVAL_LOG)),
            ("eval_submitted_log", Some(rundir::EVAL_SUBMITTED_LOG)),
            ("telemetry", Some(rundir::TELEMETRY)),
        ] {
            if let Some(rel) = rel
                && rd.root().join(rel).is_file()
            {
                add(ArtifactRecord::file(&rd, name, rel));
            }
        }
        for i in self.state.inputs.iter().flatten() {
            let rel = format!("{}/{}", rundir::INPUTS_DIR, i.name);
            add(ArtifactRecord::tree(
                &rd,
                &format!("inputs/{}", i.name),
                &rel,
                None,
            ));
        }
        if let Some(m) = &self.state.model {
            add(ArtifactRecord::tree(&rd, "model", &m.path, None));
        }
        if let Some(rel) = self
            .state
            .eval
            .as_ref()
            .and_then(|e| e.get("scores_file"))
            .and_then(|v| v.as_str())
            && rd.root().join(rel).is_file()
        {
            add(ArtifactRecord::file(&rd, "scores", rel));
        }
        // A native evaluation's evaluated samples and the evaluator's output, per task.
        for task in self
            .state
            .eval
            .as_ref()
            .and_then(|e| e.get("native"))
            .and_then(|n| n.as_array())
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("task").and_then(|v| v.as_str()))
        {
            for (kind, file) in [
                ("data", format!("{task}.data.jsonl")),
                ("output", format!("{task}.json")),
            ] {
                let rel = format!("{}/{file}", rundir::EVAL_DIR);
                if rd.root().join(&rel).is_file() {
                    add(ArtifactRecord::file(
                        &rd,
                        &format!("native/{task}/{kind}"),
                        &rel,
                    ));
                }
            }
        }
        if let Some(rel) = self
            .state
            .eval
            .as_ref()
            .and_then(|e| e.get("side_by_side"))
            .and_then(|s| s.get("scores_file"))
            .and_then(|v| v.as_str())
            && rd.root().join(rel).is_file()
        {
            add(ArtifactRecord::file(&rd, "submitted_scores", rel));
        }
        let head = self.journal.head();
        let mut report = Report::new(
            self.plan.as_ref(),
            &self.run_id,
            self.dry_run,
            &self.state,
            decided,
            artifacts,
            head.hash,
        );
        report.estimate = self.fit_estimate();
        let path = self.run_dir.report_json();
        report.write(&path).map_err(|source| PipelineError::Write {
            path: path.clone(),
            source,
        })?;
        crate::render::write_human_reports(&self.run_dir, &report).map_err(|source| {
            PipelineError::Write {
                path: self.run_dir.root().join(rundir::REPORT_HTML),
                source,
            }
        })?;
        if let Some(plan) = &self.plan {
            super::attest::write_provenance(
                &self.run_dir,
                plan,
                &self.lm,
                &self.state,
                decided,
                &report.artifacts,
                head,
                &path,
                self.sign_key.as_ref(),
            )
            .map_err(|source| PipelineError::Provenance {
                path: self.run_dir.provenance(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The last `n` lines of a text file (at most 64 KiB are read), or nothing when it cannot be read.
fn last_lines(path: &Path, n: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = crate::input_file::open(path, "log") else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 << 10)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Environment variable naming a directory of sandbox profiles that replace the built-in ones
/// of the same name (an organizer's site profile, or a test's short grace period).
pub const SANDBOXES_ENV: &str = "REPROBOX_SANDBOXES";

fn load_profile(name: &str) -> Result<SandboxProfile, crate::sandbox::ProfileError> {
    match std::env::var_os(SANDBOXES_ENV) {
        Some(dir) if !dir.is_empty() => SandboxProfile::load(Path::new(&dir), name),
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

/// A container that stopped after its deadline timed out, however it ended: a reaper killed it
/// while no runner watched, or it finished on its own after the wall clock ran out while its
/// runner was dead. Its exit code says only how it was stopped.
fn stopped_after_deadline(
    mut outcome: sandbox::RunOutcome,
    deadline: SystemTime,
) -> sandbox::RunOutcome {
    let finished = outcome
        .finished_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis() as f64 / 1000.0);
    let deadline = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(f64::MAX);
    if finished.is_some_and(|f| f > deadline) {
        outcome.status = sandbox::RunStatus::Timeout;
    }
    outcome
}

/// Why `dir` is not a usable Hugging Face model directory, if it is not.
fn model_dir_problem(dir: &Path) -> Option<&'static str> {
    if !dir.is_dir() {
        return Some("does not exist");
    }
    if !dir.join("config.json").is_file() {
        return Some("has no config.json");
    }
    let has_weights = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".safetensors"));
    if !has_weights {
        return Some("has no *.safetensors weights");
    }
    None
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

/// Watches the training container until it stops, ticking progress about once a second.
#[expect(
    clippy::too_many_arguments,
    reason = "each argument is a distinct part of the run"
)]
async fn watch(
    engine: &DockerEngine,
    id: &str,
    profile: &SandboxProfile,
    paths: &RunPaths,
    deadline: SystemTime,
    since: Option<String>,
    limit: Duration,
    gpu: Option<&GpuWatch>,
    progress: &mut dyn Progress,
) -> Result<sandbox::RunOutcome, SandboxError> {
    let already = deadline
        .duration_since(SystemTime::now())
        .map(|left| limit.saturating_sub(left))
        .unwrap_or(limit);
    let live = std::sync::Arc::new(sandbox::LiveStats::default());
    let fut = sandbox::attach_live(
        engine,
        id,
        profile,
        paths,
        Deadline::At(deadline),
        since,
        live.clone(),
    );
    ticking_from(fut, "train", already, limit, &live, gpu, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 9: `SystemTime::now() + limits.train()` overflowed (a panic) for a
    /// damaged plan's `train_secs`.
    #[test]
    fn a_deadline_past_the_clock_is_an_error_naming_the_field() {
        let mut limits: PlanLimits =
            serde_json::from_value(serde_json::json!({ "build_secs": 60, "train_secs": 60, "eval_secs": null, "memory_bytes": 1, "disk_bytes": null, "max_context_bytes": 1 }))
                .unwrap();
        let now = SystemTime::now();
        let plan = Path::new("run/plan.json");
        assert_eq!(
            train_deadline(now, &limits, plan).unwrap(),
            now + Duration::from_secs(60)
        );
        limits.train_secs = u64::MAX;
        let e = train_deadline(now, &limits, plan).unwrap_err().to_string();
        assert!(
            e.contains("run/plan.json")
                && e.contains("`limits.train_secs` is 18446744073709551615"),
            "{e}"
        );
    }

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

    #[test]
    fn model_dir_problems_are_named() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("model");
        assert_eq!(model_dir_problem(&d), Some("does not exist"));
        std::fs::create_dir(&d).unwrap();
        assert_eq!(model_dir_problem(&d), Some("has no config.json"));
        std::fs::write(d.join("config.json"), "{}").unwrap();
        assert_eq!(model_dir_problem(&d), Some("has no *.safetensors weights"));
        std::fs::write(d.join("model.safetensors"), "x").unwrap();
        assert_eq!(model_dir_problem(&d), None);
    }

    fn outcome(status: sandbox::RunStatus, finished_at: Option<&str>) -> sandbox::RunOutcome {
        sandbox::RunOutcome {
            container_id: "c".into(),
            status,
            exit_code: None,
            oom_killed: false,
            started_at: None,
            finished_at: finished_at.map(str::to_owned),
            deadline_unix: 0.0,
            watched_s: 0.0,
            termination: None,
            log: Default::default(),
            telemetry_samples: 0,
            resources: Default::default(),
        }
    }

    #[test]
    fn anything_that_stopped_after_the_deadline_timed_out() {
        use sandbox::RunStatus::*;
        // 2023-11-14T22:13:20Z
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let after = Some("2023-11-14T22:13:21.5Z");
        let before = Some("2023-11-14T22:13:19Z");
        for status in [Succeeded, Failed { exit_code: 137 }, Oom, Timeout] {
            assert_eq!(
                stopped_after_deadline(outcome(status, after), deadline).status,
                Timeout,
                "{status:?} after the deadline"
            );
        }
        for status in [Succeeded, Failed { exit_code: 1 }, Oom] {
            assert_eq!(
                stopped_after_deadline(outcome(status, before), deadline).status,
                status,
                "{status:?} before the deadline stays"
            );
            assert_eq!(
                stopped_after_deadline(outcome(status, None), deadline).status,
                status,
                "no finish time, no judgement"
            );
        }
    }
}
