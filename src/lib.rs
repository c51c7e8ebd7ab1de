//! reprobox decides whether a machine-learning competition result can be reproduced.
//!
//! The pipeline, each stage a module:
//! 1. [`manifest`] parses a submission's `reprobox.toml`; [`policy`] loads a competition's rules.
//! 2. [`check`] finds static compliance problems (no Docker, no GPU).
//! 3. [`sandbox`] builds the submission's image and trains it in a hardened container ([`engine`]
//!    talks to Docker, [`gpu`] to NVML), under a deadline, recording a hash-chained [`journal`].
//! 4. [`digest`] hashes every input and output the OpenSSF model-signing way.
//!
//! The library never prints and never exits: the `reprobox` binary (`src/main.rs`, `src/cli/`) does.

pub mod audit;
pub mod campaign;
pub mod check;
pub mod compare;
pub mod digest;
pub mod dockerfile;
pub mod engine;
pub mod estimate;
pub mod exit_codes;
pub mod finding;
pub mod gpu;
pub mod input_file;
pub mod journal;
pub mod lines;
pub mod manifest;
pub mod model;
pub mod native;
pub mod pipeline;
pub mod policy;
pub mod provenance;
pub mod render;
pub mod rundir;
pub mod sandbox;
pub mod stage;
pub mod units;
pub mod verdict;

/// The version of this reprobox, as manifests' "requires reprobox ≥ X" checks and reports use it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
