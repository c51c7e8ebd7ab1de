//! Reading a manifest: the file, then the three passes (version only, typed raw structs,
//! validation), each error placed at a line, column and dotted field.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, Deserializer};

use super::error::{Location, ManifestError};
use super::raw::{RawManifest, VersionOnlyConfig};
use super::spans::{LineCol, SpanIndex, join_key};
use super::types::LoadedManifest;
use super::validate::validate;
use super::version::{SCHEMA_VERSION, required_reprobox};
use crate::input_file::{self, Cap, InputFileError};

/// The manifest's file name inside a submission directory.
pub const FILE_NAME: &str = "reprobox.toml";

/// Larger files are refused before they are read: the submission is untrusted, and a real
/// manifest is a few kilobytes.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The manifest's cap, as [`input_file`] enforces it.
pub const MANIFEST_CAP: Cap = Cap::new(
    "manifest",
    MAX_MANIFEST_BYTES,
    "a manifest is a short TOML file; check that the right file is named reprobox.toml",
);

/// Reads and validates `<submission_dir>/reprobox.toml`.
pub fn load(submission_dir: &Path) -> Result<LoadedManifest, ManifestError> {
    let path = submission_dir.join(FILE_NAME);
    if submission_dir.is_file() {
        return Err(ManifestError::NotADirectory {
            path: submission_dir.to_path_buf(),
        });
    }
    let bytes = match input_file::read(&path, MANIFEST_CAP) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(ManifestError::NotFound {
                path,
                dir: submission_dir.to_path_buf(),
            });
        }
        Err(InputFileError::TooLarge { .. }) => {
            return Err(ManifestError::TooLarge {
                path,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        Err(e) => return Err(ManifestError::Input(e)),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]);
            let at = SpanIndex::new(&prefix, None).line_col(valid);
            return Err(ManifestError::NotUtf8 {
                location: Location::new(&path, at),
            });
        }
    };
    parse(&text, &path)
}

/// Parses and validates a manifest's text. `manifest_path` is used in errors and to derive the
/// submission root (its parent directory); the file is not read.
pub fn parse(text: &str, manifest_path: &Path) -> Result<LoadedManifest, ManifestError> {
    let doc = DeTable::parse(text).map_err(|e| {
        let index = SpanIndex::new(text, None);
        let at = e
            .span()
            .map_or(LineCol { line: 1, column: 1 }, |s| index.line_col(s.start));
        ManifestError::Syntax {
            location: Location::new(manifest_path, at),
            message: e.message().trim().to_owned(),
        }
    })?;
    let spans = SpanIndex::new(text, Some(doc.get_ref()));

    // Pass 1: the version alone, so a newer schema is reported as such and not as unknown keys.
    let version = VersionOnlyConfig::deserialize(Deserializer::from(doc.clone()))
        .map_err(|e| de_error(&e, &spans, manifest_path))?;
    let version_at = || Location::new(manifest_path, spans.locate("schema_version"));
    match version.schema_version {
        None => {
            return Err(ManifestError::MissingSchemaVersion {
                location: version_at(),
            });
        }
        Some(found) if found > SCHEMA_VERSION => {
            return Err(ManifestError::NewerSchemaVersion {
                location: version_at(),
                found,
                requires: required_reprobox(found),
            });
        }
        Some(0) => {
            return Err(ManifestError::UnknownSchemaVersion {
                location: version_at(),
                found: 0,
            });
        }
        Some(_) => {}
    }

    // Pass 2: typed raw structs, unknown fields rejected.
    let raw = RawManifest::deserialize(Deserializer::from(doc))
        .map_err(|e| de_error(&e, &spans, manifest_path))?;

    // Pass 3: the rules serde cannot express.
    let manifest = validate(raw).map_err(|v| ManifestError::Invalid {
        location: Location::new(manifest_path, spans.locate(&v.field)),
        field: v.field,
        problem: v.problem,
    })?;

    Ok(LoadedManifest {
        manifest,
        path: manifest_path.to_path_buf(),
        root: submission_root(manifest_path),
        spans,
    })
}

fn submission_root(manifest_path: &Path) -> PathBuf {
    match manifest_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Turns a toml/serde error into a located error naming its field. toml reports the span of the
/// offending key (unknown field), value (wrong type) or enclosing table (missing field).
fn de_error(err: &toml::de::Error, spans: &SpanIndex, path: &Path) -> ManifestError {
    let span = err.span().unwrap_or(0..0);
    let location = Location::new(path, spans.line_col(span.start));
    let at = spans.field_at(&span);
    let message = err.message().trim();

    if let Some((name, rest)) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
    {
        // The span is the unknown key itself, so `at` is already its full path.
        let field = at.map_or_else(|| join_key("", name), str::to_owned);
        let expected = rest.trim_start_matches(',').trim();
        let expected = if expected.is_empty() {
            "docs/manifest.md lists every field".to_owned()
        } else {
            expected.to_owned()
        };
        return ManifestError::UnknownField {
            location,
            field,
            expected,
        };
    }
    if let Some((name, _)) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split_once('`'))
    {
        return ManifestError::MissingField {
            location,
            field: join_key(at.unwrap_or(""), name),
        };
    }
    // serde names Rust types ("expected u64", "expected struct RawTrain"); say what to write.
    let (message, expected) = match message.rsplit_once("expected ") {
        Some((found, expected)) => {
            let expected = in_words(expected.trim());
            (format!("{found}expected {expected}"), expected)
        }
        None => (message.to_owned(), "the documented type".to_owned()),
    };
    ManifestError::WrongType {
        location,
        field: at.unwrap_or("(document)").to_owned(),
        message,
        expected,
    }
}

/// serde's names for the types a manifest uses, in a user's words.
fn in_words(expected: &str) -> String {
    match expected {
        "u32" => "an integer from 0 to 4294967295".to_owned(),
        "u64" => "a non-negative integer".to_owned(),
        "f64" => "a number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "a table".to_owned(),
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}
