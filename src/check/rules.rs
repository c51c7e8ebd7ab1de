//! The manifest against its policy and the open-data registry: policy and track exist, the base
//! model is an approved, licensed, non-instruction-tuned family pinned by revision and digest,
//! every dataset is open, known and not denied, and every claimed task is one the policy scores.
//!
//! Every finding points at the manifest line of the field it is about
//! ([`LoadedManifest::line_of`]).

use crate::manifest::LoadedManifest;
use crate::model::name_looks_instruction_tuned;
use crate::policy::{DataStatus, Policy, PolicySet};

use crate::finding::{Finding, FindingKind};

/// The path manifest findings carry.
pub const MANIFEST_LABEL: &str = "reprobox.toml";

/// A full git commit id, the only revision that pins a Hub repository.
fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A TOML key as `line_of` expects it: bare when it can be, quoted otherwise.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Attaches the manifest path and the line of `field` (or of its nearest enclosing table).
pub fn at_field(lm: &LoadedManifest, f: Finding, field: &str) -> Finding {
    let f = f.at(MANIFEST_LABEL);
    let mut probe = field.to_owned();
    loop {
        if let Some(line) = lm.line_of(&probe) {
            return f.line(line);
        }
        match probe.rfind(['.', '[']) {
            Some(i) => probe.truncate(i),
            None => return f,
        }
    }
}

/// Checks a loaded manifest against the policies. Returns the policy when the manifest names a
/// known one, so the caller can apply its other rules.
pub fn check_manifest<'p>(
    lm: &LoadedManifest,
    policies: &'p PolicySet,
) -> (Vec<Finding>, Option<&'p Policy>) {
    let m = &lm.manifest;
    let mut out = Vec::new();
    let mut push = |f: Finding, field: &str| out.push(at_field(lm, f, field));

    let policy = policies.get(&m.submission.policy);
    if policy.is_none() {
        let known: Vec<&str> = policies.ids().collect();
        push(
            Finding::error(
                FindingKind::UnknownPolicy,
                format!(
                    "policy `{}` is not one of the known policies",
                    m.submission.policy
                ),
                format!("use one of: {} (or pass --policies DIR)", known.join(", ")),
            ),
            "submission.policy",
        );
    }
    if let Some(p) = policy
        && !p.tracks.iter().any(|t| t.id == m.submission.track)
    {
        let known: Vec<&str> = p.tracks.iter().map(|t| t.id.as_str()).collect();
        push(
            Finding::error(
                FindingKind::UnknownTrack,
                format!(
                    "track `{}` is not a track of policy `{}`",
                    m.submission.track, p.id
                ),
                format!("use one of: {}", known.join(", ")),
            ),
            "submission.track",
        );
    }

    // Base model.
    match (&m.base_model, policy) {
        (None, Some(p)) if p.base_model.required => push(
            Finding::error(
                FindingKind::UnapprovedBaseModel,
                format!("policy `{}` requires a declared base model", p.id),
                "add a [base_model] table with id, revision, license and digest",
            ),
            "base_model",
        ),
        (None, _) => {}
        (Some(base), policy) => {
            if let Some(p) = policy {
                let rules = &p.base_model;
                let family = rules
                    .families
                    .iter()
                    .find(|f| crate::policy::glob_match(&f.pattern, &base.id));
                if !rules.families.is_empty() && family.is_none() {
                    let mut names: Vec<&str> =
                        rules.families.iter().map(|f| f.name.as_str()).collect();
                    names.dedup();
                    push(
                        Finding::error(
                            FindingKind::UnapprovedBaseModel,
                            format!("base model `{}` is not in an approved family", base.id),
                            format!(
                                "start from an approved family ({}), or get the organizers to approve it",
                                names.join(", ")
                            ),
                        ),
                        "base_model.id",
                    );
                }
                if !rules.license_allowed(&base.license) {
                    push(
                        Finding::error(
                            FindingKind::LicenseNotAllowed,
                            format!(
                                "base model license `{}` is not allowed by policy `{}`",
                                base.license, p.id
                            ),
                            format!("allowed licenses: {}", rules.licenses.join(", ")),
                        ),
                        "base_model.license",
                    );
                } else if let Some(fam_license) = family.and_then(|f| f.license.as_deref())
                    && !fam_license.eq_ignore_ascii_case(&base.license)
                {
                    push(
                        Finding::warning(
                            FindingKind::LicenseNotAllowed,
                            format!(
                                "base model declares license `{}`, but the {} family is `{fam_license}`",
                                base.license,
                                family.map(|f| f.name.as_str()).unwrap_or("?")
                            ),
                            "declare the license the model's repository states",
                        ),
                        "base_model.license",
                    );
                }
                if !rules.allow_instruction_tuned
                    && (rules.is_instruction_tuned(&base.id)
                        || name_looks_instruction_tuned(&base.id))
                {
                    push(
                        Finding::error(
                            FindingKind::InstructionTunedBase,
                            format!(
                                "base model `{}` is instruction-tuned; policy `{}` allows only base models",
                                base.id, p.id
                            ),
                            "start from the base (pretrained) checkpoint of the family, not a chat/instruct one",
                        ),
                        "base_model.id",
                    );
                }
                if rules.require_revision && !is_commit(&base.revision) {
                    push(
                        Finding::error(
                            FindingKind::UnpinnedDownload,
                            format!(
                                "base model revision `{}` is not a commit id; a branch or tag can move",
                                base.revision
                            ),
                            "set `revision` to the full 40-hex commit of the model repository",
                        ),
                        "base_model.revision",
                    );
                }
            }
            if base.digest.is_none() {
                push(
                    Finding::error(
                        FindingKind::MissingDigest,
                        format!(
                            "base model `{}` has no digest, so the staged files cannot be verified",
                            base.id
                        ),
                        "run `reprobox hash <model dir>` on the files you trained from and set `digest = \"sha256:…\"`",
                    ),
                    "base_model",
                );
            }
        }
    }

    // Datasets.
    let registry = policies.open_data();
    let open_only = policy.is_some_and(|p| p.data.open_data_only);
    for (i, ds) in m.datasets.iter().enumerate() {
        let field = |f: &str| format!("datasets[{i}].{f}");
        match registry.lookup(&ds.id) {
            DataStatus::Denied(entry) => push(
                Finding::error(
                    FindingKind::DeniedDataset,
                    format!(
                        "dataset `{}` is on the deny list: {}{}",
                        ds.id,
                        entry.reason,
                        entry
                            .generated_by
                            .as_deref()
                            .map(|g| format!(" (generated by {g})"))
                            .unwrap_or_default()
                    ),
                    "remove it and retrain on open, human-written or approved-model data",
                ),
                &field("id"),
            ),
            DataStatus::Known(known) => {
                if !known.license.eq_ignore_ascii_case(&ds.license) {
                    push(
                        Finding::warning(
                            FindingKind::LicenseNotAllowed,
                            format!(
                                "dataset `{}` declares license `{}`, the registry says `{}`",
                                ds.id, ds.license, known.license
                            ),
                            "declare the license the dataset's repository states",
                        ),
                        &field("license"),
                    );
                }
            }
            DataStatus::Unknown => push(
                Finding::warning(
                    FindingKind::UnknownDataset,
                    format!(
                        "dataset `{}` is not in the open-data registry; an organizer must confirm it is open",
                        ds.id
                    ),
                    "ask the organizers to add it to open-data.toml, or use a registered dataset",
                ),
                &field("id"),
            ),
        }
        if open_only && !registry.license_is_open(&ds.license) {
            push(
                Finding::error(
                    FindingKind::LicenseNotAllowed,
                    format!(
                        "dataset `{}` has license `{}`, which is not an open data license",
                        ds.id, ds.license
                    ),
                    format!(
                        "the policy allows open data only: {}",
                        registry.open_licenses().join(", ")
                    ),
                ),
                &field("license"),
            );
        }
        if !is_commit(&ds.revision) {
            push(
                Finding::error(
                    FindingKind::UnpinnedDownload,
                    format!(
                        "dataset `{}` revision `{}` is not a commit id; a branch or tag can move",
                        ds.name, ds.revision
                    ),
                    "set `revision` to the full 40-hex commit of the dataset repository",
                ),
                &field("revision"),
            );
        }
        if ds.digest.is_none() {
            push(
                Finding::error(
                    FindingKind::MissingDigest,
                    format!(
                        "dataset `{}` has no digest, so the staged files cannot be verified",
                        ds.name
                    ),
                    "run `reprobox hash <dataset dir>` on the files you trained on and set `digest = \"sha256:…\"`",
                ),
                &format!("datasets[{i}]"),
            );
        }
    }

    // Claims.
    if let Some(p) = policy {
        for name in m.claims.scores.keys() {
            if p.evaluation.task(name).is_none() {
                let tasks: Vec<&str> = p.evaluation.tasks.iter().map(|t| t.name.as_str()).collect();
                push(
                    Finding::error(
                        FindingKind::UnknownTask,
                        format!(
                            "claimed task `{name}` is not evaluated by policy `{}`",
                            p.id
                        ),
                        format!("claim only the policy's tasks: {}", tasks.join(", ")),
                    ),
                    &format!("claims.scores.{}", key(name)),
                );
            }
        }
        for t in &p.evaluation.tasks {
            if !m.claims.scores.contains_key(&t.name) {
                push(
                    Finding::warning(
                        FindingKind::MissingClaim,
                        format!(
                            "policy `{}` evaluates task `{}`, which the claims leave out",
                            p.id, t.name
                        ),
                        "add the score the leaderboard showed for it to [claims] scores",
                    ),
                    "claims.scores",
                );
            }
        }
    }
    (out, policy)
}
