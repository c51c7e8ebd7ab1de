//! The build context: the submission's context directory as a deterministic, bounded tar, and
//! the base images its Dockerfile names.
//!
//! Entries go in byte order of their paths with mtime 0, uid/gid 0 and normalized modes, so
//! the same tree always gives the same bytes. Junk (`.git/`, `__MACOSX`, `.DS_Store`, `*.pyc`,
//! `__pycache__`) is left out. A symlink is kept only when it is relative and stays inside the
//! context; anything else is an error naming the link. The archive is held in memory, capped at
//! a size the caller gives, so a huge context fails before the daemon sees it.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub use crate::dockerfile::BaseImage;

/// Where a Dockerfile that lies outside the context is placed inside the archive.
pub const EXTERNAL_DOCKERFILE: &str = ".reprobox.Dockerfile";

/// Errors assembling a build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A file to send is not a regular file (it was swapped after the walk), or the Dockerfile
    /// is past its cap.
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),
    /// Reading a file or directory failed.
    #[error("cannot read {path} for the build context: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A symlink points outside the context or is absolute.
    #[error(
        "symlink {link} points to `{target}`, outside the build context (hint: copy the file into the submission instead of linking to it)"
    )]
    SymlinkEscape {
        /// The link, relative to the context.
        link: PathBuf,
        /// Its target as written.
        target: PathBuf,
    },
    /// The context is larger than the cap.
    #[error(
        "the build context {dir} is larger than {limit} bytes (hint: leave data and checkpoints out of the context; inputs are staged read-only at /inputs)"
    )]
    TooLarge {
        /// The context directory.
        dir: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// Something that is neither file, directory nor symlink (a socket, a device).
    #[error(
        "{path} is not a regular file, directory or symlink (hint: remove it from the submission)"
    )]
    Special {
        /// The path.
        path: PathBuf,
    },
    /// Writing the archive failed (only on an internal error: it is in memory).
    #[error("cannot write the build context archive: {source}")]
    Archive {
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Dockerfile is a directory, binary, too large or unreadable.
    #[error(transparent)]
    Unreadable(#[from] crate::dockerfile::ReadError),
    /// The Dockerfile has no FROM line, or one that cannot be resolved.
    #[error("{path}:{line}: {problem} (hint: {hint})")]
    Dockerfile {
        /// The Dockerfile.
        path: PathBuf,
        /// The 1-based line (0 when the whole file is meant).
        line: usize,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: String,
    },
}

/// A built context archive.
#[derive(Debug, Clone)]
pub struct ContextArchive {
    /// The uncompressed tar.
    pub tar: bytes::Bytes,
    /// The Dockerfile's path inside the archive.
    pub dockerfile: String,
    /// Regular files included.
    pub files: usize,
    /// Paths left out as junk, relative to the context (first 100, for the build log).
    pub skipped: Vec<PathBuf>,
}

/// Whether a name is junk that never belongs in a build context.
pub fn is_junk(name: &str, is_dir: bool) -> bool {
    if is_dir {
        matches!(
            name,
            ".git" | "__MACOSX" | "__pycache__" | ".hg" | ".svn" | ".ipynb_checkpoints"
        )
    } else {
        name == ".DS_Store"
            || name.ends_with(".pyc")
            || name.ends_with(".pyo")
            || name.starts_with("._")
    }
}

/// A tar under a byte cap, written into memory.
struct Capped {
    buf: Vec<u8>,
    limit: u64,
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.limit {
            return Err(std::io::Error::other("context over the size cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Lexically normalizes `base/target` and tells whether it stays under the root (`base` is
/// relative to the root).
fn stays_inside(base: &Path, target: &Path) -> bool {
    let mut depth: Vec<Component> = base.components().collect();
    for c in target.components() {
        match c {
            Component::Normal(_) => depth.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Tars `dir` (the build context). `dockerfile` is the host path of the Dockerfile: inside the
/// context it is referred to by its relative path, outside it is added as
/// [`EXTERNAL_DOCKERFILE`].
pub fn build_context(
    dir: &Path,
    dockerfile: &Path,
    max_bytes: u64,
) -> Result<ContextArchive, ContextError> {
    let too_large = || ContextError::TooLarge {
        dir: dir.to_owned(),
        limit: max_bytes,
    };
    let mut builder = tar::Builder::new(Capped {
        buf: Vec::new(),
        limit: max_bytes,
    });
    let mut files = 0usize;
    let mut skipped = Vec::new();
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = Vec::new();
    // Collect the whole tree first, then write it sorted by path bytes.
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let rd = std::fs::read_dir(&abs).map_err(|source| ContextError::Read {
            path: abs.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| ContextError::Read {
                path: abs.clone(),
                source,
            })?;
            let ft = entry.file_type().map_err(|source| ContextError::Read {
                path: entry.path(),
                source,
            })?;
            let name = entry.file_name();
            let child = rel.join(&name);
            if is_junk(&name.to_string_lossy(), ft.is_dir()) {
                if skipped.len() < 100 {
                    skipped.push(child);
                }
                continue;
            }
            if ft.is_dir() {
                stack.push(child.clone());
            }
            entries.push((child, ft));
        }
    }
    entries.sort_by(|a, b| {
        a.0.as_os_str()
            .as_encoded_bytes()
            .cmp(b.0.as_os_str().as_encoded_bytes())
    });
    let map_write = |e: std::io::Error| {
        if e.to_string().contains("size cap") {
            too_large()
        } else {
            ContextError::Archive { source: e }
        }
    };
    for (rel, ft) in &entries {
        let abs = dir.join(rel);
        if ft.is_dir() {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            builder
                .append_data(&mut h, rel, std::io::empty())
                .map_err(map_write)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&abs).map_err(|source| ContextError::Read {
                path: abs.clone(),
                source,
            })?;
            let parent = rel.parent().unwrap_or(Path::new(""));
            if target.is_absolute() || !stays_inside(parent, &target) {
                return Err(ContextError::SymlinkEscape {
                    link: rel.clone(),
                    target,
                });
            }
            let mut h = header(tar::EntryType::Symlink, 0o777, 0);
            builder
                .append_link(&mut h, rel, &target)
                .map_err(map_write)?;
        } else if ft.is_file() {
            let meta = std::fs::metadata(&abs).map_err(|source| ContextError::Read {
                path: abs.clone(),
                source,
            })?;
            if meta.len() > max_bytes {
                return Err(too_large());
            }
            use std::os::unix::fs::PermissionsExt;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            let f = crate::input_file::open(&abs, "build context file")?;
            let mut h = header(tar::EntryType::Regular, mode, meta.len());
            // take() guards against a file that grows while we read it.
            builder
                .append_data(&mut h, rel, f.take(meta.len()))
                .map_err(map_write)?;
            files += 1;
        } else {
            return Err(ContextError::Special { path: abs });
        }
    }
    let dockerfile_in_archive = match dockerfile.strip_prefix(dir) {
        Ok(rel) if entries.iter().any(|(p, ft)| p == rel && ft.is_file()) => {
            rel.to_string_lossy().into_owned()
        }
        _ => {
            let data = crate::input_file::read(dockerfile, crate::dockerfile::DOCKERFILE_CAP)?;
            let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
            builder
                .append_data(&mut h, EXTERNAL_DOCKERFILE, data.as_slice())
                .map_err(map_write)?;
            EXTERNAL_DOCKERFILE.to_owned()
        }
    };
    let capped = builder.into_inner().map_err(map_write)?;
    Ok(ContextArchive {
        tar: bytes::Bytes::from(capped.buf),
        dockerfile: dockerfile_in_archive,
        files,
        skipped,
    })
}

/// The images a Dockerfile's `FROM` lines pull in, skipping `scratch` and earlier stage names,
/// with `ARG`s declared before the first FROM substituted by their defaults. Read and parsed by
/// the one Dockerfile parser ([`crate::dockerfile`]), so the build needs exactly the images
/// `check` judged and provenance records. A Dockerfile the builder would reject, or a FROM that
/// uses an ARG without a default, is an error naming its line.
pub fn base_images(dockerfile: &Path) -> Result<Vec<BaseImage>, ContextError> {
    let text = crate::dockerfile::read(dockerfile)?;
    resolve_base_images(&text, dockerfile)
}

fn resolve_base_images(text: &str, path: &Path) -> Result<Vec<BaseImage>, ContextError> {
    let df = crate::dockerfile::parse(text);
    if let Some(e) = df.errors.first() {
        return Err(ContextError::Dockerfile {
            path: path.to_owned(),
            line: e.line as usize,
            problem: e.message.clone(),
            hint: e.hint.clone(),
        });
    }
    let images = crate::dockerfile::base_images(&df);
    if let Some(b) = images.iter().find(|b| b.unresolved.is_some()) {
        return Err(ContextError::Dockerfile {
            path: path.to_owned(),
            line: b.line as usize,
            problem: format!(
                "cannot resolve `{}`: ARG {} has no default",
                b.written,
                b.unresolved.as_deref().unwrap_or("?")
            ),
            hint: "give the ARG a default before the first FROM, or write the image name"
                .to_owned(),
        });
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar_bytes: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn deterministic_without_junk() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::create_dir_all(root.join("src/__pycache__")).unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM reprobox/shell:1\n").unwrap();
        std::fs::write(root.join("src/b.py"), "print(1)").unwrap();
        std::fs::write(root.join("src/a.py"), "print(2)").unwrap();
        std::fs::write(root.join("src/a.pyc"), "junk").unwrap();
        std::fs::write(root.join(".DS_Store"), "junk").unwrap();
        std::fs::write(root.join("src/__pycache__/a.cpython-311.pyc"), "junk").unwrap();
        std::os::unix::fs::symlink("a.py", root.join("src/link.py")).unwrap();
        let a = build_context(root, &root.join("Dockerfile"), 1 << 20).unwrap();
        assert_eq!(
            entries(&a.tar),
            ["Dockerfile", "src", "src/a.py", "src/b.py", "src/link.py"]
        );
        assert_eq!(a.dockerfile, "Dockerfile");
        assert_eq!(a.files, 3);
        assert!(a.skipped.iter().any(|p| p == Path::new(".git")));
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(root.join("src/b.py"), "print(1)").unwrap();
        let b = build_context(root, &root.join("Dockerfile"), 1 << 20).unwrap();
        assert_eq!(a.tar, b.tar, "same tree, same bytes");
    }

    #[test]
    fn escaping_symlinks_are_refused_by_name() {
        for target in [
            "../../etc/passwd",
            "/etc/passwd",
            "./../..",
            "../sub/../../x",
        ] {
            let d = tempfile::tempdir().unwrap();
            std::fs::create_dir(d.path().join("sub")).unwrap();
            std::os::unix::fs::symlink(target, d.path().join("sub/evil")).unwrap();
            let err = build_context(d.path(), &d.path().join("Dockerfile"), 1 << 20).unwrap_err();
            assert!(
                matches!(&err, ContextError::SymlinkEscape { link, .. } if link == Path::new("sub/evil")),
                "{target}: {err}"
            );
            assert!(err.to_string().contains("sub/evil"));
        }
    }

    #[test]
    fn size_cap_and_external_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("ctx")).unwrap();
        std::fs::write(d.path().join("ctx/big"), vec![0u8; 64 << 10]).unwrap();
        std::fs::write(d.path().join("Dockerfile.train"), "FROM scratch\n").unwrap();
        let err = build_context(
            &d.path().join("ctx"),
            &d.path().join("Dockerfile.train"),
            16 << 10,
        )
        .unwrap_err();
        assert!(matches!(err, ContextError::TooLarge { .. }), "{err}");
        let a = build_context(
            &d.path().join("ctx"),
            &d.path().join("Dockerfile.train"),
            1 << 20,
        )
        .unwrap();
        assert_eq!(a.dockerfile, EXTERNAL_DOCKERFILE);
        assert!(entries(&a.tar).contains(&EXTERNAL_DOCKERFILE.to_owned()));
    }

    #[test]
    fn from_lines() {
        let text = "# syntax\nARG BASE=reprobox/python:1\nARG TAG\nFROM --platform=linux/amd64 ${BASE} AS build\nRUN x \\\n  y\nFROM build\nFROM scratch\nfrom reprobox/shell:1 as final\nCOPY --from=build /a /a\n";
        let got: Vec<(String, u32)> = resolve_base_images(text, Path::new("Dockerfile"))
            .unwrap()
            .into_iter()
            .map(|b| (b.reference, b.line))
            .collect();
        assert_eq!(
            got,
            [
                ("reprobox/python:1".to_owned(), 4),
                ("reprobox/shell:1".to_owned(), 9)
            ]
        );
        let err = resolve_base_images("ARG TAG\nFROM img:$TAG\n", Path::new("Dockerfile"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Dockerfile:2: cannot resolve"), "{err}");
        assert!(
            resolve_base_images("RUN true\n", Path::new("D"))
                .unwrap_err()
                .to_string()
                .contains("before the first FROM")
        );
        assert!(
            resolve_base_images("", Path::new("D"))
                .unwrap_err()
                .to_string()
                .contains("no instructions")
        );
    }

    #[test]
    fn a_directory_or_binary_dockerfile_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let err = base_images(d.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        std::fs::write(d.path().join("D"), b"FROM a\0").unwrap();
        let err = base_images(&d.path().join("D")).unwrap_err().to_string();
        assert!(err.contains("binary"), "{err}");
    }
}
