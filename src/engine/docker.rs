//! [`ContainerEngine`] over the Docker Engine API with bollard 0.21.
//!
//! bollard defaults to API 1.53; the engines we meet (Docker 20.10 here) speak older ones, so
//! [`DockerEngine::connect`] always negotiates the version down. The bollard pitfalls from
//! `docs/references.md` K§1.7 are handled here once: `build_image` always gets
//! `Some(body_full(..))`, a non-zero exit from `wait_container` arrives as
//! `Err(DockerContainerWaitError)` and is turned back into an exit code, build errors arrive
//! mid-stream, logs need stdout and stderr asked for, and one-shot stats are avoided because their
//! `precpu_stats` is empty.

use std::collections::HashMap;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, BuildImageOptionsBuilder, InspectContainerOptions,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, StatsOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{Docker, body_full};
use futures_util::stream::{BoxStream, StreamExt};

use super::{
    BuildEvent, BuildRequest, ContainerCreateBody, ContainerEngine, ContainerState,
    ContainerSummary, EngineError, EngineInfo, LogChunk, LogStream, LogsRequest, MIN_API_VERSION,
    NetworkEndpoint, NetworkRequest, NetworkSummary, StatsSample,
};

/// The Docker Engine, reached through bollard.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
}

/// Whether a bollard error means the daemon itself is not there.
fn unreachable(err: &BollardError) -> bool {
    match err {
        BollardError::SocketNotFoundError(_) | BollardError::RequestTimeoutError => true,
        BollardError::HyperLegacyError { err } => err.is_connect(),
        BollardError::IOError { err } => matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::NotFound
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// Wraps a bollard error: "engine unreachable" for connection failures, `other` otherwise.
fn wrap(
    operation: impl FnOnce() -> String,
    err: BollardError,
    other: impl FnOnce(BollardError) -> EngineError,
) -> EngineError {
    if unreachable(&err) {
        EngineError::Unreachable {
            operation: operation(),
            source: err,
        }
    } else {
        other(err)
    }
}

fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Compares dotted API versions (`1.41` < `1.9` is false).
fn api_at_least(found: &str, want: &str) -> bool {
    let parse = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(found) >= parse(want)
}

impl DockerEngine {
    /// Connects with the local defaults (`DOCKER_HOST` or `/var/run/docker.sock`), negotiates the
    /// API version down to the daemon's, and checks it is at least [`MIN_API_VERSION`].
    pub async fn connect() -> Result<Self, EngineError> {
        let docker = Docker::connect_with_local_defaults().map_err(|source| {
            if unreachable(&source) {
                EngineError::Unreachable {
                    operation: "connect".to_owned(),
                    source,
                }
            } else {
                EngineError::Connect { source }
            }
        })?;
        // Requests other than streams are bounded by this; streams (logs, wait) are not.
        let docker = docker.with_timeout(Duration::from_secs(120));
        let docker = docker.negotiate_version().await.map_err(|e| {
            wrap(
                || "negotiate the API version".to_owned(),
                e,
                |source| EngineError::Version { source },
            )
        })?;
        let engine = DockerEngine { docker };
        let info = engine.version().await?;
        if !api_at_least(&info.api_version, MIN_API_VERSION) {
            return Err(EngineError::TooOld {
                found: info.api_version,
            });
        }
        Ok(engine)
    }

    /// The bollard client, for callers that need an operation this trait does not cover.
    pub fn client(&self) -> &Docker {
        &self.docker
    }
}

fn label_filter(label: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![label.to_owned()])])
}

/// CPU percent from a stats response, the way `docker stats` computes it.
fn cpu_percent(s: &bollard::models::ContainerStatsResponse) -> Option<f64> {
    let cpu = s.cpu_stats.as_ref()?;
    let pre = s.precpu_stats.as_ref()?;
    let total = cpu.cpu_usage.as_ref()?.total_usage?;
    let pre_total = pre.cpu_usage.as_ref()?.total_usage?;
    let system = cpu.system_cpu_usage?;
    let pre_system = pre.system_cpu_usage?;
    let cpus = f64::from(cpu.online_cpus.unwrap_or(1).max(1));
    let dt = system.checked_sub(pre_system)?;
    if dt == 0 || pre_system == 0 {
        return None;
    }
    Some(total.saturating_sub(pre_total) as f64 / dt as f64 * cpus * 100.0)
}

impl ContainerEngine for DockerEngine {
    async fn version(&self) -> Result<EngineInfo, EngineError> {
        let v = self.docker.version().await.map_err(|e| {
            wrap(
                || "read the engine version".to_owned(),
                e,
                |source| EngineError::Version { source },
            )
        })?;
        Ok(EngineInfo {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            platform: format!(
                "{}/{}",
                v.os.unwrap_or_default(),
                v.arch.unwrap_or_default()
            ),
        })
    }

    async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(wrap(
                || format!("inspect image `{image}`"),
                e,
                |source| EngineError::InspectImage {
                    image: image.to_owned(),
                    source,
                },
            )),
        }
    }

    fn build_image(
        &self,
        request: BuildRequest,
    ) -> BoxStream<'static, Result<BuildEvent, EngineError>> {
        let opts = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .nocache(request.nocache)
            .pull("false")
            .networkmode(&request.network)
            .labels(&request.labels)
            .build();
        let tag = request.tag.clone();
        // bollard's build stream borrows the client, so a task owning a clone drives it and
        // hands items over a small channel. Dropping the receiver ends the task and drops the
        // request, which makes the daemon cancel the build.
        let docker = self.docker.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            // Pitfall (docs/references.md K§1.7.2): a None body panics inside bollard; always pass
            // the tar.
            let mut stream = docker.build_image(opts, None, Some(body_full(request.context)));
            while let Some(item) = stream.next().await {
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        stream
            .flat_map(move |item| {
                let events: Vec<Result<BuildEvent, EngineError>> = match item {
                    Ok(info) => {
                        let mut out = Vec::new();
                        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                            out.push(Err(EngineError::Build {
                                tag: tag.clone(),
                                message: detail.trim().to_owned(),
                            }));
                        }
                        if let Some(s) = info.stream {
                            out.push(Ok(BuildEvent::Output(s)));
                        }
                        if let Some(s) = info.status {
                            out.push(Ok(BuildEvent::Output(format!("{s}\n"))));
                        }
                        if let Some(id) = info.aux.and_then(|a| a.id) {
                            out.push(Ok(BuildEvent::ImageId(id)));
                        }
                        out
                    }
                    // A build failure arrives mid-stream as DockerStreamError (docs/references.md
                    // K§1.7.3).
                    Err(BollardError::DockerStreamError { error }) => {
                        vec![Err(EngineError::Build {
                            tag: tag.clone(),
                            message: error.trim().to_owned(),
                        })]
                    }
                    Err(e) => {
                        let tag2 = tag.clone();
                        vec![Err(wrap(
                            || format!("build image `{tag2}`"),
                            e,
                            |source| EngineError::Build {
                                tag: tag2.clone(),
                                message: source.to_string(),
                            },
                        ))]
                    }
                };
                futures_util::stream::iter(events)
            })
            .boxed()
    }

    async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let image = body.image.clone().unwrap_or_default();
        let opts = bollard::query_parameters::CreateContainerOptionsBuilder::default()
            .name(name)
            .build();
        let resp = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                wrap(
                    || format!("create container `{name}`"),
                    e,
                    |source| EngineError::Create {
                        name: name.to_owned(),
                        image,
                        source,
                    },
                )
            })?;
        Ok(resp.id)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.start_container(id, None).await.map_err(|e| {
            if is_not_found(&e) {
                return EngineError::NoSuchContainer { id: id.to_owned() };
            }
            wrap(
                || format!("start container {id}"),
                e,
                |source| EngineError::Start {
                    id: id.to_owned(),
                    source,
                },
            )
        })
    }

    async fn attach_output(
        &self,
        id: &str,
    ) -> Result<Option<BoxStream<'static, Result<LogChunk, EngineError>>>, EngineError> {
        // stream=true, logs=false: only what is written from now on, straight from the
        // container's pipes (the daemon's log store and its rotation are not in between).
        let opts = AttachContainerOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let attached = self
            .docker
            .attach_container(id, Some(opts))
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    return EngineError::NoSuchContainer { id: id.to_owned() };
                }
                wrap(
                    || format!("attach to container {id}"),
                    e,
                    |source| EngineError::Attach {
                        id: id.to_owned(),
                        source,
                    },
                )
            })?;
        let id = id.to_owned();
        let output = attached
            .output
            .filter_map(move |item| {
                let out = match item {
                    Ok(bollard::container::LogOutput::StdOut { message })
                    | Ok(bollard::container::LogOutput::Console { message }) => {
                        Some(Ok(LogChunk {
                            stream: LogStream::Stdout,
                            bytes: message,
                        }))
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => Some(Ok(LogChunk {
                        stream: LogStream::Stderr,
                        bytes: message,
                    })),
                    Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                    Err(source) => Some(Err(EngineError::Attach {
                        id: id.clone(),
                        source,
                    })),
                };
                std::future::ready(out)
            })
            .boxed();
        Ok(Some(output))
    }

    fn logs(
        &self,
        id: &str,
        request: LogsRequest,
    ) -> BoxStream<'static, Result<LogChunk, EngineError>> {
        let mut b = LogsOptionsBuilder::default()
            .follow(request.follow)
            .stdout(true)
            .stderr(true)
            .timestamps(request.timestamps)
            .since(i32::try_from(request.since_unix).unwrap_or(i32::MAX));
        let tail = request.tail.map(|n| n.to_string());
        if let Some(t) = &tail {
            b = b.tail(t);
        }
        let id = id.to_owned();
        self.docker
            .logs(&id, Some(b.build()))
            .filter_map(move |item| {
                let out = match item {
                    Ok(bollard::container::LogOutput::StdOut { message })
                    | Ok(bollard::container::LogOutput::Console { message }) => {
                        Some(Ok(LogChunk {
                            stream: LogStream::Stdout,
                            bytes: message,
                        }))
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => Some(Ok(LogChunk {
                        stream: LogStream::Stderr,
                        bytes: message,
                    })),
                    Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                    Err(e) if is_not_found(&e) => {
                        Some(Err(EngineError::NoSuchContainer { id: id.clone() }))
                    }
                    Err(e) => Some(Err(wrap(
                        || format!("read logs of {id}"),
                        e,
                        |source| EngineError::Logs {
                            id: id.clone(),
                            source,
                        },
                    ))),
                };
                std::future::ready(out)
            })
            .boxed()
    }

    async fn stats(&self, id: &str) -> Result<StatsSample, EngineError> {
        // stream=false without one_shot makes the daemon read twice, so precpu_stats is filled
        // and CPU percent can be computed (docs/references.md K§1.7.7).
        let opts = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(false)
            .build();
        let mut s = self.docker.stats(id, Some(opts));
        match s.next().await {
            Some(Ok(r)) => Ok(StatsSample {
                cpu_percent: cpu_percent(&r),
                memory_bytes: r.memory_stats.as_ref().and_then(|m| m.usage),
                memory_max_usage_bytes: r.memory_stats.as_ref().and_then(|m| m.max_usage).max(
                    super::cgroup::memory_peak(
                        std::path::Path::new(super::cgroup::CGROUP_ROOT),
                        r.id.as_deref().unwrap_or(id),
                    ),
                ),
                memory_limit_bytes: r.memory_stats.as_ref().and_then(|m| m.limit),
                pids: r.pids_stats.as_ref().and_then(|p| p.current),
            }),
            Some(Err(e)) if is_not_found(&e) => {
                Err(EngineError::NoSuchContainer { id: id.to_owned() })
            }
            Some(Err(e)) => Err(wrap(
                || format!("read stats of {id}"),
                e,
                |source| EngineError::Stats {
                    id: id.to_owned(),
                    source,
                },
            )),
            None => Ok(StatsSample::default()),
        }
    }

    async fn wait_container(&self, id: &str) -> Result<i64, EngineError> {
        let opts = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut w = self.docker.wait_container(id, Some(opts));
        match w.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // Pitfall (docs/references.md K§1.7.1): a non-zero exit is an Err carrying the code.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) if is_not_found(&e) => {
                Err(EngineError::NoSuchContainer { id: id.to_owned() })
            }
            Some(Err(e)) => Err(wrap(
                || format!("wait for {id}"),
                e,
                |source| EngineError::Wait {
                    id: id.to_owned(),
                    source,
                },
            )),
            None => {
                // The stream closed without a status: read it from inspect instead.
                let state = self.inspect_container(id).await?;
                Ok(state.exit_code.unwrap_or(-1))
            }
        }
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState, EngineError> {
        let r = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    return EngineError::NoSuchContainer { id: id.to_owned() };
                }
                wrap(
                    || format!("inspect container {id}"),
                    e,
                    |source| EngineError::Inspect {
                        id: id.to_owned(),
                        source,
                    },
                )
            })?;
        let state = r.state.unwrap_or_default();
        let config = r.config.unwrap_or_default();
        let networks = r
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, ep)| {
                let endpoint = NetworkEndpoint {
                    // The daemon reports "" for an address not assigned (yet).
                    ip: ep.ip_address.filter(|a| !a.is_empty()),
                    gateway: ep.gateway.filter(|g| !g.is_empty()),
                    aliases: ep.aliases.unwrap_or_default(),
                };
                (name, endpoint)
            })
            .collect();
        Ok(ContainerState {
            id: r.id.unwrap_or_else(|| id.to_owned()),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            // Docker reports "0001-01-01T00:00:00Z" for times that have not happened yet.
            started_at: state.started_at.filter(|t| !t.starts_with("0001-")),
            finished_at: state.finished_at.filter(|t| !t.starts_with("0001-")),
            labels: config.labels.unwrap_or_default(),
            host_config: r.host_config,
            user: config.user,
            network_disabled: config.network_disabled.unwrap_or(false),
            networks,
        })
    }

    async fn kill_container(&self, id: &str, signal: &str) -> Result<(), EngineError> {
        let opts = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker
            .kill_container(id, Some(opts))
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    return EngineError::NoSuchContainer { id: id.to_owned() };
                }
                wrap(
                    || format!("send {signal} to {id}"),
                    e,
                    |source| EngineError::Kill {
                        id: id.to_owned(),
                        signal: signal.to_owned(),
                        source,
                    },
                )
            })
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: a removal is already in progress; the daemon finishes it.
            Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(wrap(
                || format!("remove container {id}"),
                e,
                |source| EngineError::RemoveContainer {
                    id: id.to_owned(),
                    source,
                },
            )),
        }
    }

    async fn list_containers(&self, label: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filter(label))
            .build();
        let list = self.docker.list_containers(Some(opts)).await.map_err(|e| {
            wrap(
                || format!("list containers labelled {label}"),
                e,
                |source| EngineError::ListContainers {
                    label: label.to_owned(),
                    source,
                },
            )
        })?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
            })
            .collect())
    }

    async fn create_network(&self, request: NetworkRequest) -> Result<String, EngineError> {
        let name = request.name.clone();
        let config = bollard::models::NetworkCreateRequest {
            name: request.name,
            driver: Some("bridge".to_owned()),
            internal: Some(request.internal),
            attachable: Some(false),
            labels: Some(request.labels),
            ..Default::default()
        };
        let resp = self.docker.create_network(config).await.map_err(|e| {
            wrap(
                || format!("create network `{name}`"),
                e,
                |source| EngineError::CreateNetwork {
                    name: name.clone(),
                    source,
                },
            )
        })?;
        Ok(resp.id)
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(id).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(wrap(
                || format!("remove network {id}"),
                e,
                |source| EngineError::RemoveNetwork {
                    id: id.to_owned(),
                    source,
                },
            )),
        }
    }

    async fn list_networks(&self, label: &str) -> Result<Vec<NetworkSummary>, EngineError> {
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&label_filter(label))
            .build();
        let list = self.docker.list_networks(Some(opts)).await.map_err(|e| {
            wrap(
                || format!("list networks labelled {label}"),
                e,
                |source| EngineError::ListNetworks {
                    label: label.to_owned(),
                    source,
                },
            )
        })?;
        Ok(list
            .into_iter()
            .map(|n| NetworkSummary {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                internal: n.internal.unwrap_or(false),
                labels: n.labels.unwrap_or_default(),
            })
            .collect())
    }

    async fn remove_images(&self, label: &str) -> Result<Vec<String>, EngineError> {
        let opts = ListImagesOptionsBuilder::default()
            .all(true)
            .filters(&label_filter(label))
            .build();
        let images = self.docker.list_images(Some(opts)).await.map_err(|e| {
            wrap(
                || format!("list images labelled {label}"),
                e,
                |source| EngineError::ListImages {
                    label: label.to_owned(),
                    source,
                },
            )
        })?;
        let mut removed = Vec::new();
        for image in images {
            let opts = RemoveImageOptionsBuilder::default()
                .force(true)
                .noprune(false)
                .build();
            match self.docker.remove_image(&image.id, Some(opts), None).await {
                Ok(_) => removed.push(image.id),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    let id = image.id.clone();
                    return Err(wrap(
                        || format!("remove image {id}"),
                        e,
                        |source| EngineError::RemoveImage {
                            image: id.clone(),
                            source,
                        },
                    ));
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(api_at_least("1.41", "1.41"));
        assert!(api_at_least("1.53", "1.41"));
        assert!(!api_at_least("1.9", "1.41"));
        assert!(!api_at_least("1.40", "1.41"));
    }

    #[test]
    fn unreachable_errors_are_told_apart() {
        let missing = BollardError::SocketNotFoundError("/var/run/docker.sock".into());
        let e = wrap(
            || "ping".into(),
            missing,
            |source| EngineError::Version { source },
        );
        assert!(e.is_unreachable());
        assert!(
            e.to_string().contains("is the Docker Engine running?"),
            "{e}"
        );
        let server = BollardError::DockerResponseServerError {
            status_code: 500,
            message: "boom".into(),
        };
        let e = wrap(
            || "start".into(),
            server,
            |source| EngineError::Start {
                id: "abc".into(),
                source,
            },
        );
        assert!(!e.is_unreachable());
        assert!(
            e.to_string().starts_with("cannot start container abc: "),
            "{e}"
        );
    }
}
