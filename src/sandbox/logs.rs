//! The run log: container stdout and stderr written through to `logs/<stage>.log` as they
//! arrive, in bounded memory.
//!
//! Each Docker chunk (one line, prefixed with Docker's fixed-width RFC 3339 nanosecond time) is
//! written as `<time> <stdout|stderr> <text>`. After `log_cap` bytes one marker line is written
//! and later output is only counted, so a flood fills neither the disk nor the runner's memory.
//! A tail of the last lines is kept in memory for the report. The last timestamp seen lets a
//! resumed runner ask Docker for the rest (`since`) and drop lines it already has.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::SandboxError;
use crate::engine::LogStream;

/// The marker line written once when the cap is reached.
pub const TRUNCATION_MARKER: &str = "[reprobox] log truncated:";

/// What the log held at the end, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogSummary {
    /// Bytes the container wrote to stdout and stderr (including what was dropped after the
    /// cap). Exact when `bytes_seen_exact`: counted on the container's own output from its
    /// start ([`super::output_count`]); otherwise the log API's count, which can miss or repeat
    /// lines once the output outruns Docker's own log rotation (see `docs/sandbox.md`).
    pub bytes_seen: u64,
    /// Whether `bytes_seen` was counted on the container's output from its start (false for a
    /// runner that re-attached after a restart, and for an engine that cannot attach).
    pub bytes_seen_exact: bool,
    /// Bytes written to the log file (prefixes included, marker excluded).
    pub bytes_written: u64,
    /// Chunks (lines) seen.
    pub lines_seen: u64,
    /// Whether the cap was reached.
    pub truncated: bool,
    /// The last lines, oldest first (each without its newline, at most 4 KiB).
    pub tail: Vec<String>,
    /// The timestamp of the last line seen, as Docker wrote it.
    pub last_timestamp: Option<String>,
}

/// The log writer.
pub struct LogSink {
    path: PathBuf,
    file: BufWriter<File>,
    cap: u64,
    tail_lines: usize,
    tail_bytes: usize,
    /// Raw line bodies: a buffer leaving the front is reused at the back, so a flood allocates
    /// nothing per line; text is made (lossy UTF-8) once, in [`LogSink::finish`].
    tail: VecDeque<Vec<u8>>,
    tail_size: usize,
    summary: LogSummary,
    skip_through: Option<String>,
    error: Option<std::io::Error>,
}

/// The longest line kept whole in the tail.
const TAIL_LINE_MAX: usize = 4096;

impl LogSink {
    /// Opens (appending) `path`, which already holds `already_written` bytes from an earlier
    /// runner of the same run (0 for a fresh run); lines at or before `skip_through` are dropped.
    pub fn open(
        path: &Path,
        cap: u64,
        tail_lines: usize,
        tail_bytes: usize,
        skip_through: Option<String>,
    ) -> Result<Self, SandboxError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SandboxError::Write {
                path: parent.to_owned(),
                source,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|source| SandboxError::Write {
                path: path.to_owned(),
                source,
            })?;
        let already = drop_torn_line(&file).map_err(|source| SandboxError::Write {
            path: path.to_owned(),
            source,
        })?;
        let summary = LogSummary {
            bytes_written: already,
            truncated: already >= cap,
            last_timestamp: skip_through.clone(),
            ..LogSummary::default()
        };
        Ok(LogSink {
            path: path.to_owned(),
            file: BufWriter::with_capacity(64 << 10, file),
            cap,
            tail_lines,
            tail_bytes,
            tail: VecDeque::new(),
            tail_size: 0,
            summary,
            skip_through,
            error: None,
        })
    }

    /// Takes one chunk from Docker.
    pub fn push(&mut self, stream: LogStream, chunk: &[u8]) {
        let (ts, text) = split_timestamp(chunk);
        if let (Some(ts), Some(skip)) = (ts, self.skip_through.as_deref()) {
            if ts <= skip.as_bytes() {
                return;
            }
            self.skip_through = None;
        }
        self.summary.lines_seen += 1;
        self.summary.bytes_seen += text.len() as u64;
        if let Some(ts) = ts {
            let last = self.summary.last_timestamp.get_or_insert_with(String::new);
            last.clear();
            last.push_str(&String::from_utf8_lossy(ts));
        }
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        self.keep_tail(body);
        if self.summary.truncated {
            return;
        }
        let stream_name = stream.as_str().as_bytes();
        let ts = ts.unwrap_or(b"-");
        let line_len = (ts.len() + 1 + stream_name.len() + 1 + body.len() + 1) as u64;
        if self.summary.bytes_written + line_len > self.cap {
            self.summary.truncated = true;
            let marker = format!(
                "{TRUNCATION_MARKER} the cap of {} bytes (profile log_cap) was reached; later output is counted, not kept\n",
                self.cap
            );
            self.write(marker.as_bytes());
            return;
        }
        self.write(ts);
        self.write(b" ");
        self.write(stream_name);
        self.write(b" ");
        self.write(body);
        self.write(b"\n");
        self.summary.bytes_written += line_len;
    }

    /// Pushes buffered lines to the file, so a reader (or a resumed runner) sees them.
    pub fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.file.flush()
        {
            self.error = Some(e);
        }
    }

    fn write(&mut self, data: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.file.write_all(data)
        {
            self.error = Some(e);
        }
    }

    fn keep_tail(&mut self, body: &[u8]) {
        if self.tail_lines == 0 {
            return;
        }
        let body = &body[..body.len().min(TAIL_LINE_MAX)];
        let mut line = if self.tail.len() >= self.tail_lines {
            let old = self.tail.pop_front().unwrap_or_default();
            self.tail_size -= old.len();
            old
        } else {
            Vec::new()
        };
        line.clear();
        line.extend_from_slice(body);
        self.tail_size += line.len();
        self.tail.push_back(line);
        while self.tail_size > self.tail_bytes && self.tail.len() > 1 {
            if let Some(old) = self.tail.pop_front() {
                self.tail_size -= old.len();
            }
        }
    }

    /// The newest line seen that is not blank (raw bytes, without its newline; at most 4 KiB),
    /// for a progress line. `None` before the first, or with no tail kept.
    pub fn last_line(&self) -> Option<&[u8]> {
        self.tail
            .iter()
            .rev()
            .map(|l| l.trim_ascii())
            .find(|l| !l.is_empty())
    }

    /// The summary so far.
    pub fn summary(&self) -> &LogSummary {
        &self.summary
    }

    /// Flushes and returns the summary; a write error seen on the way is reported here.
    pub fn finish(mut self) -> Result<LogSummary, SandboxError> {
        let flushed = self
            .file
            .flush()
            .and_then(|()| self.file.get_ref().sync_data());
        if let Some(source) = self.error.take() {
            return Err(SandboxError::Write {
                path: self.path,
                source,
            });
        }
        flushed.map_err(|source| SandboxError::Write {
            path: self.path.clone(),
            source,
        })?;
        let mut summary = self.summary;
        summary.tail = bounded_text(
            self.tail
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            self.tail_lines,
            self.tail_bytes,
        );
        Ok(summary)
    }
}

/// Rebuilds a tail from chunks read again from the daemon (`logs --tail`), keeping the same
/// bounds as the live tail. Used when the live reader fell behind Docker's log rotation, so the
/// report still shows the true end of the output.
pub fn tail_from_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max_lines: usize,
    max_bytes: usize,
) -> Vec<String> {
    bounded_text(
        chunks.into_iter().map(|chunk| {
            let (_, text) = split_timestamp(chunk);
            let body = text.strip_suffix(b"\n").unwrap_or(text);
            String::from_utf8_lossy(&body[..body.len().min(TAIL_LINE_MAX)]).into_owned()
        }),
        max_lines,
        max_bytes,
    )
}

/// The last lines of `lines` within both bounds (the text's bytes: lossy UTF-8 can be longer
/// than the raw bytes it replaced), oldest first.
fn bounded_text(
    lines: impl IntoIterator<Item = String>,
    max_lines: usize,
    max_bytes: usize,
) -> Vec<String> {
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut size = 0usize;
    for line in lines {
        size += line.len();
        tail.push_back(line);
        while tail.len() > max_lines || (size > max_bytes && tail.len() > 1) {
            if let Some(old) = tail.pop_front() {
                size -= old.len();
            }
        }
    }
    tail.into_iter().collect()
}

/// Cuts a line torn by a runner that died mid-write, so appended lines start on a fresh line;
/// returns the length kept. Lines are short (Docker splits at 16 KiB), so the last 64 KiB hold
/// the last newline.
fn drop_torn_line(file: &File) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let start = len.saturating_sub(64 << 10);
    let mut buf = vec![0u8; (len - start) as usize];
    file.read_exact_at(&mut buf, start)?;
    if buf.last() == Some(&b'\n') {
        return Ok(len);
    }
    let keep = buf
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| start + i as u64 + 1)
        .unwrap_or(start);
    file.set_len(keep)?;
    Ok(keep)
}

/// The timestamp of the last complete line of a log written by [`LogSink`], for a resumed
/// runner's `since`. Reads only the file's last 64 KiB.
pub fn last_timestamp_in(path: &Path) -> Result<Option<String>, SandboxError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match crate::input_file::open(path, "log") {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            return Err(SandboxError::Write {
                path: path.to_owned(),
                source: std::io::Error::other(e.to_string()),
            });
        }
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 << 10);
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(start))
        .and_then(|_| f.read_to_end(&mut buf))
        .map_err(|source| SandboxError::Write {
            path: path.to_owned(),
            source,
        })?;
    // Only complete lines count: a torn last line is dropped and will be read again.
    let complete = match buf.iter().rposition(|b| *b == b'\n') {
        Some(end) => &buf[..end],
        None => return Ok(None),
    };
    Ok(complete.split(|b| *b == b'\n').rev().find_map(|line| {
        split_timestamp(line)
            .0
            .map(|ts| String::from_utf8_lossy(ts).into_owned())
    }))
}

/// Splits Docker's `2026-01-02T03:04:05.123456789Z ` prefix from the text.
fn split_timestamp(chunk: &[u8]) -> (Option<&[u8]>, &[u8]) {
    // Fixed-width RFC 3339 with nanoseconds is 30 bytes; accept any prefix up to the first space
    // that looks like a time, so an unusual daemon format still splits.
    let n = chunk.len().min(40);
    if let Some(sp) = chunk[..n].iter().position(|b| *b == b' ') {
        let ts = &chunk[..sp];
        if ts.len() >= 20 && ts[4] == b'-' && ts[10] == b'T' {
            return (Some(ts), &chunk[sp + 1..]);
        }
    }
    (None, chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_with_marker_and_keeps_tail() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("logs/train.log");
        let mut sink = LogSink::open(&path, 200, 3, 1024, None).unwrap();
        for i in 0..20 {
            sink.push(
                LogStream::Stdout,
                format!("2026-01-01T00:00:{i:02}.000000000Z line {i}\n").as_bytes(),
            );
        }
        sink.push(LogStream::Stderr, b"2026-01-01T00:00:59.000000000Z last");
        let s = sink.finish().unwrap();
        assert!(s.truncated);
        assert_eq!(s.lines_seen, 21);
        assert_eq!(s.tail, ["line 18", "line 19", "last"]);
        assert_eq!(
            s.last_timestamp.as_deref(),
            Some("2026-01-01T00:00:59.000000000Z")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("2026-01-01T00:00:00.000000000Z stdout line 0\n"),
            "{text}"
        );
        assert_eq!(text.matches(TRUNCATION_MARKER).count(), 1);
        assert!(text.lines().last().unwrap().starts_with(TRUNCATION_MARKER));
        assert!(s.bytes_written <= 200);
    }

    #[test]
    fn tail_keeps_both_bounds_across_reused_buffers() {
        let d = tempfile::tempdir().unwrap();
        let mut sink = LogSink::open(&d.path().join("t.log"), 1 << 20, 3, 10, None).unwrap();
        for line in ["first line", "a", "bb", "ccc", "dddd"] {
            let mut chunk = b"2026-01-01T00:00:00.000000000Z ".to_vec();
            chunk.extend_from_slice(line.as_bytes());
            sink.push(LogStream::Stdout, &chunk);
        }
        sink.push(
            LogStream::Stdout,
            b"2026-01-01T00:00:01.000000000Z ee\xff\n",
        );
        let s = sink.finish().unwrap();
        // Three lines and ten raw bytes kept ("ccc", "dddd", "ee\xff"); as text the last one is
        // five bytes (U+FFFD is three), so the oldest goes to keep ten bytes of text.
        assert_eq!(s.tail, ["dddd", "ee\u{fffd}"]);
        assert_eq!(s.lines_seen, 6);
    }

    #[test]
    fn resumed_sink_skips_lines_already_seen() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("train.log");
        let mut sink = LogSink::open(
            &path,
            1 << 20,
            10,
            1024,
            Some("2026-01-01T00:00:01.000000000Z".into()),
        )
        .unwrap();
        for i in 0..3 {
            sink.push(
                LogStream::Stdout,
                format!("2026-01-01T00:00:0{i}.000000000Z l{i}\n").as_bytes(),
            );
        }
        let s = sink.finish().unwrap();
        assert_eq!(s.tail, ["l2"]);
    }
}
