//! `host_mount` in compose files (`docker-compose*.yml`, `compose*.yml`, anywhere in the
//! submission): host paths under `volumes:` and the Docker socket. The sandbox mounts neither.

use crate::finding::{Finding, FindingKind};

pub const HINT_HOST_MOUNT: &str = "the sandbox mounts no host volume and no Docker socket: read inputs from /inputs and write the model under /out";

/// `host_mount` in a compose file: host paths under `volumes:` and the Docker socket.
pub fn lint_compose(text: &str, label: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let l = raw
            .trim()
            .trim_start_matches("- ")
            .trim_matches(['"', '\'']);
        if l.contains("docker.sock") {
            out.push(
                Finding::error(
                    FindingKind::HostMount,
                    "the compose file mounts the Docker socket, which gives the container the host",
                    HINT_HOST_MOUNT,
                )
                .at(label)
                .line(line),
            );
        } else if let Some((host, _)) = l.split_once(':')
            && (host.starts_with('/')
                || host.starts_with("./")
                || host.starts_with("~/")
                || host.starts_with("${"))
            && !l.contains("://")
        {
            out.push(
                Finding::warning(
                    FindingKind::HostMount,
                    format!("the compose file mounts the host path `{host}`"),
                    HINT_HOST_MOUNT,
                )
                .at(label)
                .line(line),
            );
        }
    }
    out
}

/// A compose file by its name.
pub fn is_compose_file(rel: &str) -> bool {
    let n = rel.rsplit('/').next().unwrap_or(rel);
    (n.starts_with("docker-compose") || n.starts_with("compose"))
        && (n.ends_with(".yml") || n.ends_with(".yaml"))
}
