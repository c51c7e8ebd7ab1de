//! The resolved run plan (`plan.json`): manifest + policy + sandbox profile + host facts, with
//! every limit that applies to this run. Written once, before anything touches Docker or the
//! GPU; `resume` reads it back instead of re-resolving (the policy files may have changed since).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::gpu::GpuInfo;

/// Every limit of this run, in seconds and bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanLimits {
    pub build_secs: u64,
    /// The training wall clock, counted from the container's start.
    pub train_secs: u64,
    /// The policy's own training wall clock, which a dry run's budget or `--train-limit` may
    /// have shortened `train_secs` from: what a dry run's estimate is measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_train_secs: Option<u64>,
    pub eval_secs: Option<u64>,
    /// The container's memory limit (`memory.limit_bytes` when `memory` is present).
    pub memory_bytes: u64,
    /// How `memory_bytes` was planned against the host: what the policy grants, the host's
    /// memory, the reserve, and whether it was capped. Absent in plans written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<super::memory::MemoryPlan>,
    pub disk_bytes: Option<u64>,
    pub max_context_bytes: u64,
}

impl PlanLimits {
    pub fn build(&self) -> Duration {
        Duration::from_secs(self.build_secs)
    }

    pub fn train(&self) -> Duration {
        Duration::from_secs(self.train_secs)
    }
}

/// What a run will do, resolved before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunPlan {
    pub run_id: String,
    pub reprobox_version: String,
    pub dry_run: bool,
    /// The submission directory (absolute).
    pub submission: PathBuf,
    /// The OMS digest of the submission tree at intake: what was run.
    pub submission_digest: Sha256Digest,
    pub team: String,
    pub policy: String,
    /// `sha256:` of the policy file, so a report names the exact rules applied.
    pub policy_digest: String,
    pub track: String,
    pub sandbox_profile: String,
    /// The SHA-256 of the sandbox profile's text, as planned; the training and the evaluation
    /// refuse a profile that changed since. Plans written before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_profile_digest: Option<Sha256Digest>,
    pub runtime: String,
    pub gpu: Option<GpuInfo>,
    /// The build context and Dockerfile (absolute, inside the submission).
    pub context_dir: PathBuf,
    pub dockerfile: PathBuf,
    pub command: Option<Vec<String>>,
    /// Where the model must appear, relative to the run's `out/`.
    pub output: String,
    pub seed: Option<u64>,
    /// Network for the build stage (`none` unless the policy allows one).
    pub build_network: String,
    pub limits: PlanLimits,
    /// The inputs mirror the run stages from.
    pub inputs_mirror: PathBuf,
    /// The harness evaluation, when the policy names one or `--eval-image` gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<super::evaluate::HarnessPlan>,
    /// The native evaluation, for a natively scored policy given `--task-data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<super::evaluate::NativePlan>,
}

/// A fresh run id: `<team>-<UTC date and time>-<4 hex>`, lowercase and safe as a Docker name.
pub fn new_run_id(team: &str) -> String {
    stamped(&slug(team, 32, "run"))
}

/// `s` in lower-case ASCII letters, digits and `-` (every other character a `-`), without a
/// leading or trailing `-`, at most `max` characters; `fallback` when nothing is left. Safe as a
/// file name and inside a Docker container name.
pub fn slug(s: &str, max: usize, fallback: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let cut: String = mapped.trim_matches('-').chars().take(max).collect();
    match cut.trim_end_matches('-') {
        "" => fallback.to_owned(),
        s => s.to_owned(),
    }
}

/// `<slug>-<UTC time>-<4 hex>`: sorts by time within one slug, and two ids made in the same
/// second differ.
pub fn stamped(slug: &str) -> String {
    let now = chrono::Utc::now();
    // Nanoseconds and the pid make two runs started in the same second differ.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{slug}-{}-{salt:04x}", now.format("%Y%m%dt%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_docker_safe_and_distinct() {
        let a = new_run_id("LoRA Lions!");
        assert!(a.starts_with("lora-lions-"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
        crate::sandbox::container::check_run_id(&a).unwrap();
        assert!(new_run_id("___").starts_with("run-"));
        assert_eq!(slug("  Ünï -- code/", 40, "x"), "n-----code");
        assert_eq!(
            slug("abcdef-ghi", 7, "x"),
            "abcdef",
            "no trailing dash after the cut"
        );
        assert_eq!(slug("!!!", 7, "team"), "team");
    }
}
