//! Subnet 37's IF_EVAL (V2): the prompts with their rules, the rule checks and the scoring
//! formula, exactly as docs/references.md S§2.4 and S§3.4 describe them. The
//! responses come from greedy generation (`--method if_eval`, the crate's `run` module, with
//! [`MAX_NEW_TOKENS`] and [`REPETITION_PENALTY`]); this module renders the prompts
//! ([`render_prompt`]) and judges responses ([`score`]), so the same judgement can be re-run on
//! any recorded responses.
//!
//! Recorded responses (one JSON object per line, [`read_samples`]):
//!
//! ```json
//! {"id": "q17", "rules": [{"rule": "word_count_at_most", "n": 30},
//!                         {"rule": "keyword_frequency", "keywords": ["paris", "river"], "counts": [2, 1]}],
//!  "responses": ["first response", "second response"]}
//! ```
//!
//! Each sample is a pair of prompts with the same rules; keyword rules carry one keyword (and
//! count) per prompt, as the subnet draws them per question.

pub mod difflib;
pub mod punkt;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `GenerationConfig(max_new_tokens=200)` of `compute_if_eval`.
pub const MAX_NEW_TOKENS: usize = 200;
/// `GenerationConfig(repetition_penalty=1.2)` of `compute_if_eval`.
pub const REPETITION_PENALTY: f64 = 1.2;
/// `GenerationConfig(max_time=5.0)`: the subnet stops each generation after 5 s of wall clock.
/// reprobox applies it only when asked (`--max-time 5`), since it makes the output depend on the
/// hardware.
pub const SUBNET_MAX_TIME_SECS: f64 = 5.0;

/// `PROMPT_FORMAT` of `rule_factory.py`, before `{rules}`.
const PROMPT_HEAD: &str = "Please answer the question below, denoted between quotes. Your response must follow these rules:\n";

/// `string.punctuation`.
const PUNCTUATION: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;

/// One rule with its drawn parameters (ids from the subnet's `RuleId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// 1: `len(text.split()) <= n`.
    WordCountAtMost { n: usize },
    /// 2: `len(text.split()) >= n`.
    WordCountAtLeast { n: usize },
    /// 3: at most `n` sentences (untrained Punkt).
    SentenceCountAtMost { n: usize },
    /// 4: at least `n` sentences.
    SentenceCountAtLeast { n: usize },
    /// 5: `text.isupper()`.
    AllUpperCase,
    /// 6: `text.islower()`.
    AllLowerCase,
    /// 7: no `,`.
    NoCommas,
    /// 8: the prompt's keyword is one of the response's words (case-insensitive).
    KeywordInclusion { keywords: [String; 2] },
    /// 9: the prompt's keyword appears exactly `counts[i]` times among the words.
    KeywordFrequency {
        keywords: [String; 2],
        counts: [usize; 2],
    },
    /// 10: the prompt's keyword is not one of the words.
    KeywordForbidden { keywords: [String; 2] },
    /// 11: exactly `n` lines start (after leading blanks) with `*`.
    BulletCountFrequency { n: usize },
    /// 13: `text.lower().endswith(phrase.lower())`, nothing stripped.
    EndsWith { phrase: String },
    /// 14: starts and ends with `"`, nothing stripped.
    Quotation,
}

/// `s.translate(str.maketrans("", "", string.punctuation)).split()`.
fn words(text: &str) -> Vec<String> {
    let kept: String = text.chars().filter(|c| !PUNCTUATION.contains(*c)).collect();
    python_split(&kept).map(str::to_owned).collect()
}

/// Python's `str.split()` with no argument: runs of `str.isspace()` characters separate.
fn python_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_python_space).filter(|w| !w.is_empty())
}

fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Unicode titlecase letters (category Lt): Python's `isupper`/`islower` fail on them.
fn is_titlecase(c: char) -> bool {
    matches!(c,
        '\u{01C5}' | '\u{01C8}' | '\u{01CB}' | '\u{01F2}' | '\u{1F88}'..='\u{1F8F}'
        | '\u{1F98}'..='\u{1F9F}' | '\u{1FA8}'..='\u{1FAF}' | '\u{1FBC}' | '\u{1FCC}' | '\u{1FFC}')
}

/// Python's `str.isupper()`: at least one cased character, and none lowercase or titlecase.
pub fn python_isupper(text: &str) -> bool {
    let mut cased = false;
    for c in text.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Python's `str.islower()`.
pub fn python_islower(text: &str) -> bool {
    let mut cased = false;
    for c in text.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_lowercase();
    }
    cased
}

/// Python's `str.splitlines()`.
fn python_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.char_indices().find(|(_, c)| {
            matches!(
                c,
                '\n' | '\r'
                    | '\u{0b}'
                    | '\u{0c}'
                    | '\u{1c}'
                    | '\u{1d}'
                    | '\u{1e}'
                    | '\u{85}'
                    | '\u{2028}'
                    | '\u{2029}'
            )
        }) {
            Some((i, c)) => {
                out.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") {
                    2
                } else {
                    c.len_utf8()
                };
                rest = &rest[i + skip..];
            }
            None => {
                out.push(rest);
                rest = "";
            }
        }
    }
    out
}

/// `"{singular}"` when `n` is 1, else `"{singular}s"`, as every rule's `get_prompt` words it.
fn plural(n: usize, singular: &str) -> String {
    if n == 1 {
        singular.to_string()
    } else {
        format!("{singular}s")
    }
}

impl Rule {
    /// `rule.get_prompt(index)`: the rule's line in the prompt of the pair's prompt `index`
    /// (keyword rules name that prompt's keyword).
    pub fn prompt(&self, index: usize) -> String {
        let i = index.min(1);
        match self {
            Rule::WordCountAtMost { n } => {
                format!(
                    "The response must be no more than {n} {}.",
                    plural(*n, "word")
                )
            }
            Rule::WordCountAtLeast { n } => {
                format!("The response must be at least {n} {}.", plural(*n, "word"))
            }
            Rule::SentenceCountAtMost { n } => format!(
                "The response must be no more than {n} {}.",
                plural(*n, "sentence")
            ),
            Rule::SentenceCountAtLeast { n } => format!(
                "The response must be at least {n} {}.",
                plural(*n, "sentence")
            ),
            Rule::AllUpperCase => "All letters in the response must be uppercase.".into(),
            Rule::AllLowerCase => "All letters in the response must be lowercase.".into(),
            Rule::NoCommas => "Do not use any commas in your response.".into(),
            Rule::KeywordInclusion { keywords } => format!(
                "The word \"{}\" must be included in the response.",
                keywords[i]
            ),
            Rule::KeywordFrequency { keywords, counts } => format!(
                "Include the word \"{}\" {} {}.",
                keywords[i],
                counts[i],
                plural(counts[i], "time")
            ),
            Rule::KeywordForbidden { keywords } => format!(
                "The word \"{}\" must not be included in the response.",
                keywords[i]
            ),
            Rule::BulletCountFrequency { n } => format!(
                "The response must contain exactly {n} '*' {} in markdown format.",
                plural(*n, "bullet point")
            ),
            // No final period: the subnet's text ends with the quoted phrase.
            Rule::EndsWith { phrase } => {
                format!("End your response with the exact phrase \"{phrase}\"")
            }
            Rule::Quotation => "Wrap your entire response in double quotation marks.".into(),
        }
    }

    /// `rule.matches(response, index)`: `index` is 0 for the first prompt of the pair, 1 for the
    /// second.
    pub fn matches(&self, text: &str, index: usize) -> bool {
        let i = index.min(1);
        let has_word = |kw: &str| {
            let kw = kw.to_lowercase();
            words(text).iter().any(|w| w.to_lowercase() == kw)
        };
        match self {
            Rule::WordCountAtMost { n } => python_split(text).count() <= *n,
            Rule::WordCountAtLeast { n } => python_split(text).count() >= *n,
            Rule::SentenceCountAtMost { n } => punkt::count_sentences(text) <= *n,
            Rule::SentenceCountAtLeast { n } => punkt::count_sentences(text) >= *n,
            Rule::AllUpperCase => python_isupper(text),
            Rule::AllLowerCase => python_islower(text),
            Rule::NoCommas => !text.contains(','),
            Rule::KeywordInclusion { keywords } => has_word(&keywords[i]),
            Rule::KeywordFrequency { keywords, counts } => {
                let kw = keywords[i].to_lowercase();
                words(text)
                    .iter()
                    .filter(|w| w.to_lowercase() == kw)
                    .count()
                    == counts[i]
            }
            Rule::KeywordForbidden { keywords } => !has_word(&keywords[i]),
            Rule::BulletCountFrequency { n } => {
                python_lines(text)
                    .iter()
                    .filter(|l| l.trim_start_matches(is_python_space).starts_with('*'))
                    .count()
                    == *n
            }
            Rule::EndsWith { phrase } => text.to_lowercase().ends_with(&phrase.to_lowercase()),
            Rule::Quotation => text.starts_with('"') && text.ends_with('"'),
        }
    }
}

/// `generate_prompt(question, rules, index)` of `rule_factory.py`: `PROMPT_FORMAT` with the
/// rules numbered from 1, one per line, and the question between double quotes.
pub fn render_prompt(question: &str, rules: &[Rule], index: usize) -> String {
    let lines: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(k, r)| format!("{}. {}", k + 1, r.prompt(index)))
        .collect();
    format!("{PROMPT_HEAD}{}\n\n\"{question}\"\n", lines.join("\n"))
}

/// One IF_EVAL example to generate for: a pair of prompts with the same rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfEvalExample {
    pub id: String,
    pub rules: Vec<Rule>,
    /// The two user turns (from `questions` through [`render_prompt`], or given verbatim).
    pub prompts: [String; 2],
}

/// One pair of prompts with the same rules, and the two responses to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub id: String,
    pub rules: Vec<Rule>,
    pub responses: [String; 2],
}

/// How one sample was judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleScore {
    pub id: String,
    /// Rules satisfied by each response.
    pub correct: [usize; 2],
    /// `1 − (correct / n_rules)²` for each response; 0 is perfect.
    pub response_scores: [f64; 2],
    /// The two responses are near-identical (difflib ratio > 0.6).
    pub duplicate: bool,
}

/// The IF_EVAL score of a set of samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IfEvalScore {
    /// The raw score (normalization NONE): lower is better, 1 is the worst.
    pub score: f64,
    pub duplicates: usize,
    /// True when more than 10 % of the samples were duplicates, which scores 1.
    pub duplicate_penalty: bool,
    pub samples: Vec<SampleScore>,
}

/// Why a sample file cannot be scored.
#[derive(Debug, thiserror::Error)]
pub enum IfEvalError {
    /// The samples file is not a regular file, or is past [`crate::DATA_CAP`].
    #[error(transparent)]
    Input(#[from] reprobox::input_file::InputFileError),
    #[error("cannot read the IF_EVAL samples {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: {message} (hint: one object per line: {{\"id\", \"rules\": [{{\"rule\": \"no_commas\"}}, ...], \"responses\": [r1, r2]}})"
    )]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: a sample needs at least one rule")]
    NoRules { path: PathBuf, line: usize },
}

/// Reads a JSONL file of samples; blank lines are skipped.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>, IfEvalError> {
    let text = reprobox::input_file::read_to_string(path, crate::DATA_CAP)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let s: Sample = serde_json::from_str(line).map_err(|e| IfEvalError::BadLine {
            path: path.to_owned(),
            line: n + 1,
            message: e.to_string(),
        })?;
        if s.rules.is_empty() {
            return Err(IfEvalError::NoRules {
                path: path.to_owned(),
                line: n + 1,
            });
        }
        out.push(s);
    }
    Ok(out)
}

/// `compute_if_eval` after generation: each response scores `1 − (correct/n)²`, counted once per
/// rule (samples are weighted by their rule count); the mean is the score, unless more than a
/// tenth of the samples have duplicate responses, which scores 1.
pub fn score(samples: &[Sample]) -> IfEvalScore {
    let mut weighted = Vec::new();
    let mut out = Vec::new();
    let mut duplicates = 0;
    for s in samples {
        let [r1, r2] = &s.responses;
        let duplicate = difflib::ratio(r1, r2, |c| c == ' ' || c == '\t') > 0.6;
        duplicates += usize::from(duplicate);
        let n = s.rules.len();
        let mut correct = [0; 2];
        let mut response_scores = [0.0; 2];
        for (i, r) in s.responses.iter().enumerate() {
            correct[i] = s.rules.iter().filter(|rule| rule.matches(r, i)).count();
            let frac = correct[i] as f64 / n as f64;
            response_scores[i] = 1.0 - frac * frac;
            weighted.extend(std::iter::repeat_n(response_scores[i], n));
        }
        out.push(SampleScore {
            id: s.id.clone(),
            correct,
            response_scores,
            duplicate,
        });
    }
    let duplicate_penalty = duplicates as f64 > 0.1 * samples.len() as f64;
    let score = if duplicate_penalty || weighted.is_empty() {
        1.0
    } else {
        weighted.iter().sum::<f64>() / weighted.len() as f64
    };
    IfEvalScore {
        score,
        duplicates,
        duplicate_penalty,
        samples: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_string_predicates() {
        assert!(python_isupper("HELLO, WORLD 42!"));
        assert!(!python_isupper("42!"), "needs a cased character");
        assert!(!python_isupper("HELLo"));
        assert!(!python_isupper("\u{01C5}A"), "titlecase is not upper");
        assert!(python_islower("hello, world"));
        assert!(!python_islower(""));
        assert_eq!(
            words("Hello, world! It's-fine."),
            ["Hello", "world", "Itsfine"]
        );
        assert_eq!(python_lines("a\r\nb\nc\u{2028}d\n"), ["a", "b", "c", "d"]);
        assert_eq!(
            python_split(" a\tb\u{1f}c  ").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn keyword_rules_use_the_prompt_s_own_keyword() {
        let r = Rule::KeywordFrequency {
            keywords: ["Paris".into(), "river".into()],
            counts: [2, 1],
        };
        assert!(r.matches("paris, PARIS. And rivers.", 0));
        assert!(
            !r.matches("paris, PARIS. And rivers.", 1),
            "`rivers` is not `river`"
        );
        assert!(r.matches("The river.", 1));
    }

    #[test]
    fn bullets_count_bold_lines_as_the_subnet_does() {
        let r = Rule::BulletCountFrequency { n: 2 };
        assert!(r.matches("* one\n  **bold** line\ntext", 0));
    }

    #[test]
    fn the_score_weights_samples_by_rule_count_and_penalizes_duplicates() {
        let sample = |id: &str, rules: Vec<Rule>, r: [&str; 2]| Sample {
            id: id.into(),
            rules,
            responses: [r[0].into(), r[1].into()],
        };
        let one = sample(
            "a",
            vec![Rule::NoCommas, Rule::Quotation],
            ["\"no commas here\"", "yes, commas"],
        );
        let two = sample("b", vec![Rule::AllLowerCase], ["abc", "XYZ"]);
        let s = score(&[one.clone(), two]);
        // Sample a: 1 − 1² = 0 and 1 − 0² = 1, each twice; sample b: 0 and 1 once each.
        assert_eq!(s.samples[0].correct, [2, 0]);
        assert_eq!(s.score, (0.0 + 0.0 + 1.0 + 1.0 + 0.0 + 1.0) / 6.0);
        assert!(!s.duplicate_penalty);

        let dup = sample(
            "c",
            vec![Rule::NoCommas],
            ["the same answer", "the same answer!"],
        );
        let s = score(&[one, dup]);
        assert_eq!(s.duplicates, 1);
        assert!(s.duplicate_penalty, "1 of 2 samples is more than 10 %");
        assert_eq!(s.score, 1.0);
    }
}
