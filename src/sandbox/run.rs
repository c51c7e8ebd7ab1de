//! Running a sandboxed container under a deadline.
//!
//! [`run_container`] creates and starts the container, then [`attach`] watches it: logs go
//! through a [`LogSink`] into the run's log, container statistics into `telemetry.jsonl`, and at
//! the deadline the container gets SIGTERM, then SIGKILL after the profile's grace period (the
//! submission cannot ignore the second). The deadline is an absolute wall-clock instant, so a
//! runner that died can re-attach with [`attach`] and the original deadline; the clock is never
//! reset. Ctrl-C kills the container and returns [`SandboxError::Interrupted`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;

use super::SandboxError;
use super::container::{NetworkAttachment, RunSpec, create_body_on};
use super::logs::{LogSink, LogSummary, tail_from_chunks};
use super::output_count::{self, OutputCounter};
use super::profile::SandboxProfile;
use crate::engine::{ContainerEngine, EngineError, LogsRequest, StatsSample};

/// When the run must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// An absolute instant (what the journal records, and what `resume` passes back).
    At(SystemTime),
    /// A limit counted from the container's start as the daemon reports it.
    AfterStart(Duration),
}

impl From<SystemTime> for Deadline {
    fn from(t: SystemTime) -> Self {
        Deadline::At(t)
    }
}

/// Where a run writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPaths {
    /// The log (`logs/train.log`).
    pub log: PathBuf,
    /// Telemetry samples, appended (`telemetry.jsonl`).
    pub telemetry: PathBuf,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunStatus {
    /// Exit code 0.
    Succeeded,
    /// A non-zero exit.
    Failed {
        /// The exit code.
        exit_code: i64,
    },
    /// The kernel's OOM killer acted in the container.
    Oom,
    /// Killed at the deadline.
    Timeout,
}

/// What happened at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Termination {
    /// Seconds from the deadline until the container stopped.
    pub stopped_after_deadline_s: f64,
    /// Whether SIGKILL was needed after the grace period.
    pub sigkilled: bool,
}

/// The result of a run, for the journal and the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// The container id.
    pub container_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// The exit code Docker reported.
    pub exit_code: Option<i64>,
    /// Docker's OOMKilled flag.
    pub oom_killed: bool,
    /// RFC 3339 start time (the daemon's).
    pub started_at: Option<String>,
    /// RFC 3339 finish time (the daemon's).
    pub finished_at: Option<String>,
    /// The deadline as UNIX seconds.
    pub deadline_unix: f64,
    /// Wall time this runner watched the container.
    pub watched_s: f64,
    /// Present when the deadline was reached.
    pub termination: Option<Termination>,
    /// The log's summary.
    pub log: LogSummary,
    /// Telemetry samples written.
    pub telemetry_samples: u64,
    /// Peaks over those samples: memory, its limit, processes, CPU.
    pub resources: ResourcePeaks,
}

/// The peaks of the container statistics this runner sampled, kept as running maxima (bounded
/// memory however long the run). A resumed runner reports the peaks of its own watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ResourcePeaks {
    /// The highest memory use seen, bytes (page cache included, as Docker counts it): the larger
    /// of the sampled use and, on cgroup v1, the kernel's recorded peak, which also catches
    /// spikes between samples; the limit itself when the OOM killer ended the run (it acts only
    /// at the limit). `None` when no sample was taken (a run shorter than a sample).
    pub peak_memory_bytes: Option<u64>,
    /// The container's memory limit as the daemon reported it, bytes.
    pub memory_limit_bytes: Option<u64>,
    /// The most processes and threads seen in one sample.
    pub peak_pids: Option<u64>,
    /// The highest CPU use seen, percent of one core.
    pub peak_cpu_percent: Option<f64>,
}

impl ResourcePeaks {
    /// Folds one sample into the peaks.
    pub fn add(&mut self, s: &StatsSample) {
        // `None` orders below every `Some`, so `max` keeps whatever was seen.
        self.peak_memory_bytes = self
            .peak_memory_bytes
            .max(s.memory_bytes)
            .max(s.memory_max_usage_bytes);
        self.memory_limit_bytes = s.memory_limit_bytes.or(self.memory_limit_bytes);
        self.peak_pids = self.peak_pids.max(s.pids);
        self.peak_cpu_percent = match (self.peak_cpu_percent, s.cpu_percent) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Counters a caller can read while [`attach_live`] watches a container, for progress lines.
/// Updated as log lines and samples arrive; reading them never blocks the watcher.
#[derive(Debug, Default)]
pub struct LiveStats {
    log_lines: AtomicU64,
    log_bytes: AtomicU64,
    /// The last sampled memory use plus one (0: no sample yet).
    memory_bytes: AtomicU64,
    /// The log's newest line that is not blank, cut at [`LAST_LINE_MAX`] bytes.
    last_line: std::sync::Mutex<String>,
}

/// The longest last log line kept for a progress line.
const LAST_LINE_MAX: usize = 240;

impl LiveStats {
    /// Log lines seen by this watcher (a resumed runner counts from where it re-attached).
    pub fn log_lines(&self) -> u64 {
        self.log_lines.load(Ordering::Relaxed)
    }

    /// Bytes of container output seen by this watcher.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// The container's memory use at the last sample.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory_bytes.load(Ordering::Relaxed).checked_sub(1)
    }

    /// The log's newest line that is not blank (lossy UTF-8, raw: the caller neutralizes it).
    pub fn last_line(&self) -> Option<String> {
        let l = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        (!l.is_empty()).then(|| l.clone())
    }

    fn set_last_line(&self, line: &[u8]) {
        let line = &line[..line.len().min(LAST_LINE_MAX)];
        let mut l = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        l.clear();
        l.push_str(&String::from_utf8_lossy(line));
    }
}

/// How long the log stream must be quiet before buffered lines are written through to the file.
/// Between two chunks the stream is often pending for a moment (the HTTP connection task has
/// not run yet); writing through at every pending cost one `write` per line under a flood.
const FLUSH_WHEN_QUIET: Duration = Duration::from_millis(20);

/// Creates and starts the container; returns its id.
pub async fn start_container<E: ContainerEngine>(
    engine: &E,
    spec: &RunSpec,
) -> Result<String, SandboxError> {
    start_container_on(engine, spec, None).await
}

/// [`start_container`], attached to `network` when given (the evaluation's internal network).
pub async fn start_container_on<E: ContainerEngine>(
    engine: &E,
    spec: &RunSpec,
    network: Option<&NetworkAttachment>,
) -> Result<String, SandboxError> {
    let body = create_body_on(spec, network)?;
    let id = engine
        .create_container(&spec.container_name(), body)
        .await?;
    // Attached before the start, so the count sees the first byte (output_count.rs).
    let counter = match engine.attach_output(&id).await {
        Ok(stream) => stream.map(OutputCounter::spawn),
        Err(e) => {
            let cleanup = engine
                .remove_container(&id)
                .await
                .map_err(SandboxError::from);
            return Err(SandboxError::from(e).with_cleanup(cleanup));
        }
    };
    if let Err(e) = engine.start_container(&id).await {
        let cleanup = engine
            .remove_container(&id)
            .await
            .map_err(SandboxError::from);
        return Err(SandboxError::from(e).with_cleanup(cleanup));
    }
    if let Some(counter) = counter {
        output_count::start(&id, counter);
    }
    Ok(id)
}

/// Creates, starts and watches a container until it ends or the deadline passes, then removes
/// it. Images are left for [`super::teardown::cleanup_by_label`].
pub async fn run_container<E: ContainerEngine>(
    engine: &E,
    spec: &RunSpec,
    paths: &RunPaths,
    deadline: impl Into<Deadline>,
) -> Result<RunOutcome, SandboxError> {
    run_container_on(engine, spec, paths, deadline, None).await
}

/// [`run_container`], attached to `network` when given.
pub async fn run_container_on<E: ContainerEngine>(
    engine: &E,
    spec: &RunSpec,
    paths: &RunPaths,
    deadline: impl Into<Deadline>,
    network: Option<&NetworkAttachment>,
) -> Result<RunOutcome, SandboxError> {
    let live = Arc::new(LiveStats::default());
    run_container_with(engine, spec, paths, deadline.into(), network, live).await
}

/// [`run_container`], updating `live` as log lines and samples arrive (for progress lines).
pub async fn run_container_live<E: ContainerEngine>(
    engine: &E,
    spec: &RunSpec,
    paths: &RunPaths,
    deadline: impl Into<Deadline>,
    live: Arc<LiveStats>,
) -> Result<RunOutcome, SandboxError> {
    run_container_with(engine, spec, paths, deadline.into(), None, live).await
}

async fn run_container_with<E: ContainerEngine>(
    engine: &E,
    spec: &RunSpec,
    paths: &RunPaths,
    deadline: Deadline,
    network: Option<&NetworkAttachment>,
    live: Arc<LiveStats>,
) -> Result<RunOutcome, SandboxError> {
    let id = start_container_on(engine, spec, network).await?;
    let result = attach_live(engine, &id, &spec.profile, paths, deadline, None, live).await;
    let removed = engine
        .remove_container(&id)
        .await
        .map_err(SandboxError::from);
    match result {
        Ok(outcome) => removed.map(|()| outcome),
        Err(e) => Err(e.with_cleanup(removed)),
    }
}

fn parse_time(t: &str) -> Option<SystemTime> {
    let dt = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    let secs = u64::try_from(dt.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, dt.timestamp_subsec_nanos()))
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Serialize)]
struct TelemetryLine<'a> {
    ts: String,
    source: &'static str,
    container: &'a str,
    #[serde(flatten)]
    sample: StatsSample,
}

/// Watches a started container (fresh or found again after a restart) until it stops.
///
/// `since` is the last log timestamp the previous runner saw (`LogSummary::last_timestamp`):
/// the log is appended from there without duplicates. `None` reads the log from the start.
pub async fn attach<E: ContainerEngine>(
    engine: &E,
    id: &str,
    profile: &SandboxProfile,
    paths: &RunPaths,
    deadline: Deadline,
    since: Option<String>,
) -> Result<RunOutcome, SandboxError> {
    let live = Arc::new(LiveStats::default());
    attach_live(engine, id, profile, paths, deadline, since, live).await
}

/// [`attach`], updating `live` as log lines and samples arrive so a caller can show progress.
pub async fn attach_live<E: ContainerEngine>(
    engine: &E,
    id: &str,
    profile: &SandboxProfile,
    paths: &RunPaths,
    deadline: Deadline,
    since: Option<String>,
    live: Arc<LiveStats>,
) -> Result<RunOutcome, SandboxError> {
    let watch_start = Instant::now();
    let state = engine.inspect_container(id).await?;
    let started_at = state.started_at.clone();
    let deadline = match deadline {
        Deadline::At(t) => t,
        Deadline::AfterStart(limit) => {
            started_at
                .as_deref()
                .and_then(parse_time)
                .unwrap_or_else(SystemTime::now)
                + limit
        }
    };

    // Logs: a task of its own, so a flood never delays the deadline.
    let since_unix = since
        .as_deref()
        .and_then(parse_time)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut sink = LogSink::open(
        &paths.log,
        profile.log_cap_bytes,
        profile.log_tail_lines,
        profile.log_tail_bytes,
        since,
    )?;
    let mut logs = engine.logs(
        id,
        LogsRequest {
            follow: true,
            timestamps: true,
            since_unix,
            tail: None,
        },
    );
    let log_live = live.clone();
    let counter = output_count::take(id);
    let counted = counter.as_ref().map(OutputCounter::running);
    let mut log_task = AbortOnDrop(tokio::spawn(async move {
        let mut stream_error = None;
        loop {
            // Written through once the stream is quiet, in 64 KiB batches while it floods.
            let item = match logs.next().now_or_never() {
                Some(item) => item,
                None => match tokio::time::timeout(FLUSH_WHEN_QUIET, logs.next()).await {
                    Ok(item) => item,
                    Err(_) => {
                        sink.flush();
                        logs.next().await
                    }
                },
            };
            let Some(item) = item else { break };
            match item {
                Ok(chunk) => {
                    sink.push(chunk.stream, &chunk.bytes);
                    if let Some(line) = sink.last_line() {
                        log_live.set_last_line(line);
                    }
                    let s = sink.summary();
                    log_live.log_lines.store(s.lines_seen, Ordering::Relaxed);
                    let bytes = counted
                        .as_ref()
                        .map_or(s.bytes_seen, |c| c.load(Ordering::Relaxed));
                    log_live.log_bytes.store(bytes, Ordering::Relaxed);
                }
                Err(e) => {
                    stream_error = Some(e);
                    break;
                }
            }
        }
        (sink, stream_error)
    }));

    if let Some(parent) = paths.telemetry.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SandboxError::Write {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut telemetry = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.telemetry)
        .map_err(|source| SandboxError::Write {
            path: paths.telemetry.clone(),
            source,
        })?;
    let mut samples = 0u64;
    let mut peaks = ResourcePeaks::default();

    let interval = profile.telemetry_interval;
    let next_stats = |first: bool| -> BoxFuture<'_, Result<StatsSample, EngineError>> {
        Box::pin(async move {
            if !first {
                tokio::time::sleep(interval).await;
            }
            engine.stats(id).await
        })
    };
    let mut stats_fut = next_stats(true);
    let wait = engine.wait_container(id);
    tokio::pin!(wait);
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let deadline_sleep = tokio::time::sleep(remaining);
    tokio::pin!(deadline_sleep);
    let grace_sleep = tokio::time::sleep(Duration::from_secs(u64::from(u32::MAX)));
    tokio::pin!(grace_sleep);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    let mut timed_out_at: Option<Instant> = None;
    let mut sigkilled = false;
    let mut interrupted = false;
    let mut ctrl_c_done = false;
    let exit = loop {
        tokio::select! {
            code = &mut wait => break code,
            () = &mut deadline_sleep, if timed_out_at.is_none() => {
                timed_out_at = Some(Instant::now());
                ignore_gone(engine.kill_container(id, "SIGTERM").await)?;
                grace_sleep.as_mut().reset(tokio::time::Instant::now() + profile.grace_period);
            }
            () = &mut grace_sleep, if timed_out_at.is_some() && !sigkilled => {
                sigkilled = true;
                ignore_gone(engine.kill_container(id, "SIGKILL").await)?;
            }
            sample = &mut stats_fut => {
                // A failed sample (the container just exited) is skipped, not fatal.
                if let Ok(sample) = sample {
                    peaks.add(&sample);
                    if let Some(m) = sample.memory_bytes {
                        live.memory_bytes.store(m.saturating_add(1), Ordering::Relaxed);
                    }
                    let line = TelemetryLine { ts: chrono::Utc::now().to_rfc3339(), source: "container", container: id, sample };
                    if let Ok(mut text) = serde_json::to_string(&line) {
                        text.push('\n');
                        telemetry
                            .write_all(text.as_bytes())
                            .map_err(|source| SandboxError::Write { path: paths.telemetry.clone(), source })?;
                        samples += 1;
                    }
                }
                stats_fut = next_stats(false);
            }
            // A completed future must not be polled again, whether it saw Ctrl-C or failed to
            // install the handler.
            res = &mut ctrl_c, if !ctrl_c_done => {
                ctrl_c_done = true;
                if res.is_ok() {
                    interrupted = true;
                    ignore_gone(engine.kill_container(id, "SIGKILL").await)?;
                }
            }
        }
    };
    drop(stats_fut);
    let stopped = Instant::now();
    let exit_code = exit?;

    // The log stream ends when the container stops; give it a moment to drain the last lines.
    let (sink, stream_error) =
        match tokio::time::timeout(Duration::from_secs(30), &mut log_task.0).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(join)) => {
                return Err(SandboxError::Write {
                    path: paths.log.clone(),
                    source: std::io::Error::other(join.to_string()),
                });
            }
            Err(_) => {
                return Err(SandboxError::Write {
                    path: paths.log.clone(),
                    source: std::io::Error::other(
                        "the log stream did not end within 30s of the container stopping",
                    ),
                });
            }
        };
    let mut log = sink.finish()?;
    // The attach stream ends with the container, as the log stream does.
    if let Some(counter) = counter
        && let Some(total) = counter.total(Duration::from_secs(30)).await
    {
        log.bytes_seen = total;
        log.bytes_seen_exact = true;
    }
    if log.truncated {
        // Past the cap the reader only counts, and under a flood it can fall behind Docker's
        // own log rotation and miss the end; read the end again so the report's tail is true.
        let mut again = engine.logs(
            id,
            LogsRequest {
                follow: false,
                timestamps: true,
                since_unix: 0,
                tail: Some(profile.log_tail_lines as u64),
            },
        );
        let mut chunks = Vec::new();
        while let Some(Ok(chunk)) = again.next().await {
            chunks.push(chunk.bytes);
        }
        if !chunks.is_empty() {
            log.tail = tail_from_chunks(
                chunks.iter().map(|b| b.as_ref()),
                profile.log_tail_lines,
                profile.log_tail_bytes,
            );
        }
    }
    if let Some(e) = stream_error
        && !matches!(e, EngineError::NoSuchContainer { .. })
    {
        return Err(e.into());
    }
    if interrupted {
        return Err(SandboxError::Interrupted {
            container: id.to_owned(),
        });
    }
    let state = engine.inspect_container(id).await?;
    let exit_code = state.exit_code.unwrap_or(exit_code);
    let status = if timed_out_at.is_some() {
        RunStatus::Timeout
    } else if state.oom_killed {
        RunStatus::Oom
    } else if exit_code == 0 {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed { exit_code }
    };
    if state.oom_killed {
        // The kernel's OOM killer acts in a memory cgroup only when its usage reaches the limit,
        // so the peak was the limit, however far below it the last sample was (an OOM-killed run
        // at 2 GiB was sampled at 0.3-0.5 GiB: the spike came between samples).
        let limit = state
            .host_config
            .as_ref()
            .and_then(|h| h.memory)
            .and_then(|m| u64::try_from(m).ok())
            .filter(|m| *m > 0)
            .or(peaks.memory_limit_bytes);
        peaks.peak_memory_bytes = peaks.peak_memory_bytes.max(limit);
        peaks.memory_limit_bytes = peaks.memory_limit_bytes.or(limit);
    }
    Ok(RunOutcome {
        container_id: id.to_owned(),
        status,
        exit_code: Some(exit_code),
        oom_killed: state.oom_killed,
        started_at: state.started_at,
        finished_at: state.finished_at,
        deadline_unix: unix_secs(deadline),
        watched_s: watch_start.elapsed().as_secs_f64(),
        termination: timed_out_at.map(|t| Termination {
            stopped_after_deadline_s: stopped.duration_since(t).as_secs_f64(),
            sigkilled,
        }),
        log,
        telemetry_samples: samples,
        resources: peaks,
    })
}

/// Aborts the log task when the watcher is dropped (a runner that dies or is cancelled must
/// not leave a task writing the log behind it; a resumed runner appends from `since`).
pub(super) struct AbortOnDrop<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A kill that finds the container already gone is fine: it stopped on its own.
fn ignore_gone(r: Result<(), EngineError>) -> Result<(), SandboxError> {
    match r {
        Ok(()) => Ok(()),
        Err(EngineError::NoSuchContainer { .. }) => Ok(()),
        // 409 "is not running": it exited between the deadline and the signal.
        Err(EngineError::Kill {
            source:
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                },
            ..
        }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::stream::{self, BoxStream};
    use tokio::sync::watch;

    use super::*;
    use crate::engine::{
        BuildEvent, BuildRequest, ContainerCreateBody, ContainerState, ContainerSummary,
        EngineInfo, LogChunk, LogStream,
    };

    /// A recording fake: a container that ignores SIGTERM and stops only on SIGKILL.
    struct Stubborn {
        id: &'static str,
        signals: Mutex<Vec<String>>,
        exited: watch::Sender<Option<i64>>,
    }

    impl Stubborn {
        fn new() -> Self {
            Stubborn {
                id: "fake",
                signals: Mutex::new(Vec::new()),
                exited: watch::channel(None).0,
            }
        }
    }

    impl ContainerEngine for Stubborn {
        async fn version(&self) -> Result<EngineInfo, EngineError> {
            Ok(EngineInfo {
                version: "fake".into(),
                api_version: "1.41".into(),
                platform: "linux/amd64".into(),
            })
        }
        async fn image_exists(&self, _: &str) -> Result<bool, EngineError> {
            Ok(true)
        }
        fn build_image(
            &self,
            _: BuildRequest,
        ) -> BoxStream<'static, Result<BuildEvent, EngineError>> {
            stream::empty().boxed()
        }
        async fn create_container(
            &self,
            _: &str,
            _: ContainerCreateBody,
        ) -> Result<String, EngineError> {
            Ok(self.id.into())
        }
        async fn attach_output(
            &self,
            _: &str,
        ) -> Result<Option<BoxStream<'static, Result<LogChunk, EngineError>>>, EngineError>
        {
            // What the container "wrote": not what the log stream below says (one short line),
            // as when Docker's log rotated under the reader.
            let chunk = |n: usize| {
                Ok(LogChunk {
                    stream: LogStream::Stdout,
                    bytes: bytes::Bytes::from(vec![b'x'; n]),
                })
            };
            Ok(Some(
                stream::iter([chunk(1000), chunk(16384), chunk(7)]).boxed(),
            ))
        }
        async fn start_container(&self, _: &str) -> Result<(), EngineError> {
            Ok(())
        }
        fn logs(
            &self,
            _: &str,
            _: LogsRequest,
        ) -> BoxStream<'static, Result<LogChunk, EngineError>> {
            let chunk = LogChunk {
                stream: LogStream::Stdout,
                bytes: bytes::Bytes::from_static(
                    b"2026-01-01T00:00:00.000000000Z ignoring SIGTERM\n",
                ),
            };
            stream::iter([Ok(chunk)]).boxed()
        }
        async fn stats(&self, _: &str) -> Result<StatsSample, EngineError> {
            Ok(StatsSample {
                cpu_percent: Some(1.0),
                memory_bytes: Some(1),
                memory_max_usage_bytes: Some(5),
                memory_limit_bytes: Some(8),
                pids: Some(3),
            })
        }
        async fn wait_container(&self, _: &str) -> Result<i64, EngineError> {
            let mut rx = self.exited.subscribe();
            loop {
                if let Some(code) = *rx.borrow() {
                    return Ok(code);
                }
                if rx.changed().await.is_err() {
                    return Ok(-1);
                }
            }
        }
        async fn inspect_container(&self, id: &str) -> Result<ContainerState, EngineError> {
            Ok(ContainerState {
                id: id.to_owned(),
                status: "running".into(),
                running: self.exited.borrow().is_none(),
                exit_code: *self.exited.borrow(),
                oom_killed: false,
                started_at: Some(chrono::Utc::now().to_rfc3339()),
                finished_at: None,
                labels: Default::default(),
                host_config: None,
                user: None,
                network_disabled: true,
                networks: Default::default(),
            })
        }
        async fn kill_container(&self, _: &str, signal: &str) -> Result<(), EngineError> {
            self.signals.lock().unwrap().push(signal.to_owned());
            if signal == "SIGKILL" {
                self.exited.send_replace(Some(137));
            }
            Ok(())
        }
        async fn remove_container(&self, _: &str) -> Result<(), EngineError> {
            Ok(())
        }
        async fn list_containers(&self, _: &str) -> Result<Vec<ContainerSummary>, EngineError> {
            Ok(vec![])
        }
        async fn create_network(
            &self,
            _: crate::engine::NetworkRequest,
        ) -> Result<String, EngineError> {
            Ok("fake-net".into())
        }
        async fn remove_network(&self, _: &str) -> Result<(), EngineError> {
            Ok(())
        }
        async fn list_networks(
            &self,
            _: &str,
        ) -> Result<Vec<crate::engine::NetworkSummary>, EngineError> {
            Ok(vec![])
        }
        async fn remove_images(&self, _: &str) -> Result<Vec<String>, EngineError> {
            Ok(vec![])
        }
    }

    #[tokio::test]
    async fn deadline_sends_sigterm_then_sigkill_after_grace() {
        let d = tempfile::tempdir().unwrap();
        let paths = RunPaths {
            log: d.path().join("logs/train.log"),
            telemetry: d.path().join("telemetry.jsonl"),
        };
        let mut profile = SandboxProfile::builtin("strict").unwrap();
        profile.grace_period = Duration::from_millis(300);
        profile.telemetry_interval = Duration::from_millis(100);
        let engine = Stubborn::new();
        let deadline = SystemTime::now() + Duration::from_millis(200);
        let t = Instant::now();
        let out = attach(
            &engine,
            "fake",
            &profile,
            &paths,
            Deadline::At(deadline),
            None,
        )
        .await
        .unwrap();
        assert_eq!(out.status, RunStatus::Timeout);
        assert_eq!(*engine.signals.lock().unwrap(), ["SIGTERM", "SIGKILL"]);
        let term = out.termination.unwrap();
        assert!(
            term.sigkilled && term.stopped_after_deadline_s >= 0.29,
            "{term:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(out.telemetry_samples >= 1);
        let r = out.resources;
        assert_eq!(
            (r.peak_memory_bytes, r.memory_limit_bytes, r.peak_pids),
            (Some(5), Some(8), Some(3)),
            "the kernel's recorded peak wins over the sampled use: {r:?}"
        );
        assert_eq!(out.log.tail, ["ignoring SIGTERM"]);
    }

    #[tokio::test]
    async fn the_runner_that_started_the_container_counts_its_output_exactly() {
        let d = tempfile::tempdir().unwrap();
        let paths = RunPaths {
            log: d.path().join("train.log"),
            telemetry: d.path().join("t.jsonl"),
        };
        let mut profile = SandboxProfile::builtin("strict").unwrap();
        profile.grace_period = Duration::from_millis(10);
        let engine = Stubborn {
            id: "fake-counted",
            ..Stubborn::new()
        };
        let spec = RunSpec {
            run_id: "t-1".into(),
            stage: "train".into(),
            image: "reprobox/shell:1".into(),
            command: None,
            env: vec![],
            workdir: None,
            profile: profile.clone(),
            limits: super::super::ContainerLimits {
                memory_bytes: 64 << 20,
                disk_bytes: None,
                cpus: None,
            },
            out_dir: d.path().join("out"),
            inputs: vec![],
            gpu: None,
            storage_quota_supported: false,
            deadline_unix: None,
        };
        let id = start_container(&engine, &spec).await.unwrap();
        let past = SystemTime::now() - Duration::from_secs(1);
        let out = attach(&engine, &id, &profile, &paths, Deadline::At(past), None)
            .await
            .unwrap();
        assert_eq!(out.log.bytes_seen, 1000 + 16384 + 7, "{:?}", out.log);
        assert!(out.log.bytes_seen_exact);
        assert_eq!(out.log.lines_seen, 1, "lines are the log's own count");

        // A runner that re-attaches did not start it: the log's count, not marked exact.
        let out = attach(&engine, &id, &profile, &paths, Deadline::At(past), None)
            .await
            .unwrap();
        assert_eq!(out.log.bytes_seen, "ignoring SIGTERM\n".len() as u64);
        assert!(!out.log.bytes_seen_exact);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_past_kills_at_once() {
        let d = tempfile::tempdir().unwrap();
        let paths = RunPaths {
            log: d.path().join("train.log"),
            telemetry: d.path().join("t.jsonl"),
        };
        let mut profile = SandboxProfile::builtin("strict").unwrap();
        profile.grace_period = Duration::from_millis(50);
        let engine = Stubborn::new();
        let past = SystemTime::now() - Duration::from_secs(3600);
        // Tokio's paused clock: only the runner's own sleeps move it, not a loaded machine.
        let t = tokio::time::Instant::now();
        let out = attach(&engine, "fake", &profile, &paths, Deadline::At(past), None)
            .await
            .unwrap();
        assert_eq!(out.status, RunStatus::Timeout);
        assert_eq!(*engine.signals.lock().unwrap(), ["SIGTERM", "SIGKILL"]);
        // SIGTERM at once, SIGKILL after the 50 ms grace period: nothing waited for a second.
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
}
