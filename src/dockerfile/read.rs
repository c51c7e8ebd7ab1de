//! The one place a Dockerfile is read from disk: a regular file, at most
//! [`MAX_DOCKERFILE_BYTES`], UTF-8 text without NUL bytes. Anything else is a [`ReadError`] that
//! names the path, which `check` reports as a `dockerfile_syntax` finding and the build as an
//! error, never a crash or a lossy guess.

use std::path::{Path, PathBuf};

use crate::input_file::{Cap, InputFileError};

/// The largest Dockerfile read: 4 MiB. Real ones are kilobytes.
pub const MAX_DOCKERFILE_BYTES: u64 = 4 * 1024 * 1024;

/// The Dockerfile's cap, as [`crate::input_file`] enforces it.
pub const DOCKERFILE_CAP: Cap = Cap::new(
    "Dockerfile",
    MAX_DOCKERFILE_BYTES,
    "a Dockerfile is a few kilobytes of text; check `train.dockerfile` in reprobox.toml",
);

/// Why a Dockerfile could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a regular file (a directory, a FIFO, a device, a symlink loop: never opened), missing,
    /// unreadable, or past [`DOCKERFILE_CAP`]; the message names the path and what it is.
    #[error(transparent)]
    Input(#[from] InputFileError),
    #[error("the Dockerfile `{}` is binary: {what} at byte {offset} (hint: the Dockerfile must be UTF-8 text)", path.display())]
    Binary {
        path: PathBuf,
        what: &'static str,
        offset: usize,
    },
}

/// Reads the Dockerfile at `path` as text.
pub fn read(path: &Path) -> Result<String, ReadError> {
    let buf = crate::input_file::read(path, DOCKERFILE_CAP)?;
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
        assert!(err.to_string().contains("is a directory"), "{err}");
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
            Err(ReadError::Input(e)) if e.is_not_found()
        ));
        let fifo = d.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = read(&fifo).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
    }
}
