//! Native evaluation of a policy's tasks (subnet 37): for each task, the `reprobox-eval` binary —
//! the only code that links libtorch — scores the model on the task's data file, and its
//! per-example values become the same `scores.json` a harness image writes, so
//! [`crate::compare`] judges both the same way.
//!
//! Task data: the subnet samples its evaluation data live (docs/references.md S§3); a
//! reproduction needs the exact samples, so the organizer supplies them as files:
//! `<data dir>/<TASK NAME>.jsonl`, in the layout of the task's method (docs/evaluation.md), each
//! recorded by its sha256. The first `samples` lines are evaluated (the policy's count); fewer than
//! `min_samples` is an error, as the subnet skips such a task. With the competition's seed the
//! subnet's loaders draw them instead: SYNTHETIC_MMLU from its file as a pool of archived rows,
//! WORD_SORTING from `<TASK>.words.txt` (S§3.1, S§3.2, S§4).
//!
//! Raw scores follow the subnet: the loss methods' mean, IF_EVAL's score, and for
//! MULTIPLE_CHOICE the fraction *incorrect* (`1 − accuracy`, S§2.1).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::compare::{Scores, TaskScore};
use crate::policy::{Method, Policy, Task, TextLayout};

/// Which device the evaluator may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeDevice {
    /// The evaluator's own choice (the first visible CUDA GPU, else the CPU).
    Auto,
    /// The CPU only: no GPU is visible to the evaluator.
    Cpu,
    /// Only this GPU (by UUID) is visible: the one the run holds the lease on.
    Gpu(String),
}

/// Stops a native evaluation from another thread: the running evaluator is killed and no further
/// task starts. It also tells that thread where the evaluation stands ([`NativeHandle::status`]).
/// Clones share the evaluation.
#[derive(Debug, Clone, Default)]
pub struct NativeHandle {
    child: Arc<Mutex<Option<Child>>>,
    cancelled: Arc<AtomicBool>,
    status: Arc<Mutex<NativeStatus>>,
}

/// Where a native evaluation stands, for progress lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativeStatus {
    /// The task being scored (empty before the first).
    pub task: String,
    /// Its place, from 1, among `tasks`.
    pub index: usize,
    pub tasks: usize,
    /// Examples scored of the task's `examples`, as the evaluator's log last said.
    pub done: u64,
    pub examples: u64,
}

impl NativeHandle {
    /// Where the evaluation stands now.
    pub fn status(&self) -> NativeStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_status(&self, f: impl FnOnce(&mut NativeStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Kills the running evaluator, if any, and cancels the rest.
    pub fn kill(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Ok(mut c) = self.child.lock()
            && let Some(child) = c.as_mut()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// What a native evaluation needs.
#[derive(Debug, Clone)]
pub struct NativeOptions {
    /// The `reprobox-eval` binary.
    pub evaluator: PathBuf,
    /// Where `<TASK>.jsonl` files are.
    pub data_dir: PathBuf,
    /// Where each task's evaluator output (`<TASK>.json`) and log (`<TASK>.log`) go.
    pub out_dir: PathBuf,
    /// At most this many examples per task (a dry run's subset).
    pub max_examples: Option<u32>,
    /// Refuse a task with fewer examples than the policy's `min_samples` (not in a rehearsal).
    pub enforce_minimum: bool,
    /// The whole evaluation's wall clock.
    pub time_limit: Duration,
    pub device: NativeDevice,
    pub handle: NativeHandle,
    /// The competition's evaluation seed: SYNTHETIC_MMLU is drawn from its data file as from a
    /// pool, and WORD_SORTING generated from `<TASK>.words.txt` when that file exists, both as
    /// the subnet's loaders draw them.
    pub seed: Option<TaskSeed>,
}

/// The seed the subnet's loaders draw with (docs/references.md S§4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskSeed {
    /// `int(sha256(block_hash).hexdigest(), 16)` itself, in decimal.
    Seed(String),
    /// The sync block's hash (`0x…`), hashed as the subnet does.
    BlockHash(String),
}

impl TaskSeed {
    /// From the command line's `--task-seed` / `--task-block-hash` (at most one is given).
    pub fn from_args(seed: Option<String>, block_hash: Option<String>) -> Option<Self> {
        seed.map(TaskSeed::Seed)
            .or_else(|| block_hash.map(TaskSeed::BlockHash))
    }

    fn args(&self) -> [&str; 2] {
        match self {
            TaskSeed::Seed(s) => ["--seed", s],
            TaskSeed::BlockHash(h) => ["--block-hash", h],
        }
    }
}

/// `<data dir>/<TASK>.words.txt`: the word list WORD_SORTING is generated from with a seed.
pub fn words_file(data_dir: &Path, task: &Task) -> PathBuf {
    data_dir.join(format!("{}.words.txt", task.name))
}

/// The file a task's examples come from: with a seed, WORD_SORTING's word list when there is
/// one; else `<TASK>.jsonl` (for SYNTHETIC_MMLU with a seed, the pool).
pub fn source_file(data_dir: &Path, task: &Task, seeded: bool) -> PathBuf {
    let words = words_file(data_dir, task);
    if seeded && task.method == Method::WordSorting && words.is_file() {
        words
    } else {
        data_file(data_dir, task)
    }
}

/// One task's data and result.
#[derive(Debug, Clone, Serialize)]
pub struct NativeTask {
    pub task: String,
    pub method: &'static str,
    /// The data file and its sha256.
    pub data: PathBuf,
    pub data_sha256: String,
    /// Examples evaluated.
    pub examples: usize,
    /// With a seed: what was drawn (`examples`; for SYNTHETIC_MMLU also `pool`, `eligible` and
    /// the `configs` used), as the evaluator reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drawn: Option<serde_json::Value>,
    /// The raw score (the subnet's); infinite (`null` in JSON) when TEXT_LOSS's gate failed.
    pub score: f64,
    /// TEXT_LOSS: why the model failed the "reasonable output" gate, which makes the raw score
    /// inf as in the subnet (the per-example losses stay in the evaluator's output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_failed: Option<String>,
    /// TEXT_LOSS: why the gate's outcome may differ from the subnet's: the model's
    /// generation_config.json samples (the subnet's gate was a random draw; reprobox decodes
    /// greedily), or sets decoding options reprobox does not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_caveat: Option<String>,
}

/// The largest task data file read (`--task-data DIR`): 256 MiB, as the evaluator's own cap.
pub const MAX_TASK_DATA_BYTES: u64 = 256 << 20;

/// A task data file's cap, as [`crate::input_file`] enforces it.
pub const TASK_DATA_CAP: crate::input_file::Cap = crate::input_file::Cap::new(
    "task data file",
    MAX_TASK_DATA_BYTES,
    "task data is JSON lines of the examples the competition scored; check --task-data",
);

/// Why a native evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// A task data file is not a regular file, or is past [`TASK_DATA_CAP`].
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),
    #[error(
        "task `{task}` is scored by `{method}`, which the native evaluator does not run (hint: give the policy a harness image, or pass --eval-image)"
    )]
    NotNative { task: String, method: String },
    #[error("task `{task}` has no data file `{}` (hint: put the exact samples the competition scored there, one JSON object per line in the `{method}` layout of docs/evaluation.md)", path.display())]
    MissingData {
        task: String,
        method: &'static str,
        path: PathBuf,
    },
    #[error("task `{task}`: `{}` has {found} examples, fewer than the policy's minimum of {min} (the subnet skips such a task; hint: supply the full set the competition scored)", path.display())]
    TooFewExamples {
        task: String,
        path: PathBuf,
        found: usize,
        min: u32,
    },
    #[error("cannot read or write `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run the native evaluator `{}`: {source} (hint: build it with `cargo build --release`, which needs libtorch; or evaluate with an organizer's image)", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the native evaluation was stopped before task `{task}`")]
    Cancelled { task: String },
    #[error(
        "the native evaluator failed on task `{task}` (exit {code}); its log ends: {tail} (hint: the whole log is eval/{task}.log)"
    )]
    Failed {
        task: String,
        code: String,
        tail: String,
    },
    #[error(
        "the native evaluation ran past its wall clock of {secs} s, in task `{task}`; its log ends: {tail} (hint: the policy's evaluation limit covers all tasks together; a slower host needs a GPU)"
    )]
    Timeout {
        task: String,
        secs: u64,
        tail: String,
    },
    #[error(
        "the native evaluator's output for task `{task}` is not what it should be: {detail} (hint: the evaluator and this reprobox must come from the same build)"
    )]
    Output { task: String, detail: String },
}

/// The `reprobox-eval --method` of a policy method; `None` for the harness.
pub fn method_name(m: Method) -> Option<&'static str> {
    match m {
        Method::TextLoss => Some("text_loss"),
        Method::ReferenceLoss => Some("reference_loss"),
        Method::MultipleChoice => Some("multiple_choice"),
        Method::WordSorting => Some("word_sorting"),
        Method::IfEval => Some("if_eval"),
        Method::Harness => None,
    }
}

/// Whether every task of a policy is scored natively.
pub fn is_native(policy: &Policy) -> bool {
    policy
        .evaluation
        .tasks
        .iter()
        .all(|t| method_name(t.method).is_some())
}

/// `<data dir>/<TASK>.jsonl`.
pub fn data_file(data_dir: &Path, task: &Task) -> PathBuf {
    data_dir.join(format!("{}.jsonl", task.name))
}

/// Scores `model` on every task of `policy`; `say` hears one line per task.
pub fn evaluate(
    model: &Path,
    policy: &Policy,
    opts: &NativeOptions,
    say: &mut dyn FnMut(&str),
) -> Result<(Scores, Vec<NativeTask>), NativeError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| NativeError::Io { path, source }
    };
    std::fs::create_dir_all(&opts.out_dir).map_err(io(&opts.out_dir))?;
    let started = Instant::now();
    let mut scores = Scores {
        tasks: Default::default(),
    };
    let mut done = Vec::new();
    let tasks = policy.evaluation.tasks.len();
    for (index, task) in policy.evaluation.tasks.iter().enumerate() {
        opts.handle.set_status(|s| {
            *s = NativeStatus {
                task: task.name.clone(),
                index: index + 1,
                tasks,
                done: 0,
                examples: 0,
            }
        });
        if opts.handle.is_cancelled() {
            return Err(NativeError::Cancelled {
                task: task.name.clone(),
            });
        }
        let method = method_name(task.method).ok_or_else(|| NativeError::NotNative {
            task: task.name.clone(),
            method: format!("{:?}", task.method).to_lowercase(),
        })?;
        let source = source_file(&opts.data_dir, task, opts.seed.is_some());
        let data = opts.out_dir.join(format!("{}.data.jsonl", task.name));
        // With a seed, the subnet's loader draws the examples (SYNTHETIC_MMLU from the data file
        // as a pool; WORD_SORTING from its word list, when one is given).
        let draw = match (&opts.seed, task.method) {
            (Some(seed), Method::MultipleChoice) => Some((seed, "--data")),
            (Some(seed), Method::WordSorting) if source != data_file(&opts.data_dir, task) => {
                Some((seed, "--words"))
            }
            _ => None,
        };
        // Only a missing file is "no data": a FIFO or a device there is refused by name.
        if source.symlink_metadata().is_err() {
            return Err(NativeError::MissingData {
                task: task.name.clone(),
                method,
                path: source,
            });
        }
        let bytes = crate::input_file::read(&source, TASK_DATA_CAP)?;
        let data_sha256 = crate::digest::bytes_sha256(&bytes).to_string();
        let limit = [task.samples, opts.max_examples]
            .into_iter()
            .flatten()
            .map(|n| n as usize)
            .min();
        let mut drawn = None;
        let lines: Vec<String> = if let Some((seed, flag)) = draw {
            let summary = draw_examples(opts, task, method, seed, flag, &source, limit, &data)?;
            drawn = Some(summary);
            let text = std::fs::read_to_string(&data).map_err(io(&data))?;
            text.lines().map(str::to_owned).collect()
        } else {
            let text = String::from_utf8(bytes).map_err(|e| NativeError::Io {
                path: source.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(min) = task.min_samples
            && lines.len() < min as usize
            && opts.enforce_minimum
        {
            return Err(NativeError::TooFewExamples {
                task: task.name.clone(),
                path: source,
                found: lines.len(),
                min,
            });
        }
        let keep = limit.map_or(lines.len(), |n| n.min(lines.len()));
        // The evaluated lines, exactly: what the report's digest covers is what was scored.
        std::fs::write(&data, lines[..keep].join("\n") + "\n").map_err(io(&data))?;
        let output = opts.out_dir.join(format!("{}.json", task.name));
        let log = opts.out_dir.join(format!("{}.log", task.name));
        say(&format!("{}: {method} on {keep} examples", task.name));
        opts.handle.set_status(|s| s.examples = keep as u64);
        let left = opts.time_limit.saturating_sub(started.elapsed());
        let mut extra: Vec<String> = Vec::new();
        // The policy's TEXT_LOSS tokenization and gate (docs/references.md S§2.3, S§3.3).
        match (task.text_layout, policy.sequence_length) {
            (TextLayout::Plain, _) | (_, None) => {}
            (layout, Some(len)) => extra.extend([
                "--text-layout".into(),
                match layout {
                    TextLayout::AppendEos => "append_eos",
                    _ => "pad_to_max_length",
                }
                .into(),
                "--max-length".into(),
                len.to_string(),
            ]),
        }
        if task.reasonable_output_gate {
            extra.push("--gate".into());
        }
        run_one(
            opts,
            model,
            method,
            &data,
            policy.model.dtype.as_deref(),
            &extra,
            &output,
            &log,
            left,
            &task.name,
        )?;
        let (score, gate) = read_output(&output, task)?;
        done.push(NativeTask {
            task: task.name.clone(),
            method,
            data: source,
            data_sha256,
            examples: keep,
            drawn,
            score: score.score,
            gate_failed: gate.failed,
            gate_caveat: gate.caveat,
        });
        scores.tasks.insert(task.name.clone(), score);
    }
    Ok((scores, done))
}

/// Runs the evaluator's `--sample-only` draw of a task's examples into `data`; returns its
/// summary.
#[allow(clippy::too_many_arguments)]
fn draw_examples(
    opts: &NativeOptions,
    task: &Task,
    method: &str,
    seed: &TaskSeed,
    flag: &str,
    source: &Path,
    limit: Option<usize>,
    data: &Path,
) -> Result<serde_json::Value, NativeError> {
    let mut cmd = Command::new(&opts.evaluator);
    cmd.args(["--sample-only", "--method", method])
        .args(seed.args())
        .arg(flag)
        .arg(source)
        .arg("--write-data")
        .arg(data)
        .stdin(Stdio::null());
    if let Some(n) = limit {
        cmd.args(["--samples", &n.to_string()]);
    }
    let out = cmd.output().map_err(|source| NativeError::Spawn {
        path: opts.evaluator.clone(),
        source,
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // Where the error's hint sends the reader.
        let _ = std::fs::write(opts.out_dir.join(format!("{}.log", task.name)), &out.stderr);
        return Err(NativeError::Failed {
            task: task.name.clone(),
            code: out
                .status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "by a signal".into()),
            tail: err.trim().lines().last().unwrap_or("").to_string(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| NativeError::Output {
        task: task.name.clone(),
        detail: format!("the draw's summary: {e}"),
    })
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    opts: &NativeOptions,
    model: &Path,
    method: &str,
    data: &Path,
    dtype: Option<&str>,
    extra: &[String],
    output: &Path,
    log: &Path,
    left: Duration,
    task: &str,
) -> Result<(), NativeError> {
    let evaluator = opts.evaluator.as_path();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| NativeError::Io { path, source }
    };
    let mut cmd = Command::new(evaluator);
    cmd.arg(model)
        .args(["--method", method, "--format", "json", "--data"])
        .arg(data)
        .args(extra);
    // The subnet evaluates in bfloat16 (docs/references.md S§1.1).
    if matches!(dtype, Some("bfloat16" | "bf16")) {
        cmd.args(["--dtype", "bf16"]);
    }
    // Only the run's own GPU is visible: the one its lease covers.
    match &opts.device {
        NativeDevice::Auto => {}
        NativeDevice::Cpu => {
            cmd.env("CUDA_VISIBLE_DEVICES", "")
                .args(["--device", "cpu"]);
        }
        NativeDevice::Gpu(uuid) => {
            cmd.env("CUDA_VISIBLE_DEVICES", uuid);
        }
    }
    let out = std::fs::File::create(output).map_err(io(output))?;
    let err = std::fs::File::create(log).map_err(io(log))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| NativeError::Spawn {
            path: evaluator.to_owned(),
            source,
        })?;
    let slot = &opts.handle.child;
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    // A limit past what the clock can hold (only a damaged plan.json gives one: policies are
    // bounded by `units::MAX_DURATION`) is no deadline at all, not an overflow panic.
    let deadline = Instant::now().checked_add(left);
    let mut polls = 0u64;
    let status = loop {
        let polled = {
            let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(c) => c.try_wait().map_err(io(evaluator))?,
                // Killed through the handle.
                None => None,
            }
        };
        // A kill through the handle ends the child too: say why, not how it died.
        if opts.handle.is_cancelled() {
            opts.handle.kill();
            return Err(NativeError::Cancelled {
                task: task.to_owned(),
            });
        }
        if let Some(s) = polled {
            break s;
        }
        polls += 1;
        if polls.is_multiple_of(20)
            && let Some((d, _)) = examples_done(log)
        {
            opts.handle.set_status(|s| s.done = d);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(mut c) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            return Err(NativeError::Timeout {
                task: task.to_owned(),
                secs: opts.time_limit.as_secs(),
                tail: last_lines(log, 5),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    if !status.success() {
        return Err(NativeError::Failed {
            task: task.to_owned(),
            code: status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "by a signal".into()),
            tail: last_lines(log, 5),
        });
    }
    Ok(())
}

/// The last `n` non-empty lines of a log (at most its last 64 KiB are read).
/// The evaluator's last progress line in its log (`[eval] METHOD DONE/TOTAL examples, …`, which
/// `reprobox-eval` writes to stderr every few seconds): `(done, total)`.
fn examples_done(log: &Path) -> Option<(u64, u64)> {
    let tail = crate::input_file::tail_bytes(log, 4 << 10);
    let text = String::from_utf8_lossy(&tail);
    text.lines().rev().find_map(|l| {
        let rest = l.strip_prefix("[eval] ")?;
        let counts = rest.split(' ').nth(1)?;
        let (d, t) = counts.split_once('/')?;
        Some((d.parse().ok()?, t.parse().ok()?))
    })
}

fn last_lines(path: &Path, n: usize) -> String {
    crate::input_file::last_lines(path, n).join(" | ")
}

/// The task's raw score and per-example values from the evaluator's JSON.
/// What the evaluator's output says of TEXT_LOSS's gate.
#[derive(Debug, Default)]
struct GateNotes {
    failed: Option<String>,
    caveat: Option<String>,
}

fn read_output(path: &Path, task: &Task) -> Result<(TaskScore, GateNotes), NativeError> {
    let bad = |detail: String| NativeError::Output {
        task: task.name.clone(),
        detail,
    };
    let text = crate::input_file::read_to_string(path, crate::compare::SCORES_CAP)
        .map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mean = v["mean"]
        .as_f64()
        .filter(|m| m.is_finite())
        .ok_or_else(|| bad("no finite `mean`".into()))?;
    // A model that fails TEXT_LOSS's gate gets the subnet's raw score inf (S§2.3 (a)).
    let mut notes = GateNotes::default();
    if let Some(gate) = v.get("gate").filter(|g| !g.is_null()) {
        let ignored: Vec<&str> = gate["ignored"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let mut why = Vec::new();
        if gate["sampled_by_subnet"] == true {
            why.push(
                "the model's generation_config.json samples (do_sample), so the subnet's gate was a random draw; reprobox generated greedily"
                    .to_string(),
            );
        }
        if !ignored.is_empty() {
            why.push(format!(
                "generation_config.json sets {}, which reprobox does not apply",
                ignored.join(", ")
            ));
        }
        notes.caveat = (!why.is_empty()).then(|| why.join("; "));
        let passed = gate["passed"]
            .as_bool()
            .ok_or_else(|| bad("`gate` has no `passed`".into()))?;
        if !passed {
            let reason = gate["reason"]
                .as_str()
                .unwrap_or("the reasonable-output gate failed")
                .to_string();
            notes.failed = Some(reason);
            return Ok((
                TaskScore {
                    score: f64::INFINITY,
                    examples: None,
                },
                notes,
            ));
        }
    }
    let values: Option<Vec<f64>> = v["examples"]
        .as_array()
        .map(|a| a.iter().map(|e| e["value"].as_f64()).collect())
        .unwrap_or(None);
    let (score, examples) = match task.method {
        // The subnet's MULTIPLE_CHOICE score is the fraction incorrect (S§2.1).
        Method::MultipleChoice => (
            1.0 - mean,
            values.map(|v| v.iter().map(|x| 1.0 - x).collect()),
        ),
        _ => (mean, values),
    };
    // Per-example values are kept only when their mean is the score (IF_EVAL weighs by rules,
    // and a duplicate penalty sets the score to 1): `scores.json` promises that.
    let examples = examples.filter(|e: &Vec<f64>| {
        !e.is_empty()
            && e.iter().all(|x| x.is_finite())
            && ((e.iter().sum::<f64>() / e.len() as f64) - score).abs()
                <= 1e-9 * score.abs().max(1.0)
    });
    Ok((TaskScore { score, examples }, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evaluators_last_progress_line_is_read_from_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("T.log");
        assert_eq!(examples_done(&log), None, "no log yet");
        std::fs::write(
            &log,
            "loading\n[eval] multiple_choice 10/700 examples, 5 s\n[eval] multiple_choice 120/700 examples, 10 s\nwarning: x\n",
        )
        .unwrap();
        assert_eq!(examples_done(&log), Some((120, 700)));
        std::fs::write(&log, "[eval] garbage x/y examples\n").unwrap();
        assert_eq!(examples_done(&log), None);
    }

    fn policy() -> Policy {
        crate::policy::PolicySet::builtin()
            .unwrap()
            .get("sn37-b7-multichoice")
            .unwrap()
            .clone()
    }

    /// A stand-in evaluator: prints `{"mean": .., "examples": [..]}` from the data's `v` fields.
    fn fake_evaluator(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("fake-eval");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn every_sn37_task_is_native_and_named_for_the_evaluator() {
        let p = policy();
        assert!(is_native(&p));
        let names: Vec<_> = p
            .evaluation
            .tasks
            .iter()
            .map(|t| method_name(t.method).unwrap())
            .collect();
        assert!(
            names.contains(&"multiple_choice") && names.contains(&"text_loss"),
            "{names:?}"
        );
    }

    #[test]
    fn scores_come_from_the_evaluator_and_mc_is_the_fraction_incorrect() {
        let d = tempfile::tempdir().unwrap();
        let p = policy();
        let data = d.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for t in &p.evaluation.tasks {
            let lines: String = (0..60).map(|i| format!("{{\"id\": \"{i}\"}}\n")).collect();
            std::fs::write(data_file(&data, t), lines).unwrap();
        }
        // Three examples: 1, 1, 0 → mean 2/3; the evaluator also echoes its arguments.
        let eval = fake_evaluator(
            d.path(),
            r#"echo "$@" >&2; echo '{"mean": 0.6666666666666666, "examples": [{"id":"a","value":1},{"id":"b","value":1},{"id":"c","value":0}]}'"#,
        );
        let opts = NativeOptions {
            evaluator: eval,
            data_dir: data,
            out_dir: d.path().join("out"),
            max_examples: Some(5),
            enforce_minimum: true,
            time_limit: Duration::from_secs(60),
            device: NativeDevice::Cpu,
            handle: NativeHandle::default(),
            seed: None,
        };
        let mut said = Vec::new();
        let (scores, tasks) =
            evaluate(d.path(), &p, &opts, &mut |l| said.push(l.to_owned())).unwrap();
        let mc = p
            .evaluation
            .tasks
            .iter()
            .find(|t| t.method == Method::MultipleChoice)
            .unwrap();
        let s = &scores.tasks[&mc.name];
        assert!((s.score - 1.0 / 3.0).abs() < 1e-12, "{s:?}");
        assert_eq!(s.examples.as_deref(), Some(&[0.0, 0.0, 1.0][..]));
        assert!(
            tasks
                .iter()
                .all(|t| t.examples == 5 && t.data_sha256.starts_with("sha256:"))
        );
        assert_eq!(said.len(), p.evaluation.tasks.len());
        let log = std::fs::read_to_string(opts.out_dir.join(format!("{}.log", mc.name))).unwrap();
        assert!(
            log.contains("--method multiple_choice")
                && log.contains("--dtype bf16")
                && log.contains("--device cpu"),
            "{log}"
        );
        let evaluated =
            std::fs::read_to_string(opts.out_dir.join(format!("{}.data.jsonl", mc.name))).unwrap();
        assert_eq!(evaluated.lines().count(), 5, "the dry-run subset");
    }

    #[test]
    fn text_loss_gets_the_policy_layout_and_gate_and_a_failed_gate_is_inf() {
        let d = tempfile::tempdir().unwrap();
        let p = policy();
        let data = d.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for t in &p.evaluation.tasks {
            std::fs::write(data_file(&data, t), "{\"id\": \"0\"}\n{\"id\": \"1\"}\n").unwrap();
        }
        // text_loss reports a failed gate; every other method a plain mean.
        let eval = fake_evaluator(
            d.path(),
            r#"echo "$@" >&2
case "$*" in
  *text_loss*) echo '{"mean": 2.5, "examples": [{"id":"0","value":2},{"id":"1","value":3}], "gate": {"passed": false, "reason": "agree in 12 of 20 positions", "sampled_by_subnet": true, "ignored": ["no_repeat_ngram_size"]}}' ;;
  *) echo '{"mean": 0.5, "examples": [{"id":"0","value":0},{"id":"1","value":1}]}' ;;
esac"#,
        );
        let opts = NativeOptions {
            evaluator: eval,
            data_dir: data,
            out_dir: d.path().join("out"),
            max_examples: Some(2),
            enforce_minimum: false,
            time_limit: Duration::from_secs(60),
            device: NativeDevice::Cpu,
            handle: NativeHandle::default(),
            seed: None,
        };
        let (scores, tasks) = evaluate(d.path(), &p, &opts, &mut |_| {}).unwrap();
        let log =
            |task: &str| std::fs::read_to_string(opts.out_dir.join(format!("{task}.log"))).unwrap();
        let fineweb = log("FINEWEB");
        assert!(
            fineweb.contains("--text-layout append_eos --max-length 4096 --gate"),
            "{fineweb}"
        );
        assert!(!log("WORD_SORTING").contains("--gate"));
        let s = &scores.tasks["FINEWEB"];
        assert!(s.score.is_infinite() && s.examples.is_none(), "{s:?}");
        let t = tasks.iter().find(|t| t.task == "FINEWEB").unwrap();
        assert_eq!(
            t.gate_failed.as_deref(),
            Some("agree in 12 of 20 positions")
        );
        let caveat = t.gate_caveat.as_deref().unwrap();
        assert!(
            caveat.contains("random draw") && caveat.contains("no_repeat_ngram_size"),
            "{caveat}"
        );
        // inf normalizes to the ceiling's 1.0, as the subnet's INVERSE_EXPONENTIAL does.
        let task = p.evaluation.task("FINEWEB").unwrap();
        assert_eq!(task.normalization.apply(s.score), 1.0);
        assert!(
            tasks
                .iter()
                .filter(|t| t.task != "FINEWEB")
                .all(|t| t.gate_failed.is_none())
        );
    }

    #[test]
    fn missing_data_a_failing_evaluator_and_too_few_examples_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = policy();
        let opts = |eval: PathBuf, max| NativeOptions {
            evaluator: eval,
            data_dir: d.path().join("data"),
            out_dir: d.path().join("out"),
            max_examples: max,
            enforce_minimum: max.is_none(),
            time_limit: Duration::from_secs(60),
            device: NativeDevice::Auto,
            handle: NativeHandle::default(),
            seed: None,
        };
        let ok = fake_evaluator(d.path(), "echo '{\"mean\": 1}'");
        let e = evaluate(d.path(), &p, &opts(ok.clone(), None), &mut |_| {}).unwrap_err();
        assert!(matches!(e, NativeError::MissingData { .. }), "{e}");
        assert!(e.to_string().contains("hint:"));

        std::fs::create_dir(d.path().join("data")).unwrap();
        for t in &p.evaluation.tasks {
            std::fs::write(data_file(&d.path().join("data"), t), "{}\n").unwrap();
        }
        let e = evaluate(d.path(), &p, &opts(ok, None), &mut |_| {}).unwrap_err();
        assert!(
            matches!(e, NativeError::TooFewExamples { found: 1, .. }),
            "{e}"
        );

        let failing = fake_evaluator(
            d.path(),
            "echo 'error: unsupported architecture' >&2; exit 5",
        );
        let e = evaluate(d.path(), &p, &opts(failing, Some(1)), &mut |_| {}).unwrap_err();
        assert!(
            e.to_string().contains("exit 5") && e.to_string().contains("unsupported"),
            "{e}"
        );

        // A handle kills the running evaluator from another thread.
        let stuck = fake_evaluator(d.path(), "sleep 30");
        let o = opts(stuck, Some(1));
        let handle = o.handle.clone();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            handle.kill();
        });
        let started = Instant::now();
        let e = evaluate(d.path(), &p, &o, &mut |_| {}).unwrap_err();
        killer.join().unwrap();
        assert!(matches!(e, NativeError::Cancelled { .. }), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );

        let slow = fake_evaluator(d.path(), "sleep 5");
        let mut o = opts(slow, Some(1));
        o.time_limit = Duration::from_millis(200);
        let e = evaluate(d.path(), &p, &o, &mut |_| {}).unwrap_err();
        assert!(matches!(e, NativeError::Timeout { .. }), "{e}");

        // Issue 12 item 9: `Instant::now() + Duration::MAX` panicked; such a limit is none.
        let quick = fake_evaluator(d.path(), "echo '{\"mean\": 1}'");
        let mut o = opts(quick, Some(1));
        o.time_limit = Duration::MAX;
        let r = evaluate(d.path(), &p, &o, &mut |_| {});
        assert!(!matches!(r, Err(NativeError::Timeout { .. })), "{r:?}");
    }
}
