//! Whether a GPU is approved for a policy track, and the `gpu_not_approved` finding when not.
//!
//! A track lists approved GPU models by the names NVML reports (`NVIDIA A100-SXM4-40GB` and
//! `NVIDIA A100-PCIE-40GB` are different names: a track that accepts both lists both). Matching is
//! exact after this normalization, applied to both sides, and nothing else:
//!
//! 1. leading and trailing whitespace is removed and inner runs of whitespace become one space;
//! 2. ASCII letters are compared without case;
//! 3. one leading `NVIDIA ` vendor prefix is ignored, because drivers before R470 reported
//!    GeForce and Tesla boards without it (`GeForce RTX 3090` vs `NVIDIA GeForce RTX 3090`).
//!
//! A list entry may use the policy's wildcards, `*` (any run of characters) and `?` (one
//! character), as `policies/*.toml` allow (the sn37 policies list `"*"`: any GPU); they are matched
//! with [`crate::policy::glob_match`] after the same normalization. An empty list approves nothing.

use crate::finding::{Finding, FindingKind};
use crate::policy::glob_match;

use super::probe::GpuInfo;

/// The normalized form of a GPU name (see the module docs).
pub fn normalize_gpu_name(name: &str) -> String {
    let collapsed = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    match collapsed.strip_prefix("nvidia ") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => collapsed,
    }
}

/// Whether `gpu_name` (as NVML reports it) matches one of a track's approved names.
pub fn approved(gpu_name: &str, approved_names: &[String]) -> bool {
    let name = normalize_gpu_name(gpu_name);
    approved_names
        .iter()
        .any(|entry| glob_match(&normalize_gpu_name(entry), &name))
}

/// The `gpu_not_approved` finding (an error: the verdict is `NON_COMPLIANT`) when `gpu` is not
/// approved for `track_id`, whose approved names are `approved_names`; `None` when it is.
pub fn approval_finding(
    gpu: &GpuInfo,
    track_id: &str,
    approved_names: &[String],
) -> Option<Finding> {
    if approved(&gpu.name, approved_names) {
        return None;
    }
    let listed = if approved_names.is_empty() {
        "none".to_owned()
    } else {
        approved_names.join(", ")
    };
    Some(Finding::error(
        FindingKind::GpuNotApproved,
        format!(
            "GPU {} `{}` ({}) is not approved for track `{track_id}`; approved: {listed}",
            gpu.index, gpu.name, gpu.uuid
        ),
        "run on an approved GPU (`reprobox gpu` lists this host's GPUs and the tracks each is approved for; \
         choose one with --gpu UUID)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalization_is_case_whitespace_and_vendor_prefix_only() {
        assert_eq!(
            normalize_gpu_name("  NVIDIA   A100-SXM4-40GB "),
            "a100-sxm4-40gb"
        );
        assert_eq!(normalize_gpu_name("GeForce RTX 3090"), "geforce rtx 3090");
        assert_eq!(
            normalize_gpu_name("NVIDIA GeForce RTX 3090"),
            "geforce rtx 3090"
        );
        assert_eq!(normalize_gpu_name("NVIDIA"), "nvidia");
    }

    #[test]
    fn exact_names_after_normalization() {
        let a100 = list(&["NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB"]);
        assert!(approved("NVIDIA A100-SXM4-40GB", &a100));
        assert!(approved("nvidia a100-pcie-40gb", &a100));
        assert!(approved("A100-SXM4-40GB", &a100));
        // Not fuzzy: another memory size or form factor is another GPU.
        assert!(!approved("NVIDIA A100-SXM4-80GB", &a100));
        assert!(!approved("NVIDIA A100 80GB PCIe", &a100));
        assert!(!approved("NVIDIA A100-SXM4-40GBX", &a100));
        assert!(!approved("NVIDIA GeForce RTX 4090", &a100));
        assert!(!approved("NVIDIA A100-SXM4-40GB", &[]));
        let rtx = list(&["NVIDIA GeForce RTX 4090"]);
        assert!(approved("GeForce RTX 4090", &rtx));
        assert!(!approved("NVIDIA GeForce RTX 4090 D", &rtx));
    }

    #[test]
    fn wildcards_as_policies_allow() {
        let a100 = list(&["NVIDIA A100-*-40GB"]);
        assert!(approved("NVIDIA A100-SXM4-40GB", &a100));
        assert!(approved("NVIDIA A100-PCIE-40GB", &a100));
        assert!(!approved("NVIDIA A100-SXM4-80GB", &a100));
        assert!(approved("NVIDIA RTX A6000", &list(&["NVIDIA RTX A?000"])));
    }

    #[test]
    fn finding_names_gpu_track_and_list() {
        let gpu = GpuInfo {
            index: 1,
            name: "NVIDIA GeForce RTX 4090".into(),
            uuid: "GPU-bbbb".into(),
            memory_total_bytes: 24 << 30,
            driver_version: "550.54.15".into(),
            cuda_driver_version: None,
        };
        let a100 = list(&["NVIDIA A100-SXM4-40GB"]);
        let f = approval_finding(&gpu, "a100-40gb", &a100).expect("not approved");
        assert_eq!(f.kind, FindingKind::GpuNotApproved);
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.contains("`NVIDIA GeForce RTX 4090` (GPU-bbbb)"),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains("track `a100-40gb`; approved: NVIDIA A100-SXM4-40GB"),
            "{}",
            f.message
        );
        assert!(approval_finding(&gpu, "rtx-4090", &list(&["NVIDIA GeForce RTX 4090"])).is_none());
    }
}
