//! A recording, scriptable [`GpuProbe`] for tests of the pipeline (no NVML involved). The NVML
//! code path itself is tested against the fake `libnvidia-ml.so` in tests/fixtures/fake-nvml.

use std::sync::Mutex;

use super::error::GpuError;
use super::probe::{GpuInfo, GpuProbe};
use super::telemetry::{GpuProcess, GpuSample};

/// A call the pipeline made on the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCall {
    Gpus,
    Sample(String),
}

/// A probe over a fixed list of GPUs. Each `sample` of a known UUID returns a synthetic reading
/// whose energy counter grows by `energy_step_mj`; after `lost_after` samples every call fails with
/// [`GpuError::GpuLost`], as a GPU that fell off the bus would.
#[derive(Debug)]
pub struct FakeGpuProbe {
    gpus: Vec<GpuInfo>,
    processes: Vec<GpuProcess>,
    energy_step_mj: u64,
    lost_after: Option<usize>,
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<ProbeCall>,
    samples: usize,
}

impl FakeGpuProbe {
    pub fn new(gpus: Vec<GpuInfo>) -> FakeGpuProbe {
        FakeGpuProbe {
            gpus,
            processes: Vec::new(),
            energy_step_mj: 1000,
            lost_after: None,
            state: Mutex::default(),
        }
    }

    /// Processes every sample reports.
    pub fn with_processes(mut self, processes: Vec<GpuProcess>) -> FakeGpuProbe {
        self.processes = processes;
        self
    }

    /// Energy added between two samples, in millijoules.
    pub fn with_energy_step_mj(mut self, step: u64) -> FakeGpuProbe {
        self.energy_step_mj = step;
        self
    }

    /// Fails with `GpuLost` once `n` samples have been taken.
    pub fn lost_after(mut self, n: usize) -> FakeGpuProbe {
        self.lost_after = Some(n);
        self
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<ProbeCall> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        // A test that panicked while holding the lock leaves consistent data: keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl GpuProbe for FakeGpuProbe {
    fn gpus(&self) -> Result<Vec<GpuInfo>, GpuError> {
        let mut st = self.lock();
        st.calls.push(ProbeCall::Gpus);
        if self.lost_after.is_some_and(|n| st.samples >= n) {
            return Err(GpuError::GpuLost {
                gpu: "(fake)".to_owned(),
            });
        }
        Ok(self.gpus.clone())
    }

    fn sample(&self, uuid: &str) -> Result<GpuSample, GpuError> {
        let mut st = self.lock();
        st.calls.push(ProbeCall::Sample(uuid.to_owned()));
        let Some(gpu) = self.gpus.iter().find(|g| g.uuid == uuid) else {
            return Err(GpuError::UnknownUuid {
                uuid: uuid.to_owned(),
                available: "(fake probe)".to_owned(),
            });
        };
        if self.lost_after.is_some_and(|n| st.samples >= n) {
            return Err(GpuError::GpuLost {
                gpu: uuid.to_owned(),
            });
        }
        let k = st.samples as u64;
        st.samples += 1;
        let used: u64 = self
            .processes
            .iter()
            .filter_map(|p| p.used_memory_bytes)
            .sum();
        Ok(GpuSample {
            ts: chrono::Utc::now(),
            uuid: uuid.to_owned(),
            utilization_gpu_pct: Some(90),
            utilization_memory_pct: Some(40),
            memory_used_bytes: used.min(gpu.memory_total_bytes),
            memory_total_bytes: gpu.memory_total_bytes,
            power_mw: Some(250_000),
            energy_mj: Some(1_000_000 + k * self.energy_step_mj),
            temperature_c: Some(60),
            processes: self.processes.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::telemetry::run_energy_mj;

    fn gpu() -> GpuInfo {
        GpuInfo {
            index: 0,
            name: "NVIDIA A100-SXM4-40GB".into(),
            uuid: "GPU-a".into(),
            memory_total_bytes: 40 << 30,
            driver_version: "550".into(),
            cuda_driver_version: None,
        }
    }

    #[test]
    fn records_calls_and_loses_the_gpu_on_schedule() {
        let probe = FakeGpuProbe::new(vec![gpu()])
            .with_energy_step_mj(500)
            .lost_after(2);
        assert_eq!(probe.gpus().unwrap().len(), 1);
        let a = probe.sample("GPU-a").unwrap();
        let b = probe.sample("GPU-a").unwrap();
        assert_eq!(run_energy_mj(&[a, b]), Some(500));
        assert!(probe.sample("GPU-a").unwrap_err().is_gpu_lost());
        assert!(matches!(
            probe.sample("GPU-z"),
            Err(GpuError::UnknownUuid { .. })
        ));
        assert_eq!(
            probe.calls(),
            vec![
                ProbeCall::Gpus,
                ProbeCall::Sample("GPU-a".into()),
                ProbeCall::Sample("GPU-a".into()),
                ProbeCall::Sample("GPU-a".into()),
                ProbeCall::Sample("GPU-z".into()),
            ]
        );
    }
}
