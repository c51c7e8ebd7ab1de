//! Exclusive leases on GPU UUIDs, so two runs on one host never share a GPU.
//!
//! A lease is an exclusive `flock` (`File::try_lock`) on `<lease dir>/<uuid>.lock`, held for the
//! lifetime of a [`GpuLease`]. The kernel drops the lock when the file is closed, so a runner that
//! crashes or is killed releases its GPU without cleanup; a pid file would need stale-lock
//! guessing.
//! The file also records the holder (run id, pid, time) so that a refused run can say who holds the
//! GPU. Lease files are never deleted: unlinking a locked path lets a third run lock a new inode
//! while a second one still waits on the old, and both would believe they hold the GPU.
//!
//! Every reprobox on a host must use the same directory: `$REPROBOX_GPU_LEASE_DIR` when set, else
//! `/run/reprobox/gpu-leases` when it can be used, else `$XDG_RUNTIME_DIR/reprobox/gpu-leases`
//! (per user, so only right for single-user hosts).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::GpuError;

/// Environment variable naming the lease directory.
pub const LEASE_DIR_ENV: &str = "REPROBOX_GPU_LEASE_DIR";

/// The host-wide default lease directory (tmpfs, cleared at boot, like the leases themselves).
pub const SYSTEM_LEASE_DIR: &str = "/run/reprobox/gpu-leases";

/// Who holds a lease, as written into the lease file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    pub run_id: String,
    pub pid: u32,
    pub acquired_at: chrono::DateTime<chrono::Utc>,
}

/// An exclusive lease on one GPU; released on drop (or by the kernel when the process dies).
#[derive(Debug)]
pub struct GpuLease {
    file: File,
    path: PathBuf,
    uuid: String,
    holder: LeaseHolder,
}

impl GpuLease {
    /// Takes the lease on `uuid` in `dir` (created if missing) for `run_id`, or fails at once with
    /// [`GpuError::Leased`] naming the current holder. Never waits.
    pub fn acquire(dir: &Path, uuid: &str, run_id: &str) -> Result<GpuLease, GpuError> {
        if uuid.is_empty()
            || !uuid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(GpuError::InvalidUuid {
                uuid: uuid.to_owned(),
            });
        }
        fs::create_dir_all(dir).map_err(|source| GpuError::LeaseIo {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(format!("{uuid}.lock"));
        let io = |source| GpuError::LeaseIo {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(busy(&mut file, &path, uuid)),
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        let holder = LeaseHolder {
            run_id: run_id.to_owned(),
            pid: std::process::id(),
            acquired_at: chrono::Utc::now(),
        };
        // serde_json cannot fail on this plain struct; an empty record beats a panic.
        let record = serde_json::to_string(&holder).unwrap_or_default();
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(format!("{record}\n").as_bytes())
            .map_err(io)?;
        file.flush().map_err(io)?;
        Ok(GpuLease {
            file,
            path,
            uuid: uuid.to_owned(),
            holder,
        })
    }

    /// The leased GPU's UUID.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This lease's holder record.
    pub fn holder(&self) -> &LeaseHolder {
        &self.holder
    }

    /// Releases the lease now (dropping it does the same).
    pub fn release(self) {}
}

impl Drop for GpuLease {
    fn drop(&mut self) {
        // Clear the holder record while still holding the lock, so nobody reads a stale holder;
        // closing the file (right after) releases the flock. Errors cannot be reported from drop
        // and do not matter: the lock goes with the file descriptor.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The error for a lease held by someone else, naming the holder when the record is readable.
fn busy(file: &mut File, path: &Path, uuid: &str) -> GpuError {
    let mut text = String::new();
    let holder = file
        .read_to_string(&mut text)
        .ok()
        .and_then(|_| serde_json::from_str::<LeaseHolder>(text.trim()).ok());
    match holder {
        Some(h) => GpuError::Leased {
            uuid: uuid.to_owned(),
            run_id: h.run_id,
            pid: h.pid,
        },
        // The holder locked the file but has not written its record yet (or it is damaged).
        None => GpuError::LeasedUnknownHolder {
            uuid: uuid.to_owned(),
            path: path.to_owned(),
        },
    }
}

/// Reads the holder of a lease file, if one is recorded (the file is empty when free).
pub fn read_holder(dir: &Path, uuid: &str) -> Option<LeaseHolder> {
    let text = fs::read_to_string(dir.join(format!("{uuid}.lock"))).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// The lease directory every reprobox on this host uses (see the module docs for the order).
pub fn default_lease_dir() -> Result<PathBuf, GpuError> {
    if let Some(dir) = std::env::var_os(LEASE_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates = vec![PathBuf::from(SYSTEM_LEASE_DIR)];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        candidates.push(Path::new(&xdg).join("reprobox/gpu-leases"));
    }
    for dir in &candidates {
        if usable(dir) {
            return Ok(dir.clone());
        }
    }
    Err(GpuError::NoLeaseDir {
        tried: candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Whether `dir` exists or can be created, and files can be created in it.
fn usable(dir: &Path) -> bool {
    if fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = File::create(&probe).is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_fast_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let uuid = "GPU-fa6e0000-0000-4000-8000-000000000000";
        let lease = GpuLease::acquire(dir.path(), uuid, "run-a").unwrap();
        assert_eq!(lease.uuid(), uuid);
        assert_eq!(read_holder(dir.path(), uuid).unwrap().run_id, "run-a");
        // flock locks belong to the open file description, so a second open in this process
        // conflicts just as another process would.
        let err = GpuLease::acquire(dir.path(), uuid, "run-b").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "GPU {uuid} is leased by run run-a (pid {}) (hint: wait for that run to finish, or pick another GPU with --gpu)",
                std::process::id()
            )
        );
        // Another GPU is free.
        let other = GpuLease::acquire(dir.path(), "GPU-other", "run-b").unwrap();
        drop(other);
        drop(lease);
        assert!(
            read_holder(dir.path(), uuid).is_none(),
            "the record is cleared on release"
        );
        let again = GpuLease::acquire(dir.path(), uuid, "run-b").unwrap();
        assert_eq!(again.holder().run_id, "run-b");
        assert!(again.path().exists());
    }

    #[test]
    fn held_lock_without_record_still_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("GPU-x.lock");
        let f = File::create(&path).unwrap();
        f.try_lock().unwrap();
        let err = GpuLease::acquire(dir.path(), "GPU-x", "run-b").unwrap_err();
        assert!(matches!(err, GpuError::LeasedUnknownHolder { .. }), "{err}");
    }

    #[test]
    fn rejects_uuids_that_are_not_file_names() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../etc/passwd", "GPU-a/b", "GPU a"] {
            let err = GpuLease::acquire(dir.path(), bad, "r").unwrap_err();
            assert!(matches!(err, GpuError::InvalidUuid { .. }), "{bad}: {err}");
        }
    }
}
