//! `campaign.json` and `campaign.md`: where a campaign stands, every entry's result, and every
//! transition with its reason (the journal, in words). Rewritten atomically after each
//! transition, so a crash leaves the last complete version.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{
    CampaignError, CampaignResult, CampaignSpec, FORMAT_VERSION, Outcome, SUMMARY_JSON, SUMMARY_MD,
    Status,
};
use crate::digest::Sha256Digest;
use crate::journal::Entry as JournalEntry;
use crate::render::md_cell;

#[derive(Serialize)]
struct Summary<'a> {
    format_version: &'static str,
    reprobox_version: &'static str,
    policy: &'a str,
    track: &'a str,
    top: u32,
    leaderboard: &'a Path,
    leaderboard_sha256: &'a str,
    #[serde(flatten)]
    result: &'a CampaignResult,
    /// Leaderboard entries never reached (the campaign ended before them).
    not_reached: Vec<&'a str>,
    transitions: Vec<Transition<'a>>,
    journal_head: Sha256Digest,
}

#[derive(Serialize)]
struct Transition<'a> {
    seq: u64,
    ts: String,
    event: &'a str,
    data: &'a serde_json::Value,
}

pub(super) fn write(
    dir: &Path,
    spec: &CampaignSpec,
    result: &CampaignResult,
    journal: &[JournalEntry],
    head: Sha256Digest,
) -> Result<(), CampaignError> {
    let not_reached: Vec<&str> = spec
        .entries
        .iter()
        .filter(|e| !result.entries.iter().any(|d| d.rank == e.rank))
        .map(|e| e.team.as_str())
        .collect();
    let summary = Summary {
        format_version: FORMAT_VERSION,
        reprobox_version: crate::VERSION,
        policy: &spec.policy,
        track: &spec.track,
        top: spec.top,
        leaderboard: &spec.leaderboard,
        leaderboard_sha256: &spec.leaderboard_sha256,
        result,
        not_reached,
        transitions: journal
            .iter()
            .map(|e| Transition {
                seq: e.seq,
                ts: e.ts.to_rfc3339(),
                event: &e.event,
                data: &e.data,
            })
            .collect(),
        journal_head: head,
    };
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| CampaignError::State {
        path: dir.join(SUMMARY_JSON),
        detail: e.to_string(),
    })?;
    atomic(&dir.join(SUMMARY_JSON), &json)?;
    atomic(
        &dir.join(SUMMARY_MD),
        markdown(spec, result, journal).as_bytes(),
    )
}

fn atomic(path: &Path, bytes: &[u8]) -> Result<(), CampaignError> {
    let err = |source| CampaignError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.write_all(b"\n").map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn markdown(spec: &CampaignSpec, r: &CampaignResult, journal: &[JournalEntry]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Finalists: {} / {}\n",
        md_cell(&spec.policy),
        md_cell(&spec.track)
    );
    let status = match r.status {
        Status::Complete => format!(
            "**complete**: {} of {} places reproduced",
            r.winners.len(),
            spec.top
        ),
        Status::Exhausted if r.winners.is_empty() => {
            "**no winner**: the leaderboard ended and no entry was reproduced".to_owned()
        }
        Status::Exhausted => format!(
            "**leaderboard exhausted**: {} of {} places reproduced",
            r.winners.len(),
            spec.top
        ),
        Status::Interrupted => format!(
            "**interrupted** by the host ({}); continue with `reprobox finalists --resume {}`",
            md_cell(r.interruption.as_deref().unwrap_or("")),
            r.dir.display()
        ),
        Status::InProgress => "**in progress**".to_owned(),
    };
    let _ = writeln!(s, "{status}.\n");
    if !r.winners.is_empty() {
        s.push_str("## Reproduced\n\n| place | rank | team | run |\n|---:|---:|---|---|\n");
        for (i, w) in r.winners.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                i + 1,
                w.rank,
                md_cell(&w.team),
                w.run_dir
                    .as_ref()
                    .map(|p| format!("`{}`", p.display()))
                    .unwrap_or_default()
            );
        }
        s.push('\n');
    }
    s.push_str("## Leaderboard\n\n| rank | team | claimed | result | verdict | reason |\n|---:|---|---:|---|---|---|\n");
    for e in &spec.entries {
        let d = r.entries.iter().find(|d| d.rank == e.rank);
        let (result, verdict, reason) = match d {
            Some(d) => (
                match d.outcome {
                    Outcome::Accepted => "accepted",
                    Outcome::Replaced => "replaced",
                },
                d.verdict.map(|v| v.as_str()).unwrap_or("—"),
                md_cell(&d.reason),
            ),
            None => ("not reached", "—", String::new()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {result} | {verdict} | {reason} |",
            e.rank,
            md_cell(&e.team),
            e.claimed
                .map(crate::render::svg::plain)
                .unwrap_or_else(|| "—".into()),
        );
    }
    s.push_str("\n## Transitions\n\n");
    for e in journal {
        let what = match e.event.as_str() {
            "campaign_started" => "campaign started".to_owned(),
            "campaign_resumed" => "campaign resumed".to_owned(),
            "campaign_finished" => format!(
                "campaign finished ({})",
                e.data["status"].as_str().unwrap_or("?")
            ),
            "campaign_interrupted" => format!(
                "interrupted at #{} {}: {}",
                e.data["rank"],
                e.data["team"].as_str().unwrap_or("?"),
                e.data["reason"].as_str().unwrap_or("")
            ),
            "entry_started" => format!(
                "#{} {} started",
                e.data["rank"],
                e.data["team"].as_str().unwrap_or("?")
            ),
            "entry_resumed" => format!(
                "#{} {} resumed",
                e.data["rank"],
                e.data["team"].as_str().unwrap_or("?")
            ),
            "entry_finished" => format!(
                "#{} {} {} ({}): {}",
                e.data["rank"],
                e.data["team"].as_str().unwrap_or("?"),
                e.data["outcome"].as_str().unwrap_or("?"),
                e.data["verdict"].as_str().unwrap_or("no run"),
                e.data["reason"].as_str().unwrap_or("")
            ),
            other => other.to_owned(),
        };
        let _ = writeln!(
            s,
            "{}. {} — {}",
            e.seq,
            e.ts.format("%Y-%m-%d %H:%M:%SZ"),
            md_cell(&what)
        );
    }
    let _ = write!(
        s,
        "\nLeaderboard `{}` (sha256 {}); every run directory above re-checks with `reprobox audit verify`.",
        spec.leaderboard.display(),
        spec.leaderboard_sha256
    );
    s
}
