//! Why a file or a directory tree could not be hashed.

use std::path::PathBuf;

/// Every way hashing a file or a tree can fail. Each variant names the path it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The path could not be opened, listed, inspected or read.
    #[error("cannot read `{path}`: {source} (hint: check that the path exists and is readable)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file to hash turned out not to be a regular file when it was opened (it was swapped
    /// after the walk listed it).
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),
    /// A symbolic link was found and the options do not allow following symbolic links.
    #[error(
        "`{path}` is a symbolic link (hint: replace it with the file it points to, or pass --allow-symlinks / set `allow_symlinks` to follow it as model-signing does)"
    )]
    Symlink { path: PathBuf },
    /// Something that is neither a regular file nor a directory: a fifo, a socket, a device, or a
    /// symbolic link whose target does not exist. These are always refused, as model-signing does.
    #[error(
        "`{path}` is a {kind}, not a regular file or directory (hint: remove it from the tree before hashing)"
    )]
    SpecialFile { path: PathBuf, kind: &'static str },
    /// A file name is not valid UTF-8, so it has no resource name in an OMS manifest.
    #[error(
        "`{path}` has a name that is not valid UTF-8 (hint: rename it; OMS resource names are UTF-8 strings)"
    )]
    NonUtf8Name { path: PathBuf },
    /// `digest_tree` was given something that is not a directory.
    #[error("`{path}` is not a directory (hint: use `digest_path` to hash a single file)")]
    NotADirectory { path: PathBuf },
    /// A shard size of zero bytes.
    #[error(
        "the shard size must be at least 1 byte, got {shard_size} (hint: model-signing's default is 1000000000)"
    )]
    InvalidShardSize { shard_size: u64 },
    /// An ignore path that is absolute or climbs out of the tree.
    #[error(
        "ignore path `{path}` must be relative to the tree and must not contain `..` (hint: write it like `logs/` or `README.md`)"
    )]
    InvalidIgnorePath { path: PathBuf },
    /// The shard size is so small that the manifest would hold more resources than can be kept in
    /// memory.
    #[error(
        "`{path}` would need {count} shards of {shard_size} bytes, more than the {limit} a manifest may hold (hint: use a larger --shard-size; model-signing's default is 1000000000)"
    )]
    TooManyShards {
        path: PathBuf,
        shard_size: u64,
        count: u64,
        limit: u64,
    },
    /// A file was shorter than its size said while a shard was read: it changed during hashing.
    #[error(
        "`{path}` changed while it was hashed: expected {expected} bytes at offset {offset}, the file ended after {got} (hint: hash a tree nobody is writing to)"
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        expected: u64,
        got: u64,
    },
}
