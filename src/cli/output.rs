//! Shared output helpers: `--format text|json`, and printing errors with their hints.

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

/// How a verb prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Prints a value as pretty JSON on stdout. A closed pipe is not an error worth reporting.
pub fn print_json<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer_pretty(&mut out, value).is_ok() {
        let _ = writeln!(out);
    }
}

/// Prints an error, with its source chain, to stderr. Hints are part of the messages.
pub fn print_error(err: &dyn std::error::Error) {
    let mut msg = format!("error: {err}");
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    eprintln!("{msg}");
}
