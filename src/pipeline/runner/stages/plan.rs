//! The `plan` stage: everything the run will do, computed from the manifest, the policy and
//! the sandbox profile before any effect, and written to plan.json.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    pub(in crate::pipeline::runner) fn plan(
        &mut self,
    ) -> Result<Result<RunPlan, Decided>, PipelineError> {
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
        let profile = match load_profile(self.sandboxes_dir.as_deref(), &policy.sandbox) {
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
        let memory = crate::pipeline::memory::plan_memory(
            policy.limits.memory_bytes.unwrap_or(16 << 30),
            crate::pipeline::memory::host_memory_bytes(),
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
            sandbox_profile_digest: Some(profile.source_sha256),
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
            harness: crate::pipeline::evaluate::harness_plan(&policy, self.eval_image.as_deref()),
            native: None,
        };
        let mut plan = plan;
        if plan.harness.is_none()
            && let Some(dir) = &self.task_data
            && crate::native::is_native(&policy)
        {
            match crate::pipeline::evaluate::native_plan(
                &policy,
                dir,
                self.evaluator.as_deref(),
                self.dry_run,
                self.task_seed.clone(),
            ) {
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
}
