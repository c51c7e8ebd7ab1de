//! The in-toto Statement v1 envelope and ResourceDescriptor, hand-rolled with serde
//! (docs/references.md P§1.1), plus the well-formedness rules
//! `audit verify` applies to every statement it reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `_type` of every in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// An in-toto ResourceDescriptor (`spec/v1/resource_descriptor.md`). `content` is not produced
/// by reprobox and is ignored on reading, as unknown fields must be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The DigestSet: algorithm → lowercase hex.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: serde_json::Value,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ResourceDescriptor {
    /// The `sha256` entry of the digest set, if any.
    pub fn sha256(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }

    /// Problems with this descriptor, each a sentence (empty when well-formed): at least one of
    /// `name`, `uri`, `digest`; digests in lowercase hex (sha256 exactly 64 digits).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.name.is_none() && self.uri.is_none() && self.digest.is_empty() {
            out.push("has none of name, uri, digest".to_owned());
        }
        for (alg, v) in &self.digest {
            let ok = if alg == "sha256" {
                is_lower_hex(v, 64)
            } else {
                is_lower_hex(v, v.len()) && !v.is_empty()
            };
            if !ok {
                out.push(format!("digest `{alg}` is not lowercase hex"));
            }
        }
        out
    }
}

impl Statement {
    /// A statement about `subject` with the given predicate.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Self {
        Statement {
            type_: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }

    /// Problems with the statement envelope (in-toto Statement v1 rules), empty when well-formed.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.type_ != STATEMENT_TYPE {
            out.push(format!(
                "_type is `{}`, expected `{STATEMENT_TYPE}`",
                self.type_
            ));
        }
        if self.subject.is_empty() {
            out.push("subject is empty".to_owned());
        }
        for (i, s) in self.subject.iter().enumerate() {
            if s.digest.is_empty() {
                out.push(format!("subject[{i}] has no digest"));
            }
            out.extend(
                s.problems()
                    .into_iter()
                    .map(|p| format!("subject[{i}] {p}")),
            );
        }
        if self.predicate_type.is_empty() {
            out.push("predicateType is empty".to_owned());
        }
        if !(self.predicate.is_object() || self.predicate.is_null()) {
            out.push("predicate is not an object".to_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_type_field_and_flags_bad_statements() {
        let rd = ResourceDescriptor {
            name: Some("model".into()),
            digest: BTreeMap::from([("sha256".into(), "a".repeat(64))]),
            ..Default::default()
        };
        let s = Statement::new(vec![rd], "https://example/p", json!({}));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(
            v["subject"][0],
            json!({"name": "model", "digest": {"sha256": "a".repeat(64)}})
        );
        assert!(s.problems().is_empty());
        let mut bad = s.clone();
        bad.subject[0]
            .digest
            .insert("sha256".into(), "A".repeat(64));
        bad.type_ = "x".into();
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
        bad.subject.clear();
        assert!(
            bad.problems()
                .iter()
                .any(|p| p.contains("subject is empty"))
        );
    }
}
