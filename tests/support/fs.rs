#![allow(dead_code)]
//! File helpers shared by the integration tests: included with
//! `#[path = "support/fs.rs"] mod fs_support;`.

use std::path::Path;

/// Copies a tree of plain files and directories (a fixture into a test's temp dir).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}
