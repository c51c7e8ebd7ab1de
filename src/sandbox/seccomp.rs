//! The seccomp filter every sandbox container runs under, as the JSON Docker's `seccomp=`
//! security option takes.
//!
//! The filter is data (`sandboxes/seccomp.json`, embedded at compile time): an allowlist of the
//! system calls training code uses, everything else failing with `EPERM`. It is ours rather
//! than Docker's built-in default because Docker's default allows `ptrace` on kernels since 4.8,
//! and a submission could then stop its own init (tini) and leave the container hanging until
//! the deadline; a profile that needs a debugger opts back in with `allow_ptrace = true`. A
//! seccomp profile cannot extend Docker's default, so the allowlist is complete in itself.

use serde::{Deserialize, Serialize};

/// The filter as shipped.
const FILTER: &str = include_str!("../../sandboxes/seccomp.json");

/// The system call a profile may opt back into.
const PTRACE: &str = "ptrace";

/// A seccomp profile in Docker's JSON form (the fields reprobox uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeccompFilter {
    /// Why the filter is as it is; not sent to Docker.
    #[serde(default, skip_serializing)]
    pub comment: String,
    /// What a call matching no rule gets (`SCMP_ACT_ERRNO`).
    pub default_action: String,
    /// The errno for the default action (1, `EPERM`).
    pub default_errno_ret: u32,
    /// The rules, in order.
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: these calls get this action, when the arguments match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyscallRule {
    /// System call names.
    pub names: Vec<String>,
    /// `SCMP_ACT_ALLOW` or `SCMP_ACT_ERRNO`.
    pub action: String,
    /// The errno for an `SCMP_ACT_ERRNO` rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument conditions, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
}

/// One argument condition (`SCMP_CMP_EQ`, `SCMP_CMP_MASKED_EQ`: `(arg & value) == value_two`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArgCondition {
    /// Which argument (0-5).
    pub index: u32,
    /// The value (the mask, for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The second value (what the masked argument must equal).
    #[serde(default)]
    pub value_two: u64,
    /// The comparison.
    pub op: String,
}

impl SeccompFilter {
    /// The shipped filter, with `ptrace` allowed when the profile opts in.
    pub fn for_profile(allow_ptrace: bool) -> Self {
        // The embedded file is checked by `the_shipped_filter_parses_and_denies_ptrace`, so a
        // parse failure here is a build defect; an empty allowlist would fail closed anyway.
        let mut filter: SeccompFilter = serde_json::from_str(FILTER).unwrap_or(SeccompFilter {
            comment: String::new(),
            default_action: "SCMP_ACT_ERRNO".to_owned(),
            default_errno_ret: 1,
            syscalls: Vec::new(),
        });
        if allow_ptrace {
            filter.syscalls.push(SyscallRule {
                names: vec![PTRACE.to_owned()],
                action: "SCMP_ACT_ALLOW".to_owned(),
                errno_ret: None,
                args: Vec::new(),
            });
        }
        filter
    }

    /// Whether a call with no argument condition is allowed.
    pub fn allows(&self, name: &str) -> bool {
        self.syscalls.iter().any(|r| {
            r.action == "SCMP_ACT_ALLOW" && r.args.is_empty() && r.names.iter().any(|n| n == name)
        })
    }

    /// The `seccomp=<json>` security option Docker takes.
    pub fn security_opt(&self) -> String {
        // Plain strings and integers: serializing cannot fail.
        format!(
            "seccomp={}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_filter_parses_and_denies_ptrace() {
        let f: SeccompFilter = serde_json::from_str(FILTER).unwrap();
        assert_eq!(f.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(f.default_errno_ret, 1);
        for denied in [
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "bpf",
            "userfaultfd",
            "io_uring_setup",
            "perf_event_open",
            "init_module",
            "kexec_load",
            "reboot",
            "chroot",
        ] {
            assert!(
                !f.syscalls
                    .iter()
                    .any(|r| r.names.iter().any(|n| n == denied)),
                "{denied} must not be named"
            );
        }
        for needed in [
            "read", "write", "openat", "mmap", "futex", "execve", "mknodat", "statx", "rseq",
        ] {
            assert!(f.allows(needed), "{needed} is needed by training code");
        }
        assert_eq!(f, SeccompFilter::for_profile(false));
    }

    #[test]
    fn clone_with_namespace_flags_is_not_allowed_and_clone3_is_enosys() {
        let f = SeccompFilter::for_profile(false);
        let clone = f
            .syscalls
            .iter()
            .find(|r| r.names == ["clone"])
            .expect("a clone rule");
        // CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
        assert_eq!(
            clone.args,
            [ArgCondition {
                index: 0,
                value: 0x7E02_0000,
                value_two: 0,
                op: "SCMP_CMP_MASKED_EQ".into()
            }]
        );
        let clone3 = f.syscalls.iter().find(|r| r.names == ["clone3"]).unwrap();
        // ENOSYS, so libc falls back to clone, whose flags the filter can see.
        assert_eq!(
            (clone3.action.as_str(), clone3.errno_ret),
            ("SCMP_ACT_ERRNO", Some(38))
        );
    }

    #[test]
    fn a_profile_opts_into_ptrace() {
        assert!(!SeccompFilter::for_profile(false).allows("ptrace"));
        assert!(SeccompFilter::for_profile(true).allows("ptrace"));
    }

    #[test]
    fn the_option_is_docker_json_without_the_comment() {
        let opt = SeccompFilter::for_profile(false).security_opt();
        let json = opt.strip_prefix("seccomp=").unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert!(v.get("comment").is_none());
        assert_eq!(v["syscalls"][1]["args"][0]["valueTwo"], 0);
    }
}
