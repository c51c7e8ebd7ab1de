//! Counters a hashing caller can read while the hash runs on other threads, for progress lines.

use std::sync::atomic::{AtomicU64, Ordering};

/// Files and bytes to hash and hashed so far. Totals grow as each tree is listed (one counter
/// can follow several trees, as staging does); reading never blocks the hashing threads.
#[derive(Debug, Default)]
pub struct HashCounter {
    files_total: AtomicU64,
    files_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
}

impl HashCounter {
    /// `(done, total)` files.
    pub fn files(&self) -> (u64, u64) {
        (
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
        )
    }

    /// `(done, total)` bytes.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.bytes_done.load(Ordering::Relaxed),
            self.bytes_total.load(Ordering::Relaxed),
        )
    }

    pub(super) fn add_total(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }
}
