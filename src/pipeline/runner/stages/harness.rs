//! Harness evaluation: the organizer's image in the sandbox (with the submission's image
//! serving the model when the harness asks for a server), then `compare`.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    /// The harness container for one model: `model_dir` read-only at `/inputs/model`,
    /// `out_dir` as its only writable mount, the policy's tasks and the dry-run settings in its
    /// environment.
    pub(in crate::pipeline::runner) fn harness_spec(
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
                    crate::pipeline::evaluate::MODEL_TARGET
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
                target: crate::pipeline::evaluate::MODEL_TARGET.into(),
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
    pub(in crate::pipeline::runner) async fn run_evaluator(
        &self,
        engine: &H::Engine,
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
                crate::pipeline::evaluate::SERVER_SUBMITTED_LOG,
                self.run_dir
                    .root()
                    .join(crate::pipeline::evaluate::SERVER_OUT_DIR)
                    .join(SUBMITTED_DIR),
            )
        } else {
            (
                "eval-server",
                crate::pipeline::evaluate::SERVER_LOG,
                self.run_dir
                    .root()
                    .join(crate::pipeline::evaluate::SERVER_OUT_DIR),
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
                        crate::pipeline::evaluate::MODEL_TARGET
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
                target: crate::pipeline::evaluate::MODEL_TARGET.into(),
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
    pub(in crate::pipeline::runner) async fn run_harness(
        &mut self,
        engine: &H::Engine,
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
        if !crate::pipeline::evaluate::scores_file_is_safe(&harness.scores_file) {
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
        let profile = match self.planned_profile(plan) {
            Ok(p) => p,
            Err(e) => return fail(Verdict::InfraError, "evaluate", None, e),
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
        let scores_sha256 = crate::input_file::read(&scores_path, crate::compare::SCORES_CAP)
            .ok()
            .map(|b| crate::digest::bytes_sha256(&b).to_string());
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
}
