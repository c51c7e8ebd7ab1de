//! The validated manifest: what every later stage (check, staging, the sandbox, the report) reads.
//! A value of these types has passed every rule in `validate.rs`, so consumers need not re-check
//! paths, digests or names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use schemars::JsonSchema;
use serde::Serialize;

use super::spans::SpanIndex;
use crate::digest::Sha256Digest;

/// A submission manifest, validated.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Manifest {
    /// Always [`super::SCHEMA_VERSION`] for a manifest this reprobox accepted.
    pub schema_version: u32,
    pub submission: Submission,
    pub train: Train,
    /// The pretrained model training starts from, if any.
    pub base_model: Option<ModelInput>,
    /// Declared datasets, in file order, names unique.
    pub datasets: Vec<DatasetInput>,
    pub claims: Claims,
}

/// Who submitted, and under which competition rules. All three are non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Submission {
    pub team: String,
    /// A policy id (resolved against `policies/` by `check`, not here).
    pub policy: String,
    /// A track of that policy (resolved by `check`).
    pub track: String,
}

/// How to rebuild the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Train {
    /// Relative to the submission root.
    pub dockerfile: RelPath,
    /// Relative to the submission root; `.` (the root itself) by default.
    pub context: RelPath,
    /// Program and arguments, none empty; `None` runs the image's CMD.
    pub command: Option<Vec<String>>,
    /// Relative to `/out` in the container; `model` by default.
    pub output: RelPath,
    pub seed: Option<u64>,
}

/// A pinned model input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ModelInput {
    pub id: String,
    pub revision: String,
    pub license: String,
    /// Absent digests are reported by `check` as `missing_digest`.
    pub digest: Option<Sha256Digest>,
}

/// A pinned dataset input, staged at `/inputs/datasets/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DatasetInput {
    /// Safe as a directory name: `[A-Za-z0-9._-]`, not starting with `.`, at most 255 bytes.
    pub name: String,
    pub id: String,
    pub revision: String,
    pub license: String,
    /// Absent digests are reported by `check` as `missing_digest`.
    pub digest: Option<Sha256Digest>,
}

/// What the team claimed.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Claims {
    /// Task name → claimed value; at least one entry, every value finite.
    pub scores: BTreeMap<String, f64>,
    /// The submitted model directory, relative to the submission root.
    pub submitted_model: Option<RelPath>,
}

/// A validated relative path: not empty, not absolute, no `..` component, no backslash or control
/// character, written with `/` and normalized (`./` components, repeated and trailing slashes
/// removed). The path of the base directory itself is `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

/// Why a string is not a [`RelPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelPathError {
    #[error("the path is empty")]
    Empty,
    #[error("`{0}` is an absolute path")]
    Absolute(String),
    #[error("`{0}` has a `..` component")]
    ParentDir(String),
    #[error("`{0}` contains a backslash")]
    Backslash(String),
    #[error("`{0}` contains a control character")]
    ControlChar(String),
}

impl RelPath {
    /// Checks and normalizes a relative path.
    pub fn parse(s: &str) -> Result<RelPath, RelPathError> {
        let shown = || s.chars().take(200).collect::<String>();
        if s.is_empty() {
            return Err(RelPathError::Empty);
        }
        if s.chars().any(char::is_control) {
            return Err(RelPathError::ControlChar(
                shown().escape_debug().to_string(),
            ));
        }
        if s.starts_with('/') {
            return Err(RelPathError::Absolute(shown()));
        }
        if s.contains('\\') {
            return Err(RelPathError::Backslash(shown()));
        }
        let mut parts = Vec::new();
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(RelPathError::ParentDir(shown())),
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            Ok(RelPath(".".to_owned()))
        } else {
            Ok(RelPath(parts.join("/")))
        }
    }

    /// The base directory itself.
    pub fn root() -> RelPath {
        RelPath(".".to_owned())
    }

    /// Whether this is the base directory itself (`.`).
    pub fn is_root(&self) -> bool {
        self.0 == "."
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl FromStr for RelPath {
    type Err = RelPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RelPath::parse(s)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<Path> for RelPath {
    fn as_ref(&self) -> &Path {
        self.as_path()
    }
}

impl JsonSchema for RelPath {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RelPath".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A normalized relative path: no leading `/`, no `..` component, `/` as separator."
        })
    }
}

/// A manifest together with where it came from, for error messages and findings that point at a
/// line of the file.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    pub manifest: Manifest,
    /// The manifest file, as given to [`super::load`] or [`super::parse`].
    pub path: PathBuf,
    /// The submission directory (the manifest's parent directory).
    pub root: PathBuf,
    pub(crate) spans: SpanIndex,
}

impl LoadedManifest {
    /// The 1-based line of a field, given as a dotted path such as `base_model.license`,
    /// `datasets[0].license`, `claims.scores.mmlu` or `train` (the `[train]` header). Keys that
    /// are not bare TOML keys (`A-Za-z0-9_-`) are quoted, with `"` and `\` escaped by `\`:
    /// `claims.scores."mmlu.5shot"`. `None` when the file does not contain the field (e.g. a
    /// default was used).
    pub fn line_of(&self, field: &str) -> Option<u32> {
        self.spans.line_of(field)
    }

    /// A path of the manifest resolved against the submission directory (lexically; `check`
    /// looks for symlinks that leave the root).
    pub fn resolve(&self, path: &RelPath) -> PathBuf {
        if path.is_root() {
            self.root.clone()
        } else {
            self.root.join(path.as_path())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_path_normalizes_and_rejects() {
        let ok = |s: &str| RelPath::parse(s).unwrap().to_string();
        assert_eq!(ok("./Dockerfile"), "Dockerfile");
        assert_eq!(ok("a//b/./c/"), "a/b/c");
        assert_eq!(ok("."), ".");
        assert_eq!(ok("./"), ".");
        assert!(RelPath::parse(".").unwrap().is_root());
        assert_eq!(ok("..a/b..c"), "..a/b..c");
        assert_eq!(RelPath::parse(""), Err(RelPathError::Empty));
        assert!(matches!(
            RelPath::parse("/etc/passwd"),
            Err(RelPathError::Absolute(_))
        ));
        assert!(matches!(
            RelPath::parse("a/../../b"),
            Err(RelPathError::ParentDir(_))
        ));
        assert!(matches!(
            RelPath::parse(".."),
            Err(RelPathError::ParentDir(_))
        ));
        assert!(matches!(
            RelPath::parse("a\\b"),
            Err(RelPathError::Backslash(_))
        ));
        assert!(matches!(
            RelPath::parse("a\nb"),
            Err(RelPathError::ControlChar(_))
        ));
        assert_eq!(
            serde_json::to_string(&RelPath::parse("./x/y").unwrap()).unwrap(),
            "\"x/y\""
        );
    }
}
