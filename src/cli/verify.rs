//! `reprobox verify SUBMISSION` and `reprobox resume RUN_DIR`: the whole pipeline, with progress
//! on a terminal and plain lines otherwise; the exit code is the verdict's.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use reprobox::gpu::GpuSelector;
use reprobox::pipeline::{
    self, NoProgress, PipelineError, Progress, ResumeOptions, RunResult, Tick, VerifyOptions,
};
use reprobox::policy::PolicySet;
use reprobox::render::controls::neutralize;
use reprobox::stage::InputsMirror;

use super::output::{self, Format};

/// Arguments of `reprobox verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The submission directory (holding reprobox.toml).
    pub submission: PathBuf,
    /// The contestant's rehearsal: same checks and sandbox, the policy's short budget, CPU allowed.
    #[arg(long)]
    pub dry_run: bool,
    /// The GPU to train on: a UUID (`GPU-…`), an NVML index, or `none` (a CPU run, where the
    /// policy or --dry-run allows it).
    #[arg(long, default_value = "none", value_parser = parse_gpu)]
    pub gpu: GpuSelector,
    /// The local inputs mirror holding the declared base model and datasets
    /// (`models/<id>/<revision>/`, `datasets/<id>/<revision>/`); default `$REPROBOX_INPUTS` or
    /// `~/.cache/reprobox/inputs`.
    #[arg(long, value_name = "MIRROR")]
    pub inputs: Option<PathBuf>,
    /// Where the run directory is created.
    #[arg(long, value_name = "DIR", default_value = "audits")]
    pub out: PathBuf,
    /// Shorten the training wall clock to this many seconds (never lengthens the policy's).
    #[arg(long, value_name = "SECS")]
    pub train_limit: Option<u64>,
    /// Read policies from this directory instead of the built-in ones.
    #[arg(long, value_name = "DIR", env = "REPROBOX_POLICIES")]
    pub policies: Option<PathBuf>,
    /// The NVML library to load (default libnvidia-ml.so.1).
    #[arg(long, value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,
    /// Where GPU leases are kept (default `$REPROBOX_GPU_LEASE_DIR`, else /run/reprobox/gpu-leases).
    #[arg(long, value_name = "DIR")]
    pub lease_dir: Option<PathBuf>,
    /// Sign the provenance statements (DSSE, Ed25519) with this key (`reprobox audit keygen`).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// The organizer's evaluation image (a local tag or id) to run instead of the policy's
    /// harness image; it must write the scores file (docs/evaluation.md).
    #[arg(long, value_name = "IMAGE")]
    pub eval_image: Option<String>,
    /// For a natively scored policy (subnet 37): the directory of the samples the competition
    /// scored, one `<TASK>.jsonl` per task (docs/evaluation.md, "Policy tasks").
    #[arg(long, value_name = "DIR", env = "REPROBOX_TASK_DATA")]
    pub task_data: Option<PathBuf>,
    /// With --task-data: the competition's evaluation seed (the subnet's
    /// `int(sha256(block_hash).hexdigest(), 16)`, decimal); SYNTHETIC_MMLU is then drawn from its
    /// file as from a pool, and WORD_SORTING generated from `WORD_SORTING.words.txt`.
    #[arg(
        long,
        value_name = "SEED",
        requires = "task_data",
        conflicts_with = "task_block_hash"
    )]
    pub task_seed: Option<String>,
    /// As --task-seed, from the sync block's hash (`0x…`).
    #[arg(long, value_name = "HASH", requires = "task_data")]
    pub task_block_hash: Option<String>,
    /// `text` prints progress on stderr and the verdict; `json` prints no progress and one JSON result.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Arguments of `reprobox resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run directory of the run to continue (audits/<run-id>).
    pub run_dir: PathBuf,
    /// Read policies from this directory instead of the built-in ones (the run's policy must be
    /// among them, unchanged: its digest is in plan.json).
    #[arg(long, value_name = "DIR", env = "REPROBOX_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Where GPU leases are kept, as `verify --lease-dir`.
    #[arg(long, value_name = "DIR")]
    pub lease_dir: Option<PathBuf>,
    /// Sign the provenance statements with this key, as `verify --sign-key` does.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// `text` prints progress on stderr and the verdict; `json` prints no progress and one JSON result.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub(super) fn parse_gpu(s: &str) -> Result<GpuSelector, String> {
    s.parse()
        .map_err(|e: reprobox::gpu::GpuError| e.to_string())
}

/// The `--format json` result.
#[derive(Serialize)]
struct ResultJson<'a> {
    run_id: &'a str,
    run_dir: &'a std::path::Path,
    verdict: &'a str,
    stage: &'a str,
    reason: &'a str,
    report: PathBuf,
    cleanup_error: Option<&'a str>,
    /// `resume` of a run that already had a verdict: nothing was run or written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    already_decided: bool,
}

/// Progress on stderr: a rewritten status line on a terminal, one line per stage otherwise.
pub(super) struct TermProgress {
    tty: bool,
    last_line: std::time::Instant,
}

impl TermProgress {
    pub(super) fn new() -> Self {
        TermProgress {
            tty: std::io::stderr().is_terminal(),
            last_line: std::time::Instant::now(),
        }
    }
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Bytes in binary units, one decimal from KiB up (`512 B`, `1.5 MiB`).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The status line of a tick: stage, elapsed / limit, log lines (and volume), the container's
/// memory and the GPU's utilization when they were sampled.
fn tick_line(t: &Tick<'_>) -> String {
    let limit = t.limit.map(hms).unwrap_or_else(|| "-".into());
    let mut line = format!(
        "[{}] {} / {limit} elapsed, log {} line{} ({})",
        t.stage,
        hms(t.elapsed),
        t.log_lines,
        if t.log_lines == 1 { "" } else { "s" },
        size(t.log_bytes)
    );
    if let Some(m) = t.memory_bytes {
        line.push_str(&format!(", mem {}", size(m)));
    }
    if let Some(u) = t.gpu_utilization_pct {
        line.push_str(&format!(", GPU {u}%"));
    }
    line
}

impl Progress for TermProgress {
    fn stage(&mut self, stage: &str, detail: &str) {
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(e, "{}", neutralize(&format!("[{stage}] {detail}"), true));
    }

    fn tick(&mut self, tick: &Tick<'_>) {
        let line = tick_line(tick);
        let line = neutralize(&line, false);
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K{line}");
            let _ = e.flush();
        } else if self.last_line.elapsed() >= Duration::from_secs(60) {
            // Off a terminal, one line a minute keeps CI logs readable.
            self.last_line = std::time::Instant::now();
            let _ = writeln!(e, "{line}");
        }
    }

    fn done(&mut self, stage: &str, detail: &str) {
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(
            e,
            "{}",
            neutralize(&format!("[{stage}] done: {detail}"), true)
        );
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            errln!("error: cannot start the async runtime: {e}");
            reprobox::exit_codes::INFRA_ERROR
        })
}

pub(super) fn load_policies(dir: Option<&std::path::Path>) -> Result<PolicySet, i32> {
    PolicySet::load(dir).map_err(|e| {
        output::print_error(&e);
        reprobox::exit_codes::UNREADABLE_INPUT
    })
}

fn finish(result: Result<RunResult, PipelineError>, format: Format) -> i32 {
    match result {
        Ok(r) => {
            let report = r.run_dir.join(reprobox::rundir::REPORT_JSON);
            match format {
                Format::Json => output::print_json(&ResultJson {
                    run_id: &r.run_id,
                    run_dir: &r.run_dir,
                    verdict: r.verdict.as_str(),
                    stage: &r.stage,
                    reason: &r.reason,
                    report,
                    cleanup_error: r.cleanup_error.as_deref(),
                    already_decided: false,
                }),
                Format::Text => {
                    outln!("verdict: {} (decided by {})", r.verdict, r.stage);
                    outln!("  {}", r.reason);
                    outln!("report: {}", report.display());
                    if let Some(c) = &r.cleanup_error {
                        outln!("warning: cleanup failed: {c}");
                    }
                }
            }
            r.verdict.exit_code()
        }
        Err(e) => {
            output::print_error(&e);
            e.exit_code()
        }
    }
}

/// Runs `reprobox verify`.
pub fn run(args: VerifyArgs) -> i32 {
    let policies = match load_policies(args.policies.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let opts = VerifyOptions {
        submission: args.submission,
        audits_dir: args.out,
        dry_run: args.dry_run,
        gpu: args.gpu,
        nvml_lib: args.nvml_lib,
        lease_dir: args.lease_dir,
        inputs: args
            .inputs
            .map(InputsMirror::new)
            .unwrap_or_else(InputsMirror::default_location),
        policies,
        train_limit: args.train_limit.map(Duration::from_secs),
        sign_key: args.sign_key,
        eval_image: args.eval_image,
        task_data: args.task_data,
        task_seed: reprobox::native::TaskSeed::from_args(args.task_seed, args.task_block_hash),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = match args.format {
        Format::Json => rt.block_on(pipeline::verify(&opts, &mut NoProgress)),
        Format::Text => rt.block_on(pipeline::verify(&opts, &mut TermProgress::new())),
    };
    finish(result, args.format)
}

/// What `resume` prints for a run that already has a verdict: one line (or the JSON result), the
/// recorded verdict's exit code, and nothing written.
fn already_decided(r: &RunResult, format: Format) -> i32 {
    match format {
        Format::Json => output::print_json(&ResultJson {
            run_id: &r.run_id,
            run_dir: &r.run_dir,
            verdict: r.verdict.as_str(),
            stage: &r.stage,
            reason: &r.reason,
            report: r.run_dir.join(reprobox::rundir::REPORT_JSON),
            cleanup_error: None,
            already_decided: true,
        }),
        Format::Text => outln!(
            "run {} was already decided: {} (decided by {}); nothing was changed",
            r.run_id,
            r.verdict,
            r.stage
        ),
    }
    r.verdict.exit_code()
}

/// Runs `reprobox resume`.
pub fn resume(args: ResumeArgs) -> i32 {
    // A decided run is left exactly as it is: not even the policies or the key are read.
    match pipeline::recorded_verdict(&args.run_dir) {
        Ok(Some(r)) => return already_decided(&r, args.format),
        Ok(None) => {}
        Err(e) => {
            output::print_error(&e);
            return e.exit_code();
        }
    }
    let policies = match load_policies(args.policies.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let opts = ResumeOptions {
        policies,
        lease_dir: args.lease_dir,
        sign_key: args.sign_key,
    };
    let result = match args.format {
        Format::Json => rt.block_on(pipeline::resume(&args.run_dir, &opts, &mut NoProgress)),
        Format::Text => rt.block_on(pipeline::resume(
            &args.run_dir,
            &opts,
            &mut TermProgress::new(),
        )),
    };
    finish(result, args.format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_line_shows_lines_memory_and_gpu_when_known() {
        let mut t = Tick {
            stage: "train",
            elapsed: Duration::from_secs(3725),
            limit: Some(Duration::from_secs(24 * 3600)),
            log_lines: 1,
            log_bytes: 300,
            ..Tick::default()
        };
        assert_eq!(
            tick_line(&t),
            "[train] 1:02:05 / 24:00:00 elapsed, log 1 line (300 B)"
        );
        t.log_lines = 12_345;
        t.log_bytes = 3 << 19;
        t.memory_bytes = Some(5 << 29);
        t.gpu_utilization_pct = Some(97);
        t.limit = None;
        assert_eq!(
            tick_line(&t),
            "[train] 1:02:05 / - elapsed, log 12345 lines (1.5 MiB), mem 2.5 GiB, GPU 97%"
        );
    }
}
