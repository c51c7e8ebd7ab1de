//! `PolicyError`: every way loading a policy can fail. Each message names the file, the line when
//! known, and the field, and ends with a hint of what to do.

use std::path::PathBuf;

/// A policy or open-data file could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file or directory could not be read.
    #[error(
        "cannot read `{path}`: {source} (hint: check the path given to --policies or REPROBOX_POLICIES)"
    )]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A policy or open-data file is not a regular file, or is past its cap.
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),
    /// The file is not valid TOML or does not match the format (unknown key, wrong type, bad
    /// duration or size, missing field).
    #[error("{}:{line}: `{field}`: {message} (hint: {hint})", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted field path (`limits.train`).
        field: String,
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
    /// The file parsed but breaks a rule that spans fields.
    #[error("{}:{}: `{field}`: {problem} (hint: {})", path.display(), line.map_or_else(|| "?".to_owned(), |l| l.to_string()), problem.hint())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line, when it can be located.
        line: Option<usize>,
        /// Dotted field path (`evaluation.tasks[2].weight`).
        field: String,
        /// The rule broken.
        problem: Problem,
    },
    /// The file was written for a newer reprobox.
    #[error("{}: schema_version {found} requires a newer reprobox (this one reads {supported}) (hint: upgrade reprobox, or write schema_version = {supported})", path.display())]
    UnsupportedSchema {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this reprobox reads.
        supported: u32,
    },
    /// Two files define the same policy id.
    #[error("policy id `{id}` is defined twice: `{}` and `{}` (hint: policy ids must be unique)", first.display(), second.display())]
    DuplicateId {
        /// The id.
        id: String,
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
    },
    /// A file in the policy directory is a symlink to somewhere outside it.
    #[error("`{}` is a symlink to `{}`, outside the policy directory `{}` (hint: copy the file into the directory instead of linking to it)", path.display(), target.display(), dir.display())]
    SymlinkEscape {
        /// The link.
        path: PathBuf,
        /// Where it resolves.
        target: PathBuf,
        /// The directory it must stay in.
        dir: PathBuf,
    },
    /// A policy directory has no `open-data.toml`.
    #[error("`{}` has no open-data.toml (hint: copy policies/open-data.toml from the reprobox sources into it)", dir.display())]
    MissingOpenData {
        /// The directory.
        dir: PathBuf,
    },
    /// A policy directory has no policies.
    #[error("`{}` holds no policy files (hint: a policy directory holds <id>.toml files and open-data.toml)", dir.display())]
    NoPolicies {
        /// The directory.
        dir: PathBuf,
    },
    /// No policy has this id.
    #[error("unknown policy `{id}` (hint: known policies: {})", known.join(", "))]
    UnknownPolicy {
        /// The id asked for.
        id: String,
        /// The ids that exist.
        known: Vec<String>,
    },
}

/// A cross-field rule a policy breaks. Each variant has its own message and hint.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The id differs from the file stem.
    #[error("policy id `{id}` does not match the file name `{stem}.toml`")]
    IdMismatch {
        /// The id.
        id: String,
        /// The file stem.
        stem: String,
    },
    /// An id is not lowercase kebab-case.
    #[error("id `{0}` must be lowercase letters, digits and `-`")]
    BadId(String),
    /// A string that must not be empty is empty.
    #[error("must not be empty")]
    Empty,
    /// A list that must not be empty is empty.
    #[error("list must not be empty")]
    EmptyList,
    /// Two entries share an id or name.
    #[error("duplicate `{0}`")]
    Duplicate(String),
    /// Minimum above maximum.
    #[error("min_parameters {min} exceeds max_parameters {max}")]
    MinExceedsMax {
        /// Minimum.
        min: u64,
        /// Maximum.
        max: u64,
    },
    /// A count, size or duration that must be positive is zero.
    #[error("must be greater than zero")]
    Zero,
    /// A weight that is not a positive finite number.
    #[error("weight {0} must be a positive finite number")]
    NonPositiveWeight(f64),
    /// Weights of a weighted sum do not sum to 1.
    #[error("task weights sum to {0}, not 1")]
    WeightsNotNormalized(f64),
    /// A tolerance that is negative or not finite.
    #[error("tolerance {0} must be a finite number ≥ 0")]
    NegativeTolerance(f64),
    /// `inverse_exponential` without a ceiling.
    #[error("normalization `inverse_exponential` needs a `ceiling`")]
    MissingCeiling,
    /// A ceiling with normalization `none`.
    #[error("`ceiling` is only meaningful with normalization `inverse_exponential`")]
    UnusedCeiling,
    /// A TEXT_LOSS setting on another method.
    #[error("`{0}` applies to method `text_loss` only")]
    TextLossOnly(&'static str),
    /// A truncating text layout without the policy's `sequence_length`.
    #[error("this text layout truncates to the policy's `sequence_length`, which is not set")]
    LayoutWithoutSequenceLength,
    /// A ceiling that is not positive and finite.
    #[error("ceiling {0} must be a positive finite number")]
    BadCeiling(f64),
    /// A readiness path that is not an absolute request path.
    #[error(
        "`{0}` is not a request path: it must start with `/` and hold no spaces or control characters"
    )]
    BadReadyPath(String),
    /// A readiness body with a method that sends none.
    #[error("`ready_body` is only sent with ready_method = \"POST\"")]
    ReadyBodyWithoutPost,
    /// A harness task without a harness.
    #[error("task uses method `harness` but the policy has no [evaluation.harness]")]
    MissingHarness,
    /// `min_samples` above `samples`.
    #[error("min_samples {min} exceeds samples {samples}")]
    MinSamplesExceedsSamples {
        /// min_samples.
        min: u32,
        /// samples.
        samples: u32,
    },
    /// A weight-norm bound out of range.
    #[error("{0}")]
    BadWeightNorm(String),
    /// A family license not in the allowed list.
    #[error("family license `{0}` is not in base_model.licenses")]
    FamilyLicenseNotAllowed(String),
    /// A required base model with no families or licenses.
    #[error("base_model.required = true needs at least one family and one license")]
    RequiredWithoutFamilies,
    /// A date not in `YYYY-MM-DD` form.
    #[error("`{0}` is not a date in YYYY-MM-DD form")]
    BadDate(String),
    /// A URL that is not https.
    #[error("`{0}` is not an https URL")]
    BadUrl(String),
    /// The dry-run budget exceeds the real one.
    #[error("dry-run train limit exceeds limits.train")]
    DryRunExceedsTrain,
    /// A known open dataset whose license is not in `open_licenses`.
    #[error("license `{0}` is not in open_licenses")]
    LicenseNotOpen(String),
    /// A file name that would leave the directory it is resolved in.
    #[error(
        "`{0}` must stay inside its directory: a relative path of plain names (no `..` or `.`, no empty part, no backslash, not absolute)"
    )]
    PathEscape(String),
    /// A sandbox profile name that is not a plain file stem.
    #[error(
        "`{0}` is not a sandbox profile name: letters, digits, `-` and `_` only (it names sandboxes/<name>.toml)"
    )]
    BadProfileName(String),
    /// A task name that cannot be a file name (task data is `<name>.jsonl`).
    #[error(
        "task name `{0}` must be letters, digits, `_`, `-` and `.`, not starting with `.` (it names the task's data file `<name>.jsonl`)"
    )]
    BadTaskName(String),
}

impl Problem {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Problem::IdMismatch { .. } => "rename the file or the id so they agree",
            Problem::BadId(_) => "use an id like `neurips-2023-llm-efficiency`",
            Problem::Empty | Problem::EmptyList => "fill it in; see docs/policies.md",
            Problem::Duplicate(_) => "give each entry a unique id or name",
            Problem::MinExceedsMax { .. } => "swap the bounds or fix the typo",
            Problem::Zero => {
                "a zero limit would make every run fail; remove the key if the rules set no limit"
            }
            Problem::NonPositiveWeight(_) => {
                "weights must be > 0; drop the task instead of weighting it 0"
            }
            Problem::WeightsNotNormalized(_) => {
                "weighted_sum weights must sum to 1, as in the competition's schedule"
            }
            Problem::NegativeTolerance(_) => {
                "use a non-negative tolerance, or remove it to require an exact match"
            }
            Problem::MissingCeiling | Problem::BadCeiling(_) => {
                "add `ceiling = <positive number>` to the task"
            }
            Problem::TextLossOnly(_) => "remove it, or set method = \"text_loss\"",
            Problem::LayoutWithoutSequenceLength => {
                "add `sequence_length = <tokens>` at the top of the policy"
            }
            Problem::UnusedCeiling => {
                "remove `ceiling`, or set normalization = \"inverse_exponential\""
            }
            Problem::MissingHarness => "add [evaluation.harness] with the organizer's image",
            Problem::BadReadyPath(_) => "write the path as the server routes it, e.g. \"/process\"",
            Problem::ReadyBodyWithoutPost => "set ready_method = \"POST\", or remove ready_body",
            Problem::MinSamplesExceedsSamples { .. } => "min_samples must not exceed samples",
            Problem::BadWeightNorm(_) => {
                "need 0 < soft_max ≤ hard_max and 0 ≤ soft_fraction_max ≤ 1"
            }
            Problem::FamilyLicenseNotAllowed(_) => {
                "add the license to base_model.licenses or fix the family"
            }
            Problem::RequiredWithoutFamilies => {
                "list the approved families (pattern = \"*\" allows any model) and licenses (\"*\" allows any)"
            }
            Problem::BadDate(_) => "write the date as \"2024-05-31\"",
            Problem::BadUrl(_) => "link the published rules with an https:// URL",
            Problem::DryRunExceedsTrain => "a dry run must be shorter than the real budget",
            Problem::LicenseNotOpen(_) => {
                "add the license to open_licenses, or move the dataset out of the open list"
            }
            Problem::PathEscape(_) => "write a file name such as \"scores.json\"",
            Problem::BadProfileName(_) => {
                "write the name of a profile in sandboxes/, e.g. sandbox = \"strict\""
            }
            Problem::BadTaskName(_) => "use a name like \"SYNTHETIC_MMLU\" or \"mmlu\"",
        }
    }
}
