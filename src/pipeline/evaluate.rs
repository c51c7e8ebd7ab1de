//! The evaluate stage with a harness evaluator: the organizer's evaluation image runs in the same
//! sandbox as training (no network, all capabilities dropped, read-only root), with the rebuilt
//! model mounted read-only at `/inputs/model` and the run's `eval/` as its only writable mount
//! (`/out`). It must write the scores file there; [`crate::compare`] reads and judges it.
//!
//! What the container is told (docs/evaluation.md, "The harness evaluator"):
//! `REPROBOX_MODEL=/inputs/model`, `REPROBOX_SCORES=/out/<scores_file>`, `REPROBOX_TASKS` (the
//! policy's task names, comma-separated), `REPROBOX_DRY_RUN` (`1` in a dry run) and
//! `REPROBOX_DRY_RUN_EXAMPLES` (the policy's examples per task in a dry run, when it sets one).
//!
//! With an HTTP harness (`[evaluation.harness.server]`), the submission's own built image first
//! serves the rebuilt model on an internal network ([`crate::sandbox::serve`]) and the harness
//! gets `REPROBOX_MODEL_URL=http://model:<port>` as well.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::Comparison;
use crate::policy::Policy;
use crate::sandbox::RunOutcome;
use crate::verdict::Verdict;

/// Where the model appears in the evaluation container, under `/inputs`.
pub const MODEL_TARGET: &str = "model";

/// The evaluation wall clock when the policy sets none: the NeurIPS 2023 challenge's 2 h
/// (docs/references.md C§1).
pub const DEFAULT_EVAL_SECS: u64 = 2 * 3600;

/// The harness evaluation a run will do (`plan.json` `harness`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HarnessPlan {
    /// The evaluation image (a local tag or id): the policy's, or `--eval-image`.
    pub image: String,
    /// The command; `None` runs the image's CMD.
    pub command: Option<Vec<String>>,
    /// The file the harness writes, relative to `/out` (the run's `eval/`).
    pub scores_file: String,
    /// The evaluation wall clock, counted from the container's start.
    pub eval_secs: u64,
    /// Whether `--eval-image` replaced the policy's image.
    pub image_overridden: bool,
    /// The HTTP model server the harness talks to (absent in plans written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerPlan>,
}

/// The model server of an HTTP harness (`plan.json` `harness.server`), from the policy's
/// `[evaluation.harness.server]`. It runs in the submission's built image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerPlan {
    /// The command; `None` runs the image's CMD.
    pub command: Option<Vec<String>>,
    /// The port it listens on in its container.
    pub port: u16,
    /// The readiness request's method: `GET` or `POST`.
    pub ready_method: String,
    /// The readiness request's path, e.g. `/process`.
    pub ready_path: String,
    /// The readiness request's JSON body (`POST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_body: Option<String>,
    /// How long it may take to answer with a 2xx status, from its container's start.
    pub ready_timeout_secs: u64,
}

/// The model server's log, relative to the run directory.
pub const SERVER_LOG: &str = "logs/server.log";
/// The model server's log when it serves the submitted model.
pub const SERVER_SUBMITTED_LOG: &str = "logs/server-submitted.log";
/// The server's only writable mount (`/out`), under the run directory: never `eval/`, where
/// the trusted harness writes the scores the verdict is decided on.
pub const SERVER_OUT_DIR: &str = "eval-server";

/// What the report says about the model server (`evaluation.server`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The submission's image it ran (`sha256:…`).
    pub image: String,
    /// The internal network it was on, and the evaluator's URL for it.
    pub network: String,
    pub url: String,
    /// Seconds from its start until it answered the readiness request; `None`: never.
    pub ready_after_s: Option<f64>,
    /// Its container's outcome (usually killed by reprobox after the evaluation).
    pub outcome: Option<serde_json::Value>,
    /// Its log, relative to the run directory.
    pub log: String,
    /// Removing the server or the network afterwards failed (the run's final cleanup by label
    /// tries again); the verdict stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<String>,
}

/// The native evaluation a run will do (`plan.json` `native`): the policy's tasks scored by
/// `reprobox-eval` on the organizer's task data ([`crate::native`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NativePlan {
    /// The `reprobox-eval` binary and its sha256 (what scored the model).
    pub evaluator: PathBuf,
    pub evaluator_sha256: String,
    /// Where `<TASK>.jsonl` are.
    pub data_dir: PathBuf,
    /// The evaluation wall clock for all tasks together.
    pub eval_secs: u64,
    /// A dry run's examples per task.
    pub max_examples: Option<u32>,
    /// The competition's evaluation seed the subnet's loaders draw with (docs/evaluation.md,
    /// "Policy tasks"); plans written before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<crate::native::TaskSeed>,
}

/// The `reprobox-eval` binary: `explicit` (the CLI's `--evaluator` or `$REPROBOX_EVAL_BIN`),
/// else the one next to the running executable.
pub fn evaluator_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    let p = std::env::current_exe()
        .ok()?
        .with_file_name("reprobox-eval");
    p.is_file().then_some(p)
}

/// Resolves a native evaluation, checking before anything is built that the evaluator and
/// every task's data file are there; `Err` is the reason, in our words with a hint.
pub fn native_plan(
    policy: &Policy,
    data_dir: &Path,
    evaluator: Option<&Path>,
    dry_run: bool,
    seed: Option<crate::native::TaskSeed>,
) -> Result<NativePlan, String> {
    let evaluator = evaluator_binary(evaluator).filter(|p| p.is_file()).ok_or_else(|| {
        "the native evaluator `reprobox-eval` is not installed next to this reprobox, so nothing was built or trained (hint: `cargo build --release` builds it with libtorch, or pass --evaluator PATH)".to_owned()
    })?;
    let bytes = std::fs::read(&evaluator).map_err(|e| {
        format!(
            "cannot read the native evaluator `{}`: {e}",
            evaluator.display()
        )
    })?;
    let evaluator_sha256 = crate::digest::bytes_sha256(&bytes).to_string();
    let missing: Vec<String> = policy
        .evaluation
        .tasks
        .iter()
        .map(|t| crate::native::source_file(data_dir, t, seed.is_some()))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the task data {} {} missing, so nothing was built or trained (hint: put the exact samples the competition scored there, one file per task, see docs/evaluation.md)",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        ));
    }
    Ok(NativePlan {
        evaluator,
        evaluator_sha256,
        data_dir: std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned()),
        eval_secs: policy
            .limits
            .eval
            .map(|d| d.as_secs().max(1))
            .unwrap_or(DEFAULT_EVAL_SECS),
        max_examples: if dry_run {
            policy.dry_run.eval_examples
        } else {
            None
        },
        seed,
    })
}

/// Resolves the harness evaluation of a run: `None` when the policy names no harness and no
/// image was given. An `--eval-image` replaces the policy's image and keeps its command and
/// scores file (without a policy harness: the image's CMD and `scores.json`).
pub fn harness_plan(policy: &Policy, eval_image: Option<&str>) -> Option<HarnessPlan> {
    let h = policy.evaluation.harness.as_ref();
    let image = eval_image
        .map(str::to_owned)
        .or_else(|| h.map(|h| h.image.clone()))?;
    Some(HarnessPlan {
        image,
        command: h
            .map(|h| h.command.clone())
            .filter(|c| !c.is_empty() && eval_image.is_none()),
        scores_file: h
            .map(|h| h.scores_file.clone())
            .unwrap_or_else(|| "scores.json".into()),
        eval_secs: policy
            .limits
            .eval
            .map(|d| d.as_secs().max(1))
            .unwrap_or(DEFAULT_EVAL_SECS),
        image_overridden: eval_image.is_some(),
        server: h.and_then(|h| h.server.as_ref()).map(|s| ServerPlan {
            command: Some(s.command.clone()).filter(|c| !c.is_empty()),
            port: s.port,
            ready_method: s.ready_method.as_str().to_owned(),
            ready_path: s.ready_path.clone(),
            ready_body: s.ready_body.clone(),
            ready_timeout_secs: s.ready_timeout.as_secs().max(1),
        }),
    })
}

/// Whether a scores file name stays inside `eval/`: one or more plain components (the rule the
/// policy loader applies to `scores_file`; checked again here for `--eval-image` plans).
pub fn scores_file_is_safe(name: &str) -> bool {
    crate::policy::is_relative_inside(name)
}

/// Where the submitted model's evaluation writes, under `eval/`.
pub const SUBMITTED_DIR: &str = "submitted";

/// The side-by-side of the rebuilt and the submitted model (report `evaluation.side_by_side`).
/// It is evidence beside the verdict, which the claims decide: a submitted model that cannot
/// be scored is reported here and changes nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SideBySide {
    /// `claims.submitted_model`, relative to the submission.
    pub model: String,
    /// Its OMS digest, when it could be hashed.
    pub digest: Option<String>,
    /// The evaluation container's outcome for it.
    pub outcome: Option<serde_json::Value>,
    /// Its scores file, relative to the run directory.
    pub scores_file: Option<String>,
    /// Per task: `{task, rebuilt, submitted, difference, interval, examples, consistent}`.
    pub tasks: Vec<serde_json::Value>,
    /// Why it could not be scored.
    pub error: Option<String>,
}

/// What the `eval_finished` event records, and the report's `evaluation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalRecord {
    /// `harness` (an organizer's image) or `native` (`reprobox-eval` on the host).
    pub evaluator: String,
    pub image: String,
    /// The evaluation container's outcome (`sandbox::RunOutcome`'s JSON).
    pub outcome: Option<serde_json::Value>,
    /// The scores file, relative to the run directory, and its sha256.
    pub scores_file: Option<String>,
    pub scores_sha256: Option<String>,
    /// Claimed vs reproduced, when the scores could be compared.
    pub comparison: Option<serde_json::Value>,
    /// The submitted model (`claims.submitted_model`) scored by the same harness on the same
    /// examples, against the rebuilt one ([`SideBySide`]'s JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side_by_side: Option<serde_json::Value>,
    /// The model server of an HTTP harness ([`ServerRecord`]'s JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<serde_json::Value>,
    /// A native evaluation's tasks: `[{task, method, data, data_sha256, examples, score}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<serde_json::Value>,
    /// The verdict this stage decided, so a resumed run decides the same.
    pub verdict: Verdict,
    pub stage: String,
    pub reason: String,
}

impl EvalRecord {
    pub(crate) fn new(
        plan: &HarnessPlan,
        outcome: Option<&RunOutcome>,
        verdict: Verdict,
        stage: &str,
        reason: String,
    ) -> EvalRecord {
        EvalRecord {
            evaluator: "harness".into(),
            image: plan.image.clone(),
            outcome: outcome.and_then(|o| serde_json::to_value(o).ok()),
            scores_file: None,
            scores_sha256: None,
            comparison: None,
            side_by_side: None,
            server: None,
            native: None,
            verdict,
            stage: stage.into(),
            reason,
        }
    }

    pub(crate) fn with_comparison(mut self, c: &Comparison) -> EvalRecord {
        self.comparison = serde_json::to_value(c).ok();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_files_stay_inside_eval() {
        for ok in ["scores.json", "out/scores.json"] {
            assert!(scores_file_is_safe(ok), "{ok}");
        }
        for bad in ["", "/scores.json", "../x", "a/../b", "a//b", "./s", "a\\b"] {
            assert!(!scores_file_is_safe(bad), "{bad}");
        }
    }

    #[test]
    fn an_eval_image_replaces_the_policy_s_image_and_command() {
        let set = crate::policy::PolicySet::builtin().unwrap();
        let p = set.get("neurips-2023-llm-efficiency").unwrap();
        let own = harness_plan(p, None).unwrap();
        assert_eq!(own.image, "llm-eval");
        assert!(own.command.as_ref().is_some_and(|c| !c.is_empty()));
        assert_eq!(own.eval_secs, 2 * 3600);
        let other = harness_plan(p, Some("site/eval:3")).unwrap();
        assert_eq!(other.image, "site/eval:3");
        assert_eq!(other.command, None);
        assert!(other.image_overridden);
        assert_eq!(other.scores_file, "scores.json");
        assert_eq!(own.server, None);
    }

    #[test]
    fn plans_written_before_the_server_existed_still_load() {
        let old = r#"{"image": "llm-eval", "command": null, "scores_file": "scores.json",
                      "eval_secs": 7200, "image_overridden": false}"#;
        let p: HarnessPlan = serde_json::from_str(old).unwrap();
        assert_eq!(p.server, None);
        let text = serde_json::to_string(&p).unwrap();
        assert!(!text.contains("server"), "{text}");
    }
}
