//! The command-line front end: parses arguments, calls the library, prints results and maps
//! errors to the documented exit codes (`reprobox::exit_codes`).

#[macro_use]
mod output;
mod app;
mod audit;
mod check;
mod eval_forward;
mod finalists;
mod gpu;
mod hash;
mod policy;
mod progress;
mod verify;

pub use app::main;
