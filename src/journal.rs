//! The run journal: append-only, fsync'd, each line carrying the sha256 of the previous one.
//!
//! `journal.jsonl` holds one JSON object per line, written by [`Journal::append`] with exactly
//! this key order:
//!
//! ```json
//! {"seq":1,"ts":"2026-11-22T23:41:41.123456789Z","prev":"sha256:e3b0…b855","event":"run_started","stage":null,"data":{}}
//! ```
//!
//! - `seq` is the 1-based line number, so a gap names a deleted line and a smaller value a moved one.
//! - `prev` is `sha256:` + the hex SHA-256 of the previous line's bytes without its newline; the
//!   first line's `prev` is [`GENESIS`], the SHA-256 of the empty string. The journal's *head* is
//!   the hash of its last line (or [`GENESIS`] when empty); reports and the verdict statement
//!   record it, which is what catches an edited or removed *last* line, the one change the chain
//!   alone cannot see.
//! - Every append is one `write` of the whole line plus its newline, followed by `fdatasync`; on
//!   creation the directory is fsync'd too. A crash therefore loses at most the line being
//!   written, which then shows as a *torn tail*: a final line without its newline.
//!
//! Opening is strict: [`Journal::open`] and [`verify_chain`] report the first bad line and why.
//! [`Journal::open_for_append`] (used by `resume`) accepts exactly one kind of damage, a torn
//! tail, because a crash mid-write produces it: it truncates the partial bytes, fsyncs, and
//! appends a `journal_repaired` event recording how many bytes were dropped and their sha256, so
//! the repair itself is on the chain. Any other damage is tampering and it refuses to continue.
//! A writer holds an exclusive advisory lock on the file, so two runners cannot interleave lines.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Sha256Digest, bytes_sha256};
use crate::input_file::{self, Cap, InputFileError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The `prev` of the first line: the SHA-256 of the empty string.
pub const GENESIS: Sha256Digest = Sha256Digest([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// The largest journal read: a run appends a few hundred lines of a few hundred bytes each.
pub const MAX_JOURNAL_BYTES: u64 = 256 << 20;

/// The journal's cap, as [`crate::input_file`] enforces it.
pub const JOURNAL_CAP: Cap = Cap::new(
    "journal",
    MAX_JOURNAL_BYTES,
    "a run's journal holds one line per event; this file is not one reprobox wrote",
);

/// The event [`Journal::open_for_append`] records after truncating a torn tail.
pub const REPAIRED_EVENT: &str = "journal_repaired";

/// Why the journal could not be created, read, verified or appended to.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A filesystem operation failed.
    #[error("journal `{path}`: cannot {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The journal is not a regular file (a FIFO, a device, a directory, a symlink loop) or is
    /// past [`JOURNAL_CAP`].
    #[error(transparent)]
    Input(#[from] InputFileError),
    /// `create` found a journal already there.
    #[error(
        "journal `{path}` already exists (hint: use `reprobox resume` to continue that run, or choose a new --out)"
    )]
    AlreadyExists { path: PathBuf },
    /// Another process holds the writer lock.
    #[error(
        "journal `{path}` is locked by another writer (hint: another reprobox is running this run; wait for it or stop it)"
    )]
    Locked { path: PathBuf },
    /// The chain is broken at `line`.
    #[error("journal `{path}` line {line}: {reason}")]
    Broken {
        path: PathBuf,
        line: u64,
        reason: ChainBreak,
    },
    /// The last line has no newline: a crash mid-write (or a truncation).
    #[error(
        "journal `{path}` line {line} is torn ({bytes} bytes without a newline) (hint: `reprobox resume` repairs a torn tail; a finished run must not have one)"
    )]
    TornTail {
        path: PathBuf,
        line: u64,
        bytes: u64,
    },
    /// An event name is not snake_case.
    #[error("journal event name `{event}` is not snake_case (hint: use [a-z][a-z0-9_]*)")]
    BadEventName { event: String },
    /// A stage name is not snake_case.
    #[error("journal stage name `{stage}` is not snake_case (hint: use [a-z][a-z0-9_]*)")]
    BadStageName { stage: String },
    /// An earlier append failed part-way; the file's tail is unknown.
    #[error(
        "journal `{path}` is unusable after a failed append (hint: reopen it with open_for_append, which repairs a torn tail)"
    )]
    Poisoned { path: PathBuf },
}

/// Why a journal line breaks the chain; the line number is carried by [`JournalError::Broken`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainBreak {
    /// The line is not a JSON journal entry (or has unknown fields, or a bad timestamp).
    #[error("unparsable entry: {detail}")]
    Unparsable { detail: String },
    /// `seq` is larger than the line number and no later line carries the expected one.
    #[error("seq gap: expected seq {expected}, found {found} (a line was deleted)")]
    Deleted { expected: u64, found: u64 },
    /// `seq` is larger than the line number and the expected seq appears later (lines were moved).
    #[error("reordered: expected seq {expected}, found {found} (lines were moved)")]
    Reordered { expected: u64, found: u64 },
    /// `seq` is smaller than the line number: a repeated, moved-back or renumbered line.
    #[error(
        "seq out of order: expected seq {expected}, found {found} (a line was duplicated or renumbered)"
    )]
    SeqMismatch { expected: u64, found: u64 },
    /// `prev` is not the hash of the previous line.
    #[error(
        "hash mismatch: `prev` is {found} but the previous line hashes to {expected} (line {previous_line} or this line was changed)"
    )]
    HashMismatch {
        previous_line: u64,
        expected: Sha256Digest,
        found: Sha256Digest,
    },
    /// A byte that cannot appear in a journal line (an empty line, invalid UTF-8, `\r`).
    #[error("malformed line: {detail}")]
    Malformed { detail: String },
}

/// One verified journal entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The 1-based sequence number (equal to the line number).
    pub seq: u64,
    /// When it was appended (UTC).
    pub ts: DateTime<Utc>,
    /// The hash of the previous line.
    pub prev: Sha256Digest,
    /// The snake_case event name.
    pub event: String,
    /// The pipeline stage (`build`, `train`, `eval`…), if any.
    pub stage: Option<String>,
    /// The event's payload.
    pub data: serde_json::Value,
    /// The SHA-256 of this line's bytes (without the newline): the next line's `prev`.
    pub hash: Sha256Digest,
}

/// The head of the chain: the last line's seq and hash (`seq` 0 and [`GENESIS`] when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryHead {
    /// The last seq (0 when empty).
    pub seq: u64,
    /// The last line's hash.
    pub hash: Sha256Digest,
}

/// A torn final line found by [`verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// Its 1-based line number.
    pub line: u64,
    /// How many bytes it has.
    pub bytes: u64,
}

/// The result of [`verify_chain`] on an unbroken chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Complete lines.
    pub lines: u64,
    /// The head of the complete lines.
    pub head: EntryHead,
    /// A torn final line, if any (not an error for [`verify_chain`]; `audit verify` flags it).
    pub torn_tail: Option<TornTail>,
}

/// The on-disk line, in its fixed key order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    seq: u64,
    ts: String,
    prev: Sha256Digest,
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    stage: Option<std::borrow::Cow<'a, str>>,
    data: serde_json::Value,
}

/// An open journal, ready to append.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    head: EntryHead,
    poisoned: bool,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

fn sha256(bytes: &[u8]) -> Sha256Digest {
    bytes_sha256(bytes)
}

fn is_snake(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// Fsyncs a directory so a newly created entry in it survives a crash.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(path, "lock")(e)),
    }
}

impl Journal {
    /// Creates a new, empty journal (and fsyncs its directory). Fails if one exists.
    pub fn create(path: impl AsRef<Path>) -> Result<Journal, JournalError> {
        let path = path.as_ref();
        let file = match OpenOptions::new().append(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(JournalError::AlreadyExists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io(path, "create")(e)),
        };
        lock(&file, path)?;
        file.sync_all().map_err(io(path, "fsync"))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(dir).map_err(io(dir, "fsync the directory of"))?;
        Ok(Journal {
            path: path.to_owned(),
            file,
            head: EntryHead {
                seq: 0,
                hash: GENESIS,
            },
            poisoned: false,
        })
    }

    /// Opens an existing journal, verifying the whole chain; any break, including a torn tail,
    /// is an error naming the line.
    pub fn open(path: impl AsRef<Path>) -> Result<(Journal, Vec<Entry>), JournalError> {
        let path = path.as_ref();
        let (file, _) = input_file::open_with(
            path,
            JOURNAL_CAP.format,
            OpenOptions::new().read(true).append(true),
        )?;
        lock(&file, path)?;
        let (entries, report) = read_locked(&file, path)?;
        if let Some(t) = report.torn_tail {
            return Err(JournalError::TornTail {
                path: path.to_owned(),
                line: t.line,
                bytes: t.bytes,
            });
        }
        Ok((
            Journal {
                path: path.to_owned(),
                file,
                head: report.head,
                poisoned: false,
            },
            entries,
        ))
    }

    /// Opens an existing journal to continue a run. A torn tail is truncated and a
    /// `journal_repaired` event (`{"line", "dropped_bytes", "dropped_sha256"}`) is appended and
    /// returned as the last entry; any other break is refused.
    pub fn open_for_append(path: impl AsRef<Path>) -> Result<(Journal, Vec<Entry>), JournalError> {
        let path = path.as_ref();
        let (file, _) = input_file::open_with(
            path,
            JOURNAL_CAP.format,
            OpenOptions::new().read(true).append(true),
        )?;
        lock(&file, path)?;
        let (mut entries, report) = read_locked(&file, path)?;
        let mut journal = Journal {
            path: path.to_owned(),
            file,
            head: report.head,
            poisoned: false,
        };
        if let Some(torn) = report.torn_tail {
            let bytes = input_file::read(path, JOURNAL_CAP)?;
            let len = bytes.len() as u64;
            let keep = len - torn.bytes;
            let dropped = sha256(&bytes[keep as usize..]);
            journal.file.set_len(keep).map_err(io(path, "truncate"))?;
            journal.file.sync_all().map_err(io(path, "fsync"))?;
            let data = serde_json::json!({
                "line": torn.line,
                "dropped_bytes": torn.bytes,
                "dropped_sha256": dropped,
            });
            journal.append(REPAIRED_EVENT, None, data)?;
            let (reread, _) = read_locked(&journal.file, path)?;
            entries = reread;
        }
        Ok((journal, entries))
    }

    /// Appends one event with a single write and an fdatasync, and returns the new head.
    pub fn append(
        &mut self,
        event: &str,
        stage: Option<&str>,
        data: serde_json::Value,
    ) -> Result<EntryHead, JournalError> {
        self.append_entry(event, stage, data).map(|e| EntryHead {
            seq: e.seq,
            hash: e.hash,
        })
    }

    /// [`Journal::append`], returning the entry as a reader would verify it: a writer that folds
    /// its state entry by entry never reads the file back (the chain was verified once, when the
    /// journal was opened).
    pub fn append_entry(
        &mut self,
        event: &str,
        stage: Option<&str>,
        data: serde_json::Value,
    ) -> Result<Entry, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        if !is_snake(event) {
            return Err(JournalError::BadEventName {
                event: event.to_owned(),
            });
        }
        if let Some(s) = stage
            && !is_snake(s)
        {
            return Err(JournalError::BadStageName {
                stage: s.to_owned(),
            });
        }
        let now = Utc::now();
        let line = Line {
            seq: self.head.seq + 1,
            ts: now.to_rfc3339_opts(SecondsFormat::Nanos, true),
            prev: self.head.hash,
            event: event.into(),
            stage: stage.map(Into::into),
            data,
        };
        // serde_json never writes a raw newline inside a value, so the line stays one line.
        let mut bytes = serde_json::to_vec(&line)
            .map_err(|e| io(&self.path, "serialize an entry for")(std::io::Error::other(e)))?;
        let hash = sha256(&bytes);
        bytes.push(b'\n');
        if let Err(e) = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            self.poisoned = true;
            return Err(io(&self.path, "append to")(e));
        }
        self.head = EntryHead {
            seq: line.seq,
            hash,
        };
        Ok(Entry {
            seq: line.seq,
            ts: now,
            prev: line.prev,
            event: line.event.into_owned(),
            stage: line.stage.map(std::borrow::Cow::into_owned),
            data: line.data,
            hash,
        })
    }

    /// The current head.
    pub fn head(&self) -> EntryHead {
        self.head
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads and verifies a journal without opening it for writing, returning every entry.
/// A torn tail is reported in the [`ChainReport`], not as an error.
pub fn read_verified(path: impl AsRef<Path>) -> Result<(Vec<Entry>, ChainReport), JournalError> {
    let path = path.as_ref();
    let file = input_file::open(path, JOURNAL_CAP.format)?;
    read_locked(&file, path)
}

/// Verifies the chain of the journal at `path`: the first bad line and why, or a summary.
pub fn verify_chain(path: impl AsRef<Path>) -> Result<ChainReport, JournalError> {
    read_verified(path).map(|(_, report)| report)
}

fn read_locked(file: &File, path: &Path) -> Result<(Vec<Entry>, ChainReport), JournalError> {
    let mut bytes = Vec::new();
    let mut f = file;
    std::io::Seek::rewind(&mut f).map_err(io(path, "seek"))?;
    // One byte past the cap tells a journal at the cap from one past it.
    f.take(MAX_JOURNAL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path, "read"))?;
    if bytes.len() as u64 > MAX_JOURNAL_BYTES {
        return Err(InputFileError::TooLarge {
            path: path.to_owned(),
            format: JOURNAL_CAP.format,
            max_bytes: MAX_JOURNAL_BYTES,
            hint: JOURNAL_CAP.hint,
        }
        .into());
    }
    verify_bytes(&bytes).map_err(|(line, reason)| JournalError::Broken {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Pulls just `seq` out of a line, for telling a reorder from a deletion.
fn peek_seq(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

fn verify_bytes(bytes: &[u8]) -> Result<(Vec<Entry>, ChainReport), (u64, ChainBreak)> {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `split` yields a final empty piece when the file ends with a newline; anything else in
    // that position is a torn tail.
    let tail = lines.pop().unwrap_or_default();
    let torn_tail = (!tail.is_empty()).then(|| TornTail {
        line: lines.len() as u64 + 1,
        bytes: tail.len() as u64,
    });
    let mut entries = Vec::with_capacity(lines.len());
    let mut prev = GENESIS;
    for (i, raw) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        if raw.is_empty() {
            return Err((
                n,
                ChainBreak::Malformed {
                    detail: "empty line".into(),
                },
            ));
        }
        if raw.contains(&b'\r') {
            return Err((
                n,
                ChainBreak::Malformed {
                    detail: "carriage return in line".into(),
                },
            ));
        }
        let parsed: Line<'_> = serde_json::from_slice(raw).map_err(|e| {
            (
                n,
                ChainBreak::Unparsable {
                    detail: e.to_string(),
                },
            )
        })?;
        if parsed.seq != n {
            // A smaller seq is a repeat or a renumbering; a larger one is a move when the
            // expected seq still shows up later, a deletion when it never does.
            let reason = if parsed.seq < n {
                ChainBreak::SeqMismatch {
                    expected: n,
                    found: parsed.seq,
                }
            } else if lines[i + 1..].iter().any(|l| peek_seq(l) == Some(n)) {
                ChainBreak::Reordered {
                    expected: n,
                    found: parsed.seq,
                }
            } else {
                ChainBreak::Deleted {
                    expected: n,
                    found: parsed.seq,
                }
            };
            return Err((n, reason));
        }
        if parsed.prev != prev {
            return Err((
                n,
                ChainBreak::HashMismatch {
                    previous_line: n - 1,
                    expected: prev,
                    found: parsed.prev,
                },
            ));
        }
        let ts = DateTime::parse_from_rfc3339(&parsed.ts)
            .map_err(|e| {
                (
                    n,
                    ChainBreak::Unparsable {
                        detail: format!("ts `{}`: {e}", parsed.ts),
                    },
                )
            })?
            .with_timezone(&Utc);
        if !is_snake(&parsed.event) {
            return Err((
                n,
                ChainBreak::Unparsable {
                    detail: format!("event `{}` is not snake_case", parsed.event),
                },
            ));
        }
        let hash = sha256(raw);
        entries.push(Entry {
            seq: n,
            ts,
            prev,
            event: parsed.event.into_owned(),
            stage: parsed.stage.map(|s| s.into_owned()),
            data: parsed.data,
            hash,
        });
        prev = hash;
    }
    let report = ChainReport {
        lines: entries.len() as u64,
        head: EntryHead {
            seq: entries.len() as u64,
            hash: prev,
        },
        torn_tail,
    };
    Ok((entries, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(dir: &Path) -> PathBuf {
        let p = dir.join("journal.jsonl");
        let mut j = Journal::create(&p).unwrap();
        j.append("run_started", None, json!({"run_id": "r1"}))
            .unwrap();
        j.append("stage_started", Some("build"), json!({})).unwrap();
        j.append("stage_finished", Some("build"), json!({"ok": true}))
            .unwrap();
        j.append("run_finished", None, json!({"verdict": "REPRODUCED"}))
            .unwrap();
        p
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(p: &Path, l: &[String]) {
        std::fs::write(p, l.join("\n") + "\n").unwrap();
    }

    fn broken(p: &Path) -> (u64, ChainBreak) {
        match verify_chain(p) {
            Err(JournalError::Broken { line, reason, .. }) => (line, reason),
            other => panic!("expected a break, got {other:?}"),
        }
    }

    #[test]
    fn genesis_is_sha256_of_empty() {
        assert_eq!(GENESIS, sha256(b""));
    }

    #[test]
    fn chain_round_trips_and_head_matches_last_line() {
        let t = tempfile::tempdir().unwrap();
        let p = sample(t.path());
        let r = verify_chain(&p).unwrap();
        assert_eq!(r.lines, 4);
        let last = lines(&p).pop().unwrap();
        assert_eq!(r.head.hash, sha256(last.as_bytes()));
        let (mut j, entries) = Journal::open(&p).unwrap();
        assert_eq!(entries[1].stage.as_deref(), Some("build"));
        assert_eq!(entries[0].prev, GENESIS);
        assert!(lines(&p)[0].starts_with(r#"{"seq":1,"ts":""#));
        let h = j.append("extra", None, json!(null)).unwrap();
        assert_eq!(h.seq, 5);
        assert_eq!(verify_chain(&p).unwrap().head, h);
    }

    #[test]
    fn second_writer_is_locked_out() {
        let t = tempfile::tempdir().unwrap();
        let p = sample(t.path());
        let _first = Journal::open(&p).unwrap();
        assert!(matches!(
            Journal::open_for_append(&p),
            Err(JournalError::Locked { .. })
        ));
        assert!(matches!(
            Journal::create(&p),
            Err(JournalError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn edited_line_is_named_by_the_next_lines_prev() {
        let t = tempfile::tempdir().unwrap();
        let p = sample(t.path());
        let mut l = lines(&p);
        l[1] = l[1].replace("build", "buile");
        write_lines(&p, &l);
        let (line, reason) = broken(&p);
        assert_eq!(line, 3);
        assert!(
            matches!(
                reason,
                ChainBreak::HashMismatch {
                    previous_line: 2,
                    ..
                }
            ),
            "{reason:?}"
        );
    }

    #[test]
    fn deleted_and_reordered_lines_are_told_apart() {
        let t = tempfile::tempdir().unwrap();
        let p = sample(t.path());
        let orig = lines(&p);
        let mut l = orig.clone();
        l.remove(1);
        write_lines(&p, &l);
        assert_eq!(
            broken(&p),
            (
                2,
                ChainBreak::Deleted {
                    expected: 2,
                    found: 3
                }
            )
        );
        let mut l = orig.clone();
        l.swap(1, 2);
        write_lines(&p, &l);
        assert_eq!(
            broken(&p),
            (
                2,
                ChainBreak::Reordered {
                    expected: 2,
                    found: 3
                }
            )
        );
        let mut l = orig.clone();
        l.insert(2, orig[1].clone());
        write_lines(&p, &l);
        assert!(matches!(
            broken(&p),
            (
                3,
                ChainBreak::SeqMismatch {
                    expected: 3,
                    found: 2
                }
            )
        ));
        let mut l = orig;
        l[0] = "not json".into();
        write_lines(&p, &l);
        assert!(matches!(broken(&p), (1, ChainBreak::Unparsable { .. })));
    }

    #[test]
    fn torn_tail_is_reported_refused_by_open_and_repaired_by_open_for_append() {
        let t = tempfile::tempdir().unwrap();
        let p = sample(t.path());
        let before = verify_chain(&p).unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"seq":5,"ts":"2026-"#).unwrap();
        drop(f);
        let r = verify_chain(&p).unwrap();
        assert_eq!(r.torn_tail, Some(TornTail { line: 5, bytes: 20 }));
        assert_eq!(r.head, before.head);
        assert!(matches!(
            Journal::open(&p),
            Err(JournalError::TornTail { line: 5, .. })
        ));
        let (mut j, entries) = Journal::open_for_append(&p).unwrap();
        let last = entries.last().unwrap();
        assert_eq!(last.event, REPAIRED_EVENT);
        assert_eq!(last.data["dropped_bytes"], 20);
        assert_eq!(last.prev, before.head.hash);
        j.append("resumed", None, json!({})).unwrap();
        let r = verify_chain(&p).unwrap();
        assert_eq!((r.lines, r.torn_tail), (6, None));
    }

    #[test]
    fn open_for_append_refuses_tampering() {
        let t = tempfile::tempdir().unwrap();
        let p = sample(t.path());
        let mut l = lines(&p);
        l.remove(0);
        write_lines(&p, &l);
        assert!(matches!(
            Journal::open_for_append(&p),
            Err(JournalError::Broken { line: 1, .. })
        ));
    }

    #[test]
    fn bad_names_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let mut j = Journal::create(t.path().join("j.jsonl")).unwrap();
        assert!(j.append("Run", None, json!({})).is_err());
        assert!(j.append("run", Some("Train"), json!({})).is_err());
        assert_eq!(j.head().seq, 0);
    }
}
