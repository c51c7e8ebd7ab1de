//! The progress contract of docs/progress.md: the committed JSON Schema matches the code, every
//! field is documented, and `--format json` writes NDJSON events on stderr while stdout keeps
//! its one document (Docker-free here; tests/verify.rs follows a whole run).

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

#[path = "support/fs.rs"]
mod fs_support;
use fs_support::copy_dir;

const BIN: &str = env!("CARGO_BIN_EXE_reprobox");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_progress_schema_is_up_to_date() {
    let path = root().join("docs/schemas/progress.schema.json");
    let generated =
        serde_json::to_string_pretty(&reprobox::pipeline::progress_json_schema()).unwrap() + "\n";
    if std::env::var_os("REPROBOX_UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; regenerate it with `REPROBOX_UPDATE_SCHEMAS=1 cargo nextest run --test progress`",
            path.display()
        )
    });
    assert!(
        committed == generated,
        "{} differs from the code's schema; regenerate it with `REPROBOX_UPDATE_SCHEMAS=1 cargo nextest run --test progress` and commit it",
        path.display()
    );
}

#[test]
fn every_progress_field_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/progress.md")).unwrap();
    let schema = serde_json::to_string(&reprobox::pipeline::progress_json_schema()).unwrap();
    let fields = [
        "v",
        "ts",
        "event",
        "stage",
        "detail",
        "elapsed_secs",
        "limit_secs",
        "count",
        "done",
        "total",
        "unit",
        "log_lines",
        "log_bytes",
        "memory_bytes",
        "gpu_utilization_pct",
    ];
    for f in fields {
        assert!(
            schema.contains(&format!("\"{f}\"")),
            "`{f}` is not in the schema"
        );
        assert!(
            doc.contains(&format!("`{f}`")),
            "`{f}` is not documented in docs/progress.md"
        );
    }
    for value in ["steps", "bytes", "examples", "tick"] {
        assert!(schema.contains(&format!("\"{value}\"")), "{value}");
        assert!(doc.contains(&format!("`{value}`")), "{value}");
    }
}

/// One NDJSON line, read back strictly: a field the schema lacks fails the test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    v: u32,
    ts: String,
    event: String,
    stage: String,
    detail: Option<String>,
    elapsed_secs: Option<f64>,
    limit_secs: Option<f64>,
    count: Option<serde_json::Map<String, serde_json::Value>>,
    log_lines: Option<u64>,
    log_bytes: Option<u64>,
    memory_bytes: Option<u64>,
    gpu_utilization_pct: Option<u32>,
}

fn events(stderr: &[u8]) -> Vec<Event> {
    let text = String::from_utf8(stderr.to_vec()).unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a stderr line is not a progress event ({e}): {l}"))
        })
        .collect()
}

#[test]
fn verify_in_json_mode_writes_progress_events_on_stderr_and_one_document_on_stdout() {
    let t = tempfile::tempdir().unwrap();
    let submission = t.path().join("submission");
    copy_dir(
        &root().join("tests/fixtures/submissions/compliant"),
        &submission,
    );
    // A token makes it NON_COMPLIANT at check: no Docker needed.
    std::fs::write(
        submission.join("notes.txt"),
        format!("token = {}{}\n", "hf_", "a".repeat(34)),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("verify")
        .arg(&submission)
        .args(["--dry-run", "--gpu", "none", "--format", "json", "--out"])
        .arg(t.path().join("audits"))
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/reprobox-test/docker.sock",
        )
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e})"));
    assert_eq!(doc["verdict"], "NON_COMPLIANT", "{doc}");
    let ev = events(&out.stderr);
    let seen: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| (e.event.as_str(), e.stage.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("stage", "check"), ("done", "check"), ("done", "verdict")],
        "{ev:?}"
    );
    assert!(ev.iter().all(|e| e.v == 1));
    assert!(
        ev.iter()
            .all(|e| chrono::DateTime::parse_from_rfc3339(&e.ts).is_ok()),
        "{ev:?}"
    );
    assert_eq!(ev[2].detail.as_deref(), Some("NON_COMPLIANT"));
    assert!(
        ev.iter().all(|e| e.elapsed_secs.is_none()
            && e.limit_secs.is_none()
            && e.count.is_none()
            && e.log_lines.is_none()
            && e.log_bytes.is_none()
            && e.memory_bytes.is_none()
            && e.gpu_utilization_pct.is_none()),
        "stage and done events carry only their stage and detail: {ev:?}"
    );
}
