//! The leaderboard `reprobox finalists` walks down: CSV or JSON, one entry per team with its
//! submission directory and claimed score, in ranking order.
//!
//! CSV (read with the `csv` crate, in one linear pass): a header line naming the columns `team`,
//! `submission` (or `path`) and optionally `score` (or `claimed`) and `rank`; fields may be
//! double-quoted (`""` is a quote inside one); `#` starts a comment line. JSON: an array of
//! objects (or `{"entries": [...]}`) with the same keys. The ranking is `rank` when every entry
//! has one, else the order of the file. A submission path is relative to `--submissions DIR`
//! unless absolute, and must be a directory: a leaderboard is checked whole before anything runs.
//!
//! Every error names the file, the position (a CSV line and field, a JSON line and column, or a
//! JSON entry and field) and what was expected there.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::input_file::{self, Cap, InputFileError};

/// Largest leaderboard read.
pub const MAX_LEADERBOARD_BYTES: u64 = 16 << 20;

/// The leaderboard's cap, as [`input_file`] enforces it.
pub const LEADERBOARD_CAP: Cap = Cap::new(
    "leaderboard",
    MAX_LEADERBOARD_BYTES,
    "a leaderboard lists one line per team; check that the right file is named",
);

/// One team on the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// 1-based position in the ranking.
    pub rank: u32,
    pub team: String,
    /// The submission directory, resolved.
    pub submission: PathBuf,
    /// The score the leaderboard shows, when it gives one.
    pub claimed: Option<f64>,
}

/// A leaderboard as read: its entries in ranking order and the digest of the bytes they came
/// from (read once, so the digest is of exactly what was parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    pub entries: Vec<Entry>,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

/// Where in a leaderboard an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The file as a whole (it is empty, it lists no team).
    File,
    /// A line, and the column when the parser knows it (JSON syntax and type errors).
    Line { line: u64, column: Option<u64> },
    /// A CSV row's field, by its header name.
    Field { line: u64, field: String },
    /// A JSON entry (1-based, in file order) and, when the error is about one, its key.
    Entry {
        entry: usize,
        field: Option<&'static str>,
    },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::File => f.write_str("the file"),
            Position::Line { line, column: None } => write!(f, "line {line}"),
            Position::Line {
                line,
                column: Some(c),
            } => write!(f, "line {line}, column {c}"),
            Position::Field { line, field } => write!(f, "line {line}, field `{field}`"),
            Position::Entry { entry, field: None } => write!(f, "entry {entry}"),
            Position::Entry {
                entry,
                field: Some(k),
            } => write!(f, "entry {entry}, key `{k}`"),
        }
    }
}

/// Why a leaderboard cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LeaderboardError {
    /// The file is missing, not a regular file, or past [`LEADERBOARD_CAP`].
    #[error(transparent)]
    Input(#[from] InputFileError),
    #[error("leaderboard `{}`, {at}: {detail}; expected {expected} (hint: {hint})", path.display())]
    Invalid {
        path: PathBuf,
        at: Position,
        detail: String,
        expected: String,
        hint: &'static str,
    },
}

const CSV_HINT: &str = "a CSV leaderboard starts with a header such as `rank,team,submission,score`; see docs/finalists.md";
const JSON_HINT: &str = r#"a JSON leaderboard is [{"team": .., "submission": .., "score": ..}, ..]; see docs/finalists.md"#;
const DIR_HINT: &str = "submission paths are relative to --submissions DIR";

/// Reads, parses and checks a leaderboard; submissions resolve against `submissions`.
pub fn load(path: &Path, submissions: &Path) -> Result<Leaderboard, LeaderboardError> {
    let bytes = input_file::read(path, LEADERBOARD_CAP)?;
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| matches!(b, b'[' | b'{'));
    let (raw, hint) = if json {
        (parse_json(path, &bytes)?, JSON_HINT)
    } else {
        (parse_csv(path, &bytes)?, CSV_HINT)
    };
    let entries = resolve(path, raw, submissions, hint)?;
    Ok(Leaderboard { entries, sha256 })
}

/// One entry as read, before ranking and path checks.
struct Raw {
    /// Where the entry is: a CSV line, or a JSON entry number.
    at: RawAt,
    rank: Option<u32>,
    team: String,
    submission: String,
    claimed: Option<f64>,
}

#[derive(Clone, Copy)]
enum RawAt {
    CsvLine(u64),
    JsonEntry(usize),
}

impl RawAt {
    /// The position of one of the entry's fields (`csv` names the column, `json` the key).
    fn field(self, csv: &str, json: &'static str) -> Position {
        match self {
            RawAt::CsvLine(line) => Position::Field {
                line,
                field: csv.to_owned(),
            },
            RawAt::JsonEntry(entry) => Position::Entry {
                entry,
                field: Some(json),
            },
        }
    }
}

fn invalid(
    path: &Path,
    at: Position,
    detail: impl Into<String>,
    expected: impl Into<String>,
    hint: &'static str,
) -> LeaderboardError {
    LeaderboardError::Invalid {
        path: path.to_owned(),
        at,
        detail: detail.into(),
        expected: expected.into(),
        hint,
    }
}

fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Vec<Raw>, LeaderboardError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut records = reader.records();
    let csv_error = |e: csv::Error| -> LeaderboardError {
        let line = e.position().map_or(1, csv::Position::line);
        match e.kind() {
            csv::ErrorKind::Utf8 { err, .. } => invalid(
                path,
                Position::Line { line, column: None },
                format!("field {} is not UTF-8 text", err.field() + 1),
                "UTF-8 text",
                CSV_HINT,
            ),
            _ => invalid(
                path,
                Position::Line { line, column: None },
                e.to_string(),
                "a CSV record",
                CSV_HINT,
            ),
        }
    };
    // The header is the first record that is not blank.
    let (hline, header) = loop {
        match records.next() {
            None => {
                return Err(invalid(
                    path,
                    Position::File,
                    "it is empty",
                    "a header line such as `rank,team,submission,score`",
                    CSV_HINT,
                ));
            }
            Some(r) => {
                let r = r.map_err(csv_error)?;
                if !blank(&r) {
                    let line = r.position().map_or(1, csv::Position::line);
                    break (line, r);
                }
            }
        }
    };
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |want: &[&str]| names.iter().position(|h| want.contains(&h.as_str()));
    let (Some(team), Some(sub)) = (col(&["team"]), col(&["submission", "path"])) else {
        return Err(invalid(
            path,
            Position::Line {
                line: hline,
                column: None,
            },
            format!(
                "the header `{}` has no `team` and `submission` columns",
                header.iter().collect::<Vec<_>>().join(",")
            ),
            "a header naming the columns `team` and `submission` (and optionally `score`, `rank`)",
            CSV_HINT,
        ));
    };
    let score = col(&["score", "claimed", "claimed_score"]);
    let rank = col(&["rank"]);
    let mut out = Vec::new();
    for r in records {
        let r = r.map_err(csv_error)?;
        if blank(&r) {
            continue;
        }
        let line = r.position().map_or(hline, csv::Position::line);
        if r.len() != names.len() {
            return Err(invalid(
                path,
                Position::Line { line, column: None },
                format!("{} fields", r.len()),
                format!("{} fields, as the header has", names.len()),
                CSV_HINT,
            ));
        }
        let field = |i: usize| -> Result<&str, LeaderboardError> {
            let v = &r[i];
            if v.contains(['\n', '\r']) {
                return Err(invalid(
                    path,
                    Position::Field {
                        line,
                        field: names[i].clone(),
                    },
                    "the field runs over a line break (is a `\"` not closed?)",
                    "a field on one line",
                    CSV_HINT,
                ));
            }
            Ok(v.trim())
        };
        let number = |i: Option<usize>| -> Result<Option<(f64, &str)>, LeaderboardError> {
            let Some(i) = i else { return Ok(None) };
            let v = field(i)?;
            if v.is_empty() {
                return Ok(None);
            }
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some((x, v))),
                _ => Err(invalid(
                    path,
                    Position::Field {
                        line,
                        field: names[i].clone(),
                    },
                    format!("`{v}` is not a finite number"),
                    "a finite number such as 0.51, or nothing",
                    CSV_HINT,
                )),
            }
        };
        let claimed = number(score)?.map(|(x, _)| x);
        let rank = match number(rank)? {
            Some((r, _)) if whole_rank(r).is_some() => whole_rank(r),
            Some((_, text)) => {
                return Err(invalid(
                    path,
                    Position::Field {
                        line,
                        field: "rank".into(),
                    },
                    format!("`{text}` is not a whole number ≥ 1"),
                    "a rank such as 1, 2, 3",
                    CSV_HINT,
                ));
            }
            None => None,
        };
        out.push(Raw {
            at: RawAt::CsvLine(line),
            rank,
            team: field(team)?.to_owned(),
            submission: field(sub)?.to_owned(),
            claimed,
        });
    }
    Ok(out)
}

/// A record with one empty field: a blank (or whitespace-only) line.
fn blank(r: &csv::StringRecord) -> bool {
    r.len() <= 1 && r.iter().all(|f| f.trim().is_empty())
}

fn whole_rank(r: f64) -> Option<u32> {
    (r >= 1.0 && r.fract() == 0.0 && r <= f64::from(u32::MAX)).then_some(r as u32)
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"an entry object {"team": .., "submission": .., "score": .., "rank": ..}"#
)]
struct JsonEntry {
    #[serde(default, deserialize_with = "json_rank")]
    rank: Option<u32>,
    team: String,
    submission: String,
    #[serde(default, alias = "claimed")]
    score: Option<f64>,
}

/// The entries of a JSON leaderboard, in either accepted shape.
struct JsonBoard(Vec<JsonEntry>);

impl<'de> Deserialize<'de> for JsonBoard {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonBoard, D::Error> {
        d.deserialize_any(BoardVisitor)
    }
}

struct BoardVisitor;

impl<'de> Visitor<'de> for BoardVisitor {
    type Value = JsonBoard;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            r#"a leaderboard: an array of entries [{"team": .., "submission": .., "score": ..}, ..] or an object {"entries": [..]}"#,
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonBoard, A::Error> {
        let mut entries = Vec::new();
        while let Some(e) = seq.next_element()? {
            entries.push(e);
        }
        Ok(JsonBoard(entries))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonBoard, A::Error> {
        let mut entries = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "entries" {
                return Err(de::Error::unknown_field(&key, &["entries"]));
            }
            if entries.is_some() {
                return Err(de::Error::duplicate_field("entries"));
            }
            entries = Some(map.next_value::<Vec<JsonEntry>>()?);
        }
        entries
            .map(JsonBoard)
            .ok_or_else(|| de::Error::missing_field("entries"))
    }
}

/// `rank`: a whole number ≥ 1, said in those words when it is not one.
fn json_rank<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Rank;
    impl Visitor<'_> for Rank {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a rank, a whole number ≥ 1")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u32>, E> {
            u32::try_from(v)
                .ok()
                .filter(|&r| r >= 1)
                .map(Some)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u32>, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<u32>, E> {
            whole_rank(v)
                .map(Some)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Rank)
}

fn parse_json(path: &Path, bytes: &[u8]) -> Result<Vec<Raw>, LeaderboardError> {
    let board: JsonBoard = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's message ends with " at line L column C"; the position is ours to say.
        let text = e.to_string();
        let detail = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(d, _)| d)
            .to_owned();
        let at = if e.line() == 0 {
            Position::File
        } else {
            Position::Line {
                line: e.line() as u64,
                column: Some(e.column() as u64),
            }
        };
        let expected = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "well-formed JSON"
            }
            _ => "entries with the keys `team`, `submission` and optionally `score`, `rank`",
        };
        invalid(path, at, detail, expected, JSON_HINT)
    })?;
    Ok(board
        .0
        .into_iter()
        .enumerate()
        .map(|(i, e)| Raw {
            at: RawAt::JsonEntry(i + 1),
            rank: e.rank,
            team: e.team,
            submission: e.submission,
            claimed: e.score,
        })
        .collect())
}

fn resolve(
    path: &Path,
    raw: Vec<Raw>,
    submissions: &Path,
    hint: &'static str,
) -> Result<Vec<Entry>, LeaderboardError> {
    if raw.is_empty() {
        return Err(invalid(
            path,
            Position::File,
            "it lists no team",
            "at least one entry",
            hint,
        ));
    }
    let ranked = raw.iter().all(|r| r.rank.is_some());
    let mut teams = BTreeSet::new();
    let mut ranks = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let team_at = r.at.field("team", "team");
        let sub_at = r.at.field("submission", "submission");
        if r.team.is_empty() {
            return Err(invalid(
                path,
                team_at,
                "the team is empty",
                "a team name",
                hint,
            ));
        }
        if r.submission.is_empty() {
            return Err(invalid(
                path,
                sub_at,
                "the submission is empty",
                "a submission directory",
                hint,
            ));
        }
        if !teams.insert(r.team.clone()) {
            return Err(invalid(
                path,
                team_at,
                format!("team `{}` is listed twice", r.team),
                "each team once",
                hint,
            ));
        }
        let rank = if ranked {
            r.rank.unwrap_or(0)
        } else {
            u32::try_from(i + 1).unwrap_or(u32::MAX)
        };
        if !ranks.insert(rank) {
            return Err(invalid(
                path,
                r.at.field("rank", "rank"),
                format!("rank {rank} is given twice"),
                "each rank once",
                hint,
            ));
        }
        let p = Path::new(&r.submission);
        let dir = if p.is_absolute() {
            p.to_owned()
        } else {
            submissions.join(p)
        };
        // Absolute, so a campaign resumed from another directory finds the same submissions.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        if !dir.is_dir() {
            return Err(invalid(
                path,
                sub_at,
                format!(
                    "the submission of `{}`, `{}`, is not a directory",
                    r.team,
                    dir.display()
                ),
                "a submission directory",
                DIR_HINT,
            ));
        }
        out.push(Entry {
            rank,
            team: r.team,
            submission: dir,
            claimed: r.claimed,
        });
    }
    out.sort_by_key(|e| e.rank);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        for t in ["a", "b", "c"] {
            std::fs::create_dir(d.path().join(t)).unwrap();
        }
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    fn entries(p: &Path, d: &Path) -> Vec<Entry> {
        load(p, d).unwrap().entries
    }

    #[test]
    fn csv_is_ranked_by_its_rank_column_or_its_order() {
        let (d, p) = board(
            "lb.csv",
            "rank,team,submission,score\n2,\"Bee, Inc\",b,0.5\n1,ants,a,0.7\n",
        );
        let e = entries(&p, d.path());
        assert_eq!(
            e.iter().map(|e| e.team.as_str()).collect::<Vec<_>>(),
            ["ants", "Bee, Inc"]
        );
        assert_eq!(e[0].claimed, Some(0.7));
        assert_eq!(e[1].submission, d.path().join("b"));

        let (d, p) = board("lb.csv", "# a comment\n\nteam,submission\nx,c\n  \ny,a\n");
        let e = entries(&p, d.path());
        assert_eq!(
            (e[0].rank, e[0].team.as_str(), e[0].claimed),
            (1, "x", None)
        );
        assert_eq!(e[1].team, "y");
    }

    #[test]
    fn the_digest_is_of_the_bytes_parsed() {
        let text = "team,submission\nx,a\n";
        let (d, p) = board("lb.csv", text);
        let expect: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(load(&p, d.path()).unwrap().sha256, expect);
    }

    #[test]
    fn json_in_both_shapes() {
        let (d, p) = board(
            "lb.json",
            r#"[{"team": "a", "submission": "a", "score": 1}]"#,
        );
        assert_eq!(entries(&p, d.path())[0].claimed, Some(1.0));
        let (d, p) = board(
            "lb.json",
            r#"{"entries": [{"team": "b", "submission": "b", "rank": 3}]}"#,
        );
        assert_eq!(entries(&p, d.path())[0].rank, 3);
    }

    #[test]
    fn csv_errors_name_the_file_the_line_the_field_and_what_was_expected() {
        for (text, needle) in [
            ("", "the file: it is empty; expected a header line"),
            (
                "name,dir\nx,a\n",
                "line 1: the header `name,dir` has no `team`",
            ),
            (
                "team,submission,score\nx,a,high\n",
                "line 2, field `score`: `high` is not a finite number; expected a finite number",
            ),
            (
                "team,submission,score\nx,a,NaN\n",
                "line 2, field `score`: `NaN` is not a finite number",
            ),
            (
                "team,submission\nx,a\nx,b\n",
                "line 3, field `team`: team `x` is listed twice; expected each team once",
            ),
            (
                "team,submission\nx,missing\n",
                "line 2, field `submission`: the submission of `x`",
            ),
            (
                "team,submission\nx,\"a\n",
                "line 2, field `submission`: the field runs over a line break",
            ),
            (
                "team,submission,rank\nx,a,1\ny,b,1\n",
                "line 3, field `rank`: rank 1 is given twice",
            ),
            (
                "team,submission,rank\nx,a,0\n",
                "line 2, field `rank`: `0` is not a whole number ≥ 1",
            ),
            (
                "team,submission\nx,a,extra\n",
                "line 2: 3 fields; expected 2 fields, as the header has",
            ),
            (
                "team,submission\n,a\n",
                "line 2, field `team`: the team is empty",
            ),
        ] {
            let (d, p) = board("lb.csv", text);
            let e = load(&p, d.path()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains(&p.display().to_string()), "{e}");
            assert!(e.contains("hint:"), "{e}");
        }
        let (d, p) = board("lb.csv", "");
        std::fs::write(&p, b"team,submission\n\xff,a\n").unwrap();
        let e = load(&p, d.path()).unwrap_err().to_string();
        assert!(e.contains("line 2: field 1 is not UTF-8 text"), "{e}");
    }

    #[test]
    fn json_errors_name_the_position_and_what_was_expected_never_a_rust_type() {
        for (text, needle) in [
            (
                r#"{"teams": []}"#,
                "line 1, column 8: unknown field `teams`, expected `entries`",
            ),
            (
                r#""hello""#,
                r#"expected a leaderboard: an array of entries [{"team""#,
            ),
            (
                r#"[{"team": "a", "submission": "a", "extra": 1}]"#,
                "line 1, column 41: unknown field `extra`, expected one of",
            ),
            (
                "[\n  {\"team\": \"a\"}\n]",
                "line 2, column 15: missing field `submission`",
            ),
            (
                r#"[{"team": "a", "submission": "a", "rank": 0}]"#,
                "invalid value: integer `0`, expected a rank, a whole number ≥ 1",
            ),
            (r#"[3]"#, "expected an entry object {\"team\""),
            (r#"[{"team": "a", "#, "line 1, column 15: EOF while parsing"),
            (
                r#"[{"team": "a", "submission": "a"}, {"team": "a", "submission": "b"}]"#,
                "entry 2, key `team`: team `a` is listed twice",
            ),
            (
                "[]",
                "the file: it lists no team; expected at least one entry",
            ),
        ] {
            let (d, p) = board("lb.json", text);
            let e = load(&p, d.path()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains(&p.display().to_string()), "{e}");
            assert!(!e.contains("line 0"), "{e}");
            assert!(
                !e.contains("JsonBoard") && !e.contains("JsonEntry") && !e.contains("u32"),
                "{e}"
            );
            assert!(e.contains("; expected "), "{e}");
        }
    }

    #[test]
    fn a_leaderboard_that_is_not_a_regular_file_is_refused_unread() {
        let d = tempfile::tempdir().unwrap();
        let zero = d.path().join("lb.csv");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = load(&zero, d.path()).unwrap_err().to_string();
        assert!(e.contains("is a character device"), "{e}");
        let e = load(d.path(), d.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }
}
