//! Sandbox profiles (`sandboxes/*.toml`): the hardened container as data.
//!
//! A profile is parsed in two passes: serde reads the raw [`SandboxProfileConfig`] (unknown keys
//! are errors, because a typo must never loosen a limit), then [`SandboxProfileConfig::validate`]
//! checks every field in one place and yields a [`SandboxProfile`] with plain typed values. The
//! validation also refuses any profile that loosens the baseline every reprobox sandbox keeps
//! (no network, all capabilities dropped, no-new-privileges, reprobox's seccomp filter, a
//! read-only root and a non-root user; `docs/references.md` P§3.1), so what
//! `docs/sandbox.md` promises holds for every profile reprobox accepts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::units::{HumanDuration, HumanSize};

/// The profile schema this reprobox reads.
pub const PROFILE_SCHEMA_VERSION: u32 = 1;

/// The profile used when a policy names none.
pub const DEFAULT_PROFILE: &str = "strict";

/// The profiles shipped in `sandboxes/`, embedded so the binary works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    ("strict", include_str!("../../sandboxes/strict.toml")),
    ("gvisor", include_str!("../../sandboxes/gvisor.toml")),
];

/// The largest sandbox profile read: a profile is a page of TOML.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// A sandbox profile's cap, as [`crate::input_file`] enforces it.
pub const PROFILE_CAP: crate::input_file::Cap = crate::input_file::Cap::new(
    "sandbox profile",
    MAX_PROFILE_BYTES,
    "a profile is a page of TOML; check sandboxes/<name>.toml",
);

/// Errors reading or validating a sandbox profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile is not a regular file, or is past [`PROFILE_CAP`].
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),
    /// The profile file could not be read.
    #[error(
        "cannot read sandbox profile {path}: {source} (hint: profiles live in sandboxes/<name>.toml)"
    )]
    Read {
        /// The profile file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No built-in profile has this name.
    #[error("unknown sandbox profile `{name}` (hint: the built-in profiles are {known})")]
    UnknownBuiltin {
        /// The requested name.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// A profile file that is a symlink to somewhere outside its directory.
    #[error("sandbox profile {} is a symlink to {}, outside {} (hint: copy the profile into the directory instead of linking to it)", path.display(), target.display(), dir.display())]
    SymlinkEscape {
        /// The link.
        path: PathBuf,
        /// Where it resolves.
        target: PathBuf,
        /// The directory it must stay in.
        dir: PathBuf,
    },
    /// A profile name that cannot be a file name.
    #[error("invalid sandbox profile name `{name}` (hint: use letters, digits, `-` and `_` only)")]
    BadName {
        /// The requested name.
        name: String,
    },
    /// TOML syntax, an unknown key, or a value of the wrong form.
    #[error("{origin}{}: {message} (hint: see docs/sandbox.md for every field and its form)", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// Where the text came from (a path or `builtin:<name>`).
        origin: String,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// A profile written for a newer reprobox.
    #[error(
        "{origin}: schema_version {found} requires a newer reprobox (this one reads {PROFILE_SCHEMA_VERSION}) (hint: upgrade reprobox or write schema_version = {PROFILE_SCHEMA_VERSION})"
    )]
    NewerSchema {
        /// Where the text came from.
        origin: String,
        /// The version the file declares.
        found: u32,
    },
    /// A field whose value is out of range or loosens the baseline.
    #[error("{origin}{}: field `{field}`: {problem} (hint: {hint})", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// The 1-based line of the field, when found.
        line: Option<usize>,
        /// The field's name as written in the file.
        field: String,
        /// What is wrong.
        problem: String,
        /// What to write instead.
        hint: String,
    },
}

/// The container runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Docker's default OCI runtime: namespaces, cgroups, seccomp on the host kernel.
    Runc,
    /// gVisor: a user-space kernel between the container and the host (registered as `runsc`).
    Runsc,
}

impl Runtime {
    /// The runtime's name as the Docker daemon knows it.
    pub fn docker_name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Runsc => "runsc",
        }
    }
}

/// One tmpfs scratch mount as written in a profile.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TmpfsConfig {
    /// Absolute path inside the container.
    pub path: String,
    /// Size cap (the tmpfs `size=` option); the content counts against the container's memory.
    pub size: HumanSize,
    /// Mount options besides `size`, from: nosuid, nodev, noexec, exec, rw.
    #[serde(default)]
    pub options: Vec<String>,
}

/// Resource limits (`setrlimit`) inside the container; soft and hard are set equal.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UlimitsConfig {
    /// Open files per process.
    pub nofile: Option<u64>,
    /// Processes per user (the pids limit is the real bound; this one is per uid).
    pub nproc: Option<u64>,
    /// Core dump size; "0B" disables core dumps, which could fill the disk and leak memory.
    pub core: Option<HumanSize>,
    /// Largest file a process may write.
    pub fsize: Option<HumanSize>,
    /// Stack size.
    pub stack: Option<HumanSize>,
    /// Locked memory (NCCL and pinned host memory may want more).
    pub memlock: Option<HumanSize>,
}

/// A sandbox profile exactly as written in `sandboxes/<name>.toml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "reprobox sandbox profile",
    description = "The hardened container as data (sandboxes/*.toml). See docs/sandbox.md."
)]
pub struct SandboxProfileConfig {
    /// The profile format version; this reprobox reads 1.
    pub schema_version: u32,
    /// One line saying what the profile is for.
    #[serde(default)]
    pub description: String,
    /// The OCI runtime: "runc" or "runsc" (gVisor).
    pub runtime: Runtime,
    /// Network mode; only "none" is accepted (loopback only; `network_disabled` is set too).
    pub network: String,
    /// The uid:gid the submission runs as, numeric and not root.
    pub user: String,
    /// Run Docker's init (tini) as PID 1: reaps zombies and forwards SIGTERM.
    pub init: bool,
    /// Mount the image's root filesystem read-only; must be true.
    pub read_only_root: bool,
    /// Set the kernel's no_new_privs flag (setuid binaries gain nothing); must be true.
    pub no_new_privileges: bool,
    /// Capabilities to drop; must contain "ALL".
    pub cap_drop: Vec<String>,
    /// The seccomp filter: "default" (reprobox's allowlist, `sandboxes/seccomp.json`).
    /// "unconfined" is refused.
    pub seccomp: String,
    /// Allow `ptrace` inside the container (debuggers, py-spy). Off by default: with it a
    /// submission can stop its own init and leave the container hanging until the deadline.
    #[serde(default)]
    pub allow_ptrace: bool,
    /// Most processes and threads at once in the container (a fork bomb stops here).
    pub pids_limit: u32,
    /// Size of /dev/shm.
    pub shm_size: HumanSize,
    /// After SIGTERM at the deadline, how long before SIGKILL.
    pub grace_period: HumanDuration,
    /// Bytes of stdout and stderr kept in the run's log; later output is counted and dropped.
    pub log_cap: HumanSize,
    /// Lines of the log's end kept in memory for the report.
    pub log_tail_lines: u32,
    /// Bytes of the log's end kept in memory for the report.
    pub log_tail_bytes: HumanSize,
    /// How often container CPU, memory and pids are sampled into telemetry.jsonl.
    pub telemetry_interval: HumanDuration,
    /// Scratch tmpfs mounts (the only writable paths besides /out).
    #[serde(default)]
    pub tmpfs: Vec<TmpfsConfig>,
    /// Resource limits inside the container.
    #[serde(default)]
    pub ulimits: UlimitsConfig,
}

/// One validated tmpfs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    /// Absolute path inside the container.
    pub path: String,
    /// Size cap in bytes.
    pub size_bytes: u64,
    /// Options besides `size`.
    pub options: Vec<String>,
}

impl TmpfsMount {
    /// The option string Docker's `Tmpfs` map takes (`rw,nosuid,nodev,exec,size=…`).
    ///
    /// Docker mounts a tmpfs `noexec` unless told `exec`, so a profile that does not ask for
    /// `noexec` gets `exec` written out: what the profile says is what the container gets.
    pub fn docker_options(&self) -> String {
        let mut opts: Vec<String> = vec!["rw".to_owned()];
        opts.extend(self.options.iter().filter(|o| o.as_str() != "rw").cloned());
        if !self.options.iter().any(|o| o == "noexec" || o == "exec") {
            opts.push("exec".to_owned());
        }
        opts.push(format!("size={}", self.size_bytes));
        opts.join(",")
    }
}

/// One validated ulimit (soft = hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    /// The limit's name as Docker spells it (`nofile`, `core`, …).
    pub name: &'static str,
    /// The value, in the limit's own unit (count or bytes).
    pub value: i64,
}

/// A validated sandbox profile: what [`crate::sandbox::container`] turns into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxProfile {
    /// The profile's name (its file stem).
    pub name: String,
    /// The SHA-256 of the profile's TOML text: what the plan and the provenance record, and what
    /// a later stage checks it still reads.
    pub source_sha256: crate::digest::Sha256Digest,
    /// One line saying what it is for.
    pub description: String,
    /// The OCI runtime.
    pub runtime: Runtime,
    /// The uid:gid the submission runs as.
    pub user: String,
    /// Docker's init as PID 1.
    pub init: bool,
    /// Whether the seccomp filter allows `ptrace` (the profile's `allow_ptrace`).
    pub allow_ptrace: bool,
    /// Capabilities dropped (contains ALL).
    pub cap_drop: Vec<String>,
    /// The pids limit.
    pub pids_limit: i64,
    /// /dev/shm size in bytes.
    pub shm_size_bytes: u64,
    /// Scratch mounts.
    pub tmpfs: Vec<TmpfsMount>,
    /// Ulimits.
    pub ulimits: Vec<Ulimit>,
    /// SIGTERM → SIGKILL grace.
    pub grace_period: Duration,
    /// Log cap in bytes.
    pub log_cap_bytes: u64,
    /// Tail lines kept for the report.
    pub log_tail_lines: usize,
    /// Tail bytes kept for the report.
    pub log_tail_bytes: usize,
    /// Telemetry sampling interval.
    pub telemetry_interval: Duration,
}

/// Paths a submission may never shadow with a tmpfs: the output, the inputs and the kernel's.
const RESERVED_PATHS: &[&str] = &["/", "/out", "/inputs", "/proc", "/sys", "/dev"];

impl SandboxProfileConfig {
    /// Parses a profile's text; `origin` names it in errors (a path or `builtin:<name>`).
    pub fn parse(src: &str, origin: &str) -> Result<Self, ProfileError> {
        // A version-only first pass, so a newer file says "requires a newer reprobox" rather than
        // failing on a field this version does not know.
        #[derive(Deserialize)]
        struct VersionOnly {
            schema_version: Option<u32>,
        }
        if let Ok(VersionOnly {
            schema_version: Some(v),
        }) = toml::from_str::<VersionOnly>(src)
            && v > PROFILE_SCHEMA_VERSION
        {
            return Err(ProfileError::NewerSchema {
                origin: origin.to_owned(),
                found: v,
            });
        }
        toml::from_str(src).map_err(|e| ProfileError::Parse {
            origin: origin.to_owned(),
            line: e.span().map(|s| crate::policy::line_of(src, s.start)),
            message: e.message().to_owned(),
        })
    }

    /// Checks every field in one place and returns the typed profile.
    pub fn validate(
        self,
        name: &str,
        src: &str,
        origin: &str,
    ) -> Result<SandboxProfile, ProfileError> {
        // The line comes from the TOML spans of the field's path (`tmpfs[1].path`), so a key
        // that appears in several tables points at the right one.
        let invalid = |field: &str, problem: String, hint: &str| ProfileError::Invalid {
            origin: origin.to_owned(),
            line: crate::policy::line_of_path(src, field),
            field: field.to_owned(),
            problem,
            hint: hint.to_owned(),
        };
        if self.schema_version != PROFILE_SCHEMA_VERSION {
            return Err(invalid(
                "schema_version",
                format!(
                    "is {}, this reprobox reads {PROFILE_SCHEMA_VERSION}",
                    self.schema_version
                ),
                "write schema_version = 1",
            ));
        }
        if self.network != "none" {
            return Err(invalid(
                "network",
                format!(
                    "`{}` would let the submission reach a network",
                    self.network
                ),
                "write network = \"none\"; inputs are staged read-only before the run",
            ));
        }
        let user_ok = self
            .user
            .split_once(':')
            .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)))
            .is_some_and(|(u, g)| u != 0 && g != 0);
        if !user_ok {
            return Err(invalid(
                "user",
                format!("`{}` is not a numeric non-root uid:gid", self.user),
                "write user = \"10001:10001\" (names depend on the image's /etc/passwd; numbers do not)",
            ));
        }
        if !self.read_only_root {
            return Err(invalid(
                "read_only_root",
                "false would let the submission change its own image".to_owned(),
                "write read_only_root = true and add a [[tmpfs]] for scratch paths",
            ));
        }
        if !self.no_new_privileges {
            return Err(invalid(
                "no_new_privileges",
                "false would let setuid binaries gain privileges".to_owned(),
                "write no_new_privileges = true",
            ));
        }
        let mut cap_drop = Vec::new();
        for cap in &self.cap_drop {
            let cap = cap.trim().to_ascii_uppercase();
            let cap = cap.strip_prefix("CAP_").unwrap_or(&cap).to_owned();
            if cap.is_empty() || !cap.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                return Err(invalid(
                    "cap_drop",
                    format!("`{cap}` is not a capability name"),
                    "write cap_drop = [\"ALL\"]",
                ));
            }
            cap_drop.push(cap);
        }
        if !cap_drop.iter().any(|c| c == "ALL") {
            return Err(invalid(
                "cap_drop",
                "does not contain \"ALL\"".to_owned(),
                "write cap_drop = [\"ALL\"]; training code needs no capability",
            ));
        }
        if self.seccomp != "default" {
            return Err(invalid(
                "seccomp",
                format!(
                    "`{}` is not accepted; only reprobox's default filter is",
                    self.seccomp
                ),
                "write seccomp = \"default\" (never \"unconfined\")",
            ));
        }
        if self.pids_limit == 0 {
            return Err(invalid(
                "pids_limit",
                "0 means unlimited in Docker".to_owned(),
                "write pids_limit = 4096",
            ));
        }
        if self.shm_size.0 < 1 << 20 {
            return Err(invalid(
                "shm_size",
                "is below 1MiB".to_owned(),
                "write shm_size = \"16GiB\" for PyTorch DataLoader workers",
            ));
        }
        if self.grace_period.0 > Duration::from_secs(3600) {
            return Err(invalid(
                "grace_period",
                "is longer than 1h".to_owned(),
                "write grace_period = \"30s\"",
            ));
        }
        if self.log_cap.0 < 4096 {
            return Err(invalid(
                "log_cap",
                "is below 4KiB".to_owned(),
                "write log_cap = \"256MiB\"",
            ));
        }
        if self.log_tail_lines == 0 || self.log_tail_lines > 100_000 {
            return Err(invalid(
                "log_tail_lines",
                format!("{} is outside 1..=100000", self.log_tail_lines),
                "write log_tail_lines = 200",
            ));
        }
        if self.log_tail_bytes.0 < 1024 || self.log_tail_bytes.0 > 64 << 20 {
            return Err(invalid(
                "log_tail_bytes",
                "is outside 1KiB..=64MiB".to_owned(),
                "write log_tail_bytes = \"64KiB\"",
            ));
        }
        if self.telemetry_interval.0 < Duration::from_millis(100) {
            return Err(invalid(
                "telemetry_interval",
                "is below 100ms".to_owned(),
                "write telemetry_interval = \"10s\"",
            ));
        }
        let mut tmpfs: Vec<TmpfsMount> = Vec::new();
        for (i, t) in self.tmpfs.into_iter().enumerate() {
            let field = format!("tmpfs[{i}]");
            let path = t.path.trim_end_matches('/').to_owned();
            if !t.path.starts_with('/')
                || t.path.contains("..")
                || t.path.contains(',')
                || t.path.contains(':')
            {
                return Err(invalid(
                    &format!("{field}.path"),
                    format!("`{}` is not a plain absolute path", t.path),
                    "write path = \"/tmp\"",
                ));
            }
            if RESERVED_PATHS.contains(&path.as_str())
                || path.is_empty()
                || path.starts_with("/out/")
                || path.starts_with("/inputs/")
            {
                return Err(invalid(
                    &format!("{field}.path"),
                    format!("`{}` is reserved", t.path),
                    "use a scratch path such as /tmp or /var/tmp",
                ));
            }
            if tmpfs.iter().any(|m| m.path == path) {
                return Err(invalid(
                    &format!("{field}.path"),
                    format!("`{path}` is mounted twice"),
                    "keep one [[tmpfs]] per path",
                ));
            }
            if t.size.0 == 0 {
                return Err(invalid(
                    &format!("{field}.size"),
                    "0 would let the tmpfs grow to half the host's memory".to_owned(),
                    "write size = \"8GiB\"",
                ));
            }
            for o in &t.options {
                if !matches!(o.as_str(), "nosuid" | "nodev" | "noexec" | "exec" | "rw") {
                    return Err(invalid(
                        &format!("{field}.options"),
                        format!("`{o}` is not accepted"),
                        "use nosuid, nodev, noexec, exec or rw",
                    ));
                }
            }
            if !t.options.iter().any(|o| o == "nosuid") || !t.options.iter().any(|o| o == "nodev") {
                return Err(invalid(
                    &format!("{field}.options"),
                    "must contain nosuid and nodev".to_owned(),
                    "write options = [\"nosuid\", \"nodev\"]",
                ));
            }
            if t.options.iter().any(|o| o == "exec") && t.options.iter().any(|o| o == "noexec") {
                return Err(invalid(
                    &format!("{field}.options"),
                    "contains both exec and noexec".to_owned(),
                    "keep one of them (without either the mount is exec)",
                ));
            }
            tmpfs.push(TmpfsMount {
                path,
                size_bytes: t.size.0,
                options: t.options,
            });
        }
        let u = &self.ulimits;
        let mut ulimits = Vec::new();
        let counts = [("nofile", u.nofile), ("nproc", u.nproc)];
        for (name, v) in counts {
            if let Some(v) = v {
                let value = i64::try_from(v).map_err(|_| {
                    invalid(
                        &format!("ulimits.{name}"),
                        "is too large".to_owned(),
                        "use a smaller number",
                    )
                })?;
                if value == 0 {
                    return Err(invalid(
                        &format!("ulimits.{name}"),
                        "0 would stop every process".to_owned(),
                        "leave it out or raise it",
                    ));
                }
                ulimits.push(Ulimit { name, value });
            }
        }
        let sizes = [
            ("core", u.core),
            ("fsize", u.fsize),
            ("stack", u.stack),
            ("memlock", u.memlock),
        ];
        for (name, v) in sizes {
            if let Some(v) = v {
                let value = i64::try_from(v.0).map_err(|_| {
                    invalid(
                        &format!("ulimits.{name}"),
                        "is too large".to_owned(),
                        "use a smaller size",
                    )
                })?;
                ulimits.push(Ulimit { name, value });
            }
        }
        Ok(SandboxProfile {
            name: name.to_owned(),
            source_sha256: crate::digest::bytes_sha256(src.as_bytes()),
            description: self.description,
            runtime: self.runtime,
            user: self.user,
            init: self.init,
            allow_ptrace: self.allow_ptrace,
            cap_drop,
            pids_limit: i64::from(self.pids_limit),
            shm_size_bytes: self.shm_size.0,
            tmpfs,
            ulimits,
            grace_period: self.grace_period.0,
            log_cap_bytes: self.log_cap.0,
            log_tail_lines: self.log_tail_lines as usize,
            log_tail_bytes: self.log_tail_bytes.0 as usize,
            telemetry_interval: self.telemetry_interval.0,
        })
    }
}

fn check_name(name: &str) -> Result<(), ProfileError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ProfileError::BadName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

impl SandboxProfile {
    /// Parses and validates a profile's text.
    pub fn from_toml(name: &str, src: &str, origin: &str) -> Result<Self, ProfileError> {
        SandboxProfileConfig::parse(src, origin)?.validate(name, src, origin)
    }

    /// A profile shipped with reprobox (`strict`, `gvisor`), embedded at compile time.
    pub fn builtin(name: &str) -> Result<Self, ProfileError> {
        let (_, src) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            ProfileError::UnknownBuiltin {
                name: name.to_owned(),
                known: Self::builtin_names().join(", "),
            }
        })?;
        Self::from_toml(name, src, &format!("builtin:{name}"))
    }

    /// The names of the embedded profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Reads `<path>`; the profile's name is the file stem.
    pub fn from_file(path: &Path) -> Result<Self, ProfileError> {
        let src = crate::input_file::read_to_string(path, PROFILE_CAP)?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        check_name(&name)?;
        Self::from_toml(&name, &src, &path.display().to_string())
    }

    /// Reads `<dir>/<name>.toml`, falling back to the embedded profile of that name when the
    /// directory has none (so a policies checkout without `sandboxes/` still works).
    pub fn load(dir: &Path, name: &str) -> Result<Self, ProfileError> {
        check_name(name)?;
        let path = dir.join(format!("{name}.toml"));
        if let Some(target) = crate::policy::resolves_outside(dir, &path) {
            return Err(ProfileError::SymlinkEscape {
                path,
                target,
                dir: dir.to_owned(),
            });
        }
        // Anything at the path, a FIFO or a device included, is read (and refused) as the
        // profile: only a missing file falls back to the embedded one.
        if path.symlink_metadata().is_ok() {
            Self::from_file(&path)
        } else {
            Self::builtin(name)
        }
    }
}

/// The JSON Schema of the profile format, as checked in at `docs/schemas/sandbox-profile.schema.json`.
pub fn profile_json_schema() -> String {
    let schema = schemars::schema_for!(SandboxProfileConfig);
    // Serializing a schemars value cannot fail (string keys, no non-finite floats).
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: &str = include_str!("../../sandboxes/strict.toml");

    #[test]
    fn builtins_parse_with_no_unknown_keys() {
        for name in SandboxProfile::builtin_names() {
            let p = SandboxProfile::builtin(name).unwrap();
            assert_eq!(p.name, name);
            assert!(p.cap_drop.contains(&"ALL".to_owned()));
            assert!(p.tmpfs.iter().any(|t| t.path == "/tmp"));
        }
        let strict = SandboxProfile::builtin("strict").unwrap();
        assert_eq!(strict.runtime, Runtime::Runc);
        assert_eq!(strict.grace_period, Duration::from_secs(30));
        assert_eq!(strict.log_cap_bytes, 256 << 20);
        assert!(strict.ulimits.contains(&Ulimit {
            name: "core",
            value: 0
        }));
        assert_eq!(
            SandboxProfile::builtin("gvisor").unwrap().runtime,
            Runtime::Runsc
        );
    }

    #[test]
    fn shipped_files_match_the_embedded_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sandboxes");
        for name in SandboxProfile::builtin_names() {
            assert_eq!(
                SandboxProfile::load(&dir, name).unwrap(),
                SandboxProfile::builtin(name).unwrap()
            );
        }
    }

    fn edit(from: &str, to: &str) -> String {
        assert!(
            STRICT.contains(from),
            "fixture edit `{from}` does not apply"
        );
        STRICT.replacen(from, to, 1)
    }

    /// Issue 12 item 4: the line comes from the field's TOML span, not from the first line that
    /// assigns a key of that name (here the first table's `path`).
    #[test]
    fn a_second_tables_field_is_found_on_its_own_line() {
        let src = edit(
            "[ulimits]",
            "[[tmpfs]]\npath = \"/out\"\nsize = \"1GiB\"\noptions = [\"nosuid\", \"nodev\"]\n\n[ulimits]",
        );
        let line = src.lines().position(|l| l == "path = \"/out\"").unwrap() + 1;
        let err = SandboxProfile::from_toml("t", &src, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tmpfs[1].path"), "{err}");
        assert!(err.starts_with(&format!("t.toml:{line}: ")), "{err}");
    }

    #[test]
    fn loosening_is_refused_with_field_and_line() {
        let cases = [
            (
                "network = \"none\"",
                "network = \"bridge\"",
                "field `network`",
            ),
            (
                "cap_drop = [\"ALL\"]",
                "cap_drop = [\"NET_RAW\"]",
                "field `cap_drop`",
            ),
            (
                "no_new_privileges = true",
                "no_new_privileges = false",
                "field `no_new_privileges`",
            ),
            (
                "seccomp = \"default\"",
                "seccomp = \"unconfined\"",
                "never \"unconfined\"",
            ),
            (
                "read_only_root = true",
                "read_only_root = false",
                "field `read_only_root`",
            ),
            ("user = \"10001:10001\"", "user = \"0:0\"", "non-root"),
            ("user = \"10001:10001\"", "user = \"root\"", "non-root"),
            ("pids_limit = 4096", "pids_limit = 0", "unlimited"),
            (
                "options = [\"nosuid\", \"nodev\"]",
                "options = [\"nosuid\"]",
                "nosuid and nodev",
            ),
            (
                "options = [\"nosuid\", \"nodev\"]",
                "options = [\"nosuid\", \"nodev\", \"exec\", \"noexec\"]",
                "both exec and noexec",
            ),
            ("path = \"/tmp\"", "path = \"/out\"", "reserved"),
            ("size = \"8GiB\"", "size = \"0B\"", "tmpfs[0].size"),
        ];
        for (from, to, want) in cases {
            let src = edit(from, to);
            let err = SandboxProfile::from_toml("t", &src, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
            assert!(err.contains("(hint: "), "{err}");
            let line = src
                .lines()
                .position(|l| l.trim_start().starts_with(to.split(' ').next().unwrap()))
                .unwrap()
                + 1;
            assert!(err.starts_with(&format!("t.toml:{line}: ")), "{to}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_units_name_the_line() {
        let src = edit("init = true", "init = true\nprivileged = false");
        let err = SandboxProfile::from_toml("t", &src, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.toml:12") && err.contains("privileged"),
            "{err}"
        );
        let src = edit("grace_period = \"30s\"", "grace_period = \"30 seconds\"");
        let err = SandboxProfile::from_toml("t", &src, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"500ms\""), "{err}");
        let src = edit("schema_version = 1", "schema_version = 7");
        let err = SandboxProfile::from_toml("t", &src, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("requires a newer reprobox"), "{err}");
    }

    /// Issue 17 item 5: a profile's durations are strict, and its file stays in its directory.
    #[test]
    fn loose_durations_and_a_profile_linked_from_outside_are_refused() {
        for (to, want) in [
            ("grace_period = \" 30s\"", "spaces"),
            ("grace_period = \"30\"", "no unit"),
            ("grace_period = \"31d\"", "longer than 30d"),
        ] {
            let src = edit("grace_period = \"30s\"", to);
            let err = SandboxProfile::from_toml("t", &src, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains("t.toml:") && err.contains(want), "{to}: {err}");
        }
        let t = tempfile::tempdir().unwrap();
        let (dir, outside) = (t.path().join("sandboxes"), t.path().join("elsewhere"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("lax.toml"), STRICT).unwrap();
        std::os::unix::fs::symlink(outside.join("lax.toml"), dir.join("lax.toml")).unwrap();
        let err = SandboxProfile::load(&dir, "lax").unwrap_err();
        assert!(matches!(err, ProfileError::SymlinkEscape { .. }), "{err}");
        assert!(err.to_string().contains("outside"), "{err}");
        // A link that stays inside the directory is the directory's own file.
        std::fs::write(dir.join("real.toml"), STRICT).unwrap();
        std::os::unix::fs::symlink(dir.join("real.toml"), dir.join("alias.toml")).unwrap();
        SandboxProfile::load(&dir, "alias").unwrap();
    }

    #[test]
    fn unknown_builtin_lists_the_known_ones() {
        let err = SandboxProfile::builtin("lax").unwrap_err().to_string();
        assert!(err.contains("strict, gvisor"), "{err}");
        assert!(matches!(
            SandboxProfile::load(Path::new("/nonexistent"), "../x"),
            Err(ProfileError::BadName { .. })
        ));
    }

    #[test]
    fn tmpfs_options_string() {
        let p = SandboxProfile::builtin("strict").unwrap();
        assert_eq!(
            p.tmpfs[0].docker_options(),
            format!("rw,nosuid,nodev,exec,size={}", 8u64 << 30)
        );
        let noexec = TmpfsMount {
            path: "/scratch".into(),
            size_bytes: 1 << 20,
            options: vec!["nosuid".into(), "nodev".into(), "noexec".into()],
        };
        assert_eq!(
            noexec.docker_options(),
            "rw,nosuid,nodev,noexec,size=1048576"
        );
    }

    #[test]
    fn schema_is_checked_in() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas/sandbox-profile.schema.json");
        let want = profile_json_schema();
        if std::env::var_os("REPROBOX_UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is out of date (hint: run REPROBOX_UPDATE_SCHEMAS=1 cargo nextest run schema_is_checked_in)",
            path.display()
        );
    }
}
