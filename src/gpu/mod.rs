//! GPUs through NVML: probing, selection, approval against a track, exclusive leases, telemetry,
//! and the Docker device request for one GPU. See docs/gpu.md.
//!
//! The host is reached only through [`GpuProbe`]; [`NvmlProbe`] implements it over nvml-wrapper
//! (which loads `libnvidia-ml.so.1` at run time), and [`fake::FakeGpuProbe`] is the recording fake
//! for pipeline tests.

mod approval;
mod docker;
mod error;
pub mod fake;
mod lease;
mod probe;
mod select;
mod telemetry;

pub use approval::{approval_finding, approved, normalize_gpu_name};
pub use docker::{GPU_CAPABILITIES, check_device_requests, device_request};
pub use error::GpuError;
pub use lease::{
    GpuLease, LEASE_DIR_ENV, LeaseHolder, SYSTEM_LEASE_DIR, default_lease_dir, read_holder,
};
pub use probe::{
    DEFAULT_NVML_LIB, GpuInfo, GpuProbe, NVML_LIB_ENV, NvmlProbe, cuda_version_string,
};
pub use select::{GpuSelector, select};
pub use telemetry::{GpuProcess, GpuSample, energy_between, foreign_processes, run_energy_mj};
