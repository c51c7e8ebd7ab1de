//! The `artifacts` record: every file and tree of a run directory that a report vouches for, with
//! its digest, so `audit verify` can recompute each one later (docs/report-format.md,
//! "Artifacts record").
//!
//! A `file` artifact's digest is the plain SHA-256 of its bytes. A `tree` artifact's digest is
//! the OpenSSF model-signing root digest of the directory ([`crate::digest::digest_tree`]), in
//! files mode, or shards mode when `shard_size` is set; `files` lists the resources behind the
//! root so a mismatch can name the file inside the tree that changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ProvenanceError;
use super::statement::ResourceDescriptor;
use crate::digest::{DigestMode, DigestOptions, Sha256Digest, digest_tree, file_sha256};
use crate::rundir::RunDir;

/// How an artifact is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// A single file: SHA-256 of its bytes.
    File,
    /// A directory: the OMS root digest.
    Tree,
}

impl ArtifactKind {
    /// `file` or `tree`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::File => "file",
            ArtifactKind::Tree => "tree",
        }
    }
}

/// One resource behind a tree's root digest (an OMS manifest entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TreeEntry {
    /// The POSIX path inside the tree, plus `:start:end` for a shard.
    pub name: String,
    /// Its SHA-256.
    pub digest: Sha256Digest,
}

/// One artifact of a run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactRecord {
    /// What it is: `model`, `logs/train.log`, `inputs/base_model`, `telemetry`…
    pub name: String,
    /// Its path relative to the run directory, `/`-separated.
    pub path: String,
    /// `file` or `tree`.
    pub kind: ArtifactKind,
    /// SHA-256 of the file, or the OMS root digest of the tree.
    pub digest: Sha256Digest,
    /// The OMS shard size, for a tree hashed in shards mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_size: Option<u64>,
    /// For a tree: the resources behind the root, in canonical order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<TreeEntry>,
}

/// A freshly computed digest of an artifact path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    /// The file digest or tree root.
    pub digest: Sha256Digest,
    /// The tree's resources (empty for a file).
    pub files: Vec<TreeEntry>,
}

/// Hashes `rel` inside `run_dir` as `kind`. Used both to record and to re-check artifacts.
pub fn compute(
    run_dir: &RunDir,
    name: &str,
    rel: &str,
    kind: ArtifactKind,
    shard_size: Option<u64>,
) -> Result<Computed, ProvenanceError> {
    let path = run_dir.resolve(rel)?;
    let err = |source| ProvenanceError::Digest {
        name: name.to_owned(),
        source,
    };
    match kind {
        ArtifactKind::File => Ok(Computed {
            digest: file_sha256(&path).map_err(err)?,
            files: Vec::new(),
        }),
        ArtifactKind::Tree => {
            let opts = DigestOptions {
                mode: match shard_size {
                    Some(shard_size) => DigestMode::Shards { shard_size },
                    None => DigestMode::Files,
                },
                ..DigestOptions::default()
            };
            let tree = digest_tree(&path, &opts).map_err(err)?;
            let files = tree
                .resources
                .into_iter()
                .map(|r| TreeEntry {
                    name: r.name,
                    digest: r.digest,
                })
                .collect();
            Ok(Computed {
                digest: tree.root,
                files,
            })
        }
    }
}

impl ArtifactRecord {
    /// Hashes a file of the run directory (`rel` relative to it) and records it as `name`.
    pub fn file(run_dir: &RunDir, name: &str, rel: &str) -> Result<Self, ProvenanceError> {
        let c = compute(run_dir, name, rel, ArtifactKind::File, None)?;
        Ok(ArtifactRecord {
            name: name.to_owned(),
            path: rel.to_owned(),
            kind: ArtifactKind::File,
            digest: c.digest,
            shard_size: None,
            files: Vec::new(),
        })
    }

    /// Hashes a directory of the run directory the OMS way (files mode, or shards mode with
    /// `shard_size`) and records it as `name`, with its per-file digests.
    pub fn tree(
        run_dir: &RunDir,
        name: &str,
        rel: &str,
        shard_size: Option<u64>,
    ) -> Result<Self, ProvenanceError> {
        let c = compute(run_dir, name, rel, ArtifactKind::Tree, shard_size)?;
        Ok(ArtifactRecord {
            name: name.to_owned(),
            path: rel.to_owned(),
            kind: ArtifactKind::Tree,
            digest: c.digest,
            shard_size,
            files: c.files,
        })
    }

    /// The in-toto ResourceDescriptor for this artifact: `name`, `digest.sha256`, and the
    /// annotations `path`, `kind` (and `shardSize`) that let `audit verify` find it again.
    pub fn descriptor(&self) -> ResourceDescriptor {
        let mut annotations = serde_json::Map::new();
        annotations.insert("path".into(), self.path.clone().into());
        annotations.insert("kind".into(), self.kind.as_str().into());
        if let Some(s) = self.shard_size {
            annotations.insert("shardSize".into(), s.into());
        }
        ResourceDescriptor {
            name: Some(self.name.clone()),
            digest: BTreeMap::from([("sha256".to_owned(), self.digest.hex())]),
            annotations: Some(annotations),
            ..ResourceDescriptor::default()
        }
    }
}

/// The `artifacts` array of report.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Artifacts(pub Vec<ArtifactRecord>);

impl Artifacts {
    /// An empty record.
    pub fn new() -> Self {
        Artifacts::default()
    }

    /// Adds a record, replacing one with the same name.
    pub fn push(&mut self, record: ArtifactRecord) {
        self.0.retain(|r| r.name != record.name);
        self.0.push(record);
    }

    /// The record called `name`.
    pub fn get(&self, name: &str) -> Option<&ArtifactRecord> {
        self.0.iter().find(|r| r.name == name)
    }

    /// All records.
    pub fn iter(&self) -> impl Iterator<Item = &ArtifactRecord> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_files_and_trees_and_serializes_as_documented() {
        let t = tempfile::tempdir().unwrap();
        let d = RunDir::create_layout(t.path()).unwrap();
        std::fs::write(d.train_log(), b"hello\n").unwrap();
        std::fs::create_dir_all(d.out_dir().join("model")).unwrap();
        std::fs::write(d.out_dir().join("model/a.bin"), b"abc").unwrap();
        let mut a = Artifacts::new();
        a.push(ArtifactRecord::file(&d, "logs/train.log", "logs/train.log").unwrap());
        a.push(ArtifactRecord::tree(&d, "model", "out/model", None).unwrap());
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v[0]["kind"], "file");
        assert_eq!(
            v[0]["digest"],
            crate::digest::bytes_sha256(b"hello\n").to_string()
        );
        assert_eq!(v[1]["files"][0]["name"], "a.bin");
        assert!(v[1].get("shard_size").is_none());
        let back: Artifacts = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
        let rd = a.get("model").unwrap().descriptor();
        assert_eq!(rd.annotations.unwrap()["path"], "out/model");
        assert!(ArtifactRecord::file(&d, "x", "../etc/passwd").is_err());
    }
}
