//! The human reports: `report.md` (what an organizer pastes into an announcement) and
//! `report.html` (one self-contained page with SVG charts). Both are views of `report.json` plus
//! the run's telemetry and training log; they are written after it, carry nothing it does not,
//! and can be made again from the run directory at any time ([`write_human_reports`]).
//!
//! Pure rendering: no Docker, no network, and nothing printed.

pub mod controls;
pub mod html;
pub mod markdown;
pub mod series;
pub mod svg;

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::pipeline::Report;
use crate::rundir::{self, RunDir};
pub use series::RunSeries;

/// Renders `report.md` and `report.html` for `report` into the run directory, each through a
/// temp file and a rename so a crash never leaves half a page.
pub fn write_human_reports(run_dir: &RunDir, report: &Report) -> std::io::Result<()> {
    let series = RunSeries::load(
        &run_dir.telemetry(),
        &run_dir.train_log(),
        report.train.as_ref().map(|t| t.container_id.as_str()),
    );
    write_atomic(
        &run_dir.root().join(rundir::REPORT_MD),
        markdown::render(report).as_bytes(),
    )?;
    write_atomic(
        &run_dir.root().join(rundir::REPORT_HTML),
        html::render(report, &series).as_bytes(),
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Text made safe for one Markdown table cell or line, read literally both as plain text and
/// rendered: no pipe, no newline, no control character ([`controls::neutralize`]), and no HTML.
///
/// CommonMark reads `<` as markup only before an ASCII letter, `/`, `!` or `?` (raw HTML, and
/// autolinks such as `<https://…>`), and `&` only as the start of an entity reference such as
/// `&lt;`. Exactly those get a backslash, so `<64 hex>` and `a & b` stay as they are and
/// `<script>` becomes `\<script>`. Not for code spans, where a backslash is literal: see
/// [`md_code`].
pub fn md_cell(s: &str) -> String {
    let text = controls::neutralize(s, true);
    let mut out = String::with_capacity(text.len() + 8);
    for (i, c) in text.char_indices() {
        let rest = &text[i + c.len_utf8()..];
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' if rest.starts_with(|n: char| n.is_ascii_alphabetic() || "/!?".contains(n)) => {
                out.push_str("\\<")
            }
            '&' if starts_entity(rest) => out.push_str("\\&"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `rest`, the text after an `&`, makes it an entity or character reference:
/// `name;`, `#123;` or `#x1f;`.
fn starts_entity(rest: &str) -> bool {
    let body = rest
        .strip_prefix("#x")
        .or_else(|| rest.strip_prefix("#X"))
        .or_else(|| rest.strip_prefix('#'))
        .unwrap_or(rest);
    let len = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    (1..=32).contains(&len) && body[len..].starts_with(';')
}

/// `s` as a Markdown code span, read literally: a backtick fence longer than any run of
/// backticks inside, no newline, no control character, and (`in_table`) pipes escaped as GFM
/// tables require even inside code.
pub fn md_code(s: &str, in_table: bool) -> String {
    let mut text = controls::neutralize(s, true).replace(['\n', '\r'], " ");
    if in_table {
        text = text.replace('|', "\\|");
    }
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space, which CommonMark strips.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// The memory limit, and why when the host capped it below the policy's.
fn memory_row(l: &crate::pipeline::PlanLimits) -> String {
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    match l.memory {
        Some(m) if m.capped => format!(
            "{} (capped: the policy grants {}, the host has {}, {} kept for it)",
            gib(m.limit_bytes),
            gib(m.requested_bytes),
            gib(m.host_bytes.unwrap_or(0)),
            gib(m.reserve_bytes)
        ),
        _ => gib(l.memory_bytes),
    }
}

/// One task's row of the scores table.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub task: String,
    pub claimed: Option<f64>,
    pub reproduced: f64,
    pub interval: Option<[f64; 2]>,
    pub difference: Option<f64>,
    pub tolerance: String,
    pub within: Option<bool>,
}

/// The aggregate's row.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    pub method: String,
    pub claimed: Option<f64>,
    pub reproduced: f64,
    pub tolerance: String,
    pub within: Option<bool>,
}

/// The comparison as both reports show it (read back from `report.json`'s
/// `evaluation.comparison`).
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonView {
    pub tasks: Vec<TaskRow>,
    pub aggregate: Option<AggregateRow>,
    pub decided_by: Option<String>,
    pub unknown_claims: Vec<String>,
}

impl ComparisonView {
    fn of(v: &Value) -> Option<ComparisonView> {
        let tasks = v["tasks"]
            .as_array()?
            .iter()
            .filter_map(|t| {
                Some(TaskRow {
                    task: t["task"].as_str()?.to_owned(),
                    claimed: t["claimed"].as_f64(),
                    // JSON has no infinity: a null is the subnet's inf (a failed TEXT_LOSS gate),
                    // and the task still gets its row.
                    reproduced: match &t["reproduced"] {
                        Value::Null => f64::INFINITY,
                        r => r.as_f64()?,
                    },
                    interval: t["interval"]
                        .as_array()
                        .and_then(|a| Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?])),
                    difference: t["difference"].as_f64(),
                    tolerance: tolerance(&t["tolerance"]),
                    within: t["within_tolerance"].as_bool(),
                })
            })
            .collect();
        let a = &v["aggregate"];
        let aggregate = a["reproduced"].as_f64().map(|reproduced| AggregateRow {
            method: a["method"].as_str().unwrap_or("?").to_owned(),
            claimed: a["claimed"].as_f64(),
            reproduced,
            tolerance: tolerance(&a["tolerance"]),
            within: a["within_tolerance"].as_bool(),
        });
        Some(ComparisonView {
            tasks,
            aggregate,
            decided_by: v["decided_by"].as_str().map(str::to_owned),
            unknown_claims: v["unknown_claims"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The rebuilt model against the submitted one (report.json `evaluation.side_by_side`).
#[derive(Debug, Clone, PartialEq)]
pub struct SideBySideView {
    /// The submitted model's directory in the submission, and its digest.
    pub model: String,
    pub digest: Option<String>,
    /// Why the submitted model could not be scored, when it could not.
    pub error: Option<String>,
    pub tasks: Vec<PairRow>,
}

/// One task of the side-by-side.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    pub task: String,
    pub rebuilt: f64,
    pub submitted: f64,
    pub difference: f64,
    pub interval: Option<[f64; 2]>,
    pub consistent: Option<bool>,
}

impl SideBySideView {
    fn of(v: &Value) -> Option<SideBySideView> {
        let tasks = v["tasks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| {
                        Some(PairRow {
                            task: t["task"].as_str()?.to_owned(),
                            rebuilt: t["rebuilt"].as_f64()?,
                            submitted: t["submitted"].as_f64()?,
                            difference: t["difference"].as_f64()?,
                            interval: t["interval"]
                                .as_array()
                                .and_then(|i| Some([i.first()?.as_f64()?, i.get(1)?.as_f64()?])),
                            consistent: t["consistent"].as_bool(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(SideBySideView {
            model: v["model"].as_str()?.to_owned(),
            digest: v["digest"].as_str().map(str::to_owned),
            error: v["error"].as_str().map(str::to_owned),
            tasks,
        })
    }
}

fn tolerance(v: &Value) -> String {
    crate::compare::describe_tolerance(crate::policy::Tolerance {
        absolute: v["absolute"].as_f64(),
        relative: v["relative"].as_f64(),
    })
}

/// What both reports say about a run, gathered once.
pub(crate) struct Facts {
    pub team: String,
    pub comparison: Option<ComparisonView>,
    pub side_by_side: Option<SideBySideView>,
    pub log_tail: Vec<String>,
    rows: Vec<(&'static str, String)>,
}

impl Facts {
    pub(crate) fn of(r: &Report) -> Facts {
        let mut rows: Vec<(&'static str, String)> = Vec::new();
        let team = r
            .plan
            .as_ref()
            .map(|p| p.team.clone())
            .unwrap_or_else(|| r.run_id.clone());
        rows.push(("run", r.run_id.clone()));
        if let Some(p) = &r.plan {
            rows.push(("policy / track", format!("{} / {}", p.policy, p.track)));
            rows.push((
                "GPU",
                p.gpu
                    .as_ref()
                    .map(|g| format!("{} ({}, driver {})", g.name, g.uuid, g.driver_version))
                    .unwrap_or_else(|| "none (CPU run)".into()),
            ));
            rows.push((
                "sandbox",
                format!("profile {}, runtime {}", p.sandbox_profile, p.runtime),
            ));
            rows.push(("memory limit", memory_row(&p.limits)));
        }
        if let Some(ms) = r.build_ms {
            let limit = r
                .plan
                .as_ref()
                .map(|p| {
                    format!(
                        " of {}",
                        svg::Unit::Seconds.format(p.limits.build_secs as f64)
                    )
                })
                .unwrap_or_default();
            rows.push(("build", format!("{}{limit}", secs(ms as f64 / 1000.0))));
        }
        let training = r.training.as_ref().unwrap_or(&Value::Null);
        if let Some(status) = training["status"]["status"].as_str() {
            let mut t = status.to_owned();
            if let Some(code) = training["exit_code"].as_i64() {
                t.push_str(&format!(", exit code {code}"));
            }
            if let Some(w) = daemon_wall(training) {
                t.push_str(&format!(", {}", secs(w)));
                if let Some(p) = &r.plan {
                    t.push_str(&format!(
                        " of {} allowed",
                        svg::Unit::Seconds.format(p.limits.train_secs as f64)
                    ));
                }
            }
            if training["oom_killed"].as_bool() == Some(true) {
                t.push_str(", killed for memory");
            }
            if training["log"]["truncated"].as_bool() == Some(true) {
                t.push_str(", log truncated at the cap");
            }
            rows.push(("training", t));
        }
        if let Some(e) = &r.estimate {
            rows.push((
                "full-run estimate",
                format!(
                    "step {} of {} after {}: all steps would take about {}, {} the {} limit",
                    e.steps_done,
                    e.steps_total,
                    secs(e.elapsed_secs),
                    secs(e.projected_secs),
                    if e.fits { "within" } else { "OVER" },
                    svg::Unit::Seconds.format(e.limit_secs as f64)
                ),
            ));
        }
        let eval = r.evaluation.as_ref().unwrap_or(&Value::Null);
        if let Some(img) = eval["image"].as_str() {
            let what = match eval["evaluator"].as_str() {
                Some("native") => "native evaluator",
                _ => "harness image",
            };
            rows.push(("evaluation", format!("{what} {img}")));
        }
        if let Some(m) = &r.model {
            rows.push(("rebuilt model", format!("{} ({} files)", m.digest, m.files)));
        }
        if let Some(s) = &r.started_at {
            rows.push(("started", s.clone()));
        }
        rows.push(("finished", r.finished_at.clone()));
        if r.resumes > 0 {
            rows.push(("resumed", format!("{} time(s)", r.resumes)));
        }
        let log_tail = training["log"]["tail"]
            .as_array()
            .map(|a| {
                let lines: Vec<String> = a
                    .iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect();
                lines[lines.len().saturating_sub(20)..].to_vec()
            })
            .unwrap_or_default();
        Facts {
            team,
            comparison: eval.get("comparison").and_then(ComparisonView::of),
            side_by_side: eval.get("side_by_side").and_then(SideBySideView::of),
            log_tail,
            rows,
        }
    }

    pub(crate) fn rows(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        self.rows.iter().cloned()
    }
}

/// The dry-run banner of report.md and report.html: a rehearsal, with the training budget that
/// applied and the real run's limit, so that a rehearsal never reads as if held to the real clock.
pub(crate) fn dry_run_note(report: &Report) -> String {
    let fmt = |s: u64| svg::Unit::Seconds.format(s as f64);
    let limits = report.plan.as_ref().map(|p| &p.limits);
    let budget = match limits {
        Some(l) => match l.policy_train_secs {
            Some(real) if l.train_secs < real => format!(
                " with a training budget of {} (a real run has {})",
                fmt(l.train_secs),
                fmt(real)
            ),
            _ => format!(" under the full training limit of {}", fmt(l.train_secs)),
        },
        None => String::new(),
    };
    format!("a rehearsal{budget}; it decides nothing about the final ranking.")
}

fn secs(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        svg::Unit::Seconds.format(s)
    }
}

/// The container's wall time by the daemon's clock.
fn daemon_wall(training: &Value) -> Option<f64> {
    let t = |k: &str| {
        training[k]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    };
    let d = (t("finished_at")? - t("started_at")?).num_milliseconds();
    (d >= 0).then_some(d as f64 / 1000.0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_memory_row_says_when_the_host_capped_the_limit() {
        let mut l = crate::pipeline::PlanLimits {
            build_secs: 1,
            train_secs: 1,
            policy_train_secs: None,
            eval_secs: None,
            memory_bytes: 16 << 30,
            memory: None,
            disk_bytes: None,
            max_context_bytes: 1,
        };
        assert_eq!(memory_row(&l), "16.0 GiB");
        l.memory = Some(crate::pipeline::memory::plan_memory(
            128 << 30,
            Some(24 << 30),
        ));
        l.memory_bytes = 21 << 30;
        assert_eq!(
            memory_row(&l),
            "21.0 GiB (capped: the policy grants 128.0 GiB, the host has 24.0 GiB, 3.0 GiB kept for it)"
        );
    }

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{1b}[31mb"), "a\u{fffd}[31mb");
        assert_eq!(md_cell("a|b\nc<script>"), "a\\|b c\\<script>");
        // Only what CommonMark would read as markup is escaped; the rest stays literal.
        for (text, want) in [
            ("a <64 hex> digest", "a <64 hex> digest"),
            ("x < 3 and y > 2", "x < 3 and y > 2"),
            ("</b> <!-- c --> <?php", "\\</b> \\<!-- c --> \\<?php"),
            ("<https://example.com>", "\\<https://example.com>"),
            ("Q&A & more; R&D;x", "Q&A & more; R\\&D;x"),
            ("&lt; &#60; &#x3c; &amp;", "\\&lt; \\&#60; \\&#x3c; \\&amp;"),
            ("a\\<b", "a\\\\\\<b"),
        ] {
            assert_eq!(md_cell(text), want, "{text}");
        }
        assert_eq!(md_code("src/<x>.py", false), "`src/<x>.py`");
        assert_eq!(md_code("a|b", true), "`a\\|b`");
        assert_eq!(md_code("a`b", false), "``a`b``");
        assert_eq!(md_code("`x", false), "`` `x ``");
        assert_eq!(
            md_cell("team\u{1b}]0;x\u{7}\u{202e}"),
            "team\\\\u{1b}]0;x\\\\u{7}\\\\u{202e}",
            "no control character reaches report.md"
        );
    }

    #[test]
    fn the_comparison_is_read_back_from_report_json() {
        let v = serde_json::json!({
            "tasks": [
                {"task": "mmlu", "claimed": 0.9, "reproduced": 0.7, "difference": -0.2,
                 "tolerance": {"absolute": 0.01, "relative": null}, "within_tolerance": false,
                 "interval": [0.4, 0.9], "examples": 10},
                {"task": "gsm", "claimed": null, "reproduced": 0.5, "difference": null,
                 "tolerance": {"absolute": null, "relative": null}, "within_tolerance": null,
                 "interval": null},
                {"task": "FINEWEB", "claimed": 2.5, "reproduced": null, "difference": null,
                 "tolerance": {"absolute": null, "relative": 0.01}, "within_tolerance": false,
                 "interval": null}
            ],
            "aggregate": {"method": "geometric_mean", "claimed": null, "reproduced": 0.6,
                          "tolerance": {"absolute": null, "relative": 0.05}, "within_tolerance": null},
            "unknown_claims": ["extra"],
            "decided_by": "mmlu"
        });
        let c = ComparisonView::of(&v).unwrap();
        assert_eq!(c.tasks.len(), 3);
        assert_eq!(c.tasks[2].reproduced, f64::INFINITY);
        assert_eq!(c.tasks[0].interval, Some([0.4, 0.9]));
        assert_eq!(c.tasks[0].tolerance, "±0.01");
        assert_eq!(c.tasks[1].within, None);
        assert_eq!(c.aggregate.as_ref().unwrap().tolerance, "±5%");
        assert_eq!(c.decided_by.as_deref(), Some("mmlu"));
        assert_eq!(c.unknown_claims, vec!["extra".to_owned()]);
        assert_eq!(ComparisonView::of(&Value::Null), None);
    }
}
