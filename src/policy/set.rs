//! `PolicySet`: every policy by id plus the open-data registry, either the ones built into the
//! binary (`include_str!` of `policies/*.toml`, so the binary is self-contained) or the ones in a
//! directory given with `--policies DIR` / `REPROBOX_POLICIES`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::PolicyError;
use super::model::Policy;
use super::open_data::OpenDataRegistry;
use super::validate::{parse_open_data, parse_policy};
use crate::input_file::{self, Cap};

/// The file name of the open-data registry inside a policy directory.
pub const OPEN_DATA_FILE: &str = "open-data.toml";

/// The largest policy file read: a policy is a page of TOML.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

/// A policy file's cap, as [`input_file`] enforces it.
pub const POLICY_CAP: Cap = Cap::new(
    "policy",
    MAX_POLICY_BYTES,
    "a policy is a page of TOML; check the files in the policies directory",
);

/// The largest open-data registry read.
pub const MAX_OPEN_DATA_BYTES: u64 = 4 << 20;

/// The open-data registry's cap, as [`input_file`] enforces it.
pub const OPEN_DATA_CAP: Cap = Cap::new(
    "open-data registry",
    MAX_OPEN_DATA_BYTES,
    "the registry lists datasets by id; check open-data.toml in the policies directory",
);

/// The policy files compiled into the binary, as (file name, contents).
pub const BUILTIN_POLICIES: &[(&str, &str)] = &[
    (
        "neurips-2023-llm-efficiency.toml",
        include_str!("../../policies/neurips-2023-llm-efficiency.toml"),
    ),
    (
        "llm-merging-2024.toml",
        include_str!("../../policies/llm-merging-2024.toml"),
    ),
    (
        "sn37-b7-multichoice.toml",
        include_str!("../../policies/sn37-b7-multichoice.toml"),
    ),
    (
        "sn37-instruct-8b.toml",
        include_str!("../../policies/sn37-instruct-8b.toml"),
    ),
    (
        "sn37-distilled-reasoning-3b.toml",
        include_str!("../../policies/sn37-distilled-reasoning-3b.toml"),
    ),
];

/// The open-data registry compiled into the binary.
pub const BUILTIN_OPEN_DATA: &str = include_str!("../../policies/open-data.toml");

/// Where a policy set came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum PolicySource {
    /// Compiled into the binary.
    Builtin,
    /// Loaded from a directory.
    Dir(PathBuf),
}

/// Policies by id and the open-data registry.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: BTreeMap<String, Policy>,
    open_data: OpenDataRegistry,
    source: PolicySource,
}

impl PolicySet {
    /// The policies compiled into the binary.
    pub fn builtin() -> Result<Self, PolicyError> {
        let mut set = Self::empty(
            parse_open_data(
                BUILTIN_OPEN_DATA,
                &Path::new("policies").join(OPEN_DATA_FILE),
            )?,
            PolicySource::Builtin,
        );
        for (name, text) in BUILTIN_POLICIES {
            set.insert(
                parse_policy(text, &Path::new("policies").join(name))?,
                &Path::new("policies").join(name),
            )?;
        }
        Ok(set)
    }

    /// Every `*.toml` in `dir`: `open-data.toml` (required) and one policy per other file.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| PolicyError::Io { path, source }
        };
        // Every `*.toml` entry counts, whatever it is: one that is not a regular file (a FIFO, a
        // device, a directory, a symlink loop) is refused by name, never skipped or read.
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        let open_path = dir.join(OPEN_DATA_FILE);
        for path in std::iter::once(&open_path).chain(&files) {
            if let Some(target) = resolves_outside(dir, path) {
                return Err(PolicyError::SymlinkEscape {
                    path: path.clone(),
                    target,
                    dir: dir.to_owned(),
                });
            }
        }
        let open_text = match input_file::read_to_string(&open_path, OPEN_DATA_CAP) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => {
                return Err(PolicyError::MissingOpenData {
                    dir: dir.to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut set = Self::empty(
            parse_open_data(&open_text, &open_path)?,
            PolicySource::Dir(dir.to_owned()),
        );
        for path in files
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n != OPEN_DATA_FILE))
        {
            let text = input_file::read_to_string(path, POLICY_CAP)?;
            set.insert(parse_policy(&text, path)?, path)?;
        }
        if set.policies.is_empty() {
            return Err(PolicyError::NoPolicies {
                dir: dir.to_owned(),
            });
        }
        Ok(set)
    }

    /// `load_dir(dir)` when a directory is given, else [`PolicySet::builtin`].
    pub fn load(dir: Option<&Path>) -> Result<Self, PolicyError> {
        match dir {
            Some(dir) => Self::load_dir(dir),
            None => Self::builtin(),
        }
    }

    fn empty(open_data: OpenDataRegistry, source: PolicySource) -> Self {
        Self {
            policies: BTreeMap::new(),
            open_data,
            source,
        }
    }

    fn insert(&mut self, policy: Policy, path: &Path) -> Result<(), PolicyError> {
        if self.policies.contains_key(&policy.id) {
            // Ids equal file stems, so a duplicate can only come from two spellings of one stem.
            return Err(PolicyError::DuplicateId {
                id: policy.id.clone(),
                first: path.with_file_name(format!("{}.toml", policy.id)),
                second: path.to_owned(),
            });
        }
        self.policies.insert(policy.id.clone(), policy);
        Ok(())
    }

    /// The policy with this id.
    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.policies.get(id)
    }

    /// The policy with this id, or an error whose hint lists the known ids.
    pub fn require(&self, id: &str) -> Result<&Policy, PolicyError> {
        self.get(id).ok_or_else(|| PolicyError::UnknownPolicy {
            id: id.to_owned(),
            known: self.ids().map(str::to_owned).collect(),
        })
    }

    /// All policies, ordered by id.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    /// All ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.policies.keys().map(String::as_str)
    }

    /// The open-data registry.
    pub fn open_data(&self) -> &OpenDataRegistry {
        &self.open_data
    }

    /// Where the set came from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }
}

/// The JSON Schema of the policy file format (`docs/schemas/policy.schema.json`).
pub fn policy_json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(super::raw::RawPolicy))
        .unwrap_or(serde_json::Value::Null)
}

/// Where `path` (a file named in `dir`) really is, when following its symlinks leads outside
/// `dir`; `None` when it stays inside (or cannot be resolved: reading it then fails with the I/O
/// error). Policy and profile files are trusted only as the directory's own files.
pub(crate) fn resolves_outside(dir: &Path, path: &Path) -> Option<PathBuf> {
    let real_dir = std::fs::canonicalize(dir).ok()?;
    let real = std::fs::canonicalize(path).ok()?;
    (!real.starts_with(&real_dir)).then_some(real)
}
