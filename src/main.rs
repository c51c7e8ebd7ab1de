//! The `reprobox` command line. All the work happens in the library; this only maps it to output
//! and exit codes.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
