//! The container's own memory peak counter, read from the host's cgroup file system.
//!
//! Docker's stats API reports the kernel's recorded peak (`max_usage_in_bytes`) only on cgroup
//! v1; on cgroup v2 it reports none, and sampled use misses any spike shorter than the sampling
//! interval. The kernel keeps the peak in the container's cgroup (`memory.peak` on v2, since
//! Linux 5.19; `memory.max_usage_in_bytes` on v1), and the runner runs on the host, so it reads
//! the counter there on every sample. The cgroup is gone once the container has exited, so the
//! last sample before the exit holds the last reading.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the host mounts the cgroup file system.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The files that may hold the peak of container `id`, in the order they are tried: cgroup v2
/// under the systemd and the cgroupfs drivers, then cgroup v1 under both.
fn candidates(root: &Path, id: &str) -> [PathBuf; 4] {
    [
        root.join(format!("system.slice/docker-{id}.scope/memory.peak")),
        root.join(format!("docker/{id}/memory.peak")),
        root.join(format!("memory/docker/{id}/memory.max_usage_in_bytes")),
        root.join(format!(
            "memory/system.slice/docker-{id}.scope/memory.max_usage_in_bytes"
        )),
    ]
}

/// The kernel's recorded memory peak of the container with the full id `id`, in bytes; `None`
/// when no cgroup of that container is found (it has exited, the id is not a full id, or the
/// host mounts cgroups elsewhere).
pub fn memory_peak(root: &Path, id: &str) -> Option<u64> {
    // A full container id is 64 hex digits; anything else could climb out of the root.
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    candidates(root, id).iter().find_map(|p| read_counter(p))
}

/// One counter file: a decimal number and a newline (a few bytes; read at most 64).
fn read_counter(path: &Path) -> Option<u64> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(64)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn each_layout_is_read() {
        for (rel, file) in [
            (format!("system.slice/docker-{ID}.scope"), "memory.peak"),
            (format!("docker/{ID}"), "memory.peak"),
            (format!("memory/docker/{ID}"), "memory.max_usage_in_bytes"),
            (
                format!("memory/system.slice/docker-{ID}.scope"),
                "memory.max_usage_in_bytes",
            ),
        ] {
            let root = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(root.path().join(&rel)).unwrap();
            std::fs::write(root.path().join(&rel).join(file), "2147483648\n").unwrap();
            assert_eq!(memory_peak(root.path(), ID), Some(2 << 30), "{rel}/{file}");
        }
    }

    #[test]
    fn absent_or_malformed_counters_and_odd_ids_give_none() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(memory_peak(root.path(), ID), None);
        let dir = root.path().join(format!("docker/{ID}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.peak"), "max\n").unwrap();
        assert_eq!(memory_peak(root.path(), ID), None);
        std::fs::write(dir.join("memory.peak"), "12\n").unwrap();
        assert_eq!(memory_peak(root.path(), ID), Some(12));
        assert_eq!(memory_peak(root.path(), "../../etc"), None);
        assert_eq!(memory_peak(root.path(), &ID[..12]), None);
    }
}
