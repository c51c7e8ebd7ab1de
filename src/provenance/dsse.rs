//! DSSE envelopes with Ed25519 (in-toto `spec/v1/envelope.md`; DSSE `protocol.md`): signing a
//! statement, verifying an envelope, and the key files `--sign-key` and `--key` read.
//!
//! The signature covers `PAE(payloadType, payload)` =
//! `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, LEN being the byte length in ASCII
//! decimal, so the payload type cannot be swapped without breaking the signature.
//!
//! Key files are text: one line of 64 lowercase or uppercase hex digits (the 32-byte Ed25519
//! seed for a private key, the 32-byte public key for a public one); blank lines and lines
//! starting with `#` are ignored. `keyid` is the hex SHA-256 of the 32 public-key bytes.

use std::io::{Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::ProvenanceError;
use super::statement::Statement;
use crate::digest::bytes_sha256;

/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// Base64 (standard, padded) of the 64-byte Ed25519 signature.
    pub sig: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 of the serialized statement.
    pub payload: String,
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// The DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The key id of a public key: hex SHA-256 of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    bytes_sha256(key.as_bytes()).hex()
}

/// Serializes `statement` and signs it into a DSSE envelope with one signature.
pub fn sign_statement(
    statement: &Statement,
    key: &SigningKey,
) -> Result<Envelope, ProvenanceError> {
    let payload = serde_json::to_vec(statement).map_err(|source| ProvenanceError::Json {
        what: "a statement",
        source,
    })?;
    let sig = key.sign(&pae(PAYLOAD_TYPE, &payload));
    Ok(Envelope {
        payload: B64.encode(&payload),
        payload_type: PAYLOAD_TYPE.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: key_id(&key.verifying_key()),
            sig: B64.encode(sig.to_bytes()),
        }],
    })
}

impl Envelope {
    /// Decodes the payload and parses the statement, without checking any signature.
    pub fn statement_unverified(&self) -> Result<Statement, ProvenanceError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(ProvenanceError::BadEnvelope {
                detail: format!(
                    "payloadType is `{}`, expected `{PAYLOAD_TYPE}`",
                    self.payload_type
                ),
            });
        }
        let payload = B64
            .decode(&self.payload)
            .map_err(|e| ProvenanceError::BadEnvelope {
                detail: format!("payload is not base64: {e}"),
            })?;
        serde_json::from_slice(&payload).map_err(|e| ProvenanceError::BadEnvelope {
            detail: format!("payload is not a statement: {e}"),
        })
    }
}

/// Checks that some signature on `envelope` verifies with `key` (strict Ed25519 verification
/// over the PAE) and returns the statement it carries.
pub fn verify_envelope(
    envelope: &Envelope,
    key: &VerifyingKey,
) -> Result<Statement, ProvenanceError> {
    let statement = envelope.statement_unverified()?;
    if envelope.signatures.is_empty() {
        return Err(ProvenanceError::BadEnvelope {
            detail: "it has no signatures".to_owned(),
        });
    }
    // statement_unverified has decoded the payload already, so this cannot fail; keep it total.
    let payload = B64.decode(&envelope.payload).unwrap_or_default();
    let msg = pae(&envelope.payload_type, &payload);
    let ok = envelope.signatures.iter().any(|s| {
        B64.decode(&s.sig)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|sig| key.verify_strict(&msg, &sig).is_ok())
    });
    if ok {
        Ok(statement)
    } else {
        Err(ProvenanceError::BadSignature { keyid: key_id(key) })
    }
}

/// A key file's cap: one line of 64 hex digits, with comments.
pub const KEY_CAP: crate::input_file::Cap = crate::input_file::Cap::new(
    "key file",
    64 << 10,
    "a key file holds one line of 64 hex digits, as `reprobox audit keygen` writes it",
);

fn read_key_bytes(path: &Path) -> Result<[u8; 32], ProvenanceError> {
    let text = crate::input_file::read_to_string(path, KEY_CAP)?;
    let bad = |detail: &str| ProvenanceError::BadKey {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or_else(|| bad("it holds no key"))?;
    if lines.next().is_some() {
        return Err(bad("it holds more than one key line"));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(line, &mut out).map_err(|_| bad("the key line is not 64 hex digits"))?;
    Ok(out)
}

/// Reads a private key file (the 32-byte seed in hex).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, ProvenanceError> {
    Ok(SigningKey::from_bytes(&read_key_bytes(path)?))
}

/// Reads a public key file (the 32-byte public key in hex).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, ProvenanceError> {
    VerifyingKey::from_bytes(&read_key_bytes(path)?).map_err(|e| ProvenanceError::BadKey {
        path: path.to_owned(),
        detail: format!("not an Ed25519 public key: {e}"),
    })
}

/// A new random key from the operating system (`/dev/urandom`).
pub fn generate_key() -> Result<SigningKey, ProvenanceError> {
    let path = Path::new("/dev/urandom");
    let mut seed = [0u8; 32];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|source| ProvenanceError::Io {
            path: path.to_owned(),
            op: "read random bytes from",
            source,
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes `key` to `private` (mode 0600, refusing to overwrite) and its public key to `public`.
pub fn write_key_pair(
    key: &SigningKey,
    private: &Path,
    public: &Path,
) -> Result<(), ProvenanceError> {
    fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> ProvenanceError + use<> {
        let path = path.to_owned();
        move |source| ProvenanceError::Io { path, op, source }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(private).map_err(io(private, "create"))?;
    writeln!(
        f,
        "# reprobox Ed25519 private key (32-byte seed, hex); keyid {}\n{}",
        key_id(&key.verifying_key()),
        hex::encode(key.to_bytes())
    )
    .map_err(io(private, "write"))?;
    let vk = key.verifying_key();
    let text = format!(
        "# reprobox Ed25519 public key (hex); keyid {}\n{}\n",
        key_id(&vk),
        hex::encode(vk.as_bytes())
    );
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    let mut f = opts.open(public).map_err(io(public, "create"))?;
    f.write_all(text.as_bytes()).map_err(io(public, "write"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // DSSE protocol.md test vector: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_verify_and_reject_tampering_and_wrong_keys() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let st = Statement::new(vec![], "https://example/p", json!({"a": 1}));
        let env = sign_statement(&st, &key).unwrap();
        assert_eq!(verify_envelope(&env, &key.verifying_key()).unwrap(), st);
        assert!(matches!(
            verify_envelope(&env, &other.verifying_key()),
            Err(ProvenanceError::BadSignature { .. })
        ));
        let mut bytes = B64.decode(&env.payload).unwrap();
        bytes[10] ^= 1;
        let mut bad = env.clone();
        bad.payload = B64.encode(&bytes);
        assert!(verify_envelope(&bad, &key.verifying_key()).is_err());
        let mut retyped = env.clone();
        retyped.payload_type = "text/plain".into();
        assert!(verify_envelope(&retyped, &key.verifying_key()).is_err());
        let mut unsigned = env;
        unsigned.signatures.clear();
        assert!(matches!(
            verify_envelope(&unsigned, &key.verifying_key()),
            Err(ProvenanceError::BadEnvelope { .. })
        ));
    }

    #[test]
    fn key_files_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let key = generate_key().unwrap();
        let (sk, pk) = (t.path().join("k"), t.path().join("k.pub"));
        write_key_pair(&key, &sk, &pk).unwrap();
        assert_eq!(read_signing_key(&sk).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(read_verifying_key(&pk).unwrap(), key.verifying_key());
        assert!(write_key_pair(&key, &sk, &pk).is_err(), "overwrote a key");
        std::fs::write(t.path().join("bad"), "zz\n").unwrap();
        let e = read_signing_key(&t.path().join("bad")).unwrap_err();
        assert!(e.to_string().contains("hint:"));
    }
}
