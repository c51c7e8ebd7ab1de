//! `reprobox-eval`: the native evaluator in a process of its own. `reprobox eval …` execs it.
//!
//! It is the only binary that forces `libtorch` and `libtorch_cuda` in (build.rs). Loading them
//! with the CUDA libraries costs about half a second and half a gigabyte of address space at
//! start-up, which every other verb (`check`, `hash`, `audit verify`, …) should not pay; a crash
//! inside libtorch also stays in this process. (`reprobox` itself still loads `libtorch_cpu`,
//! about 0.25 s: rustc keeps torch-sys's exported C symbols alive in every binary that links the
//! library, and they reference libtorch. Moving the evaluator out of the library ends that.)

#[path = "../cli/eval.rs"]
mod eval;
#[path = "../cli/output.rs"]
mod output;

use clap::Parser;

/// Score a Hugging Face model directory on a JSONL file with the native evaluator.
#[derive(Debug, Parser)]
#[command(name = "reprobox eval", version)]
struct Cli {
    #[command(flatten)]
    args: eval::EvalArgs,
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
    std::process::exit(eval::run(cli.args));
}
