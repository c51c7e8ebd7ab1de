//! `provenance.intoto.jsonl`: one statement per line (in-toto `spec/v1/bundle.md`), each either
//! a bare Statement (unsigned runs) or a DSSE envelope (runs with `--sign-key`). Writing is
//! atomic: a temporary file, fsync, rename, fsync of the directory.

use std::io::Write;
use std::path::Path;

use super::ProvenanceError;
use super::dsse::{Envelope, SigningKey, sign_statement};
use super::statement::Statement;

/// One parsed line of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleEntry {
    /// 1-based line number.
    pub line: usize,
    /// The statement (from the envelope's payload when signed, unverified).
    pub statement: Statement,
    /// The envelope, when the line is signed.
    pub envelope: Option<Envelope>,
}

/// Writes `statements` as a bundle, each wrapped in a DSSE envelope when `key` is given.
pub fn write_bundle(
    path: &Path,
    statements: &[Statement],
    key: Option<&SigningKey>,
) -> Result<(), ProvenanceError> {
    let mut text = Vec::new();
    for st in statements {
        let line = match key {
            Some(k) => serde_json::to_vec(&sign_statement(st, k)?),
            None => serde_json::to_vec(st),
        }
        .map_err(|source| ProvenanceError::Json {
            what: "a bundle line",
            source,
        })?;
        text.extend_from_slice(&line);
        text.push(b'\n');
    }
    let io = |p: &Path, op| {
        let p = p.to_owned();
        move |source| ProvenanceError::Io {
            path: p,
            op,
            source,
        }
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let mut f = std::fs::File::create(tmp).map_err(io(tmp, "create"))?;
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .map_err(io(tmp, "write"))?;
    std::fs::rename(tmp, path).map_err(io(path, "rename into place"))?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir, "fsync"))?;
    }
    Ok(())
}

/// Parses one bundle line: an envelope if it has `payloadType`, a statement otherwise.
pub fn parse_line(line: usize, text: &str) -> Result<BundleEntry, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("payloadType").is_some() {
        let envelope: Envelope =
            serde_json::from_value(v).map_err(|e| format!("not a DSSE envelope: {e}"))?;
        let statement = envelope.statement_unverified().map_err(|e| e.to_string())?;
        Ok(BundleEntry {
            line,
            statement,
            envelope: Some(envelope),
        })
    } else {
        let statement: Statement =
            serde_json::from_value(v).map_err(|e| format!("not an in-toto statement: {e}"))?;
        Ok(BundleEntry {
            line,
            statement,
            envelope: None,
        })
    }
}

/// One line of a bundle: its 1-based number and the entry, or why it is not one.
pub type BundleLine = (usize, Result<BundleEntry, String>);

/// Reads a bundle: every non-empty line, parsed or with the reason it is not.
pub fn read_bundle(path: &Path) -> Result<Vec<BundleLine>, ProvenanceError> {
    let text = crate::input_file::read_to_string(path, crate::rundir::PROVENANCE_CAP)?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, parse_line(i + 1, l)))
        .collect())
}
