//! The one place a Dockerfile is read from disk: a regular file, at most
//! [`MAX_DOCKERFILE_BYTES`], UTF-8 text without NUL bytes. Anything else is a [`ReadError`] that
//! names the path, which `check` reports as a `dockerfile_syntax` finding and the build as an
//! error, never a crash or a lossy guess.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest Dockerfile read: 4 MiB. Real ones are kilobytes.
pub const MAX_DOCKERFILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a Dockerfile could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("`{}` is a directory, not a Dockerfile (hint: point train.dockerfile at the file)", path.display())]
    Directory { path: PathBuf },
    #[error("`{}` is not a regular file (hint: point train.dockerfile at a plain file)", path.display())]
    NotAFile { path: PathBuf },
    #[error("cannot read the Dockerfile `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Dockerfile `{}` is larger than {limit} bytes (hint: a Dockerfile is a short text file)", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("the Dockerfile `{}` is binary: {what} at byte {offset} (hint: the Dockerfile must be UTF-8 text)", path.display())]
    Binary {
        path: PathBuf,
        what: &'static str,
        offset: usize,
    },
}

/// Reads the Dockerfile at `path` as text.
pub fn read(path: &Path) -> Result<String, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(ReadError::Directory {
            path: path.to_owned(),
        });
    }
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_DOCKERFILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_DOCKERFILE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            limit: MAX_DOCKERFILE_BYTES,
        });
    }
    if let Some(offset) = buf.iter().position(|&b| b == 0) {
        return Err(ReadError::Binary {
            path: path.to_owned(),
            what: "a NUL byte",
            offset,
        });
    }
    String::from_utf8(buf).map_err(|e| ReadError::Binary {
        path: path.to_owned(),
        what: "invalid UTF-8",
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_binaries_are_named_errors() {
        let d = tempfile::tempdir().unwrap();
        let err = read(d.path()).unwrap_err();
        assert!(matches!(err, ReadError::Directory { .. }), "{err}");
        std::fs::write(d.path().join("nul"), b"FROM a\0\n").unwrap();
        let err = read(&d.path().join("nul")).unwrap_err().to_string();
        assert!(err.contains("NUL byte at byte 6"), "{err}");
        std::fs::write(d.path().join("latin1"), b"FROM caf\xe9\n").unwrap();
        let err = read(&d.path().join("latin1")).unwrap_err().to_string();
        assert!(err.contains("invalid UTF-8 at byte 8"), "{err}");
        std::fs::write(d.path().join("ok"), "FROM a\n").unwrap();
        assert_eq!(read(&d.path().join("ok")).unwrap(), "FROM a\n");
        assert!(matches!(
            read(&d.path().join("missing")),
            Err(ReadError::Io { .. })
        ));
    }
}
