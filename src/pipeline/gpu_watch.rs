//! GPU telemetry while the training container runs: a thread samples the leased GPU through
//! [`GpuProbe`] at the sandbox profile's interval, appends each sample to `telemetry.jsonl`, and
//! notes every process on the GPU that does not belong to the sandbox. The summary goes into the
//! journal's `train_finished` event and the report.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::gpu::{GpuProbe, GpuSample, run_energy_mj};

/// What the GPU did over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuSummary {
    pub uuid: String,
    pub samples: u64,
    pub max_memory_used_bytes: u64,
    pub mean_utilization_gpu_pct: Option<f64>,
    /// Energy over the run from NVML's counter, joules.
    pub energy_j: Option<f64>,
    /// Host pids seen on the GPU that were not the sandbox's: something else shared the GPU.
    pub foreign_pids: Vec<u32>,
    /// Why sampling stopped early (the GPU was lost, the file could not be written).
    pub error: Option<String>,
    /// NVML said the GPU fell off the bus: the run says nothing about the submission.
    pub lost: bool,
}

/// A running sampler; [`GpuWatch::stop`] ends it and returns the summary.
pub(crate) struct GpuWatch {
    stop: Arc<AtomicBool>,
    /// The last sample's utilization plus one (0: none yet), for progress lines.
    utilization: Arc<AtomicU32>,
    handle: JoinHandle<GpuSummary>,
}

/// Decides whether a host pid belongs to the sandbox.
pub(crate) type PidClassifier = Box<dyn Fn(u32) -> bool + Send>;

/// A classifier for a Docker container: a process is the sandbox's when its cgroup path names
/// the container id (true for cgroup v1 and v2, cgroupfs and systemd drivers).
pub(crate) fn container_pids(container_id: &str) -> PidClassifier {
    let id = container_id.to_owned();
    Box::new(move |pid| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|c| c.contains(&id))
            .unwrap_or(false)
    })
}

impl GpuWatch {
    pub(crate) fn start(
        probe: Arc<dyn GpuProbe>,
        uuid: String,
        interval: Duration,
        telemetry: PathBuf,
        is_sandbox: PidClassifier,
    ) -> GpuWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let utilization = Arc::new(AtomicU32::new(0));
        let latest = utilization.clone();
        let handle = std::thread::spawn(move || {
            sample_loop(
                &*probe,
                &uuid,
                interval,
                &telemetry,
                &*is_sandbox,
                &flag,
                &latest,
            )
        });
        GpuWatch {
            stop,
            utilization,
            handle,
        }
    }

    /// The GPU's utilization at the last sample, percent.
    pub(crate) fn utilization_gpu_pct(&self) -> Option<u32> {
        self.utilization.load(Ordering::Relaxed).checked_sub(1)
    }

    /// True once the sampler has ended on its own (the GPU was lost, the file failed).
    #[cfg(test)]
    fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    pub(crate) fn stop(self) -> GpuSummary {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or_else(|_| GpuSummary {
            error: Some("the GPU sampler panicked".into()),
            ..GpuSummary::default()
        })
    }
}

#[derive(Serialize)]
struct Line<'a> {
    source: &'static str,
    #[serde(flatten)]
    sample: &'a GpuSample,
}

fn sample_loop(
    probe: &dyn GpuProbe,
    uuid: &str,
    interval: Duration,
    telemetry: &std::path::Path,
    is_sandbox: &dyn Fn(u32) -> bool,
    stop: &AtomicBool,
    latest_utilization: &AtomicU32,
) -> GpuSummary {
    let mut summary = GpuSummary {
        uuid: uuid.to_owned(),
        ..GpuSummary::default()
    };
    let mut energy = Vec::new();
    let mut util = Vec::new();
    let mut foreign = BTreeSet::new();
    let mut file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(telemetry)
    {
        Ok(f) => f,
        Err(e) => {
            summary.error = Some(format!("cannot open {}: {e}", telemetry.display()));
            return summary;
        }
    };
    loop {
        let tick = Instant::now();
        match probe.sample(uuid) {
            Ok(s) => {
                summary.samples += 1;
                summary.max_memory_used_bytes =
                    summary.max_memory_used_bytes.max(s.memory_used_bytes);
                util.extend(s.utilization_gpu_pct);
                if let Some(u) = s.utilization_gpu_pct {
                    latest_utilization.store(u.saturating_add(1), Ordering::Relaxed);
                }
                foreign.extend(
                    s.processes
                        .iter()
                        .map(|p| p.pid)
                        .filter(|p| !is_sandbox(*p)),
                );
                if let Ok(mut line) = serde_json::to_vec(&Line {
                    source: "gpu",
                    sample: &s,
                }) {
                    line.push(b'\n');
                    if let Err(e) = file.write_all(&line) {
                        summary.error = Some(format!("cannot write {}: {e}", telemetry.display()));
                        break;
                    }
                }
                energy.push(s);
            }
            Err(e) => {
                summary.lost = e.is_gpu_lost();
                summary.error = Some(e.to_string());
                break;
            }
        }
        // Sleep in short steps so `stop` is honoured quickly.
        while tick.elapsed() < interval && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50).min(interval));
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    summary.energy_j = run_energy_mj(&energy).map(|mj| mj as f64 / 1000.0);
    summary.mean_utilization_gpu_pct = (!util.is_empty())
        .then(|| util.iter().map(|u| f64::from(*u)).sum::<f64>() / util.len() as f64);
    summary.foreign_pids = foreign.into_iter().collect();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::fake::FakeGpuProbe;
    use crate::gpu::{GpuInfo, GpuProcess};

    /// Polls `done` until it holds or ten seconds pass: the tests wait for what the sampler
    /// did, never for a fixed time, so a loaded CI machine cannot make them fail.
    fn wait_until(mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "the sampler did not get there in 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn gpu() -> GpuInfo {
        GpuInfo {
            index: 0,
            name: "NVIDIA A100-SXM4-40GB".into(),
            uuid: "GPU-1111".into(),
            memory_total_bytes: 40 << 30,
            driver_version: "550.54.15".into(),
            cuda_driver_version: Some("12.4".into()),
        }
    }

    #[test]
    fn samples_are_written_and_foreign_processes_flagged() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("telemetry.jsonl");
        let probe = FakeGpuProbe::new(vec![gpu()])
            .with_processes(vec![
                GpuProcess {
                    pid: 100,
                    used_memory_bytes: Some(1 << 30),
                },
                GpuProcess {
                    pid: 4242,
                    used_memory_bytes: None,
                },
            ])
            .with_energy_step_mj(2500);
        let watch = GpuWatch::start(
            Arc::new(probe),
            "GPU-1111".into(),
            Duration::from_millis(20),
            path.clone(),
            Box::new(|pid| pid == 100),
        );
        wait_until(|| std::fs::read_to_string(&path).is_ok_and(|l| l.lines().count() >= 3));
        assert_eq!(watch.utilization_gpu_pct(), Some(90));
        let s = watch.stop();
        assert!(s.samples >= 3, "{s:?}");
        assert_eq!(s.foreign_pids, vec![4242]);
        assert_eq!(s.error, None);
        assert!(!s.lost);
        // Each sample adds 2.5 J to the counter.
        assert_eq!(s.energy_j, Some((s.samples - 1) as f64 * 2.5));
        let lines = std::fs::read_to_string(&path).unwrap();
        assert_eq!(lines.lines().count() as u64, s.samples);
        assert!(lines.lines().all(|l| l.contains("\"source\":\"gpu\"")));
    }

    #[test]
    fn a_lost_gpu_ends_sampling_with_the_reason() {
        let t = tempfile::tempdir().unwrap();
        let probe = FakeGpuProbe::new(vec![gpu()]).lost_after(2);
        let watch = GpuWatch::start(
            Arc::new(probe),
            "GPU-1111".into(),
            Duration::from_millis(10),
            t.path().join("telemetry.jsonl"),
            Box::new(|_| true),
        );
        wait_until(|| watch.is_finished());
        let s = watch.stop();
        assert_eq!(s.samples, 2);
        assert!(s.lost, "{s:?}");
        assert!(s.error.is_some_and(|e| e.contains("fell off the bus")));
    }
}
