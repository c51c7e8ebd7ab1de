//! The `sha256:<64 hex>` digest value used in manifests, reports and provenance.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 digest, written `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

/// Why a string is not a `sha256:<64 hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a digest: {reason} (hint: write it as sha256:<64 lowercase hex digits>, as `reprobox hash` prints it)"
)]
pub struct ParseDigestError {
    pub value: String,
    pub reason: &'static str,
}

impl Sha256Digest {
    /// The 64 hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Sha256Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseDigestError {
            value: s.chars().take(80).collect(),
            reason,
        };
        let hex_part = s
            .strip_prefix("sha256:")
            .ok_or_else(|| err("it does not start with `sha256:`"))?;
        if hex_part.len() != 64 {
            return Err(err("it needs exactly 64 hex digits after `sha256:`"));
        }
        if !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("only lowercase hex digits 0-9a-f may follow `sha256:`"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| err("invalid hex"))?;
        Ok(Sha256Digest(out))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Sha256Digest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Sha256Digest".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^sha256:[0-9a-f]{64}$",
            "description": "A SHA-256 digest: `sha256:` followed by 64 lowercase hex digits."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_forms() {
        let s = format!("sha256:{}", "ab".repeat(32));
        let d: Sha256Digest = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
        assert!("sha256:abc".parse::<Sha256Digest>().is_err());
        assert!(
            format!("sha512:{}", "ab".repeat(32))
                .parse::<Sha256Digest>()
                .is_err()
        );
        assert!(
            format!("sha256:{}", "AB".repeat(32))
                .parse::<Sha256Digest>()
                .is_err()
        );
        assert!(
            format!("sha256:{}", "zz".repeat(32))
                .parse::<Sha256Digest>()
                .is_err()
        );
        let e = "md5:1".parse::<Sha256Digest>().unwrap_err();
        assert!(e.to_string().contains("hint:"));
    }
}
