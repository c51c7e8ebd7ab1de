//! Teardown: remove every container, network and image a run created, found by the
//! `reprobox.run` label, on every path (success, failure, Ctrl-C). [`TeardownGuard`] does it when dropped if
//! nobody called [`TeardownGuard::finish`]; the explicit call is the one that reports errors.

use serde::Serialize;

use super::SandboxError;
use super::container::LABEL_RUN;
use crate::engine::ContainerEngine;

/// What a cleanup removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Container ids removed.
    pub containers: Vec<String>,
    /// Network ids removed (the evaluation's internal network, docs/sandbox.md).
    pub networks: Vec<String>,
    /// Image ids removed.
    pub images: Vec<String>,
}

/// Removes the run's containers (killing running ones), then its networks (a network with a
/// container still attached cannot be removed), then its images.
pub async fn cleanup_by_label<E: ContainerEngine>(
    engine: &E,
    run_id: &str,
) -> Result<CleanupReport, SandboxError> {
    let label = format!("{LABEL_RUN}={run_id}");
    let mut report = CleanupReport::default();
    let mut first_error: Option<SandboxError> = None;
    for c in engine.list_containers(&label).await? {
        match engine.remove_container(&c.id).await {
            Ok(()) => report.containers.push(c.id),
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    match engine.list_networks(&label).await {
        Ok(list) => {
            for n in list {
                match engine.remove_network(&n.id).await {
                    Ok(()) => report.networks.push(n.id),
                    Err(e) => {
                        first_error.get_or_insert(e.into());
                    }
                }
            }
        }
        Err(e) => {
            first_error.get_or_insert(e.into());
        }
    }
    match engine.remove_images(&label).await {
        Ok(ids) => report.images = ids,
        Err(e) => {
            first_error.get_or_insert(e.into());
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Cleans a run up when dropped, unless [`finish`](Self::finish) or [`disarm`](Self::disarm)
/// ran. The drop path spawns the cleanup on the current Tokio runtime (best effort: a runtime
/// that is shutting down may not run it), so call `finish` on every path you control.
pub struct TeardownGuard<E: ContainerEngine + Clone + 'static> {
    engine: E,
    run_id: String,
    armed: bool,
}

impl<E: ContainerEngine + Clone + 'static> TeardownGuard<E> {
    /// A guard for `run_id`.
    pub fn new(engine: &E, run_id: &str) -> Self {
        TeardownGuard {
            engine: engine.clone(),
            run_id: run_id.to_owned(),
            armed: true,
        }
    }

    /// Cleans up now and reports what happened.
    pub async fn finish(mut self) -> Result<CleanupReport, SandboxError> {
        self.armed = false;
        cleanup_by_label(&self.engine, &self.run_id).await
    }

    /// Leaves the run's containers and images in place (e.g. to resume later).
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl<E: ContainerEngine + Clone + 'static> Drop for TeardownGuard<E> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let engine = self.engine.clone();
            let run_id = std::mem::take(&mut self.run_id);
            handle.spawn(async move {
                // Nobody is left to report to; the next `cleanup_by_label` will retry.
                let _ = cleanup_by_label(&engine, &run_id).await;
            });
        }
    }
}

/// A container stopped by [`reap_expired`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reaped {
    pub container_id: String,
    pub run_id: String,
    /// The deadline it carried, UNIX seconds.
    pub deadline_unix: u64,
}

/// Finds running reprobox containers whose `reprobox.deadline` label has passed by more than
/// `grace` and kills them (SIGKILL). A runner calls this when it starts, so a container whose
/// runner died is never left training past its wall clock. The containers are left in place, not
/// removed: a later `resume` of their run finds them stopped after the deadline and records a
/// timeout.
pub async fn reap_expired<E: ContainerEngine>(
    engine: &E,
    now: std::time::SystemTime,
    grace: std::time::Duration,
) -> Result<Vec<Reaped>, SandboxError> {
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut reaped = Vec::new();
    for c in engine.list_containers(LABEL_RUN).await? {
        if c.state != "running" {
            continue;
        }
        let Some(deadline) = c
            .labels
            .get(super::container::LABEL_DEADLINE)
            .and_then(|d| d.parse::<u64>().ok())
        else {
            continue;
        };
        if now > deadline.saturating_add(grace.as_secs()) {
            engine.kill_container(&c.id, "SIGKILL").await?;
            reaped.push(Reaped {
                container_id: c.id.clone(),
                run_id: c.labels.get(LABEL_RUN).cloned().unwrap_or_default(),
                deadline_unix: deadline,
            });
        }
    }
    Ok(reaped)
}
