//! The run directory layout (docs/ARCHITECTURE.md, "The run directory"): the one place that knows the
//! file names inside `audits/<run-id>/`. Every other module asks [`RunDir`] for a path instead of
//! spelling a name, so a rename is one edit here and `audit verify` reads exactly what the runner
//! wrote.
//!
//! Paths recorded in reports and provenance are *relative* to the run directory and use `/`
//! separators; [`RunDir::resolve`] turns one back into a host path and refuses anything that
//! could leave the directory (absolute paths, `..`, empty components), because those records are
//! read back from disk by `audit verify` and must not make it read files elsewhere.

use std::path::{Component, Path, PathBuf};

use crate::input_file::Cap;

/// `journal.jsonl`: the hash-chained event log ([`crate::journal`]).
pub const JOURNAL: &str = "journal.jsonl";
/// `plan.json`: the resolved run plan.
pub const PLAN: &str = "plan.json";
/// `logs/`: the build, train and eval logs.
pub const LOGS_DIR: &str = "logs";
/// `logs/build.log`: the image build output.
pub const BUILD_LOG: &str = "logs/build.log";
/// `logs/train.log`: the training container's stdout and stderr.
pub const TRAIN_LOG: &str = "logs/train.log";
/// `logs/eval.log`: the evaluator's output.
pub const EVAL_LOG: &str = "logs/eval.log";
/// `logs/eval-submitted.log`: the evaluator's output on the team's submitted model.
pub const EVAL_SUBMITTED_LOG: &str = "logs/eval-submitted.log";
/// `telemetry.jsonl`: GPU and container samples.
pub const TELEMETRY: &str = "telemetry.jsonl";
/// `out/`: the sandbox's only writable mount; the rebuilt model lands below it.
pub const OUT_DIR: &str = "out";
/// `eval/`: per-example evaluation results.
pub const EVAL_DIR: &str = "eval";
/// `inputs/`: staged, digest-verified inputs (base model, datasets), mounted read-only.
pub const INPUTS_DIR: &str = "inputs";
/// `listings/`: one file per tree artifact, its per-file digests (`provenance::artifacts`).
pub const LISTINGS_DIR: &str = "listings";
/// `report.json`: the machine-readable report.
pub const REPORT_JSON: &str = "report.json";
/// `report.md`: the readable report.
pub const REPORT_MD: &str = "report.md";
/// `report.html`: the self-contained report with SVG charts.
pub const REPORT_HTML: &str = "report.html";
/// `provenance.intoto.jsonl`: the in-toto bundle ([`crate::provenance`]).
pub const PROVENANCE: &str = "provenance.intoto.jsonl";

/// The largest `plan.json` read back (by `resume`): a plan is a few kilobytes.
pub const MAX_PLAN_BYTES: u64 = 16 << 20;
/// `plan.json`'s cap, as [`crate::input_file`] enforces it.
pub const PLAN_CAP: Cap = Cap::new(
    "plan",
    MAX_PLAN_BYTES,
    "a run's plan.json is a few kilobytes; this file is not one reprobox wrote",
);
/// The largest `report.json` read back (by `audit verify`, `finalists`).
pub const MAX_REPORT_BYTES: u64 = 256 << 20;
/// `report.json`'s cap, as [`crate::input_file`] enforces it.
pub const REPORT_CAP: Cap = Cap::new(
    "report",
    MAX_REPORT_BYTES,
    "a run's report.json holds counts and digests; this file is not one reprobox wrote",
);
/// The largest provenance bundle read back (by `audit verify`).
pub const MAX_PROVENANCE_BYTES: u64 = 64 << 20;
/// `provenance.intoto.jsonl`'s cap, as [`crate::input_file`] enforces it.
pub const PROVENANCE_CAP: Cap = Cap::new(
    "provenance bundle",
    MAX_PROVENANCE_BYTES,
    "a bundle holds two statements; this file is not one reprobox wrote",
);

/// Why a run directory could not be created or a recorded relative path is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// Creating the directory or one of its subdirectories failed.
    #[error("cannot create run directory `{path}`: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A recorded path would leave the run directory or is not a plain relative path.
    #[error("path `{rel}` is not a plain relative path inside the run directory: {reason}")]
    BadRelativePath { rel: String, reason: &'static str },
}

/// A run directory; cheap to clone, does no I/O except in [`RunDir::create_layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Wraps an existing or future run directory path.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// Creates the directory and its fixed subdirectories (`logs/`, `out/`, `eval/`, `inputs/`).
    pub fn create_layout(root: impl Into<PathBuf>) -> Result<Self, RunDirError> {
        let dir = RunDir::new(root);
        for sub in [
            dir.root.clone(),
            dir.logs_dir(),
            dir.out_dir(),
            dir.eval_dir(),
            dir.inputs_dir(),
        ] {
            std::fs::create_dir_all(&sub).map_err(|source| RunDirError::Create {
                path: sub.clone(),
                source,
            })?;
        }
        Ok(dir)
    }

    /// The run directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `root` looks like a run directory: a directory holding `journal.jsonl` or
    /// `report.json`. `audit verify` refuses anything else with exit 2.
    pub fn looks_like_run_dir(&self) -> bool {
        // Whatever is at those names counts (a FIFO journal is a damaged run directory, and the
        // reader names it as such), so `symlink_metadata`, not `is_file`.
        self.root.is_dir()
            && (self.journal().symlink_metadata().is_ok()
                || self.report_json().symlink_metadata().is_ok())
    }

    /// `journal.jsonl`.
    pub fn journal(&self) -> PathBuf {
        self.root.join(JOURNAL)
    }
    /// `plan.json`.
    pub fn plan(&self) -> PathBuf {
        self.root.join(PLAN)
    }
    /// `logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join(LOGS_DIR)
    }
    /// `logs/build.log`.
    pub fn build_log(&self) -> PathBuf {
        self.root.join(BUILD_LOG)
    }
    /// `logs/train.log`.
    pub fn train_log(&self) -> PathBuf {
        self.root.join(TRAIN_LOG)
    }
    /// `logs/eval.log`.
    pub fn eval_log(&self) -> PathBuf {
        self.root.join(EVAL_LOG)
    }
    /// `telemetry.jsonl`.
    pub fn telemetry(&self) -> PathBuf {
        self.root.join(TELEMETRY)
    }
    /// `out/`.
    pub fn out_dir(&self) -> PathBuf {
        self.root.join(OUT_DIR)
    }
    /// `eval/`.
    pub fn eval_dir(&self) -> PathBuf {
        self.root.join(EVAL_DIR)
    }
    /// `inputs/`.
    pub fn inputs_dir(&self) -> PathBuf {
        self.root.join(INPUTS_DIR)
    }
    /// `report.json`.
    pub fn report_json(&self) -> PathBuf {
        self.root.join(REPORT_JSON)
    }
    /// `report.md`.
    pub fn report_md(&self) -> PathBuf {
        self.root.join(REPORT_MD)
    }
    /// `report.html`.
    pub fn report_html(&self) -> PathBuf {
        self.root.join(REPORT_HTML)
    }
    /// `provenance.intoto.jsonl`.
    pub fn provenance(&self) -> PathBuf {
        self.root.join(PROVENANCE)
    }

    /// Turns a recorded relative path (`out/model`, `logs/train.log`) into a host path, refusing
    /// absolute paths, `..`, `.` and empty components, and backslashes.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, RunDirError> {
        let bad = |reason| RunDirError::BadRelativePath {
            rel: rel.to_owned(),
            reason,
        };
        if rel.is_empty() {
            return Err(bad("it is empty"));
        }
        if rel.contains('\\') {
            return Err(bad("it contains a backslash; use `/`"));
        }
        if rel.starts_with('/') {
            return Err(bad("it is absolute"));
        }
        let mut out = self.root.clone();
        for part in rel.split('/') {
            match part {
                "" => return Err(bad("it has an empty component")),
                "." | ".." => return Err(bad("it has a `.` or `..` component")),
                _ => out.push(part),
            }
        }
        Ok(out)
    }

    /// The `/`-separated path of `path` relative to the run directory, if it lies inside it
    /// (lexically; no symlinks are followed).
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rest = path.strip_prefix(&self.root).ok()?;
        let mut parts = Vec::new();
        for c in rest.components() {
            match c {
                Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
                _ => return None,
            }
        }
        if parts.is_empty() {
            None
        } else {
            Some(parts.join("/"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rejects_escapes_and_relative_round_trips() {
        let d = RunDir::new("/runs/r1");
        assert_eq!(
            d.resolve("out/model").unwrap(),
            PathBuf::from("/runs/r1/out/model")
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "out/../../x",
            "out//m",
            "./x",
            "a\\b",
        ] {
            assert!(d.resolve(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(d.relative(&d.train_log()).as_deref(), Some(TRAIN_LOG));
        assert_eq!(d.relative(Path::new("/elsewhere/x")), None);
        assert_eq!(d.relative(d.root()), None);
    }

    #[test]
    fn layout_is_created_and_recognised() {
        let t = tempfile::tempdir().unwrap();
        let d = RunDir::create_layout(t.path().join("run")).unwrap();
        assert!(d.out_dir().is_dir() && d.logs_dir().is_dir() && d.inputs_dir().is_dir());
        assert!(!d.looks_like_run_dir());
        std::fs::write(d.journal(), "").unwrap();
        assert!(d.looks_like_run_dir());
    }
}
