//! Manifest errors. Each one that comes from the file's content names the file, the 1-based line
//! and column, and the dotted field (`datasets[1].digest`), and ends with a hint, e.g.
//!
//! ```text
//! sub/reprobox.toml:14:10: `datasets[1].digest`: `sha256:12` is not a digest: it needs exactly
//! 64 hex digits after `sha256:` (hint: write it as sha256:<64 lowercase hex digits>, as
//! `reprobox hash` prints it)
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use super::spans::LineCol;
use super::types::RelPathError;
use super::version::SCHEMA_VERSION;
use crate::digest::ParseDigestError;

/// A position in a manifest file: `path:line:column`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub(crate) fn new(path: &Path, at: LineCol) -> Location {
        Location {
            path: path.to_path_buf(),
            line: at.line,
            column: at.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("no manifest at `{}` (hint: write a {} in the submission directory; docs/manifest.md has a complete example)", path.display(), super::FILE_NAME)]
    NotFound { path: PathBuf, dir: PathBuf },

    #[error("`{}` is a file, not a submission directory (hint: pass the directory that holds {})", path.display(), super::FILE_NAME)]
    NotADirectory { path: PathBuf },

    #[error("cannot read `{}`: {source} (hint: check that the file is readable)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The manifest is not a regular file (a FIFO, a device, a directory, a symlink loop).
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),

    #[error("`{}` is larger than {limit} bytes, too large for a manifest (hint: a manifest is a short TOML file; check that the right file is named {})", path.display(), super::FILE_NAME)]
    TooLarge { path: PathBuf, limit: u64 },

    #[error("{location}: the manifest is not UTF-8 text (hint: save it as UTF-8)")]
    NotUtf8 { location: Location },

    #[error(
        "{location}: invalid TOML: {message} (hint: fix the TOML syntax at that position; https://toml.io/en/v1.0.0 describes it)"
    )]
    Syntax { location: Location, message: String },

    #[error(
        "{location}: `schema_version` is missing (hint: add `schema_version = {SCHEMA_VERSION}` as the first line)"
    )]
    MissingSchemaVersion { location: Location },

    #[error("{location}: `schema_version` is {found}, newer than this reprobox {version} reads (up to {SCHEMA_VERSION}): the manifest requires reprobox ≥ {requires} (hint: upgrade reprobox to {requires} or later, or write the manifest for schema_version {SCHEMA_VERSION})", version = crate::VERSION)]
    NewerSchemaVersion {
        location: Location,
        found: u32,
        requires: String,
    },

    #[error(
        "{location}: `schema_version` is {found}, which no reprobox reads (hint: write `schema_version = {SCHEMA_VERSION}`)"
    )]
    UnknownSchemaVersion { location: Location, found: u32 },

    #[error(
        "{location}: unknown field `{field}` (hint: remove it or fix its spelling; {expected})"
    )]
    UnknownField {
        location: Location,
        field: String,
        /// The keys accepted there, in toml's words ("expected one of `a`, `b`").
        expected: String,
    },

    #[error(
        "{location}: missing field `{field}` (hint: add it; docs/manifest.md lists every field)"
    )]
    MissingField { location: Location, field: String },

    #[error(
        "{location}: `{field}`: {message} (hint: write it as {expected}; docs/manifest.md gives each field's type)"
    )]
    WrongType {
        location: Location,
        field: String,
        message: String,
        /// What the field takes, in words ("a non-negative integer").
        expected: String,
    },

    #[error("{location}: `{field}`: {problem}")]
    Invalid {
        location: Location,
        field: String,
        problem: ManifestProblem,
    },
}

impl ManifestError {
    /// The manifest file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::NotFound { path, .. }
            | ManifestError::NotADirectory { path }
            | ManifestError::Read { path, .. }
            | ManifestError::TooLarge { path, .. } => path,
            ManifestError::Input(e) => e.path(),
            ManifestError::NotUtf8 { location }
            | ManifestError::Syntax { location, .. }
            | ManifestError::MissingSchemaVersion { location }
            | ManifestError::NewerSchemaVersion { location, .. }
            | ManifestError::UnknownSchemaVersion { location, .. }
            | ManifestError::UnknownField { location, .. }
            | ManifestError::MissingField { location, .. }
            | ManifestError::WrongType { location, .. }
            | ManifestError::Invalid { location, .. } => &location.path,
        }
    }

    /// Where in the file, when the error is about the file's content.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ManifestError::NotFound { .. }
            | ManifestError::NotADirectory { .. }
            | ManifestError::Read { .. }
            | ManifestError::TooLarge { .. }
            | ManifestError::Input(_) => None,
            ManifestError::NotUtf8 { location }
            | ManifestError::Syntax { location, .. }
            | ManifestError::MissingSchemaVersion { location }
            | ManifestError::NewerSchemaVersion { location, .. }
            | ManifestError::UnknownSchemaVersion { location, .. }
            | ManifestError::UnknownField { location, .. }
            | ManifestError::MissingField { location, .. }
            | ManifestError::WrongType { location, .. }
            | ManifestError::Invalid { location, .. } => Some(location),
        }
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<u32> {
        self.location().map(|l| l.line)
    }

    /// The dotted field the error is about (`datasets[1].digest`), when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ManifestError::MissingSchemaVersion { .. }
            | ManifestError::NewerSchemaVersion { .. }
            | ManifestError::UnknownSchemaVersion { .. } => Some("schema_version"),
            ManifestError::UnknownField { field, .. }
            | ManifestError::MissingField { field, .. }
            | ManifestError::WrongType { field, .. }
            | ManifestError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A rule of `validate.rs` that a field breaks. The message ends with its hint.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    #[error("must not be empty or blank (hint: {hint})")]
    Empty { hint: &'static str },

    #[error(
        "the claimed score `{value}` is not a finite number (hint: write the value as on the leaderboard, e.g. 0.512; nan and inf are not scores)"
    )]
    NonFiniteScore { value: f64 },

    #[error(
        "no claimed scores (hint: add `scores = {{ <task> = <value> }}` with the values shown on the leaderboard)"
    )]
    NoScores,

    #[error(
        "{reason} (hint: write a path relative to {base} with `/` between parts and no `..`, e.g. `{example}`)"
    )]
    BadPath {
        reason: RelPathError,
        /// What the path is relative to ("the submission root", "/out in the container").
        base: &'static str,
        example: &'static str,
    },

    #[error("`.` is {base} itself, not a {what} (hint: name the {what}, e.g. `{example}`)")]
    PathIsBase {
        what: &'static str,
        base: &'static str,
        example: &'static str,
    },

    #[error("{0}")]
    BadDigest(ParseDigestError),

    #[error(
        "the dataset name `{name}` is already used by `datasets[{first}]` (hint: give each dataset its own name; it becomes the directory /inputs/datasets/<name>)"
    )]
    DuplicateDatasetName { name: String, first: usize },

    #[error(
        "`{name}` is not a safe directory name (hint: use 1 to 255 of the characters A-Z a-z 0-9 . _ -, not starting with `.`; the dataset is staged at /inputs/datasets/<name>)"
    )]
    UnsafeDatasetName { name: String },

    #[error(
        "is an empty list (hint: leave `command` out to run the image's CMD, or list the program and its arguments)"
    )]
    EmptyCommand,
}
