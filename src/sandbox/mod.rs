//! The hardened sandbox: profiles (`sandboxes/*.toml`), the build context, building the
//! submission's image, and running it under a deadline with capped logs and telemetry.
//!
//! The entry points the pipeline calls are [`build::build_image`], [`run::run_container`],
//! [`run::attach`] (re-attach after a runner restart) and [`teardown::cleanup_by_label`]; each
//! takes any [`crate::engine::ContainerEngine`]. Errors are [`SandboxError`];
//! [`SandboxError::is_infra`] tells "the engine is down" (retryable) from a failed run.

pub mod build;
pub mod container;
pub mod context;
pub mod logs;
pub mod output_count;
pub mod profile;
pub mod run;
pub mod seccomp;
pub mod serve;
pub mod teardown;

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::EngineError;

pub use build::{BuildProgress, BuildSpec, BuiltImage, build_image, build_image_with, parse_step};
pub use container::{
    ContainerLimits, InputMount, LABEL_RUN, LABEL_STAGE, NetworkAttachment, RunSpec, create_body,
    create_body_on,
};
pub use context::{ContextArchive, ContextError, build_context};
pub use logs::LogSummary;
pub use profile::{ProfileError, Runtime, SandboxProfile};
pub use run::{
    Deadline, LiveStats, ResourcePeaks, RunOutcome, RunPaths, RunStatus, attach, attach_live,
    run_container, run_container_live, run_container_on, start_container, start_container_on,
};
pub use serve::{
    Readiness, SERVER_ALIAS, ServeError, ServeSpec, Served, ServedOutcome, run_with_server,
};
pub use teardown::{CleanupReport, Reaped, TeardownGuard, cleanup_by_label, reap_expired};

/// Errors from building and running sandboxed containers.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The profile could not be read or is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The build context could not be assembled.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A FROM image is not in the local image store (nothing is pulled).
    #[error(
        "{dockerfile}:{line}: base image `{image}` is not in the local image store and reprobox never pulls (hint: load it with `docker load -i <image>.tar`, or run scripts/images for the reprobox/* base images)"
    )]
    MissingBaseImage {
        /// The image reference.
        image: String,
        /// The Dockerfile.
        dockerfile: PathBuf,
        /// The FROM line.
        line: usize,
    },
    /// The build ran past its time limit and was stopped.
    #[error("building image `{tag}` took longer than the limit of {}s and was stopped (hint: the policy's build limit is {}s; make the Dockerfile do less, e.g. no downloads or compilation)", limit.as_secs(), limit.as_secs())]
    BuildTimeout {
        /// The tag being built.
        tag: String,
        /// The limit.
        limit: Duration,
    },
    /// The build finished without reporting an image id.
    #[error("building image `{tag}` ended without an image id (hint: see logs/build.log)")]
    NoImageId {
        /// The tag.
        tag: String,
    },
    /// Writing a log or telemetry file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A host path for a mount cannot be used.
    #[error("cannot mount {path}: {source}")]
    Mount {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A mount path is refused.
    #[error(
        "refusing to mount {path}: it {problem} (hint: stage inputs into a plain directory under the run directory)"
    )]
    MountPath {
        /// The path.
        path: PathBuf,
        /// Why.
        problem: String,
    },
    /// A limit from the policy cannot be applied.
    #[error("limit `{field}` {problem} (hint: check the policy's memory settings)")]
    Limit {
        /// The field.
        field: &'static str,
        /// Why.
        problem: String,
    },
    /// A network a container may not join.
    #[error("refusing to attach a container to network `{network}`: it {problem}")]
    Network {
        /// The network name.
        network: String,
        /// Why.
        problem: String,
    },
    /// A run id that cannot be a container name or label.
    #[error(
        "run id `{run_id}` must be 1-64 characters of letters, digits, `-`, `_` or `.`, starting with a letter or digit"
    )]
    BadRunId {
        /// The id.
        run_id: String,
    },
    /// The runner was interrupted (Ctrl-C); the container was killed.
    #[error(
        "interrupted: container {container} was killed (hint: `reprobox resume <RUN_DIR>` continues with the original deadline)"
    )]
    Interrupted {
        /// The container id.
        container: String,
    },
    /// The run failed and cleaning up after it failed too: both are reported.
    #[error("{cause}; cleaning up afterwards also failed: {cleanup}")]
    WithCleanup {
        /// What went wrong first.
        cause: Box<SandboxError>,
        /// What went wrong while cleaning up.
        cleanup: Box<SandboxError>,
    },
}

impl SandboxError {
    /// True when the engine itself was unreachable (retryable, exit code `INFRA_ERROR`).
    pub fn is_infra(&self) -> bool {
        match self {
            SandboxError::Engine(e) => e.is_unreachable(),
            SandboxError::WithCleanup { cause, .. } => cause.is_infra(),
            _ => false,
        }
    }

    /// Joins a failure with the result of the cleanup that followed it; the cause stays first.
    pub fn with_cleanup<T>(self, cleanup: Result<T, SandboxError>) -> SandboxError {
        match cleanup {
            Ok(_) => self,
            Err(c) => SandboxError::WithCleanup {
                cause: Box::new(self),
                cleanup: Box::new(c),
            },
        }
    }
}
