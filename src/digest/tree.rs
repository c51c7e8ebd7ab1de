//! OpenSSF model-signing (OMS) digests of a model or data directory, or of a single file.
//!
//! This reproduces the hashing of sigstore/model-transparency's `model-signing` package, version
//! 1.1.1 (docs/references.md P§1.4, checked against the installed source
//! `model_signing/hashing.py`, `_serialization/{file,file_shard,serialization}.py`, `manifest.py`
//! and `_signing/signing.py`):
//!
//! - Every entry under the root is checked before anything is ignored: a symbolic link is an error
//!   unless `allow_symlinks` (then a link to a file is hashed as that file's content under the
//!   link's name, and a link to a directory is neither hashed nor entered, because Python 3.11's
//!   `Path.glob("**/*")` does not descend into linked directories); anything that is neither a
//!   file nor a directory (fifo, socket, device, dangling link) is always an error, even inside
//!   `.git/`.
//! - Regular files whose relative path starts with one of `.git`, `.gitattributes`, `.github`,
//!   `.gitignore` (at the top of the tree only, like `Path.is_relative_to`) or with a caller's
//!   ignore path are left out. Other hidden files are hashed.
//! - `files` mode: one resource per file, named by its POSIX path relative to the root, digest
//!   SHA-256 of the whole file (`hash_type` `sha256`; empty files included).
//! - `shards` mode: each non-empty file is cut at `shard_size, 2*shard_size, …, size`; one resource
//!   per shard named `path:start:end` (start inclusive, end exclusive) with algorithm
//!   `sha256-sharded-<shard_size>`. Empty files produce no shard and vanish from the manifest.
//! - Resources are sorted the way Python sorts `PurePosixPath` keys: component by component (so
//!   `x/y` sorts before `x-y`), then by shard start and end.
//! - The root digest is SHA-256 over the concatenated raw 32-byte digests in that order; an empty
//!   tree's root is SHA-256 of nothing.
//! - A single file as the root is one resource named `.` (`.:start:end` for shards).
//!
//! Hashing runs on rayon's global pool: every file (files mode) or shard (shards mode) is one
//! job, biggest first so the cores finish together. Call it from a blocking context (e.g.
//! `tokio::task::spawn_blocking`), never directly on an async executor thread.

use std::cmp::Reverse;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::file::{file_sha256_counted, range_sha256_counted};
use super::{DigestError, HashCounter, Sha256Digest};

/// The in-toto predicate type of an OMS v1.0 signature whose subject is the root digest.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// model-signing's default shard size: 1 GB (10^9 bytes, not 2^30).
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;

/// The most shards one manifest may hold: each costs about 100 bytes of memory while hashing and
/// a line in every manifest that records it.
pub const MAX_SHARDS: u64 = 10_000_000;

/// The paths model-signing ignores by default (`ignore_git_paths=True`), relative to the root.
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// The hashing granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestMode {
    /// One SHA-256 per file (OMS `method: "files"`).
    #[default]
    Files,
    /// One SHA-256 per `shard_size`-byte shard (OMS `method: "shards"`).
    Shards { shard_size: u64 },
}

/// How to hash a tree. The default is model-signing's `Config()`: files mode, symbolic links
/// refused, only the git paths ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestOptions {
    pub mode: DigestMode,
    /// Follow symbolic links (to files) instead of refusing them.
    pub allow_symlinks: bool,
    /// More paths to leave out, relative to the root (a directory leaves out all it holds). The
    /// git paths ([`GIT_PATHS`]) are always left out, as model-signing does by default.
    pub ignore_paths: Vec<PathBuf>,
}

/// One hashed item: a file (files mode) or a shard of a file (shards mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The POSIX path relative to the root (`.` for a single-file root), plus `:start:end` for a
    /// shard.
    pub name: String,
    pub digest: Sha256Digest,
}

/// The OMS `serialization` object recorded in a signature's predicate, so a verifier can hash the
/// same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Serialization {
    /// `files` or `shards`.
    pub method: String,
    /// The content hash: always `sha256` (shards mode records the shard size separately).
    pub hash_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_size: Option<u64>,
    pub allow_symlinks: bool,
    /// The ignored paths relative to the root, sorted (model-signing records them unordered).
    pub ignore_paths: Vec<String>,
}

/// The digest of a tree: its root digest and the full manifest behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeDigest {
    /// SHA-256 over the raw resource digests in order: the OMS statement's subject digest.
    pub root: Sha256Digest,
    /// Every resource's algorithm: `sha256` (files) or `sha256-sharded-<N>` (shards).
    pub hash_type: String,
    pub serialization: Serialization,
    /// The resources in canonical order.
    pub resources: Vec<Resource>,
}

impl TreeDigest {
    /// The OMS v1.0 predicate (`{"serialization": …, "resources": [{name, algorithm, digest}]}`,
    /// digests as bare hex), as model-signing writes it into a signature.
    pub fn oms_predicate(&self) -> serde_json::Value {
        let resources: Vec<serde_json::Value> = self
            .resources
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "algorithm": self.hash_type,
                    "digest": r.digest.hex(),
                })
            })
            .collect();
        serde_json::json!({ "serialization": self.serialization, "resources": resources })
    }

    /// Recomputes the root from the resources: a manifest read back from disk is consistent when
    /// this equals its `root` (model-signing's "Manifest is inconsistent" check).
    pub fn recompute_root(&self) -> Sha256Digest {
        root_of(self.resources.iter().map(|r| &r.digest))
    }
}

/// The OMS root digest: SHA-256 over the concatenated raw digests, in the order given.
pub fn root_of<'a>(digests: impl IntoIterator<Item = &'a Sha256Digest>) -> Sha256Digest {
    let mut hasher = Sha256::new();
    for d in digests {
        hasher.update(d.0);
    }
    Sha256Digest(hasher.finalize().into())
}

/// Hashes a directory. Fails with [`DigestError::NotADirectory`] for anything else; use
/// [`digest_path`] to accept a single file too.
pub fn digest_tree(root: &Path, opts: &DigestOptions) -> Result<TreeDigest, DigestError> {
    digest_inner(root, opts, true, None)
}

/// [`digest_tree`], counting files and bytes into `counter` as they are listed and hashed.
pub fn digest_tree_counted(
    root: &Path,
    opts: &DigestOptions,
    counter: &HashCounter,
) -> Result<TreeDigest, DigestError> {
    digest_inner(root, opts, true, Some(counter))
}

/// Hashes a directory or a single file (one resource named `.`, as model-signing names it).
pub fn digest_path(path: &Path, opts: &DigestOptions) -> Result<TreeDigest, DigestError> {
    digest_inner(path, opts, false, None)
}

/// [`digest_path`], counting files and bytes into `counter`.
pub fn digest_path_counted(
    path: &Path,
    opts: &DigestOptions,
    counter: &HashCounter,
) -> Result<TreeDigest, DigestError> {
    digest_inner(path, opts, false, Some(counter))
}

/// A regular file to hash (or a link to one, when links are allowed).
struct Entry {
    /// The path's components relative to the root; empty for a single-file root.
    comps: Vec<String>,
    path: PathBuf,
    size: u64,
}

impl Entry {
    fn name(&self) -> String {
        if self.comps.is_empty() {
            ".".to_owned()
        } else {
            self.comps.join("/")
        }
    }
}

/// One unit of work: a whole file (`end == None`) or the shard `[start, end)`.
struct Task {
    entry: usize,
    start: u64,
    end: Option<u64>,
}

fn digest_inner(
    path: &Path,
    opts: &DigestOptions,
    dir_only: bool,
    counter: Option<&HashCounter>,
) -> Result<TreeDigest, DigestError> {
    if let DigestMode::Shards { shard_size: 0 } = opts.mode {
        return Err(DigestError::InvalidShardSize { shard_size: 0 });
    }
    let ignores = ignore_prefixes(&opts.ignore_paths)?;

    let mut entries = Vec::new();
    match classify(path, opts.allow_symlinks)? {
        Kind::File(_) if dir_only => {
            return Err(DigestError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        Kind::File(size) => entries.push(Entry {
            comps: Vec::new(),
            path: path.to_path_buf(),
            size,
        }),
        // A root that is a directory, or a link to one when links are allowed (model-signing
        // lists the link's target because it globs below the path it was given).
        Kind::Dir | Kind::LinkedDir => {
            walk(path, &mut Vec::new(), opts.allow_symlinks, &mut entries)?
        }
    }
    entries.retain(|e| !ignores.iter().any(|p| e.comps.starts_with(p)));
    // Python compares `PurePosixPath`s by their parts; `String` order is code-point order, as
    // Python's `str` order is.
    entries.sort_by(|a, b| a.comps.cmp(&b.comps));

    let mut tasks = Vec::new();
    let hash_type = match opts.mode {
        DigestMode::Files => {
            tasks.extend((0..entries.len()).map(|entry| Task {
                entry,
                start: 0,
                end: None,
            }));
            "sha256".to_owned()
        }
        DigestMode::Shards { shard_size } => {
            let count: u64 = entries.iter().map(|e| e.size.div_ceil(shard_size)).sum();
            if count > MAX_SHARDS {
                return Err(DigestError::TooManyShards {
                    path: path.to_path_buf(),
                    shard_size,
                    count,
                    limit: MAX_SHARDS,
                });
            }
            for (i, e) in entries.iter().enumerate() {
                // model-signing's `_endpoints(step, end)`: step, 2*step, … below `end`, then `end`.
                let mut start = 0;
                while start < e.size {
                    let end = start.saturating_add(shard_size).min(e.size);
                    tasks.push(Task {
                        entry: i,
                        start,
                        end: Some(end),
                    });
                    start = end;
                }
            }
            format!("sha256-sharded-{shard_size}")
        }
    };

    if let Some(c) = counter {
        c.add_total(entries.len() as u64, entries.iter().map(|e| e.size).sum());
        // An empty file has no shard to finish it.
        if matches!(opts.mode, DigestMode::Shards { .. }) {
            entries
                .iter()
                .filter(|e| e.size == 0)
                .for_each(|_| c.file_done());
        }
    }
    let digests = hash_tasks(&entries, &tasks, counter)?;
    let resources: Vec<Resource> = tasks
        .iter()
        .zip(digests)
        .map(|(t, digest)| {
            let name = match t.end {
                None => entries[t.entry].name(),
                Some(end) => format!("{}:{}:{}", entries[t.entry].name(), t.start, end),
            };
            Resource { name, digest }
        })
        .collect();

    let mut ignore_paths: Vec<String> = ignores
        .iter()
        .map(|p| {
            if p.is_empty() {
                ".".to_owned()
            } else {
                p.join("/")
            }
        })
        .collect();
    ignore_paths.sort();
    ignore_paths.dedup();
    let serialization = Serialization {
        method: match opts.mode {
            DigestMode::Files => "files",
            DigestMode::Shards { .. } => "shards",
        }
        .to_owned(),
        hash_type: "sha256".to_owned(),
        shard_size: match opts.mode {
            DigestMode::Files => None,
            DigestMode::Shards { shard_size } => Some(shard_size),
        },
        allow_symlinks: opts.allow_symlinks,
        ignore_paths,
    };
    Ok(TreeDigest {
        root: root_of(resources.iter().map(|r| &r.digest)),
        hash_type,
        serialization,
        resources,
    })
}

/// Hashes every task on rayon's pool, biggest first, and returns the digests in task order.
fn hash_tasks(
    entries: &[Entry],
    tasks: &[Task],
    counter: Option<&HashCounter>,
) -> Result<Vec<Sha256Digest>, DigestError> {
    let len = |t: &Task| t.end.unwrap_or(entries[t.entry].size) - t.start;
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| Reverse(len(&tasks[i])));
    let done: Vec<(usize, Sha256Digest)> = order
        .par_iter()
        // One task per rayon job, so a big file never waits behind a batch of others.
        .with_max_len(1)
        .map(|&i| {
            let t = &tasks[i];
            let path = &entries[t.entry].path;
            let d = match t.end {
                None => file_sha256_counted(path, counter)?,
                Some(end) => range_sha256_counted(path, t.start, end, counter)?,
            };
            // A file is done with its whole-file task or its last shard.
            if let Some(c) = counter
                && t.end.is_none_or(|end| end == entries[t.entry].size)
            {
                c.file_done();
            }
            Ok((i, d))
        })
        .collect::<Result<_, DigestError>>()?;
    let mut out = vec![Sha256Digest([0; 32]); tasks.len()];
    for (i, d) in done {
        out[i] = d;
    }
    Ok(out)
}

/// What a path is, after applying the symbolic link policy.
enum Kind {
    File(u64),
    Dir,
    /// A symbolic link to a directory (links allowed): model-signing neither hashes nor enters it.
    LinkedDir,
}

/// Classifies a path the way model-signing's `check_file_or_directory` does: links are refused
/// unless allowed (then followed); anything but a file or directory is refused.
fn classify(path: &Path, allow_symlinks: bool) -> Result<Kind, DigestError> {
    let io_err = |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let lmeta = fs::symlink_metadata(path).map_err(io_err)?;
    if lmeta.file_type().is_symlink() {
        if !allow_symlinks {
            return Err(DigestError::Symlink {
                path: path.to_path_buf(),
            });
        }
        let meta = fs::metadata(path).map_err(|_| DigestError::SpecialFile {
            path: path.to_path_buf(),
            kind: "symbolic link whose target cannot be reached",
        })?;
        return match kind_of(&meta.file_type()) {
            Ok(true) => Ok(Kind::File(meta.len())),
            Ok(false) => Ok(Kind::LinkedDir),
            Err(kind) => Err(DigestError::SpecialFile {
                path: path.to_path_buf(),
                kind,
            }),
        };
    }
    match kind_of(&lmeta.file_type()) {
        Ok(true) => Ok(Kind::File(lmeta.len())),
        Ok(false) => Ok(Kind::Dir),
        Err(kind) => Err(DigestError::SpecialFile {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// `Ok(true)` for a regular file, `Ok(false)` for a directory, else the special file's kind.
fn kind_of(ft: &fs::FileType) -> Result<bool, &'static str> {
    if ft.is_file() {
        Ok(true)
    } else if ft.is_dir() {
        Ok(false)
    } else if ft.is_fifo() {
        Err("fifo")
    } else if ft.is_socket() {
        Err("socket")
    } else if ft.is_block_device() {
        Err("block device")
    } else if ft.is_char_device() {
        Err("character device")
    } else {
        Err("special file")
    }
}

/// Lists every file below `dir`, checking every entry (ignored ones too, as model-signing does).
fn walk(
    dir: &Path,
    comps: &mut Vec<String>,
    allow_symlinks: bool,
    out: &mut Vec<Entry>,
) -> Result<(), DigestError> {
    let io_err = |source| DigestError::Io {
        path: dir.to_path_buf(),
        source,
    };
    // Unlike Python's glob, an unreadable directory is an error, never silently skipped.
    for dirent in fs::read_dir(dir).map_err(io_err)? {
        let dirent = dirent.map_err(io_err)?;
        let path = dirent.path();
        let name = dirent
            .file_name()
            .into_string()
            .map_err(|_| DigestError::NonUtf8Name { path: path.clone() })?;
        comps.push(name);
        match classify(&path, allow_symlinks)? {
            Kind::File(size) => out.push(Entry {
                comps: comps.clone(),
                path,
                size,
            }),
            Kind::Dir => walk(&path, comps, allow_symlinks, out)?,
            Kind::LinkedDir => {}
        }
        comps.pop();
    }
    Ok(())
}

/// The ignore prefixes: the git paths plus the caller's, as lists of components.
fn ignore_prefixes(extra: &[PathBuf]) -> Result<Vec<Vec<String>>, DigestError> {
    let mut out: Vec<Vec<String>> = GIT_PATHS.iter().map(|p| vec![(*p).to_owned()]).collect();
    for p in extra {
        let invalid = || DigestError::InvalidIgnorePath { path: p.clone() };
        let mut comps = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(s) => comps.push(s.to_str().ok_or_else(invalid)?.to_owned()),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(invalid());
                }
            }
        }
        out.push(comps);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, len: usize) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, vec![7u8; len]).unwrap();
    }

    #[test]
    fn sorts_by_components_and_shards_at_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x-y", 1);
        write(dir.path(), "x/y", 10);
        write(dir.path(), "x.z", 0);
        let files = digest_tree(dir.path(), &DigestOptions::default()).unwrap();
        let names: Vec<_> = files.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["x/y", "x-y", "x.z"]);
        assert_eq!(files.root, files.recompute_root());

        let opts = DigestOptions {
            mode: DigestMode::Shards { shard_size: 4 },
            ..Default::default()
        };
        let shards = digest_tree(dir.path(), &opts).unwrap();
        let names: Vec<_> = shards.resources.iter().map(|r| r.name.as_str()).collect();
        // The empty file has no shard.
        assert_eq!(names, ["x/y:0:4", "x/y:4:8", "x/y:8:10", "x-y:0:1"]);
        assert_eq!(shards.hash_type, "sha256-sharded-4");
        assert_ne!(shards.root, files.root);
    }

    #[test]
    fn rejects_bad_options() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DigestOptions {
            mode: DigestMode::Shards { shard_size: 0 },
            ..Default::default()
        };
        assert!(matches!(
            digest_tree(dir.path(), &opts),
            Err(DigestError::InvalidShardSize { .. })
        ));
        // A sparse file: no disk space, but 2 * MAX_SHARDS one-byte shards.
        let big = fs::File::create(dir.path().join("sparse")).unwrap();
        big.set_len(2 * MAX_SHARDS).unwrap();
        let opts = DigestOptions {
            mode: DigestMode::Shards { shard_size: 1 },
            ..Default::default()
        };
        let err = digest_tree(dir.path(), &opts).unwrap_err();
        assert!(matches!(err, DigestError::TooManyShards { .. }), "{err}");
        for bad in ["../x", "/etc"] {
            let opts = DigestOptions {
                ignore_paths: vec![PathBuf::from(bad)],
                ..Default::default()
            };
            let err = digest_tree(dir.path(), &opts).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn empty_tree_root_is_hash_of_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = digest_tree(dir.path(), &DigestOptions::default()).unwrap();
        assert!(d.resources.is_empty());
        assert_eq!(d.root, crate::digest::bytes_sha256(b""));
    }
}
