//! The third pass: every rule serde cannot express, in one place (house style §7.10), turning the
//! raw types into a [`Manifest`]. Each failure is a [`ManifestProblem`] plus the dotted field it is
//! about; the caller turns the field into a line and column.
//!
//! Fields are checked in file order (submission, train, base_model, datasets, claims), and the
//! first failure is returned, so a user fixing errors one by one walks down the file.

use std::collections::BTreeMap;

use super::error::ManifestProblem;
use super::raw::{RawClaims, RawDatasetInput, RawManifest, RawModelInput, RawSubmission, RawTrain};
use super::spans::join_key;
use super::types::{Claims, DatasetInput, Manifest, ModelInput, RelPath, Submission, Train};
use crate::digest::Sha256Digest;

/// A rule broken by one field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    /// Dotted path, as [`super::LoadedManifest::line_of`] takes it.
    pub field: String,
    pub problem: ManifestProblem,
}

type Checked<T> = Result<T, Violation>;

fn violation(field: impl Into<String>, problem: ManifestProblem) -> Violation {
    Violation {
        field: field.into(),
        problem,
    }
}

const ROOT: &str = "the submission root";
const OUT: &str = "/out in the container";
/// NAME_MAX on Linux file systems: a longer dataset name cannot be a directory.
const MAX_NAME_BYTES: usize = 255;

pub(crate) fn validate(raw: RawManifest) -> Checked<Manifest> {
    Ok(Manifest {
        schema_version: raw.schema_version,
        submission: submission(raw.submission)?,
        train: train(raw.train)?,
        base_model: raw.base_model.map(base_model).transpose()?,
        datasets: datasets(raw.datasets)?,
        claims: claims(raw.claims)?,
    })
}

fn non_empty(field: &str, value: String, hint: &'static str) -> Checked<String> {
    if value.trim().is_empty() {
        Err(violation(field, ManifestProblem::Empty { hint }))
    } else {
        Ok(value)
    }
}

fn submission(raw: RawSubmission) -> Checked<Submission> {
    Ok(Submission {
        team: non_empty(
            "submission.team",
            raw.team,
            "write the team's name as on the leaderboard",
        )?,
        policy: non_empty(
            "submission.policy",
            raw.policy,
            "name a policy id from policies/, e.g. `neurips-2023-llm-efficiency`",
        )?,
        track: non_empty(
            "submission.track",
            raw.track,
            "name a track of the policy, e.g. `a100-40gb`",
        )?,
    })
}

fn rel_path(
    field: &str,
    value: &str,
    base: &'static str,
    example: &'static str,
) -> Checked<RelPath> {
    RelPath::parse(value).map_err(|reason| {
        violation(
            field,
            ManifestProblem::BadPath {
                reason,
                base,
                example,
            },
        )
    })
}

/// A path that must name something inside its base, not the base itself.
fn rel_path_not_base(
    field: &str,
    value: &str,
    base: &'static str,
    what: &'static str,
    example: &'static str,
) -> Checked<RelPath> {
    let path = rel_path(field, value, base, example)?;
    if path.is_root() {
        return Err(violation(
            field,
            ManifestProblem::PathIsBase {
                what,
                base,
                example,
            },
        ));
    }
    Ok(path)
}

fn train(raw: RawTrain) -> Checked<Train> {
    let dockerfile = rel_path_not_base(
        "train.dockerfile",
        &raw.dockerfile,
        ROOT,
        "Dockerfile",
        "Dockerfile.train",
    )?;
    let context = rel_path("train.context", &raw.context, ROOT, ".")?;
    let command = match raw.command {
        None => None,
        Some(args) if args.is_empty() => {
            return Err(violation("train.command", ManifestProblem::EmptyCommand));
        }
        Some(args) => {
            for (i, arg) in args.iter().enumerate() {
                if arg.is_empty() {
                    return Err(violation(
                        format!("train.command[{i}]"),
                        ManifestProblem::Empty {
                            hint: "remove the empty argument, or give it a value",
                        },
                    ));
                }
            }
            Some(args)
        }
    };
    // `.` is allowed here: the model may be written directly into /out.
    let output = rel_path("train.output", &raw.output, OUT, "model")?;
    Ok(Train {
        dockerfile,
        context,
        command,
        output,
        seed: raw.seed,
    })
}

fn digest(field: &str, value: Option<String>) -> Checked<Option<Sha256Digest>> {
    value
        .map(|v| {
            v.parse::<Sha256Digest>()
                .map_err(|e| violation(field, ManifestProblem::BadDigest(e)))
        })
        .transpose()
}

const ID_HINT: &str = "write the Hugging Face repository id, e.g. `org/name`";
const REVISION_HINT: &str = "pin the exact revision, e.g. the commit hash";
const LICENSE_HINT: &str = "write the license id from its model or dataset card, e.g. `apache-2.0`";

fn base_model(raw: RawModelInput) -> Checked<ModelInput> {
    Ok(ModelInput {
        id: non_empty("base_model.id", raw.id, ID_HINT)?,
        revision: non_empty("base_model.revision", raw.revision, REVISION_HINT)?,
        license: non_empty("base_model.license", raw.license, LICENSE_HINT)?,
        digest: digest("base_model.digest", raw.digest)?,
    })
}

fn is_safe_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn datasets(raw: Vec<RawDatasetInput>) -> Checked<Vec<DatasetInput>> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, d) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("datasets[{i}].{name}");
        let name = non_empty(
            &field("name"),
            d.name,
            "give the dataset a short name, e.g. `dolly`",
        )?;
        if !is_safe_dir_name(&name) {
            return Err(violation(
                field("name"),
                ManifestProblem::UnsafeDatasetName {
                    name: name.chars().take(300).collect(),
                },
            ));
        }
        if let Some(&first) = seen.get(&name) {
            return Err(violation(
                field("name"),
                ManifestProblem::DuplicateDatasetName { name, first },
            ));
        }
        seen.insert(name.clone(), i);
        out.push(DatasetInput {
            name,
            id: non_empty(&field("id"), d.id, ID_HINT)?,
            revision: non_empty(&field("revision"), d.revision, REVISION_HINT)?,
            license: non_empty(&field("license"), d.license, LICENSE_HINT)?,
            digest: digest(&field("digest"), d.digest)?,
        });
    }
    Ok(out)
}

fn claims(raw: RawClaims) -> Checked<Claims> {
    if raw.scores.is_empty() {
        return Err(violation("claims.scores", ManifestProblem::NoScores));
    }
    for (task, value) in &raw.scores {
        let field = join_key("claims.scores", task);
        if task.trim().is_empty() {
            return Err(violation(
                field,
                ManifestProblem::Empty {
                    hint: "name the task as the policy does, e.g. `mmlu`",
                },
            ));
        }
        if !value.is_finite() {
            return Err(violation(
                field,
                ManifestProblem::NonFiniteScore { value: *value },
            ));
        }
    }
    let submitted_model = raw
        .submitted_model
        .map(|p| {
            rel_path_not_base(
                "claims.submitted_model",
                &p,
                ROOT,
                "model directory",
                "submitted-model",
            )
        })
        .transpose()?;
    Ok(Claims {
        scores: raw.scores,
        submitted_model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_dataset_names() {
        for ok in ["dolly", "a.b_c-1", "A", "x..y"] {
            assert!(is_safe_dir_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "..", "a/b", "a b", "é", &"x".repeat(256)] {
            assert!(!is_safe_dir_name(bad), "{bad}");
        }
        assert!(is_safe_dir_name(&"x".repeat(255)));
    }
}
