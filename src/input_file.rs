//! The one way reprobox opens a file that a user or a submission supplied.
//!
//! A path handed to reprobox can name anything: a FIFO that blocks the first `read` forever, a
//! symlink to `/dev/zero` that a `read_to_end` follows until the kernel kills the process, a
//! directory, a symlink loop, or a regular file of many gigabytes. Every reader of untrusted input
//! goes through this module, which:
//!
//! 1. `stat`s the path (following symlinks) and refuses anything that is not a regular file,
//!    naming what it is (a directory, a FIFO, a socket, a character or block device) or, for a
//!    symlink loop, saying so (`ELOOP`);
//! 2. opens it with `O_NONBLOCK`, so that a regular file swapped for a FIFO between the check and
//!    the open cannot block the open, and `O_NOCTTY`, so that a terminal never becomes ours;
//! 3. `fstat`s the opened handle and refuses again unless it is a regular file: the type that
//!    counts is the type of what was opened, not of what was checked, so no swap can race;
//! 4. reads at most the format's [`Cap`] (each format declares its own as a named constant) and
//!    refuses a larger file, by its size before reading and by what it yields while reading, so
//!    memory stays bounded even for a file that grows.
//!
//! `O_NONBLOCK` has no effect on reads of a regular file, which is all that is ever read here.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::units::format_size;

/// The most bytes reprobox reads from one file of a format, and what to say when a file is larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// The format as errors name it, e.g. "manifest" or "leaderboard".
    pub format: &'static str,
    /// Larger files are refused.
    pub max_bytes: u64,
    /// What to do about a file past the cap, for the error's hint.
    pub hint: &'static str,
}

impl Cap {
    /// A cap of `max_bytes` for `format`, with the hint shown when a file is larger.
    pub const fn new(format: &'static str, max_bytes: u64, hint: &'static str) -> Cap {
        Cap {
            format,
            max_bytes,
            hint,
        }
    }
}

/// What a path names when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    /// Anything else `stat` reports that is not a regular file.
    Other,
}

impl FileKind {
    /// The kind of `file_type`, or `None` for a regular file. Symlinks are followed before this
    /// is asked, so a symlink never reaches it except through `symlink_metadata`.
    pub fn of(file_type: std::fs::FileType) -> Option<FileKind> {
        Some(if file_type.is_file() {
            return None;
        } else if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_fifo() {
            FileKind::Fifo
        } else if file_type.is_socket() {
            FileKind::Socket
        } else if file_type.is_char_device() {
            FileKind::CharDevice
        } else if file_type.is_block_device() {
            FileKind::BlockDevice
        } else {
            FileKind::Other
        })
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Other => "not a regular file",
        })
    }
}

/// Why a supplied file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputFileError {
    #[error("the {format} `{}` does not exist (hint: check the path)", path.display())]
    NotFound { path: PathBuf, format: &'static str },

    #[error("the {format} `{}` is {kind}, not a regular file (hint: reprobox reads a {format} only from a regular file; name the file itself)", path.display())]
    NotRegular {
        path: PathBuf,
        format: &'static str,
        kind: FileKind,
    },

    #[error("the {format} `{}` is a symlink loop (ELOOP: too many levels of symbolic links) (hint: point the symlink at a regular file)", path.display())]
    SymlinkLoop { path: PathBuf, format: &'static str },

    #[error("the {format} `{}` is larger than {}, the cap on a {format} (hint: {hint})", path.display(), format_size(*max_bytes))]
    TooLarge {
        path: PathBuf,
        format: &'static str,
        max_bytes: u64,
        hint: &'static str,
    },

    #[error("the {format} `{}` is not UTF-8 text: line {line} has an invalid byte (hint: save it as UTF-8)", path.display())]
    NotUtf8 {
        path: PathBuf,
        format: &'static str,
        /// 1-based line of the first invalid byte.
        line: usize,
    },

    #[error("cannot read the {format} `{}`: {source} (hint: check that the file is readable)", path.display())]
    Read {
        path: PathBuf,
        format: &'static str,
        #[source]
        source: io::Error,
    },
}

impl InputFileError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            InputFileError::NotFound { path, .. }
            | InputFileError::NotRegular { path, .. }
            | InputFileError::SymlinkLoop { path, .. }
            | InputFileError::TooLarge { path, .. }
            | InputFileError::NotUtf8 { path, .. }
            | InputFileError::Read { path, .. } => path,
        }
    }

    /// The format the file was read as (a [`Cap`]'s `format`, or what [`open`] was told).
    pub fn format(&self) -> &'static str {
        match self {
            InputFileError::NotFound { format, .. }
            | InputFileError::NotRegular { format, .. }
            | InputFileError::SymlinkLoop { format, .. }
            | InputFileError::TooLarge { format, .. }
            | InputFileError::NotUtf8 { format, .. }
            | InputFileError::Read { format, .. } => format,
        }
    }

    /// Whether the file is simply missing, which some readers treat as "absent", not an error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, InputFileError::NotFound { .. })
    }
}

/// Opens `path` for reading after checking, before and after the open, that it is a regular
/// file. `format` names the file in errors. No size cap: for streaming readers (digests,
/// safetensors headers) that bound what they read themselves.
pub fn open(path: &Path, format: &'static str) -> Result<File, InputFileError> {
    open_checked(path, format).map(|(file, _)| file)
}

/// Opens `path` like [`open`] and also refuses it, before reading a byte, when its size is past
/// `cap`. Returns the file and its size.
pub fn open_capped(path: &Path, cap: Cap) -> Result<(File, u64), InputFileError> {
    let (file, len) = open_checked(path, cap.format)?;
    if len > cap.max_bytes {
        return Err(too_large(path, cap));
    }
    Ok((file, len))
}

/// Reads the whole of `path`, at most `cap.max_bytes` of it.
pub fn read(path: &Path, cap: Cap) -> Result<Vec<u8>, InputFileError> {
    let (file, len) = open_capped(path, cap)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // One byte past the cap tells "exactly at the cap" from "grew past it while being read".
    file.take(cap.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputFileError::Read {
            path: path.to_owned(),
            format: cap.format,
            source,
        })?;
    if bytes.len() as u64 > cap.max_bytes {
        return Err(too_large(path, cap));
    }
    Ok(bytes)
}

/// Reads the whole of `path` as UTF-8 text, at most `cap.max_bytes` of it.
pub fn read_to_string(path: &Path, cap: Cap) -> Result<String, InputFileError> {
    let bytes = read(path, cap)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        InputFileError::NotUtf8 {
            path: path.to_owned(),
            format: cap.format,
            line,
        }
    })
}

/// The last `max` bytes of a log (a file the run wrote, or an evaluator's output): nothing when
/// it cannot be opened as a regular file. Bounded however large the log grew.
pub fn tail_bytes(path: &Path, max: u64) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = open(path, "log") else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    buf
}

/// The last `n` lines of a log that are not blank, read from its last 64 KiB (lossy UTF-8).
pub fn last_lines(path: &Path, n: usize) -> Vec<String> {
    let buf = tail_bytes(path, 64 << 10);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

/// Checks that `path` is a regular file (following symlinks) without opening it: for a reader
/// that hands the path on (to Docker, to another process) rather than reading it itself.
pub fn check_regular(path: &Path, format: &'static str) -> Result<u64, InputFileError> {
    let meta = std::fs::metadata(path).map_err(|e| stat_error(path, format, e))?;
    if let Some(kind) = FileKind::of(meta.file_type()) {
        return Err(InputFileError::NotRegular {
            path: path.to_owned(),
            format,
            kind,
        });
    }
    Ok(meta.len())
}

/// Opens `path` with `options` (read, append, …) under the same checks as [`open`]: for a file
/// that reprobox both reads and writes, such as a run's journal. Returns the file and its size.
pub fn open_with(
    path: &Path,
    format: &'static str,
    options: &OpenOptions,
) -> Result<(File, u64), InputFileError> {
    // The first check gives the clearest error for the common case and never opens a device.
    check_regular(path, format)?;
    let mut options = options.clone();
    let file = options
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| stat_error(path, format, e))?;
    // The second check is the one that holds: it asks the opened handle.
    let meta = file.metadata().map_err(|source| InputFileError::Read {
        path: path.to_owned(),
        format,
        source,
    })?;
    if let Some(kind) = FileKind::of(meta.file_type()) {
        return Err(InputFileError::NotRegular {
            path: path.to_owned(),
            format,
            kind,
        });
    }
    Ok((file, meta.len()))
}

fn open_checked(path: &Path, format: &'static str) -> Result<(File, u64), InputFileError> {
    open_with(path, format, OpenOptions::new().read(true))
}

fn stat_error(path: &Path, format: &'static str, e: io::Error) -> InputFileError {
    if e.kind() == io::ErrorKind::NotFound {
        InputFileError::NotFound {
            path: path.to_owned(),
            format,
        }
    } else if e.raw_os_error() == Some(libc::ELOOP) {
        InputFileError::SymlinkLoop {
            path: path.to_owned(),
            format,
        }
    } else {
        InputFileError::Read {
            path: path.to_owned(),
            format,
            source: e,
        }
    }
}

fn too_large(path: &Path, cap: Cap) -> InputFileError {
    InputFileError::TooLarge {
        path: path.to_owned(),
        format: cap.format,
        max_bytes: cap.max_bytes,
        hint: cap.hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Cap = Cap::new("test file", 16, "keep it short");

    fn fifo(at: &Path) {
        let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn a_regular_file_within_its_cap_is_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "exactly sixteen!").unwrap();
        assert_eq!(read_to_string(&p, CAP).unwrap(), "exactly sixteen!");
        // Through a symlink too: only what it resolves to counts.
        std::os::unix::fs::symlink(&p, d.path().join("l")).unwrap();
        assert_eq!(read(&d.path().join("l"), CAP).unwrap().len(), 16);
    }

    #[test]
    fn what_is_not_a_regular_file_is_named_and_never_read() {
        let d = tempfile::tempdir().unwrap();
        fifo(&d.path().join("pipe"));
        std::os::unix::fs::symlink("/dev/zero", d.path().join("zero")).unwrap();
        std::os::unix::fs::symlink("loop-b", d.path().join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", d.path().join("loop-b")).unwrap();
        let sock = d.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for (name, needle) in [
            ("pipe", "is a FIFO (named pipe), not a regular file"),
            ("zero", "is a character device, not a regular file"),
            (".", "is a directory, not a regular file"),
            ("loop-a", "is a symlink loop (ELOOP"),
            ("sock", "is a socket, not a regular file"),
            ("missing", "does not exist"),
        ] {
            let p = d.path().join(name);
            let e = read(&p, CAP).unwrap_err().to_string();
            assert!(e.contains(needle), "{name}: {e}");
            assert!(e.contains(&p.display().to_string()), "{name}: {e}");
            assert!(e.contains("the test file"), "{name}: {e}");
            assert!(e.contains("(hint: "), "{name}: {e}");
            assert!(open(&p, "test file").is_err(), "{name}");
        }
    }

    #[test]
    fn a_file_past_its_cap_is_refused_by_size_and_names_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big");
        std::fs::write(&p, [b'x'; 17]).unwrap();
        let e = read(&p, CAP).unwrap_err();
        assert!(matches!(e, InputFileError::TooLarge { max_bytes: 16, .. }));
        let e = e.to_string();
        assert!(e.contains("larger than 16B, the cap on a test file"), "{e}");
        assert!(e.contains("hint: keep it short"), "{e}");
        // The size check comes before any read: a file opened capped is refused unread.
        assert!(open_capped(&p, CAP).is_err());
        assert!(open(&p, "test file").is_ok());
    }

    #[test]
    fn text_that_is_not_utf8_names_its_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bin");
        std::fs::write(&p, b"ok\nok\n\xff\n").unwrap();
        let e = read_to_string(&p, CAP).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
    }
}
