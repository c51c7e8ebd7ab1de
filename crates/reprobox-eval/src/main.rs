//! `reprobox-eval`: the native evaluator in a process of its own. `reprobox eval …` execs it.
//!
//! It is the only binary that links libtorch (and forces `libtorch_cuda` in, build.rs). Loading
//! them with the CUDA libraries costs about half a second and half a gigabyte of address space
//! at start-up, which every other verb (`check`, `hash`, `audit verify`, …) should not pay; a
//! crash inside libtorch also stays in this process. The evaluator is a package of its own
//! because rustc keeps a dependency's exported C symbols alive in every binary that links the
//! library holding it: while it lived in reprobox's library, `reprobox` loaded `libtorch_cpu`.

// The same `--format` and error printing as every other verb, control characters neutralised.
#[macro_use]
#[path = "../../../src/cli/output.rs"]
mod output;
mod cli;

use clap::Parser;

/// Score a Hugging Face model directory on a JSONL file with the native evaluator.
#[derive(Debug, Parser)]
#[command(name = "reprobox eval", version)]
struct Cli {
    #[command(flatten)]
    args: cli::EvalArgs,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                reprobox::exit_codes::UNREADABLE_INPUT
            } else {
                reprobox::exit_codes::OK
            });
        }
    };
    std::process::exit(cli::run(cli.args));
}
