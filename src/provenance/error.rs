//! Why provenance could not be built, written, read, signed or verified.

use std::path::PathBuf;

use crate::digest::DigestError;
use crate::rundir::RunDirError;

/// Every way the provenance module fails; each variant names the file, line or key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// A filesystem operation failed.
    #[error("cannot {op} `{path}`: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A bundle or key file is not a regular file, or is past its cap.
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),
    /// Hashing an artifact failed.
    #[error("cannot hash artifact `{name}`: {source}")]
    Digest {
        name: String,
        #[source]
        source: DigestError,
    },
    /// An artifact path is not a plain path inside the run directory.
    #[error(transparent)]
    Path(#[from] RunDirError),
    /// A bundle line is not a statement or a DSSE envelope.
    #[error("`{path}` line {line}: {detail}")]
    BadLine {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    /// A key file could not be parsed.
    #[error(
        "key file `{path}`: {detail} (hint: a key file holds 64 hex digits: the 32-byte Ed25519 seed for --sign-key, the 32-byte public key for --key; `reprobox audit keygen` writes both)"
    )]
    BadKey { path: PathBuf, detail: String },
    /// A DSSE envelope is malformed (bad base64, wrong payload type, no signatures).
    #[error("dsse envelope: {detail}")]
    BadEnvelope { detail: String },
    /// No signature on the envelope verifies with the given key.
    #[error(
        "dsse envelope: no signature verifies with key {keyid} (hint: pass the public key matching the --sign-key used for this run)"
    )]
    BadSignature { keyid: String },
    /// Serializing JSON failed (cannot happen for the types here, but is not unwrapped).
    #[error("cannot serialize {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}
