//! The `build` stage: the submission's image, with the policy's build network and limit.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    pub(in crate::pipeline::runner) async fn build(
        &mut self,
        engine: &H::Engine,
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
}
