//! The one error type of the GPU module, in our own words rather than NVML's.
//!
//! The pipeline needs to tell a broken host apart from a broken submission: [`GpuError::GpuLost`]
//! (and every other variant for which [`GpuError::is_infra`] is true) becomes `INFRA_ERROR`, a
//! retryable verdict that says nothing about the submission.

use std::path::PathBuf;

use nvml_wrapper::error::NvmlError;

/// Everything that can go wrong while probing, selecting, leasing or sampling a GPU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// The NVML library could not be loaded (no driver installed, wrong path).
    #[error(
        "no NVIDIA driver library found (tried `{lib}`: {detail}) (hint: install the NVIDIA driver, \
         or run with --gpu none where the policy allows a CPU run; another library path can be given \
         with --nvml-lib or REPROBOX_NVML_LIB)"
    )]
    LibraryNotFound { lib: String, detail: String },

    /// The library loaded but the kernel driver is not running.
    #[error(
        "the NVIDIA driver is not loaded (library `{lib}`) (hint: load the kernel module; \
         `nvidia-smi` must work on this host)"
    )]
    DriverNotLoaded { lib: String },

    /// The user may not talk to the driver.
    #[error(
        "no permission to talk to the NVIDIA driver (library `{lib}`) (hint: run as a user that can \
         open /dev/nvidiactl and /dev/nvidia*)"
    )]
    NoPermission { lib: String },

    /// The library and the kernel module come from different driver versions.
    #[error(
        "the NVML library `{lib}` does not match the loaded NVIDIA kernel driver (hint: reboot or \
         reload the nvidia module after a driver upgrade)"
    )]
    DriverVersionMismatch { lib: String },

    /// A GPU fell off the bus or became inaccessible. Maps to `INFRA_ERROR`.
    #[error(
        "GPU {gpu} fell off the bus or became inaccessible (hint: the host needs attention: check \
         `nvidia-smi` and the kernel log, reset the GPU or reboot; the run can be retried on another GPU)"
    )]
    GpuLost { gpu: String },

    /// Any other failure of NVML initialization.
    #[error("failed to initialize NVML from `{lib}`")]
    Init {
        lib: String,
        #[source]
        source: NvmlError,
    },

    /// A query on an initialized NVML failed.
    #[error("failed to read {what} of GPU {gpu} through NVML")]
    Query {
        what: &'static str,
        gpu: String,
        #[source]
        source: NvmlError,
    },

    /// `--gpu` named a UUID this host does not have.
    #[error(
        "no GPU with UUID `{uuid}` on this host; it has: {available} (hint: run `reprobox gpu` to list the GPUs)"
    )]
    UnknownUuid { uuid: String, available: String },

    /// `--gpu` named an index past the last GPU.
    #[error(
        "GPU index {index} is out of range: this host has {count} GPU(s): {available} (hint: run `reprobox gpu` to list the GPUs)"
    )]
    IndexOutOfRange {
        index: u32,
        count: usize,
        available: String,
    },

    /// A `--gpu` value that is neither a UUID, an index nor `none`.
    #[error(
        "invalid GPU selector `{value}`: expected a GPU UUID (GPU-…), an index (0, 1, …) or `none`"
    )]
    InvalidSelector { value: String },

    /// Another run holds the lease on this GPU.
    #[error(
        "GPU {uuid} is leased by run {run_id} (pid {pid}) (hint: wait for that run to finish, or pick another GPU with --gpu)"
    )]
    Leased {
        uuid: String,
        run_id: String,
        pid: u32,
    },

    /// Another process holds the lease but has not written (or has garbled) its holder record.
    #[error("GPU {uuid} is leased by another run (lease file {}) (hint: wait for that run to finish, or pick another GPU with --gpu)", path.display())]
    LeasedUnknownHolder { uuid: String, path: PathBuf },

    /// A UUID that cannot name a lease file safely.
    #[error(
        "GPU UUID `{uuid}` cannot be used for a lease: only ASCII letters, digits, `-` and `_` are allowed"
    )]
    InvalidUuid { uuid: String },

    /// No lease directory could be found or created.
    #[error(
        "no usable GPU lease directory (tried {tried}) (hint: set REPROBOX_GPU_LEASE_DIR to a directory shared by every reprobox run on this host)"
    )]
    NoLeaseDir { tried: String },

    /// Reading or writing a lease file failed.
    #[error("failed to use GPU lease file {}", path.display())]
    LeaseIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl GpuError {
    /// True when the GPU itself failed during the run (the pipeline reports `INFRA_ERROR`).
    pub fn is_gpu_lost(&self) -> bool {
        matches!(self, GpuError::GpuLost { .. })
    }

    /// True when the failure is the host's, not the submission's or the user's: a missing or broken
    /// driver, a lost GPU, an unusable lease directory. Such runs are retryable (`INFRA_ERROR`).
    pub fn is_infra(&self) -> bool {
        !matches!(
            self,
            GpuError::UnknownUuid { .. }
                | GpuError::IndexOutOfRange { .. }
                | GpuError::InvalidSelector { .. }
                | GpuError::InvalidUuid { .. }
        )
    }

    /// Maps an NVML initialization error to our words. `lib` is the library path tried.
    pub(crate) fn from_init(lib: &str, err: NvmlError) -> GpuError {
        let lib = lib.to_owned();
        match err {
            // libloading's text carries dlerror(), which names the file and the reason.
            NvmlError::LibloadingError(e) => GpuError::LibraryNotFound {
                lib,
                detail: e.to_string(),
            },
            NvmlError::LibraryNotFound => GpuError::LibraryNotFound {
                lib,
                detail: "NVML reported that a driver library is missing".to_owned(),
            },
            NvmlError::DriverNotLoaded => GpuError::DriverNotLoaded { lib },
            NvmlError::NoPermission => GpuError::NoPermission { lib },
            NvmlError::LibRmVersionMismatch => GpuError::DriverVersionMismatch { lib },
            NvmlError::GpuLost => GpuError::GpuLost {
                gpu: "(during NVML initialization)".to_owned(),
            },
            source => GpuError::Init { lib, source },
        }
    }

    /// Maps an NVML query error; a lost GPU keeps its own variant.
    pub(crate) fn from_query(what: &'static str, gpu: &str, err: NvmlError) -> GpuError {
        match err {
            NvmlError::GpuLost => GpuError::GpuLost {
                gpu: gpu.to_owned(),
            },
            source => GpuError::Query {
                what,
                gpu: gpu.to_owned(),
                source,
            },
        }
    }
}
