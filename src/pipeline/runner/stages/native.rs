//! Native evaluation inside `verify`: the policy's tasks through `reprobox-eval` on the host.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    /// Scores the rebuilt model natively: `reprobox-eval` per task on the organizer's task data
    /// (off the runner's task: it is CPU- or GPU-bound for minutes), then the same comparison
    /// as a harness's scores.
    pub(in crate::pipeline::runner) async fn run_native(
        &mut self,
        native: &crate::pipeline::evaluate::NativePlan,
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
        rec.scores_sha256 = Some(crate::digest::bytes_sha256(&body).to_string());
        rec.native = serde_json::to_value(&tasks).ok();
        Ok((decided, rec))
    }
}
