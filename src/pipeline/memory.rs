//! The training container's memory limit, planned against the host.
//!
//! A policy grants the memory its competition promised (the NeurIPS 2023 challenge: 128 GiB).
//! Docker accepts a limit above the host's memory and then enforces nothing but the host's own:
//! on a 24 GiB host a 128 GiB limit lets the submission push the host into swap or its OOM
//! killer, taking the runner (and anything else on the machine) with it. So the limit is capped
//! below the host's memory with a reserve for the host, the daemon and the runner, and the plan
//! says so (`plan.json` `limits.memory`). reprobox caps rather than refuses: a dry run on a
//! contestant's workstation must still run, and an organizer sees the cap in the plan and the
//! report (a run that ends `OOM` under a cap may say nothing about the submission).

use serde::{Deserialize, Serialize};

/// The smallest reserve kept for the host.
pub const MIN_RESERVE_BYTES: u64 = 2 << 30;

/// How the memory limit was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryPlan {
    /// What the policy grants (its `memory`, or the 16 GiB default).
    pub requested_bytes: u64,
    /// The host's memory (`MemTotal` in /proc/meminfo); `None` when it could not be read.
    pub host_bytes: Option<u64>,
    /// Kept for the host: the larger of 2 GiB and an eighth of its memory.
    pub reserve_bytes: u64,
    /// The limit the container gets (`Memory` = `MemorySwap`).
    pub limit_bytes: u64,
    /// Whether the limit is below what the policy grants, because the host has less.
    pub capped: bool,
}

/// Plans the limit: what the policy grants, or the host's memory less the reserve when that is
/// smaller (never less than half the host's memory).
pub fn plan_memory(requested_bytes: u64, host_bytes: Option<u64>) -> MemoryPlan {
    let Some(host) = host_bytes else {
        return MemoryPlan {
            requested_bytes,
            host_bytes,
            reserve_bytes: 0,
            limit_bytes: requested_bytes,
            capped: false,
        };
    };
    let reserve_bytes = MIN_RESERVE_BYTES.max(host / 8);
    let ceiling = host.saturating_sub(reserve_bytes).max(host / 2);
    MemoryPlan {
        requested_bytes,
        host_bytes,
        reserve_bytes,
        limit_bytes: requested_bytes.min(ceiling),
        capped: requested_bytes > ceiling,
    }
}

/// The host's memory from /proc/meminfo's text (`MemTotal:  24683664 kB`).
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The host's memory, read from /proc/meminfo (reprobox drives the local Docker daemon).
pub fn host_memory_bytes() -> Option<u64> {
    mem_total(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_policy_above_the_host_is_capped_below_it_with_a_reserve() {
        // The shipped NeurIPS policy on a 24 GiB host.
        let p = plan_memory(128 * GIB, Some(24 * GIB));
        assert_eq!(p.reserve_bytes, 3 * GIB);
        assert_eq!(p.limit_bytes, 21 * GIB);
        assert!(p.capped);
    }

    #[test]
    fn a_policy_that_fits_is_kept() {
        let p = plan_memory(16 * GIB, Some(256 * GIB));
        assert_eq!((p.limit_bytes, p.capped), (16 * GIB, false));
        assert_eq!(p.reserve_bytes, 32 * GIB);
    }

    #[test]
    fn a_small_host_keeps_half_and_an_unknown_host_the_request() {
        let p = plan_memory(16 * GIB, Some(3 * GIB));
        assert_eq!((p.limit_bytes, p.capped), (3 * GIB / 2, true));
        let p = plan_memory(16 * GIB, None);
        assert_eq!((p.limit_bytes, p.capped), (16 * GIB, false));
    }

    #[test]
    fn reads_mem_total() {
        let text = "MemTotal:       24683664 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(text), Some(24_683_664 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }
}
