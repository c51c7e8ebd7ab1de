//! `reprobox hash PATH`: the OpenSSF model-signing root digest of a model or data directory.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use reprobox::digest::{self, DigestMode, DigestOptions, PREDICATE_TYPE, TreeDigest};
use reprobox::exit_codes;

use super::output::{self, Format};

/// Arguments of `reprobox hash`.
#[derive(Debug, Args)]
pub struct HashArgs {
    /// The model or data directory to hash (a single file is hashed as one resource named `.`).
    pub path: PathBuf,
    /// Hash in shards of N bytes (OMS `shards` mode, `sha256-sharded-N`) instead of whole files;
    /// model-signing's default shard size is 1000000000.
    #[arg(long, value_name = "N")]
    pub shard_size: Option<u64>,
    /// Follow symbolic links to files (links to directories are skipped, as model-signing does)
    /// instead of refusing them.
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Leave out this path, relative to PATH (repeatable); `.git`, `.gitattributes`, `.github`
    /// and `.gitignore` are always left out.
    #[arg(long = "ignore", value_name = "REL_PATH")]
    pub ignore: Vec<PathBuf>,
    /// `text` prints the root digest; `json` prints the whole manifest.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The `--format json` document.
#[derive(Serialize)]
struct HashReport<'a> {
    path: &'a std::path::Path,
    predicate_type: &'static str,
    #[serde(flatten)]
    digest: &'a TreeDigest,
}

/// Hashes `args.path` and prints the result. Exit 0, or 2 when the path cannot be hashed.
pub fn run(args: HashArgs) -> i32 {
    let opts = DigestOptions {
        mode: match args.shard_size {
            None => DigestMode::Files,
            Some(shard_size) => DigestMode::Shards { shard_size },
        },
        allow_symlinks: args.allow_symlinks,
        ignore_paths: args.ignore,
    };
    match digest::digest_path(&args.path, &opts) {
        Ok(d) => {
            match args.format {
                Format::Text => outln!("{}", d.root),
                Format::Json => output::print_json(&HashReport {
                    path: &args.path,
                    predicate_type: PREDICATE_TYPE,
                    digest: &d,
                }),
            }
            exit_codes::OK
        }
        Err(e) => {
            output::print_error(&e);
            exit_codes::UNREADABLE_INPUT
        }
    }
}
