//! An evaluation against an HTTP model server (the NeurIPS 2023 `/process` + `/tokenize`
//! contract): reprobox creates an internal Docker network for the run, starts the model server
//! on it under the alias [`SERVER_ALIAS`], waits until the server answers its readiness request,
//! runs the evaluator container on the same network, then removes the server and the network.
//!
//! The network is `Internal`: Docker gives it no NAT and drops forwarding to and from it, so the
//! two containers reach each other and nothing beyond the host (docs/sandbox.md, "The
//! evaluation network"). Both containers are otherwise the sandbox of [`super::create_body`].
//!
//! Readiness is polled from the host, at the server's address on the network, from a socket
//! bound to the network's gateway address. The bind is the check that the host really is on
//! that bridge: with a remote or rootless daemon, or a bridge without a host address, the
//! container's address may route somewhere else entirely (measured: a stranger answered), so
//! the bind fails and the evaluation is an infrastructure error rather than a wrong answer.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::SandboxError;
use super::container::{LABEL_RUN, LABEL_STAGE, NetworkAttachment, RunSpec};
use super::run::{AbortOnDrop, Deadline, RunOutcome, RunPaths, attach, run_container_on};
use crate::engine::{ContainerEngine, EngineError, NetworkRequest};

/// The name the model server answers to on the evaluation network: the evaluator reaches it at
/// `http://model:<port>`.
pub const SERVER_ALIAS: &str = "model";

/// How often readiness is asked at most, and how long one request may take.
const POLL_EVERY: Duration = Duration::from_millis(500);
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// The readiness request: a 2xx answer means ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `GET` or `POST`.
    pub method: String,
    /// The request path (`/process`); validated by the policy (no spaces or control characters).
    pub path: String,
    /// The body, sent as `application/json` (POST).
    pub body: Option<String>,
    /// How long the server may take, from its container's start.
    pub timeout: Duration,
}

/// A server, its readiness request and the evaluator that talks to it.
#[derive(Debug, Clone)]
pub struct ServeSpec {
    /// The model server's container (the submission's image; stage e.g. `eval-server`).
    pub server: RunSpec,
    /// Its log (`logs/server.log`) and telemetry.
    pub server_paths: RunPaths,
    /// The port it listens on.
    pub port: u16,
    /// When it counts as ready.
    pub readiness: Readiness,
    /// The evaluator's container (stage `eval` or `eval-submitted`).
    pub client: RunSpec,
    /// Its log and telemetry.
    pub client_paths: RunPaths,
    /// The evaluator's wall clock, from its start.
    pub client_limit: Duration,
}

impl ServeSpec {
    /// The network's name: `reprobox-<run>-<client stage>-net`.
    pub fn network_name(&self) -> String {
        format!("reprobox-{}-{}-net", self.client.run_id, self.client.stage)
    }

    /// The URL the evaluator is given (`REPROBOX_MODEL_URL`).
    pub fn model_url(port: u16) -> String {
        format!("http://{SERVER_ALIAS}:{port}")
    }
}

/// What came of it.
#[derive(Debug, Clone)]
pub enum Served {
    /// The server became ready and the evaluator ran (whatever its outcome).
    Evaluated {
        /// The evaluator's outcome.
        client: Box<RunOutcome>,
        /// Seconds from the server's start until it answered.
        ready_after_s: f64,
    },
    /// The server did not become ready: it stopped first, or did not answer in time. The
    /// evaluator never ran.
    NotReady {
        /// What happened, in words (without the log tail, which is in `server`).
        reason: String,
    },
}

/// The result of [`run_with_server`].
#[derive(Debug, Clone)]
pub struct ServedOutcome {
    /// Ready and evaluated, or not ready.
    pub served: Served,
    /// The server's run: log summary (and tail), peaks. Its status is how it ended, usually
    /// killed by reprobox once the evaluator was done.
    pub server: Option<RunOutcome>,
    /// The network's name.
    pub network: String,
    /// Removing the server or the network afterwards failed (the run's final cleanup by label
    /// tries again).
    pub cleanup_error: Option<String>,
}

/// Errors that are not about the submission.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The network could not be created.
    #[error("cannot set up the evaluation network `{network}`: {source}")]
    Network {
        /// Its name.
        network: String,
        /// Why.
        source: SandboxError,
    },
    /// The host has no address on the network, so the server's readiness cannot be asked.
    #[error(
        "the model server's network `{network}` is not reachable from this host ({detail}); readiness is polled from the host and needs a local, rootful Docker Engine (hint: run reprobox on the Docker host itself, see docs/sandbox.md, \"The evaluation network\")"
    )]
    HostNotOnNetwork {
        /// The network's name.
        network: String,
        /// What was found.
        detail: String,
    },
    /// Creating, starting or watching the server failed.
    #[error("the model server: {0}")]
    Server(SandboxError),
    /// Running the evaluator failed.
    #[error(transparent)]
    Client(SandboxError),
}

impl ServeError {
    /// True when the failure says nothing about the submission: the network, the engine, the
    /// host, or an interrupt. A server that cannot be created or started (a bad command, say)
    /// is about the submission's image.
    pub fn is_infra(&self) -> bool {
        match self {
            ServeError::Network { .. } | ServeError::HostNotOnNetwork { .. } => true,
            ServeError::Server(e) | ServeError::Client(e) => {
                e.is_infra() || matches!(e, SandboxError::Interrupted { .. })
            }
        }
    }
}

/// Runs the evaluator against a model server on a fresh internal network; see the module
/// docs. The server and the network are removed on every path that returns; if the future is
/// dropped (Ctrl-C in the runner), `cleanup_by_label` finds them by the run's label.
pub async fn run_with_server<E: ContainerEngine + Clone + 'static>(
    engine: &E,
    spec: &ServeSpec,
) -> Result<ServedOutcome, ServeError> {
    let network = spec.network_name();
    let net_err = |source: SandboxError| ServeError::Network {
        network: network.clone(),
        source,
    };
    // A network of the same name is a dead runner's (its containers were removed first).
    engine
        .remove_network(&network)
        .await
        .map_err(|e| net_err(e.into()))?;
    let labels = [
        (LABEL_RUN.to_owned(), spec.client.run_id.clone()),
        (LABEL_STAGE.to_owned(), spec.client.stage.clone()),
    ]
    .into_iter()
    .collect();
    engine
        .create_network(NetworkRequest {
            name: network.clone(),
            labels,
            internal: true,
        })
        .await
        .map_err(|e| net_err(e.into()))?;

    let mut server_id = None;
    let result = serve(engine, spec, &network, &mut server_id).await;

    let mut cleanup = Vec::new();
    if let Some(id) = &server_id
        && let Err(e) = engine.remove_container(id).await
    {
        cleanup.push(e.to_string());
    }
    if let Err(e) = engine.remove_network(&network).await {
        cleanup.push(e.to_string());
    }
    let cleanup_error = (!cleanup.is_empty()).then(|| cleanup.join("; "));
    result.map(|(served, server)| ServedOutcome {
        served,
        server,
        network,
        cleanup_error,
    })
}

async fn serve<E: ContainerEngine + Clone + 'static>(
    engine: &E,
    spec: &ServeSpec,
    network: &str,
    server_id: &mut Option<String>,
) -> Result<(Served, Option<RunOutcome>), ServeError> {
    let attach_server = NetworkAttachment {
        network: network.to_owned(),
        aliases: vec![SERVER_ALIAS.to_owned()],
    };
    let id = super::run::start_container_on(engine, &spec.server, Some(&attach_server))
        .await
        .map_err(ServeError::Server)?;
    *server_id = Some(id.clone());
    let started = Instant::now();

    // The server's log and telemetry are followed the whole time, with a deadline that outlives
    // readiness and the evaluation: reprobox stops it before then.
    let watcher = {
        let engine = engine.clone();
        let id = id.clone();
        let profile = spec.server.profile.clone();
        let paths = spec.server_paths.clone();
        let limit = spec.readiness.timeout + spec.client_limit + profile.grace_period;
        AbortOnDrop(tokio::spawn(async move {
            attach(
                &engine,
                &id,
                &profile,
                &paths,
                Deadline::AfterStart(limit),
                None,
            )
            .await
        }))
    };
    let stop_server = |watcher: AbortOnDrop<Result<RunOutcome, SandboxError>>| {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            match engine.kill_container(&id, "SIGKILL").await {
                Ok(()) | Err(EngineError::NoSuchContainer { .. }) => {}
                Err(e) => return Err(ServeError::Server(e.into())),
            }
            finished(watcher).await
        }
    };

    let state = engine
        .inspect_container(&id)
        .await
        .map_err(|e| ServeError::Server(e.into()))?;
    let endpoint = state.networks.get(network).cloned().unwrap_or_default();
    let (Some(ip), Some(gateway)) = (
        endpoint
            .ip
            .as_deref()
            .and_then(|a| a.parse::<IpAddr>().ok()),
        endpoint
            .gateway
            .as_deref()
            .and_then(|g| g.parse::<IpAddr>().ok()),
    ) else {
        // A server that has already exited has no address any more: that is its own failure,
        // not the host's (the same as an exit while readiness is polled, below).
        if !state.running {
            let outcome = finished(watcher).await?;
            let reason = exited_before_ready(&outcome, &spec.readiness, "none: it exited first");
            return Ok((Served::NotReady { reason }, Some(outcome)));
        }
        let _ = stop_server(watcher).await;
        return Err(ServeError::HostNotOnNetwork {
            network: network.to_owned(),
            detail: format!(
                "the server has address {:?} and gateway {:?} on it",
                endpoint.ip, endpoint.gateway
            ),
        });
    };
    if let Err(e) = bind_socket(gateway) {
        let _ = stop_server(watcher).await;
        return Err(ServeError::HostNotOnNetwork {
            network: network.to_owned(),
            detail: format!("the gateway {gateway} is not an address of this host: {e}"),
        });
    }
    let target = SocketAddr::new(ip, spec.port);
    let host_header = format!("{SERVER_ALIAS}:{}", spec.port);
    let r = &spec.readiness;
    let mut last = String::from("no answer yet");
    let ready_after = loop {
        if watcher.0.is_finished() {
            let outcome = finished(watcher).await?;
            let reason = exited_before_ready(&outcome, r, &last);
            return Ok((Served::NotReady { reason }, Some(outcome)));
        }
        let elapsed = started.elapsed();
        if elapsed >= r.timeout {
            let outcome = stop_server(watcher).await?;
            let reason = format!(
                "the model server did not answer {} {} with a 2xx status within its readiness timeout of {} s (last attempt: {last})",
                r.method,
                r.path,
                r.timeout.as_secs_f64()
            );
            return Ok((Served::NotReady { reason }, Some(outcome)));
        }
        let budget = PROBE_LIMIT.min(r.timeout - elapsed);
        match probe(gateway, target, &host_header, r, budget).await {
            Ok(code) if (200..300).contains(&code) => break started.elapsed(),
            Ok(code) => last = format!("HTTP {code}"),
            Err(e) => last = e,
        }
        tokio::time::sleep(POLL_EVERY.min(r.timeout.saturating_sub(started.elapsed()))).await;
    };

    let attach_client = NetworkAttachment {
        network: network.to_owned(),
        aliases: Vec::new(),
    };
    let client = run_container_on(
        engine,
        &spec.client,
        &spec.client_paths,
        Deadline::AfterStart(spec.client_limit),
        Some(&attach_client),
    )
    .await;
    let server = stop_server(watcher).await;
    let client = client.map_err(ServeError::Client)?;
    let server = server?;
    Ok((
        Served::Evaluated {
            client: Box::new(client),
            ready_after_s: ready_after.as_secs_f64(),
        },
        Some(server),
    ))
}

/// The server watcher's result once it has ended.
async fn finished(
    mut watcher: AbortOnDrop<Result<RunOutcome, SandboxError>>,
) -> Result<RunOutcome, ServeError> {
    match (&mut watcher.0).await {
        Ok(r) => r.map_err(ServeError::Server),
        Err(join) => Err(ServeError::Server(SandboxError::Write {
            path: "logs/server.log".into(),
            source: std::io::Error::other(join.to_string()),
        })),
    }
}

fn bind_socket(local: IpAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = match local {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(local, 0))?;
    Ok(socket)
}

/// Why a server that ended before it was ready is not ready.
fn exited_before_ready(outcome: &RunOutcome, r: &Readiness, last: &str) -> String {
    let how = match outcome.status {
        super::RunStatus::Failed { exit_code } => format!("exited with code {exit_code}"),
        super::RunStatus::Succeeded => "exited with code 0".to_owned(),
        super::RunStatus::Oom => "ran out of memory".to_owned(),
        super::RunStatus::Timeout => "ran past its deadline".to_owned(),
    };
    format!(
        "the model server {how} before it answered {} {} (last attempt: {last})",
        r.method, r.path
    )
}

/// One readiness request from `local` (the gateway: the host's address on the bridge) to the
/// server; the status code, or what went wrong in words.
async fn probe(
    local: IpAddr,
    target: SocketAddr,
    host: &str,
    r: &Readiness,
    limit: Duration,
) -> Result<u16, String> {
    let attempt = async {
        let socket = bind_socket(local).map_err(|e| format!("bind {local}: {e}"))?;
        let mut stream = socket
            .connect(target)
            .await
            .map_err(|e| format!("connect {target}: {e}"))?;
        let body = r.body.as_deref().unwrap_or("");
        let mut req = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reprobox/{}\r\nAccept: */*\r\nConnection: close\r\n",
            r.method,
            r.path,
            env!("CARGO_PKG_VERSION")
        );
        if r.body.is_some() || r.method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        // Only the status line matters; read until it is complete (bounded).
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 1024];
        while !buf.contains(&b'\n') && buf.len() < 8192 {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        parse_status(&buf).ok_or_else(|| {
            let line = String::from_utf8_lossy(&buf);
            let line = line.lines().next().unwrap_or("").trim();
            if line.is_empty() {
                "the connection closed without an answer".to_owned()
            } else {
                format!(
                    "not an HTTP answer: {:?}",
                    line.chars().take(80).collect::<String>()
                )
            }
        })
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", limit.as_secs_f64())),
    }
}

/// The status code of an HTTP/1.x status line.
fn parse_status(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_parsed_strictly() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\nx"),
            Some(503)
        );
        assert_eq!(parse_status(b"HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2000 x\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[tokio::test]
    async fn a_probe_reads_the_status_of_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("{\"prompt\": \"x\"}") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let r = Readiness {
            method: "POST".into(),
            path: "/process".into(),
            body: Some("{\"prompt\": \"x\"}".into()),
            timeout: Duration::from_secs(5),
        };
        let code = probe(
            "127.0.0.1".parse().unwrap(),
            addr,
            "model:8080",
            &r,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(code, Ok(200));
        let req = server.await.unwrap();
        assert!(
            req.starts_with("POST /process HTTP/1.1\r\nHost: model:8080\r\n"),
            "{req}"
        );
        assert!(req.contains("Content-Length: 15\r\n"), "{req}");
        // Nothing listening: refused, in words.
        drop(req);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let e = probe(
            "127.0.0.1".parse().unwrap(),
            gone,
            "model:1",
            &r,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(e.starts_with("connect "), "{e}");
        // An address that is not the host's cannot be bound.
        assert!(bind_socket("198.51.100.77".parse().unwrap()).is_err());
    }
}
