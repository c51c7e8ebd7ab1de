//! The GPU module against a fake `libnvidia-ml.so` (tests/fixtures/fake-nvml/fake_nvml.c),
//! compiled here with `cc` and loaded by nvml-wrapper exactly as the real library would be, and
//! the `reprobox gpu` verb against the same library.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reprobox::gpu::{
    GpuError, GpuLease, GpuProbe, GpuSelector, NvmlProbe, device_request, energy_between,
    foreign_processes, run_energy_mj, select,
};

const SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/fake-nvml/fake_nvml.c"
);
const UUID0: &str = "GPU-fa6e0000-0000-4000-8000-000000000000";
const UUID1: &str = "GPU-fa6e0001-0000-4000-8000-000000000000";

/// The fake library, compiled once per test binary (and reused across nextest's processes while
/// it is newer than its source).
fn fake_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-nvml");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("libnvidia-ml-fake.so");
        let src_time = std::fs::metadata(SOURCE).unwrap().modified().unwrap();
        let fresh = std::fs::metadata(&out)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= src_time);
        if !fresh {
            // Compile to a private name and rename: nextest runs tests as parallel processes.
            let tmp = dir.join(format!("libnvidia-ml-fake.so.{}.tmp", std::process::id()));
            let status = Command::new("cc")
                .args([
                    "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o",
                ])
                .arg(&tmp)
                .arg(SOURCE)
                .status()
                .unwrap_or_else(|e| {
                    panic!("cannot run `cc` to build the fake NVML library ({e}); install gcc")
                });
            assert!(status.success(), "compiling {SOURCE} failed");
            std::fs::rename(&tmp, &out).unwrap();
        }
        out
    })
}

/// A private copy of the fake library with its own scenario file, so tests sharing one process
/// never share NVML state or configuration. Every call is logged to `calls.log`.
struct Scenario {
    dir: tempfile::TempDir,
}

impl Scenario {
    fn new(conf: &[(&str, &str)]) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fake_lib(), dir.path().join("libnvidia-ml.so.1")).unwrap();
        let mut text = format!("FAKE_NVML_LOG={}\n", dir.path().join("calls.log").display());
        for (k, v) in conf {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(dir.path().join("fake-nvml.env"), text).unwrap();
        Scenario { dir }
    }

    fn lib(&self) -> PathBuf {
        self.dir.path().join("libnvidia-ml.so.1")
    }

    fn probe(&self) -> Result<NvmlProbe, GpuError> {
        NvmlProbe::new(Some(&self.lib()))
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

const TWO_GPUS: (&str, &str) = (
    "FAKE_NVML_GPUS",
    "NVIDIA A100-SXM4-40GB,NVIDIA GeForce RTX 4090",
);

#[test]
fn lists_gpus_through_nvml() {
    let s = Scenario::new(&[
        TWO_GPUS,
        ("FAKE_NVML_MEMORY_MIB", "40960,24564"),
        ("FAKE_NVML_CUDA_VERSION", "12040"),
    ]);
    let probe = s.probe().unwrap();
    let gpus = probe.gpus().unwrap();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0].index, 0);
    assert_eq!(gpus[0].name, "NVIDIA A100-SXM4-40GB");
    assert_eq!(gpus[0].uuid, UUID0);
    assert_eq!(gpus[0].memory_total_bytes, 40960 << 20);
    assert_eq!(gpus[0].driver_version, "550.54.15");
    assert_eq!(gpus[0].cuda_driver_version.as_deref(), Some("12.4"));
    assert_eq!(gpus[1].name, "NVIDIA GeForce RTX 4090");
    assert_eq!(gpus[1].uuid, UUID1);
    assert_eq!(gpus[1].memory_total_bytes, 24564 << 20);
    let json = serde_json::to_value(&gpus[1]).unwrap();
    assert_eq!(json["memory_total_bytes"], 24564u64 << 20);
}

#[test]
fn initializes_once_and_shuts_down_on_drop() {
    let s = Scenario::new(&[TWO_GPUS]);
    let probe = s.probe().unwrap();
    probe.gpus().unwrap();
    probe.gpus().unwrap();
    probe.sample(UUID0).unwrap();
    drop(probe);
    let calls = s.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "nvmlInit_v2").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(calls.first().map(String::as_str), Some("nvmlInit_v2"));
    assert_eq!(calls.last().map(String::as_str), Some("nvmlShutdown"));
    // nvml-wrapper 0.13 reads memory through the versioned _v2 call (the fake rejects a wrong
    // struct version, so the listing above proves the layout matches).
    assert!(calls.iter().any(|c| c == "nvmlDeviceGetMemoryInfo_v2"));
}

#[test]
fn no_gpus_is_an_empty_list() {
    let s = Scenario::new(&[]);
    assert!(s.probe().unwrap().gpus().unwrap().is_empty());
}

#[test]
fn missing_library_says_install_the_driver() {
    let err = NvmlProbe::new(Some(Path::new("/nonexistent/libnvidia-ml.so.1"))).unwrap_err();
    assert!(matches!(err, GpuError::LibraryNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("no NVIDIA driver library found (tried `/nonexistent/libnvidia-ml.so.1`: "),
        "{msg}"
    );
    assert!(msg.contains("No such file or directory"), "{msg}");
    assert!(msg.contains("(hint: install the NVIDIA driver, or run with --gpu none where the policy allows a CPU run"), "{msg}");
    assert!(err.is_infra() && !err.is_gpu_lost());
}

#[test]
fn a_library_without_nvml_symbols_is_an_init_error() {
    // libc loads fine but has no nvmlInit_v2: nvml-wrapper reports a missing symbol.
    let err = NvmlProbe::new(Some(Path::new("libc.so.6"))).unwrap_err();
    assert!(matches!(err, GpuError::Init { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("failed to initialize NVML from `libc.so.6`"),
        "{err}"
    );
}

#[test]
fn init_failures_map_to_our_variants() {
    type Case = (&'static str, fn(&GpuError) -> bool, &'static str);
    let cases: [Case; 5] = [
        (
            "driver_not_loaded",
            |e| matches!(e, GpuError::DriverNotLoaded { .. }),
            "the NVIDIA driver is not loaded",
        ),
        (
            "no_permission",
            |e| matches!(e, GpuError::NoPermission { .. }),
            "no permission to talk to the NVIDIA driver",
        ),
        ("gpu_lost", |e| e.is_gpu_lost(), "fell off the bus"),
        (
            "lib_rm_version_mismatch",
            |e| matches!(e, GpuError::DriverVersionMismatch { .. }),
            "does not match the loaded NVIDIA kernel driver",
        ),
        (
            "unknown",
            |e| matches!(e, GpuError::Init { .. }),
            "failed to initialize NVML",
        ),
    ];
    for (mode, is_variant, text) in cases {
        let s = Scenario::new(&[TWO_GPUS, ("FAKE_NVML_FAIL_INIT", mode)]);
        let err = s.probe().unwrap_err();
        assert!(is_variant(&err), "{mode}: {err:?}");
        assert!(err.to_string().contains(text), "{mode}: {err}");
        assert!(err.is_infra(), "{mode}");
        assert_eq!(err.is_gpu_lost(), mode == "gpu_lost", "{mode}");
    }
}

#[test]
fn samples_telemetry_with_processes_and_energy() {
    let s = Scenario::new(&[
        TWO_GPUS,
        ("FAKE_NVML_PROCS", "0:4242:1024,0:777:na,1:9:10"),
        ("FAKE_NVML_UTIL", "93:51"),
        ("FAKE_NVML_POWER_MW", "301000"),
        ("FAKE_NVML_TEMP_C", "70"),
        ("FAKE_NVML_ENERGY_START_MJ", "7000000"),
        ("FAKE_NVML_ENERGY_STEP_MJ", "2500"),
    ]);
    let probe = s.probe().unwrap();
    let a = probe.sample(UUID0).unwrap();
    let b = probe.sample(UUID0).unwrap();
    assert_eq!(a.uuid, UUID0);
    assert_eq!(a.utilization_gpu_pct, Some(93));
    assert_eq!(a.utilization_memory_pct, Some(51));
    assert_eq!(a.power_mw, Some(301_000));
    assert_eq!(a.temperature_c, Some(70));
    assert_eq!(a.energy_mj, Some(7_000_000));
    assert_eq!(a.memory_total_bytes, 40960 << 20);
    assert_eq!(
        a.memory_used_bytes,
        (512 + 1024) << 20,
        "reserved + the one process that reports memory"
    );
    let pids: Vec<(u32, Option<u64>)> = a
        .processes
        .iter()
        .map(|p| (p.pid, p.used_memory_bytes))
        .collect();
    assert_eq!(pids, vec![(4242, Some(1024 << 20)), (777, None)]);
    assert_eq!(energy_between(&a, &b), Some(2500));
    assert_eq!(run_energy_mj(&[a.clone(), b.clone()]), Some(2500));
    assert!(b.ts >= a.ts);
    let sandbox: HashSet<u32> = [4242].into_iter().collect();
    assert_eq!(foreign_processes(&a, &sandbox), vec![777]);
    // The other GPU has only its own process.
    let other = probe.sample(UUID1).unwrap();
    assert_eq!(
        other.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        vec![9]
    );
    // A JSONL line for telemetry.jsonl.
    let line = serde_json::to_string(&a).unwrap();
    assert!(
        line.contains("\"power_mw\":301000") && !line.contains('\n'),
        "{line}"
    );
}

#[test]
fn gpus_without_energy_counter_sample_none() {
    let s = Scenario::new(&[TWO_GPUS, ("FAKE_NVML_NO_ENERGY", "1")]);
    let probe = s.probe().unwrap();
    let a = probe.sample(UUID0).unwrap();
    let b = probe.sample(UUID0).unwrap();
    assert_eq!(a.energy_mj, None);
    assert_eq!(run_energy_mj(&[a, b]), None);
}

#[test]
fn a_gpu_lost_during_a_run_is_distinguishable() {
    let s = Scenario::new(&[
        TWO_GPUS,
        ("FAKE_NVML_LOST_GPU", "0"),
        ("FAKE_NVML_LOST_AFTER", "2"),
    ]);
    let probe = s.probe().unwrap();
    probe.sample(UUID0).unwrap();
    probe.sample(UUID0).unwrap();
    let err = probe.sample(UUID0).unwrap_err();
    assert!(err.is_gpu_lost(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("GPU {UUID0} fell off the bus")),
        "{err}"
    );
    // The other GPU is unaffected.
    probe.sample(UUID1).unwrap();
    // Listing now fails the same way.
    assert!(probe.gpus().unwrap_err().is_gpu_lost());
}

#[test]
fn sampling_an_unknown_uuid_is_a_query_error_not_a_lost_gpu() {
    let s = Scenario::new(&[TWO_GPUS]);
    let err = s
        .probe()
        .unwrap()
        .sample("GPU-ffffffff-0000-4000-8000-000000000000")
        .unwrap_err();
    assert!(matches!(err, GpuError::Query { .. }), "{err:?}");
    assert!(!err.is_gpu_lost());
}

#[test]
fn selection_and_device_request_from_probed_gpus() {
    let s = Scenario::new(&[TWO_GPUS]);
    let gpus = s.probe().unwrap().gpus().unwrap();
    let chosen = select(&gpus, &UUID1.parse::<GpuSelector>().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(chosen.name, "NVIDIA GeForce RTX 4090");
    assert_eq!(
        select(&gpus, &"0".parse().unwrap()).unwrap().unwrap().uuid,
        UUID0
    );
    let err = select(&gpus, &GpuSelector::Index(5))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("1: NVIDIA GeForce RTX 4090 ({UUID1})")),
        "{err}"
    );
    let req = device_request(&chosen.uuid);
    assert_eq!(req.device_ids, Some(vec![UUID1.to_owned()]));
    assert_eq!(req.count, None);
}

#[test]
fn lease_is_released_by_the_kernel_when_the_holder_dies() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join(format!("{UUID0}.lock"));
    std::fs::write(&lock, "").unwrap();
    // flock(1) takes the same kind of lock (flock(2)) as File::try_lock. The shell opens fd 9,
    // `flock 9` (util-linux) locks it and exits, and the shell becomes `sleep` holding fd 9:
    // the process we spawned is the only holder, so killing it is the holder dying.
    let mut child = Command::new("sh")
        .args(["-c", "exec 9<>\"$0\" && flock 9 && exec sleep 60"])
        .arg(&lock)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn sh");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match GpuLease::acquire(dir.path(), UUID0, "run-b") {
            Err(GpuError::LeasedUnknownHolder { .. }) => break,
            Ok(lease) if std::time::Instant::now() < deadline => {
                drop(lease); // the child has not locked yet
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => panic!(
                "expected the child's lock to refuse us (is util-linux `flock` installed?), got {other:?}"
            ),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel released the lock with the holder's last descriptor.
    let lease =
        GpuLease::acquire(dir.path(), UUID0, "run-b").expect("lease free after the holder died");
    assert_eq!(lease.holder().run_id, "run-b");
}

// ---- `reprobox gpu` ----

fn reprobox_gpu(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_reprobox");
    let mut cmd = Command::new(bin);
    cmd.arg("gpu")
        .args(args)
        .env_remove("REPROBOX_POLICIES")
        .env_remove("REPROBOX_NVML_LIB");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn cli_lists_gpus_and_track_approval_as_json() {
    let lib = fake_lib().to_str().unwrap();
    let out = reprobox_gpu(
        &[("REPROBOX_NVML_LIB", lib), TWO_GPUS],
        &["--format", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nvml_lib"], lib);
    let gpus = v["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0]["uuid"], UUID0);
    assert_eq!(gpus[0]["driver_version"], "550.54.15");
    let approved = |g: &serde_json::Value, policy: &str, track: &str| -> bool {
        g["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["policy"] == policy && t["track"] == track)
            .unwrap_or_else(|| panic!("no {policy}/{track} in {g}"))["approved"]
            .as_bool()
            .unwrap()
    };
    assert!(approved(
        &gpus[0],
        "neurips-2023-llm-efficiency",
        "a100-40gb"
    ));
    assert!(!approved(
        &gpus[0],
        "neurips-2023-llm-efficiency",
        "rtx-4090"
    ));
    assert!(approved(
        &gpus[1],
        "neurips-2023-llm-efficiency",
        "rtx-4090"
    ));
    assert!(!approved(
        &gpus[1],
        "neurips-2023-llm-efficiency",
        "a100-40gb"
    ));
}

#[test]
fn cli_text_names_each_gpu_and_its_tracks() {
    let lib = fake_lib().to_str().unwrap();
    let out = reprobox_gpu(
        &[("FAKE_NVML_GPUS", "NVIDIA A100-SXM4-40GB")],
        &["--nvml-lib", lib],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("0  NVIDIA A100-SXM4-40GB  {UUID0}  40.0 GiB")),
        "{text}"
    );
    assert!(text.contains("driver 550.54.15, CUDA 12.4"), "{text}");
    assert!(
        text.contains("neurips-2023-llm-efficiency/a100-40gb"),
        "{text}"
    );
    assert!(
        !text.contains("neurips-2023-llm-efficiency/rtx-4090"),
        "{text}"
    );
}

#[test]
fn cli_without_nvml_exits_infra_error_with_the_hint() {
    let out = reprobox_gpu(
        &[("REPROBOX_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")],
        &[],
    );
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no NVIDIA driver library found"), "{err}");
    assert!(err.contains("--gpu none"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn cli_driver_not_loaded_exits_infra_error() {
    let lib = fake_lib().to_str().unwrap();
    let out = reprobox_gpu(
        &[
            ("REPROBOX_NVML_LIB", lib),
            ("FAKE_NVML_FAIL_INIT", "driver_not_loaded"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the NVIDIA driver is not loaded"));
}

#[test]
fn cli_with_no_gpus_exits_zero() {
    let lib = fake_lib().to_str().unwrap();
    let out = reprobox_gpu(&[("REPROBOX_NVML_LIB", lib)], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("no GPUs"));
    let out = reprobox_gpu(&[("REPROBOX_NVML_LIB", lib)], &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["gpus"], serde_json::json!([]));
}
