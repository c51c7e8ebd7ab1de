//! GPU telemetry: one [`GpuSample`] per sampling tick, the energy a run used, and the processes on
//! the leased GPU that do not belong to the sandbox.
//!
//! The runner calls [`super::GpuProbe::sample`] (blocking, a few NVML calls) from
//! `tokio::task::spawn_blocking` at a fixed period and appends each sample to `telemetry.jsonl`.
//! Units follow NVML (docs/references.md K§2.3): power in milliwatts, energy in millijoules
//! since the driver was loaded, memory in bytes, utilization in percent over NVML's last sample
//! period (1/6 s to 1 s depending on the product), temperature in °C.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One process with a compute context on the GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    /// Host-namespace pid (NVML reports host pids, not the container's).
    pub pid: u32,
    /// GPU memory the process uses, in bytes; `None` when NVML cannot tell (e.g. under some
    /// virtualization or without permission).
    pub used_memory_bytes: Option<u64>,
}

/// One reading of one GPU. A field is `None` when the GPU does not support that reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSample {
    /// When the sample was taken (UTC, RFC 3339 in JSON).
    pub ts: DateTime<Utc>,
    /// The GPU sampled.
    pub uuid: String,
    /// Percent of the last sample period during which a kernel ran.
    pub utilization_gpu_pct: Option<u32>,
    /// Percent of the last sample period during which device memory was read or written.
    pub utilization_memory_pct: Option<u32>,
    /// Device memory in use, bytes (includes the driver's reserved memory).
    pub memory_used_bytes: u64,
    /// Device memory in total, bytes.
    pub memory_total_bytes: u64,
    /// Power draw, milliwatts.
    pub power_mw: Option<u32>,
    /// Energy counter, millijoules since the driver was loaded (Volta and newer).
    pub energy_mj: Option<u64>,
    /// GPU core temperature, °C.
    pub temperature_c: Option<u32>,
    /// Processes with a compute context on this GPU.
    pub processes: Vec<GpuProcess>,
}

/// Energy used between two samples of one GPU, in millijoules: the delta of NVML's counter.
/// `None` when either sample lacks the counter or the counter went backwards (driver reloaded).
pub fn energy_between(first: &GpuSample, last: &GpuSample) -> Option<u64> {
    last.energy_mj?.checked_sub(first.energy_mj?)
}

/// Energy over a whole run, in millijoules, from its samples in time order. Each consecutive pair
/// contributes its counter delta; a pair whose counter went backwards (a driver reload reset it)
/// contributes nothing, so the result is a lower bound in that case. `None` when fewer than two
/// samples carry the counter.
pub fn run_energy_mj(samples: &[GpuSample]) -> Option<u64> {
    let counters: Vec<u64> = samples.iter().filter_map(|s| s.energy_mj).collect();
    if counters.len() < 2 {
        return None;
    }
    Some(counters.windows(2).map(|w| w[1].saturating_sub(w[0])).sum())
}

/// The pids on the GPU that are not the sandbox's, sorted and without duplicates. `sandbox_pids`
/// are host pids (the container's process tree as seen from the host). A non-empty result means
/// something else shares the GPU during a run, which the report records.
pub fn foreign_processes(sample: &GpuSample, sandbox_pids: &HashSet<u32>) -> Vec<u32> {
    let foreign: BTreeSet<u32> = sample
        .processes
        .iter()
        .map(|p| p.pid)
        .filter(|pid| !sandbox_pids.contains(pid))
        .collect();
    foreign.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(energy: Option<u64>, pids: &[u32]) -> GpuSample {
        GpuSample {
            ts: Utc::now(),
            uuid: "GPU-1".into(),
            utilization_gpu_pct: Some(90),
            utilization_memory_pct: Some(40),
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 40 << 30,
            power_mw: Some(250_000),
            energy_mj: energy,
            temperature_c: Some(60),
            processes: pids
                .iter()
                .map(|&pid| GpuProcess {
                    pid,
                    used_memory_bytes: Some(1 << 20),
                })
                .collect(),
        }
    }

    #[test]
    fn energy_is_the_counter_delta() {
        assert_eq!(
            energy_between(&sample(Some(1000), &[]), &sample(Some(4500), &[])),
            Some(3500)
        );
        assert_eq!(
            energy_between(&sample(None, &[]), &sample(Some(4500), &[])),
            None
        );
        assert_eq!(
            energy_between(&sample(Some(5000), &[]), &sample(Some(10), &[])),
            None
        );
    }

    #[test]
    fn run_energy_skips_resets_and_missing_counters() {
        let s = [
            sample(Some(100), &[]),
            sample(None, &[]),
            sample(Some(300), &[]),
            sample(Some(50), &[]), // driver reload: counter restarted
            sample(Some(80), &[]),
        ];
        assert_eq!(run_energy_mj(&s), Some(200 + 30));
        assert_eq!(run_energy_mj(&s[..1]), None);
        assert_eq!(run_energy_mj(&[sample(None, &[]), sample(None, &[])]), None);
    }

    #[test]
    fn foreign_processes_are_those_outside_the_sandbox() {
        let s = sample(Some(1), &[40, 7, 12, 7]);
        let sandbox: HashSet<u32> = [12].into_iter().collect();
        assert_eq!(foreign_processes(&s, &sandbox), vec![7, 40]);
        let all: HashSet<u32> = [7, 12, 40].into_iter().collect();
        assert!(foreign_processes(&s, &all).is_empty());
    }

    #[test]
    fn sample_round_trips_through_json() {
        let s = sample(Some(42), &[1]);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["power_mw"], 250_000);
        assert_eq!(v["energy_mj"], 42);
        assert_eq!(v["processes"][0]["pid"], 1);
        let back: GpuSample = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
