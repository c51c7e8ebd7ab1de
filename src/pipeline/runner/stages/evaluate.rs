//! The `evaluate` stage: which evaluation the plan holds (native or an organizer's image),
//! and the image's presence before anything is built.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    /// The evaluate and compare stages. A policy evaluated natively (subnet 37) cannot be
    /// scored inside `verify` yet, so such a run ends `EVAL_FAILED` and says so plainly; a
    /// harness evaluation runs the organizer's image in the sandbox and compares its scores
    /// with the claims ([`crate::compare`]). The decision is journaled with the scores, so a
    /// resumed run decides the same without evaluating again.
    pub(in crate::pipeline::runner) async fn evaluate(
        &mut self,
        engine: &H::Engine,
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
    pub(in crate::pipeline::runner) async fn eval_image_present(
        &self,
        engine: &H::Engine,
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
}
