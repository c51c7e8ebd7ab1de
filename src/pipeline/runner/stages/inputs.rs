//! The `inputs` stage: stage the declared base model and datasets from the mirror and verify
//! their digests.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    pub(in crate::pipeline::runner) async fn stage_inputs(
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
}
