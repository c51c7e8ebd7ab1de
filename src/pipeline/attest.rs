//! Turning a finished run into its provenance bundle: an SLSA Provenance v1 statement for the
//! training run and a reprobox verdict statement, both about the rebuilt model's OMS digest
//! (docs/report-format.md). A run that never produced a model has no subject, so it has no
//! bundle; its report and journal still record everything.

use std::collections::BTreeMap;
use std::path::Path;

use super::plan::RunPlan;
use super::state::{RunState, VerdictRecord};
use crate::journal::EntryHead;
use crate::manifest::LoadedManifest;
use crate::provenance::{
    self, ArtifactRecord, Artifacts, ExternalParameters, GpuParameters, InternalParameters, Limits,
    PolicyRef, ProvenanceError, Runtime, SandboxParameters, TaskScore, TrainingRun,
};
use crate::rundir::{self, RunDir};

fn time(s: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Writes `provenance.intoto.jsonl` when the run has a model; returns whether it did.
#[expect(
    clippy::too_many_arguments,
    reason = "every part of the run feeds the statements"
)]
pub(crate) fn write_provenance(
    run_dir: &RunDir,
    plan: &RunPlan,
    lm: &LoadedManifest,
    state: &RunState,
    decided: &VerdictRecord,
    artifacts: &Artifacts,
    journal_head: EntryHead,
    report: &Path,
    key: Option<&provenance::SigningKey>,
) -> Result<bool, ProvenanceError> {
    let Some(model) = artifacts.0.iter().find(|a| a.name == "model").cloned() else {
        return Ok(false);
    };
    let m = &lm.manifest;
    let by_name = |n: &str| artifacts.0.iter().find(|a| a.name == n).cloned();
    let mut deps = vec![provenance::dependency(
        "submission",
        Some(&format!("file://{}", plan.submission.display())),
        plan.submission_digest,
    )];
    // The base images, as the Dockerfile pins them (`check` refuses an unpinned one outside a
    // dry run; an unpinned one has no digest to record and is left out).
    let dockerfile = crate::dockerfile::read(&plan.dockerfile).unwrap_or_default();
    deps.extend(
        crate::check::dockerfile::base_images(&dockerfile)
            .into_iter()
            .filter_map(|b| {
                let digest = format!("sha256:{}", b.digest?).parse().ok()?;
                Some(provenance::dependency(
                    "base_image",
                    Some(&format!("docker-image://{}", b.reference)),
                    digest,
                ))
            }),
    );
    deps.extend(
        artifacts
            .0
            .iter()
            .filter(|a| a.name.starts_with("inputs/"))
            .map(ArtifactRecord::descriptor),
    );
    let byproducts: Vec<ArtifactRecord> = [
        "plan",
        "build_log",
        "train_log",
        "telemetry",
        "eval_log",
        "scores",
        "eval_submitted_log",
        "submitted_scores",
    ]
    .iter()
    .filter_map(|n| by_name(n))
    .collect();
    let outcome = state.outcome.as_ref();
    let field = |k: &str| outcome.and_then(|o| o.get(k)).and_then(|v| v.as_str());
    let now = chrono::Utc::now();
    let run = TrainingRun {
        run_id: plan.run_id.clone(),
        model: model.clone(),
        external: ExternalParameters {
            manifest: crate::manifest::FILE_NAME.into(),
            team: m.submission.team.clone(),
            policy: m.submission.policy.clone(),
            track: m.submission.track.clone(),
            dockerfile: m.train.dockerfile.as_str().into(),
            context: m.train.context.as_str().into(),
            command: m.train.command.clone(),
            output: m.train.output.as_str().into(),
            seed: m.train.seed.and_then(|s| i64::try_from(s).ok()),
            claims: m.claims.scores.clone().into_iter().collect(),
            submitted_model: m.claims.submitted_model.as_ref().map(|p| p.as_str().into()),
        },
        internal: InternalParameters {
            policy: plan.policy.clone(),
            policy_digest: plan.policy_digest.parse().ok(),
            track: plan.track.clone(),
            gpu: plan.gpu.as_ref().map(|g| GpuParameters {
                model: g.name.clone(),
                uuid: g.uuid.clone(),
                driver_version: g.driver_version.clone(),
                cuda_version: g.cuda_driver_version.clone(),
            }),
            sandbox: SandboxParameters {
                profile: plan.sandbox_profile.clone(),
                profile_digest: plan.sandbox_profile_digest,
                runtime: if plan.runtime == "runsc" {
                    Runtime::Runsc
                } else {
                    Runtime::Runc
                },
                network_mode: "none".into(),
                readonly_rootfs: true,
            },
            limits: Limits {
                build_seconds: Some(plan.limits.build_secs),
                train_seconds: Some(plan.limits.train_secs),
                eval_seconds: plan.limits.eval_secs,
                memory_bytes: Some(plan.limits.memory_bytes),
                disk_bytes: plan.limits.disk_bytes,
                ..Limits::default()
            },
            image_id: state.image_id.clone(),
            dry_run: plan.dry_run,
        },
        resolved_dependencies: deps,
        byproducts,
        builder_version: state
            .engine_version
            .iter()
            .map(|v| ("docker".to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        started_on: time(field("started_at")).or(state.started).unwrap_or(now),
        finished_on: time(field("finished_at")).unwrap_or(now),
    };
    let report_rel = run_dir
        .relative(report)
        .unwrap_or_else(|| rundir::REPORT_JSON.into());
    let verdict = provenance::VerdictRecord {
        run_id: plan.run_id.clone(),
        model,
        verdict: decided.verdict.as_str().into(),
        dry_run: plan.dry_run,
        policy: PolicyRef {
            id: plan.policy.clone(),
            track: plan.track.clone(),
            digest: plan.policy_digest.parse().ok(),
        },
        tasks: task_scores(m, state),
        journal_head,
        report: Some(ArtifactRecord::file(run_dir, "report", &report_rel)?),
        evaluated_on: now,
    };
    let statements = [run.statement()?, verdict.statement()?];
    provenance::write_bundle(&run_dir.provenance(), &statements, key)?;
    Ok(true)
}

/// The verdict statement's tasks: the comparison's, when the evaluation got that far, else the
/// claims alone.
fn task_scores(m: &crate::manifest::Manifest, state: &RunState) -> Vec<TaskScore> {
    let compared = state
        .eval
        .as_ref()
        .and_then(|e| e.get("comparison"))
        .and_then(|c| c.get("tasks"))
        .and_then(|t| t.as_array());
    match compared {
        Some(tasks) => tasks
            .iter()
            .filter_map(|t| {
                Some(TaskScore {
                    task: t.get("task")?.as_str()?.to_owned(),
                    claimed: t.get("claimed").and_then(|v| v.as_f64()),
                    reproduced: t.get("reproduced").and_then(|v| v.as_f64()),
                    tolerance: t
                        .get("tolerance")
                        .and_then(|v| v.get("absolute"))
                        .and_then(|v| v.as_f64()),
                    within_tolerance: t.get("within_tolerance").and_then(|v| v.as_bool()),
                    interval: t
                        .get("interval")
                        .and_then(|v| serde_json::from_value(v.clone()).ok()),
                })
            })
            .collect(),
        None => m
            .claims
            .scores
            .iter()
            .map(|(task, claimed)| TaskScore {
                task: task.clone(),
                claimed: Some(*claimed),
                reproduced: None,
                tolerance: None,
                within_tolerance: None,
                interval: None,
            })
            .collect(),
    }
}
