//! The `artifacts` record: every file and tree of a run directory that a report vouches for, with
//! its digest, so `audit verify` can recompute each one later (docs/report-format.md,
//! "Artifacts record").
//!
//! A `file` artifact's digest is the plain SHA-256 of its bytes. A `tree` artifact's digest is
//! the OpenSSF model-signing root digest of the directory ([`crate::digest::digest_tree`]), in
//! files mode, or shards mode when `shard_size` is set. The resources behind the root go to a
//! listing of their own (`listings/<name>.jsonl`, one [`TreeEntry`] a line, written as it is
//! read), so a mismatch can name the file inside the tree that changed while the report keeps
//! only the count and the largest files: a model of 200,000 files made a 30 MB report when the
//! list was inline. Records written before the listing (`files` inline) are still read.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

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

/// A file of a tree with its size: the report keeps the largest few.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SizedEntry {
    /// The POSIX path inside the tree.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256.
    pub digest: Sha256Digest,
}

/// How many of a tree's largest files the report names.
pub const LARGEST_KEPT: usize = 10;

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
    /// For a tree recorded by reprobox before 0.3 of the report format: the resources behind
    /// the root, inline. Newer records write them to `listing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<TreeEntry>,
    /// For a tree: how many resources are behind the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u64>,
    /// For a tree: its listing, relative to the run directory (`listings/<name>.jsonl`): the
    /// resources behind the root in canonical order, one `{"name", "digest"}` a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<String>,
    /// The SHA-256 of the listing file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_digest: Option<Sha256Digest>,
    /// For a tree in files mode: its largest files (at most [`LARGEST_KEPT`]), largest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub largest: Vec<SizedEntry>,
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
            file_count: None,
            listing: None,
            listing_digest: None,
            largest: Vec::new(),
        })
    }

    /// Hashes a directory of the run directory the OMS way (files mode, or shards mode with
    /// `shard_size`) and records it as `name`: its per-file digests go to its listing
    /// ([`write_listing`]), the record keeps their count and the largest files.
    pub fn tree(
        run_dir: &RunDir,
        name: &str,
        rel: &str,
        shard_size: Option<u64>,
    ) -> Result<Self, ProvenanceError> {
        let c = compute(run_dir, name, rel, ArtifactKind::Tree, shard_size)?;
        let listing = listing_path(name);
        let listing_digest = write_listing(run_dir, &listing, &c.files)?;
        let largest = if shard_size.is_none() {
            largest_files(&run_dir.resolve(rel)?, &c.files)
        } else {
            Vec::new()
        };
        Ok(ArtifactRecord {
            name: name.to_owned(),
            path: rel.to_owned(),
            kind: ArtifactKind::Tree,
            digest: c.digest,
            shard_size,
            files: Vec::new(),
            file_count: Some(c.files.len() as u64),
            listing: Some(listing),
            listing_digest: Some(listing_digest),
            largest,
        })
    }

    /// The resources behind a tree's root as recorded: inline (older records) or read back from
    /// the listing, which must still hash to `listing_digest`. Empty for a file.
    pub fn recorded_files(&self, run_dir: &RunDir) -> Result<Vec<TreeEntry>, String> {
        let (Some(listing), Some(want)) = (&self.listing, &self.listing_digest) else {
            return Ok(self.files.clone());
        };
        let path = run_dir.resolve(listing).map_err(|e| e.to_string())?;
        let have = file_sha256(&path).map_err(|e| e.to_string())?;
        if have != *want {
            return Err(format!(
                "the listing `{listing}` of `{}` is {have}, recorded {want}",
                self.name
            ));
        }
        read_listing(&path).map_err(|e| format!("the listing `{listing}`: {e}"))
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

/// The listing's path for an artifact called `name` (`inputs/base_model` →
/// `listings/inputs-base_model.jsonl`).
pub fn listing_path(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{}/{stem}.jsonl", crate::rundir::LISTINGS_DIR)
}

/// Writes `files` as a listing at `rel` (one JSON object a line, through a buffer: memory stays
/// flat however many there are) and returns the file's SHA-256.
pub fn write_listing(
    run_dir: &RunDir,
    rel: &str,
    files: &[TreeEntry],
) -> Result<Sha256Digest, ProvenanceError> {
    let path = run_dir.resolve(rel)?;
    let io = |op: &'static str| {
        let path = path.clone();
        move |source| ProvenanceError::Io { path, op, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    }
    let file = std::fs::File::create(&path).map_err(io("create"))?;
    let mut out = std::io::BufWriter::new(file);
    for entry in files {
        serde_json::to_writer(&mut out, entry).map_err(|source| ProvenanceError::Json {
            what: "a listing line",
            source,
        })?;
        out.write_all(b"\n").map_err(io("write"))?;
    }
    out.flush().map_err(io("write"))?;
    out.get_ref().sync_all().map_err(io("sync"))?;
    file_sha256(&path).map_err(|source| ProvenanceError::Digest {
        name: rel.to_owned(),
        source,
    })
}

/// Reads a listing back, line by line.
fn read_listing(path: &std::path::Path) -> Result<Vec<TreeEntry>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let entry: TreeEntry = serde_json::from_str(&line)
            .map_err(|e| format!("line {}: {e} (expected {{\"name\", \"digest\"}})", i + 1))?;
        out.push(entry);
    }
    Ok(out)
}

/// The largest of `files` under `root`, largest first (ties by name), at most [`LARGEST_KEPT`].
fn largest_files(root: &std::path::Path, files: &[TreeEntry]) -> Vec<SizedEntry> {
    let mut top: Vec<SizedEntry> = Vec::with_capacity(LARGEST_KEPT + 1);
    for f in files {
        let Ok(meta) = std::fs::symlink_metadata(root.join(&f.name)) else {
            continue;
        };
        let bytes = meta.len();
        if top.len() == LARGEST_KEPT && top.last().is_some_and(|l| l.bytes >= bytes) {
            continue;
        }
        top.push(SizedEntry {
            name: f.name.clone(),
            bytes,
            digest: f.digest,
        });
        top.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
        top.truncate(LARGEST_KEPT);
    }
    top
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
        // The per-file digests are in the tree's listing, not inline.
        assert!(v[1].get("files").is_none(), "{v}");
        assert_eq!(v[1]["file_count"], 1);
        assert_eq!(v[1]["listing"], "listings/model.jsonl");
        assert_eq!(v[1]["largest"][0]["name"], "a.bin");
        assert_eq!(v[1]["largest"][0]["bytes"], 3);
        let files = a.get("model").unwrap().recorded_files(&d).unwrap();
        assert_eq!(files[0].name, "a.bin");
        assert_eq!(files[0].digest, crate::digest::bytes_sha256(b"abc"));
        assert!(v[1].get("shard_size").is_none());
        let back: Artifacts = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
        let rd = a.get("model").unwrap().descriptor();
        assert_eq!(rd.annotations.unwrap()["path"], "out/model");
        assert!(ArtifactRecord::file(&d, "x", "../etc/passwd").is_err());
    }

    #[test]
    fn a_large_tree_keeps_the_report_small_and_its_listing_complete() {
        let t = tempfile::tempdir().unwrap();
        let d = RunDir::create_layout(t.path()).unwrap();
        let model = d.out_dir().join("model");
        std::fs::create_dir_all(&model).unwrap();
        for i in 0..2000 {
            std::fs::write(model.join(format!("shard-{i:05}.bin")), vec![b'x'; i % 97]).unwrap();
        }
        let r = ArtifactRecord::tree(&d, "model", "out/model", None).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        // Counts and the ten largest: the record's size does not grow with the file count
        // (inline, 2000 entries were about 200 KB).
        assert!(json.len() < 4096, "{} bytes", json.len());
        assert_eq!(r.file_count, Some(2000));
        assert_eq!(r.largest.len(), LARGEST_KEPT);
        assert!(r.largest.iter().all(|e| e.bytes == 96), "{:?}", r.largest);
        let listed = r.recorded_files(&d).unwrap();
        assert_eq!(listed.len(), 2000);
        assert_eq!(
            crate::digest::root_of(listed.iter().map(|e| &e.digest)),
            r.digest
        );
        // A listing changed after the fact no longer matches its recorded digest.
        let listing = d.root().join(r.listing.as_deref().unwrap());
        let text = std::fs::read_to_string(&listing).unwrap();
        std::fs::write(&listing, text.replacen("shard-00000", "shard-99999", 1)).unwrap();
        let err = r.recorded_files(&d).unwrap_err();
        assert!(err.contains("listings/model.jsonl"), "{err}");
    }

    #[test]
    fn listing_names_are_plain_files_under_listings() {
        assert_eq!(listing_path("model"), "listings/model.jsonl");
        assert_eq!(
            listing_path("inputs/base_model"),
            "listings/inputs-base_model.jsonl"
        );
        assert_eq!(listing_path("../x"), "listings/..-x.jsonl");
    }
}
