//! The entry points: `verify` starts a run (its run id, directory, journal and GPU lease),
//! `resume` re-opens one from its journal, `recorded_verdict` reads a decided run without
//! touching it.

use super::*;

/// Runs the whole pipeline on a submission and returns its verdict.
pub async fn verify(
    opts: &VerifyOptions,
    progress: &mut dyn Progress,
) -> Result<RunResult, PipelineError> {
    verify_with(DockerHost, opts, progress).await
}

/// [`verify`] on the container engine `host` connects to (a [`crate::engine::FakeEngine`] in
/// tests).
pub async fn verify_with<H: Host>(
    host: H,
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
    let gpu = resolve_gpu(&host, &opts.gpu, opts.nvml_lib.as_deref())?;
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
        serde_json::to_value(RunStarted {
            run_id: run_id.clone(),
            submission: abs(&opts.submission),
            dry_run: opts.dry_run,
            gpu: gpu.clone(),
            nvml_lib: opts.nvml_lib.clone(),
            inputs_mirror: Some(abs(opts.inputs.root())),
            train_limit_s: opts.train_limit.map(|d| d.as_secs_f64()),
            eval_image: opts.eval_image.clone(),
            task_data: opts.task_data.as_ref().map(|p| abs(p)),
            task_seed: opts.task_seed.clone(),
            reprobox_version: Some(crate::VERSION.to_owned()),
        })
        .unwrap_or_default(),
    )?;
    let mut driver = Driver {
        host,
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
        sandboxes_dir: opts.sandboxes_dir.clone(),
        evaluator: opts.evaluator.clone(),
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
    resume_with(DockerHost, run_dir, opts, progress).await
}

/// [`resume`] on the container engine `host` connects to.
pub async fn resume_with<H: Host>(
    host: H,
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
    let bad_state = |detail: String| PipelineError::State {
        path: run_dir.to_owned(),
        detail,
    };
    let first = match entries.first() {
        Some(e) => RunStarted::from_entry(e).map_err(bad_state)?,
        None => return Err(bad_state("the journal is empty".into())),
    };
    let run_id = first.run_id.clone();
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
    let submission = plan
        .as_ref()
        .map(|p| p.submission.clone())
        .unwrap_or_else(|| first.submission.clone());
    let dry_run = first.dry_run;
    let gpu: Option<GpuInfo> = first.gpu.clone();
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
        .or_else(|| first.inputs_mirror.clone())
        .map(|root| InputsMirror::new(&root))
        .unwrap_or_else(|| opts.inputs.clone());
    let train_limit = match &plan {
        Some(p) => Some(p.limits.train()),
        None => recorded_train_limit(first.train_limit_s).map_err(bad_state)?,
    };
    let mut driver = Driver {
        host,
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
        eval_image: first.eval_image.clone(),
        task_data: first.task_data.clone(),
        task_seed: first.task_seed.clone(),
        plan,
        sign_key,
        nvml_lib: first.nvml_lib.clone(),
        stage: "check",
        watching: Arc::default(),
        sandboxes_dir: opts.sandboxes_dir.clone(),
        // The plan records the evaluator a native evaluation runs.
        evaluator: None,
    };
    driver.refresh_state()?;
    driver.run(progress).await
}

/// The training deadline `now + limits.train`; a limit that puts it past what the clock can hold
/// (only a damaged plan.json can: policies are bounded by [`crate::units::MAX_DURATION`]) is an
/// error naming the field, not an overflow panic.
pub(super) fn train_deadline(
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
pub(super) fn recorded_train_limit(v: Option<f64>) -> Result<Option<Duration>, String> {
    let Some(v) = v else { return Ok(None) };
    let max = crate::units::MAX_DURATION;
    match v {
        s if s > 0.0 && s <= max.as_secs_f64() => Ok(Duration::try_from_secs_f64(s).ok()),
        _ => Err(format!(
            "journal line 1 (`run_started`): `train_limit_s` is {v}, not a number of seconds between 0 and {} (hint: the journal is damaged; run `reprobox audit verify` on the run directory, or start a new run with `reprobox verify`)",
            max.as_secs()
        )),
    }
}

pub(super) fn abs(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

pub(super) fn read_key(
    path: Option<&Path>,
) -> Result<Option<crate::provenance::SigningKey>, PipelineError> {
    path.map(crate::provenance::read_signing_key)
        .transpose()
        .map_err(PipelineError::SignKey)
}

pub(super) fn resolve_gpu<H: Host>(
    host: &H,
    selector: &GpuSelector,
    nvml_lib: Option<&Path>,
) -> Result<Option<GpuInfo>, PipelineError> {
    if *selector == GpuSelector::None {
        return Ok(None);
    }
    let probe = host.gpu_probe(nvml_lib)?;
    let gpus = probe.gpus()?;
    Ok(crate::gpu::select(&gpus, selector)?)
}

pub(super) fn acquire_lease(
    dir: Option<&Path>,
    uuid: &str,
    run_id: &str,
) -> Result<GpuLease, PipelineError> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => crate::gpu::default_lease_dir()?,
    };
    Ok(GpuLease::acquire(&dir, uuid, run_id)?)
}

pub(super) fn digest_submission(dir: &Path) -> Result<String, PipelineError> {
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
}
