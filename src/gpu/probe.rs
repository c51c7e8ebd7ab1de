//! What a GPU host offers, read through NVML: the narrow [`GpuProbe`] trait the pipeline depends
//! on, and [`NvmlProbe`], its implementation over nvml-wrapper 0.13.
//!
//! nvml-wrapper loads `libnvidia-ml.so.1` with dlopen at run time (docs/references.md
//! K§2.1), so reprobox builds and starts on hosts without a driver; only [`NvmlProbe::new`] fails
//! there, with [`GpuError::LibraryNotFound`]. NVML is initialized once per probe, because loading
//! its symbols is expensive, and shut down when the probe is dropped.

use std::ffi::OsStr;
use std::path::Path;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use serde::{Deserialize, Serialize};

use super::error::GpuError;
use super::telemetry::{GpuProcess, GpuSample};

/// The library name nvml-wrapper 0.13 loads by default: the versioned soname, which every driver
/// install has (the unversioned `libnvidia-ml.so` is a dev symlink, often absent;
/// docs/references.md K§2.1).
pub const DEFAULT_NVML_LIB: &str = "libnvidia-ml.so.1";

/// Environment variable that overrides the NVML library path.
pub const NVML_LIB_ENV: &str = "REPROBOX_NVML_LIB";

/// One GPU as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuInfo {
    /// NVML index. Not stable across reboots; the UUID is.
    pub index: u32,
    /// Product name exactly as NVML reports it, e.g. `NVIDIA A100-SXM4-40GB`.
    pub name: String,
    /// `GPU-…` UUID, stable for the physical device.
    pub uuid: String,
    /// Total memory in bytes.
    pub memory_total_bytes: u64,
    /// Kernel driver version, e.g. `550.54.15`.
    pub driver_version: String,
    /// Highest CUDA version the driver supports, e.g. `12.4`; `None` when NVML cannot tell.
    pub cuda_driver_version: Option<String>,
}

/// The host's GPUs, as the pipeline sees them. Kept narrow so tests can substitute a recording
/// fake ([`super::fake::FakeGpuProbe`]). Implementations are `Send + Sync` so the runner can share
/// one probe with a sampling task (`Arc<dyn GpuProbe>` + `tokio::task::spawn_blocking`).
pub trait GpuProbe: Send + Sync {
    /// Every GPU of the host, in NVML index order.
    fn gpus(&self) -> Result<Vec<GpuInfo>, GpuError>;

    /// One telemetry sample of the GPU with this UUID. Blocking (NVML calls take a few ms).
    fn sample(&self, uuid: &str) -> Result<GpuSample, GpuError>;
}

/// [`GpuProbe`] over the real NVML library (or the tests' fake one).
pub struct NvmlProbe {
    nvml: Nvml,
    lib: String,
}

impl std::fmt::Debug for NvmlProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlProbe")
            .field("lib", &self.lib)
            .finish_non_exhaustive()
    }
}

impl NvmlProbe {
    /// Loads and initializes NVML. The library is `lib` when given, else `$REPROBOX_NVML_LIB`
    /// when set and not empty, else [`DEFAULT_NVML_LIB`] (searched by the dynamic loader).
    pub fn new(lib: Option<&Path>) -> Result<NvmlProbe, GpuError> {
        let lib: std::ffi::OsString = match lib {
            Some(p) => p.as_os_str().to_owned(),
            None => match std::env::var_os(NVML_LIB_ENV) {
                Some(v) if !v.is_empty() => v,
                _ => DEFAULT_NVML_LIB.into(),
            },
        };
        let shown = lib.to_string_lossy().into_owned();
        let nvml = Nvml::builder()
            .lib_path(OsStr::new(&lib))
            .init()
            .map_err(|e| GpuError::from_init(&shown, e))?;
        Ok(NvmlProbe { nvml, lib: shown })
    }

    /// The library this probe loaded, as given.
    pub fn lib(&self) -> &str {
        &self.lib
    }

    fn driver_version(&self) -> Result<String, GpuError> {
        self.nvml
            .sys_driver_version()
            .map_err(|e| GpuError::from_query("the driver version", "(system)", e))
    }

    /// `None` when the CUDA version cannot be read: NVML asks libcuda, which may be missing.
    fn cuda_driver_version(&self) -> Option<String> {
        self.nvml
            .sys_cuda_driver_version()
            .ok()
            .map(cuda_version_string)
    }
}

/// Formats NVML's CUDA driver version integer (`12040`) as `12.4` (`major = v / 1000`,
/// `minor = v % 1000 / 10`, as nvml-wrapper's `cuda_driver_version_major/minor` decode it).
pub fn cuda_version_string(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

impl GpuProbe for NvmlProbe {
    fn gpus(&self) -> Result<Vec<GpuInfo>, GpuError> {
        let driver_version = self.driver_version()?;
        let cuda_driver_version = self.cuda_driver_version();
        let count = self
            .nvml
            .device_count()
            .map_err(|e| GpuError::from_query("the GPU count", "(system)", e))?;
        let mut gpus = Vec::with_capacity(count as usize);
        for index in 0..count {
            let at = format!("#{index}");
            let dev = self
                .nvml
                .device_by_index(index)
                .map_err(|e| GpuError::from_query("the handle", &at, e))?;
            let name = dev
                .name()
                .map_err(|e| GpuError::from_query("the name", &at, e))?;
            let uuid = dev
                .uuid()
                .map_err(|e| GpuError::from_query("the UUID", &at, e))?;
            let memory = dev
                .memory_info()
                .map_err(|e| GpuError::from_query("the memory size", &uuid, e))?;
            gpus.push(GpuInfo {
                index,
                name,
                uuid,
                memory_total_bytes: memory.total,
                driver_version: driver_version.clone(),
                cuda_driver_version: cuda_driver_version.clone(),
            });
        }
        Ok(gpus)
    }

    fn sample(&self, uuid: &str) -> Result<GpuSample, GpuError> {
        let ts = chrono::Utc::now();
        let dev = self
            .nvml
            .device_by_uuid(uuid)
            .map_err(|e| GpuError::from_query("the handle", uuid, e))?;
        let q = |what: &'static str| move |e: NvmlError| GpuError::from_query(what, uuid, e);
        let utilization = optional(dev.utilization_rates()).map_err(q("the utilization"))?;
        let memory = dev.memory_info().map_err(q("the memory use"))?;
        let power_mw = optional(dev.power_usage()).map_err(q("the power draw"))?;
        let energy_mj =
            optional(dev.total_energy_consumption()).map_err(q("the energy counter"))?;
        let temperature_c =
            optional(dev.temperature(TemperatureSensor::Gpu)).map_err(q("the temperature"))?;
        let processes = dev
            .running_compute_processes()
            .map_err(q("the running processes"))?
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                used_memory_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                },
            })
            .collect();
        Ok(GpuSample {
            ts,
            uuid: uuid.to_owned(),
            utilization_gpu_pct: utilization.as_ref().map(|u| u.gpu),
            utilization_memory_pct: utilization.as_ref().map(|u| u.memory),
            memory_used_bytes: memory.used,
            memory_total_bytes: memory.total,
            power_mw,
            energy_mj,
            temperature_c,
            processes,
        })
    }
}

/// A reading some GPUs do not offer (energy before Volta, utilization on some boards) becomes
/// `None`; every other error is kept.
fn optional<T>(r: Result<T, NvmlError>) -> Result<Option<T>, NvmlError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(NvmlError::NotSupported) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_version_is_decoded_like_nvml() {
        assert_eq!(cuda_version_string(12040), "12.4");
        assert_eq!(cuda_version_string(11080), "11.8");
        assert_eq!(cuda_version_string(12000), "12.0");
    }

    #[test]
    fn probe_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<NvmlProbe>();
        // clap's `value_parser!` for `GpuSelector: FromStr` needs a `Send + Sync` error.
        assert_send_sync::<GpuError>();
    }

    #[test]
    fn not_supported_readings_become_none() {
        assert_eq!(
            optional::<u32>(Err(NvmlError::NotSupported)).ok(),
            Some(None)
        );
        assert!(matches!(
            optional::<u32>(Err(NvmlError::GpuLost)),
            Err(NvmlError::GpuLost)
        ));
        assert_eq!(optional(Ok(3u32)).ok(), Some(Some(3)));
    }
}
