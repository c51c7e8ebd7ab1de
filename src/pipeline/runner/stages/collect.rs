//! The `collect` stage: the rebuilt model, checked and hashed.

use crate::pipeline::runner::*;

impl<H: Host> Driver<H> {
    pub(in crate::pipeline::runner) async fn collect(
        &mut self,
        plan: &RunPlan,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Decided>, PipelineError> {
        if self.state.model.is_some() {
            return Ok(Ok(()));
        }
        progress.stage("collect", "hashing the rebuilt model");
        let rel = format!("{}/{}", rundir::OUT_DIR, plan.output);
        let dir = self.run_dir.root().join(&rel);
        if let Some(problem) = model_dir_problem(&dir) {
            return Ok(Err(decide(
                Verdict::MissingArtifact,
                "collect",
                format!(
                    "training succeeded but /out/{} {problem} (hint: the training command must write a Hugging Face model directory with config.json and *.safetensors there)",
                    plan.output
                ),
            )));
        }
        let model_dir = dir.clone();
        let counter = Arc::new(HashCounter::default());
        let hashing = counter.clone();
        let tree = match blocking_counted(
            "hashing the rebuilt model",
            "collect",
            &counter,
            progress,
            move || digest_tree_counted(&model_dir, &DigestOptions::default(), &hashing),
        )
        .await
        {
            Ok(Ok(t)) => t,
            Err(why) => return Ok(Err(decide(Verdict::InfraError, "collect", why))),
            Ok(Err(e)) => {
                return Ok(Err(decide(
                    Verdict::MissingArtifact,
                    "collect",
                    format!("the rebuilt model cannot be hashed: {e}"),
                )));
            }
        };
        let rec = ModelRecord {
            path: rel,
            digest: tree.root,
            files: tree.resources.len(),
        };
        self.record(
            events::MODEL_COLLECTED,
            "collect",
            serde_json::to_value(&rec).unwrap_or_default(),
        )?;
        progress.done("collect", &rec.digest.to_string());
        Ok(Ok(()))
    }
}

/// Why `dir` is not a usable Hugging Face model directory, if it is not.
fn model_dir_problem(dir: &Path) -> Option<&'static str> {
    if !dir.is_dir() {
        return Some("does not exist");
    }
    if !dir.join("config.json").is_file() {
        return Some("has no config.json");
    }
    let has_weights = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".safetensors"));
    if !has_weights {
        return Some("has no *.safetensors weights");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_dir_problems_are_named() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("model");
        assert_eq!(model_dir_problem(&d), Some("does not exist"));
        std::fs::create_dir(&d).unwrap();
        assert_eq!(model_dir_problem(&d), Some("has no config.json"));
        std::fs::write(d.join("config.json"), "{}").unwrap();
        assert_eq!(model_dir_problem(&d), Some("has no *.safetensors weights"));
        std::fs::write(d.join("model.safetensors"), "x").unwrap();
        assert_eq!(model_dir_problem(&d), None);
    }
}
