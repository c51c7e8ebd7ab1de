//! The container engine: a narrow trait over what the pipeline asks of Docker, and its bollard
//! implementation ([`docker::DockerEngine`]).
//!
//! The sandbox code is generic over [`ContainerEngine`], so a recording fake can stand in for
//! the daemon in unit tests. Every engine error is reported in our own words, one variant per
//! operation, naming the container or image; [`EngineError::is_unreachable`] separates "the
//! engine is down" (retryable, `INFRA_ERROR`) from errors about this run.

pub mod cgroup;
pub mod docker;
pub mod fake;

use std::collections::HashMap;
use std::future::Future;

use bytes::Bytes;
use futures_util::stream::BoxStream;

pub use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};
pub use docker::DockerEngine;
pub use fake::FakeEngine;

/// The Docker API version reprobox needs at least (Docker 20.10); `negotiate_version` picks the
/// daemon's own when it is older than bollard's default (1.53).
pub const MIN_API_VERSION: &str = "1.41";

/// Errors from the container engine, one variant per operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The daemon does not answer (socket missing, connection refused, request timed out).
    #[error(
        "cannot reach the Docker Engine while trying to {operation}: {source} (hint: is the Docker Engine running? start it with `systemctl start docker` or `dockerd &`, and check that this user may use /var/run/docker.sock)"
    )]
    Unreachable {
        /// What we were doing.
        operation: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Connecting (building the client) failed.
    #[error(
        "cannot connect to the Docker Engine: {source} (hint: set DOCKER_HOST or start the daemon)"
    )]
    Connect {
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// The daemon's API is older than reprobox supports.
    #[error(
        "the Docker Engine speaks API {found}, reprobox needs at least {MIN_API_VERSION} (hint: upgrade to Docker 20.10 or newer)"
    )]
    TooOld {
        /// The daemon's API version.
        found: String,
    },
    /// `GET /version` failed.
    #[error("cannot read the Docker Engine's version: {source}")]
    Version {
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Inspecting an image failed for a reason other than "not found".
    #[error("cannot inspect image `{image}`: {source}")]
    InspectImage {
        /// The image reference.
        image: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// The image build failed (the message is the builder's, e.g. a failing RUN step).
    #[error(
        "building image `{tag}` failed: {message} (hint: the full build output is in logs/build.log)"
    )]
    Build {
        /// The tag being built.
        tag: String,
        /// The builder's message.
        message: String,
    },
    /// Creating a container failed.
    #[error("cannot create container `{name}` from image `{image}`: {source}")]
    Create {
        /// The container name we asked for.
        name: String,
        /// The image.
        image: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Starting a container failed.
    #[error("cannot start container {id}: {source}{}", runtime_hint(source))]
    Start {
        /// The container id.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Attaching to a container's output failed.
    #[error("cannot attach to the output of container {id}: {source}")]
    Attach {
        /// The container id.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Reading a container's logs failed.
    #[error("cannot read the logs of container {id}: {source}")]
    Logs {
        /// The container id.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Reading a container's resource statistics failed.
    #[error("cannot read the statistics of container {id}: {source}")]
    Stats {
        /// The container id.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Waiting for a container failed.
    #[error("cannot wait for container {id}: {source}")]
    Wait {
        /// The container id.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Inspecting a container failed.
    #[error("cannot inspect container {id}: {source}")]
    Inspect {
        /// The container id.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Sending a signal failed.
    #[error("cannot send {signal} to container {id}: {source}")]
    Kill {
        /// The container id.
        id: String,
        /// The signal.
        signal: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Removing a container failed.
    #[error(
        "cannot remove container {id}: {source} (hint: remove it by hand with `docker rm -f {id}`)"
    )]
    RemoveContainer {
        /// The container id.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Listing containers failed.
    #[error("cannot list containers labelled `{label}`: {source}")]
    ListContainers {
        /// The label filter.
        label: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Listing images failed.
    #[error("cannot list images labelled `{label}`: {source}")]
    ListImages {
        /// The label filter.
        label: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Removing an image failed.
    #[error(
        "cannot remove image {image}: {source} (hint: remove it by hand with `docker rmi -f {image}`)"
    )]
    RemoveImage {
        /// The image id or tag.
        image: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Creating a network failed.
    #[error("cannot create network `{name}`: {source}")]
    CreateNetwork {
        /// The network name we asked for.
        name: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Removing a network failed.
    #[error(
        "cannot remove network {id}: {source} (hint: remove it by hand with `docker network rm {id}`)"
    )]
    RemoveNetwork {
        /// The network id or name.
        id: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// Listing networks failed.
    #[error("cannot list networks labelled `{label}`: {source}")]
    ListNetworks {
        /// The label filter.
        label: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
    /// The container does not exist (any operation).
    #[error("container {id} does not exist (hint: it was removed, or the daemon was reset)")]
    NoSuchContainer {
        /// The container id.
        id: String,
    },
}

fn runtime_hint(source: &bollard::errors::Error) -> &'static str {
    let text = source.to_string();
    if text.contains("unknown or invalid runtime") {
        " (hint: the profile's runtime is not registered with the daemon; for gVisor see docs/sandbox.md, \"Running under gVisor\")"
    } else if text.contains("error setting rlimit") {
        " (hint: a [ulimits] value in the sandbox profile exceeds the Docker daemon's own hard limit; lower it, see docs/sandbox.md)"
    } else {
        ""
    }
}

impl EngineError {
    /// True when the engine itself is unavailable (retryable; maps to `INFRA_ERROR`), false when
    /// the error is about this operation (a bad image, a failing build, a missing container).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable { .. } | EngineError::Connect { .. }
        )
    }
}

/// What the daemon says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineInfo {
    /// The engine's version (e.g. `20.10.24`).
    pub version: String,
    /// The API version in use after negotiation.
    pub api_version: String,
    /// Operating system and architecture, e.g. `linux/amd64`.
    pub platform: String,
}

/// An image build request. The context is a tar archive (see [`crate::sandbox::context`]).
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The build context as an uncompressed tar.
    pub context: Bytes,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    /// The tag to give the image.
    pub tag: String,
    /// Labels on the image (and on the builder's intermediate containers).
    pub labels: HashMap<String, String>,
    /// The network for RUN steps: `none` unless the policy allows the build stage a network.
    pub network: String,
    /// Build without the layer cache.
    pub nocache: bool,
}

/// One event from a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A chunk of the builder's output (usually one line, with its newline).
    Output(String),
    /// The built image's id (`sha256:…`).
    ImageId(String),
}

/// Which stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One chunk of container output: with timestamps on, one line prefixed by an RFC 3339 time.
#[derive(Debug, Clone)]
pub struct LogChunk {
    /// stdout or stderr.
    pub stream: LogStream,
    /// The bytes as Docker sent them.
    pub bytes: Bytes,
}

/// What to ask of `logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsRequest {
    /// Keep the stream open until the container exits.
    pub follow: bool,
    /// Prefix each line with an RFC 3339 nanosecond timestamp.
    pub timestamps: bool,
    /// Only lines at or after this UNIX time (seconds); 0 for all.
    pub since_unix: i64,
    /// Only the last N lines; `None` for all.
    pub tail: Option<u64>,
}

/// One resource sample of a running container.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StatsSample {
    /// CPU use in percent of one core (200.0 = two cores busy), from two daemon samples.
    pub cpu_percent: Option<f64>,
    /// Memory in use, bytes (cache included, as Docker reports it on cgroup v1).
    pub memory_bytes: Option<u64>,
    /// The highest memory use the kernel recorded for the container so far, bytes: the larger of
    /// Docker's `max_usage` (cgroup v1) and the cgroup's own counter read on the host
    /// ([`cgroup::memory_peak`]: `memory.peak` on v2, `memory.max_usage_in_bytes` on v1).
    /// Catches peaks between samples.
    pub memory_max_usage_bytes: Option<u64>,
    /// The memory limit, bytes.
    pub memory_limit_bytes: Option<u64>,
    /// Processes and threads now.
    pub pids: Option<u64>,
}

/// What `inspect` tells about a container's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerState {
    /// The container id.
    pub id: String,
    /// Docker's status word (`created`, `running`, `exited`, …).
    pub status: String,
    /// Still running.
    pub running: bool,
    /// The exit code (meaningful once not running).
    pub exit_code: Option<i64>,
    /// The kernel's OOM killer acted in the container's cgroup.
    pub oom_killed: bool,
    /// RFC 3339 start time, when started.
    pub started_at: Option<String>,
    /// RFC 3339 finish time, when finished.
    pub finished_at: Option<String>,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// The whole host configuration as created (for audits and tests).
    pub host_config: Option<HostConfig>,
    /// The user the process runs as.
    pub user: Option<String>,
    /// Whether networking was disabled at creation.
    pub network_disabled: bool,
    /// The networks the container is attached to, by name (empty for `NetworkMode=none`).
    pub networks: HashMap<String, NetworkEndpoint>,
}

/// A container's address on one network, as `inspect` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkEndpoint {
    /// The container's IPv4 address on the network, once started.
    pub ip: Option<String>,
    /// The network's gateway (the host's address on a bridge network).
    pub gateway: Option<String>,
    /// The DNS aliases the container answers to on the network.
    pub aliases: Vec<String>,
}

/// A network to create: always a local `bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    /// The network's name.
    pub name: String,
    /// Labels (`reprobox.run`, `reprobox.stage`), so cleanup finds it.
    pub labels: HashMap<String, String>,
    /// `Internal`: no route beyond the host (Docker adds no NAT and drops forwarding).
    pub internal: bool,
}

/// A network found by label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSummary {
    /// The network id.
    pub id: String,
    /// The network name.
    pub name: String,
    /// Whether it is internal.
    pub internal: bool,
    /// Labels.
    pub labels: HashMap<String, String>,
}

/// A container found by label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// The container id.
    pub id: String,
    /// Docker's state word.
    pub state: String,
    /// Labels.
    pub labels: HashMap<String, String>,
}

/// The narrow view of a container engine the sandbox needs. Streams are boxed and `'static` so
/// a monitor can own them; futures are `Send` so runs can go on other tasks.
pub trait ContainerEngine: Send + Sync {
    /// The engine's version and the API in use.
    fn version(&self) -> impl Future<Output = Result<EngineInfo, EngineError>> + Send;
    /// Whether an image with this reference exists locally.
    fn image_exists(&self, image: &str) -> impl Future<Output = Result<bool, EngineError>> + Send;
    /// Builds an image; the stream ends after `ImageId`, or with the first error.
    fn build_image(
        &self,
        request: BuildRequest,
    ) -> BoxStream<'static, Result<BuildEvent, EngineError>>;
    /// Creates a container; returns its id.
    fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Starts a created container.
    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Streams the container's stdout and stderr.
    fn logs(
        &self,
        id: &str,
        request: LogsRequest,
    ) -> BoxStream<'static, Result<LogChunk, EngineError>>;
    /// Attaches to a created container's stdout and stderr as they are written (no earlier
    /// output, no log store in between), for counting its output exactly. Attach before the
    /// start to see every byte; the stream ends when the container stops. An engine that cannot
    /// attach returns `Ok(None)`, and the caller falls back to the log's own count.
    fn attach_output(
        &self,
        id: &str,
    ) -> impl Future<
        Output = Result<Option<BoxStream<'static, Result<LogChunk, EngineError>>>, EngineError>,
    > + Send {
        let _ = id;
        async { Ok(None) }
    }
    /// One resource sample (takes about a second: the daemon measures CPU over two reads).
    fn stats(&self, id: &str) -> impl Future<Output = Result<StatsSample, EngineError>> + Send;
    /// Waits until the container stops; returns its exit code.
    fn wait_container(&self, id: &str) -> impl Future<Output = Result<i64, EngineError>> + Send;
    /// The container's state and configuration.
    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerState, EngineError>> + Send;
    /// Sends a signal (`SIGTERM`, `SIGKILL`).
    fn kill_container(
        &self,
        id: &str,
        signal: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Removes a container (forced, with its anonymous volumes). A missing one is not an error.
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Containers (running or not) carrying `label` (`key=value` or `key`).
    fn list_containers(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>, EngineError>> + Send;
    /// Creates a network; returns its id. Containers join it through the create body's
    /// `NetworkingConfig` (see [`crate::sandbox::container::NetworkAttachment`]).
    fn create_network(
        &self,
        request: NetworkRequest,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;
    /// Removes a network (by id or name). A missing one is not an error.
    fn remove_network(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Networks carrying `label` (`key=value` or `key`).
    fn list_networks(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<NetworkSummary>, EngineError>> + Send;
    /// Removes every image carrying `label`; returns the ids removed.
    fn remove_images(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<String>, EngineError>> + Send;
}

/// How a run reaches its container engine, connected only when a stage needs one (a run decided
/// at `check` never does). [`DockerHost`] connects to the Docker Engine; a [`FakeEngine`] is its
/// own host, for tests of every stage without a daemon.
pub trait Connect: Send + Sync {
    /// The engine a connection gives.
    type Engine: ContainerEngine + Clone + 'static;
    /// Connects (or fails in our own words, with a hint).
    fn connect(&self) -> impl Future<Output = Result<Self::Engine, EngineError>> + Send;
}

/// The Docker Engine of this host, reached as `DOCKER_HOST` or the local socket says.
#[derive(Debug, Clone, Copy, Default)]
pub struct DockerHost;

impl Connect for DockerHost {
    type Engine = DockerEngine;
    fn connect(&self) -> impl Future<Output = Result<DockerEngine, EngineError>> + Send {
        DockerEngine::connect()
    }
}
