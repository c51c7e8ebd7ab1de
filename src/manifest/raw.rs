//! The manifest exactly as serde reads it: plain types, every table `deny_unknown_fields`, no
//! `untagged` and no `flatten` (house style §7.8-9), so a typo is an error naming the key rather
//! than a silently ignored setting. These types are also the source of the JSON Schema in
//! `docs/schemas/manifest.schema.json`; rules serde cannot express live in `validate.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::digest::Sha256Digest;

/// The first pass: only `schema_version`, every other key ignored, so that a manifest written for
/// a newer schema fails with "requires reprobox ≥ X" instead of an unknown-field error.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionOnlyConfig {
    pub schema_version: Option<u32>,
}

/// A submission manifest, `reprobox.toml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "reprobox.toml (schema_version 1)")]
pub(crate) struct RawManifest {
    /// The manifest schema this file is written for. This reprobox reads schema_version 1.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// Who submitted, and under which competition rules.
    pub submission: RawSubmission,
    /// How to rebuild the model: the image to build and the command it runs.
    pub train: RawTrain,
    /// The pretrained model training starts from, staged read-only at /inputs/base_model.
    #[serde(default)]
    #[schemars(with = "RawModelInput")]
    pub base_model: Option<RawModelInput>,
    /// Every dataset training reads, each staged read-only at /inputs/datasets/<name>.
    #[serde(default)]
    pub datasets: Vec<RawDatasetInput>,
    /// The scores the team claimed, to compare with the rebuilt model's.
    pub claims: RawClaims,
}

/// `[submission]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Submission")]
pub(crate) struct RawSubmission {
    /// The team's name, as on the leaderboard.
    #[schemars(length(min = 1))]
    pub team: String,
    /// The id of a policy in `policies/` (a competition's rules).
    #[schemars(length(min = 1))]
    pub policy: String,
    /// A track of that policy.
    #[schemars(length(min = 1))]
    pub track: String,
}

/// `[train]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Train")]
pub(crate) struct RawTrain {
    /// The Dockerfile that builds the training image, relative to the submission root.
    #[schemars(length(min = 1))]
    pub dockerfile: String,
    /// The build context, relative to the submission root.
    #[serde(default = "default_context")]
    #[schemars(length(min = 1))]
    pub context: String,
    /// The program and its arguments; when absent, the image's CMD runs.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(min = 1), inner(length(min = 1)))]
    pub command: Option<Vec<String>>,
    /// Where training writes the model, relative to /out in the container. It must become a
    /// Hugging Face format model directory.
    #[serde(default = "default_output")]
    #[schemars(length(min = 1))]
    pub output: String,
    /// The random seed training uses.
    #[serde(default)]
    #[schemars(with = "u64")]
    pub seed: Option<u64>,
}

pub(crate) fn default_context() -> String {
    ".".to_owned()
}

pub(crate) fn default_output() -> String {
    "model".to_owned()
}

/// `[base_model]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ModelInput")]
pub(crate) struct RawModelInput {
    /// The model's id, e.g. a Hugging Face repository `org/name`.
    #[schemars(length(min = 1))]
    pub id: String,
    /// The exact revision (a commit hash pins it).
    #[schemars(length(min = 1))]
    pub revision: String,
    /// The model's license, as an SPDX-like id, e.g. `apache-2.0`.
    #[schemars(length(min = 1))]
    pub license: String,
    /// The OMS root digest of the model directory, as `reprobox hash` prints it. `check` reports
    /// a missing digest as `missing_digest`.
    #[serde(default)]
    #[schemars(with = "Sha256Digest")]
    pub digest: Option<String>,
}

/// One `[[datasets]]` entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DatasetInput")]
pub(crate) struct RawDatasetInput {
    /// A short unique name; the dataset is staged at /inputs/datasets/<name>.
    #[schemars(length(min = 1, max = 255), pattern(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"))]
    pub name: String,
    /// The dataset's id, e.g. a Hugging Face repository `org/name`.
    #[schemars(length(min = 1))]
    pub id: String,
    /// The exact revision (a commit hash pins it).
    #[schemars(length(min = 1))]
    pub revision: String,
    /// The dataset's license, as an SPDX-like id, e.g. `cc-by-sa-3.0`.
    #[schemars(length(min = 1))]
    pub license: String,
    /// The OMS root digest of the dataset directory, as `reprobox hash` prints it. `check`
    /// reports a missing digest as `missing_digest`.
    #[serde(default)]
    #[schemars(with = "Sha256Digest")]
    pub digest: Option<String>,
}

/// `[claims]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Claims")]
pub(crate) struct RawClaims {
    /// Task name → the claimed value, as on the leaderboard. Finite numbers only; at least one.
    #[schemars(extend("minProperties" = 1))]
    pub scores: BTreeMap<String, f64>,
    /// The model the team submitted (a directory relative to the submission root), evaluated
    /// side by side with the rebuilt one.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1))]
    pub submitted_model: Option<String>,
}
