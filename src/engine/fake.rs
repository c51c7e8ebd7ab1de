//! A recording, scriptable [`ContainerEngine`] for tests of every stage without a daemon.
//!
//! What each container does is scripted by its `reprobox.stage` label (`train`, `eval`,
//! `eval-submitted`, …): the lines it prints, the files it writes under the host directory bound
//! at `/out`, its exit code, an OOM kill, or running until it is killed (for deadline tests).
//! Builds are scripted too: the builder's output and either an image id or an error. Every call
//! is recorded ([`FakeEngine::calls`]) so a test can assert what a stage asked of the engine.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::watch;

use super::{
    BuildEvent, BuildRequest, Connect, ContainerCreateBody, ContainerEngine, ContainerState,
    ContainerSummary, EngineError, EngineInfo, LogChunk, LogStream, LogsRequest, NetworkRequest,
    NetworkSummary, StatsSample,
};

/// What a build does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildScript {
    /// Output lines, each sent as one chunk with its newline.
    pub output: Vec<String>,
    /// `Ok(image id)`, or the builder's error message.
    pub result: Result<String, String>,
}

impl Default for BuildScript {
    fn default() -> Self {
        BuildScript {
            output: vec!["Step 1/1 : FROM base".into()],
            result: Ok(format!("sha256:{}", "f".repeat(64))),
        }
    }
}

/// What a container of one stage does once started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerScript {
    /// Lines it prints (stdout), in order.
    pub lines: Vec<String>,
    /// Files it writes, relative to the host directory bound at `/out`.
    pub writes: Vec<(PathBuf, Vec<u8>)>,
    /// Its exit code when it ends by itself.
    pub exit_code: i64,
    /// The kernel's OOM killer ends it (exit 137, `oom_killed`).
    pub oom: bool,
    /// It runs until killed (SIGTERM: exit 143, SIGKILL: 137).
    pub runs_until_killed: bool,
    /// The memory its stats samples report.
    pub memory_bytes: u64,
}

/// A call the pipeline made, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineCall {
    Version,
    ImageExists(String),
    Build { tag: String, network: String },
    Create { name: String, stage: String },
    Start(String),
    Logs(String),
    Stats(String),
    Wait(String),
    Inspect(String),
    Kill { id: String, signal: String },
    Remove(String),
    ListContainers(String),
    CreateNetwork(String),
    RemoveNetwork(String),
    ListNetworks(String),
    RemoveImages(String),
}

#[derive(Debug)]
struct Container {
    name: String,
    body: ContainerCreateBody,
    script: ContainerScript,
    /// `None` until it stops; then its exit code.
    exit: watch::Sender<Option<i64>>,
    started_at: Option<String>,
    finished_at: Option<String>,
    oom_killed: bool,
}

#[derive(Debug, Default)]
struct State {
    images: HashSet<String>,
    /// Built images with their labels.
    built: Vec<(String, HashMap<String, String>)>,
    builds: Vec<BuildScript>,
    scripts: HashMap<String, ContainerScript>,
    containers: HashMap<String, Container>,
    /// Removed containers' create bodies, by stage, oldest first.
    removed: Vec<(String, ContainerCreateBody)>,
    networks: HashMap<String, (String, NetworkRequest)>,
    next: u64,
    calls: Vec<EngineCall>,
}

/// The fake engine. Clones share one engine.
#[derive(Debug, Clone, Default)]
pub struct FakeEngine {
    state: Arc<Mutex<State>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn has_label(labels: &HashMap<String, String>, selector: &str) -> bool {
    match selector.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
        None => labels.contains_key(selector),
    }
}

impl FakeEngine {
    /// An engine with these images present (base images, the evaluation image).
    pub fn with_images<'a>(images: impl IntoIterator<Item = &'a str>) -> Self {
        let e = FakeEngine::default();
        e.lock().images = images.into_iter().map(str::to_owned).collect();
        e
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next build does this (builds without a script get [`BuildScript::default`]).
    pub fn script_build(&self, script: BuildScript) {
        self.lock().builds.push(script);
    }

    /// Containers labelled `reprobox.stage=<stage>` do this.
    pub fn script(&self, stage: &str, script: ContainerScript) {
        self.lock().scripts.insert(stage.to_owned(), script);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<EngineCall> {
        self.lock().calls.clone()
    }

    /// The create body of the first container of `stage`, removed or not (for assertions on
    /// the sandbox).
    pub fn created(&self, stage: &str) -> Option<ContainerCreateBody> {
        let s = self.lock();
        let stage_of = |b: &ContainerCreateBody| {
            b.labels
                .as_ref()
                .and_then(|l| l.get(crate::sandbox::container::LABEL_STAGE))
                .is_some_and(|l| l == stage)
        };
        if let Some((_, b)) = s.removed.iter().find(|(_, b)| stage_of(b)) {
            return Some(b.clone());
        }
        let mut live: Vec<(&String, &Container)> = s
            .containers
            .iter()
            .filter(|(_, c)| stage_of(&c.body))
            .collect();
        live.sort_by_key(|(id, _)| (*id).clone());
        live.first().map(|(_, c)| c.body.clone())
    }

    /// Containers not yet removed.
    pub fn live_containers(&self) -> usize {
        self.lock().containers.len()
    }

    fn record(&self, call: EngineCall) {
        self.lock().calls.push(call);
    }

    fn missing(id: &str) -> EngineError {
        EngineError::NoSuchContainer { id: id.to_owned() }
    }

    /// The host directory bound at `/out` in a create body.
    fn out_dir(body: &ContainerCreateBody) -> Option<PathBuf> {
        let binds = body.host_config.as_ref()?.binds.as_ref()?;
        binds.iter().find_map(|b| {
            let mut parts = b.rsplitn(3, ':');
            let _mode = parts.next()?;
            let target = parts.next()?;
            let host = parts.next()?;
            (target == crate::sandbox::container::OUT_MOUNT).then(|| PathBuf::from(host))
        })
    }

    fn stop(c: &mut Container, code: i64) {
        if c.exit.borrow().is_none() {
            c.finished_at = Some(now());
            c.exit.send_replace(Some(code));
        }
    }
}

impl Connect for FakeEngine {
    type Engine = FakeEngine;
    fn connect(&self) -> impl Future<Output = Result<FakeEngine, EngineError>> + Send {
        let e = self.clone();
        async move { Ok(e) }
    }
}

impl ContainerEngine for FakeEngine {
    fn version(&self) -> impl Future<Output = Result<EngineInfo, EngineError>> + Send {
        self.record(EngineCall::Version);
        async {
            Ok(EngineInfo {
                version: "0.0.0-fake".into(),
                api_version: "1.41".into(),
                platform: "linux/amd64".into(),
            })
        }
    }

    fn image_exists(&self, image: &str) -> impl Future<Output = Result<bool, EngineError>> + Send {
        self.record(EngineCall::ImageExists(image.to_owned()));
        let s = self.lock();
        let there = s.images.contains(image) || s.built.iter().any(|(id, _)| id == image);
        async move { Ok(there) }
    }

    fn build_image(
        &self,
        request: BuildRequest,
    ) -> BoxStream<'static, Result<BuildEvent, EngineError>> {
        self.record(EngineCall::Build {
            tag: request.tag.clone(),
            network: request.network.clone(),
        });
        let mut s = self.lock();
        let script = if s.builds.is_empty() {
            BuildScript::default()
        } else {
            s.builds.remove(0)
        };
        let mut events: Vec<Result<BuildEvent, EngineError>> = script
            .output
            .iter()
            .map(|l| Ok(BuildEvent::Output(format!("{l}\n"))))
            .collect();
        match script.result {
            Ok(id) => {
                s.built.push((id.clone(), request.labels.clone()));
                s.images.insert(request.tag.clone());
                events.push(Ok(BuildEvent::ImageId(id)));
            }
            Err(message) => events.push(Err(EngineError::Build {
                tag: request.tag,
                message,
            })),
        }
        futures_util::stream::iter(events).boxed()
    }

    fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> impl Future<Output = Result<String, EngineError>> + Send {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("fake{:060}", s.next);
        let stage = body
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::sandbox::container::LABEL_STAGE))
            .cloned()
            .unwrap_or_default();
        s.calls.push(EngineCall::Create {
            name: name.to_owned(),
            stage: stage.clone(),
        });
        let script = s.scripts.get(&stage).cloned().unwrap_or_default();
        let (exit, _) = watch::channel(None);
        s.containers.insert(
            id.clone(),
            Container {
                name: name.to_owned(),
                body,
                script,
                exit,
                started_at: None,
                finished_at: None,
                oom_killed: false,
            },
        );
        async move { Ok(id) }
    }

    fn start_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send {
        self.record(EngineCall::Start(id.to_owned()));
        let result = (|| {
            let mut s = self.lock();
            let c = s.containers.get_mut(id).ok_or_else(|| Self::missing(id))?;
            c.started_at = Some(now());
            if let Some(out) = Self::out_dir(&c.body) {
                for (rel, bytes) in &c.script.writes {
                    let path = out.join(rel);
                    if let Some(parent) = path.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    std::fs::write(&path, bytes).map_err(|e| EngineError::Build {
                        tag: c.name.clone(),
                        message: format!("the fake container cannot write {}: {e}", path.display()),
                    })?;
                }
            }
            if c.script.oom {
                c.oom_killed = true;
                Self::stop(c, 137);
            } else if !c.script.runs_until_killed {
                let code = c.script.exit_code;
                Self::stop(c, code);
            }
            Ok(())
        })();
        async move { result }
    }

    fn logs(
        &self,
        id: &str,
        request: LogsRequest,
    ) -> BoxStream<'static, Result<LogChunk, EngineError>> {
        self.record(EngineCall::Logs(id.to_owned()));
        let s = self.lock();
        let Some(c) = s.containers.get(id) else {
            return futures_util::stream::iter([Err(Self::missing(id))]).boxed();
        };
        let stamp = c.started_at.clone().unwrap_or_else(now);
        let lines: Vec<Result<LogChunk, EngineError>> = c
            .script
            .lines
            .iter()
            .map(|l| {
                let text = if request.timestamps {
                    format!("{stamp} {l}\n")
                } else {
                    format!("{l}\n")
                };
                Ok(LogChunk {
                    stream: LogStream::Stdout,
                    bytes: Bytes::from(text),
                })
            })
            .collect();
        let mut exit = c.exit.subscribe();
        let follow = request.follow;
        // The lines, then (following) the end of the stream when the container stops.
        let until_stopped = futures_util::stream::once(async move {
            if follow {
                let _ = exit.wait_for(Option::is_some).await;
            }
        })
        .filter_map(|()| async { None });
        futures_util::stream::iter(lines)
            .chain(until_stopped)
            .boxed()
    }

    fn stats(&self, id: &str) -> impl Future<Output = Result<StatsSample, EngineError>> + Send {
        self.record(EngineCall::Stats(id.to_owned()));
        let s = self.lock();
        let r = match s.containers.get(id) {
            Some(c) => Ok(StatsSample {
                cpu_percent: Some(100.0),
                memory_bytes: Some(c.script.memory_bytes),
                memory_max_usage_bytes: Some(c.script.memory_bytes),
                memory_limit_bytes: c
                    .body
                    .host_config
                    .as_ref()
                    .and_then(|h| h.memory)
                    .map(|m| m as u64),
                pids: Some(1),
            }),
            None => Err(Self::missing(id)),
        };
        async move { r }
    }

    fn wait_container(&self, id: &str) -> impl Future<Output = Result<i64, EngineError>> + Send {
        self.record(EngineCall::Wait(id.to_owned()));
        let exit = self.lock().containers.get(id).map(|c| c.exit.subscribe());
        let id = id.to_owned();
        async move {
            let mut exit = exit.ok_or_else(|| Self::missing(&id))?;
            let code = exit
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Self::missing(&id))?;
            Ok(code.unwrap_or(0))
        }
    }

    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerState, EngineError>> + Send {
        self.record(EngineCall::Inspect(id.to_owned()));
        let s = self.lock();
        let r = s
            .containers
            .get(id)
            .map(|c| {
                let exit = *c.exit.borrow();
                ContainerState {
                    id: id.to_owned(),
                    status: match (&c.started_at, exit) {
                        (None, _) => "created",
                        (Some(_), None) => "running",
                        (Some(_), Some(_)) => "exited",
                    }
                    .into(),
                    running: c.started_at.is_some() && exit.is_none(),
                    exit_code: exit,
                    oom_killed: c.oom_killed,
                    started_at: c.started_at.clone(),
                    finished_at: c.finished_at.clone(),
                    labels: c.body.labels.clone().unwrap_or_default(),
                    host_config: c.body.host_config.clone(),
                    user: c.body.user.clone(),
                    network_disabled: c.body.network_disabled.unwrap_or(false),
                    networks: HashMap::new(),
                }
            })
            .ok_or_else(|| Self::missing(id));
        async move { r }
    }

    fn kill_container(
        &self,
        id: &str,
        signal: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send {
        self.record(EngineCall::Kill {
            id: id.to_owned(),
            signal: signal.to_owned(),
        });
        let mut s = self.lock();
        let r = match s.containers.get_mut(id) {
            Some(c) => {
                Self::stop(c, if signal == "SIGTERM" { 143 } else { 137 });
                Ok(())
            }
            None => Err(Self::missing(id)),
        };
        async move { r }
    }

    fn remove_container(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send {
        self.record(EngineCall::Remove(id.to_owned()));
        let mut s = self.lock();
        if let Some(mut c) = s.containers.remove(id) {
            Self::stop(&mut c, 137);
            s.removed.push((id.to_owned(), c.body));
        }
        drop(s);
        async { Ok(()) }
    }

    fn list_containers(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>, EngineError>> + Send {
        self.record(EngineCall::ListContainers(label.to_owned()));
        let s = self.lock();
        let mut found: Vec<ContainerSummary> = s
            .containers
            .iter()
            .filter_map(|(id, c)| {
                let labels = c.body.labels.clone().unwrap_or_default();
                has_label(&labels, label).then(|| ContainerSummary {
                    id: id.clone(),
                    state: if c.exit.borrow().is_some() {
                        "exited"
                    } else {
                        "running"
                    }
                    .into(),
                    labels,
                })
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        async move { Ok(found) }
    }

    fn create_network(
        &self,
        request: NetworkRequest,
    ) -> impl Future<Output = Result<String, EngineError>> + Send {
        self.record(EngineCall::CreateNetwork(request.name.clone()));
        let mut s = self.lock();
        s.next += 1;
        let id = format!("net{:061}", s.next);
        s.networks
            .insert(id.clone(), (request.name.clone(), request));
        async move { Ok(id) }
    }

    fn remove_network(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send {
        self.record(EngineCall::RemoveNetwork(id.to_owned()));
        let mut s = self.lock();
        s.networks.retain(|nid, (name, _)| nid != id && name != id);
        async { Ok(()) }
    }

    fn list_networks(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<NetworkSummary>, EngineError>> + Send {
        self.record(EngineCall::ListNetworks(label.to_owned()));
        let s = self.lock();
        let found: Vec<NetworkSummary> = s
            .networks
            .iter()
            .filter(|(_, (_, r))| has_label(&r.labels, label))
            .map(|(id, (name, r))| NetworkSummary {
                id: id.clone(),
                name: name.clone(),
                internal: r.internal,
                labels: r.labels.clone(),
            })
            .collect();
        async move { Ok(found) }
    }

    fn remove_images(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<String>, EngineError>> + Send {
        self.record(EngineCall::RemoveImages(label.to_owned()));
        let mut s = self.lock();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut s.built)
            .into_iter()
            .partition(|(_, labels)| has_label(labels, label));
        s.built = kept;
        async move { Ok(gone.into_iter().map(|(id, _)| id).collect()) }
    }
}
