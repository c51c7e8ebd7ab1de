//! The time series the HTML report charts: GPU utilization and memory and container memory from
//! `telemetry.jsonl`, and the training loss from `logs/train.log` when the training prints one.
//!
//! Both files come from the run (the log from untrusted code): every line that does not parse is
//! skipped, and each series is thinned to at most [`MAX_POINTS`] points so a 24-hour run at one
//! sample a second still makes a small page.

use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};

/// Points kept per series after thinning.
pub const MAX_POINTS: usize = 480;

/// Longest log line looked at for a loss value; longer lines are skipped.
const MAX_LINE: usize = 64 << 10;

/// One series: `(x, y)` in drawing order.
pub type Points = Vec<(f64, f64)>;

/// Everything the charts draw, x in seconds since the first telemetry sample (the loss: the
/// step, or the index of the loss line when the log gives no step).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunSeries {
    pub gpu_utilization_pct: Points,
    pub gpu_memory_bytes: Points,
    pub gpu_memory_total_bytes: Option<f64>,
    pub container_memory_bytes: Points,
    pub container_memory_limit_bytes: Option<f64>,
    pub loss: Points,
    /// Whether the loss x axis is the training step (`true`) or the line index.
    pub loss_by_step: bool,
}

impl RunSeries {
    /// Reads both files; a missing file gives empty series. Container samples are the training
    /// container's (`container`), not the evaluator's or a model server's, which share the file.
    pub fn load(telemetry: &Path, train_log: &Path, container: Option<&str>) -> RunSeries {
        let mut s = RunSeries::default();
        if let Ok(f) = crate::input_file::open(telemetry, "telemetry") {
            s.add_telemetry(BufReader::new(f), container);
        }
        if let Ok(f) = crate::input_file::open(train_log, "log") {
            s.add_log(BufReader::new(f));
        }
        s.thin();
        s
    }

    /// Adds the samples of a `telemetry.jsonl`; with `container`, only that container's.
    pub fn add_telemetry<R: BufRead>(&mut self, reader: R, container: Option<&str>) {
        let mut t0: Option<DateTime<Utc>> = None;
        for line in reader.lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let Some(ts) = v["ts"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
            else {
                continue;
            };
            let t0 = *t0.get_or_insert(ts);
            let x = (ts - t0).num_milliseconds() as f64 / 1000.0;
            match v["source"].as_str() {
                Some("gpu") => {
                    if let Some(u) = v["utilization_gpu_pct"].as_f64() {
                        self.gpu_utilization_pct.push((x, u));
                    }
                    if let Some(m) = v["memory_used_bytes"].as_f64() {
                        self.gpu_memory_bytes.push((x, m));
                    }
                    if let Some(t) = v["memory_total_bytes"].as_f64() {
                        self.gpu_memory_total_bytes = Some(t);
                    }
                }
                Some("container")
                    if container.is_none_or(|c| v["container"].as_str() == Some(c)) =>
                {
                    if let Some(m) = v["memory_bytes"].as_f64() {
                        self.container_memory_bytes.push((x, m));
                    }
                    if let Some(l) = v["memory_limit_bytes"].as_f64() {
                        self.container_memory_limit_bytes = Some(l);
                    }
                }
                _ => {}
            }
        }
    }

    /// Adds the loss values of a training log (`<time> <stream> <text>` lines, or plain text).
    pub fn add_log<R: BufRead>(&mut self, mut reader: R) {
        let mut buf = Vec::new();
        let mut index = 0.0;
        let mut steps = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.len() > MAX_LINE {
                continue;
            }
            let text = String::from_utf8_lossy(&buf);
            if let Some(loss) = find_number_after(&text, "loss") {
                index += 1.0;
                let step = find_number_after(&text, "step").filter(|s| *s >= 0.0);
                steps.push(step);
                self.loss.push((index, loss));
            }
        }
        // The step is the x axis only when every loss line has one and they increase.
        let by_step = !steps.is_empty()
            && steps.iter().all(Option::is_some)
            && steps.windows(2).all(|w| w[0] < w[1]);
        if by_step {
            for (p, s) in self.loss.iter_mut().zip(&steps) {
                p.0 = s.unwrap_or(p.0);
            }
        }
        self.loss_by_step = by_step;
    }

    fn thin(&mut self) {
        for s in [
            &mut self.gpu_utilization_pct,
            &mut self.gpu_memory_bytes,
            &mut self.container_memory_bytes,
        ] {
            *s = thin(s, MAX_POINTS, Keep::Max);
        }
        self.loss = thin(&self.loss, MAX_POINTS, Keep::Mean);
    }
}

/// How a bucket of points becomes one.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// The largest value (peaks matter: memory).
    Max,
    /// The mean (a smoothed curve: loss).
    Mean,
}

/// Thins `points` to at most `max` by merging consecutive buckets of equal size.
pub fn thin(points: &[(f64, f64)], max: usize, keep: Keep) -> Points {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let x = c[c.len() / 2].0;
            let y = match keep {
                Keep::Max => c.iter().map(|p| p.1).fold(f64::MIN, f64::max),
                Keep::Mean => c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64,
            };
            (x, y)
        })
        .collect()
}

/// The first finite number after the word `key` (a whole word, any case: `loss`, `Loss:`,
/// `'loss': 2.3`, `loss=2.3`), skipping quotes, `:`, `=` and blanks in between.
pub fn find_number_after(text: &str, key: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(key) {
        let start = from + pos;
        let end = start + key.len();
        from = end;
        let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if (start > 0 && word_char(bytes[start - 1]))
            || (end < bytes.len() && word_char(bytes[end]))
        {
            continue;
        }
        let rest = &lower[end..];
        let rest = rest.trim_start_matches([' ', '\t', ':', '=', '\'', '"']);
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e')))
            .unwrap_or(rest.len());
        if let Ok(v) = rest[..len].parse::<f64>()
            && v.is_finite()
        {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_values_are_found_in_the_usual_spellings() {
        for (line, want) in [
            ("step 1 loss 2.5", Some(2.5)),
            ("{'loss': 1.25, 'grad_norm': 3.0}", Some(1.25)),
            ("Loss=3e-1", Some(0.3)),
            ("train_loss 9", None),
            ("lossy 1", None),
            ("loss: nan", None),
            ("no numbers here", None),
        ] {
            assert_eq!(find_number_after(line, "loss"), want, "{line}");
        }
    }

    #[test]
    fn the_loss_is_charted_by_step_when_every_line_has_one() {
        let log = "2026-01-01T00:00:00Z stdout step 10 loss 2.0\nnoise\n2026-01-01T00:00:01Z stdout step 20 loss 1.5\n";
        let mut s = RunSeries::default();
        s.add_log(log.as_bytes());
        assert!(s.loss_by_step);
        assert_eq!(s.loss, vec![(10.0, 2.0), (20.0, 1.5)]);

        let mut s = RunSeries::default();
        s.add_log("loss 2\nloss 1\n".as_bytes());
        assert!(!s.loss_by_step);
        assert_eq!(s.loss, vec![(1.0, 2.0), (2.0, 1.0)]);
    }

    #[test]
    fn telemetry_lines_become_series_relative_to_the_first_sample() {
        let t = concat!(
            r#"{"ts":"2026-01-01T00:00:00Z","source":"container","container":"c","cpu_percent":null,"memory_bytes":100,"memory_limit_bytes":1000,"pids":3}"#,
            "\nnot json\n",
            r#"{"ts":"2026-01-01T00:00:02Z","source":"gpu","uuid":"GPU-1","utilization_gpu_pct":50,"memory_used_bytes":7,"memory_total_bytes":8}"#,
            "\n"
        );
        let mut s = RunSeries::default();
        s.add_telemetry(t.as_bytes(), None);
        let mut other = RunSeries::default();
        other.add_telemetry(t.as_bytes(), Some("another"));
        assert!(
            other.container_memory_bytes.is_empty(),
            "another container's samples"
        );
        assert_eq!(s.container_memory_bytes, vec![(0.0, 100.0)]);
        assert_eq!(s.container_memory_limit_bytes, Some(1000.0));
        assert_eq!(s.gpu_utilization_pct, vec![(2.0, 50.0)]);
        assert_eq!(s.gpu_memory_bytes, vec![(2.0, 7.0)]);
        assert_eq!(s.gpu_memory_total_bytes, Some(8.0));
    }

    #[test]
    fn thinning_keeps_peaks_and_bounds_the_length() {
        let pts: Points = (0..10_000).map(|i| (i as f64, (i % 97) as f64)).collect();
        let t = thin(&pts, 100, Keep::Max);
        assert!(t.len() <= 100, "{}", t.len());
        assert!(t.iter().all(|p| p.1 == 96.0));
        assert_eq!(thin(&pts[..5], 100, Keep::Max).len(), 5);
    }
}
