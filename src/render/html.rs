//! `report.html`: one self-contained page (inline CSS and SVG, no script, no external
//! reference, so it opens offline and can be archived as one file).

use std::fmt::Write;

use super::series::RunSeries;
use super::svg::{self, Line, TaskBar, Unit, plain};
use super::{Facts, escape};
use crate::pipeline::Report;
use crate::verdict::Verdict;

/// The banner colour of a verdict: green reproduced, red not reproduced, amber for the
/// submission's own failures, grey for the host's.
pub fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Reproduced => "#1e8449",
        Verdict::NotReproduced => "#c0392b",
        Verdict::InfraError => "#566573",
        _ => "#b9770e",
    }
}

// Tables sit in a `.table` box that scrolls sideways when a table cannot shrink to the page;
// digests, paths and other long tokens (`.wrap`) may break anywhere, so it rarely has to. Charts
// scale down with the page (their viewBox keeps the proportions).
const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1b1b;background:#fafafa}\
main{max-width:980px;margin:0 auto;padding:24px}\
.banner{color:#fff;padding:18px 24px;border-radius:6px;overflow-wrap:anywhere}\
.banner h1{margin:0;font-size:28px;letter-spacing:.5px}\
.banner p{margin:6px 0 0}\
.dry{background:#fff3cd;border:1px solid #e0c36c;padding:8px 12px;border-radius:4px;margin-top:12px}\
.table{max-width:100%;overflow-x:auto;margin:8px 0 16px}\
table{border-collapse:collapse;background:#fff}\
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f0f0f0}\
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.wrap,p code{overflow-wrap:anywhere}\
.nowrap,.kv th{white-space:nowrap}\
#digests th:first-child{width:40%}\
tr.bad td{background:#fdecea}\
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}\
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}\
.charts{display:flex;flex-wrap:wrap;gap:12px}\
svg.chart{background:#fff;border:1px solid #ddd;max-width:100%;height:auto;min-width:0}\
.nodata{color:#666;margin:4px 0}\
svg .title{font-size:13px;font-weight:600}\
svg .tick{font-size:11px;fill:#555}\
svg .legend{font-size:11px}\
svg .grid{stroke:#eee}\
svg .axis{stroke:#888}";

/// Renders the page.
pub fn render(report: &Report, series: &RunSeries) -> String {
    let f = Facts::of(report);
    let mut s = String::with_capacity(64 << 10);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>reprobox: {} — {}</title><style>{STYLE}</style></head><body><main>",
        report.verdict,
        escape(&f.team)
    );
    let _ = write!(
        s,
        "<section class=\"banner\" id=\"verdict\" style=\"background:{}\"><h1>{}</h1><p>{} · decided at <b>{}</b></p><p>{}</p></section>",
        verdict_color(report.verdict),
        report.verdict,
        escape(&f.team),
        escape(&report.decided_by),
        escape(&report.reason)
    );
    if report.dry_run {
        let _ = write!(
            s,
            "<p class=\"dry\"><b>Dry run</b>: {}</p>",
            escape(&super::dry_run_note(report))
        );
    }

    s.push_str("<h2>Run</h2><div class=\"table\"><table class=\"kv\">");
    for (k, v) in f.rows() {
        let _ = write!(
            s,
            "<tr><th>{}</th><td class=\"wrap\">{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
    s.push_str("</table></div>");

    if let Some(c) = &f.comparison {
        s.push_str("<h2>Claimed vs reproduced</h2>");
        let bars: Vec<TaskBar<'_>> = c
            .tasks
            .iter()
            .map(|t| TaskBar {
                task: &t.task,
                claimed: t.claimed,
                reproduced: t.reproduced,
                interval: t.interval,
                ok: t.within,
            })
            .collect();
        match svg::claims_chart("Per task: claimed vs reproduced", &bars) {
            Some(chart) => {
                let _ = write!(s, "<div class=\"charts\">{chart}</div>");
            }
            None => no_data(
                &mut s,
                "Claimed vs reproduced",
                "no scores",
                "no task was scored",
            ),
        }
        s.push_str("<div class=\"table\"><table id=\"scores\"><tr><th>task</th><th>claimed</th><th>reproduced</th><th>95 % interval</th><th>difference</th><th>tolerance</th><th>within</th></tr>");
        for t in &c.tasks {
            let decided = c.decided_by.as_deref() == Some(t.task.as_str());
            let _ = write!(
                s,
                "<tr{}><td class=\"wrap\">{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                if t.within == Some(false) {
                    " class=\"bad\""
                } else {
                    ""
                },
                escape(&t.task),
                if decided { " <b>(decided)</b>" } else { "" },
                opt(t.claimed),
                plain(t.reproduced),
                t.interval
                    .map(|[a, b]| format!("[{}, {}]", plain(a), plain(b)))
                    .unwrap_or_else(|| "—".into()),
                opt(t.difference),
                escape(&t.tolerance),
                yes_no(t.within)
            );
        }
        if let Some(a) = &c.aggregate {
            let _ = write!(
                s,
                "<tr{}><td><b>aggregate</b> ({})</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>—</td><td>—</td><td>{}</td><td>{}</td></tr>",
                if a.within == Some(false) {
                    " class=\"bad\""
                } else {
                    ""
                },
                escape(&a.method),
                opt(a.claimed),
                plain(a.reproduced),
                escape(&a.tolerance),
                yes_no(a.within)
            );
        }
        s.push_str("</table></div>");
    }

    if let Some(p) = &f.side_by_side {
        let _ = write!(
            s,
            "<h2>Rebuilt vs submitted model</h2><p>The model the team submitted (<code>{}</code>{}), scored in the same run on the same examples.</p>",
            escape(&p.model),
            p.digest
                .as_deref()
                .map(|d| format!(", <code>{}</code>", escape(d)))
                .unwrap_or_default()
        );
        if let Some(e) = &p.error {
            let _ = write!(s, "<p>It could not be scored: {}</p>", escape(e));
        }
        if !p.tasks.is_empty() {
            s.push_str("<div class=\"table\"><table id=\"side-by-side\"><tr><th>task</th><th>rebuilt</th><th>submitted</th><th>difference</th><th>95 % paired interval</th><th>consistent</th></tr>");
            for row in &p.tasks {
                let (task, r, sub, d, i, c) = (
                    &row.task,
                    &row.rebuilt,
                    &row.submitted,
                    &row.difference,
                    &row.interval,
                    &row.consistent,
                );
                let _ = write!(
                    s,
                    "<tr{}><td class=\"wrap\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td>{}</td></tr>",
                    if *c == Some(false) {
                        " class=\"bad\""
                    } else {
                        ""
                    },
                    escape(task),
                    plain(*r),
                    plain(*sub),
                    plain(*d),
                    i.map(|[a, b]| format!("[{}, {}]", plain(a), plain(b)))
                        .unwrap_or_else(|| "—".into()),
                    yes_no(*c)
                );
            }
            s.push_str("</table></div>");
        }
    }

    s.push_str("<h2>Resources over the run</h2>");
    let charts = [
        (
            "GPU utilization",
            svg::line_chart(
                "GPU utilization",
                Unit::Seconds,
                Unit::Percent,
                &[Line {
                    label: "GPU %",
                    points: &series.gpu_utilization_pct,
                    color: "#2471a3",
                }],
                Some(100.0),
            ),
            Empty::Gpu,
        ),
        (
            "GPU memory",
            svg::line_chart(
                "GPU memory",
                Unit::Seconds,
                Unit::Bytes,
                &[Line {
                    label: "used",
                    points: &series.gpu_memory_bytes,
                    color: "#7d3c98",
                }],
                series.gpu_memory_total_bytes,
            ),
            Empty::Gpu,
        ),
        (
            "Container memory",
            svg::line_chart(
                "Container memory",
                Unit::Seconds,
                Unit::Bytes,
                &[Line {
                    label: "used",
                    points: &series.container_memory_bytes,
                    color: "#117a65",
                }],
                None,
            ),
            Empty::Container,
        ),
        (
            "Training loss",
            svg::line_chart(
                "Training loss (from the log)",
                Unit::Plain,
                Unit::Plain,
                &[Line {
                    label: if series.loss_by_step {
                        "loss by step"
                    } else {
                        "loss by log line"
                    },
                    points: &series.loss,
                    color: "#ca6f1e",
                }],
                None,
            ),
            Empty::Loss,
        ),
    ];
    if charts.iter().any(|c| c.1.is_some()) {
        s.push_str("<div class=\"charts\">");
        for chart in charts.iter().filter_map(|c| c.1.as_deref()) {
            s.push_str(chart);
        }
        s.push_str("</div>");
    }
    for (title, _, why) in charts.iter().filter(|c| c.1.is_none()) {
        let what = match why {
            Empty::Loss => "no values",
            _ => "no samples",
        };
        no_data(&mut s, title, what, why.reason(report));
    }
    // Against the plan's limit (what the container was given), not what the daemon reports
    // (the host's memory, when a limit above it was asked for); the peak is the cgroup's own
    // counter when the outcome has it, which also holds spikes between samples.
    let limit = report
        .plan
        .as_ref()
        .map(|p| p.limits.memory_bytes as f64)
        .or(series.container_memory_limit_bytes);
    if let Some(limit) = limit {
        let sampled = series
            .container_memory_bytes
            .iter()
            .map(|p| p.1)
            .fold(0.0, f64::max);
        let recorded = report
            .training
            .as_ref()
            .and_then(|t| t["resources"]["peak_memory_bytes"].as_u64())
            .map(|b| b as f64);
        let peak = recorded.unwrap_or(sampled).max(sampled);
        let _ = write!(
            s,
            "<p>Peak container memory {} of the {} limit.</p>",
            escape(&Unit::Bytes.format(peak)),
            escape(&Unit::Bytes.format(limit))
        );
    }

    if !report.findings.is_empty() {
        s.push_str("<h2>Findings</h2><div class=\"table\"><table><tr><th>severity</th><th>kind</th><th>where</th><th>message</th><th>hint</th></tr>");
        for x in &report.findings {
            let at = match (&x.path, x.line) {
                (Some(p), Some(l)) => format!("{p}:{l}"),
                (Some(p), None) => p.clone(),
                _ => String::new(),
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td><code>{}</code></td><td class=\"wrap\"><code>{}</code></td><td class=\"wrap\">{}</td><td class=\"wrap\">{}</td></tr>",
                x.severity,
                x.kind,
                escape(&at),
                escape(&x.message),
                escape(&x.hint)
            );
        }
        s.push_str("</table></div>");
    }

    s.push_str("<h2>Digests</h2><div class=\"table\"><table id=\"digests\"><tr><th>what</th><th>digest</th></tr>");
    if let Some(p) = &report.plan {
        let _ = write!(
            s,
            "<tr><td>submission tree</td><td class=\"wrap\"><code>{}</code></td></tr>",
            p.submission_digest
        );
    }
    for i in &report.inputs {
        let _ = write!(
            s,
            "<tr><td class=\"wrap\">{} ({}@{})</td><td class=\"wrap\"><code>{}</code></td></tr>",
            escape(&i.name),
            escape(&i.id),
            escape(&i.revision),
            i.digest
        );
    }
    if let Some(img) = &report.image_id {
        let _ = write!(
            s,
            "<tr><td>built image</td><td class=\"wrap\"><code>{}</code></td></tr>",
            escape(img)
        );
    }
    if let Some(m) = &report.model {
        let _ = write!(
            s,
            "<tr><td>rebuilt model</td><td class=\"wrap\"><code>{}</code></td></tr>",
            m.digest
        );
    }
    for a in report.artifacts.iter() {
        let _ = write!(
            s,
            "<tr><td class=\"wrap\">{} (<code>{}</code>)</td><td class=\"wrap\"><code>{}</code></td></tr>",
            escape(&a.name),
            escape(&a.path),
            a.digest
        );
    }
    let _ = write!(
        s,
        "<tr><td>journal head</td><td class=\"wrap\"><code>{}</code></td></tr></table></div>",
        report.journal_head
    );

    if !f.log_tail.is_empty() {
        s.push_str("<h2>Last lines of the training log</h2><pre>");
        for l in &f.log_tail {
            s.push_str(&escape(l));
            s.push('\n');
        }
        s.push_str("</pre>");
    }
    let _ = writeln!(
        s,
        "<p>Re-check every digest and the journal chain with <code>reprobox audit verify {}</code>, run in the directory that holds the run directory <code>{}/</code> (<code>audits/</code> unless <code>--out</code> named another). reprobox {} · report format {}</p></main></body></html>",
        escape(&report.run_id),
        escape(&report.run_id),
        escape(&report.reprobox_version),
        escape(&report.format_version)
    );
    s
}

/// Which resource chart is empty, to say why.
#[derive(Clone, Copy)]
enum Empty {
    Gpu,
    Container,
    Loss,
}

impl Empty {
    /// Why the chart has nothing to draw, from what the report says about the run.
    fn reason(self, report: &Report) -> &'static str {
        let started = report.train.is_some();
        match self {
            Empty::Gpu if report.plan.as_ref().is_some_and(|p| p.gpu.is_none()) => {
                "the run had no GPU"
            }
            _ if !started => "the training did not start",
            Empty::Gpu => "telemetry.jsonl has none from the GPU",
            Empty::Container => "telemetry.jsonl has none from the training container",
            Empty::Loss => "the training log printed no loss value",
        }
    }
}

/// The one line that stands for a chart with nothing to draw.
fn no_data(s: &mut String, title: &str, what: &str, why: &str) {
    let _ = write!(
        s,
        "<p class=\"nodata\">{}: {}, {}</p>",
        escape(title),
        escape(what),
        escape(why)
    );
}

fn opt(v: Option<f64>) -> String {
    v.map(plain).unwrap_or_else(|| "—".into())
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "<b>no</b>",
        None => "—",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_report() -> Report {
        serde_json::from_str(include_str!("../../tests/fixtures/report/cpu/report.json")).unwrap()
    }

    #[test]
    fn an_empty_chart_is_one_line_that_says_why() {
        let mut report = cpu_report();
        let empty = RunSeries::default();
        let page = render(&report, &empty);
        assert!(
            page.contains(
                r#"<p class="nodata">GPU utilization: no samples, the run had no GPU</p>"#
            ),
            "{page}"
        );
        assert!(page.contains(
            "<p class=\"nodata\">Container memory: no samples, telemetry.jsonl has none from the training container</p>"
        ));
        assert!(page.contains(
            "<p class=\"nodata\">Training loss: no values, the training log printed no loss value</p>"
        ));
        assert_eq!(page.matches("<svg").count(), 1, "only the claims are drawn");

        // A GPU in the plan, and no sample from it.
        report.plan.as_mut().unwrap().gpu = Some(crate::gpu::GpuInfo {
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: "GPU-1".into(),
            memory_total_bytes: 80 << 30,
            driver_version: "550.54.15".into(),
            cuda_driver_version: None,
        });
        let page = render(&report, &empty);
        assert!(page.contains(
            "<p class=\"nodata\">GPU memory: no samples, telemetry.jsonl has none from the GPU</p>"
        ));

        // Training that never started explains every chart.
        report.train = None;
        let page = render(&report, &empty);
        assert_eq!(
            page.matches("no samples, the training did not start")
                .count(),
            3,
            "{page}"
        );
    }

    #[test]
    fn every_table_sits_in_a_box_that_can_scroll() {
        let page = render(&cpu_report(), &RunSeries::default());
        let tables = page.matches("<table").count();
        assert!(tables >= 4, "{page}");
        assert_eq!(
            page.matches("<div class=\"table\"><table").count(),
            tables,
            "{page}"
        );
        assert!(STYLE.contains(".table{max-width:100%;overflow-x:auto"));
        assert!(STYLE.contains("max-width:100%;height:auto"));
    }
}
