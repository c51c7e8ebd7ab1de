//! Shared output helpers: `--format text|json`, and printing errors with their hints.
//!
//! Everything printed goes through [`reprobox::render::controls`]: task names, file names, team
//! names and log lines come from the submission, and an escape sequence in one of them must
//! not act on the reader's terminal (`outln!`, `errln!`, [`print_json`], [`print_error`]).

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

/// `println!` with control characters neutralised (newlines and tabs kept).
macro_rules! outln {
    () => { println!() };
    ($($arg:tt)*) => {
        println!("{}", reprobox::render::controls::neutralize(&format!($($arg)*), true))
    };
}

/// `eprintln!` with control characters neutralised (newlines and tabs kept).
macro_rules! errln {
    ($($arg:tt)*) => {
        eprintln!("{}", reprobox::render::controls::neutralize(&format!($($arg)*), true))
    };
}

/// How a verb prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Readable text.
    #[default]
    Text,
    /// One JSON document on stdout; `verify`, `resume` and `hash` also write NDJSON progress
    /// events on stderr (docs/progress.md).
    Json,
}

/// Prints a value as pretty JSON on stdout, with the controls JSON leaves raw escaped (the same
/// document). A closed pipe is not an error worth reporting.
pub fn print_json<T: Serialize>(value: &T) {
    let Ok(text) = serde_json::to_string_pretty(value) else {
        return;
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        reprobox::render::controls::json_escape_controls(&text)
    );
}

/// Prints an error, with its source chain, to stderr. Hints are part of the messages.
pub fn print_error(err: &dyn std::error::Error) {
    let mut msg = format!("error: {err}");
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    errln!("{msg}");
}
