//! `reprobox hash PATH`: the OpenSSF model-signing root digest of a model or data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use reprobox::digest::{
    self, DigestError, DigestMode, DigestOptions, HashCounter, PREDICATE_TYPE, TreeDigest,
};
use reprobox::exit_codes;
use reprobox::pipeline::{Count, CountUnit, Tick};

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
    match hash_with_progress(&args.path, &opts, args.format) {
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

/// Hashes on a worker thread while this one ticks progress on stderr every half second (a
/// status line on a terminal, NDJSON events with `--format json`, a line a minute otherwise).
fn hash_with_progress(
    path: &Path,
    opts: &DigestOptions,
    format: Format,
) -> Result<TreeDigest, DigestError> {
    let counter = Arc::new(HashCounter::default());
    let mut progress = super::progress::for_format(format);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let hashing = counter.clone();
        let worker = scope.spawn(move || digest::digest_path_counted(path, opts, &hashing));
        let mut ticked = false;
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            if started.elapsed() < Duration::from_millis(500) || worker.is_finished() {
                continue;
            }
            if !ticked {
                progress.stage("hash", &path.display().to_string());
                ticked = true;
            }
            let (bytes, total) = counter.bytes();
            let (files, files_total) = counter.files();
            let detail = format!("{files} of {files_total} file(s)");
            progress.tick(&Tick {
                stage: "hash",
                elapsed: started.elapsed(),
                count: Some(Count {
                    done: bytes,
                    total: Some(total),
                    unit: CountUnit::Bytes,
                }),
                detail: Some(&detail),
                ..Tick::default()
            });
            std::thread::sleep(Duration::from_millis(400));
        }
        let result = worker.join().unwrap_or_else(|_| {
            Err(DigestError::Io {
                path: path.to_owned(),
                source: std::io::Error::other("the hashing thread panicked"),
            })
        });
        if ticked {
            let (files, _) = counter.files();
            progress.done("hash", &format!("{files} file(s)"));
        }
        result
    })
}
