//! `reprobox check SUBMISSION`: static compliance of a submission against its policy.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use reprobox::check::{CheckError, CheckOptions, CheckReport, check_submission};
use reprobox::exit_codes;
use reprobox::policy::PolicySet;

use super::output::{self, Format};

/// Arguments of `reprobox check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The submission directory (the one holding reprobox.toml).
    pub submission: PathBuf,
    /// Also inspect this Hugging Face model directory against the submission's policy
    /// (architecture, parameters, bytes, pickle files, instruction tuning, and the weight-norm
    /// rule, which reads the layer weights, when the policy has one).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// A local inputs mirror (`<DIR>/models/<hf-id>/<revision>/`); when it holds the base model,
    /// its config is checked for instruction tuning.
    #[arg(long, value_name = "DIR", env = "REPROBOX_INPUTS")]
    pub inputs: Option<PathBuf>,
    /// Load policies from this directory instead of the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The `--format json` document when the input cannot be read (exit 2).
#[derive(Serialize)]
struct ErrorReport {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
}

/// Runs the checks and prints them. Exit 0 (no error findings), 3 (non-compliant) or 2
/// (unreadable input).
pub fn run(args: CheckArgs) -> i32 {
    let policies = match PolicySet::load(args.policies.as_deref()) {
        Ok(p) => p,
        Err(e) => return unreadable(&e, None, None, args.format),
    };
    let opts = CheckOptions {
        model_dir: args.model.clone(),
        inputs: args.inputs.clone(),
    };
    match check_submission(&args.submission, &policies, &opts) {
        Ok(report) => {
            match args.format {
                Format::Json => output::print_json(&report),
                Format::Text => print_text(&report),
            }
            if report.compliant {
                exit_codes::OK
            } else {
                exit_codes::NON_COMPLIANT
            }
        }
        Err(e) => {
            let (field, line) = match &e {
                CheckError::Manifest(m) => (m.field().map(str::to_owned), m.line()),
                _ => (None, None),
            };
            unreadable(&e, field, line, args.format)
        }
    }
}

fn unreadable(
    e: &dyn std::error::Error,
    field: Option<String>,
    line: Option<u32>,
    format: Format,
) -> i32 {
    output::print_error(e);
    if format == Format::Json {
        output::print_json(&ErrorReport {
            error: e.to_string(),
            field,
            line,
        });
    }
    exit_codes::UNREADABLE_INPUT
}

fn print_text(r: &CheckReport) {
    for f in &r.findings {
        outln!("{f}");
    }
    for m in &r.models {
        let tied = m
            .facts
            .tied_tensor_skipped
            .as_deref()
            .map(|t| format!(", tied `{t}` counted once"))
            .unwrap_or_default();
        outln!(
            "model ({}) {}: {} [{}], {} parameters in {} tensors{tied}, {} bytes",
            m.role,
            m.path,
            m.facts.architectures.join(", "),
            m.facts.model_type.as_deref().unwrap_or("?"),
            m.facts.parameters,
            m.facts.tensors,
            m.facts.total_bytes
        );
        if let Some(n) = &m.weight_norms {
            let max = match (n.max_norm, &n.max_tensor) {
                (Some(v), Some(t)) => format!(", largest {v} (`{t}`)"),
                _ => String::new(),
            };
            let soft = n
                .soft_fraction
                .map(|f| format!(", mean fraction above the soft limit {f:.3}"))
                .unwrap_or_default();
            outln!(
                "  weight norms: {} tensors in {} layers{max}{soft}",
                n.tensors,
                n.layers
            );
        }
    }
    outln!(
        "{}: {} error(s), {} warning(s), {} info; policy {} track {}; {} files, {} context bytes, {} ms",
        if r.compliant {
            "compliant"
        } else {
            "NON_COMPLIANT"
        },
        r.counts.errors,
        r.counts.warnings,
        r.counts.info,
        r.policy,
        r.track,
        r.files_scanned,
        r.context_bytes,
        r.elapsed_ms
    );
}
