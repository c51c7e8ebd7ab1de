//! The sandbox against the real Docker Engine with `reprobox/shell:1`: hostile submissions from
//! tests/fixtures/sandbox/ (network, writes outside /out, setuid escalation, fork and memory
//! bombs, SIGTERM-ignoring sleepers, log floods) and the ordinary paths (artifacts in out/, exit
//! codes, builds, re-attaching). Each test labels everything with its own run id and removes it
//! by label at the end, also when it fails. A missing engine or image fails the test with a hint.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use reprobox::engine::{ContainerEngine, DeviceRequest, DockerEngine, EngineError};
use reprobox::sandbox::logs::{TRUNCATION_MARKER, last_timestamp_in};
use reprobox::sandbox::{
    BuildSpec, ContainerLimits, Deadline, InputMount, RunOutcome, RunPaths, RunSpec, RunStatus,
    SandboxError, SandboxProfile, attach, build_image, cleanup_by_label, create_body,
    run_container, start_container,
};

const SHELL_IMAGE: &str = "reprobox/shell:1";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sandbox")
}

async fn engine() -> DockerEngine {
    match DockerEngine::connect().await {
        Ok(e) => e,
        Err(e) => panic!("the Docker Engine is needed for tests/sandbox.rs: {e}"),
    }
}

async fn require_shell_image(engine: &DockerEngine) {
    assert!(
        engine.image_exists(SHELL_IMAGE).await.unwrap(),
        "image {SHELL_IMAGE} is missing (hint: run scripts/setup, or scripts/images shell)"
    );
}

fn run_id(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t-{name}-{}-{nanos}", std::process::id())
}

/// Runs `body`, then removes everything labelled with `run_id` whether the body passed or
/// panicked, and checks nothing is left.
async fn with_cleanup<F: std::future::Future<Output = ()>>(
    engine: &DockerEngine,
    run_id: &str,
    body: F,
) {
    let result = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    let cleaned = cleanup_by_label(engine, run_id).await;
    let left = engine
        .list_containers(&format!("reprobox.run={run_id}"))
        .await
        .unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    cleaned.unwrap();
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    fn paths(&self) -> RunPaths {
        RunPaths {
            log: self.dir.path().join("logs/train.log"),
            telemetry: self.dir.path().join("telemetry.jsonl"),
        }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.paths().log).unwrap_or_default()
    }
}

/// The strict profile with test-sized timings.
fn test_profile() -> SandboxProfile {
    let mut p = SandboxProfile::builtin("strict").unwrap();
    p.grace_period = Duration::from_secs(2);
    p.telemetry_interval = Duration::from_millis(500);
    p
}

fn spec(run_id: &str, fx: &Fixture, script: &str) -> RunSpec {
    RunSpec {
        run_id: run_id.to_owned(),
        stage: "train".to_owned(),
        image: SHELL_IMAGE.to_owned(),
        command: Some(vec!["sh".into(), format!("/inputs/sub/{script}")]),
        env: vec![],
        workdir: None,
        profile: test_profile(),
        limits: ContainerLimits {
            memory_bytes: 256 << 20,
            disk_bytes: None,
            cpus: None,
        },
        out_dir: fx.out(),
        inputs: vec![InputMount {
            host: fixtures().join("scripts"),
            target: "sub".into(),
        }],
        gpu: None,
        storage_quota_supported: false,
        deadline_unix: None,
    }
}

fn in_a_minute() -> Deadline {
    Deadline::AfterStart(Duration::from_secs(60))
}

async fn run(
    engine: &DockerEngine,
    spec: &RunSpec,
    fx: &Fixture,
    deadline: Deadline,
) -> RunOutcome {
    run_container(engine, spec, &fx.paths(), deadline)
        .await
        .unwrap()
}

#[tokio::test]
async fn normal_submission_writes_artifacts_to_out() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("normal");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let outcome = run(&engine, &spec(&id, &fx, "normal.sh"), &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{}", fx.log());
        assert_eq!(
            std::fs::read_to_string(fx.out().join("model/config.json")).unwrap(),
            "{\"model_type\": \"toy\"}\n"
        );
        assert!(fx.out().join("model/weights.bin").is_file());
        let log = fx.log();
        assert!(
            log.lines().any(|l| l.ends_with(" stdout training started")),
            "{log}"
        );
        assert!(
            log.lines()
                .any(|l| l.ends_with(" stderr a warning on stderr")),
            "{log}"
        );
        assert_eq!(
            outcome.log.tail.last().map(String::as_str),
            Some("training done")
        );
        assert!(outcome.log.last_timestamp.is_some());
        assert!(outcome.started_at.is_some() && outcome.finished_at.is_some());
    })
    .await;
}

#[tokio::test]
async fn network_attempts_fail_inside_and_the_run_goes_on() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("net");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let outcome = run(&engine, &spec(&id, &fx, "network.sh"), &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded);
        let log = fx.log();
        assert!(!log.contains("NET-OPEN"), "{log}");
        assert_eq!(log.matches("NET-BLOCKED").count(), 2, "{log}");
        assert!(
            log.contains("interfaces: lo \n") || log.trim_end().ends_with("interfaces: lo"),
            "only loopback: {log}"
        );
    })
    .await;
}

#[tokio::test]
async fn writes_outside_out_and_tmp_fail() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("rofs");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let outcome = run(
            &engine,
            &spec(&id, &fx, "write_outside.sh"),
            &fx,
            in_a_minute(),
        )
        .await;
        assert_eq!(outcome.status, RunStatus::Succeeded);
        let log = fx.log();
        assert!(!log.contains("WROTE"), "{log}");
        assert_eq!(log.matches("DENIED").count(), 6, "{log}");
        for ok in ["TMP-OK", "SHM-OK", "OUT-OK"] {
            assert!(log.contains(ok), "{ok}: {log}");
        }
        assert!(fx.out().join("result").is_file());
        assert!(!fixtures().join("scripts/evil").exists());
    })
    .await;
}

fn compile_escalate(dir: &Path) {
    compile_static(
        &fixtures().join("escalate/escalate.c"),
        &dir.join("escalate"),
    );
}

/// Builds a static test helper, so it runs in the busybox image.
fn compile_static(src: &Path, out: &Path) {
    let status = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "gcc is needed to build the test helpers: {e} (hint: apt-get install gcc libc6-dev)"
            )
        });
    assert!(status.success(), "gcc failed on {}", src.display());
}

#[tokio::test]
async fn setuid_escalation_gains_nothing() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("suid");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let ctx = fx.dir.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::copy(
            fixtures().join("escalate/Dockerfile"),
            ctx.join("Dockerfile"),
        )
        .unwrap();
        compile_escalate(&ctx);
        let build = BuildSpec {
            run_id: id.clone(),
            context_dir: ctx.clone(),
            dockerfile: ctx.join("Dockerfile"),
            network: "none".into(),
            time_limit: Duration::from_secs(120),
            max_context_bytes: 64 << 20,
        };
        let built = build_image(&engine, &build, &fx.dir.path().join("logs/build.log"))
            .await
            .unwrap();
        assert!(built.image_id.starts_with("sha256:"), "{built:?}");

        // Control: without no-new-privileges and with capabilities, the helper does become root,
        // so the assertion below is about the sandbox and not about a broken helper.
        let control = std::process::Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "65534:65534",
                &built.image_id,
                "/bin/escalate",
            ])
            .output()
            .unwrap();
        let control = String::from_utf8_lossy(&control.stdout);
        assert!(
            control.contains("euid=0") && control.contains("setuid0=ok"),
            "control run: {control}"
        );

        let mut s = spec(&id, &fx, "escalate.sh");
        s.image = built.image_id.clone();
        let outcome = run(&engine, &s, &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded);
        let log = fx.log();
        assert!(log.contains("euid=10001 uid=10001 setuid0=denied"), "{log}");
        assert!(log.contains("NoNewPrivs:\t1"), "{log}");
        assert!(log.contains("CapEff:\t0000000000000000"), "{log}");
        assert!(log.contains("CapBnd:\t0000000000000000"), "{log}");
        assert!(
            log.contains("Seccomp:\t2"),
            "the default seccomp filter is on: {log}"
        );
    })
    .await;
}

fn telemetry_max_pids(fx: &Fixture) -> u64 {
    std::fs::read_to_string(fx.paths().telemetry)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()?
                .get("pids")?
                .as_u64()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn fork_bomb_is_held_by_the_pids_limit_and_the_deadline() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("fork");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let mut s = spec(&id, &fx, "forkbomb.sh");
        s.profile.pids_limit = 64;
        let t = Instant::now();
        let outcome = run(
            &engine,
            &s,
            &fx,
            Deadline::AfterStart(Duration::from_secs(4)),
        )
        .await;
        assert_eq!(outcome.status, RunStatus::Timeout, "{}", fx.log());
        assert!(
            t.elapsed() < Duration::from_secs(4 + 2 + 10),
            "took {:?}",
            t.elapsed()
        );
        let max = telemetry_max_pids(&fx);
        assert!(max > 0 && max <= 64, "pids seen in telemetry: {max}");
        // The outcome's peaks are the running maxima of the same samples.
        let r = outcome.resources;
        assert_eq!(r.peak_pids, Some(max), "{r:?}");
        assert_eq!(r.memory_limit_bytes, Some(256 << 20), "{r:?}");
        let peak = r.peak_memory_bytes.expect("memory was sampled");
        assert!(
            peak > 64 << 10 && peak <= 256 << 20,
            "a plausible peak for 64 shells: {peak} bytes"
        );
        assert!(outcome.telemetry_samples >= 1);
        assert!(
            fx.log().contains("can't fork") || max >= 60,
            "the bomb hit the limit: max pids {max}"
        );
    })
    .await;
}

#[tokio::test]
async fn memory_bomb_ends_as_oom() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("oom");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let mut s = spec(&id, &fx, "membomb.sh");
        s.limits.memory_bytes = 64 << 20;
        let outcome = run(&engine, &s, &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Oom, "{}", fx.log());
        assert!(outcome.oom_killed);
        assert!(!fx.log().contains("survived"));
        // The bomb reaches the limit between two samples; the OOM kill itself says the peak
        // was the limit.
        assert_eq!(
            outcome.resources.peak_memory_bytes,
            Some(64 << 20),
            "{:?}",
            outcome.resources
        );
    })
    .await;
}

#[tokio::test]
async fn sigterm_ignorer_is_killed_after_the_grace_period() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("term");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let s = spec(&id, &fx, "ignore_term.sh");
        let t = Instant::now();
        let outcome = run(
            &engine,
            &s,
            &fx,
            Deadline::AfterStart(Duration::from_secs(3)),
        )
        .await;
        let elapsed = t.elapsed();
        assert_eq!(outcome.status, RunStatus::Timeout);
        let term = outcome.termination.expect("termination recorded");
        assert!(term.sigkilled, "SIGTERM was ignored, so SIGKILL was needed");
        // Grace 2 s, plus the engine's own latency.
        assert!(
            term.stopped_after_deadline_s >= 1.9 && term.stopped_after_deadline_s < 2.0 + 3.0,
            "{term:?}"
        );
        assert!(elapsed < Duration::from_secs(3 + 2 + 5), "took {elapsed:?}");
        assert!(fx.log().contains("ignoring SIGTERM"));
        let r = outcome.resources;
        assert!(
            r.peak_memory_bytes
                .is_some_and(|m| m > 0 && m <= r.memory_limit_bytes.unwrap_or(0)),
            "{r:?}"
        );
        assert!(
            r.peak_pids.is_some_and(|p| p >= 2),
            "tini and the shell: {r:?}"
        );
    })
    .await;
}

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn log_flood_is_capped_in_bounded_memory() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("flood");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let mut s = spec(&id, &fx, "flood.sh");
        // 1 GB, as the issue asks: 20-30 s here (debug build, 2 CPUs shared with other builds);
        // past the cap the log reader only counts lines, and the attach stream counts bytes.
        s.env.push(("FLOOD_MB".into(), "1000".into()));
        s.profile.log_cap_bytes = 16 << 20;
        let rss_before = peak_rss_bytes();
        let outcome = run(
            &engine,
            &s,
            &fx,
            Deadline::AfterStart(Duration::from_secs(300)),
        )
        .await;
        // Before the test reads the 16 MiB log itself.
        let rss = peak_rss_bytes();
        assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.log);
        assert!(outcome.log.truncated);
        let size = std::fs::metadata(fx.paths().log).unwrap().len();
        assert!(size <= (16 << 20) + 512, "log is {size} bytes");
        let log = fx.log();
        assert_eq!(log.matches(TRUNCATION_MARKER).count(), 1);
        assert!(log.lines().last().unwrap().starts_with(TRUNCATION_MARKER));
        // Every byte the container wrote is counted, exactly, though Docker's own capped log
        // rotates under the log reader (1000 × 1 000 000 bytes of lines, then "flood done\n"),
        // and the tail is the real end of the output.
        assert_eq!(
            (outcome.log.bytes_seen, outcome.log.bytes_seen_exact),
            (1_000_000_011, true),
            "lines seen by the log reader: {}",
            outcome.log.lines_seen
        );
        assert_eq!(
            outcome.log.tail.last().map(String::as_str),
            Some("flood done")
        );
        // nextest runs each test in its own process, so VmHWM is this runner's alone (here about
        // 11 MiB, 1 MiB of it added by the flood): the bound (< 64 MB) holds absolutely,
        // and the flood may add little to it.
        assert!(
            rss < 64 << 20 && rss - rss_before < 16 << 20,
            "peak RSS {} MiB, grew {} MiB during the flood",
            rss >> 20,
            (rss - rss_before) >> 20
        );
    })
    .await;
}

#[tokio::test]
async fn non_zero_exit_is_failed_with_its_code() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("exit");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let outcome = run(&engine, &spec(&id, &fx, "exit7.sh"), &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Failed { exit_code: 7 });
        assert!(fx.log().contains(" stderr loss is NaN, giving up"));
    })
    .await;
}

#[tokio::test]
async fn created_container_has_every_hardening_setting() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("inspect");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let mut s = spec(&id, &fx, "normal.sh");
        s.gpu = Some(DeviceRequest {
            driver: Some("nvidia".into()),
            device_ids: Some(vec!["GPU-00000000-1111-2222-3333-444444444444".into()]),
            capabilities: Some(vec![vec!["gpu".into(), "compute".into(), "utility".into()]]),
            ..Default::default()
        });
        // Created, not started: there is no GPU here, but the request must be recorded as given.
        let cid = engine
            .create_container(&s.container_name(), create_body(&s).unwrap())
            .await
            .unwrap();
        let state = engine.inspect_container(&cid).await.unwrap();
        let h = state.host_config.clone().unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert!(state.network_disabled);
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert!(h.cap_add.unwrap_or_default().is_empty());
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.readonly_rootfs, Some(true));
        let sec = h.security_opt.unwrap();
        assert!(sec.iter().any(|o| o == "no-new-privileges:true"), "{sec:?}");
        assert!(!sec.iter().any(|o| o.contains("unconfined")), "{sec:?}");
        assert!(
            sec.iter()
                .any(|o| o.starts_with("seccomp=") && o.contains("SCMP_ACT_ERRNO")),
            "reprobox's allowlist filter: {sec:?}"
        );
        assert_eq!(h.pids_limit, Some(4096));
        assert_eq!(h.memory, Some(256 << 20));
        assert_eq!(h.memory, h.memory_swap);
        assert_eq!(h.shm_size, Some(16 << 30));
        let tmpfs = h.tmpfs.unwrap();
        assert_eq!(
            tmpfs.get("/tmp").map(String::as_str),
            Some(format!("rw,nosuid,nodev,exec,size={}", 8u64 << 30).as_str())
        );
        assert_eq!(h.init, Some(true));
        assert_eq!(h.runtime.as_deref(), Some("runc"));
        assert_eq!(state.user.as_deref(), Some("10001:10001"));
        let binds = h.binds.unwrap();
        assert_eq!(binds.len(), 2, "{binds:?}");
        assert!(binds.iter().any(|b| b.ends_with(":/out:rw")));
        assert!(binds.iter().any(|b| b.ends_with(":/inputs/sub:ro")));
        assert!(!binds.iter().any(|b| b.contains("docker.sock")));
        let ulimits = h.ulimits.unwrap();
        assert!(
            ulimits
                .iter()
                .any(|u| u.name.as_deref() == Some("core") && u.hard == Some(0))
        );
        let log_config = h.log_config.unwrap();
        assert_eq!(log_config.typ.as_deref(), Some("local"));
        let opts = log_config.config.unwrap_or_default();
        assert_eq!(
            opts.get("max-size"),
            Some(&(256u64 << 20).to_string()),
            "Docker's own log is capped too"
        );
        assert_eq!(opts.get("max-file").map(String::as_str), Some("2"));
        let dr = h.device_requests.unwrap();
        assert_eq!(dr.len(), 1);
        assert_eq!(
            dr[0].device_ids.as_deref(),
            Some(&["GPU-00000000-1111-2222-3333-444444444444".to_owned()][..])
        );
        assert!(
            dr[0].count.unwrap_or(0) == 0,
            "count must stay unset when pinning a UUID"
        );
        assert_eq!(state.labels.get("reprobox.run"), Some(&id));
        assert_eq!(
            state.labels.get("reprobox.stage").map(String::as_str),
            Some("train")
        );
    })
    .await;
}

#[tokio::test]
async fn ptrace_of_the_containers_init_is_denied_unless_the_profile_opts_in() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("ptrace");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let tools = fx.dir.path().join("tools");
        std::fs::create_dir(&tools).unwrap();
        compile_static(
            &fixtures().join("ptrace/ptrace_init.c"),
            &tools.join("ptrace_init"),
        );

        // Control: under Docker's own default filter, the same uid attaches to its init, so
        // the assertion below is about the sandbox and not about a broken helper.
        let control = std::process::Command::new("docker")
            .args([
                "run",
                "--rm",
                "--init",
                "--network",
                "none",
                "--user",
                "10001:10001",
            ])
            .arg("-v")
            .arg(format!("{}:/tools:ro", tools.display()))
            .args([
                "--label",
                &format!("reprobox.run={id}"),
                SHELL_IMAGE,
                "/tools/ptrace_init",
            ])
            .output()
            .unwrap();
        let control = String::from_utf8_lossy(&control.stdout);
        assert!(
            control.contains("ptrace-init=attached"),
            "control run: {control}"
        );

        let mut s = spec(&id, &fx, "ptrace.sh");
        s.inputs.push(InputMount {
            host: tools.clone(),
            target: "tools".into(),
        });
        let outcome = run(&engine, &s, &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{}", fx.log());
        let log = fx.log();
        assert!(
            log.contains("ptrace-init=denied errno=Operation not permitted"),
            "{log}"
        );

        // A profile that opts in (debuggers, py-spy) gets ptrace back, and only that.
        let fx = Fixture::new();
        s.out_dir = fx.out();
        s.profile.allow_ptrace = true;
        let outcome = run(&engine, &s, &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{}", fx.log());
        assert!(fx.log().contains("ptrace-init=attached"), "{}", fx.log());
    })
    .await;
}

#[tokio::test]
async fn tmp_is_exec_as_the_strict_profile_says() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("tmpexec");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let outcome = run(&engine, &spec(&id, &fx, "tmp_exec.sh"), &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{}", fx.log());
        let log = fx.log();
        assert!(log.contains(" stdout tmp-exec=ok"), "{log}");
        let mount = log
            .lines()
            .find(|l| l.contains(" stdout tmpfs /tmp "))
            .unwrap_or_else(|| panic!("no /tmp mount line: {log}"));
        assert!(
            mount.contains("nosuid") && mount.contains("nodev") && !mount.contains("noexec"),
            "{mount}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_container_sees_no_host_secret_and_no_docker_socket() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("env");
    with_cleanup(&engine, &id, async {
        // Nextest runs each test in its own process, so this variable is this test's alone: a
        // secret in the runner's environment must not reach the container.
        // SAFETY: no other thread of this test process reads or writes the environment now.
        unsafe { std::env::set_var("REPROBOX_TEST_HOST_SECRET", "hunter2") };
        let fx = Fixture::new();
        let mut s = spec(&id, &fx, "environment.sh");
        s.env.push(("SEED".into(), "7".into()));
        let outcome = run(&engine, &s, &fx, in_a_minute()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{}", fx.log());
        let log = fx.log();
        assert!(!log.contains("hunter2"), "{log}");
        assert!(!log.contains("SOCKET-"), "{log}");
        let names: Vec<&str> = log
            .lines()
            .skip_while(|l| !l.ends_with(" stdout env-begin"))
            .skip(1)
            .take_while(|l| !l.ends_with(" stdout env-end"))
            .filter_map(|l| l.split(" stdout ").nth(1)?.split('=').next())
            .collect();
        // Only what the image and the runner set: nothing from the host's environment.
        for name in &names {
            assert!(
                [
                    "HOME",
                    "HOSTNAME",
                    "PATH",
                    "PWD",
                    "PYTHONUNBUFFERED",
                    "SEED",
                    "SHLVL",
                    "TMPDIR"
                ]
                .contains(name),
                "unexpected variable {name} in the container: {names:?}"
            );
        }
        assert!(names.contains(&"SEED"), "{names:?}");
        let mounts = log
            .lines()
            .find_map(|l| l.split(" stdout mounts: ").nth(1))
            .unwrap();
        // Docker's own init (/sbin/docker-init) is mounted; no socket, nothing under /run.
        assert!(!mounts.contains("docker.sock"), "{mounts}");
        assert!(
            !mounts
                .split(' ')
                .any(|m| m.starts_with("/run") || m.starts_with("/var/run")),
            "{mounts}"
        );
    })
    .await;
}

#[tokio::test]
async fn reattach_continues_the_log_without_duplicates_or_a_new_deadline() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("resume");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let mut s = spec(&id, &fx, "ticker.sh");
        s.env.push(("TICKS".into(), "25".into()));
        let deadline = SystemTime::now() + Duration::from_secs(60);
        let cid = start_container(&engine, &s).await.unwrap();
        // The first runner watches for 2 s and "dies" (its future is dropped).
        let first = tokio::time::timeout(
            Duration::from_secs(2),
            attach(
                &engine,
                &cid,
                &s.profile,
                &fx.paths(),
                Deadline::At(deadline),
                None,
            ),
        )
        .await;
        assert!(
            first.is_err(),
            "the ticker runs ~5 s; the first watcher must be cut off"
        );
        let since = last_timestamp_in(&fx.paths().log).unwrap();
        assert!(
            since.is_some(),
            "some lines were written before the cut: {}",
            fx.log()
        );
        let outcome = attach(
            &engine,
            &cid,
            &s.profile,
            &fx.paths(),
            Deadline::At(deadline),
            since,
        )
        .await
        .unwrap();
        assert_eq!(outcome.status, RunStatus::Succeeded);
        let deadline_unix = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (outcome.deadline_unix - deadline_unix).abs() < 1e-3,
            "the original deadline is kept"
        );
        let log = fx.log();
        for i in 0..25 {
            let n = log
                .lines()
                .filter(|l| l.ends_with(&format!(" stdout tick {i}")))
                .count();
            assert_eq!(n, 1, "tick {i} appears {n} times:\n{log}");
        }
    })
    .await;
}

#[tokio::test]
async fn builds_fail_fast_and_clearly() {
    let engine = engine().await;
    require_shell_image(&engine).await;
    let id = run_id("build");
    with_cleanup(&engine, &id, async {
        let fx = Fixture::new();
        let spec_for = |name: &str, limit: u64| BuildSpec {
            run_id: id.clone(),
            context_dir: fixtures().join(name),
            dockerfile: fixtures().join(name).join("Dockerfile"),
            network: "none".into(),
            time_limit: Duration::from_secs(limit),
            max_context_bytes: 1 << 20,
        };
        let log = fx.dir.path().join("logs/build.log");

        let err = build_image(&engine, &spec_for("missing-base", 60), &log)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SandboxError::MissingBaseImage { line: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("docker load -i"), "{err}");

        let err = build_image(&engine, &spec_for("failing-build", 60), &log)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SandboxError::Engine(EngineError::Build { .. })),
            "{err}"
        );
        assert!(
            err.to_string().contains("returned a non-zero code: 3"),
            "{err}"
        );
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("about to fail")
        );

        let t = Instant::now();
        let err = build_image(&engine, &spec_for("slow-build", 3), &log)
            .await
            .unwrap_err();
        assert!(matches!(err, SandboxError::BuildTimeout { .. }), "{err}");
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "took {:?}",
            t.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_engine_is_an_infra_error() {
    // SAFETY of the env change: nextest runs each test in its own process.
    unsafe { std::env::set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock") };
    let err = DockerEngine::connect().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(
        err.to_string().contains("is the Docker Engine running?"),
        "{err}"
    );
    assert!(SandboxError::from(err).is_infra());
}
