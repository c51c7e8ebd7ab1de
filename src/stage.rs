//! Staging a submission's declared inputs (base model, datasets) from a local inputs mirror into
//! the run directory, and verifying each against the digest the manifest declares.
//!
//! The mirror is a plain directory the organizer fills beforehand (nothing is downloaded here):
//!
//! ```text
//! <mirror>/models/<hf-id>/<revision>/      e.g. models/openlm-research/open_llama_3b_v2/bce5d60…/
//! <mirror>/datasets/<hf-id>/<revision>/    e.g. datasets/databricks/databricks-dolly-15k/bdd27f4…/
//! ```
//!
//! Each input is copied into `<run>/inputs/…` (hard links where the file system allows, so a
//! 16 GB model costs no copy) and the *staged* copy is hashed, so the digest covers exactly the
//! bytes the sandbox will see. A mismatch with the declared digest makes the submission
//! non-compliant and nothing is started.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::{
    DigestError, DigestOptions, HashCounter, Sha256Digest, TreeDigest, digest_tree_counted,
};
use crate::manifest::Manifest;

/// Environment variable naming the default inputs mirror.
pub const INPUTS_ENV: &str = "REPROBOX_INPUTS";

/// A local mirror of base models and datasets, laid out by Hugging Face id and revision.
#[derive(Debug, Clone)]
pub struct InputsMirror {
    root: PathBuf,
}

/// What kind of input a mirror entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    BaseModel,
    Dataset,
}

/// One staged and verified input.
#[derive(Debug, Clone, Serialize)]
pub struct StagedInput {
    /// `base_model` or `datasets/<name>`: the path below `inputs/` and below `/inputs` in the
    /// container.
    pub name: String,
    pub kind: InputKind,
    /// The Hugging Face id and revision the manifest declares.
    pub id: String,
    pub revision: String,
    /// Where it came from in the mirror.
    pub source: PathBuf,
    /// Where it was staged, inside the run directory.
    pub staged: PathBuf,
    /// The read-only mount point in the container.
    pub container_path: String,
    /// The digest of the staged copy (equal to the declared one, or staging fails).
    pub digest: Sha256Digest,
    pub files: usize,
    pub bytes: u64,
}

/// Why staging failed. [`StageError::is_non_compliant`] tells a submission problem (declared
/// digest wrong or missing) from an infrastructure one (the mirror lacks an input).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(
        "{what} `{id}` at revision `{revision}` is not in the inputs mirror: `{path}` does not exist (hint: place the files there, or pass --inputs DIR / set {INPUTS_ENV} to the mirror that has them)"
    )]
    NotInMirror {
        what: &'static str,
        id: String,
        revision: String,
        path: PathBuf,
    },
    #[error(
        "{what} id `{id}` or revision `{revision}` cannot name a mirror directory: {reason} (hint: use the Hugging Face id `org/name` and a commit hash)"
    )]
    BadId {
        what: &'static str,
        id: String,
        revision: String,
        reason: &'static str,
    },
    #[error(
        "{name}: the manifest declares no digest, so the staged input cannot be verified (hint: add `digest = \"{actual}\"` after checking the files, as `reprobox hash` prints it)"
    )]
    MissingDigest { name: String, actual: Sha256Digest },
    #[error(
        "{name}: the staged input's digest {actual} differs from the declared {declared} (hint: the mirror holds different files than the team used; re-fetch `{id}` at the declared revision, or the manifest is wrong)"
    )]
    Mismatch {
        name: String,
        id: String,
        declared: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error("cannot stage `{from}` to `{to}`: {source}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot stage `{path}`: it is a symbolic link or special file; mirrors hold plain files only (hint: replace it with the file it points to)"
    )]
    NotAPlainFile { path: PathBuf },
    #[error("cannot hash the staged {name}")]
    Digest {
        name: String,
        #[source]
        source: DigestError,
    },
}

impl StageError {
    /// True when the submission is at fault (its declared digests), false when the mirror or the
    /// host is.
    pub fn is_non_compliant(&self) -> bool {
        matches!(
            self,
            StageError::Mismatch { .. } | StageError::MissingDigest { .. }
        )
    }
}

impl InputsMirror {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        InputsMirror { root: root.into() }
    }

    /// The default mirror under a cache directory (`$XDG_CACHE_HOME`, or `~/.cache`, as the CLI
    /// finds it): `<cache>/reprobox/inputs`.
    pub fn under_cache(cache: &Path) -> Self {
        InputsMirror::new(cache.join("reprobox").join("inputs"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<mirror>/models/<id>/<revision>`.
    pub fn model_dir(&self, id: &str, revision: &str) -> Result<PathBuf, StageError> {
        self.entry("models", "base model", id, revision)
    }

    /// `<mirror>/datasets/<id>/<revision>`.
    pub fn dataset_dir(&self, id: &str, revision: &str) -> Result<PathBuf, StageError> {
        self.entry("datasets", "dataset", id, revision)
    }

    fn entry(
        &self,
        sub: &str,
        what: &'static str,
        id: &str,
        revision: &str,
    ) -> Result<PathBuf, StageError> {
        let bad = |reason| StageError::BadId {
            what,
            id: id.to_owned(),
            revision: revision.to_owned(),
            reason,
        };
        let safe = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !id.split('/').all(safe) {
            return Err(bad(
                "the id may only hold `org/name` parts of [A-Za-z0-9._-]",
            ));
        }
        if !safe(revision) {
            return Err(bad("the revision may only hold [A-Za-z0-9._-]"));
        }
        let mut p = self.root.join(sub);
        for part in id.split('/') {
            p.push(part);
        }
        p.push(revision);
        Ok(p)
    }
}

/// Stages the manifest's base model and datasets into `inputs_dir` and verifies their digests.
///
/// `require_digests` makes a missing declared digest an error (a real run); a dry run may stage
/// undeclared inputs and report their digests instead. `counter` follows the hashing, for
/// progress lines.
pub fn stage_inputs(
    manifest: &Manifest,
    mirror: &InputsMirror,
    inputs_dir: &Path,
    require_digests: bool,
    counter: &HashCounter,
) -> Result<Vec<StagedInput>, StageError> {
    let mut out = Vec::new();
    if let Some(m) = &manifest.base_model {
        let source = mirror.model_dir(&m.id, &m.revision)?;
        out.push(stage_one(
            InputKind::BaseModel,
            "base_model".to_owned(),
            &m.id,
            &m.revision,
            m.digest.as_ref(),
            source,
            inputs_dir,
            require_digests,
            counter,
        )?);
    }
    for d in &manifest.datasets {
        let source = mirror.dataset_dir(&d.id, &d.revision)?;
        out.push(stage_one(
            InputKind::Dataset,
            format!("datasets/{}", d.name),
            &d.id,
            &d.revision,
            d.digest.as_ref(),
            source,
            inputs_dir,
            require_digests,
            counter,
        )?);
    }
    Ok(out)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site per input kind, all fields needed"
)]
fn stage_one(
    kind: InputKind,
    name: String,
    id: &str,
    revision: &str,
    declared: Option<&Sha256Digest>,
    source: PathBuf,
    inputs_dir: &Path,
    require_digests: bool,
    counter: &HashCounter,
) -> Result<StagedInput, StageError> {
    if !source.is_dir() {
        return Err(StageError::NotInMirror {
            what: match kind {
                InputKind::BaseModel => "base model",
                InputKind::Dataset => "dataset",
            },
            id: id.to_owned(),
            revision: revision.to_owned(),
            path: source,
        });
    }
    let staged = inputs_dir.join(&name);
    // A resumed run finds an earlier, complete staging; start clean otherwise so no stray file
    // from a half-finished copy survives into the digest.
    if staged.exists() {
        fs::remove_dir_all(&staged).map_err(|source| StageError::Copy {
            from: staged.clone(),
            to: staged.clone(),
            source,
        })?;
    }
    copy_tree(&source, &staged)?;
    let tree: TreeDigest = digest_tree_counted(&staged, &DigestOptions::default(), counter)
        .map_err(|source| StageError::Digest {
            name: name.clone(),
            source,
        })?;
    match declared {
        Some(d) if *d != tree.root => {
            return Err(StageError::Mismatch {
                name,
                id: id.to_owned(),
                declared: *d,
                actual: tree.root,
            });
        }
        None if require_digests => {
            return Err(StageError::MissingDigest {
                name,
                actual: tree.root,
            });
        }
        _ => {}
    }
    let bytes = tree_bytes(&staged);
    Ok(StagedInput {
        container_path: format!("/inputs/{name}"),
        name,
        kind,
        id: id.to_owned(),
        revision: revision.to_owned(),
        source,
        staged,
        digest: tree.root,
        files: tree.resources.len(),
        bytes,
    })
}

/// Copies a tree of plain files and directories, hard-linking files where possible.
fn copy_tree(from: &Path, to: &Path) -> Result<(), StageError> {
    let err = |f: &Path, t: &Path| {
        let (f, t) = (f.to_path_buf(), t.to_path_buf());
        move |source| StageError::Copy {
            from: f,
            to: t,
            source,
        }
    };
    fs::create_dir_all(to).map_err(err(from, to))?;
    for entry in fs::read_dir(from).map_err(err(from, to))? {
        let entry = entry.map_err(err(from, to))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let ft = entry.file_type().map_err(err(&src, &dst))?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            if fs::hard_link(&src, &dst).is_err() {
                fs::copy(&src, &dst).map_err(err(&src, &dst))?;
            }
        } else {
            return Err(StageError::NotAPlainFile { path: src });
        }
    }
    Ok(())
}

fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(ft) if ft.is_dir() => stack.push(e.path()),
                Ok(ft) if ft.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_paths_follow_the_layout_and_refuse_traversal() {
        let m = InputsMirror::new("/m");
        assert_eq!(
            m.model_dir("org/name", "abc123").unwrap(),
            PathBuf::from("/m/models/org/name/abc123")
        );
        assert_eq!(
            m.dataset_dir("databricks/dolly", "v1.0").unwrap(),
            PathBuf::from("/m/datasets/databricks/dolly/v1.0")
        );
        assert!(matches!(
            m.model_dir("../etc", "x"),
            Err(StageError::BadId { .. })
        ));
        assert!(matches!(
            m.model_dir("org/name", "../../x"),
            Err(StageError::BadId { .. })
        ));
        assert!(matches!(
            m.model_dir("/abs", "x"),
            Err(StageError::BadId { .. })
        ));
    }

    #[test]
    fn copy_tree_copies_nested_files_and_refuses_links() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("a/b")).unwrap();
        fs::write(src.join("a/b/w.bin"), b"weights").unwrap();
        fs::write(src.join("config.json"), b"{}").unwrap();
        copy_tree(&src, &t.path().join("dst")).unwrap();
        assert_eq!(
            fs::read(t.path().join("dst/a/b/w.bin")).unwrap(),
            b"weights"
        );
        assert_eq!(tree_bytes(&t.path().join("dst")), 9);

        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let e = copy_tree(&src, &t.path().join("dst2")).unwrap_err();
        assert!(matches!(e, StageError::NotAPlainFile { .. }), "{e}");
    }
}
