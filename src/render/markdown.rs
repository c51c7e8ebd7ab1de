//! `report.md`: what an organizer pastes into an announcement. Everything in it comes from
//! `report.json`; the run directory and `audit verify` are the proof behind it.

use std::fmt::Write;

use super::controls::neutralize;
use super::svg::plain;
use super::{Facts, md_cell, md_code};
use crate::pipeline::Report;

/// Renders the Markdown report.
pub fn render(report: &Report) -> String {
    let f = Facts::of(report);
    let mut s = String::new();
    let _ = writeln!(s, "# reprobox: {} — {}", report.verdict, md_cell(&f.team));
    s.push('\n');
    if report.dry_run {
        let _ = writeln!(s, "> **Dry run**: {}\n", super::dry_run_note(report));
    }
    let _ = writeln!(
        s,
        "**{}** (decided at `{}`): {}\n",
        report.verdict,
        report.decided_by,
        md_cell(&report.reason)
    );
    s.push_str("| | |\n|---|---|\n");
    for (k, v) in f.rows() {
        let _ = writeln!(s, "| {k} | {} |", md_cell(&v));
    }

    if let Some(c) = &f.comparison {
        s.push_str("\n## Scores\n\n");
        s.push_str(
            "| task | claimed | reproduced | 95 % interval | difference | tolerance | within |\n",
        );
        s.push_str("|---|---:|---:|---|---:|---|---|\n");
        for t in &c.tasks {
            let _ = writeln!(
                s,
                "| {}{} | {} | {} | {} | {} | {} | {} |",
                md_cell(&t.task),
                if c.decided_by.as_deref() == Some(t.task.as_str()) {
                    " (decided)"
                } else {
                    ""
                },
                opt(t.claimed),
                plain(t.reproduced),
                t.interval
                    .map(|[a, b]| format!("[{}, {}]", plain(a), plain(b)))
                    .unwrap_or_else(|| "—".into()),
                opt(t.difference),
                md_cell(&t.tolerance),
                yes_no(t.within),
            );
        }
        if let Some(a) = &c.aggregate {
            let _ = writeln!(
                s,
                "| **aggregate** ({}) | {} | {} | — | — | {} | {} |",
                md_cell(&a.method),
                opt(a.claimed),
                plain(a.reproduced),
                md_cell(&a.tolerance),
                yes_no(a.within),
            );
        }
        if !c.unknown_claims.is_empty() {
            let _ = writeln!(
                s,
                "\nClaims for tasks the policy does not evaluate (not compared): {}.",
                md_cell(&c.unknown_claims.join(", "))
            );
        }
    }

    if let Some(p) = &f.side_by_side {
        let _ = writeln!(
            s,
            "\n## Rebuilt vs submitted model\n\nThe model the team submitted ({}{}), scored in the same run on the same examples.\n",
            md_code(&p.model, false),
            p.digest
                .as_deref()
                .map(|d| format!(", {d}"))
                .unwrap_or_default()
        );
        if let Some(e) = &p.error {
            let _ = writeln!(s, "It could not be scored: {}\n", md_cell(e));
        }
        if !p.tasks.is_empty() {
            s.push_str("| task | rebuilt | submitted | difference | 95 % paired interval | consistent |\n|---|---:|---:|---:|---|---|\n");
            for row in &p.tasks {
                let (task, r, sub, d, i, c) = (
                    &row.task,
                    &row.rebuilt,
                    &row.submitted,
                    &row.difference,
                    &row.interval,
                    &row.consistent,
                );
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    md_cell(task),
                    plain(*r),
                    plain(*sub),
                    plain(*d),
                    i.map(|[a, b]| format!("[{}, {}]", plain(a), plain(b)))
                        .unwrap_or_else(|| "—".into()),
                    match c {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "—",
                    }
                );
            }
        }
    }

    if !report.findings.is_empty() {
        s.push_str("\n## Findings\n\n");
        for x in &report.findings {
            let at = match (&x.path, x.line) {
                (Some(p), Some(l)) => format!(" {}", md_code(&format!("{p}:{l}"), false)),
                (Some(p), None) => format!(" {}", md_code(p, false)),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "- **{}** `{}`{at}: {} (hint: {})",
                x.severity,
                x.kind,
                md_cell(&x.message),
                md_cell(&x.hint)
            );
        }
    }

    if !report.inputs.is_empty() || report.model.is_some() {
        s.push_str("\n## Digests\n\n| what | digest |\n|---|---|\n");
        if let Some(p) = &report.plan {
            let _ = writeln!(s, "| submission tree | `{}` |", p.submission_digest);
        }
        for i in &report.inputs {
            let _ = writeln!(
                s,
                "| {} ({}@{}) | `{}` |",
                md_cell(&i.name),
                md_cell(&i.id),
                md_cell(&i.revision),
                i.digest
            );
        }
        if let Some(img) = &report.image_id {
            let _ = writeln!(s, "| built image | {} |", md_code(img, true));
        }
        if let Some(m) = &report.model {
            let _ = writeln!(
                s,
                "| rebuilt model ({}) | `{}` |",
                md_code(&m.path, true),
                m.digest
            );
        }
    }

    if !f.log_tail.is_empty() {
        s.push_str("\n## Last lines of the training log\n\n```text\n");
        for l in &f.log_tail {
            // A fence inside the log must not end the block, and no escape sequence may act.
            let _ = writeln!(s, "{}", neutralize(l, true).replace("```", "'''"));
        }
        s.push_str("```\n");
    }

    let _ = write!(
        s,
        "\n## Re-check\n\nEvery digest above and the journal chain (head `{}`) are recomputed by this command, run in the directory that holds the run directory {} (`audits/` unless `--out` named another):\n\n```sh\nreprobox audit verify {}\n```\n\nreprobox {} · report format {}\n",
        report.journal_head,
        md_code(&format!("{}/", report.run_id), false),
        // Inside the fence a backslash is literal: only a fence of its own could break out.
        neutralize(&report.run_id, false).replace("```", "'''"),
        report.reprobox_version,
        report.format_version
    );
    s
}

fn opt(v: Option<f64>) -> String {
    v.map(plain).unwrap_or_else(|| "—".into())
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_md_prints_hints_with_their_literal_characters() {
        let report: Report =
            serde_json::from_str(include_str!("../../tests/fixtures/report/gpu/report.json"))
                .unwrap();
        let md = render(&report);
        assert!(
            md.contains("e.g. transformers==4.44.2 --hash=sha256:<64 hex>; see"),
            "{md}"
        );
        // `<` before a letter could open an HTML tag: a backslash, which a renderer drops.
        assert!(
            md.contains("with a lock file \\<uv.lock or requirements.txt with hashes>"),
            "{md}"
        );
        assert!(!md.contains("&lt;") && !md.contains("&gt;"), "{md}");
        // Paths are code spans, where a backslash would be printed: none is added.
        assert!(
            md.contains("`requirements/training-and-evaluation-extras.txt:14`"),
            "{md}"
        );
    }
}
