//! Reads the evaluation examples: one JSON object per line, blank lines skipped, extra fields
//! ignored. A malformed line is reported with its file and 1-based line number, before any model
//! is loaded.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use super::ifeval::{IfEvalExample, Rule, render_prompt};
use super::multiple_choice::{LETTERS, format_challenge};
use super::word_sorting::WordSortingExample;
use super::{EvalError, Method};

/// A TEXT_LOSS example: `{"id", "text"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextExample {
    pub id: String,
    pub text: String,
}

/// A REFERENCE_LOSS example: `{"id", "context", "reference"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceExample {
    pub id: String,
    pub context: String,
    pub reference: String,
}

/// A choice log-likelihood example: `{"id", "context", "choices", "answer"}` (`answer` is the
/// 0-based index of the correct choice).
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceExample {
    pub id: String,
    pub context: String,
    pub choices: Vec<String>,
    pub answer: usize,
}

/// A subnet-37 MULTIPLE_CHOICE example: the challenge (question and lettered options, the user
/// turn) and the reference letter.
#[derive(Debug, Clone, PartialEq)]
pub struct MultipleChoiceExample {
    pub id: String,
    pub challenge: String,
    /// `A`, `B`, `C` or `D`.
    pub reference: String,
}

/// The examples of one file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Dataset {
    Text(Vec<TextExample>),
    Reference(Vec<ReferenceExample>),
    Choice(Vec<ChoiceExample>),
    MultipleChoice(Vec<MultipleChoiceExample>),
    WordSorting(Vec<WordSortingExample>),
    IfEval(Vec<IfEvalExample>),
}

impl Dataset {
    /// The number of examples.
    pub fn len(&self) -> usize {
        match self {
            Dataset::Text(v) => v.len(),
            Dataset::Reference(v) => v.len(),
            Dataset::Choice(v) => v.len(),
            Dataset::MultipleChoice(v) => v.len(),
            Dataset::WordSorting(v) => v.len(),
            Dataset::IfEval(v) => v.len(),
        }
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// serde_json's message without its " at line L column C" (the line is always 1 in a JSONL
/// line; the caller names the file's line and the column).
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Reads a JSONL file for `method`.
pub fn read_dataset(path: &Path, method: Method) -> Result<Dataset, EvalError> {
    let text = reprobox::input_file::read_to_string(path, crate::DATA_CAP)?;
    parse_dataset(path, &text, method)
}

/// Parses JSONL text (`path` only names it in errors).
pub fn parse_dataset(path: &Path, text: &str, method: Method) -> Result<Dataset, EvalError> {
    let mut seen = HashSet::new();
    let mut data = match method {
        Method::TextLoss => Dataset::Text(Vec::new()),
        Method::ReferenceLoss => Dataset::Reference(Vec::new()),
        Method::ChoiceLoglikelihood => Dataset::Choice(Vec::new()),
        Method::MultipleChoice => Dataset::MultipleChoice(Vec::new()),
        Method::WordSorting => Dataset::WordSorting(Vec::new()),
        Method::IfEval => Dataset::IfEval(Vec::new()),
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| EvalError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "not valid JSON at column {}: {} (expected one JSON object per line; the {} layout is {})",
                e.column(),
                json_message(&e),
                method.name(),
                method.layout()
            ))
        })?;
        let Value::Object(obj) = value else {
            return Err(bad(format!(
                "not a JSON object (expected one JSON object per line; the {} layout is {})",
                method.name(),
                method.layout()
            )));
        };
        let id = match obj.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
            Some(v) => return Err(bad(format!("`id` must be a string or an integer, got {v}"))),
            None => return Err(bad("missing `id`".into())),
        };
        if !seen.insert(id.clone()) {
            return Err(bad(format!("duplicate id `{id}`")));
        }
        let string = |key: &str| match obj.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(bad(format!("`{key}` must be a string, got {v}"))),
            None => Err(bad(format!(
                "missing `{key}` (the {} layout is {})",
                method.name(),
                method.layout()
            ))),
        };
        match &mut data {
            Dataset::Text(v) => v.push(TextExample {
                id,
                text: string("text")?,
            }),
            Dataset::Reference(v) => v.push(ReferenceExample {
                id,
                context: string("context")?,
                reference: string("reference")?,
            }),
            Dataset::Choice(v) => {
                let context = string("context")?;
                let choices: Vec<String> = match obj.get("choices") {
                    Some(Value::Array(a)) if !a.is_empty() => a
                        .iter()
                        .map(|c| {
                            c.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| bad(format!("choice {c} is not a string")))
                        })
                        .collect::<Result<_, _>>()?,
                    Some(v) => {
                        return Err(bad(format!(
                            "`choices` must be a non-empty array of strings, got {v}"
                        )));
                    }
                    None => return Err(bad("missing `choices`".into())),
                };
                let answer = match obj.get("answer").and_then(Value::as_u64) {
                    Some(a) if (a as usize) < choices.len() => a as usize,
                    _ => {
                        return Err(bad(format!(
                            "`answer` must be the 0-based index of one of the {} choices",
                            choices.len()
                        )));
                    }
                };
                v.push(ChoiceExample {
                    id,
                    context,
                    choices,
                    answer,
                })
            }
            Dataset::MultipleChoice(v) => {
                let (challenge, reference) = if obj.contains_key("challenge") {
                    (string("challenge")?, string("reference")?)
                } else {
                    // reprobox's convenience layout: rendered as the subnet's MMLU rows.
                    let question = string("question")?;
                    let choices: Vec<String> = match obj.get("choices") {
                        Some(Value::Array(a)) if (2..=LETTERS.len()).contains(&a.len()) => a
                            .iter()
                            .map(|c| {
                                c.as_str()
                                    .map(str::to_string)
                                    .ok_or_else(|| bad(format!("choice {c} is not a string")))
                            })
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err(bad(format!(
                                "`choices` must be an array of 2 to 4 strings (the {} layout is {})",
                                method.name(),
                                method.layout()
                            )));
                        }
                    };
                    let answer = match obj.get("answer") {
                        Some(Value::Number(n)) => n
                            .as_u64()
                            .filter(|&a| (a as usize) < choices.len())
                            .map(|a| LETTERS[a as usize].to_string()),
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        bad(format!(
                            "`answer` must be the 0-based index of one of the {} choices or its letter",
                            choices.len()
                        ))
                    })?;
                    (format_challenge(&question, &choices), answer)
                };
                if !LETTERS.contains(&reference.as_str()) {
                    return Err(bad(format!(
                        "the reference letter must be one of A, B, C, D, got `{reference}`"
                    )));
                }
                v.push(MultipleChoiceExample {
                    id,
                    challenge,
                    reference,
                })
            }
            Dataset::WordSorting(v) => v.push(WordSortingExample {
                id,
                challenge: string("challenge")?,
                reference: string("reference")?,
            }),
            Dataset::IfEval(v) => {
                let rules: Vec<Rule> = match obj.get("rules") {
                    Some(r) => serde_json::from_value(r.clone())
                        .map_err(|e| bad(format!("bad `rules`: {e}")))?,
                    None => return Err(bad("missing `rules`".into())),
                };
                if rules.is_empty() {
                    return Err(bad("a sample needs at least one rule".into()));
                }
                let pair = |key: &str| -> Result<Option<[String; 2]>, EvalError> {
                    match obj.get(key) {
                        None => Ok(None),
                        Some(Value::Array(a)) if a.len() == 2 && a.iter().all(Value::is_string) => {
                            Ok(Some(
                                [0, 1].map(|i| a[i].as_str().unwrap_or_default().to_string()),
                            ))
                        }
                        Some(v) => Err(bad(format!(
                            "`{key}` must be an array of two strings, got {v}"
                        ))),
                    }
                };
                let prompts = match (pair("questions")?, pair("prompts")?) {
                    (Some(q), None) => [0, 1].map(|i| render_prompt(&q[i], &rules, i)),
                    (None, Some(p)) => p,
                    _ => {
                        return Err(bad(format!(
                            "give exactly one of `questions` and `prompts` (the {} layout is {})",
                            method.name(),
                            method.layout()
                        )));
                    }
                };
                v.push(IfEvalExample { id, rules, prompts })
            }
        }
    }
    if data.is_empty() {
        return Err(EvalError::NoExamples {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_layout() {
        let p = Path::new("d.jsonl");
        let d = parse_dataset(
            p,
            "{\"id\":\"a\",\"text\":\"x\"}\n\n{\"id\":7,\"text\":\"y\",\"extra\":1}\n",
            Method::TextLoss,
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        let d = parse_dataset(
            p,
            r#"{"id":"r","context":"c","reference":"r"}"#,
            Method::ReferenceLoss,
        )
        .unwrap();
        assert!(matches!(d, Dataset::Reference(ref v) if v[0].reference == "r"));
        let d = parse_dataset(
            p,
            r#"{"id":"c","context":"c","choices":["a","b"],"answer":1}"#,
            Method::ChoiceLoglikelihood,
        )
        .unwrap();
        assert!(matches!(d, Dataset::Choice(ref v) if v[0].answer == 1));
        let d = parse_dataset(
            p,
            "{\"id\":\"m\",\"challenge\":\"Q?\\nA. x\\nB. y\",\"reference\":\"B\"}\n\
             {\"id\":\"n\",\"question\":\"Q?\",\"choices\":[\"x\",\"y\"],\"answer\":1}",
            Method::MultipleChoice,
        )
        .unwrap();
        let Dataset::MultipleChoice(v) = d else {
            panic!("not multiple choice")
        };
        assert_eq!(v[0].challenge, v[1].challenge);
        assert_eq!(
            (v[0].reference.as_str(), v[1].reference.as_str()),
            ("B", "B")
        );
        let e = parse_dataset(
            p,
            r#"{"id":"m","challenge":"Q","reference":"E"}"#,
            Method::MultipleChoice,
        )
        .unwrap_err();
        assert!(e.to_string().contains("A, B, C, D"), "{e}");
        let d = parse_dataset(
            p,
            r#"{"id":"w","challenge":"Sort: b a. ","reference":"a b"}"#,
            Method::WordSorting,
        )
        .unwrap();
        assert!(matches!(d, Dataset::WordSorting(ref v) if v[0].reference == "a b"));
        let d = parse_dataset(
            p,
            "{\"id\":\"i\",\"rules\":[{\"rule\":\"no_commas\"}],\"questions\":[\"Q1?\",\"Q2?\"]}\n\
             {\"id\":\"j\",\"rules\":[{\"rule\":\"quotation\"}],\"prompts\":[\"p1\",\"p2\"]}",
            Method::IfEval,
        )
        .unwrap();
        let Dataset::IfEval(v) = d else {
            panic!("not if_eval")
        };
        assert!(
            v[0].prompts[1].ends_with("1. Do not use any commas in your response.\n\n\"Q2?\"\n")
        );
        assert_eq!(v[1].prompts, ["p1".to_string(), "p2".to_string()]);
        for bad in [
            r#"{"id":"i","rules":[],"questions":["a","b"]}"#,
            r#"{"id":"i","rules":[{"rule":"shout"}],"questions":["a","b"]}"#,
            r#"{"id":"i","rules":[{"rule":"no_commas"}],"questions":["a"]}"#,
            r#"{"id":"i","rules":[{"rule":"no_commas"}],"questions":["a","b"],"prompts":["a","b"]}"#,
        ] {
            assert!(parse_dataset(p, bad, Method::IfEval).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let p = Path::new("d.jsonl");
        let e = parse_dataset(
            p,
            "{\"id\":\"a\",\"text\":\"x\"}\nnot json\n",
            Method::TextLoss,
        )
        .unwrap_err();
        assert!(e.to_string().contains("d.jsonl:2"), "{e}");
        let e = parse_dataset(
            p,
            r#"{"id":"c","context":"c","choices":["a"],"answer":1}"#,
            Method::ChoiceLoglikelihood,
        )
        .unwrap_err();
        assert!(e.to_string().contains("answer"), "{e}");
        let e = parse_dataset(
            p,
            "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"a\",\"text\":\"y\"}",
            Method::TextLoss,
        )
        .unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
        assert!(matches!(
            parse_dataset(p, "\n", Method::TextLoss),
            Err(EvalError::NoExamples { .. })
        ));
        let e = parse_dataset(p, r#"{"id":"a","context":"x"}"#, Method::ReferenceLoss).unwrap_err();
        assert!(e.to_string().contains("reference"), "{e}");
    }
}
