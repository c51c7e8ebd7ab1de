//! The verdict of a verification run and its exit code (docs/ARCHITECTURE.md, "Exit codes"). The names are a contract: report.json and the provenance verdict
//! statement carry them as SCREAMING_SNAKE_CASE strings.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::exit_codes;

/// What a verification decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Every task and the aggregate are within tolerance of the claims.
    Reproduced,
    /// The rebuilt model's scores are outside the claimed tolerance.
    NotReproduced,
    /// The submission breaks the competition's rules (check findings, digest mismatch, GPU).
    NonCompliant,
    /// The submission's image did not build.
    BuildFailed,
    /// Training exited non-zero.
    TrainFailed,
    /// Training ran past the wall clock and was killed.
    Timeout,
    /// The kernel's OOM killer ended training.
    Oom,
    /// Training ended without the model it should have written.
    MissingArtifact,
    /// The rebuilt model could not be evaluated.
    EvalFailed,
    /// The infrastructure failed (engine down, GPU lost, input missing from the mirror):
    /// retryable, says nothing about the submission.
    InfraError,
}

impl Verdict {
    /// The process exit code of `verify` / `resume` for this verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Reproduced => exit_codes::OK,
            Verdict::NotReproduced => exit_codes::NOT_REPRODUCED,
            Verdict::NonCompliant => exit_codes::NON_COMPLIANT,
            Verdict::BuildFailed
            | Verdict::TrainFailed
            | Verdict::Timeout
            | Verdict::Oom
            | Verdict::MissingArtifact => exit_codes::RUN_FAILED,
            Verdict::EvalFailed => exit_codes::EVAL_FAILED,
            Verdict::InfraError => exit_codes::INFRA_ERROR,
        }
    }

    /// The contract name, e.g. `NOT_REPRODUCED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "REPRODUCED",
            Verdict::NotReproduced => "NOT_REPRODUCED",
            Verdict::NonCompliant => "NON_COMPLIANT",
            Verdict::BuildFailed => "BUILD_FAILED",
            Verdict::TrainFailed => "TRAIN_FAILED",
            Verdict::Timeout => "TIMEOUT",
            Verdict::Oom => "OOM",
            Verdict::MissingArtifact => "MISSING_ARTIFACT",
            Verdict::EvalFailed => "EVAL_FAILED",
            Verdict::InfraError => "INFRA_ERROR",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_exit_codes_follow_the_design() {
        let table = [
            (Verdict::Reproduced, "REPRODUCED", 0),
            (Verdict::NotReproduced, "NOT_REPRODUCED", 1),
            (Verdict::NonCompliant, "NON_COMPLIANT", 3),
            (Verdict::BuildFailed, "BUILD_FAILED", 4),
            (Verdict::TrainFailed, "TRAIN_FAILED", 4),
            (Verdict::Timeout, "TIMEOUT", 4),
            (Verdict::Oom, "OOM", 4),
            (Verdict::MissingArtifact, "MISSING_ARTIFACT", 4),
            (Verdict::EvalFailed, "EVAL_FAILED", 5),
            (Verdict::InfraError, "INFRA_ERROR", 6),
        ];
        for (v, name, code) in table {
            assert_eq!(v.as_str(), name);
            assert_eq!(serde_json::to_value(v).unwrap(), name);
            assert_eq!(v.exit_code(), code, "{v}");
        }
    }
}
