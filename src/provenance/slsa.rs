//! The SLSA Provenance v1 statement for one sandboxed training run
//! (docs/references.md P§1.2, and the mapping in P§1.3).
//!
//! The runner fills a [`TrainingRun`]; [`TrainingRun::statement`] turns it into the in-toto
//! statement whose subject is the rebuilt model's OMS root digest. The JSON shape, the
//! `buildType` and the `builder.id` URIs are specified in docs/report-format.md.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::ProvenanceError;
use super::artifacts::ArtifactRecord;
use super::statement::{ResourceDescriptor, Statement};
use crate::digest::Sha256Digest;

/// `predicateType` of SLSA Provenance v1 (always this string, per the SLSA spec).
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// reprobox's `buildType`: a training command run once in a hardened Docker sandbox on one GPU.
pub const BUILD_TYPE: &str = "https://reprobox.dev/buildtypes/sandboxed-training/v1";

/// `builder.id` of a run under the runc runtime (container isolation only).
pub const BUILDER_ID_RUNC: &str = "https://reprobox.dev/builders/docker-runc/v1";

/// `builder.id` of a run under gVisor (runsc): a user-space kernel between the submission and the
/// host, a different security mode, so a different id (SLSA: one builder.id per mode).
pub const BUILDER_ID_RUNSC: &str = "https://reprobox.dev/builders/docker-runsc/v1";

/// The container runtime the sandbox used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Runc,
    Runsc,
}

impl Runtime {
    /// The `builder.id` for this runtime.
    pub fn builder_id(self) -> &'static str {
        match self {
            Runtime::Runc => BUILDER_ID_RUNC,
            Runtime::Runsc => BUILDER_ID_RUNSC,
        }
    }
}

/// Whether `id` is one of reprobox's builder ids.
pub fn is_known_builder(id: &str) -> bool {
    id == BUILDER_ID_RUNC || id == BUILDER_ID_RUNSC
}

/// `externalParameters`: only what the submitter controls (their `reprobox.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    /// The manifest path inside the submission (`reprobox.toml`).
    pub manifest: String,
    pub team: String,
    /// The policy and track the submitter chose.
    pub policy: String,
    pub track: String,
    /// `[train]`: the Dockerfile and build context, relative to the submission root.
    pub dockerfile: String,
    pub context: String,
    /// The training command; `None`: the image's CMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The model directory relative to `/out`.
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// `[claims].scores`: task → claimed value.
    pub claims: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_model: Option<String>,
}

/// The GPU the run held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuParameters {
    pub model: String,
    pub uuid: String,
    pub driver_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
}

/// The sandbox the run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxParameters {
    /// The profile id (`strict`).
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_digest: Option<Sha256Digest>,
    pub runtime: Runtime,
    /// Docker network mode (`none`).
    pub network_mode: String,
    pub readonly_rootfs: bool,
}

/// The limits the run was held to; unset ones are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<u64>,
}

/// `internalParameters`: what the trusted platform chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalParameters {
    /// The policy applied, by id and the SHA-256 of its file.
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<Sha256Digest>,
    pub track: String,
    /// The GPU (absent in a dry run without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuParameters>,
    pub sandbox: SandboxParameters,
    pub limits: Limits,
    /// The built image's id (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    pub dry_run: bool,
}

/// Everything the runner knows about a finished training run, to be turned into provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRun {
    /// The run id: `metadata.invocationId`.
    pub run_id: String,
    /// The rebuilt model (a `tree` record): the subject.
    pub model: ArtifactRecord,
    pub external: ExternalParameters,
    pub internal: InternalParameters,
    /// The submission tree, base image, base model, datasets… Use
    /// [`ArtifactRecord::descriptor`] for inputs staged in the run directory (so `audit verify`
    /// re-hashes them) and [`dependency`] for the rest.
    pub resolved_dependencies: Vec<ResourceDescriptor>,
    /// Logs, telemetry, the journal: files of the run directory.
    pub byproducts: Vec<ArtifactRecord>,
    /// `builder.version`: `reprobox` is added; add `docker`, `runsc`, `nvidia-container-toolkit`.
    pub builder_version: BTreeMap<String, String>,
    /// Container start and stop.
    pub started_on: DateTime<Utc>,
    pub finished_on: DateTime<Utc>,
}

/// A resolved dependency that is not in the run directory: a name, a URI and a SHA-256.
pub fn dependency(name: &str, uri: Option<&str>, digest: Sha256Digest) -> ResourceDescriptor {
    ResourceDescriptor {
        name: Some(name.to_owned()),
        uri: uri.map(str::to_owned),
        digest: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
        ..ResourceDescriptor::default()
    }
}

/// The SLSA Provenance v1 predicate, for writing and for reading back. Parameter objects are
/// kept as JSON so a reader accepts what a newer writer adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlsaPredicate {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

/// `predicate.buildDefinition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// `predicate.runDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// `runDetails.metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

/// An SLSA Timestamp: RFC 3339 UTC with whole seconds and `Z`.
pub fn slsa_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn to_value<T: Serialize>(what: &'static str, v: &T) -> Result<serde_json::Value, ProvenanceError> {
    serde_json::to_value(v).map_err(|source| ProvenanceError::Json { what, source })
}

impl TrainingRun {
    /// The in-toto statement: subject = the model (name, OMS root digest), SLSA v1 predicate.
    pub fn statement(&self) -> Result<Statement, ProvenanceError> {
        let mut version = self.builder_version.clone();
        version.insert("reprobox".to_owned(), crate::VERSION.to_owned());
        let predicate = SlsaPredicate {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.to_owned(),
                external_parameters: to_value("externalParameters", &self.external)?,
                internal_parameters: Some(to_value("internalParameters", &self.internal)?),
                resolved_dependencies: self.resolved_dependencies.clone(),
            },
            run_details: RunDetails {
                builder: Builder {
                    id: self.internal.sandbox.runtime.builder_id().to_owned(),
                    version,
                },
                metadata: Some(BuildMetadata {
                    invocation_id: Some(self.run_id.clone()),
                    started_on: Some(slsa_timestamp(self.started_on)),
                    finished_on: Some(slsa_timestamp(self.finished_on)),
                }),
                byproducts: self
                    .byproducts
                    .iter()
                    .map(ArtifactRecord::descriptor)
                    .collect(),
            },
        };
        Ok(Statement::new(
            vec![self.model.descriptor()],
            SLSA_PROVENANCE_V1,
            to_value("the SLSA predicate", &predicate)?,
        ))
    }
}

impl SlsaPredicate {
    /// Problems with a predicate read back (reprobox's buildType and builder ids, timestamps,
    /// descriptors), empty when well-formed.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let bd = &self.build_definition;
        if bd.build_type != BUILD_TYPE {
            out.push(format!(
                "buildType is `{}`, expected `{BUILD_TYPE}`",
                bd.build_type
            ));
        }
        if !bd.external_parameters.is_object() {
            out.push("externalParameters is not an object".to_owned());
        }
        if !is_known_builder(&self.run_details.builder.id) {
            out.push(format!(
                "builder.id `{}` is not a reprobox builder",
                self.run_details.builder.id
            ));
        }
        match &self.run_details.metadata {
            None => out.push("runDetails.metadata is missing".to_owned()),
            Some(m) => {
                if m.invocation_id.as_deref().unwrap_or("").is_empty() {
                    out.push("metadata.invocationId is missing".to_owned());
                }
                for (field, v) in [("startedOn", &m.started_on), ("finishedOn", &m.finished_on)] {
                    match v {
                        Some(t) if DateTime::parse_from_rfc3339(t).is_ok() => {}
                        Some(t) => out.push(format!(
                            "metadata.{field} `{t}` is not an RFC 3339 timestamp"
                        )),
                        None => out.push(format!("metadata.{field} is missing")),
                    }
                }
            }
        }
        for (list, rds) in [
            ("resolvedDependencies", &bd.resolved_dependencies),
            ("byproducts", &self.run_details.byproducts),
        ] {
            for (i, rd) in rds.iter().enumerate() {
                out.extend(
                    rd.problems()
                        .into_iter()
                        .map(|p| format!("{list}[{i}] {p}")),
                );
            }
        }
        out
    }
}
