//! The progress sinks of the long verbs (`verify`, `resume`, `finalists`, `hash`): a status line
//! rewritten in place on a terminal, a line a minute and one per stage off it, and NDJSON events
//! on stderr with `--format json` (docs/progress.md), so an automated audit can follow a run
//! while stdout keeps the one result document.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use reprobox::pipeline::{Count, CountUnit, EventKind, Progress, ProgressEvent, Tick};
use reprobox::render::controls::{json_escape_controls, neutralize};
use reprobox::units::human_size;

use super::output::Format;

/// The sink for `format` on this process's stderr.
pub(super) fn for_format(format: Format) -> Box<dyn Progress> {
    match format {
        Format::Json => Box::new(JsonProgress::new(std::io::stderr())),
        Format::Text => Box::new(TermProgress::new()),
    }
}

/// `0:04:05`.
fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `1.5 GiB of 3.0 GiB (50 %)`, `3/7 steps`, `120 of 700 examples (17 %)`.
fn count_text(c: &Count) -> String {
    let pct = |done: u64, total: u64| {
        (u128::from(done.min(total)) * 100)
            .checked_div(u128::from(total))
            .map(|p| format!(" ({p} %)"))
            .unwrap_or_default()
    };
    match (c.unit, c.total) {
        (CountUnit::Steps, Some(t)) => format!("step {}/{t}", c.done),
        (CountUnit::Steps, None) => format!("step {}", c.done),
        (CountUnit::Bytes, Some(t)) => format!(
            "{} of {}{}",
            human_size(c.done),
            human_size(t),
            pct(c.done, t)
        ),
        (CountUnit::Bytes, None) => human_size(c.done),
        (CountUnit::Examples, Some(t)) => format!("{} of {t} examples{}", c.done, pct(c.done, t)),
        (CountUnit::Examples, None) => format!("{} examples", c.done),
    }
}

/// The status line of a tick: stage, elapsed / limit, what was counted, the log's volume, the
/// container's memory and the GPU's utilization when sampled, then the detail (the build's
/// instruction, the training log's last line).
pub(super) fn tick_line(t: &Tick<'_>) -> String {
    let mut line = format!("[{}] {}", t.stage, hms(t.elapsed));
    if let Some(l) = t.limit {
        line.push_str(&format!(" / {}", hms(l)));
    }
    line.push_str(" elapsed");
    if let Some(c) = &t.count
        && c.unit != CountUnit::Steps
    {
        line.push_str(&format!(", {}", count_text(c)));
    }
    if t.log_lines > 0 {
        line.push_str(&format!(
            ", log {} line{} ({})",
            t.log_lines,
            if t.log_lines == 1 { "" } else { "s" },
            human_size(t.log_bytes)
        ));
    }
    if let Some(m) = t.memory_bytes {
        line.push_str(&format!(", mem {}", human_size(m)));
    }
    if let Some(u) = t.gpu_utilization_pct {
        line.push_str(&format!(", GPU {u}%"));
    }
    if let Some(d) = t.detail {
        line.push_str(&format!(" | {}", d.trim()));
    }
    line
}

/// Cuts `line` to `width` characters (a wrapped status line could not be rewritten in place).
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_owned();
    }
    let mut s: String = line.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Progress on stderr: a rewritten status line on a terminal, one line per stage otherwise
/// (and a tick line a minute, so a CI log shows a long stage is alive).
pub(super) struct TermProgress {
    tty: bool,
    last_line: Instant,
}

impl TermProgress {
    pub(super) fn new() -> Self {
        TermProgress {
            tty: std::io::stderr().is_terminal(),
            last_line: Instant::now(),
        }
    }

    fn width() -> usize {
        terminal_size::terminal_size_of(std::io::stderr())
            .map(|(w, _)| usize::from(w.0))
            .filter(|w| *w >= 20)
            .unwrap_or(100)
    }
}

impl Progress for TermProgress {
    fn stage(&mut self, stage: &str, detail: &str) {
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(e, "{}", neutralize(&format!("[{stage}] {detail}"), true));
    }

    fn tick(&mut self, tick: &Tick<'_>) {
        // One line: a log line's own newline or control character must not break it.
        let line = neutralize(&tick_line(tick), false).replace(['\n', '\r', '\t'], " ");
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K{}", fit(&line, Self::width() - 1));
            let _ = e.flush();
        } else if self.last_line.elapsed() >= Duration::from_secs(60) {
            self.last_line = Instant::now();
            let _ = writeln!(e, "{line}");
        }
    }

    fn done(&mut self, stage: &str, detail: &str) {
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(
            e,
            "{}",
            neutralize(&format!("[{stage}] done: {detail}"), true)
        );
    }
}

/// NDJSON progress events ([`ProgressEvent`]): every stage and done, and ticks at most one a
/// second per stage (or sooner when the count's step or the detail changed, so a build's steps
/// are all seen).
pub(super) struct JsonProgress<W: Write + Send> {
    out: W,
    last_tick: Option<(Instant, String, Option<u64>)>,
}

impl<W: Write + Send> JsonProgress<W> {
    pub(super) fn new(out: W) -> Self {
        JsonProgress {
            out,
            last_tick: None,
        }
    }

    fn emit(&mut self, kind: EventKind<'_>) {
        let Ok(text) = serde_json::to_string(&ProgressEvent::now(kind)) else {
            return;
        };
        // A closed stderr is not worth failing a run for.
        let _ = writeln!(self.out, "{}", json_escape_controls(&text));
        let _ = self.out.flush();
    }
}

impl<W: Write + Send> Progress for JsonProgress<W> {
    fn stage(&mut self, stage: &str, detail: &str) {
        self.last_tick = None;
        self.emit(EventKind::Stage { stage, detail });
    }

    fn tick(&mut self, tick: &Tick<'_>) {
        let step = tick
            .count
            .filter(|c| c.unit == CountUnit::Steps)
            .map(|c| c.done);
        let due = match &self.last_tick {
            Some((at, stage, last_step)) => {
                at.elapsed() >= Duration::from_secs(1) || stage != tick.stage || *last_step != step
            }
            None => true,
        };
        if due {
            self.last_tick = Some((Instant::now(), tick.stage.to_owned(), step));
            self.emit(EventKind::of_tick(tick));
        }
    }

    fn done(&mut self, stage: &str, detail: &str) {
        self.last_tick = None;
        self.emit(EventKind::Done { stage, detail });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_tick(step: u64) -> Tick<'static> {
        Tick {
            stage: "build",
            elapsed: Duration::from_secs(65),
            limit: Some(Duration::from_secs(1800)),
            count: Some(Count {
                done: step,
                total: Some(7),
                unit: CountUnit::Steps,
            }),
            detail: Some("step 3/7: RUN pip install -r requirements.txt (context 1.5 KiB sent)"),
            ..Tick::default()
        }
    }

    #[test]
    fn status_lines_say_what_each_stage_counts() {
        assert_eq!(
            tick_line(&build_tick(3)),
            "[build] 0:01:05 / 0:30:00 elapsed | step 3/7: RUN pip install -r requirements.txt (context 1.5 KiB sent)"
        );
        let hashing = Tick {
            stage: "inputs",
            elapsed: Duration::from_secs(3),
            count: Some(Count {
                done: 3 << 29,
                total: Some(3 << 30),
                unit: CountUnit::Bytes,
            }),
            detail: Some("staging the inputs: 2 of 9 file(s)"),
            ..Tick::default()
        };
        assert_eq!(
            tick_line(&hashing),
            "[inputs] 0:00:03 elapsed, 1.5 GiB of 3.0 GiB (50 %) | staging the inputs: 2 of 9 file(s)"
        );
        let train = Tick {
            stage: "train",
            elapsed: Duration::from_secs(3_725),
            limit: Some(Duration::from_secs(86_400)),
            log_lines: 1,
            log_bytes: 2048,
            memory_bytes: Some(1 << 30),
            gpu_utilization_pct: Some(97),
            detail: Some("step 40/200 loss 2.31\n"),
            ..Tick::default()
        };
        assert_eq!(
            tick_line(&train),
            "[train] 1:02:05 / 24:00:00 elapsed, log 1 line (2.0 KiB), mem 1.0 GiB, GPU 97% | step 40/200 loss 2.31"
        );
        let eval = Tick {
            stage: "evaluate",
            elapsed: Duration::from_secs(60),
            count: Some(Count {
                done: 120,
                total: Some(700),
                unit: CountUnit::Examples,
            }),
            ..Tick::default()
        };
        assert_eq!(
            tick_line(&eval),
            "[evaluate] 0:01:00 elapsed, 120 of 700 examples (17 %)"
        );
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }

    #[test]
    fn json_events_are_one_line_each_and_ticks_are_throttled() {
        let mut buf = Vec::new();
        {
            let mut p = JsonProgress::new(&mut buf);
            p.stage("build", "building the submission's image");
            p.tick(&build_tick(1));
            // Same step within the second: dropped.
            p.tick(&build_tick(1));
            // A new step is always written.
            p.tick(&build_tick(2));
            p.tick(&Tick {
                detail: Some("evil \u{1b}]0;title\u{7} line"),
                ..build_tick(3)
            });
            p.done("build", "sha256:abc");
        }
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        let events: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["stage", "tick", "tick", "tick", "done"]);
        assert_eq!(events[2]["count"]["done"], 2);
        assert_eq!(events[2]["count"]["unit"], "steps");
        assert_eq!(events[2]["limit_secs"], 1800.0);
        assert!(events.iter().all(|e| e["v"] == 1 && e["ts"].is_string()));
        // The escape sequence is escaped in the JSON text, and decodes back intact.
        assert!(!text.contains('\u{1b}'), "{text}");
        assert_eq!(events[3]["detail"], "evil \u{1b}]0;title\u{7} line");
    }
}
