//! `reprobox check`: every static check of one submission, in one synchronous call.
//!
//! Order: load the manifest (the only step that can fail as a whole: an unreadable or malformed
//! manifest is an error, exit 2), check it against the policy, check the paths it names, walk the
//! directory once, lint the Dockerfile and requirements files, scan files for secrets, and inspect
//! model directories (`--model`, `claims.submitted_model`, and the base model when an inputs
//! mirror holds it; the first two also against the policy's weight-norm rule, the one check that
//! reads tensor data). Everything found is a [`Finding`], sorted by (path, line, kind).

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::input_file::{self, Cap};
use crate::manifest::{self, LoadedManifest, ManifestError};
use crate::model::{self, ModelFacts, ModelLimits, NormSummary};
use crate::policy::PolicySet;

use super::buildpath::{self, BuildPathInput, Phase, Role};
use super::context::{self, ContextOptions, DEFAULT_DATA_THRESHOLD_BYTES};
use super::deps::{self, format_by_name};
use super::dockerfile::{self, LintOptions, ShellContext};
use super::ignore::DockerIgnore;
use super::rules::{self, MANIFEST_LABEL, at_field};
use super::secrets;
use super::training::{self, TrainingContext};
use super::{compose, entry};
use crate::finding::{Finding, FindingKind, Severity};
use crate::policy::Policy;

/// Options beyond the submission directory.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// A model directory to inspect against the submission's policy (e.g. the rebuilt model).
    pub model_dir: Option<PathBuf>,
    /// A local inputs mirror, laid out as `<mirror>/models/<hf-id>/<revision>/` (the layout
    /// staging uses). When it holds the base model, its config and tokenizer config are inspected
    /// for instruction tuning.
    pub inputs: Option<PathBuf>,
}

/// Finding totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
    /// Notes that never make a submission non-compliant.
    pub info: usize,
}

/// A model directory that was inspected, and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedModel {
    /// Which model: `--model`, `claims.submitted_model` or `base_model`.
    pub role: String,
    pub path: String,
    pub facts: ModelFacts,
    /// The weight norms, when the policy has a weight-norm rule and the tensors could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_norms: Option<NormSummary>,
}

/// The result of `check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The submission directory as given.
    pub submission: String,
    pub policy: String,
    pub track: String,
    /// True when no finding is an error.
    pub compliant: bool,
    pub counts: Counts,
    /// Sorted by (path, line, kind).
    pub findings: Vec<Finding>,
    pub models: Vec<InspectedModel>,
    /// Regular files walked, and the build context's bytes.
    pub files_scanned: usize,
    pub context_bytes: u64,
    /// Wall-clock milliseconds the check took.
    pub elapsed_ms: u64,
}

/// Why `check` could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("submission directory `{}` does not exist or is not a directory (hint: pass the directory that holds reprobox.toml)", path.display())]
    NotADirectory { path: PathBuf },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot read the submission directory `{}`", path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The largest script, config or dependency file `check` reads: 1 MiB. Real ones are kilobytes.
const MAX_LINT_BYTES: u64 = 1024 * 1024;

/// The one place `check` reads a submission file's text for linting: a regular file (never a
/// FIFO or a device, see [`crate::input_file`]) of at most [`MAX_LINT_BYTES`], lossy UTF-8.
/// The Dockerfile itself is read by [`crate::dockerfile::read`].
const LINT_CAP: Cap = Cap::new(
    "file on the build path",
    MAX_LINT_BYTES,
    "scripts, configs and dependency files are a few kilobytes of text",
);

fn read_bounded(path: &Path) -> Option<String> {
    let bytes = input_file::read(path, LINT_CAP).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs every static check on the submission in `dir`.
pub fn check_submission(
    dir: &Path,
    policies: &PolicySet,
    opts: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    let started = Instant::now();
    if !dir.is_dir() {
        return Err(CheckError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    let lm = manifest::load(dir)?;
    let m = &lm.manifest;
    let (mut findings, policy) = rules::check_manifest(&lm, policies);

    // Paths the manifest names: inside the root after symlinks, and present.
    let mut dockerfile_ok = true;
    let mut paths: Vec<(&str, &str, bool)> = vec![
        ("train.dockerfile", m.train.dockerfile.as_str(), true),
        ("train.context", m.train.context.as_str(), true),
    ];
    if let Some(sm) = &m.claims.submitted_model {
        paths.push(("claims.submitted_model", sm.as_str(), true));
    }
    for (field, value, must_exist) in paths {
        if let Some(f) = context::check_manifest_path(&lm.root, field, value, must_exist) {
            if field == "train.dockerfile" {
                dockerfile_ok = false;
                // A path that is there but does not resolve (a symlink loop) is not "missing".
                if f.kind == FindingKind::MissingFile
                    && lm.resolve(&m.train.dockerfile).symlink_metadata().is_ok()
                    && let Err(e) = crate::dockerfile::read(&lm.resolve(&m.train.dockerfile))
                {
                    findings.push(unreadable_dockerfile(&e, value));
                    continue;
                }
            }
            findings.push(at_field(&lm, f, field));
        }
    }

    // One walk of the directory.
    let declared: Vec<String> = m
        .claims
        .submitted_model
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let ctx_opts = ContextOptions {
        context: m.train.context.as_str().to_owned(),
        declared,
        data_threshold_bytes: policy
            .and_then(|p| p.submission.undeclared_data_bytes)
            .unwrap_or(DEFAULT_DATA_THRESHOLD_BYTES),
        max_file_bytes: policy.and_then(|p| p.submission.max_file_bytes),
        max_context_bytes: policy.and_then(|p| p.submission.max_context_bytes),
    };
    let scan = context::scan_context(&lm.root, &ctx_opts).map_err(|source| CheckError::Walk {
        path: lm.root.clone(),
        source,
    })?;
    findings.extend(scan.findings.iter().cloned());

    // The Dockerfile, the build path it starts, and what is on that path.
    if dockerfile_ok {
        findings.extend(lint_build_path(&lm, policy, &scan));
    }

    // Secrets, in parallel: each file costs at most one bounded read.
    let secret_findings: Vec<Finding> = scan
        .files
        .par_iter()
        .flat_map_iter(|f| secrets::scan_file(&lm.root.join(&f.rel), &f.rel))
        .collect();
    findings.extend(secret_findings);

    // Models.
    let limits = policy.map(ModelLimits::from_policy).unwrap_or_default();
    let mut models = Vec::new();
    if let Some(dir) = &opts.model_dir {
        let label = dir.display().to_string();
        inspect_into(dir, &label, "--model", &limits, &mut findings, &mut models);
    }
    if let Some(sm) = &m.claims.submitted_model
        && lm.resolve(sm).is_dir()
    {
        inspect_into(
            &lm.resolve(sm),
            sm.as_str(),
            "claims.submitted_model",
            &limits,
            &mut findings,
            &mut models,
        );
    }
    if let (Some(mirror), Some(base)) = (&opts.inputs, &m.base_model) {
        base_model_from_mirror(
            &lm,
            mirror,
            base.id.as_str(),
            base.revision.as_str(),
            &limits,
            &mut findings,
            &mut models,
        );
    }

    findings.sort_by(|a, b| (&a.path, a.line, a.kind).cmp(&(&b.path, b.line, b.kind)));
    findings.dedup();
    let counts = Counts {
        errors: findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        warnings: findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
        info: findings
            .iter()
            .filter(|f| f.severity == Severity::Info)
            .count(),
    };
    Ok(CheckReport {
        submission: dir.display().to_string(),
        policy: m.submission.policy.clone(),
        track: m.submission.track.clone(),
        compliant: counts.errors == 0,
        counts,
        findings,
        models,
        files_scanned: scan.files.len(),
        context_bytes: scan.context_bytes,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn inspect_into(
    dir: &Path,
    label: &str,
    role: &str,
    limits: &ModelLimits,
    findings: &mut Vec<Finding>,
    models: &mut Vec<InspectedModel>,
) {
    match model::inspect(dir) {
        Ok(facts) => {
            findings.extend(model::check_model(&facts, limits, label));
            // The weight-norm rule reads tensor data (the layer projections only), so it costs
            // a read of most of the weights: it runs only when the policy has the rule.
            let weight_norms = limits.weight_norm.as_ref().and_then(|rule| {
                let (summary, found) = model::check_weight_norms(dir, rule, label);
                findings.extend(found);
                summary
            });
            models.push(InspectedModel {
                role: role.to_owned(),
                path: label.to_owned(),
                facts,
                weight_norms,
            });
        }
        Err(e) => findings.push(
            Finding::error(
                FindingKind::ModelUnreadable,
                format!("{role}: {e}"),
                "give a Hugging Face model directory: config.json and safetensors weights",
            )
            .at(label),
        ),
    }
}

/// The base model in the mirror: only instruction-tuning signals are checked (the parameter and
/// byte limits are about the submitted model, not where it started).
fn base_model_from_mirror(
    lm: &LoadedManifest,
    mirror: &Path,
    id: &str,
    revision: &str,
    limits: &ModelLimits,
    findings: &mut Vec<Finding>,
    models: &mut Vec<InspectedModel>,
) {
    // Ids and revisions come from the untrusted manifest: they must name a directory below the
    // mirror, never climb out of it.
    let safe = |s: &str| {
        !s.is_empty()
            && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && !s.contains('\\')
    };
    if !safe(id) || !safe(revision) || revision.contains('/') {
        return;
    }
    let dir = mirror.join("models").join(id).join(revision);
    if !dir.join("config.json").is_file() {
        return;
    }
    match model::inspect(&dir) {
        Ok(facts) => {
            if !limits.allow_instruction_tuned {
                for s in &facts.instruction_signals {
                    findings.push(at_field(
                        lm,
                        Finding::error(
                            FindingKind::InstructionTunedBase,
                            format!("the base model `{id}` in the inputs mirror looks instruction-tuned: {s}"),
                            "start from the base (pretrained) checkpoint of the family, not a chat/instruct one",
                        ),
                        "base_model.id",
                    ));
                }
            }
            models.push(InspectedModel {
                role: "base_model".into(),
                path: dir.display().to_string(),
                facts,
                weight_norms: None,
            });
        }
        Err(e) => findings.push(
            Finding::warning(
                FindingKind::ModelUnreadable,
                format!("the base model in the inputs mirror could not be inspected: {e}"),
                "check the mirror's copy of the base model",
            )
            .at(MANIFEST_LABEL),
        ),
    }
}

/// Lints the declared Dockerfile, works out the build path from it, and lints the files on that
/// path: dependency files whatever their name, the scripts the build runs, and the training code.
/// The finding for a Dockerfile that cannot be read as one: not a regular file (a directory, a
/// FIFO, a device, a symlink loop: never opened), past its cap, or binary.
fn unreadable_dockerfile(e: &crate::dockerfile::ReadError, label: &str) -> Finding {
    Finding::error(
        FindingKind::DockerfileSyntax,
        format!("the Dockerfile cannot be read as text: {e}"),
        dockerfile::HINT_SYNTAX,
    )
    .at(label)
}

fn lint_build_path(
    lm: &LoadedManifest,
    policy: Option<&Policy>,
    scan: &context::ContextScan,
) -> Vec<Finding> {
    let m = &lm.manifest;
    let label = m.train.dockerfile.as_str();
    let mut findings = Vec::new();
    let text = match crate::dockerfile::read(&lm.resolve(&m.train.dockerfile)) {
        Ok(t) => t,
        Err(e) => {
            findings.push(unreadable_dockerfile(&e, label));
            return findings;
        }
    };
    let build_network = match policy.map(|p| p.network.build) {
        Some(crate::policy::NetworkMode::None) => Severity::Error,
        _ => Severity::Warning,
    };
    let opts = LintOptions { build_network };
    let df = crate::dockerfile::parse(&text);
    findings.extend(dockerfile::lint(&df, label, &opts));

    // .dockerignore: `<Dockerfile>.dockerignore` first, then the context's.
    let context = m.train.context.as_str();
    let ctx_prefix = match context.trim_matches('/') {
        "" | "." => String::new(),
        c => format!("{c}/"),
    };
    let ignore_text = read_bounded(&lm.root.join(format!("{label}.dockerignore")))
        .or_else(|| read_bounded(&lm.root.join(format!("{ctx_prefix}.dockerignore"))))
        .unwrap_or_default();
    let ignore = DockerIgnore::parse(&ignore_text);
    let files: Vec<String> = scan.files.iter().map(|f| f.rel.clone()).collect();
    let read = |rel: &str| read_bounded(&lm.root.join(rel));
    let command = m
        .train
        .command
        .as_deref()
        .map(|c| (c, lm.line_of("train.command").unwrap_or(1)));
    let bp = buildpath::build_path(&BuildPathInput {
        dockerfile: &df,
        dockerfile_label: label,
        context,
        command,
        files: &files,
        ignore: &ignore,
        read: &read,
    });

    // Dependency files on the path are linted whatever their name; the others are listed once.
    for f in bp.files.values() {
        if let (Role::Dependency(format), Some(text)) = (f.role, &f.text) {
            findings.extend(deps::lint(text, format, &f.rel));
        }
    }
    let unused: Vec<&str> = files
        .iter()
        .filter(|f| format_by_name(f).is_some() && !bp.files.contains_key(f.as_str()))
        .map(String::as_str)
        .collect();
    if !unused.is_empty() {
        findings.push(Finding::info(
            FindingKind::UnusedDependencyFile,
            format!(
                "{} dependency file(s) no build step uses, not linted: {}",
                unused.len(),
                unused.join(", ")
            ),
            "nothing to do; delete them if they are stale",
        ));
    }

    // Scripts a RUN executes are linted like the RUN itself.
    for f in bp.in_phase(Phase::Build).filter(|f| f.role == Role::Shell) {
        let Some(text) = &f.text else { continue };
        let idx = crate::dockerfile::LineIndex::new(text);
        let ctx = ShellContext {
            label: &f.rel,
            pinned_by_checkout: false,
            offline: false,
            opts: &opts,
        };
        dockerfile::lint_build_shell(text, &ctx, &|o| idx.line(o), &mut findings);
    }

    // The training path.
    let mut declared: Vec<String> = m.datasets.iter().map(|d| d.id.clone()).collect();
    declared.extend(m.base_model.iter().map(|b| b.id.clone()));
    let mut local_paths = std::collections::HashSet::new();
    for f in &files {
        let mut p = f.as_str();
        loop {
            local_paths.insert(p.to_owned());
            if let Some(rest) = p.strip_prefix(&ctx_prefix) {
                local_paths.insert(rest.to_owned());
            }
            match p.rsplit_once('/') {
                Some((d, _)) => p = d,
                None => break,
            }
        }
    }
    let tctx = TrainingContext {
        declared,
        local_paths,
        build_network,
    };
    findings.extend(training::lint(&bp, &tctx));
    findings.extend(entry::no_training_entry(&bp));
    for f in files.iter().filter(|f| compose::is_compose_file(f)) {
        if let Some(text) = read(f) {
            findings.extend(compose::lint_compose(&text, f));
        }
    }
    findings
}
