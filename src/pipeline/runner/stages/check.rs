//! The `check` stage: static compliance, recorded once per run.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    pub(in crate::pipeline::runner) fn check(
        &mut self,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
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
}
