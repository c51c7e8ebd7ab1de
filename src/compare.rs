//! Claimed vs reproduced: reads the scores an evaluator wrote (`scores.json`), compares each of
//! the policy's tasks with the team's claim under the policy's tolerance, aggregates the way the
//! policy says, and decides `REPRODUCED` or `NOT_REPRODUCED`. Pure functions: no Docker, no files
//! beyond the one read by [`read_scores`].
//!
//! `scores.json` (docs/evaluation.md, "The harness evaluator"):
//!
//! ```json
//! {"tasks": {"mmlu": {"score": 0.5, "examples": [1, 0, 1, 0]}, "gsm": {"score": 0.1}}}
//! ```
//!
//! `examples`, when given, are the per-example values whose mean is the score; they give the
//! 95 % bootstrap interval of the reproduced score.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::{Evaluation, Tolerance};
use crate::verdict::Verdict;

/// Resamples of the bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Largest `scores.json` read (a harness that floods its output must not exhaust memory).
pub const MAX_SCORES_BYTES: u64 = 64 << 20;

/// The scores file's cap, as [`crate::input_file`] enforces it.
pub const SCORES_CAP: crate::input_file::Cap = crate::input_file::Cap::new(
    "scores file",
    MAX_SCORES_BYTES,
    "scores.json holds one score and the per-example values per task; check what the evaluator writes",
);

/// One task's reproduced score as the evaluator wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskScore {
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<Vec<f64>>,
}

/// The evaluator's `scores.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scores {
    pub tasks: BTreeMap<String, TaskScore>,
}

/// Why a `scores.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScoresError {
    #[error("the evaluator wrote no `{}` (hint: the evaluation command must write its scores there; see docs/evaluation.md)", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is {size} bytes, more than the {MAX_SCORES_BYTES}-byte limit", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    /// Not a regular file (a FIFO, a device, a directory, a symlink loop), or past [`SCORES_CAP`].
    #[error(transparent)]
    Input(crate::input_file::InputFileError),
    #[error("`{}` is not valid: {detail} (hint: {{\"tasks\": {{\"<task>\": {{\"score\": <number>, \"examples\": [<numbers>]}}}}}})", path.display())]
    Invalid { path: PathBuf, detail: String },
}

/// Reads and validates a `scores.json`: every score and example finite, a score equal to the
/// mean of its examples when they are given.
pub fn read_scores(path: &Path) -> Result<Scores, ScoresError> {
    let bytes = match crate::input_file::read(path, SCORES_CAP) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(ScoresError::Missing {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(ScoresError::Input(e)),
    };
    let invalid = |detail: String| ScoresError::Invalid {
        path: path.to_owned(),
        detail,
    };
    // serde_json refuses NaN and infinities, so every number that parses is finite.
    let scores: Scores = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    for (name, t) in &scores.tasks {
        if let Some(ex) = &t.examples {
            if ex.is_empty() {
                return Err(invalid(format!(
                    "task `{name}` has an empty `examples` list"
                )));
            }
            let mean = mean(ex);
            if (mean - t.score).abs() > 1e-9 * t.score.abs().max(1.0) {
                return Err(invalid(format!(
                    "task `{name}`: score {} is not the mean of its {} examples ({mean})",
                    t.score,
                    ex.len()
                )));
            }
        }
    }
    Ok(scores)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// A 95 % percentile bootstrap interval of the mean of `examples`, from
/// [`BOOTSTRAP_RESAMPLES`] resamples drawn with a generator seeded by `seed` (so a report can be
/// recomputed exactly). `None` for no examples, and for any value that is NaN or infinite: the
/// resampled means would be NaN or infinite too, and an interval of them means nothing.
pub fn bootstrap_interval(examples: &[f64], seed: u64) -> Option<[f64; 2]> {
    if examples.is_empty() || examples.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = examples.len();
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let sum: f64 = (0..n).map(|_| examples[rng.below(n)]).sum();
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    Some([at(0.025), at(0.975)])
}

/// A 95 % paired percentile bootstrap interval of `mean(a) − mean(b)`: each resample draws
/// example indices once and takes both models' values at them, so the per-example pairing (the
/// same prompt to both models) is kept. `None` unless both have the same, non-zero length.
pub fn paired_bootstrap_interval(a: &[f64], b: &[f64], seed: u64) -> Option<[f64; 2]> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    bootstrap_interval(&diffs, seed)
}

/// One task of the side-by-side: the rebuilt model against the model the team submitted,
/// scored in the same run on the same examples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedTask {
    pub task: String,
    pub rebuilt: f64,
    pub submitted: f64,
    /// `rebuilt − submitted`.
    pub difference: f64,
    /// 95 % paired bootstrap interval of the difference, when both gave the same number of
    /// per-example values.
    pub interval: Option<[f64; 2]>,
    pub examples: Option<usize>,
    /// Whether the interval contains 0 (no detectable difference); `None` without an interval.
    pub consistent: Option<bool>,
}

/// The rebuilt model's scores against the submitted model's, per policy task. Tasks either
/// evaluator left out are skipped; example counts that differ give no interval.
pub fn paired(
    evaluation: &Evaluation,
    rebuilt: &Scores,
    submitted: &Scores,
    run_id: &str,
) -> Vec<PairedTask> {
    evaluation
        .tasks
        .iter()
        .filter_map(|t| {
            let r = rebuilt.tasks.get(&t.name)?;
            let s = submitted.tasks.get(&t.name)?;
            let interval = match (&r.examples, &s.examples) {
                (Some(a), Some(b)) => paired_bootstrap_interval(
                    a,
                    b,
                    interval_seed(run_id, &format!("{}#paired", t.name)),
                ),
                _ => None,
            };
            Some(PairedTask {
                task: t.name.clone(),
                rebuilt: r.score,
                submitted: s.score,
                difference: r.score - s.score,
                interval,
                examples: r.examples.as_ref().map(Vec::len),
                consistent: interval.map(|[lo, hi]| lo <= 0.0 && 0.0 <= hi),
            })
        })
        .collect()
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast and fully determined by its seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias for n ≪ 2⁶⁴ is negligible here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// A seed for a task's interval: FNV-1a of the run id and task name.
pub fn interval_seed(run_id: &str, task: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_id.bytes().chain([0]).chain(task.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One task, claimed vs reproduced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskComparison {
    pub task: String,
    /// The team's claim; `None` when the manifest claims nothing for this task.
    pub claimed: Option<f64>,
    pub reproduced: f64,
    /// `reproduced − claimed`.
    pub difference: Option<f64>,
    pub tolerance: Tolerance,
    /// Whether the reproduction is within tolerance; `None` without a claim.
    pub within_tolerance: Option<bool>,
    pub higher_is_better: bool,
    /// 95 % bootstrap interval of the reproduced score, when the evaluator gave examples.
    pub interval: Option<[f64; 2]>,
    pub examples: Option<usize>,
    /// The normalized score that enters the aggregate.
    pub reproduced_normalized: f64,
}

/// The aggregate, claimed vs reproduced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateComparison {
    /// The policy's aggregate (`weighted_sum`, `mean`, `geometric_mean`).
    pub method: crate::policy::Aggregate,
    /// The aggregate of the claims; `None` unless every task is claimed.
    pub claimed: Option<f64>,
    pub reproduced: f64,
    pub tolerance: Tolerance,
    pub within_tolerance: Option<bool>,
}

/// The comparison of a whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub tasks: Vec<TaskComparison>,
    pub aggregate: AggregateComparison,
    /// Claims for tasks the policy does not evaluate (never compared).
    pub unknown_claims: Vec<String>,
    pub verdict: Verdict,
    /// The task that decided a `NOT_REPRODUCED` (`aggregate` for the aggregate); `None` when
    /// reproduced.
    pub decided_by: Option<String>,
    pub reason: String,
}

/// Why scores cannot be compared at all: the evaluation did not produce what the policy needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    #[error("the evaluator wrote no score for task{} {} (hint: the policy evaluates {}; the evaluation image must score every one)", if missing.len() == 1 { "" } else { "s" }, missing.join(", "), expected.join(", "))]
    MissingTasks {
        missing: Vec<String>,
        expected: Vec<String>,
    },
    #[error("the manifest claims no score for any task the policy evaluates ({}) (hint: `claims.scores` keys are the policy's task names)", expected.join(", "))]
    NothingClaimed { expected: Vec<String> },
    /// A NaN score (or a per-example value that is not finite) cannot be compared with anything:
    /// the evaluation failed. An infinite score alone is a failed TEXT_LOSS gate, the subnet's
    /// own rule, and is compared.
    #[error(
        "task {task}: {what} is not a number, so it cannot be compared with the claim (hint: the model's outputs are NaN or infinite, usually a diverged training or a broken checkpoint; look at the evaluation log)"
    )]
    NotANumber { task: String, what: String },
}

/// Compares reproduced scores with the claims, task by task in the policy's order, then the
/// aggregate. `REPRODUCED` needs every claimed task and (when every task is claimed) the
/// aggregate within tolerance; the first that is not decides `NOT_REPRODUCED`.
pub fn compare(
    evaluation: &Evaluation,
    claims: &BTreeMap<String, f64>,
    scores: &Scores,
    run_id: &str,
) -> Result<Comparison, CompareError> {
    let expected: Vec<String> = evaluation.tasks.iter().map(|t| t.name.clone()).collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|n| !scores.tasks.contains_key(*n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(CompareError::MissingTasks { missing, expected });
    }
    if !expected.iter().any(|n| claims.contains_key(n)) {
        return Err(CompareError::NothingClaimed { expected });
    }
    for name in &expected {
        let got = &scores.tasks[name];
        let nan = |what: String| CompareError::NotANumber {
            task: name.clone(),
            what,
        };
        if got.score.is_nan() {
            return Err(nan("the reproduced score".into()));
        }
        if let Some(i) = got
            .examples
            .as_deref()
            .and_then(|ex| ex.iter().position(|v| !v.is_finite()))
        {
            return Err(nan(format!("the value of example {i}")));
        }
    }
    let tasks: Vec<TaskComparison> = evaluation
        .tasks
        .iter()
        .map(|t| {
            let got = &scores.tasks[&t.name];
            let claimed = claims.get(&t.name).copied();
            TaskComparison {
                task: t.name.clone(),
                claimed,
                reproduced: got.score,
                difference: claimed.map(|c| got.score - c),
                tolerance: t.tolerance,
                within_tolerance: claimed.map(|c| t.tolerance.accepts(c, got.score)),
                higher_is_better: t.higher_is_better,
                interval: got
                    .examples
                    .as_deref()
                    .and_then(|ex| bootstrap_interval(ex, interval_seed(run_id, &t.name))),
                examples: got.examples.as_ref().map(Vec::len),
                reproduced_normalized: t.normalization.apply(got.score),
            }
        })
        .collect();
    let combine = |value: &dyn Fn(&TaskComparison) -> Option<f64>| {
        let pairs: Option<Vec<(&str, f64)>> = tasks
            .iter()
            .map(|c| {
                let t = evaluation.task(&c.task)?;
                value(c).map(|v| (c.task.as_str(), t.normalization.apply(v)))
            })
            .collect();
        pairs.and_then(|p| evaluation.combine(p))
    };
    let reproduced_agg = combine(&|c| Some(c.reproduced)).unwrap_or(f64::NAN);
    if reproduced_agg.is_nan() {
        return Err(CompareError::NotANumber {
            task: "aggregate".into(),
            what: "the reproduced aggregate of the task scores".into(),
        });
    }
    let claimed_agg = combine(&|c| c.claimed);
    let aggregate = AggregateComparison {
        method: evaluation.aggregate,
        claimed: claimed_agg,
        reproduced: reproduced_agg,
        tolerance: evaluation.tolerance,
        within_tolerance: claimed_agg.map(|c| evaluation.tolerance.accepts(c, reproduced_agg)),
    };
    let unknown_claims = claims
        .keys()
        .filter(|k| evaluation.task(k).is_none())
        .cloned()
        .collect();

    let failed_task = tasks.iter().find(|c| c.within_tolerance == Some(false));
    let (verdict, decided_by, reason) = if let Some(c) = failed_task {
        (
            Verdict::NotReproduced,
            Some(c.task.clone()),
            format!(
                "task {}: claimed {}, reproduced {} ({}), outside the tolerance {}",
                c.task,
                c.claimed.unwrap_or(f64::NAN),
                c.reproduced,
                describe_difference(c.difference.unwrap_or(f64::NAN), c.higher_is_better),
                describe_tolerance(c.tolerance)
            ),
        )
    } else if aggregate.within_tolerance == Some(false) {
        (
            Verdict::NotReproduced,
            Some("aggregate".into()),
            format!(
                "the aggregate: claimed {}, reproduced {}, outside the tolerance {}",
                aggregate.claimed.unwrap_or(f64::NAN),
                aggregate.reproduced,
                describe_tolerance(aggregate.tolerance)
            ),
        )
    } else {
        let compared: Vec<&str> = tasks
            .iter()
            .filter(|c| c.claimed.is_some())
            .map(|c| c.task.as_str())
            .collect();
        let agg = if aggregate.claimed.is_some() {
            " and the aggregate"
        } else {
            ""
        };
        (
            Verdict::Reproduced,
            None,
            format!(
                "every claimed task ({}){agg} is within tolerance",
                compared.join(", ")
            ),
        )
    };
    Ok(Comparison {
        tasks,
        aggregate,
        unknown_claims,
        verdict,
        decided_by,
        reason,
    })
}

fn describe_difference(d: f64, higher_is_better: bool) -> String {
    let better = (d > 0.0) == higher_is_better;
    format!(
        "{}{d:.6}, {}",
        if d > 0.0 { "+" } else { "" },
        if d == 0.0 {
            "equal"
        } else if better {
            "better than claimed"
        } else {
            "worse than claimed"
        }
    )
}

/// `±abs + rel·|claimed|`, or `exact` when the policy sets none.
pub fn describe_tolerance(t: Tolerance) -> String {
    match (t.absolute, t.relative) {
        (None, None) => "exact (the policy sets no tolerance)".into(),
        (Some(a), None) => format!("±{a}"),
        (None, Some(r)) => format!("±{}%", r * 100.0),
        (Some(a), Some(r)) => format!("±({a} + {}% of the claim)", r * 100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paired_interval_keeps_the_pairing() {
        // The two models differ on exactly one example in ten: the paired interval of the
        // difference is tight around 0.1, where an unpaired one would straddle zero widely.
        let a = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0];
        let mut b = a;
        b[0] = 0.0;
        let [lo, hi] = paired_bootstrap_interval(&a, &b, 7).unwrap();
        assert!(
            (0.0..=0.1).contains(&lo) && (0.1..=0.4).contains(&hi),
            "{lo} {hi}"
        );
        assert_eq!(paired_bootstrap_interval(&a, &a, 7), Some([0.0, 0.0]));
        assert_eq!(paired_bootstrap_interval(&a, &a[..9], 7), None);
        assert_eq!(paired_bootstrap_interval(&[], &[], 7), None);
    }
    use crate::policy::{Aggregate, Method, Normalization, Task};

    fn task(name: &str, weight: f64, tol: Option<f64>) -> Task {
        Task {
            name: name.into(),
            method: Method::Harness,
            data: None,
            samples: None,
            min_samples: None,
            weight,
            normalization: Normalization::None,
            tolerance: Tolerance {
                absolute: tol,
                relative: None,
            },
            higher_is_better: true,
            text_layout: Default::default(),
            reasonable_output_gate: false,
        }
    }

    fn evaluation(aggregate: Aggregate, agg_tol: Option<f64>) -> Evaluation {
        Evaluation {
            aggregate,
            renormalize_failed: false,
            tolerance: Tolerance {
                absolute: agg_tol,
                relative: None,
            },
            tasks: vec![task("a", 0.5, Some(0.01)), task("b", 0.5, Some(0.01))],
            harness: None,
        }
    }

    fn scores(a: f64, b: f64) -> Scores {
        Scores {
            tasks: [
                (
                    "a".to_string(),
                    TaskScore {
                        score: a,
                        examples: None,
                    },
                ),
                (
                    "b".to_string(),
                    TaskScore {
                        score: b,
                        examples: None,
                    },
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn the_side_by_side_pairs_each_task() {
        let ev = evaluation(Aggregate::Mean, None);
        let mut rebuilt = scores(0.6, 0.5);
        rebuilt.tasks.get_mut("a").unwrap().examples = Some(vec![1.0, 1.0, 0.0, 1.0, 0.0]);
        let mut submitted = scores(0.4, 0.5);
        submitted.tasks.get_mut("a").unwrap().examples = Some(vec![1.0, 0.0, 0.0, 1.0, 0.0]);
        submitted.tasks.remove("b");
        let p = paired(&ev, &rebuilt, &submitted, "r");
        assert_eq!(p.len(), 1, "b has no submitted score: {p:?}");
        assert_eq!(p[0].task, "a");
        assert!((p[0].difference - 0.2).abs() < 1e-12);
        assert_eq!(p[0].examples, Some(5));
        let [lo, hi] = p[0].interval.unwrap();
        assert!(
            lo >= 0.0 && hi <= 0.6 && lo <= 0.2 && 0.2 <= hi,
            "{lo} {hi}"
        );
        assert_eq!(p[0].consistent, Some(lo <= 0.0));
    }

    fn claims(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn within_tolerance_everywhere_is_reproduced() {
        let ev = evaluation(Aggregate::WeightedSum, Some(0.01));
        let c = compare(
            &ev,
            &claims(&[("a", 0.50), ("b", 0.30)]),
            &scores(0.505, 0.295),
            "r",
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.reason);
        assert_eq!(c.aggregate.claimed, Some(0.4));
        assert!((c.aggregate.reproduced - 0.4).abs() < 1e-12);
        assert_eq!(c.decided_by, None);
        assert!(c.reason.contains("a, b") && c.reason.contains("aggregate"));
    }

    #[test]
    fn an_infinite_score_is_never_within_tolerance_and_normalizes_to_one() {
        // A failed TEXT_LOSS gate: the subnet's raw score inf (docs/references.md S§2.3).
        let mut ev = evaluation(Aggregate::WeightedSum, Some(0.01));
        ev.tasks[1].normalization = Normalization::InverseExponential { ceiling: 20.0 };
        ev.tasks[1].higher_is_better = false;
        let c = compare(
            &ev,
            &claims(&[("a", 0.50), ("b", 2.0)]),
            &scores(0.50, f64::INFINITY),
            "r",
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::NotReproduced);
        assert_eq!(c.decided_by.as_deref(), Some("b"));
        assert!(c.reason.contains("reproduced inf"), "{}", c.reason);
        assert_eq!(c.tasks[1].reproduced_normalized, 1.0);
        assert!(c.aggregate.reproduced.is_finite());
        // JSON has no infinity: the report holds null there.
        let json = serde_json::to_value(&c.tasks[1]).unwrap();
        assert!(json["reproduced"].is_null(), "{json}");
    }

    #[test]
    fn the_first_task_outside_tolerance_decides() {
        let ev = evaluation(Aggregate::WeightedSum, Some(0.01));
        let c = compare(
            &ev,
            &claims(&[("a", 0.50), ("b", 0.30)]),
            &scores(0.40, 0.20),
            "r",
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::NotReproduced);
        assert_eq!(c.decided_by.as_deref(), Some("a"));
        assert!(c.reason.contains("worse than claimed"), "{}", c.reason);
        assert_eq!(c.tasks[1].within_tolerance, Some(false));
    }

    #[test]
    fn the_aggregate_can_decide_when_every_task_passes() {
        // Each task is just inside ±0.01, the aggregate tolerance is tighter.
        let ev = evaluation(Aggregate::WeightedSum, Some(0.001));
        let c = compare(
            &ev,
            &claims(&[("a", 0.50), ("b", 0.30)]),
            &scores(0.509, 0.309),
            "r",
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::NotReproduced);
        assert_eq!(c.decided_by.as_deref(), Some("aggregate"));
    }

    #[test]
    fn no_tolerance_means_exact_and_a_partial_claim_has_no_aggregate() {
        let mut ev = evaluation(Aggregate::GeometricMean, None);
        for t in &mut ev.tasks {
            t.tolerance = Tolerance::default();
        }
        let c = compare(&ev, &claims(&[("a", 0.25)]), &scores(0.25, 0.9), "r").unwrap();
        assert_eq!(c.verdict, Verdict::Reproduced);
        assert_eq!(c.tasks[1].within_tolerance, None);
        assert_eq!(c.aggregate.claimed, None);
        assert!((c.aggregate.reproduced - (0.25f64 * 0.9).sqrt()).abs() < 1e-12);
        let c = compare(&ev, &claims(&[("a", 0.25)]), &scores(0.2500001, 0.9), "r").unwrap();
        assert_eq!(c.verdict, Verdict::NotReproduced);
        assert!(c.reason.contains("exact"), "{}", c.reason);
    }

    #[test]
    fn missing_scores_and_missing_claims_are_errors() {
        let ev = evaluation(Aggregate::Mean, None);
        let mut s = scores(0.1, 0.2);
        s.tasks.remove("b");
        let e = compare(&ev, &claims(&[("a", 0.1)]), &s, "r").unwrap_err();
        assert!(e.to_string().contains("task b"), "{e}");
        let e = compare(&ev, &claims(&[("zzz", 0.1)]), &scores(0.1, 0.2), "r").unwrap_err();
        assert!(matches!(e, CompareError::NothingClaimed { .. }));
        let c = compare(
            &ev,
            &claims(&[("a", 0.1), ("zzz", 1.0)]),
            &scores(0.1, 0.2),
            "r",
        )
        .unwrap();
        assert_eq!(c.unknown_claims, ["zzz"]);
    }

    #[test]
    fn normalization_applies_before_the_aggregate() {
        let mut ev = evaluation(Aggregate::WeightedSum, Some(1e-9));
        ev.tasks[0].normalization = Normalization::InverseExponential { ceiling: 20.0 };
        let c = compare(
            &ev,
            &claims(&[("a", 20.0), ("b", 0.0)]),
            &scores(20.0, 0.0),
            "r",
        )
        .unwrap();
        // inverse exponential at the ceiling is 1, weighted 0.5 with 0.
        assert!((c.aggregate.reproduced - 0.5).abs() < 1e-12);
        assert_eq!(c.tasks[0].reproduced_normalized, 1.0);
    }

    #[test]
    fn the_bootstrap_interval_is_deterministic_and_brackets_the_mean() {
        let ex: Vec<f64> = (0..200).map(|i| f64::from(u8::from(i % 4 == 0))).collect();
        let a = bootstrap_interval(&ex, 7).unwrap();
        assert_eq!(Some(a), bootstrap_interval(&ex, 7));
        assert!(a[0] < 0.25 && 0.25 < a[1], "{a:?}");
        // Standard error sqrt(0.25·0.75/200) ≈ 0.031: the 95 % interval is about ±0.06.
        assert!(a[1] - a[0] > 0.08 && a[1] - a[0] < 0.16, "{a:?}");
        assert_eq!(bootstrap_interval(&[0.5; 10], 1), Some([0.5, 0.5]));
        assert_eq!(bootstrap_interval(&[], 1), None);
        assert_ne!(interval_seed("r", "a"), interval_seed("r", "b"));
    }

    /// Issue 17 item 4: NaN is never compared (it was NOT_REPRODUCED, or REPRODUCED for a task
    /// without a claim); an infinite example gives no interval.
    #[test]
    fn nan_scores_and_examples_are_not_compared() {
        let ev = evaluation(Aggregate::WeightedSum, Some(0.01));
        let cl = claims(&[("a", 0.50), ("b", 0.30)]);
        let e = compare(&ev, &cl, &scores(f64::NAN, 0.30), "r").unwrap_err();
        assert!(
            matches!(&e, CompareError::NotANumber { task, .. } if task == "a"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("task a: the reproduced score is not a number"),
            "{e}"
        );
        // Only `a` is claimed: the NaN of `b` still fails the evaluation.
        let e = compare(&ev, &claims(&[("a", 0.50)]), &scores(0.50, f64::NAN), "r").unwrap_err();
        assert!(
            matches!(&e, CompareError::NotANumber { task, .. } if task == "b"),
            "{e}"
        );
        let mut with_examples = scores(0.50, 0.30);
        with_examples.tasks.get_mut("a").unwrap().examples = Some(vec![1.0, f64::NAN, 0.5]);
        let e = compare(&ev, &cl, &with_examples, "r").unwrap_err();
        assert!(e.to_string().contains("example 1"), "{e}");
        // inf − inf in a raw weighted sum is NaN: the aggregate is not compared either.
        let e = compare(&ev, &cl, &scores(f64::INFINITY, f64::NEG_INFINITY), "r").unwrap_err();
        assert!(
            matches!(&e, CompareError::NotANumber { task, .. } if task == "aggregate"),
            "{e}"
        );
        assert_eq!(bootstrap_interval(&[0.5, f64::NAN], 1), None);
        assert_eq!(bootstrap_interval(&[0.5, f64::INFINITY], 1), None);
        assert_eq!(
            paired_bootstrap_interval(&[f64::INFINITY], &[f64::INFINITY], 1),
            None
        );
    }

    #[test]
    fn scores_files_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scores.json");
        assert!(matches!(read_scores(&p), Err(ScoresError::Missing { .. })));
        for (body, needle) in [
            ("{\"tasks\": {\"a\": {\"score\": \"x\"}}}", "invalid type"),
            (
                "{\"tasks\": {\"a\": {\"score\": 0.5, \"examples\": []}}}",
                "empty",
            ),
            (
                "{\"tasks\": {\"a\": {\"score\": 0.5, \"examples\": [1, 1]}}}",
                "not the mean",
            ),
            (
                "{\"tasks\": {\"a\": {\"score\": 0.5, \"extra\": 1}}}",
                "unknown field",
            ),
            ("{\"tasks\": {\"a\": {\"score\": NaN}}}", "expected value"),
        ] {
            std::fs::write(&p, body).unwrap();
            let e = read_scores(&p).unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains("scores.json"),
                "{body}: {e}"
            );
        }
        std::fs::write(
            &p,
            "{\"tasks\": {\"a\": {\"score\": 0.5, \"examples\": [1, 0]}}}",
        )
        .unwrap();
        assert_eq!(
            read_scores(&p).unwrap().tasks["a"].examples.as_deref(),
            Some(&[1.0, 0.0][..])
        );
    }
}
