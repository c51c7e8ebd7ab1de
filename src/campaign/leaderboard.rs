//! The leaderboard `reprobox finalists` walks down: CSV or JSON, one entry per team with its
//! submission directory and claimed score, in ranking order.
//!
//! CSV: a header line naming the columns `team`, `submission` and `score` (or `claimed`), and
//! optionally `rank`; fields may be double-quoted (`""` is a quote inside one). JSON: an array of
//! objects (or `{"entries": [...]}`) with the same keys. The ranking is `rank` when every entry
//! has one, else the order of the file. A submission path is relative to `--submissions DIR`
//! unless absolute, and must be a directory: a leaderboard is checked whole before anything runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest leaderboard read.
pub const MAX_LEADERBOARD_BYTES: u64 = 16 << 20;

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

/// Why a leaderboard cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LeaderboardError {
    #[error("cannot read the leaderboard `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}`{}: {detail} (hint: {hint})", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        detail: String,
        hint: &'static str,
    },
}

const CSV_HINT: &str = "a CSV leaderboard starts with a header such as `rank,team,submission,score`; see docs/finalists.md";
const JSON_HINT: &str = r#"a JSON leaderboard is [{"team": .., "submission": .., "score": ..}, ..]; see docs/finalists.md"#;

/// Reads, parses and checks a leaderboard; submissions resolve against `submissions`.
pub fn load(path: &Path, submissions: &Path) -> Result<Vec<Entry>, LeaderboardError> {
    let read = |source| LeaderboardError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_LEADERBOARD_BYTES {
        return Err(invalid(
            path,
            None,
            format!(
                "it is {} bytes, more than the {MAX_LEADERBOARD_BYTES}-byte limit",
                meta.len()
            ),
            CSV_HINT,
        ));
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with(['[', '{']);
    let raw = if json {
        parse_json(path, &text)?
    } else {
        parse_csv(path, &text)?
    };
    resolve(path, raw, submissions)
}

/// One row as read, before ranking and path checks: `(line, rank, team, submission, claimed)`.
type Raw = (Option<usize>, Option<u32>, String, String, Option<f64>);

fn invalid(
    path: &Path,
    line: Option<usize>,
    detail: String,
    hint: &'static str,
) -> LeaderboardError {
    LeaderboardError::Invalid {
        path: path.to_owned(),
        line,
        detail,
        hint,
    }
}

fn parse_csv(path: &Path, text: &str) -> Result<Vec<Raw>, LeaderboardError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((hline, header)) = lines.next() else {
        return Err(invalid(path, None, "it is empty".into(), CSV_HINT));
    };
    let header = split_csv(header).map_err(|d| invalid(path, Some(hline), d, CSV_HINT))?;
    let col = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()))
    };
    let team = col(&["team"]);
    let sub = col(&["submission", "path"]);
    let (Some(team), Some(sub)) = (team, sub) else {
        return Err(invalid(
            path,
            Some(hline),
            format!(
                "the header `{}` has no `team` and `submission` columns",
                header.join(",")
            ),
            CSV_HINT,
        ));
    };
    let score = col(&["score", "claimed", "claimed_score"]);
    let rank = col(&["rank"]);
    let mut out = Vec::new();
    for (n, line) in lines {
        let f = split_csv(line).map_err(|d| invalid(path, Some(n), d, CSV_HINT))?;
        if f.len() != header.len() {
            return Err(invalid(
                path,
                Some(n),
                format!("{} fields, the header has {}", f.len(), header.len()),
                CSV_HINT,
            ));
        }
        let number = |i: Option<usize>, what: &str| -> Result<Option<f64>, LeaderboardError> {
            let Some(i) = i else { return Ok(None) };
            let v = f[i].trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    invalid(
                        path,
                        Some(n),
                        format!("{what} `{v}` is not a finite number"),
                        CSV_HINT,
                    )
                })
        };
        let claimed = number(score, "score")?;
        let rank = match number(rank, "rank")? {
            Some(r) if r >= 1.0 && r.fract() == 0.0 && r <= f64::from(u32::MAX) => Some(r as u32),
            Some(r) => {
                return Err(invalid(
                    path,
                    Some(n),
                    format!("rank `{r}` is not a whole number ≥ 1"),
                    CSV_HINT,
                ));
            }
            None => None,
        };
        out.push((
            Some(n),
            rank,
            f[team].trim().to_owned(),
            f[sub].trim().to_owned(),
            claimed,
        ));
    }
    Ok(out)
}

/// Splits one CSV line; double quotes group, `""` is a literal quote.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = fields.last_mut().expect("never empty");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    Ok(fields)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEntry {
    #[serde(default)]
    rank: Option<u32>,
    team: String,
    submission: String,
    #[serde(default, alias = "claimed")]
    score: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonBoard {
    List(Vec<JsonEntry>),
    Wrapped { entries: Vec<JsonEntry> },
}

fn parse_json(path: &Path, text: &str) -> Result<Vec<Raw>, LeaderboardError> {
    let board: JsonBoard = serde_json::from_str(text)
        .map_err(|e| invalid(path, Some(e.line()), e.to_string(), JSON_HINT))?;
    let entries = match board {
        JsonBoard::List(l) | JsonBoard::Wrapped { entries: l } => l,
    };
    Ok(entries
        .into_iter()
        .map(|e| (None, e.rank, e.team, e.submission, e.score))
        .collect())
}

fn resolve(path: &Path, raw: Vec<Raw>, submissions: &Path) -> Result<Vec<Entry>, LeaderboardError> {
    if raw.is_empty() {
        return Err(invalid(path, None, "it lists no team".into(), CSV_HINT));
    }
    let ranked = raw.iter().all(|r| r.1.is_some());
    let mut teams = BTreeSet::new();
    let mut ranks = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, (line, rank, team, sub, claimed)) in raw.into_iter().enumerate() {
        let hint = CSV_HINT;
        if team.is_empty() || sub.is_empty() {
            return Err(invalid(
                path,
                line,
                format!("entry {} has an empty team or submission", i + 1),
                hint,
            ));
        }
        if !teams.insert(team.clone()) {
            return Err(invalid(
                path,
                line,
                format!("team `{team}` is listed twice"),
                hint,
            ));
        }
        let rank = if ranked {
            rank.unwrap_or(0)
        } else {
            i as u32 + 1
        };
        if rank == 0 {
            return Err(invalid(
                path,
                line,
                format!("team `{team}` has rank 0; ranks start at 1"),
                hint,
            ));
        }
        if !ranks.insert(rank) {
            return Err(invalid(
                path,
                line,
                format!("rank {rank} is given twice"),
                hint,
            ));
        }
        let p = Path::new(&sub);
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
                line,
                format!(
                    "the submission of `{team}`, `{}`, is not a directory",
                    dir.display()
                ),
                "submission paths are relative to --submissions DIR",
            ));
        }
        out.push(Entry {
            rank,
            team,
            submission: dir,
            claimed,
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

    #[test]
    fn csv_is_ranked_by_its_rank_column_or_its_order() {
        let (d, p) = board(
            "lb.csv",
            "rank,team,submission,score\n2,\"Bee, Inc\",b,0.5\n1,ants,a,0.7\n",
        );
        let e = load(&p, d.path()).unwrap();
        assert_eq!(
            e.iter().map(|e| e.team.as_str()).collect::<Vec<_>>(),
            ["ants", "Bee, Inc"]
        );
        assert_eq!(e[0].claimed, Some(0.7));
        assert_eq!(e[1].submission, d.path().join("b"));

        let (d, p) = board("lb.csv", "team,submission\nx,c\ny,a\n");
        let e = load(&p, d.path()).unwrap();
        assert_eq!(
            (e[0].rank, e[0].team.as_str(), e[0].claimed),
            (1, "x", None)
        );
    }

    #[test]
    fn json_in_both_shapes() {
        let (d, p) = board(
            "lb.json",
            r#"[{"team": "a", "submission": "a", "score": 1}]"#,
        );
        assert_eq!(load(&p, d.path()).unwrap()[0].claimed, Some(1.0));
        let (d, p) = board(
            "lb.json",
            r#"{"entries": [{"team": "b", "submission": "b", "rank": 3}]}"#,
        );
        assert_eq!(load(&p, d.path()).unwrap()[0].rank, 3);
    }

    #[test]
    fn bad_leaderboards_name_the_line() {
        for (text, needle) in [
            ("", "empty"),
            ("name,dir\nx,a\n", "no `team` and `submission`"),
            ("team,submission,score\nx,a,high\n", "line 2"),
            ("team,submission\nx,a\nx,b\n", "listed twice"),
            ("team,submission\nx,missing\n", "not a directory"),
            ("team,submission\nx,\"a\n", "not closed"),
            (
                "team,submission,rank\nx,a,1\ny,b,1\n",
                "rank 1 is given twice",
            ),
            ("team,submission\nx,a,extra\n", "3 fields"),
        ] {
            let (d, p) = board("lb.csv", text);
            let e = load(&p, d.path()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains("hint:"), "{e}");
        }
        let (d, p) = board(
            "lb.json",
            r#"[{"team": "a", "submission": "a", "rank": 0}]"#,
        );
        assert!(
            load(&p, d.path())
                .unwrap_err()
                .to_string()
                .contains("rank 0")
        );
        let (d, p) = board(
            "lb.json",
            r#"[{"team": "a", "submission": "a", "extra": 1}]"#,
        );
        assert!(
            load(&p, d.path())
                .unwrap_err()
                .to_string()
                .contains("lb.json")
        );
    }
}
