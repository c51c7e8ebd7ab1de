//! `reprobox eval …` runs the native evaluator, which lives in the `reprobox-eval` binary beside
//! this one (crates/reprobox-eval: it is the only code that links libtorch, see its main.rs).
//! Arguments are passed through unchanged, except for `--policy`: then this binary (which owns
//! the policies) runs each task through the evaluator and aggregates ([`reprobox::native`]).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use reprobox::exit_codes;

/// Arguments of `reprobox eval`, handed to `reprobox-eval` as they are (`reprobox eval --help`
/// prints its help).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct EvalForwardArgs {
    /// The evaluator's arguments: `MODEL_DIR --method M --data FILE.jsonl …`, or
    /// `MODEL_DIR --policy ID --data-dir DIR …` (`reprobox eval --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

/// The evaluator binary: `$REPROBOX_EVAL_BIN`, else `reprobox-eval` next to this executable.
pub(super) fn evaluator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REPROBOX_EVAL_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.with_file_name("reprobox-eval");
    p.is_file().then_some(p)
}

/// `reprobox eval MODEL_DIR --policy ID --data-dir DIR`: every task of a natively scored policy.
#[derive(Debug, clap::Parser)]
#[command(name = "reprobox eval")]
struct PolicyEvalArgs {
    /// The Hugging Face model directory.
    model_dir: PathBuf,
    /// The policy whose tasks to run (natively scored: subnet 37).
    #[arg(long)]
    policy: String,
    /// Where each task's samples are, as `<TASK>.jsonl` (docs/evaluation.md, "Policy tasks").
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Where each task's evaluator output and log go (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// At most this many examples per task.
    #[arg(long, value_name = "N")]
    max_examples: Option<u32>,
    /// The competition's evaluation seed (decimal): SYNTHETIC_MMLU is drawn from its file as
    /// from a pool and WORD_SORTING generated from `WORD_SORTING.words.txt`, as the subnet does.
    #[arg(long, value_name = "SEED", conflicts_with = "block_hash")]
    seed: Option<String>,
    /// As --seed, from the sync block's hash (`0x…`).
    #[arg(long, value_name = "HASH")]
    block_hash: Option<String>,
    /// Read policies from this directory instead of the built-in ones.
    #[arg(long, value_name = "DIR", env = "REPROBOX_POLICIES")]
    policies: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: super::output::Format,
}

#[derive(serde::Serialize)]
struct PolicyEvalJson<'a> {
    policy: &'a str,
    tasks: Vec<TaskJson<'a>>,
    /// The policy's aggregate of the normalized scores.
    aggregate: Option<f64>,
}

#[derive(serde::Serialize)]
struct TaskJson<'a> {
    task: &'a str,
    method: &'a str,
    examples: usize,
    score: f64,
    normalized: f64,
    weight: f64,
    data: &'a std::path::Path,
    data_sha256: &'a str,
    /// With a seed: what the subnet's loader drew.
    #[serde(skip_serializing_if = "Option::is_none")]
    drawn: Option<&'a serde_json::Value>,
    /// TEXT_LOSS: why the gate failed (the score is then inf, `null` here).
    #[serde(skip_serializing_if = "Option::is_none")]
    gate_failed: Option<&'a str>,
    /// TEXT_LOSS: why the gate may not be the subnet's.
    #[serde(skip_serializing_if = "Option::is_none")]
    gate_caveat: Option<&'a str>,
}

fn run_policy(args: &[OsString]) -> i32 {
    use clap::Parser as _;
    let a = match PolicyEvalArgs::try_parse_from(
        std::iter::once(OsString::from("reprobox eval")).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit_codes::UNREADABLE_INPUT
            } else {
                exit_codes::OK
            };
        }
    };
    let policies = match reprobox::policy::PolicySet::load(a.policies.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            super::output::print_error(&e);
            return exit_codes::UNREADABLE_INPUT;
        }
    };
    let Some(policy) = policies.get(&a.policy) else {
        errln!(
            "error: unknown policy `{}` (hint: `reprobox policy list`)",
            a.policy
        );
        return exit_codes::UNREADABLE_INPUT;
    };
    let Some(bin) = evaluator() else {
        errln!(
            "error: the native evaluator `reprobox-eval` is not installed next to this reprobox (hint: `cargo build --release` builds it with libtorch)"
        );
        return exit_codes::EVAL_FAILED;
    };
    let tmp;
    let out = match &a.out {
        Some(o) => o.clone(),
        None => match tempfile::tempdir() {
            Ok(t) => {
                tmp = t;
                tmp.path().to_owned()
            }
            Err(e) => {
                errln!("error: cannot make a temporary directory: {e}");
                return exit_codes::INFRA_ERROR;
            }
        },
    };
    let opts = reprobox::native::NativeOptions {
        evaluator: bin,
        data_dir: a.data_dir.clone(),
        out_dir: out,
        max_examples: a.max_examples,
        // A subset is a rehearsal: the subnet's minimum applies to whole evaluations.
        enforce_minimum: a.max_examples.is_none(),
        time_limit: policy
            .limits
            .eval
            .unwrap_or(std::time::Duration::from_secs(2 * 3600)),
        device: reprobox::native::NativeDevice::Auto,
        handle: Default::default(),
        seed: reprobox::native::TaskSeed::from_args(a.seed.clone(), a.block_hash.clone()),
    };
    let text = a.format == super::output::Format::Text;
    let result = reprobox::native::evaluate(&a.model_dir, policy, &opts, &mut |l| {
        if text {
            errln!("[eval] {l}");
        }
    });
    let (_, tasks) = match result {
        Ok(r) => r,
        Err(e) => {
            super::output::print_error(&e);
            return exit_codes::EVAL_FAILED;
        }
    };
    let rows: Vec<TaskJson<'_>> = tasks
        .iter()
        .filter_map(|t| {
            let pt = policy.evaluation.task(&t.task)?;
            Some(TaskJson {
                task: &t.task,
                method: t.method,
                examples: t.examples,
                score: t.score,
                normalized: pt.normalization.apply(t.score),
                weight: pt.weight,
                data: &t.data,
                data_sha256: &t.data_sha256,
                gate_failed: t.gate_failed.as_deref(),
                gate_caveat: t.gate_caveat.as_deref(),
                drawn: t.drawn.as_ref(),
            })
        })
        .collect();
    let aggregate = policy
        .evaluation
        .combine(rows.iter().map(|r| (r.task, r.normalized)));
    let json = PolicyEvalJson {
        policy: &policy.id,
        tasks: rows,
        aggregate,
    };
    match a.format {
        super::output::Format::Json => super::output::print_json(&json),
        super::output::Format::Text => {
            for t in &json.tasks {
                outln!(
                    "{}	{}	{} examples	score {:.6}	normalized {:.6}	weight {}",
                    t.task,
                    t.method,
                    t.examples,
                    t.score,
                    t.normalized,
                    t.weight
                );
                if let Some(why) = t.gate_failed {
                    outln!("{}	reasonable-output gate failed, score inf: {why}", t.task);
                }
                if let Some(why) = t.gate_caveat {
                    outln!("{}	note on the gate: {why}", t.task);
                }
            }
            match json.aggregate {
                Some(v) => outln!("aggregate ({:?}): {v:.6}", policy.evaluation.aggregate),
                None => outln!("aggregate: none"),
            }
        }
    }
    exit_codes::OK
}

pub fn run(args: EvalForwardArgs) -> i32 {
    if args
        .args
        .iter()
        .any(|a| a == "--policy" || a.to_string_lossy().starts_with("--policy="))
    {
        return run_policy(&args.args);
    }
    let Some(bin) = evaluator() else {
        errln!(
            "error: the native evaluator `reprobox-eval` is not installed next to this reprobox (hint: build with default features, `cargo build --release`, which builds it with libtorch; hosts without libtorch evaluate with an organizer's image)"
        );
        return exit_codes::EVAL_FAILED;
    };
    use std::os::unix::process::CommandExt;
    // exec replaces this process, so signals and the exit code are the evaluator's own. Its
    // argv[0] is the verb the user typed, so its --help and errors say `reprobox eval`.
    let err = std::process::Command::new(&bin)
        .arg0("reprobox eval")
        .args(&args.args)
        .exec();
    errln!("error: cannot run `{}`: {err}", bin.display());
    exit_codes::EVAL_FAILED
}
