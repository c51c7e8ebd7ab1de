//! `reprobox eval`: scores a Hugging Face model directory on a JSONL file with the native
//! evaluator (docs/evaluation.md).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use reprobox::exit_codes;
use reprobox_eval::{
    self as eval, Dtype, EvalDevice, EvalOptions, EvalReport, ExampleValue, Method,
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
}

/// The dtype of the weights and the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    Fp32,
    Bf16,
    Fp16,
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
    #[arg(long)]
    data: PathBuf,
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
    };
    match eval::evaluate(&args.model_dir, method, &args.data, &options) {
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
        }
    }
    match (report.acc, report.acc_norm) {
        (Some(acc), Some(acc_norm)) => println!(
            "{}: acc {acc:.4}, acc_norm {acc_norm:.4} over {} examples ({}, {}, {})",
            report.method.name(),
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
