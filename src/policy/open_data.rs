//! The open-data registry (`policies/open-data.toml`): datasets known to be open, with their
//! licenses; a deny list of LLM-generated sets whose terms forbid the use competitions care about
//! (Alpaca, ShareGPT, …); and the license ids counted as open. `check` asks it about every dataset
//! a manifest declares.

use schemars::JsonSchema;
use serde::Serialize;

use super::glob::glob_match;

/// A dataset known to be open.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OpenDataset {
    /// Hub id.
    pub id: String,
    /// License id.
    pub license: String,
    /// Free text (origin, caveats).
    pub notes: String,
}

/// A denied dataset (an exact id or a glob such as `*ShareGPT*`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeniedEntry {
    /// Hub id or glob.
    pub pattern: String,
    /// The model that generated it, when LLM-generated.
    pub generated_by: Option<String>,
    /// Why it is denied.
    pub reason: String,
}

/// What the registry knows about a dataset id.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DataStatus<'a> {
    /// On the deny list (checked first: a denied id is never "known open").
    Denied(&'a DeniedEntry),
    /// A known open dataset.
    Known(&'a OpenDataset),
    /// Neither.
    Unknown,
}

/// The registry.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OpenDataRegistry {
    open_licenses: Vec<String>,
    datasets: Vec<OpenDataset>,
    denied: Vec<DeniedEntry>,
    source_digest: String,
}

impl OpenDataRegistry {
    pub(crate) fn new(
        open_licenses: Vec<String>,
        datasets: Vec<OpenDataset>,
        denied: Vec<DeniedEntry>,
        source_digest: String,
    ) -> Self {
        Self {
            open_licenses,
            datasets,
            denied,
            source_digest,
        }
    }

    /// Classifies a Hub dataset id (ASCII case ignored, as the Hub resolves ids).
    pub fn lookup(&self, dataset_id: &str) -> DataStatus<'_> {
        let id = dataset_id.trim();
        if let Some(d) = self.denied.iter().find(|d| glob_match(&d.pattern, id)) {
            return DataStatus::Denied(d);
        }
        match self.datasets.iter().find(|d| d.id.eq_ignore_ascii_case(id)) {
            Some(d) => DataStatus::Known(d),
            None => DataStatus::Unknown,
        }
    }

    /// Whether a license id counts as open (ASCII case ignored).
    pub fn license_is_open(&self, license: &str) -> bool {
        self.open_licenses
            .iter()
            .any(|l| l.eq_ignore_ascii_case(license.trim()))
    }

    /// The license ids counted as open.
    pub fn open_licenses(&self) -> &[String] {
        &self.open_licenses
    }

    /// The known open datasets.
    pub fn datasets(&self) -> &[OpenDataset] {
        &self.datasets
    }

    /// The deny list.
    pub fn denied(&self) -> &[DeniedEntry] {
        &self.denied
    }

    /// `sha256:<hex>` of open-data.toml, for reports.
    pub fn source_digest(&self) -> &str {
        &self.source_digest
    }
}
