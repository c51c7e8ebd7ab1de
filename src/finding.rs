//! A compliance finding: what `reprobox check` reports and what the verify report embeds.
//!
//! The `kind` strings are a contract (docs/checks.md, "Finding kinds"): organizers'
//! scripts match on them, so a kind is never renamed, only added.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How bad a finding is. Any `Error` makes a submission non-compliant (exit 3); `Info` is a note
/// (a declared input the code downloads, dependency files no build step uses) and never counts
/// against compliance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// The stable finding kinds. Serialized as snake_case strings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    // Kinds named by the design.
    SecretInContext,
    DeniedDataset,
    UnknownDataset,
    LicenseNotAllowed,
    UnapprovedBaseModel,
    InstructionTunedBase,
    UnknownTrack,
    MissingDigest,
    UnpinnedBaseImage,
    UnpinnedDependency,
    UnpinnedDownload,
    UndeclaredData,
    SymlinkEscape,
    PathEscape,
    JunkFile,
    ArchitectureNotAllowed,
    TooManyParameters,
    TooFewParameters,
    ModelTooLarge,
    WeightNormExceeded,
    GpuNotApproved,
    // Kinds added by reprobox.
    /// The manifest names a policy that is not in `policies/`.
    UnknownPolicy,
    /// A file the manifest points at (Dockerfile, context) does not exist.
    MissingFile,
    /// One file in the build context is larger than the policy allows.
    FileTooLarge,
    /// The build context as a whole is larger than the policy allows.
    ContextTooLarge,
    /// `ADD <url>` in a Dockerfile: the fetched bytes are not pinned and not hashed.
    RemoteAdd,
    /// A model directory could not be read as a Hugging Face model (config.json, safetensors).
    ModelUnreadable,
    /// A model directory holds pickle checkpoints (`.bin`, `.pt`, `.pkl`), which reprobox never loads.
    PickleCheckpoint,
    /// The model's maximum sequence length is below what the policy requires.
    SequenceLengthTooShort,
    /// A claimed score names a task the policy does not evaluate.
    UnknownTask,
    /// The policy evaluates a task the claims leave out.
    MissingClaim,
    /// The policy has a weight-norm rule, but the model lacks (some of) the layer tensors it reads.
    WeightNormUnchecked,
    /// An archive member (or a gzip stream) expands far beyond its compressed size: a
    /// decompression bomb, reported instead of unpacked.
    ArchiveBomb,
    /// An archive could be scanned for secrets only in part (a cap was reached) or not at all
    /// (corrupt, encrypted).
    ArchiveNotScanned,
    /// A build step fetches from the network (pip/conda/apt, git clone, wget/curl, ADD of a URL).
    BuildNetwork,
    /// Code on the training path fetches a model, dataset or file at run time.
    RuntimeDownload,
    /// `trust_remote_code=True`: code from the Hub runs, unpinned.
    TrustRemoteCode,
    /// An online experiment tracker or Hub upload on the training path.
    OnlineLogging,
    /// The final model is saved with `torch.save` / pickle instead of safetensors.
    PickleOutput,
    /// A script or compose file expects host volumes or the Docker socket.
    HostMount,
    /// The Dockerfile is something the builder would reject (or not a text file at all).
    DockerfileSyntax,
    /// The image's CMD/ENTRYPOINT (or `train.command`) is missing or runs nothing that trains.
    NoTrainingEntry,
    /// A shuffle or random split on the training path without a seed.
    UnseededRandomness,
    /// Dependency files that no build step uses (one info finding lists them).
    UnusedDependencyFile,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // serde is the single source of truth for the names.
        let v = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(v.as_str().unwrap_or("unknown"))
    }
}

/// One finding. `path` is relative to the submission root (or names the model directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub message: String,
    pub hint: String,
}

impl Finding {
    pub fn error(kind: FindingKind, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            kind,
            severity: Severity::Error,
            path: None,
            line: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn warning(kind: FindingKind, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(kind, message, hint)
        }
    }

    pub fn info(kind: FindingKind, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Info,
            ..Finding::error(kind, message, hint)
        }
    }

    /// The same finding with another severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.severity, self.kind)?;
        match (&self.path, self.line) {
            (Some(p), Some(l)) => write!(f, " {p}:{l}")?,
            (Some(p), None) => write!(f, " {p}")?,
            _ => {}
        }
        write!(f, ": {}\n  (hint: {})", self.message, self.hint)
    }
}

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_as_design_names() {
        assert_eq!(
            FindingKind::SecretInContext.to_string(),
            "secret_in_context"
        );
        assert_eq!(FindingKind::GpuNotApproved.to_string(), "gpu_not_approved");
        let f = Finding::error(FindingKind::JunkFile, "m", "h").at("a/.DS_Store");
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["kind"], "junk_file");
        assert_eq!(v["severity"], "error");
        assert!(v.get("line").is_none());
    }

    /// Issue 15: docs/checks.md lists every kind (with its severity, trigger and hint).
    #[test]
    fn every_kind_is_documented() {
        let docs = include_str!("../docs/checks.md");
        let schema = serde_json::to_value(schemars::schema_for!(FindingKind)).unwrap();
        // schemars writes the undocumented variants as one `enum` and each documented one as a
        // `const`.
        let mut kinds: Vec<String> = Vec::new();
        for v in schema["oneOf"].as_array().unwrap() {
            if let Some(c) = v["const"].as_str() {
                kinds.push(c.to_owned());
            }
            for e in v["enum"].as_array().into_iter().flatten() {
                kinds.extend(e.as_str().map(str::to_owned));
            }
        }
        assert!(kinds.len() >= 40, "{schema}");
        let missing: Vec<&String> = kinds
            .iter()
            .filter(|k| !docs.contains(&format!("`{k}`")))
            .collect();
        assert!(missing.is_empty(), "docs/checks.md lacks {missing:?}");
    }

    #[test]
    fn display_names_path_line_and_hint() {
        let f = Finding::warning(FindingKind::UnpinnedDependency, "pip install -U", "pin it")
            .at("Dockerfile")
            .line(3);
        assert_eq!(
            f.to_string(),
            "warning [unpinned_dependency] Dockerfile:3: pip install -U\n  (hint: pin it)"
        );
    }
}
