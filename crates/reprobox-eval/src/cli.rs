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
    /// The Hugging Face model directory.
    model_dir: PathBuf,
    /// The evaluation method.
    #[arg(long)]
    method: MethodArg,
    /// The examples, one JSON object per line.
    #[arg(long, required_unless_present = "seed")]
    data: Option<PathBuf>,
    /// word_sorting: generate the samples from this seed (a decimal integer of any size, the
    /// subnet's `int(sha256(block_hash).hexdigest(), 16)`) instead of reading --data.
    #[arg(long, conflicts_with = "data", requires = "words")]
    seed: Option<String>,
    /// word_sorting: the word list (NLTK's corpora/words/en-basic, one word per line).
    #[arg(long, requires = "seed")]
    words: Option<PathBuf>,
    /// word_sorting: the number of samples to generate.
    #[arg(long, default_value_t = eval::word_sorting::SAMPLES, requires = "seed")]
    samples: usize,
    /// word_sorting: also write the generated samples to this JSONL file, before scoring.
    #[arg(long, requires = "seed")]
    write_data: Option<PathBuf>,
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
    let dataset = match dataset(&args, method) {
        Ok(d) => d,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::UNREADABLE_INPUT;
        }
    };
    match eval::evaluate_dataset(&args.model_dir, &dataset, &options) {
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

/// `--max-time`: a positive, finite number of seconds.
fn parse_max_time(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(std::time::Duration::from_secs_f64(v)),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

/// The examples: read from --data, or generated from --seed and --words (word_sorting).
fn dataset(args: &EvalArgs, method: Method) -> Result<Dataset, EvalError> {
    if let Some(data) = &args.data {
        return eval::read_dataset(data, method);
    }
    let (Some(seed), Some(words)) = (&args.seed, &args.words) else {
        return Err(EvalError::BadArgument {
            message: "--data is required (or --seed and --words for word_sorting)".into(),
        });
    };
    if method != Method::WordSorting {
        return Err(EvalError::BadArgument {
            message: format!(
                "--seed generates word_sorting samples only; {} needs --data",
                method.name()
            ),
        });
    }
    let words = eval::word_sorting::read_words(words)?;
    let samples = eval::word_sorting::generate(&words, seed, args.samples)
        .map_err(|message| EvalError::BadArgument { message })?;
    if let Some(path) = &args.write_data {
        let mut text = String::new();
        for s in &samples {
            let line =
                serde_json::json!({"id": s.id, "challenge": s.challenge, "reference": s.reference});
            text.push_str(&line.to_string());
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|source| EvalError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(Dataset::WordSorting(samples))
}

fn print_text(report: &EvalReport) {
    for ex in &report.examples {
        match &ex.value {
            ExampleValue::Loss(v) => println!("{}\t{v:.6}", ex.id),
            ExampleValue::Choices(lls) => {
                let lls: Vec<String> = lls.iter().map(|v| format!("{v:.4}")).collect();
                let mark = if ex.correct == Some(true) {
                    "correct"
                } else {
                    "wrong"
                };
                println!("{}\t{}\t{mark}", ex.id, lls.join(" "));
            }
            ExampleValue::Score(v) => match &ex.if_eval {
                Some(p) => println!(
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
                None => println!(
                    "{}\t{v}\t{}\t{:?}",
                    ex.id,
                    ex.letter.as_deref().unwrap_or(""),
                    ex.generated.as_deref().unwrap_or("")
                ),
            },
        }
    }
    match (report.acc, report.acc_norm) {
        (Some(acc), None) => println!(
            "{}: acc {acc:.4} over {} examples ({}, {}, {})",
            report.method.name(),
            report.examples.len(),
            report.architecture,
            report.dtype.name(),
            report.device
        ),
        (Some(acc), Some(acc_norm)) => println!(
            "{}: acc {acc:.4}, acc_norm {acc_norm:.4} over {} examples ({}, {}, {})",
            report.method.name(),
            report.examples.len(),
            report.architecture,
            report.dtype.name(),
            report.device
        ),
        _ if report.method == Method::IfEval => println!(
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
        _ if report.gate.as_ref().is_some_and(|g| !g.passed) => println!(
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
        _ => println!(
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
