//! Measures the sandbox runner (scripts/bench-runner drives it):
//!
//! - `sandbox_bench overhead RUNS`: wall time of `run_container` on a trivial submission (`true`
//!   in reprobox/shell:1), from nothing to container removed, one line per run;
//! - `sandbox_bench flood MB`: a container printing MB megabytes in 1000-byte lines, with the log
//!   cap above that, so every byte goes through the runner; prints MB/s and the peak RSS.
//!
//! Output is one `key=value` line per measurement, for the script to tabulate.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use reprobox::engine::DockerEngine;
use reprobox::sandbox::{
    ContainerLimits, Deadline, InputMount, RunPaths, RunSpec, RunStatus, SandboxProfile,
    cleanup_by_label, run_container,
};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn spec(run_id: &str, dir: &Path, command: Vec<String>) -> RunSpec {
    RunSpec {
        run_id: run_id.to_owned(),
        stage: "train".to_owned(),
        image: "reprobox/shell:1".to_owned(),
        command: Some(command),
        env: vec![],
        workdir: None,
        profile: SandboxProfile::builtin("strict")
            .expect("the embedded strict profile is tested to parse"),
        limits: ContainerLimits {
            memory_bytes: 512 << 20,
            disk_bytes: None,
            cpus: None,
        },
        out_dir: dir.join("out"),
        inputs: vec![InputMount {
            host: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sandbox/scripts"),
            target: "sub".to_owned(),
        }],
        gpu: None,
        storage_quota_supported: false,
        deadline_unix: None,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The peak before any run (the binary, its libraries, the runtime), so the runner's own
    // share of the peak is visible.
    let rss_start = peak_rss_kib();
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("overhead");
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(if mode == "flood" { 1000 } else { 10 });
    let engine = DockerEngine::connect().await?;
    let tmp = std::env::temp_dir().join(format!("reprobox-bench-{}", std::process::id()));
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_millis();
    match mode {
        "overhead" => {
            for i in 0..n {
                let run_id = format!("bench-{stamp}-{i}");
                let dir = tmp.join(&run_id);
                let s = spec(&run_id, &dir, vec!["true".to_owned()]);
                let paths = RunPaths {
                    log: dir.join("logs/train.log"),
                    telemetry: dir.join("telemetry.jsonl"),
                };
                let t = Instant::now();
                let outcome = run_container(
                    &engine,
                    &s,
                    &paths,
                    Deadline::AfterStart(Duration::from_secs(60)),
                )
                .await?;
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(outcome.status, RunStatus::Succeeded);
                println!("run={i} seconds={secs:.3}");
                cleanup_by_label(&engine, &run_id).await?;
            }
        }
        "flood" => {
            let run_id = format!("bench-flood-{stamp}");
            let dir = tmp.join(&run_id);
            let mut s = spec(
                &run_id,
                &dir,
                vec!["sh".to_owned(), "/inputs/sub/flood.sh".to_owned()],
            );
            s.env.push(("FLOOD_MB".to_owned(), n.to_string()));
            s.profile.log_cap_bytes = (n + 64) << 21;
            let paths = RunPaths {
                log: dir.join("logs/train.log"),
                telemetry: dir.join("telemetry.jsonl"),
            };
            let t = Instant::now();
            let outcome = run_container(
                &engine,
                &s,
                &paths,
                Deadline::AfterStart(Duration::from_secs(1800)),
            )
            .await?;
            let secs = t.elapsed().as_secs_f64();
            cleanup_by_label(&engine, &run_id).await?;
            let mb = outcome.log.bytes_seen as f64 / 1e6;
            println!(
                "status={:?} bytes_seen={} log_file_bytes={} truncated={} seconds={secs:.2} mb_per_s={:.1} peak_rss_mib={:.1} rss_at_start_mib={:.1}",
                outcome.status,
                outcome.log.bytes_seen,
                std::fs::metadata(&paths.log).map(|m| m.len()).unwrap_or(0),
                outcome.log.truncated,
                mb / secs,
                peak_rss_kib() as f64 / 1024.0,
                rss_start as f64 / 1024.0
            );
        }
        other => return Err(format!("unknown mode `{other}`; use overhead or flood").into()),
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
