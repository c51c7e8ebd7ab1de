//! The `train` stage: start (or find again) the training container, watch it to its end under
//! the deadline recorded before it started, and turn its outcome into a verdict or go on.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    pub(in crate::pipeline::runner) async fn train(
        &mut self,
        engine: &H::Engine,
        plan: &RunPlan,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
        if self.state.outcome.is_none() && self.state.interrupted.is_none() {
            let profile = match self.planned_profile(plan) {
                Ok(p) => p,
                Err(e) => return Ok(Err(decide(Verdict::InfraError, "train", e))),
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
    pub(in crate::pipeline::runner) async fn find_or_start(
        &mut self,
        engine: &H::Engine,
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
    pub(in crate::pipeline::runner) async fn watch_training(
        &mut self,
        engine: &H::Engine,
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
            Some(g) => match self.host.gpu_probe(self.nvml_lib.as_deref()) {
                Ok(probe) => Some(GpuWatch::start(
                    probe,
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
    pub(in crate::pipeline::runner) fn train_verdict(&self, plan: &RunPlan) -> Result<(), Decided> {
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

/// Watches the training container until it stops, ticking progress about once a second.
#[expect(
    clippy::too_many_arguments,
    reason = "each argument is a distinct part of the run"
)]
async fn watch<E: ContainerEngine>(
    engine: &E,
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
