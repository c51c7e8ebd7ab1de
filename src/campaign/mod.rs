//! `reprobox finalists`: verify a leaderboard from the top, replacing each entry that is not
//! reproduced by the next, until `top` entries are reproduced or the leaderboard ends ("no
//! winner" for the places left). The NEURIPS 2023 rule this serves: "replicate their entire
//! process … otherwise move on to the next team" (docs/references.md C§1).
//!
//! A campaign lives in its own directory: `campaign.jsonl` (a hash-chained journal like a run's,
//! every transition with its reason), `runs/<rank>-<team>/` (each entry's run directory, made by
//! `verify`), and `campaign.json` / `campaign.md`, rewritten after every transition.
//!
//! Host failures are not the team's: an entry that ends `INFRA_ERROR` (or whose run cannot
//! start for the host's sake) stops the campaign as `interrupted` without moving down the
//! ranking; [`resume`] continues it, re-attaching to a run the dead runner left behind and
//! repeating nothing that finished.

pub mod leaderboard;
mod report;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use leaderboard::{Entry, LeaderboardError};

use crate::journal::{Journal, JournalError};
use crate::pipeline::{PipelineError, RunResult};
use crate::verdict::Verdict;

/// The campaign journal.
pub const JOURNAL: &str = "campaign.jsonl";
/// The machine-readable summary.
pub const SUMMARY_JSON: &str = "campaign.json";
/// The summary people read.
pub const SUMMARY_MD: &str = "campaign.md";
/// Where the entries' run directories go.
pub const RUNS_DIR: &str = "runs";
/// `campaign.json`'s format.
pub const FORMAT_VERSION: &str = "0.1";

/// What a campaign was asked to do, recorded in its first journal line so that [`resume`]
/// needs nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    pub policy: String,
    pub track: String,
    /// How many reproduced entries end the campaign.
    pub top: u32,
    /// The leaderboard file and its sha256, as read at the start.
    pub leaderboard: PathBuf,
    pub leaderboard_sha256: String,
    pub entries: Vec<Entry>,
    /// How each entry is verified.
    pub verify: VerifySettings,
}

/// The `verify` settings every entry gets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifySettings {
    pub dry_run: bool,
    /// `--gpu` as given (`none`, an index or a UUID).
    pub gpu: String,
    /// `--gpus`: the GPUs entries run on, one entry per GPU at a time; empty: one entry at a
    /// time on `gpu`.
    #[serde(default)]
    pub gpus: Vec<String>,
    pub inputs: Option<PathBuf>,
    pub train_limit_secs: Option<u64>,
    pub eval_image: Option<String>,
    #[serde(default)]
    pub task_data: Option<PathBuf>,
    /// `--task-seed` / `--task-block-hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_seed: Option<crate::native::TaskSeed>,
    pub nvml_lib: Option<PathBuf>,
    pub lease_dir: Option<PathBuf>,
    pub sign_key: Option<PathBuf>,
}

/// How an entry ended in the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Reproduced: the entry keeps its place.
    Accepted,
    /// Not reproduced, non-compliant, failed to build or train, or its manifest is for another
    /// competition: the next entry moves up.
    Replaced,
}

/// One finished entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryResult {
    pub rank: u32,
    pub team: String,
    pub outcome: Outcome,
    /// The run's verdict; `None` when no run could be made (e.g. an unreadable manifest).
    pub verdict: Option<Verdict>,
    pub stage: Option<String>,
    pub reason: String,
    /// The entry's run directory, when a run was made.
    pub run_dir: Option<PathBuf>,
}

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    /// `top` entries were reproduced.
    Complete,
    /// The leaderboard ended first: fewer than `top` winners (possibly none).
    Exhausted,
    /// The host failed; `reprobox finalists --resume DIR` continues.
    Interrupted,
}

/// Why a campaign cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error(transparent)]
    Leaderboard(#[from] LeaderboardError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a campaign directory: it has no {JOURNAL} (hint: pass the directory `reprobox finalists` printed)", path.display())]
    NotACampaign { path: PathBuf },
    #[error("the campaign journal `{}` cannot be replayed: {detail} (hint: run `reprobox audit verify`-style checks on it; start a new campaign if it is damaged)", path.display())]
    State { path: PathBuf, detail: String },
    #[error("the campaign `{}` has already finished ({status:?}) (hint: start a new campaign to verify again)", path.display())]
    Finished { path: PathBuf, status: Status },
    #[error("{0} (hint: --top is at least 1)")]
    BadTop(u32),
}

/// What runs one entry: `verify` on a fresh submission, `resume` on a run a dead runner left.
/// `slots` entries may run at once, each in its own slot (the CLI gives each slot its own GPU);
/// the CLI's verifier calls the pipeline, tests use scripted ones.
#[allow(async_fn_in_trait)]
pub trait Verifier {
    /// How many entries may run at once (at least 1).
    fn slots(&self) -> usize {
        1
    }
    async fn verify(
        &self,
        slot: usize,
        submission: &Path,
        audits_dir: &Path,
    ) -> Result<RunResult, PipelineError>;
    async fn resume(&self, slot: usize, run_dir: &Path) -> Result<RunResult, PipelineError>;
}

/// A transition as it happens (for progress on the terminal).
pub trait CampaignProgress {
    fn transition(&mut self, event: &str, text: &str);
}

impl<F: FnMut(&str, &str)> CampaignProgress for F {
    fn transition(&mut self, event: &str, text: &str) {
        self(event, text)
    }
}

/// The result of [`start`] and [`resume`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignResult {
    pub dir: PathBuf,
    pub status: Status,
    /// The accepted entries, best first.
    pub winners: Vec<EntryResult>,
    pub entries: Vec<EntryResult>,
    /// Why an interrupted campaign stopped.
    pub interruption: Option<String>,
}

/// Starts a campaign in a new directory under `out`.
pub async fn start<V: Verifier>(
    spec: CampaignSpec,
    out: &Path,
    verifier: &V,
    progress: &mut dyn CampaignProgress,
) -> Result<CampaignResult, CampaignError> {
    if spec.top == 0 {
        return Err(CampaignError::BadTop(spec.top));
    }
    let dir = out.join(campaign_id(&spec));
    let write = |path: &Path| {
        let path = path.to_owned();
        move |source| CampaignError::Write { path, source }
    };
    std::fs::create_dir_all(dir.join(RUNS_DIR)).map_err(write(&dir))?;
    let mut journal = Journal::create(dir.join(JOURNAL))?;
    let data = serde_json::to_value(&spec).map_err(|e| CampaignError::State {
        path: dir.clone(),
        detail: e.to_string(),
    })?;
    journal.append("campaign_started", None, data)?;
    progress.transition(
        "campaign_started",
        &format!(
            "{} entries, verifying until {} reproduced ({} / {})",
            spec.entries.len(),
            spec.top,
            spec.policy,
            spec.track
        ),
    );
    drive(
        dir,
        spec,
        journal,
        Vec::new(),
        Default::default(),
        verifier,
        progress,
    )
    .await
}

/// Continues a campaign whose runner died or whose host failed.
pub async fn resume<V: Verifier>(
    dir: &Path,
    verifier: &V,
    progress: &mut dyn CampaignProgress,
) -> Result<CampaignResult, CampaignError> {
    let path = dir.join(JOURNAL);
    if !path.is_file() {
        return Err(CampaignError::NotACampaign {
            path: dir.to_owned(),
        });
    }
    let (mut journal, events) = Journal::open_for_append(&path)?;
    let state_err = |detail: String| CampaignError::State {
        path: path.clone(),
        detail,
    };
    let first = events
        .first()
        .filter(|e| e.event == "campaign_started")
        .ok_or_else(|| state_err("the first line is not `campaign_started`".into()))?;
    let spec: CampaignSpec =
        serde_json::from_value(first.data.clone()).map_err(|e| state_err(e.to_string()))?;
    let mut done = Vec::new();
    // The slot each entry last ran in: a run continued after a crash keeps its slot, whose GPU
    // its plan (and lease) already names.
    let mut slots = std::collections::HashMap::new();
    for e in &events {
        if let (Some(rank), Some(slot)) = (e.data["rank"].as_u64(), e.data["slot"].as_u64()) {
            slots.insert(rank as u32, slot as usize);
        }
        match e.event.as_str() {
            "entry_finished" => done.push(
                serde_json::from_value::<EntryResult>(e.data.clone())
                    .map_err(|x| state_err(format!("line {}: {x}", e.seq)))?,
            ),
            "campaign_finished" => {
                let status =
                    serde_json::from_value(e.data["status"].clone()).unwrap_or(Status::Complete);
                return Err(CampaignError::Finished {
                    path: dir.to_owned(),
                    status,
                });
            }
            _ => {}
        }
    }
    journal.append(
        "campaign_resumed",
        None,
        serde_json::json!({"finished_entries": done.len()}),
    )?;
    progress.transition(
        "campaign_resumed",
        &format!(
            "{} of {} entries already decided",
            done.len(),
            spec.entries.len()
        ),
    );
    drive(
        dir.to_owned(),
        spec,
        journal,
        done,
        slots,
        verifier,
        progress,
    )
    .await
}

/// `campaign-<policy>-<track>-<UTC time>-<4 hex>`: the policy and track whole (policy ids and
/// track names are short), unlike a run id's 32-character team slug.
fn campaign_id(spec: &CampaignSpec) -> String {
    let name = format!("{}-{}", spec.policy, spec.track);
    format!(
        "campaign-{}",
        crate::pipeline::stamped(&crate::pipeline::slug(&name, 96, "leaderboard"))
    )
}

/// The entry's own directory for run directories: `runs/<rank, 3 digits>-<team slug>`.
fn entry_dir(dir: &Path, e: &Entry) -> PathBuf {
    let slug = crate::pipeline::slug(&e.team, 40, "team");
    dir.join(RUNS_DIR).join(format!("{:03}-{slug}", e.rank))
}

/// The newest run directory an entry has (run ids sort by time within one team).
fn latest_run(entry_dir: &Path) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(entry_dir)
        .ok()?
        .filter_map(|d| d.ok().map(|d| d.path()))
        .filter(|p| p.join(crate::rundir::JOURNAL).is_file())
        .collect();
    runs.sort();
    runs.pop()
}

/// The verdict a finished run's report holds.
fn finished_run(run_dir: &Path) -> Option<RunResult> {
    let text = crate::input_file::read_to_string(
        &run_dir.join(crate::rundir::REPORT_JSON),
        crate::rundir::REPORT_CAP,
    )
    .ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(RunResult {
        run_id: v["run_id"].as_str()?.to_owned(),
        run_dir: run_dir.to_owned(),
        verdict: serde_json::from_value(v["verdict"].clone()).ok()?,
        stage: v["decided_by"].as_str()?.to_owned(),
        reason: v["reason"].as_str().unwrap_or_default().to_owned(),
        cleanup_error: None,
    })
}

/// How an entry's run ended, before it is judged.
enum RunEnd {
    Run(Result<RunResult, PipelineError>),
    /// Its manifest is for another competition: no run.
    Mismatch(String),
}

/// What an entry needs next.
enum Next {
    /// Decided without a (new) run.
    Done(RunEnd),
    /// Continue the run a dead runner left mid-way.
    Resume(PathBuf),
    /// A fresh run.
    Verify,
}

/// A manifest for another competition is replaced without a run, a run a dead runner finished
/// is reused, one it left mid-way is resumed, else a fresh one starts.
fn next_step(spec: &CampaignSpec, entry: &Entry, edir: &Path) -> Next {
    // A manifest that does not load: `verify` reports it in its own words.
    if let Ok(lm) = crate::manifest::load(&entry.submission) {
        let s = &lm.manifest.submission;
        if s.policy != spec.policy || s.track != spec.track {
            return Next::Done(RunEnd::Mismatch(format!(
                "its manifest is for {} / {}, the campaign verifies {} / {}",
                s.policy, s.track, spec.policy, spec.track
            )));
        }
    }
    let previous = latest_run(edir);
    if let Some(r) = previous
        .as_deref()
        .and_then(finished_run)
        .filter(|r| r.verdict != Verdict::InfraError)
    {
        return Next::Done(RunEnd::Run(Ok(r)));
    }
    match previous.filter(|p| finished_run(p).is_none()) {
        Some(p) => Next::Resume(p),
        None => Next::Verify,
    }
}

/// The entry's result, or `Err((reason, run_dir))` when the host failed rather than the team.
#[allow(clippy::type_complexity)]
fn judge(entry: &Entry, end: RunEnd) -> Result<EntryResult, (String, Option<PathBuf>)> {
    let result = |outcome, verdict, stage, reason, run_dir| EntryResult {
        rank: entry.rank,
        team: entry.team.clone(),
        outcome,
        verdict,
        stage,
        reason,
        run_dir,
    };
    match end {
        RunEnd::Mismatch(reason) => Ok(result(Outcome::Replaced, None, None, reason, None)),
        RunEnd::Run(Ok(r)) if r.verdict == Verdict::InfraError => Err((r.reason, Some(r.run_dir))),
        // Only the submission's own manifest is the team's fault; every other error before a
        // verdict (no GPU for a GPU-only policy, a signing key that cannot be read, an unknown
        // GPU, the engine) is the operator's or the host's, and must not cost the team its place.
        RunEnd::Run(Err(e)) if !matches!(e, PipelineError::Manifest(_)) => {
            Err((e.to_string(), None))
        }
        RunEnd::Run(Ok(r)) => Ok(result(
            if r.verdict == Verdict::Reproduced {
                Outcome::Accepted
            } else {
                Outcome::Replaced
            },
            Some(r.verdict),
            Some(r.stage),
            r.reason,
            Some(r.run_dir),
        )),
        RunEnd::Run(Err(e)) => Ok(result(
            Outcome::Replaced,
            None,
            None,
            format!("its manifest cannot be used: {e}"),
            None,
        )),
    }
}

async fn drive<V: Verifier>(
    dir: PathBuf,
    spec: CampaignSpec,
    mut journal: Journal,
    mut done: Vec<EntryResult>,
    recorded_slots: std::collections::HashMap<u32, usize>,
    verifier: &V,
    progress: &mut dyn CampaignProgress,
) -> Result<CampaignResult, CampaignError> {
    use futures_util::StreamExt as _;
    use futures_util::stream::FuturesUnordered;

    let accepted = |done: &[EntryResult]| {
        done.iter()
            .filter(|d| d.outcome == Outcome::Accepted)
            .count() as u32
    };
    let mut free: Vec<usize> = (0..verifier.slots().max(1)).rev().collect();
    let mut in_flight = FuturesUnordered::new();
    let decided: Vec<u32> = done.iter().map(|d| d.rank).collect();
    let mut queue = spec.entries.iter().filter(|e| !decided.contains(&e.rank));
    // The first host failure: (reason, run dir, rank, team).
    let mut interruption: Option<(String, Option<PathBuf>, u32, String)> = None;
    loop {
        // Start entries while a slot is free and places are open that the entries in flight
        // could not all fill: never more runs than open places, so every accepted entry is a
        // winner, the result equals a one-at-a-time campaign's, and no run is thrown away.
        while interruption.is_none()
            && !free.is_empty()
            && accepted(&done) + (in_flight.len() as u32) < spec.top
        {
            let Some(entry) = queue.next() else { break };
            let edir = entry_dir(&dir, entry);
            let who = format!("#{} {}", entry.rank, entry.team);
            let step = next_step(&spec, entry, &edir);
            let slot = match (&step, recorded_slots.get(&entry.rank)) {
                (Next::Resume(_), Some(s)) if free.contains(s) => {
                    free.retain(|f| f != s);
                    *s
                }
                _ => free.pop().expect("checked non-empty"),
            };
            match &step {
                Next::Resume(p) => {
                    journal.append(
                        "entry_resumed",
                        None,
                        serde_json::json!({"rank": entry.rank, "team": entry.team, "run_dir": p, "slot": slot}),
                    )?;
                    progress.transition(
                        "entry_resumed",
                        &format!("{who}: continuing {}", p.display()),
                    );
                }
                Next::Verify => {
                    std::fs::create_dir_all(&edir).map_err(|source| CampaignError::Write {
                        path: edir.clone(),
                        source,
                    })?;
                    journal.append(
                        "entry_started",
                        None,
                        serde_json::json!({"rank": entry.rank, "team": entry.team, "submission": entry.submission, "slot": slot}),
                    )?;
                    progress.transition(
                        "entry_started",
                        &format!("{who}: verifying {}", entry.submission.display()),
                    );
                }
                Next::Done(_) => {}
            }
            in_flight.push(async move {
                let end = match step {
                    Next::Done(end) => end,
                    Next::Resume(p) => RunEnd::Run(verifier.resume(slot, &p).await),
                    Next::Verify => {
                        RunEnd::Run(verifier.verify(slot, &entry.submission, &edir).await)
                    }
                };
                (entry, slot, end)
            });
        }
        let Some((entry, slot, end)) = in_flight.next().await else {
            break;
        };
        free.push(slot);
        let who = format!("#{} {}", entry.rank, entry.team);
        match judge(entry, end) {
            Ok(result) => {
                journal.append(
                    "entry_finished",
                    None,
                    serde_json::to_value(&result).unwrap_or_default(),
                )?;
                progress.transition(
                    "entry_finished",
                    &format!(
                        "{who}: {} ({}): {}",
                        match result.outcome {
                            Outcome::Accepted => "accepted",
                            Outcome::Replaced => "replaced by the next entry",
                        },
                        result.verdict.map(|v| v.as_str()).unwrap_or("no run"),
                        result.reason
                    ),
                );
                done.push(result);
                done.sort_by_key(|d| d.rank);
                write_summary(&dir, &spec, &journal, &done, Status::InProgress, None)?;
            }
            // The host failed: the entries in flight finish, nothing new starts.
            Err((reason, run_dir)) => {
                if interruption.is_none() {
                    interruption = Some((reason, run_dir, entry.rank, entry.team.clone()));
                }
            }
        }
    }
    if let Some((reason, run_dir, rank, team)) = interruption {
        return interrupt(
            &dir, &spec, journal, done, rank, &team, reason, run_dir, progress,
        );
    }
    let status = if accepted(&done) >= spec.top {
        Status::Complete
    } else {
        Status::Exhausted
    };
    journal.append(
        "campaign_finished",
        None,
        serde_json::json!({"status": status, "winners": done.iter().filter(|d| d.outcome == Outcome::Accepted).map(|d| &d.team).collect::<Vec<_>>()}),
    )?;
    progress.transition(
        "campaign_finished",
        &match status {
            Status::Complete => format!("{} reproduced", spec.top),
            _ => format!(
                "the leaderboard ended with {} of {} places reproduced{}",
                accepted(&done),
                spec.top,
                if accepted(&done) == 0 {
                    ": no winner"
                } else {
                    ""
                }
            ),
        },
    );
    write_summary(&dir, &spec, &journal, &done, status, None)
}

#[allow(clippy::too_many_arguments)]
fn interrupt(
    dir: &Path,
    spec: &CampaignSpec,
    mut journal: Journal,
    done: Vec<EntryResult>,
    rank: u32,
    team: &str,
    reason: String,
    run_dir: Option<PathBuf>,
    progress: &mut dyn CampaignProgress,
) -> Result<CampaignResult, CampaignError> {
    journal.append(
        "campaign_interrupted",
        None,
        serde_json::json!({"rank": rank, "team": team, "reason": reason, "run_dir": run_dir}),
    )?;
    progress.transition(
        "campaign_interrupted",
        &format!("#{rank} {team}: the host failed, not the team: {reason}"),
    );
    write_summary(
        dir,
        spec,
        &journal,
        &done,
        Status::Interrupted,
        Some(reason),
    )
}

fn write_summary(
    dir: &Path,
    spec: &CampaignSpec,
    journal: &Journal,
    done: &[EntryResult],
    status: Status,
    interruption: Option<String>,
) -> Result<CampaignResult, CampaignError> {
    let result = CampaignResult {
        dir: dir.to_owned(),
        status,
        winners: done
            .iter()
            .filter(|d| d.outcome == Outcome::Accepted)
            .cloned()
            .collect(),
        entries: done.to_vec(),
        interruption,
    };
    let transitions = crate::journal::read_verified(journal.path())
        .map(|(e, _)| e)
        .unwrap_or_default();
    report::write(dir, spec, &result, &transitions, journal.head().hash)?;
    Ok(result)
}

#[cfg(test)]
mod tests;
