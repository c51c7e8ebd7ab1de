//! `reprobox verify SUBMISSION` and `reprobox resume RUN_DIR`: the whole pipeline, with progress
//! on stderr (`progress.rs`); the exit code is the verdict's.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use reprobox::gpu::GpuSelector;
use reprobox::pipeline::{self, PipelineError, ResumeOptions, RunResult, VerifyOptions};
use reprobox::policy::PolicySet;
use reprobox::stage::InputsMirror;

use super::output::{self, Format};

/// The host's own configuration, shared by `verify`, `resume` and `finalists`; the only place
/// its environment variables are read (the library takes them as options).
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// A directory of sandbox profiles (`<name>.toml`) replacing the built-in ones of the same
    /// name: an organizer's site profile (docs/sandbox.md).
    #[arg(long, value_name = "DIR", env = "REPROBOX_SANDBOXES")]
    pub sandboxes: Option<PathBuf>,
    /// The native evaluator to run for a natively scored policy (default: `reprobox-eval` next
    /// to this executable).
    #[arg(long, value_name = "PATH", env = "REPROBOX_EVAL_BIN")]
    pub evaluator: Option<PathBuf>,
}

/// `--inputs`, else `$REPROBOX_INPUTS` (clap reads it), else `<cache>/reprobox/inputs` with the
/// cache `$XDG_CACHE_HOME` or `~/.cache`.
pub(super) fn inputs_mirror(flag: Option<PathBuf>) -> InputsMirror {
    if let Some(p) = flag {
        return InputsMirror::new(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    InputsMirror::under_cache(&cache)
}

/// The run settings `verify` and `finalists` share (`finalists` applies them to every entry).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The contestant's rehearsal: same checks and sandbox, the policy's short budget, CPU allowed.
    #[arg(long)]
    pub dry_run: bool,
    /// The GPU to train on: a UUID (`GPU-…`), an NVML index, or `none` (a CPU run, where the
    /// policy or --dry-run allows it).
    #[arg(long, default_value = "none", value_parser = parse_gpu)]
    pub gpu: GpuSelector,
    /// The local inputs mirror holding the declared base model and datasets
    /// (`models/<id>/<revision>/`, `datasets/<id>/<revision>/`); default
    /// `~/.cache/reprobox/inputs`.
    #[arg(long, value_name = "MIRROR", env = "REPROBOX_INPUTS")]
    pub inputs: Option<PathBuf>,
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
}

/// Arguments of `reprobox verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The submission directory (holding reprobox.toml).
    pub submission: PathBuf,
    /// Where the run directory is created.
    #[arg(long, value_name = "DIR", default_value = "audits")]
    pub out: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// `text` prints progress on stderr and the verdict; `json` prints NDJSON progress events on
    /// stderr (docs/progress.md) and one JSON result on stdout.
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
    #[command(flatten)]
    pub host: HostArgs,
    /// `text` prints progress on stderr and the verdict; `json` prints NDJSON progress events on
    /// stderr (docs/progress.md) and one JSON result on stdout.
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
    let policies = match load_policies(args.run.policies.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let opts = VerifyOptions {
        submission: args.submission,
        audits_dir: args.out,
        dry_run: args.run.dry_run,
        gpu: args.run.gpu,
        nvml_lib: args.run.nvml_lib,
        lease_dir: args.run.lease_dir,
        inputs: inputs_mirror(args.run.inputs),
        policies,
        train_limit: args.run.train_limit.map(Duration::from_secs),
        sign_key: args.run.sign_key,
        eval_image: args.run.eval_image,
        task_data: args.run.task_data,
        task_seed: reprobox::native::TaskSeed::from_args(
            args.run.task_seed,
            args.run.task_block_hash,
        ),
        sandboxes_dir: args.host.sandboxes,
        evaluator: args.host.evaluator,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut progress = super::progress::for_format(args.format);
    let result = rt.block_on(pipeline::verify(&opts, progress.as_mut()));
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
        sandboxes_dir: args.host.sandboxes,
        inputs: inputs_mirror(std::env::var_os("REPROBOX_INPUTS").map(PathBuf::from)),
    };
    let mut progress = super::progress::for_format(args.format);
    let result = rt.block_on(pipeline::resume(&args.run_dir, &opts, progress.as_mut()));
    finish(result, args.format)
}
