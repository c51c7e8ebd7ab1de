//! The training container's configuration: profile + limits + mounts → a bollard
//! `ContainerCreateBody`, following the hardening checklist of `docs/references.md` P§3.1
//! line by line. The only writable mount is the run's `out/` directory at `/out`; inputs are
//! bind-mounted read-only under `/inputs`; nothing else from the host is mounted, and never the
//! Docker socket.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, DeviceRequest, EndpointSettings, HostConfig, HostConfigLogConfig,
    NetworkingConfig, ResourcesUlimits,
};

use super::SandboxError;
use super::profile::SandboxProfile;
use super::seccomp::SeccompFilter;

/// The label every reprobox container and image carries: the run id.
pub const LABEL_RUN: &str = "reprobox.run";
/// The label naming the pipeline stage (`build`, `train`, `eval`).
pub const LABEL_STAGE: &str = "reprobox.stage";
/// Container label: the run's absolute deadline in UNIX seconds, so any later runner on the host
/// can find and stop a container whose own runner died (`teardown::reap_expired`).
pub const LABEL_DEADLINE: &str = "reprobox.deadline";
/// Where the writable output directory appears in the container.
pub const OUT_MOUNT: &str = "/out";
/// Where inputs appear in the container.
pub const INPUTS_ROOT: &str = "/inputs";

/// Memory and disk limits, from the policy (plain numbers here so the policy module can change).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerLimits {
    /// Memory limit in bytes; memory+swap is set to the same value (no swap).
    pub memory_bytes: u64,
    /// Disk cap for the container's writable layer; applied only where the storage driver
    /// supports it (overlay2 on xfs with pquota), otherwise recorded and not enforced.
    pub disk_bytes: Option<u64>,
    /// CPU limit in cores (fractional), or `None` for all host cores.
    pub cpus: Option<f64>,
}

/// One read-only input mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputMount {
    /// The staged directory or file on the host.
    pub host: PathBuf,
    /// The relative path under `/inputs` (e.g. `base_model`, `datasets/dolly`).
    pub target: String,
}

/// Everything needed to create one sandboxed container.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The run id (container label `reprobox.run`, container name prefix).
    pub run_id: String,
    /// The pipeline stage (`train`, `eval`): label `reprobox.stage` and part of the name.
    pub stage: String,
    /// The image to run (id or tag).
    pub image: String,
    /// The command; `None` runs the image's CMD.
    pub command: Option<Vec<String>>,
    /// Extra environment (`HOME=/tmp` and `PYTHONUNBUFFERED=1` are set unless given here).
    pub env: Vec<(String, String)>,
    /// Working directory; `None` keeps the image's.
    pub workdir: Option<String>,
    /// The validated sandbox profile.
    pub profile: SandboxProfile,
    /// Memory, disk and CPU from the policy.
    pub limits: ContainerLimits,
    /// The host directory mounted read-write at `/out` (created if missing).
    pub out_dir: PathBuf,
    /// Read-only inputs.
    pub inputs: Vec<InputMount>,
    /// At most one GPU, pinned by UUID (see `reprobox::gpu`); `None` for no GPU.
    pub gpu: Option<DeviceRequest>,
    /// Whether the storage driver enforces `storage_opt.size` (checked by the caller from
    /// `docker info`); when false, `limits.disk_bytes` is not passed (Docker would refuse).
    pub storage_quota_supported: bool,
    /// The absolute deadline (UNIX seconds), recorded as the `reprobox.deadline` label.
    pub deadline_unix: Option<u64>,
}

impl RunSpec {
    /// The container's name: `reprobox-<run>-<stage>`.
    pub fn container_name(&self) -> String {
        format!("reprobox-{}-{}", self.run_id, self.stage)
    }
}

/// The one network a sandboxed container may join instead of `none`: the internal network the
/// evaluation stage creates for an HTTP harness (`super::serve`). Everything else about the
/// container stays as [`create_body`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// The network's name (created by reprobox, internal, labelled with the run).
    pub network: String,
    /// DNS names the container answers to on it.
    pub aliases: Vec<String>,
}

/// [`create_body`], attached to `network` when given: `NetworkMode` is the network and the
/// container's endpoint carries the aliases. Docker's built-in networks (`host`, `bridge`,
/// `default`, `none`) and another container's namespace are refused: only a network reprobox
/// created may be joined.
pub fn create_body_on(
    spec: &RunSpec,
    network: Option<&NetworkAttachment>,
) -> Result<ContainerCreateBody, SandboxError> {
    let mut body = create_body(spec)?;
    let Some(net) = network else {
        return Ok(body);
    };
    let name = net.network.as_str();
    if name.is_empty()
        || matches!(name, "host" | "bridge" | "default" | "none")
        || name.contains(':')
        || !name.starts_with("reprobox-")
    {
        return Err(SandboxError::Network {
            network: name.to_owned(),
            problem: "is not a network reprobox created for this run".to_owned(),
        });
    }
    body.network_disabled = Some(false);
    if let Some(h) = body.host_config.as_mut() {
        h.network_mode = Some(name.to_owned());
    }
    body.networking_config = Some(NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            name.to_owned(),
            EndpointSettings {
                aliases: Some(net.aliases.clone()),
                ..Default::default()
            },
        )])),
    });
    Ok(body)
}

/// Checks that a run id is safe in a container name and a label value.
pub fn check_run_id(run_id: &str) -> Result<(), SandboxError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 64
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && run_id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(SandboxError::BadRunId {
            run_id: run_id.to_owned(),
        })
    }
}

fn bind_source(path: &Path) -> Result<String, SandboxError> {
    let abs = std::fs::canonicalize(path).map_err(|source| SandboxError::Mount {
        path: path.to_owned(),
        source,
    })?;
    let s = abs.to_string_lossy().into_owned();
    // A colon or comma would be read as a bind option separator.
    if s.contains(':') || s.contains(',') {
        return Err(SandboxError::MountPath {
            path: abs,
            problem: "contains `:` or `,`".to_owned(),
        });
    }
    if s.ends_with("docker.sock") || s == "/var/run" || s == "/run" || s == "/" {
        return Err(SandboxError::MountPath {
            path: abs,
            problem: "is the Docker socket or contains it".to_owned(),
        });
    }
    Ok(s)
}

fn input_target(target: &str) -> Result<String, SandboxError> {
    let p = Path::new(target);
    let plain = !target.is_empty()
        && !target.contains(':')
        && !target.contains(',')
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(SandboxError::MountPath {
            path: PathBuf::from(target),
            problem: "is not a plain relative path under /inputs".to_owned(),
        });
    }
    Ok(format!("{INPUTS_ROOT}/{target}"))
}

/// Creates the output directory and hands it to the sandbox user, who must be able to write
/// it. A runner that is not root cannot chown, so it opens the directory's mode instead; only
/// this one directory, inside the run directory, is affected.
fn prepare_out_dir(dir: &Path, user: &str) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|source| SandboxError::Mount {
        path: dir.to_owned(),
        source,
    })?;
    let ids = user
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)));
    let chowned = ids.is_some_and(|(u, g)| std::os::unix::fs::chown(dir, Some(u), Some(g)).is_ok());
    if !chowned {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).map_err(
            |source| SandboxError::Mount {
                path: dir.to_owned(),
                source,
            },
        )?;
    }
    Ok(())
}

/// Builds the container's create body. Pure apart from resolving mount paths on the host.
pub fn create_body(spec: &RunSpec) -> Result<ContainerCreateBody, SandboxError> {
    check_run_id(&spec.run_id)?;
    let p = &spec.profile;
    prepare_out_dir(&spec.out_dir, &p.user)?;
    let mut binds = vec![format!("{}:{OUT_MOUNT}:rw", bind_source(&spec.out_dir)?)];
    for input in &spec.inputs {
        binds.push(format!(
            "{}:{}:ro",
            bind_source(&input.host)?,
            input_target(&input.target)?
        ));
    }
    let memory = i64::try_from(spec.limits.memory_bytes).map_err(|_| SandboxError::Limit {
        field: "memory_bytes",
        problem: "is too large".to_owned(),
    })?;
    if memory < 6 << 20 {
        // Docker refuses limits below 6 MiB with a less helpful message.
        return Err(SandboxError::Limit {
            field: "memory_bytes",
            problem: "is below Docker's minimum of 6MiB".to_owned(),
        });
    }
    let tmpfs: HashMap<String, String> = p
        .tmpfs
        .iter()
        .map(|t| (t.path.clone(), t.docker_options()))
        .collect();
    let ulimits = p
        .ulimits
        .iter()
        .map(|u| ResourcesUlimits {
            name: Some(u.name.to_owned()),
            soft: Some(u.value),
            hard: Some(u.value),
        })
        .collect();
    let storage_opt = match (spec.limits.disk_bytes, spec.storage_quota_supported) {
        (Some(bytes), true) => Some(HashMap::from([("size".to_owned(), bytes.to_string())])),
        _ => None,
    };
    // Docker's own log store is capped too, rotated at the profile's cap, so a flood fills
    // neither our log nor the daemon's disk. The `local` driver (protobuf records) rather than
    // json-file: the runner follows the log through the daemon, and the daemon serves a
    // `local` log with ~40% less CPU than it spends decoding json-file (docs/sandbox.md,
    // "Measured cost"); uncompressed, so rotation costs no gzip and a follower can read on.
    let log_config = HostConfigLogConfig {
        typ: Some("local".to_owned()),
        config: Some(HashMap::from([
            (
                "max-size".to_owned(),
                p.log_cap_bytes.max(1 << 20).to_string(),
            ),
            ("max-file".to_owned(), "2".to_owned()),
            ("compress".to_owned(), "false".to_owned()),
        ])),
    };
    let host = HostConfig {
        binds: Some(binds),
        network_mode: Some("none".to_owned()),
        cap_drop: Some(p.cap_drop.clone()),
        cap_add: None,
        privileged: Some(false),
        // reprobox's own allowlist rather than Docker's default, which allows ptrace
        // (src/sandbox/seccomp.rs); never seccomp=unconfined (profile validation refuses it).
        security_opt: Some(vec![
            "no-new-privileges:true".to_owned(),
            SeccompFilter::for_profile(p.allow_ptrace).security_opt(),
        ]),
        readonly_rootfs: Some(true),
        tmpfs: Some(tmpfs),
        pids_limit: Some(p.pids_limit),
        memory: Some(memory),
        memory_swap: Some(memory),
        // Keep the kernel's OOM killer on, so an over-limit submission ends as Oom, not hangs.
        oom_kill_disable: Some(false),
        shm_size: Some(i64::try_from(p.shm_size_bytes).unwrap_or(i64::MAX)),
        ulimits: Some(ulimits),
        nano_cpus: spec.limits.cpus.map(|c| (c * 1e9) as i64),
        init: Some(p.init),
        runtime: Some(p.runtime.docker_name().to_owned()),
        ipc_mode: Some("private".to_owned()),
        device_requests: spec.gpu.clone().map(|d| vec![d]),
        storage_opt,
        log_config: Some(log_config),
        auto_remove: Some(false),
        ..Default::default()
    };
    let mut env: Vec<(String, String)> = spec.env.clone();
    for (k, v) in [
        ("HOME", "/tmp"),
        ("PYTHONUNBUFFERED", "1"),
        ("TMPDIR", "/tmp"),
    ] {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    let mut labels = HashMap::from([
        (LABEL_RUN.to_owned(), spec.run_id.clone()),
        (LABEL_STAGE.to_owned(), spec.stage.clone()),
        ("reprobox.profile".to_owned(), p.name.clone()),
    ]);
    if let Some(d) = spec.deadline_unix {
        labels.insert(LABEL_DEADLINE.to_owned(), d.to_string());
    }
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.workdir.clone(),
        user: Some(p.user.clone()),
        labels: Some(labels),
        network_disabled: Some(true),
        tty: Some(false),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        stop_signal: Some("SIGTERM".to_owned()),
        stop_timeout: Some(i64::try_from(p.grace_period.as_secs()).unwrap_or(i64::MAX)),
        host_config: Some(host),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(out: &Path) -> RunSpec {
        RunSpec {
            run_id: "t-1".into(),
            stage: "train".into(),
            image: "reprobox/shell:1".into(),
            command: Some(vec!["true".into()]),
            env: vec![],
            workdir: None,
            profile: SandboxProfile::builtin("strict").unwrap(),
            limits: ContainerLimits {
                memory_bytes: 64 << 20,
                disk_bytes: Some(1 << 30),
                cpus: None,
            },
            out_dir: out.to_owned(),
            inputs: vec![],
            gpu: None,
            storage_quota_supported: false,
            deadline_unix: None,
        }
    }

    #[test]
    fn hardening_checklist() {
        let d = tempfile::tempdir().unwrap();
        let body = create_body(&spec(d.path())).unwrap();
        let h = body.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(h.memory, h.memory_swap);
        assert_eq!(h.readonly_rootfs, Some(true));
        let sec = h.security_opt.clone().unwrap();
        assert_eq!(sec[0], "no-new-privileges:true");
        assert_eq!(
            sec[1],
            SeccompFilter::for_profile(false).security_opt(),
            "reprobox's filter, ptrace denied"
        );
        assert!(h.storage_opt.is_none(), "no quota support: not passed");
        let binds = h.binds.unwrap();
        assert_eq!(binds.len(), 1);
        assert!(binds[0].ends_with(":/out:rw"));
        assert_eq!(body.user.as_deref(), Some("10001:10001"));
    }

    #[test]
    fn a_network_attachment_changes_only_the_network() {
        let d = tempfile::tempdir().unwrap();
        let plain = create_body(&spec(d.path())).unwrap();
        let net = NetworkAttachment {
            network: "reprobox-t-1-eval-net".into(),
            aliases: vec!["model".into()],
        };
        let body = create_body_on(&spec(d.path()), Some(&net)).unwrap();
        let h = body.host_config.as_ref().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("reprobox-t-1-eval-net"));
        assert_eq!(body.network_disabled, Some(false));
        let eps = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            eps["reprobox-t-1-eval-net"].aliases,
            Some(vec!["model".to_owned()])
        );
        let ph = plain.host_config.unwrap();
        assert_eq!(h.cap_drop, ph.cap_drop);
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.security_opt, ph.security_opt);
        assert_eq!(h.pids_limit, ph.pids_limit);
        assert_eq!(h.memory, ph.memory);
        assert_eq!(body.user, plain.user);
        for bad in ["host", "bridge", "none", "container:abc", "mynet", ""] {
            let n = NetworkAttachment {
                network: bad.into(),
                aliases: vec![],
            };
            assert!(
                matches!(
                    create_body_on(&spec(d.path()), Some(&n)),
                    Err(SandboxError::Network { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_mounts_and_ids_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(d.path());
        s.inputs.push(InputMount {
            host: d.path().to_owned(),
            target: "../etc".into(),
        });
        assert!(matches!(
            create_body(&s),
            Err(SandboxError::MountPath { .. })
        ));
        let mut s = spec(d.path());
        s.inputs.push(InputMount {
            host: "/".into(),
            target: "root".into(),
        });
        assert!(matches!(
            create_body(&s),
            Err(SandboxError::MountPath { .. })
        ));
        let mut s = spec(d.path());
        s.run_id = "a b".into();
        assert!(matches!(
            create_body(&s),
            Err(SandboxError::BadRunId { .. })
        ));
        let mut s = spec(d.path());
        s.limits.memory_bytes = 1 << 20;
        assert!(matches!(create_body(&s), Err(SandboxError::Limit { .. })));
    }
}
