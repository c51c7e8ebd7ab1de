//! What a run needs of its host, behind one trait so every stage can run on fakes: the container
//! engine (connected only when a stage needs it) and the GPU probe (opened only for a GPU run).
//! The binary's host is the Docker Engine and NVML ([`crate::engine::DockerHost`], through the
//! blanket impl for every [`Connect`]); tests use [`FakeHost`].

use std::path::Path;
use std::sync::Arc;

use crate::engine::{Connect, ContainerEngine, EngineError, FakeEngine};
use crate::gpu::fake::FakeGpuProbe;
use crate::gpu::{GpuError, GpuProbe, NvmlProbe};

/// A run's host.
pub trait Host: Send + Sync {
    /// The container engine a connection gives.
    type Engine: ContainerEngine + Clone + 'static;
    /// Connects to the engine.
    fn connect(&self) -> impl Future<Output = Result<Self::Engine, EngineError>> + Send;
    /// Opens the GPU probe (`nvml_lib`: the NVML library to load, when not the default).
    fn gpu_probe(&self, nvml_lib: Option<&Path>) -> Result<Arc<dyn GpuProbe>, GpuError>;
}

/// An engine host with the real NVML.
impl<C: Connect> Host for C {
    type Engine = C::Engine;
    fn connect(&self) -> impl Future<Output = Result<Self::Engine, EngineError>> + Send {
        Connect::connect(self)
    }
    fn gpu_probe(&self, nvml_lib: Option<&Path>) -> Result<Arc<dyn GpuProbe>, GpuError> {
        Ok(Arc::new(NvmlProbe::new(nvml_lib)?))
    }
}

/// A host of fakes: the recording [`FakeEngine`] and a [`FakeGpuProbe`].
#[derive(Debug, Clone)]
pub struct FakeHost {
    pub engine: FakeEngine,
    pub gpu: Arc<FakeGpuProbe>,
}

impl Host for FakeHost {
    type Engine = FakeEngine;
    fn connect(&self) -> impl Future<Output = Result<FakeEngine, EngineError>> + Send {
        let e = self.engine.clone();
        async move { Ok(e) }
    }
    fn gpu_probe(&self, _: Option<&Path>) -> Result<Arc<dyn GpuProbe>, GpuError> {
        Ok(self.gpu.clone())
    }
}
