//! OpenSSF model-signing compatible digests of files and directory trees.
//!
//! One module for every stage: [`digest_tree`] / [`digest_path`] give the OMS root digest and
//! manifest of a model or data directory (docs/digests.md), [`file_sha256`] and [`bytes_sha256`]
//! the plain SHA-256 the journal, logs and reports record.

mod counter;
mod error;
mod file;
mod sha256;
mod tree;

pub use counter::HashCounter;
pub use error::DigestError;
pub use file::{CHUNK_SIZE, bytes_sha256, file_sha256, range_sha256, reader_sha256};
pub use sha256::{ParseDigestError, Sha256Digest};
pub use tree::{
    DEFAULT_SHARD_SIZE, DigestMode, DigestOptions, GIT_PATHS, MAX_SHARDS, PREDICATE_TYPE, Resource,
    Serialization, TreeDigest, digest_path, digest_path_counted, digest_tree, digest_tree_counted,
    root_of,
};
