//! TEXT_LOSS's "reasonable output" gate (docs/references.md S§2.3 (a)): before
//! the losses, the subnet calls `model.generate(sample, min_new_tokens=20, max_new_tokens=20,
//! pad_token_id=eos)` on the whole of sample 0 and of sample 1, with no generation config of its
//! own (so the model's `generation_config.json` applies), and scores the task `inf` when the two
//! generations agree in 10 or more positions or when both repeat one token more than 10 times.
//! This module reads the generation settings and judges two generations; the decoding is in
//! `run.rs`.

use std::path::Path;

use serde_json::Value as Json;

use super::{EvalError, GateResult};

/// New tokens per generation (`output_length = 20`).
pub const GATE_TOKENS: usize = 20;

/// What of `generation_config.json` the gate's `generate` call uses.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationSettings {
    /// `do_sample`: the subnet's gate draws at random; reprobox decodes greedily.
    pub do_sample: bool,
    /// `repetition_penalty` (1.0 when unset).
    pub repetition_penalty: f64,
    /// `eos_token_id` (an id or a list): suppressed for all 20 steps (`min_new_tokens = 20`).
    /// Empty: config.json's.
    pub eos: Vec<i64>,
    /// Settings that change greedy decoding but are not applied (beam search, n-gram bans, …).
    pub ignored: Vec<String>,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            do_sample: false,
            repetition_penalty: 1.0,
            eos: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

/// Reads `<dir>/generation_config.json`; defaults when it is absent (transformers then derives a
/// config from config.json, which sets none of these for the supported architectures).
pub fn read_generation_config(dir: &Path) -> Result<GenerationSettings, EvalError> {
    let path = dir.join("generation_config.json");
    // Only a missing file means "no settings": anything else there is read, or refused by name.
    if path.symlink_metadata().is_err() {
        return Ok(GenerationSettings::default());
    }
    let text = reprobox::input_file::read_to_string(&path, crate::MODEL_JSON_CAP)?;
    let json: Json = serde_json::from_str(&text).map_err(|e| EvalError::Config {
        path: path.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    parse_generation_config(&json).map_err(|message| EvalError::Config { path, message })
}

fn parse_generation_config(json: &Json) -> Result<GenerationSettings, String> {
    let mut s = GenerationSettings {
        do_sample: json.get("do_sample").and_then(Json::as_bool) == Some(true),
        ..GenerationSettings::default()
    };
    if let Some(p) = json.get("repetition_penalty").filter(|v| !v.is_null()) {
        s.repetition_penalty = p
            .as_f64()
            .filter(|p| p.is_finite() && *p > 0.0)
            .ok_or_else(|| format!("`repetition_penalty` must be a positive number, not {p}"))?;
    }
    s.eos = match json.get("eos_token_id") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Number(n)) => vec![n.as_i64().ok_or("`eos_token_id` is not an integer")?],
        Some(Json::Array(a)) => a
            .iter()
            .map(|v| v.as_i64().ok_or("`eos_token_id` holds a non-integer"))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "`eos_token_id` must be an id or a list, not {other}"
            ));
        }
    };
    // Greedy-search settings transformers would honour and reprobox does not apply.
    let set = |key: &str| match json.get(key) {
        None | Some(Json::Null) | Some(Json::Bool(false)) => false,
        Some(Json::Number(n)) => match key {
            "num_beams" => n.as_f64() != Some(1.0),
            _ => n.as_f64() != Some(0.0),
        },
        Some(Json::Array(a)) => !a.is_empty(),
        Some(Json::Object(o)) => !o.is_empty(),
        Some(_) => true,
    };
    s.ignored = [
        "num_beams",
        "no_repeat_ngram_size",
        "bad_words_ids",
        "suppress_tokens",
        "begin_suppress_tokens",
        "forced_bos_token_id",
        "forced_eos_token_id",
        "sequence_bias",
        "encoder_repetition_penalty",
    ]
    .into_iter()
    .filter(|k| set(k))
    .map(str::to_string)
    .collect();
    Ok(s)
}

/// Judges two generations as the subnet's `check_for_reasonable_output`: fail when at least
/// half the positions are equal (`sum(eq) >= 20 / 2`), or when both generations' most common
/// token occurs more than half the time (`count > 20 / 2`).
pub fn judge(a: &[i64], b: &[i64], settings: &GenerationSettings) -> GateResult {
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let most_common = [most_common_count(a), most_common_count(b)];
    let half = GATE_TOKENS / 2;
    let reason = if equal >= half {
        Some(format!(
            "the generations after samples 0 and 1 agree in {equal} of {GATE_TOKENS} positions \
             (the subnet fails a model at {half} or more)"
        ))
    } else if most_common.iter().all(|&c| c > half) {
        Some(format!(
            "both generations repeat one token more than {half} times ({} and {} of {GATE_TOKENS})",
            most_common[0], most_common[1]
        ))
    } else {
        None
    };
    GateResult {
        passed: reason.is_none(),
        reason,
        generated: [a.to_vec(), b.to_vec()],
        equal_positions: equal,
        most_common,
        sampled_by_subnet: settings.do_sample,
        ignored: settings.ignored.clone(),
    }
}

/// The gate when there are not two samples to generate from: the subnet's `batches[1]` raises,
/// and an exception scores the task `inf`.
pub fn too_few_samples(found: usize, settings: &GenerationSettings) -> GateResult {
    GateResult {
        passed: false,
        reason: Some(format!(
            "the gate generates from samples 0 and 1, and there {} {found} (the subnet's \
             exception scores the task inf)",
            if found == 1 { "is" } else { "are" }
        )),
        generated: [Vec::new(), Vec::new()],
        equal_positions: 0,
        most_common: [0, 0],
        sampled_by_subnet: settings.do_sample,
        ignored: settings.ignored.clone(),
    }
}

/// `torch.unique(t, return_counts=True)` then the largest count.
fn most_common_count(ids: &[i64]) -> usize {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted
        .chunk_by(|x, y| x == y)
        .map(<[i64]>::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str) -> Vec<i64> {
        s.split_whitespace().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn equal_positions_fail_at_ten() {
        let s = GenerationSettings::default();
        let a: Vec<i64> = (0..20).collect();
        let mut b: Vec<i64> = (100..120).collect();
        b[..9].copy_from_slice(&a[..9]);
        let r = judge(&a, &b, &s);
        assert!(r.passed, "{r:?}");
        assert_eq!(r.equal_positions, 9);
        b[9] = a[9];
        let r = judge(&a, &b, &s);
        assert!(!r.passed);
        assert_eq!(r.equal_positions, 10);
        assert!(r.reason.unwrap().contains("10 of 20"));
    }

    #[test]
    fn repetition_fails_only_when_both_repeat_more_than_ten_times() {
        let s = GenerationSettings::default();
        // 11 sevens in a, placed where b differs.
        let a = ids("7 7 7 7 7 7 7 7 7 7 7 1 2 3 4 5 6 8 9 10");
        let b = ids("20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39");
        let r = judge(&a, &b, &s);
        assert!(r.passed, "{r:?}");
        assert_eq!(r.most_common, [11, 1]);
        let b = ids("5 5 5 5 5 5 5 5 5 5 5 31 32 33 34 35 36 37 38 39");
        let r = judge(&a, &b, &s);
        assert!(!r.passed);
        assert_eq!(r.most_common, [11, 11]);
        // Exactly ten is not "more than half".
        let b = ids("5 5 5 5 5 5 5 5 5 5 30 31 32 33 34 35 36 37 38 39");
        assert!(judge(&a, &b, &s).passed);
    }

    #[test]
    fn generation_config_is_read_with_its_defaults() {
        let s = parse_generation_config(&serde_json::json!({
            "do_sample": true, "temperature": 0.6, "top_p": 0.9,
            "eos_token_id": [128001, 128009], "repetition_penalty": 1.05,
            "num_beams": 1, "no_repeat_ngram_size": 3, "suppress_tokens": []
        }))
        .unwrap();
        assert!(s.do_sample);
        assert_eq!(s.eos, vec![128001, 128009]);
        assert_eq!(s.repetition_penalty, 1.05);
        assert_eq!(s.ignored, vec!["no_repeat_ngram_size".to_string()]);
        let s = parse_generation_config(&serde_json::json!({"eos_token_id": 2})).unwrap();
        assert_eq!(
            s,
            GenerationSettings {
                eos: vec![2],
                ..Default::default()
            }
        );
        assert!(parse_generation_config(&serde_json::json!({"repetition_penalty": -1})).is_err());
        assert!(parse_generation_config(&serde_json::json!({"eos_token_id": "x"})).is_err());
    }

    #[test]
    fn too_few_samples_fails_and_says_why() {
        let r = too_few_samples(1, &GenerationSettings::default());
        assert!(!r.passed);
        assert!(r.reason.unwrap().contains("there is 1"));
    }
}
