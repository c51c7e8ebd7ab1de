//! The campaign's walk down the ranking, with a scripted verifier in place of Docker (the CLI
//! and the real pipeline are exercised in tests/finalists.rs).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use super::*;

/// Answers each `verify` with the next scripted verdict (or the team's own, with a delay),
/// writing a run directory the way the pipeline does (a journal, then a report).
struct Script {
    verdicts: RefCell<VecDeque<Verdict>>,
    by_team: HashMap<String, (Verdict, u64)>,
    slots: usize,
    verified: RefCell<Vec<String>>,
    resumed: RefCell<Vec<PathBuf>>,
    /// `start <team> <slot>` / `end <team>`, in order.
    log: RefCell<Vec<String>>,
    running: Cell<usize>,
    max_running: Cell<usize>,
}

impl Script {
    fn new(v: &[Verdict]) -> Script {
        Script {
            verdicts: RefCell::new(v.iter().copied().collect()),
            by_team: HashMap::new(),
            slots: 1,
            verified: RefCell::default(),
            resumed: RefCell::default(),
            log: RefCell::default(),
            running: Cell::new(0),
            max_running: Cell::new(0),
        }
    }

    /// Each team's verdict after `ms` milliseconds, `slots` runs at once.
    fn timed(slots: usize, teams: &[(&str, Verdict, u64)]) -> Script {
        let mut s = Script::new(&[]);
        s.slots = slots;
        s.by_team = teams
            .iter()
            .map(|(t, v, ms)| ((*t).to_owned(), (*v, *ms)))
            .collect();
        s
    }

    fn verified(&self) -> Vec<String> {
        self.verified.borrow().clone()
    }
}

fn fake_run(dir: &Path, verdict: Verdict) -> RunResult {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(crate::rundir::JOURNAL), "{}\n").unwrap();
    let run_id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let reason = format!("scripted {verdict}");
    std::fs::write(
        dir.join(crate::rundir::REPORT_JSON),
        serde_json::json!({"run_id": run_id, "verdict": verdict, "decided_by": "compare", "reason": reason})
            .to_string(),
    )
    .unwrap();
    RunResult {
        run_id,
        run_dir: dir.to_owned(),
        verdict,
        stage: "compare".into(),
        reason,
        cleanup_error: None,
    }
}

impl Verifier for Script {
    fn slots(&self) -> usize {
        self.slots
    }

    async fn verify(
        &self,
        slot: usize,
        submission: &Path,
        audits_dir: &Path,
    ) -> Result<RunResult, PipelineError> {
        let team = submission
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        self.verified.borrow_mut().push(team.clone());
        self.log.borrow_mut().push(format!("start {team} {slot}"));
        self.running.set(self.running.get() + 1);
        self.max_running
            .set(self.max_running.get().max(self.running.get()));
        let v = match self.by_team.get(&team) {
            Some(&(v, ms)) => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                v
            }
            None => self
                .verdicts
                .borrow_mut()
                .pop_front()
                .expect("more verify calls than scripted"),
        };
        self.running.set(self.running.get() - 1);
        self.log.borrow_mut().push(format!("end {team}"));
        let n = std::fs::read_dir(audits_dir).unwrap().count();
        Ok(fake_run(&audits_dir.join(format!("{team}-run{n}")), v))
    }

    async fn resume(&self, _slot: usize, run_dir: &Path) -> Result<RunResult, PipelineError> {
        self.resumed.borrow_mut().push(run_dir.to_owned());
        let v = self
            .verdicts
            .borrow_mut()
            .pop_front()
            .expect("more resume calls than scripted");
        Ok(fake_run(run_dir, v))
    }
}

fn spec(root: &Path, teams: &[&str], top: u32) -> CampaignSpec {
    let entries = teams
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let dir = root.join("subs").join(t);
            std::fs::create_dir_all(&dir).unwrap();
            Entry {
                rank: i as u32 + 1,
                team: (*t).into(),
                submission: dir,
                claimed: Some(0.9 - i as f64 / 10.0),
            }
        })
        .collect();
    CampaignSpec {
        policy: "neurips-2023-llm-efficiency".into(),
        track: "a100-40gb".into(),
        top,
        leaderboard: root.join("lb.csv"),
        leaderboard_sha256: "0".repeat(64),
        entries,
        verify: VerifySettings::default(),
    }
}

/// A runtime whose clock is paused: scripted delays pass instantly and in order.
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

fn quiet() -> impl FnMut(&str, &str) {
    |_: &str, _: &str| {}
}

use Verdict::*;

#[test]
fn a_failed_entry_is_replaced_by_the_next_until_top_are_reproduced() {
    let d = tempfile::tempdir().unwrap();
    let v = Script::new(&[NotReproduced, Reproduced, TrainFailed, Reproduced]);
    let r = block(start(
        spec(d.path(), &["a", "b", "c", "d", "e"], 2),
        d.path(),
        &v,
        &mut quiet(),
    ))
    .unwrap();
    assert_eq!(r.status, Status::Complete);
    assert_eq!(v.verified(), ["a", "b", "c", "d"], "e is never run");
    let winners: Vec<&str> = r.winners.iter().map(|w| w.team.as_str()).collect();
    assert_eq!(winners, ["b", "d"]);
    assert_eq!(r.entries[0].outcome, Outcome::Replaced);
    assert_eq!(r.entries[0].verdict, Some(NotReproduced));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.dir.join(SUMMARY_JSON)).unwrap()).unwrap();
    assert_eq!(json["status"], "complete");
    assert_eq!(json["not_reached"], serde_json::json!(["e"]));
    let events: Vec<&str> = json["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"campaign_started"));
    assert_eq!(events.last(), Some(&"campaign_finished"));
    assert_eq!(events.iter().filter(|e| **e == "entry_finished").count(), 4);
    let md = std::fs::read_to_string(r.dir.join(SUMMARY_MD)).unwrap();
    assert!(md.contains("**complete**: 2 of 2"), "{md}");
    assert!(
        md.contains("| 1 | a | 0.9 | replaced | NOT_REPRODUCED | scripted NOT_REPRODUCED |"),
        "{md}"
    );
    assert!(md.contains("| 5 | e | 0.5 | not reached |"), "{md}");
    crate::journal::verify_chain(r.dir.join(JOURNAL)).unwrap();
}

#[test]
fn a_leaderboard_with_no_reproduced_entry_has_no_winner() {
    let d = tempfile::tempdir().unwrap();
    let v = Script::new(&[NotReproduced, NonCompliant]);
    let r = block(start(
        spec(d.path(), &["a", "b"], 1),
        d.path(),
        &v,
        &mut quiet(),
    ))
    .unwrap();
    assert_eq!(r.status, Status::Exhausted);
    assert!(r.winners.is_empty());
    let md = std::fs::read_to_string(r.dir.join(SUMMARY_MD)).unwrap();
    assert!(md.contains("**no winner**"), "{md}");
}

#[test]
fn a_host_failure_interrupts_without_moving_down_and_resume_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let v = Script::new(&[Reproduced, InfraError]);
    let r = block(start(
        spec(d.path(), &["a", "b", "c"], 2),
        d.path(),
        &v,
        &mut quiet(),
    ))
    .unwrap();
    assert_eq!(r.status, Status::Interrupted);
    assert_eq!(
        r.entries.len(),
        1,
        "b is not replaced for the host's failure"
    );
    assert!(r.interruption.as_deref().unwrap().contains("INFRA_ERROR"));

    let v = Script::new(&[Reproduced]);
    let again = block(resume(&r.dir, &v, &mut quiet())).unwrap();
    assert_eq!(again.status, Status::Complete);
    assert_eq!(
        v.verified(),
        ["b"],
        "a is not verified again; b gets a fresh run"
    );
    assert_eq!(
        again
            .winners
            .iter()
            .map(|w| w.team.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    // A finished campaign is not run twice.
    let e = block(resume(&r.dir, &Script::new(&[]), &mut quiet())).unwrap_err();
    assert!(matches!(e, CampaignError::Finished { .. }), "{e}");
}

#[test]
fn a_run_left_by_a_dead_runner_is_resumed_and_a_finished_one_is_reused() {
    let d = tempfile::tempdir().unwrap();
    let s = spec(d.path(), &["a", "b", "c"], 3);
    // Start, then make it as if the runner died in the middle of b's run, after a finished.
    let v = Script::new(&[Reproduced, InfraError]);
    let r = block(start(s, d.path(), &v, &mut quiet())).unwrap();
    let b_dir = entry_dir(&r.dir, &r_entry(&r.dir, 2));
    let b_run = latest_run(&b_dir).unwrap();
    std::fs::remove_file(b_run.join(crate::rundir::REPORT_JSON)).unwrap();
    // And c's run had finished before anything was recorded about it.
    let c_dir = entry_dir(&r.dir, &r_entry(&r.dir, 3));
    fake_run(&c_dir.join("c-run0"), Reproduced);

    let v = Script::new(&[Reproduced]);
    let again = block(resume(&r.dir, &v, &mut quiet())).unwrap();
    assert_eq!(
        *v.resumed.borrow(),
        [b_run],
        "b's run is continued, not restarted"
    );
    assert!(v.verified().is_empty(), "c's finished run is reused");
    assert_eq!(again.status, Status::Complete);
    assert_eq!(again.winners.len(), 3);
}

fn r_entry(dir: &Path, rank: u32) -> Entry {
    let (entries, _) = crate::journal::read_verified(dir.join(JOURNAL)).unwrap();
    let spec: CampaignSpec = serde_json::from_value(entries[0].data.clone()).unwrap();
    spec.entries.into_iter().find(|e| e.rank == rank).unwrap()
}

#[test]
fn an_entry_for_another_competition_is_replaced_without_a_run() {
    let d = tempfile::tempdir().unwrap();
    let mut s = spec(d.path(), &["a", "b"], 1);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/submissions/compliant/reprobox.toml");
    std::fs::copy(&fixture, s.entries[0].submission.join("reprobox.toml")).unwrap();
    s.track = "rtx-4090".into();
    let v = Script::new(&[Reproduced]);
    let r = block(start(s, d.path(), &v, &mut quiet())).unwrap();
    assert_eq!(v.verified(), ["b"]);
    assert_eq!(r.entries[0].outcome, Outcome::Replaced);
    assert!(
        r.entries[0].reason.contains("rtx-4090"),
        "{}",
        r.entries[0].reason
    );
    assert_eq!(r.entries[0].verdict, None);
}

#[test]
fn top_zero_is_refused_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    let e = block(start(
        spec(d.path(), &["a"], 0),
        &d.path().join("out"),
        &Script::new(&[]),
        &mut quiet(),
    ))
    .unwrap_err();
    assert!(matches!(e, CampaignError::BadTop(0)));
    assert!(!d.path().join("out").exists());
}

#[test]
fn with_two_gpus_two_entries_run_at_once_and_the_result_is_the_sequential_one() {
    let d = tempfile::tempdir().unwrap();
    // a fails slowly while b reproduces quickly; c starts only when a's place opens again.
    let v = Script::timed(
        2,
        &[
            ("a", NotReproduced, 300),
            ("b", Reproduced, 100),
            ("c", Reproduced, 100),
            ("d", Reproduced, 100),
        ],
    );
    let r = block(start(
        spec(d.path(), &["a", "b", "c", "d"], 2),
        d.path(),
        &v,
        &mut quiet(),
    ))
    .unwrap();
    assert_eq!(r.status, Status::Complete);
    let winners: Vec<&str> = r.winners.iter().map(|w| w.team.as_str()).collect();
    assert_eq!(winners, ["b", "c"], "as one at a time would decide");
    assert_eq!(v.max_running.get(), 2);
    let log = v.log.borrow().clone();
    assert_eq!(
        log,
        [
            "start a 0",
            "start b 1",
            "end b",
            "end a",
            "start c 0",
            "end c"
        ],
        "after b reproduced, only one place was open: c waited for a; d never ran"
    );
    let order: Vec<u32> = r.entries.iter().map(|e| e.rank).collect();
    assert_eq!(order, [1, 2, 3], "entries are reported in rank order");
}

#[test]
fn a_host_failure_with_runs_in_flight_lets_them_finish_and_starts_nothing() {
    let d = tempfile::tempdir().unwrap();
    let v = Script::timed(
        2,
        &[
            ("a", InfraError, 50),
            ("b", Reproduced, 200),
            ("c", Reproduced, 10),
        ],
    );
    let r = block(start(
        spec(d.path(), &["a", "b", "c"], 2),
        d.path(),
        &v,
        &mut quiet(),
    ))
    .unwrap();
    assert_eq!(r.status, Status::Interrupted);
    assert_eq!(
        v.verified(),
        ["a", "b"],
        "c is not started after the host failed"
    );
    assert_eq!(r.entries.len(), 1, "b finished and is recorded");
    assert_eq!(r.entries[0].team, "b");
}
