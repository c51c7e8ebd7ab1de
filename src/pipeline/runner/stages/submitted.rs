//! The submitted model scored beside the rebuilt one, by the same harness.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    /// Scores the model the team submitted (`claims.submitted_model`) with the same harness, in
    /// the same sandbox, on the same examples, and pairs it with the rebuilt model's scores.
    /// Whatever goes wrong is recorded in the result: the verdict is the claims' alone.
    pub(in crate::pipeline::runner) async fn score_submitted(
        &mut self,
        engine: &H::Engine,
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
}
