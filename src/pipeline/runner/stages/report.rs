//! The `report` step: report.json, the human reports and the provenance, once a verdict is
//! decided.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    /// A dry run's estimate of whether the full training fits the policy's wall clock, from
    /// the progress its log shows.
    pub(in crate::pipeline::runner) fn fit_estimate(&self) -> Option<crate::estimate::FitEstimate> {
        if !self.dry_run {
            return None;
        }
        let limits = &self.plan.as_ref()?.limits;
        let limit = limits.policy_train_secs.unwrap_or(limits.train_secs);
        let started = self.state.outcome.as_ref()?.get("started_at")?.as_str()?;
        let started = chrono::DateTime::parse_from_rfc3339(started).ok()?;
        crate::estimate::from_log(&self.run_dir.train_log(), started.to_utc(), limit)
    }

    pub(in crate::pipeline::runner) fn write_report(
        &mut self,
        decided: &VerdictRecord,
    ) -> Result<(), PipelineError> {
        let mut artifacts = Artifacts::new();
        let rd = self.run_dir.clone();
        let mut add = |r: Result<ArtifactRecord, crate::provenance::ProvenanceError>| {
            if let Ok(r) = r {
                artifacts.push(r);
            }
        };
        for (name, rel) in [
            ("journal", None),
            ("plan", Some(rundir::PLAN)),
            ("build_log", Some(rundir::BUILD_LOG)),
            ("train_log", Some(rundir::TRAIN_LOG)),
            ("eval_log", Some(rundir::EVAL_LOG)),
            ("eval_submitted_log", Some(rundir::EVAL_SUBMITTED_LOG)),
            ("telemetry", Some(rundir::TELEMETRY)),
        ] {
            if let Some(rel) = rel
                && rd.root().join(rel).is_file()
            {
                add(ArtifactRecord::file(&rd, name, rel));
            }
        }
        for i in self.state.inputs.iter().flatten() {
            let rel = format!("{}/{}", rundir::INPUTS_DIR, i.name);
            add(ArtifactRecord::tree(
                &rd,
                &format!("inputs/{}", i.name),
                &rel,
                None,
            ));
        }
        if let Some(m) = &self.state.model {
            add(ArtifactRecord::tree(&rd, "model", &m.path, None));
        }
        if let Some(rel) = self
            .state
            .eval
            .as_ref()
            .and_then(|e| e.get("scores_file"))
            .and_then(|v| v.as_str())
            && rd.root().join(rel).is_file()
        {
            add(ArtifactRecord::file(&rd, "scores", rel));
        }
        // A native evaluation's evaluated samples and the evaluator's output, per task.
        for task in self
            .state
            .eval
            .as_ref()
            .and_then(|e| e.get("native"))
            .and_then(|n| n.as_array())
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("task").and_then(|v| v.as_str()))
        {
            for (kind, file) in [
                ("data", format!("{task}.data.jsonl")),
                ("output", format!("{task}.json")),
            ] {
                let rel = format!("{}/{file}", rundir::EVAL_DIR);
                if rd.root().join(&rel).is_file() {
                    add(ArtifactRecord::file(
                        &rd,
                        &format!("native/{task}/{kind}"),
                        &rel,
                    ));
                }
            }
        }
        if let Some(rel) = self
            .state
            .eval
            .as_ref()
            .and_then(|e| e.get("side_by_side"))
            .and_then(|s| s.get("scores_file"))
            .and_then(|v| v.as_str())
            && rd.root().join(rel).is_file()
        {
            add(ArtifactRecord::file(&rd, "submitted_scores", rel));
        }
        let head = self.journal.head();
        let mut report = Report::new(
            self.plan.as_ref(),
            &self.run_id,
            self.dry_run,
            &self.state,
            decided,
            artifacts,
            head.hash,
        );
        report.estimate = self.fit_estimate();
        let path = self.run_dir.report_json();
        report.write(&path).map_err(|source| PipelineError::Write {
            path: path.clone(),
            source,
        })?;
        crate::render::write_human_reports(&self.run_dir, &report).map_err(|source| {
            PipelineError::Write {
                path: self.run_dir.root().join(rundir::REPORT_HTML),
                source,
            }
        })?;
        if let Some(plan) = &self.plan {
            crate::pipeline::attest::write_provenance(
                &self.run_dir,
                plan,
                &self.lm,
                &self.state,
                decided,
                &report.artifacts,
                head,
                &path,
                self.sign_key.as_ref(),
            )
            .map_err(|source| PipelineError::Provenance {
                path: self.run_dir.provenance(),
                source,
            })?;
        }
        Ok(())
    }
}
