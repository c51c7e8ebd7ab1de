//! Subnet 37's SYNTHETIC_MMLU sampling (`MacrocosmosDatasetLoader`,
//! docs/references.md S§3.1, S§4) over an archived pool of rows: which rows the
//! competition scored for a seed, drawn with CPython's `random` exactly as the loader draws them.
//!
//! The loader: `random.seed(seed)`; with more than 10 dataset configs, `configs =
//! random.sample(configs, 10)`; the rows of each config in that order, keeping those whose
//! `reference` is `A`–`D` (and whose validator hotkey qualifies, which the archive must already
//! reflect); `random.shuffle(rows)`; the first `max_samples` (700).
//!
//! The pool is JSONL, one archived row per line: `{"id", "challenge", "reference", "config"}`
//! (`config` optional: without it every row is one config), rows of a config in dataset order and
//! configs in the order `datasets.get_dataset_config_names` lists them. Other fields are ignored.

use std::path::Path;

use serde_json::Value;

use super::EvalError;
use super::data::MultipleChoiceExample;
use super::multiple_choice::LETTERS;
use super::word_sorting::PyRandom;

/// `--latest_prompting_samples`' default (700; 400 in October 2024).
pub const MAX_SAMPLES: usize = 700;
/// `NUM_CONFIGS_TO_SAMPLE`.
pub const CONFIGS_TO_SAMPLE: usize = 10;

/// One archived row.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolRow {
    pub config: Option<String>,
    pub example: MultipleChoiceExample,
}

/// Reads a pool file. Rows whose reference is not a letter `A`–`D` are kept here and dropped by
/// [`sample`], as the loader drops them.
pub fn read_pool(path: &Path) -> Result<Vec<PoolRow>, EvalError> {
    let text = reprobox::input_file::read_to_string(path, crate::DATA_CAP)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| EvalError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let v: Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let string = |key: &str| match v.get(key) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Null) | None => Ok(None),
            Some(other) => Err(bad(format!("`{key}` must be a string, got {other}"))),
        };
        let need = |key: &str| {
            string(key)?.ok_or_else(|| {
                bad(format!(
                    "missing `{key}` (a SYNTHETIC_MMLU pool row is {{\"id\", \"challenge\", \"reference\", \"config\"}})"
                ))
            })
        };
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
            _ => return Err(bad("missing `id` (a string or an integer)".into())),
        };
        rows.push(PoolRow {
            config: string("config")?,
            example: MultipleChoiceExample {
                id,
                challenge: need("challenge")?,
                reference: need("reference")?,
            },
        });
    }
    if rows.is_empty() {
        return Err(EvalError::NoExamples {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// What [`sample`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub examples: Vec<MultipleChoiceExample>,
    /// The configs whose rows were used, in the loader's order.
    pub configs: Vec<String>,
    /// Rows of those configs with a letter reference, before `max_samples`.
    pub eligible: usize,
}

/// The loader's draw for `rng` (seeded with the evaluation seed).
pub fn sample(pool: &[PoolRow], rng: &mut PyRandom, max_samples: usize) -> Sampled {
    // Configs in first-appearance order (the dataset's listing).
    let mut configs: Vec<Option<&str>> = Vec::new();
    for r in pool {
        let c = r.config.as_deref();
        if !configs.contains(&c) {
            configs.push(c);
        }
    }
    if configs.len() > CONFIGS_TO_SAMPLE {
        configs = rng.sample(&configs, CONFIGS_TO_SAMPLE);
    }
    let mut rows: Vec<&MultipleChoiceExample> = Vec::new();
    for c in &configs {
        rows.extend(
            pool.iter()
                .filter(|r| {
                    r.config.as_deref() == *c && LETTERS.contains(&r.example.reference.as_str())
                })
                .map(|r| &r.example),
        );
    }
    let eligible = rows.len();
    rng.shuffle(&mut rows);
    Sampled {
        examples: rows.into_iter().take(max_samples).cloned().collect(),
        configs: configs
            .into_iter()
            .map(|c| c.unwrap_or_default().to_string())
            .collect(),
        eligible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(configs: usize, per: usize) -> Vec<PoolRow> {
        let mut rows = Vec::new();
        for c in 0..configs {
            for r in 0..per {
                rows.push(PoolRow {
                    config: Some(format!("c{c}")),
                    example: MultipleChoiceExample {
                        id: format!("c{c}-{r}"),
                        challenge: format!("q{c}-{r}"),
                        // Every fifth row has no letter answer and is dropped.
                        reference: if r % 5 == 4 {
                            "E".into()
                        } else {
                            LETTERS[r % 4].into()
                        },
                    },
                });
            }
        }
        rows
    }

    /// The expected draws come from CPython 3.11's `random` running the loader's steps:
    ///
    /// ```python
    /// import random
    /// rows = [(f"c{c}", f"c{c}-{r}", "E" if r % 5 == 4 else "ABCD"[r % 4]) for c in range(N) for r in range(5)]
    /// random.seed(SEED)
    /// configs = list(dict.fromkeys(c for c, _, _ in rows))
    /// if len(configs) > 10: configs = random.sample(configs, 10)
    /// kept = [i for c in configs for (cc, i, ref) in rows if cc == c and ref in "ABCD"]
    /// random.shuffle(kept); print(configs, kept[:K])
    /// ```
    #[test]
    fn draws_equal_cpython() {
        // N = 12, SEED = 2**200 + 12345, K = 6
        let seed = "1606938044258990275541962092341162602522202993782792835313721";
        let mut rng = PyRandom::from_decimal(seed).unwrap();
        let s = sample(&pool(12, 5), &mut rng, 6);
        assert_eq!(
            s.configs,
            ["c2", "c10", "c5", "c8", "c3", "c1", "c11", "c4", "c9", "c0"]
        );
        assert_eq!(s.eligible, 40);
        let ids: Vec<&str> = s.examples.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["c1-2", "c10-2", "c3-0", "c9-2", "c3-1", "c4-3"]);

        // N = 3 (no config draw), SEED = 7, K = 700: every eligible row, shuffled.
        let mut rng = PyRandom::from_decimal("7").unwrap();
        let s = sample(&pool(3, 5), &mut rng, MAX_SAMPLES);
        assert_eq!(s.configs, ["c0", "c1", "c2"]);
        let ids: Vec<&str> = s.examples.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "c1-3", "c2-3", "c0-3", "c2-2", "c2-0", "c1-0", "c2-1", "c0-1", "c0-0", "c1-2",
                "c0-2", "c1-1"
            ]
        );
    }

    #[test]
    fn a_pool_is_read_leniently_but_needs_challenge_and_reference() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pool.jsonl");
        std::fs::write(
            &p,
            "{\"id\": 1, \"challenge\": \"Q\\nA. x\\nB. y\", \"reference\": \"B\", \"hotkey\": \"5F\"}\n\n\
             {\"id\": \"2\", \"challenge\": \"Q2\", \"reference\": \"Z\", \"config\": \"c\"}\n",
        )
        .unwrap();
        let rows = read_pool(&p).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].config, None);
        assert_eq!(rows[0].example.id, "1");
        assert_eq!(rows[1].config.as_deref(), Some("c"));
        std::fs::write(&p, "{\"id\": 1, \"reference\": \"B\"}\n").unwrap();
        let e = read_pool(&p).unwrap_err().to_string();
        assert!(e.contains("pool.jsonl:1") && e.contains("challenge"), "{e}");
    }
}
