//! The process exit codes: a stable contract for scripts and pipelines (docs/ARCHITECTURE.md,
//! "Verdicts and `verify` exit codes"). Mirrored in `docs/ARCHITECTURE.md`.

/// Success: no error findings, `REPRODUCED`, audit intact.
pub const OK: i32 = 0;
/// `verify`: the rebuilt model's scores are outside the claimed tolerance (`NOT_REPRODUCED`).
pub const NOT_REPRODUCED: i32 = 1;
/// The input could not be read or parsed (a malformed manifest, a missing directory), or the
/// command line was wrong.
pub const UNREADABLE_INPUT: i32 = 2;
/// `check` / `verify`: the submission breaks the competition's rules (`NON_COMPLIANT`).
pub const NON_COMPLIANT: i32 = 3;
/// `verify`: the submission's own run failed (`BUILD_FAILED`, `TRAIN_FAILED`, `TIMEOUT`, `OOM`,
/// `MISSING_ARTIFACT`); `audit verify`: the run directory was tampered with.
pub const RUN_FAILED: i32 = 4;
/// Alias of [`RUN_FAILED`] for `audit verify`.
pub const TAMPERED: i32 = 4;
/// Evaluation of the model failed (`EVAL_FAILED`).
pub const EVAL_FAILED: i32 = 5;
/// The infrastructure failed (engine down, GPU lost): retryable, says nothing about the submission.
pub const INFRA_ERROR: i32 = 6;
