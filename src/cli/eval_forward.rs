//! `reprobox eval …` runs the native evaluator, which lives in the `reprobox-eval` binary beside
//! this one (crates/reprobox-eval: it is the only code that links libtorch, see its main.rs).
//! Arguments are passed through unchanged.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use reprobox::exit_codes;

/// Arguments of `reprobox eval`, handed to `reprobox-eval` as they are (`reprobox eval --help`
/// prints its help).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct EvalForwardArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

/// The evaluator binary: `$REPROBOX_EVAL_BIN`, else `reprobox-eval` next to this executable.
fn evaluator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REPROBOX_EVAL_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.with_file_name("reprobox-eval");
    p.is_file().then_some(p)
}

pub fn run(args: EvalForwardArgs) -> i32 {
    let Some(bin) = evaluator() else {
        eprintln!(
            "error: the native evaluator `reprobox-eval` is not installed next to this reprobox (hint: build with default features, `cargo build --release`, which builds it with libtorch; hosts without libtorch evaluate with an organizer's image)"
        );
        return exit_codes::EVAL_FAILED;
    };
    use std::os::unix::process::CommandExt;
    // exec replaces this process, so signals and the exit code are the evaluator's own.
    let err = std::process::Command::new(&bin).args(&args.args).exec();
    eprintln!("error: cannot run `{}`: {err}", bin.display());
    exit_codes::EVAL_FAILED
}
