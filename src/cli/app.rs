//! The clap definition of the `reprobox` command line; `///` docs are the `--help` text.

use clap::{Parser, Subcommand};

use reprobox::exit_codes;

#[derive(Debug, Parser)]
#[command(
    name = "reprobox",
    version,
    about = "Re-runs a competition submission and decides whether its result reproduces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Re-check a run directory: journal chain, every recorded digest, provenance and signatures (`audit verify RUN_DIR`); `audit keygen OUT` writes an Ed25519 key pair.
    Audit(super::audit::AuditArgs),
    /// Static compliance checks of a submission: manifest vs policy, Dockerfile pinning, secrets, undeclared data, paths, models.
    Check(super::check::CheckArgs),
    /// Score a Hugging Face model directory on a JSONL file with the native evaluator.
    Eval(super::eval_forward::EvalForwardArgs),
    /// Verify a leaderboard from the top, replacing each entry that does not reproduce by the
    /// next, until --top entries reproduce; --resume continues a campaign.
    Finalists(super::finalists::FinalistsArgs),
    /// List the GPUs (NVML) and the policy tracks each is approved for.
    Gpu(super::gpu::GpuArgs),
    /// Print the OpenSSF model-signing (OMS) root digest of a model or data directory.
    Hash(super::hash::HashArgs),
    /// List the competition policies, or show one (`policy list`, `policy show ID`).
    Policy(super::policy::PolicyArgs),
    /// Continue a run whose runner died; finished stages are not repeated and the training
    /// deadline is not reset.
    Resume(super::verify::ResumeArgs),
    /// The whole pipeline: check, stage inputs, build, train in the sandbox, collect and hash,
    /// evaluate, report. Exits with the verdict's code.
    Verify(super::verify::VerifyArgs),
}

/// Parses the command line, runs the verb and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit_codes::UNREADABLE_INPUT
            } else {
                exit_codes::OK
            };
        }
    };
    match cli.command {
        Command::Audit(args) => super::audit::run(args),
        Command::Check(args) => super::check::run(args),
        Command::Eval(args) => super::eval_forward::run(args),
        Command::Finalists(args) => super::finalists::run(args),
        Command::Gpu(args) => super::gpu::run(args),
        Command::Hash(args) => super::hash::run(args),
        Command::Policy(args) => super::policy::run(args),
        Command::Resume(args) => super::verify::resume(args),
        Command::Verify(args) => super::verify::run(args),
    }
}
