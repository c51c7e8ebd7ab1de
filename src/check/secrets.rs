//! Secret scan of the build context: credentials that would be baked into the image or published
//! with the submission.
//!
//! At least two NeurIPS 2023 finalists' public `Dockerfile.train`s carried a literal Hugging Face
//! token in `ENV`, one also a W&B API key (docs/references.md C§1.5 item 6,
//! recommendation C§7.3). Findings name the file and line and the kind of credential, never the
//! value: the report is meant to be published.
//!
//! Cost: binary files (a NUL byte in the first 8 KiB) are skipped, and only the first
//! [`MAX_SCAN_BYTES`] of any file are read, so a multi-gigabyte data file costs one bounded read.

use std::io::Read;
use std::path::Path;
use std::sync::LazyLock;

use regex::bytes::Regex;

use super::archive::{self, ArchiveKind, ArchiveLimits};
use crate::finding::{Finding, FindingKind};

/// At most this many bytes of each file are scanned (4 MiB). Secrets are pasted into code,
/// Dockerfiles and config files, which are far smaller; data files beyond this are not scanned.
pub const MAX_SCAN_BYTES: u64 = 4 * 1024 * 1024;

/// A file whose first 8 KiB hold a NUL byte is treated as binary and skipped.
pub(crate) const BINARY_SNIFF_BYTES: usize = 8 * 1024;

const HINT: &str = "remove the credential from every file (and from git history), revoke it, and pass credentials at run time instead; reprobox runs training without network, so it needs none";
const HINT_FILE: &str = "remove the credentials file from the submission and revoke what it holds; reprobox needs no credentials";

struct Pattern {
    what: &'static str,
    regex: &'static LazyLock<Option<Regex>>,
    /// The line must also contain one of these (case-insensitive), or be in a file whose name is
    /// one of `files`; empty means the pattern alone is enough.
    near: &'static [&'static str],
    files: &'static [&'static str],
}

// Each regex is bounded on both sides so it does not fire inside longer identifiers.
static HF_TOKEN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // Hugging Face user access tokens: `hf_` and 34 letters/digits today; 30+ to be safe.
    regex_or_never(r"(?:^|[^A-Za-z0-9_])hf_[A-Za-z0-9]{30,}(?:[^A-Za-z0-9]|$)")
});
static HEX40: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex_or_never(r"(?:^|[^A-Za-z0-9])[0-9a-f]{40}(?:[^A-Za-z0-9]|$)"));
static AWS_ACCESS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex_or_never(r"(?:^|[^A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?:[^A-Za-z0-9]|$)")
});
static AWS_SECRET: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex_or_never(
        r#"(?i)aws_secret_access_key["']?\s*[:=]\s*["']?[A-Za-z0-9/+]{40}(?:[^A-Za-z0-9/+]|$)"#,
    )
});
static PRIVATE_KEY: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex_or_never(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"));
static GITHUB_TOKEN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex_or_never(
        r"(?:^|[^A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,})(?:[^A-Za-z0-9_]|$)",
    )
});

/// Compiles a pattern known at compile time. `None` (which a unit test rules out for every
/// pattern) makes the pattern match nothing rather than panic.
fn regex_or_never(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static PATTERNS: [Pattern; 6] = [
    Pattern {
        what: "Hugging Face access token",
        regex: &HF_TOKEN,
        near: &[],
        files: &[],
    },
    Pattern {
        what: "W&B API key",
        regex: &HEX40,
        near: &["wandb"],
        files: &[],
    },
    Pattern {
        what: "AWS access key id",
        regex: &AWS_ACCESS,
        near: &[],
        files: &[],
    },
    Pattern {
        what: "AWS secret access key",
        regex: &AWS_SECRET,
        near: &[],
        files: &[],
    },
    Pattern {
        what: "private key block",
        regex: &PRIVATE_KEY,
        near: &[],
        files: &[],
    },
    Pattern {
        what: "GitHub token",
        regex: &GITHUB_TOKEN,
        near: &[],
        files: &[],
    },
];

/// File names that hold credentials whatever their contents.
const CREDENTIAL_FILES: &[&str] = &[".netrc", "_netrc", ".git-credentials"];

/// True for a file name that is a credentials store by itself.
pub fn is_credentials_file(name: &str) -> bool {
    CREDENTIAL_FILES.contains(&name)
}

/// Scans text (or text-like bytes) for secrets. `label` is the path findings carry; `file_name`
/// the file's base name (a `.netrc` mentioning api.wandb.ai makes any 40-hex value a W&B key).
pub fn scan_bytes(bytes: &[u8], label: &str, file_name: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    if is_credentials_file(file_name) {
        findings.push(
            Finding::error(
                FindingKind::SecretInContext,
                format!("`{file_name}` is a credentials file and is part of the build context"),
                HINT_FILE,
            )
            .at(label),
        );
    }
    let netrc_wandb = is_credentials_file(file_name) && contains_ci(bytes, b"api.wandb.ai");
    // Each regex runs once over the whole buffer (its literal prefilter skips most text), and a
    // "near" word is looked for only on the lines that matched: scanning line by line with every
    // pattern costs about ten times more on a 4 MiB file.
    let mut lines = LineIndex::new(bytes);
    for p in &PATTERNS {
        let Some(regex) = p.regex.as_ref() else {
            continue;
        };
        let needs_near = !(p.near.is_empty()
            || p.files.contains(&file_name)
            || netrc_wandb && p.what == "W&B API key");
        if needs_near && !p.near.iter().any(|n| contains_ci(bytes, n.as_bytes())) {
            continue;
        }
        let mut last_line = 0u32;
        for m in regex.find_iter(bytes) {
            // The match may begin with the boundary byte before the secret (a newline, a quote).
            let start = m.start() + usize::from(m.as_bytes().first().is_some_and(|b| *b == b'\n'));
            let line_no = lines.line_of(start);
            if line_no == last_line {
                continue;
            }
            if needs_near
                && !p
                    .near
                    .iter()
                    .any(|n| contains_ci(lines.line_text(start), n.as_bytes()))
            {
                continue;
            }
            last_line = line_no;
            findings.push(
                Finding::error(
                    FindingKind::SecretInContext,
                    format!("{} in the build context (value not shown)", p.what),
                    HINT,
                )
                .at(label)
                .line(line_no),
            );
        }
    }
    findings
}

/// Turns byte offsets into 1-based line numbers, for offsets given in ascending order per pass
/// (it restarts from the beginning when an offset goes backwards).
struct LineIndex<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
}

impl<'a> LineIndex<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineIndex {
            bytes,
            pos: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.bytes.len());
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        let newlines = self.bytes[self.pos..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line = self
            .line
            .saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
        self.pos = offset;
        self.line
    }

    /// The whole line holding `offset`, without its newline.
    fn line_text(&self, offset: usize) -> &'a [u8] {
        let offset = offset.min(self.bytes.len());
        let start = self.bytes[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = self.bytes[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |i| offset + i);
        &self.bytes[start..end]
    }
}

fn contains_ci(haystack: &[u8], needle: &[u8]) -> bool {
    // Lower-case the first byte once and let `position` find candidates; this is several times
    // faster than comparing every window case-insensitively.
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let first = first.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = haystack[from..]
        .iter()
        .position(|b| b.to_ascii_lowercase() == first)
    {
        let at = from + i;
        if haystack
            .get(at + 1..at + 1 + rest.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
        {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Scans one file: reads at most [`MAX_SCAN_BYTES`], skips binary files. An unreadable file yields
/// no finding (the context walk reports what it cannot read). Zip and tar archives are scanned
/// member by member, within [`ArchiveLimits`]' caps.
pub fn scan_file(path: &Path, label: &str) -> Vec<Finding> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(kind) = ArchiveKind::of(file_name) {
        return archive::scan_archive(path, label, kind, &ArchiveLimits::default());
    }
    // A file swapped for a FIFO or a device after the walk listed it is skipped, never read.
    let Ok(file) = crate::input_file::open(path, "file to scan") else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    if file.take(MAX_SCAN_BYTES).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let sniff = &buf[..buf.len().min(BINARY_SNIFF_BYTES)];
    if sniff.contains(&0) {
        return Vec::new();
    }
    scan_bytes(&buf, label, file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fake secrets are assembled at run time so the repository holds no secret-looking literal.
    fn fake_hf() -> String {
        format!("{}{}", "hf", "_") + &"aBcD1234".repeat(5)
    }

    fn kinds(text: &str, name: &str) -> Vec<(String, Option<u32>)> {
        scan_bytes(text.as_bytes(), name, name)
            .into_iter()
            .map(|f| (f.message, f.line))
            .collect()
    }

    #[test]
    fn finds_each_pattern_without_echoing_it() {
        let hf = fake_hf();
        let text = format!("FROM x\nENV HUGGINGFACE_TOKEN=\"{hf}\"\n");
        let f = scan_bytes(text.as_bytes(), "Dockerfile", "Dockerfile");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].line, Some(2));
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains(&hf));

        let wandb = "0123456789abcdef".repeat(3)[..40].to_owned();
        assert_eq!(kinds(&format!("ENV WANDB_API_KEY={wandb}\n"), "D").len(), 1);
        // 40 hex without wandb nearby is a commit id, not a key.
        assert!(kinds(&format!("RUN git checkout {wandb}\n"), "D").is_empty());
        let netrc = format!("machine api.wandb.ai\n  login user\n  password {wandb}\n");
        let n = kinds(&netrc, ".netrc");
        assert_eq!(n.len(), 2, "{n:?}"); // the file itself, and the key on line 3
        assert!(n.iter().any(|(_, l)| *l == Some(3)));

        let akia = format!("{}{}", "AKIA", "ABCDEFGHIJKLMNOP");
        assert_eq!(kinds(&format!("key = {akia}\n"), "c").len(), 1);
        let secret = "aB3/".repeat(10);
        assert_eq!(
            kinds(&format!("aws_secret_access_key = {secret}\n"), "c").len(),
            1
        );
        let pk = format!("-----BEGIN {} PRIVATE KEY-----\nMII\n", "OPENSSH");
        assert_eq!(kinds(&pk, "id").len(), 1);
    }

    #[test]
    fn one_finding_per_line_with_the_right_line() {
        let hf = fake_hf();
        let text = format!("{hf}\nplain\nA={hf} B={hf}\n\n\"{hf}\"");
        let lines: Vec<Option<u32>> = kinds(&text, "x.py").into_iter().map(|(_, l)| l).collect();
        assert_eq!(lines, vec![Some(1), Some(3), Some(5)]);
    }

    #[test]
    fn every_pattern_compiles() {
        assert!(PATTERNS.iter().all(|p| p.regex.is_some()));
    }

    #[test]
    fn no_false_positives_on_identifiers() {
        assert!(kinds("from huggingface_hub import hf_hub_download\n", "a.py").is_empty());
        assert!(kinds("x = my_hf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", "a.py").is_empty());
        assert!(kinds("hf_short123\n", "a.py").is_empty());
    }

    #[test]
    fn skips_binary_and_reads_a_bounded_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("w.bin");
        let mut bytes = vec![0u8; 16];
        bytes.extend_from_slice(fake_hf().as_bytes());
        std::fs::write(&bin, &bytes).unwrap();
        assert!(scan_file(&bin, "w.bin").is_empty());
        let txt = dir.path().join("a.txt");
        std::fs::write(&txt, format!("t={}\n", fake_hf())).unwrap();
        assert_eq!(scan_file(&txt, "a.txt").len(), 1);
    }
}
