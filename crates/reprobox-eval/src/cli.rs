//! `reprobox eval`: scores a Hugging Face model directory on a JSONL file with the native
//! evaluator (docs/evaluation.md).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use reprobox::exit_codes;
use reprobox_eval::{
    self as eval, Dataset, Dtype, EvalDevice, EvalError, EvalOptions, EvalReport, ExampleValue,
    Method, TextLayout,
};

use super::output::{self, Format};

/// The method to score with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum MethodArg {
    /// Subnet 37 TEXT_LOSS: mean next-token cross-entropy over each `{"id","text"}` sample.
    TextLoss,
    /// Subnet 37 REFERENCE_LOSS: cross-entropy over the reference tokens of `{"id","context","reference"}`.
    ReferenceLoss,
    /// lm-eval multiple choice on `{"id","context","choices","answer"}`: summed log-likelihoods, acc, acc_norm.
    ChoiceLoglikelihood,
    /// Subnet 37 MULTIPLE_CHOICE on `{"id","challenge","reference"}`: greedy generation from the
    /// chat-templated challenge, 1 when the first standalone letter is the reference.
    MultipleChoice,
    /// Subnet 37 WORD_SORTING: REFERENCE_LOSS of the sorted words, on `{"id","challenge","reference"}`
    /// or on the samples `--seed` and `--words` generate.
    WordSorting,
    /// Subnet 37 IF_EVAL on `{"id","rules","questions":[q1,q2]}` (or `"prompts"`): greedy responses
    /// to both prompts, judged by the rules; the mean is the subnet's raw score (lower is better).
    IfEval,
}

/// The dtype of the weights and the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    Fp32,
    Bf16,
    Fp16,
}

/// How text_loss tokenizes a sample (docs/evaluation.md, `text_loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum TextLayoutArg {
    /// `tokenizer(text)`.
    Plain,
    /// Subnet v2.x: truncated to --max-length, then the EOS appended.
    AppendEos,
    /// Subnet v3.0.0+: truncated, then padded to exactly --max-length with the pad token.
    PadToMaxLength,
}

/// Where to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The first CUDA GPU when one is visible, else the CPU.
    Auto,
    Cpu,
}

/// Scores a model directory (config.json, safetensors, tokenizer.json) on a JSONL file.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The Hugging Face model directory (not with --sample-only).
    #[arg(required_unless_present = "sample_only")]
    model_dir: Option<PathBuf>,
    /// The evaluation method.
    #[arg(long)]
    method: MethodArg,
    /// The examples, one JSON object per line; with --seed or --block-hash and multiple_choice,
    /// the pool of archived SYNTHETIC_MMLU rows to draw from.
    #[arg(long, required_unless_present_any = ["seed", "block_hash"])]
    data: Option<PathBuf>,
    /// Draw the examples as the subnet does for this seed (a decimal integer of any size, the
    /// subnet's `int(sha256(block_hash).hexdigest(), 16)`): word_sorting generates them from
    /// --words, multiple_choice samples them from the --data pool.
    #[arg(long, conflicts_with = "block_hash")]
    seed: Option<String>,
    /// As --seed, from the sync block's hash (`0x…`, hashed with sha256 as the subnet does).
    #[arg(long, value_name = "HASH")]
    block_hash: Option<String>,
    /// word_sorting: the word list (NLTK's corpora/words/en-basic, one word per line).
    #[arg(long)]
    words: Option<PathBuf>,
    /// With a seed: the number of examples to draw (word_sorting 400, multiple_choice 700).
    #[arg(long)]
    samples: Option<usize>,
    /// With a seed: also write the drawn examples to this JSONL file, before scoring.
    #[arg(long)]
    write_data: Option<PathBuf>,
    /// With a seed: only draw and write the examples (--write-data); no model is loaded. Prints
    /// a JSON summary.
    #[arg(long, requires = "write_data")]
    sample_only: bool,
    /// if_eval: stop each generation once this many seconds of wall clock have passed, as the
    /// subnet's `max_time=5.0` does (results then depend on the hardware). Default: no limit.
    #[arg(long, value_name = "SECONDS", value_parser = parse_max_time)]
    max_time: Option<std::time::Duration>,
    /// text_loss: how each sample's text becomes tokens.
    #[arg(long, value_enum, default_value = "plain")]
    text_layout: TextLayoutArg,
    /// text_loss: the max_length of the append_eos and pad_to_max_length layouts (the subnet's
    /// sequence length).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(2..))]
    max_length: u32,
    /// text_loss: run the subnet's "reasonable output" gate on samples 0 and 1 first; a model
    /// that fails it gets the subnet's raw score inf (reported under `gate`).
    #[arg(long)]
    gate: bool,
    /// text_loss and reference_loss: score up to this many examples of the same token length in
    /// one forward pass (no padding, so no number changes; more memory: the logits of a batch).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch_size: u32,
    /// The dtype of the weights and the computation.
    #[arg(long, value_enum, default_value = "fp32")]
    dtype: DtypeArg,
    /// Where to run.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs `reprobox eval` and returns the exit code.
pub fn run(args: EvalArgs) -> i32 {
    let method = match args.method {
        MethodArg::TextLoss => Method::TextLoss,
        MethodArg::ReferenceLoss => Method::ReferenceLoss,
        MethodArg::ChoiceLoglikelihood => Method::ChoiceLoglikelihood,
        MethodArg::MultipleChoice => Method::MultipleChoice,
        MethodArg::WordSorting => Method::WordSorting,
        MethodArg::IfEval => Method::IfEval,
    };
    let options = EvalOptions {
        dtype: match args.dtype {
            DtypeArg::Fp32 => Dtype::Fp32,
            DtypeArg::Bf16 => Dtype::Bf16,
            DtypeArg::Fp16 => Dtype::Fp16,
        },
        device: match args.device {
            DeviceArg::Auto => EvalDevice::Auto,
            DeviceArg::Cpu => EvalDevice::Cpu,
        },
        max_time: args.max_time,
        text_layout: match args.text_layout {
            TextLayoutArg::Plain => TextLayout::Plain,
            TextLayoutArg::AppendEos => TextLayout::AppendEos {
                max_length: args.max_length as usize,
            },
            TextLayoutArg::PadToMaxLength => TextLayout::PadToMaxLength {
                max_length: args.max_length as usize,
            },
        },
        gate: args.gate,
        batch_size: args.batch_size as usize,
        progress: Some(stderr_progress(method)),
    };
    if method != Method::TextLoss && (args.gate || args.text_layout != TextLayoutArg::Plain) {
        output::print_error(&EvalError::BadArgument {
            message: format!(
                "--gate and --text-layout apply to text_loss only, not {}",
                method.name()
            ),
        });
        return exit_codes::UNREADABLE_INPUT;
    }
    let drawn = match dataset(&args, method) {
        Ok(d) => d,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::UNREADABLE_INPUT;
        }
    };
    if args.sample_only {
        return match drawn.summary {
            Some(summary) => {
                output::print_json(&summary);
                exit_codes::OK
            }
            None => {
                output::print_error(&EvalError::BadArgument {
                    message: "--sample-only draws examples: it needs --seed or --block-hash".into(),
                });
                exit_codes::UNREADABLE_INPUT
            }
        };
    }
    let Some(model_dir) = &args.model_dir else {
        output::print_error(&EvalError::BadArgument {
            message: "the model directory is required".into(),
        });
        return exit_codes::UNREADABLE_INPUT;
    };
    match eval::evaluate_dataset(model_dir, &drawn.dataset, &options) {
        Ok(report) => {
            match args.format {
                Format::Json => output::print_json(&report),
                Format::Text => print_text(&report),
            }
            exit_codes::OK
        }
        Err(e) => {
            output::print_error(&e);
            if e.is_input_error() {
                exit_codes::UNREADABLE_INPUT
            } else {
                exit_codes::EVAL_FAILED
            }
        }
    }
}

/// Progress on stderr: a line at most every 5 s, and at the end (stdout keeps the result).
fn stderr_progress(method: Method) -> eval::Progress {
    let started = std::time::Instant::now();
    let last = std::sync::Mutex::new(started);
    eval::Progress(std::sync::Arc::new(move |done, total| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if done == total || last.elapsed() >= std::time::Duration::from_secs(5) {
            *last = std::time::Instant::now();
            errln!(
                "[eval] {} {done}/{total} examples, {:.0} s",
                method.name(),
                started.elapsed().as_secs_f64()
            );
        }
    }))
}

/// The longest `--max-time`: 30 days, the longest limit a policy may write.
const MAX_TIME_SECS: f64 = 30.0 * 86_400.0;

/// `--max-time`: a positive number of seconds, at most [`MAX_TIME_SECS`] (a larger value such
/// as `1e300` cannot be a `Duration`, and no generation needs it).
fn parse_max_time(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_TIME_SECS => {
            std::time::Duration::try_from_secs_f64(v).map_err(|e| format!("`{s}`: {e}"))
        }
        Ok(v) if v > MAX_TIME_SECS => Err(format!(
            "`{s}` is more than {MAX_TIME_SECS} seconds (30 days), the longest limit accepted"
        )),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

/// The examples and, when they were drawn from a seed, what was drawn.
struct Drawn {
    dataset: Dataset,
    summary: Option<serde_json::Value>,
}

/// The examples: read from --data, or drawn from a seed (word_sorting from --words,
/// multiple_choice from the --data pool), then written to --write-data.
fn dataset(args: &EvalArgs, method: Method) -> Result<Drawn, EvalError> {
    let bad = |message: String| EvalError::BadArgument { message };
    let mut rng = match (&args.seed, &args.block_hash) {
        (Some(seed), _) => Some(eval::word_sorting::PyRandom::from_decimal(seed).map_err(bad)?),
        (None, Some(hash)) => Some(eval::word_sorting::PyRandom::from_block_hash(hash)),
        (None, None) => None,
    };
    let Some(rng) = rng.as_mut() else {
        if args.words.is_some() || args.samples.is_some() || args.write_data.is_some() {
            return Err(bad(
                "--words, --samples and --write-data draw examples: they need --seed or --block-hash"
                    .into(),
            ));
        }
        let data = args
            .data
            .as_ref()
            .ok_or_else(|| bad("--data is required".into()))?;
        return Ok(Drawn {
            dataset: eval::read_dataset(data, method)?,
            summary: None,
        });
    };
    let (dataset, summary) = match method {
        Method::WordSorting => {
            let (Some(words), None) = (&args.words, &args.data) else {
                return Err(bad(
                    "word_sorting draws from --words (NLTK's en-basic), not --data".into(),
                ));
            };
            let words = eval::word_sorting::read_words(words)?;
            let n = args.samples.unwrap_or(eval::word_sorting::SAMPLES);
            let samples = eval::word_sorting::generate_with(&words, rng, n).map_err(bad)?;
            let summary = serde_json::json!({"method": "word_sorting", "examples": samples.len()});
            (Dataset::WordSorting(samples), summary)
        }
        Method::MultipleChoice => {
            let (Some(pool), None) = (&args.data, &args.words) else {
                return Err(bad(
                    "multiple_choice draws from a pool of SYNTHETIC_MMLU rows given as --data"
                        .into(),
                ));
            };
            let rows = eval::synthetic_mmlu::read_pool(pool)?;
            let n = args.samples.unwrap_or(eval::synthetic_mmlu::MAX_SAMPLES);
            let drawn = eval::synthetic_mmlu::sample(&rows, rng, n);
            let summary = serde_json::json!({
                "method": "multiple_choice",
                "examples": drawn.examples.len(),
                "pool": rows.len(),
                "eligible": drawn.eligible,
                "configs": drawn.configs,
            });
            (Dataset::MultipleChoice(drawn.examples), summary)
        }
        other => {
            return Err(bad(format!(
                "a seed draws word_sorting and multiple_choice examples; {} reads --data only",
                other.name()
            )));
        }
    };
    if let Some(path) = &args.write_data {
        let mut text = String::new();
        let mut line = |v: serde_json::Value| {
            text.push_str(&v.to_string());
            text.push('\n');
        };
        match &dataset {
            Dataset::WordSorting(v) => v.iter().for_each(|s| {
                line(serde_json::json!({"id": s.id, "challenge": s.challenge, "reference": s.reference}))
            }),
            Dataset::MultipleChoice(v) => v.iter().for_each(|s| {
                line(serde_json::json!({"id": s.id, "challenge": s.challenge, "reference": s.reference}))
            }),
            _ => {}
        }
        std::fs::write(path, text).map_err(|source| EvalError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(Drawn {
        dataset,
        summary: Some(summary),
    })
}

fn print_text(report: &EvalReport) {
    for ex in &report.examples {
        match &ex.value {
            ExampleValue::Loss(v) => outln!("{}\t{v:.6}", ex.id),
            ExampleValue::Choices(lls) => {
                let lls: Vec<String> = lls.iter().map(|v| format!("{v:.4}")).collect();
                let mark = if ex.correct == Some(true) {
                    "correct"
                } else {
                    "wrong"
                };
                outln!("{}\t{}\t{mark}", ex.id, lls.join(" "));
            }
            ExampleValue::Score(v) => match &ex.if_eval {
                Some(p) => outln!(
                    "{}\t{v:.4}\t{}/{} {}/{}{}\t{:?}\t{:?}",
                    ex.id,
                    p.correct[0],
                    p.rules,
                    p.correct[1],
                    p.rules,
                    if p.duplicate { "\tduplicate" } else { "" },
                    p.responses[0],
                    p.responses[1]
                ),
                None => outln!(
                    "{}\t{v}\t{}\t{:?}",
                    ex.id,
                    ex.letter.as_deref().unwrap_or(""),
                    ex.generated.as_deref().unwrap_or("")
                ),
            },
        }
    }
    match (report.acc, report.acc_norm) {
        (Some(acc), None) => outln!(
            "{}: acc {acc:.4} over {} examples ({}, {}, {})",
            report.method.name(),
            report.examples.len(),
            report.architecture,
            report.dtype.name(),
            report.device
        ),
        (Some(acc), Some(acc_norm)) => outln!(
            "{}: acc {acc:.4}, acc_norm {acc_norm:.4} over {} examples ({}, {}, {})",
            report.method.name(),
            report.examples.len(),
            report.architecture,
            report.dtype.name(),
            report.device
        ),
        _ if report.method == Method::IfEval => outln!(
            "{}: score {:.6} over {} pairs, {} duplicates{} ({}, {}, {})",
            report.method.name(),
            report.mean,
            report.examples.len(),
            report.duplicates.unwrap_or(0),
            if report.duplicate_penalty == Some(true) {
                " (more than 10 %: score 1)"
            } else {
                ""
            },
            report.architecture,
            report.dtype.name(),
            report.device
        ),
        _ if report.gate.as_ref().is_some_and(|g| !g.passed) => outln!(
            "{}: gate FAILED, the subnet's score is inf: {} (mean loss {:.6} over {} examples; {}, {}, {})",
            report.method.name(),
            report
                .gate
                .as_ref()
                .and_then(|g| g.reason.as_deref())
                .unwrap_or(""),
            report.mean,
            report.examples.len(),
            report.architecture,
            report.dtype.name(),
            report.device
        ),
        _ => outln!(
            "{}: mean {:.6} over {} examples ({}, {}, {})",
            report.method.name(),
            report.mean,
            report.examples.len(),
            report.architecture,
            report.dtype.name(),
            report.device
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 9: `--max-time 1e300` panicked in `Duration::from_secs_f64`.
    #[test]
    fn max_time_is_bounded_and_never_panics() {
        assert_eq!(parse_max_time("5"), Ok(std::time::Duration::from_secs(5)));
        assert_eq!(
            parse_max_time("0.25"),
            Ok(std::time::Duration::from_millis(250))
        );
        for bad in ["1e300", "2592001", "inf"] {
            let e = parse_max_time(bad).unwrap_err();
            assert!(e.contains("30 days"), "{bad}: {e}");
        }
        for bad in ["0", "-1", "NaN", "soon", ""] {
            let e = parse_max_time(bad).unwrap_err();
            assert!(e.contains("not a positive number"), "{bad}: {e}");
        }
    }
}
