//! Whether a full run fits the real wall clock, estimated from a dry run's training log.
//!
//! A dry run trains under a short budget; when the training prints its progress (`step 120/2000`,
//! `step 120 of 2000`, or a tqdm bar `| 120/2000 [`), the rate it reached tells how long all the
//! steps would take. The estimate is linear in the steps (start-up time included, so it leans
//! long), and only as honest as the log: a submission that prints no total gets no estimate.

use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest log line looked at.
const MAX_LINE: usize = 64 << 10;

/// The projection, as `report.json` `estimate` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FitEstimate {
    /// The last progress the log showed.
    pub steps_done: u64,
    pub steps_total: u64,
    /// Seconds from the container's start to that line.
    pub elapsed_secs: f64,
    /// `elapsed × total / done`.
    pub projected_secs: f64,
    /// The policy's full training wall clock (not the dry run's budget).
    pub limit_secs: u64,
    pub fits: bool,
}

/// Steps done and total in one line of text, when it shows progress.
pub fn progress_in(text: &str) -> Option<(u64, u64)> {
    let lower = text.to_ascii_lowercase();
    // tqdm: `| 45/100 [00:10<00:12, ...]`
    if let Some(bar) = lower.rfind('|') {
        let rest = lower[bar + 1..].trim_start();
        if let Some(br) = rest.find('[')
            && let Some(p) = fraction(rest[..br].trim(), "/")
        {
            return Some(p);
        }
    }
    let mut from = 0;
    while let Some(i) = lower[from..].find("step") {
        let start = from + i;
        from = start + 4;
        if start > 0 && lower.as_bytes()[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = lower[from..].trim_start_matches('s');
        let rest = rest.trim_start_matches([' ', '\t', ':', '=', '[', '#']);
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '/' || c == ' ' || "of".contains(c)))
            .unwrap_or(rest.len());
        let span = rest[..end].trim();
        if let Some(p) = fraction(span, "/").or_else(|| fraction(span, " of ")) {
            return Some(p);
        }
    }
    None
}

fn fraction(s: &str, sep: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(sep)?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = b.trim().split(' ').next()?.parse().ok()?;
    (b > 0 && a <= b && a > 0).then_some((a, b))
}

/// The estimate from a run log (`<RFC 3339 time> <stream> <text>` lines) and the container's
/// start time; `None` when no line shows progress with a timestamp.
pub fn from_log(log: &Path, started: DateTime<Utc>, limit_secs: u64) -> Option<FitEstimate> {
    let mut reader = BufReader::new(crate::input_file::open(log, "log").ok()?);
    let mut buf = Vec::new();
    let mut last: Option<(u64, u64, DateTime<Utc>)> = None;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.len() > MAX_LINE {
            continue;
        }
        let line = String::from_utf8_lossy(&buf);
        let Some((ts, text)) = line.split_once(' ') else {
            continue;
        };
        let Ok(ts) = DateTime::parse_from_rfc3339(ts) else {
            continue;
        };
        if let Some((done, total)) = progress_in(text) {
            last = Some((done, total, ts.with_timezone(&Utc)));
        }
    }
    let (done, total, at) = last?;
    let elapsed = ((at - started).num_milliseconds() as f64 / 1000.0).max(0.0);
    let projected = elapsed * total as f64 / done as f64;
    Some(FitEstimate {
        steps_done: done,
        steps_total: total,
        elapsed_secs: elapsed,
        projected_secs: projected,
        limit_secs,
        fits: projected <= limit_secs as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_read_in_the_usual_forms() {
        for (line, want) in [
            ("step 120/2000 loss 2.1", Some((120, 2000))),
            ("Step: 3 of 10", Some((3, 10))),
            ("[step 7/7]", Some((7, 7))),
            ("steps 5 / 50", Some((5, 50))),
            (
                " 45%|████▌     | 45/100 [00:10<00:12,  4.50it/s]",
                Some((45, 100)),
            ),
            ("step 1 loss 2.5", None),
            ("date 2026/11/29", None),
            ("step 0/10", None),
            ("step 11/10", None),
            ("laststep 3/4", None),
        ] {
            assert_eq!(progress_in(line), want, "{line}");
        }
    }

    #[test]
    fn the_last_progress_line_projects_the_whole_run() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("train.log");
        std::fs::write(
            &log,
            "2026-01-01T00:00:10.000000000Z stdout step 10/1000\n\
             2026-01-01T00:00:20.000000000Z stdout step 20/1000\n\
             2026-01-01T00:00:21.000000000Z stderr warning\n",
        )
        .unwrap();
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = from_log(&log, start, 1500).unwrap();
        assert_eq!((e.steps_done, e.steps_total), (20, 1000));
        assert_eq!(e.elapsed_secs, 20.0);
        assert_eq!(e.projected_secs, 1000.0);
        assert!(e.fits);
        assert!(!from_log(&log, start, 999).unwrap().fits);
        std::fs::write(&log, "2026-01-01T00:00:10Z stdout no progress here\n").unwrap();
        assert_eq!(from_log(&log, start, 10), None);
        assert_eq!(from_log(&d.path().join("absent"), start, 10), None);
    }
}
