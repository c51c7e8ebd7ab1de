//! `FROM` lines: the one `BaseImage` type, stage names, `--platform`, and the global `ARG`
//! defaults a `FROM` may use (docs.docker.com/reference/dockerfile/#understand-how-arg-and-from-interact:
//! an `ARG` before the first `FROM` is in scope for every `FROM`).

use std::collections::HashSet;

use super::parse::{Dockerfile, Instruction};

/// A base image a Dockerfile builds from: a `FROM` that names neither `scratch` nor an earlier
/// stage, with its `ARG` defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference as resolved, e.g. `python:3.11@sha256:…` or `sha256:<image id>`.
    pub reference: String,
    /// The reference as written (before ARG substitution).
    pub written: String,
    /// The 64 hex digits it is pinned by (a registry manifest digest or a local image id);
    /// `None` when it is not pinned.
    pub digest: Option<String>,
    /// The 1-based line of the `FROM`.
    pub line: u32,
    /// `--platform`, when given.
    pub platform: Option<String>,
    /// The stage name (`AS name`), lower-cased.
    pub stage: Option<String>,
    /// An ARG the reference uses that has no default (the builder would get an empty value).
    pub unresolved: Option<String>,
}

/// The ARGs declared before the first FROM, with their defaults.
pub fn global_args(df: &Dockerfile) -> Vec<(String, Option<String>)> {
    let mut args = Vec::new();
    for inst in &df.instructions {
        match inst.keyword.as_str() {
            "FROM" => break,
            "ARG" => {
                for w in inst.args.split_whitespace() {
                    match w.split_once('=') {
                        Some((k, v)) => {
                            args.push((k.to_owned(), Some(v.trim_matches(['"', '\'']).to_owned())))
                        }
                        None => args.push((w.to_owned(), None)),
                    }
                }
            }
            _ => {}
        }
    }
    args
}

/// Replaces `$NAME`, `${NAME}` and `${NAME:-default}` with ARG defaults. On an ARG without a
/// default (or not declared), returns the text with that reference left empty, and its name.
pub fn substitute(word: &str, args: &[(String, Option<String>)]) -> (String, Option<String>) {
    if !word.contains('$') {
        return (word.to_owned(), None);
    }
    let mut out = String::new();
    let mut missing = None;
    let mut rest = word;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (expr, tail) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => (inner, ""),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let (name, fallback) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let value = args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .or_else(|| fallback.map(str::to_owned));
        match value {
            Some(v) => out.push_str(&v),
            None => {
                missing.get_or_insert_with(|| name.to_owned());
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    (out, missing)
}

/// The digest a resolved `FROM` reference is pinned by. `FROM name@sha256:<digest>` pins a
/// registry manifest; `FROM sha256:<image id>` pins a local image by its content-addressed id,
/// which is how images built without a registry (as on reprobox's own hosts) are pinned: the
/// classic builder resolves an id without pulling.
pub fn pinned_digest(resolved: &str) -> Option<&str> {
    let is_digest = |d: &&str| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit());
    resolved
        .split_once("@sha256:")
        .map(|(_, d)| d)
        .filter(is_digest)
        .or_else(|| resolved.strip_prefix("sha256:").filter(is_digest))
}

/// One `FROM`, resolved: the image it names, or `None` for `scratch` / an earlier stage.
fn from_line(
    inst: &Instruction,
    args: &[(String, Option<String>)],
    stages: &mut HashSet<String>,
) -> Option<BaseImage> {
    let words: Vec<&str> = inst.operands().split_whitespace().collect();
    let written = words.first()?;
    let stage = (words.len() >= 3 && words[1].eq_ignore_ascii_case("as"))
        .then(|| words[2].to_ascii_lowercase());
    let (reference, unresolved) = substitute(written, args);
    // A stage name is checked before this FROM's own `AS` name is added: `FROM python AS python`
    // still pulls `python`.
    let earlier_stage = stages.contains(&reference.to_ascii_lowercase());
    stages.extend(stage.clone());
    if reference.eq_ignore_ascii_case("scratch") || earlier_stage {
        return None;
    }
    Some(BaseImage {
        digest: pinned_digest(&reference).map(str::to_owned),
        written: (*written).to_owned(),
        reference,
        line: inst.line(),
        platform: inst.flag("platform"),
        stage,
        unresolved,
    })
}

/// The base images of a Dockerfile, in order (what the build needs in the local store and what
/// provenance lists as dependencies).
pub fn base_images(df: &Dockerfile) -> Vec<BaseImage> {
    let args = global_args(df);
    let mut stages = HashSet::new();
    df.with_keyword("FROM")
        .filter_map(|inst| from_line(inst, &args, &mut stages))
        .collect()
}

/// The stage names (`AS name`) the Dockerfile defines, lower-cased.
pub fn stage_names(df: &Dockerfile) -> HashSet<String> {
    df.with_keyword("FROM")
        .filter_map(|inst| {
            let words: Vec<&str> = inst.operands().split_whitespace().collect();
            (words.len() >= 3 && words[1].eq_ignore_ascii_case("as"))
                .then(|| words[2].to_ascii_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    const DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn base_images_resolve_args_and_skip_stages() {
        let text = format!(
            "ARG B=python@sha256:{DIGEST}\nARG TAG\nFROM --platform=linux/amd64 ${{B}} AS build\nFROM build\nFROM scratch\nFROM sha256:{DIGEST}\nfrom debian:12 as final\nFROM img:$TAG\nFROM x:${{V:-1.0}}\n"
        );
        let got: Vec<(String, Option<String>, u32, Option<String>)> = base_images(&parse(&text))
            .into_iter()
            .map(|b| (b.reference, b.digest, b.line, b.unresolved))
            .collect();
        assert_eq!(
            got,
            [
                (
                    format!("python@sha256:{DIGEST}"),
                    Some(DIGEST.into()),
                    3,
                    None
                ),
                (format!("sha256:{DIGEST}"), Some(DIGEST.into()), 6, None),
                ("debian:12".into(), None, 7, None),
                ("img:".into(), None, 8, Some("TAG".into())),
                ("x:1.0".into(), None, 9, None),
            ]
        );
        let first = &base_images(&parse(&text))[0];
        assert_eq!(first.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(first.stage.as_deref(), Some("build"));
        assert_eq!(
            stage_names(&parse(&text)),
            HashSet::from(["build".to_owned(), "final".to_owned()])
        );
    }

    #[test]
    fn a_stage_named_like_its_image_still_pulls_it() {
        let b = base_images(&parse("FROM python AS python\nFROM python\n"));
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].reference, "python");
    }
}
