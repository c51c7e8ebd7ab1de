//! The model's `tokenizer.json`, through the `tokenizers` crate (the Rust core of the Python
//! `tokenizers` package that transformers' fast tokenizers wrap, so ids agree with
//! `PreTrainedTokenizerFast`). Also lm-evaluation-harness's context/continuation split.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use super::EvalError;

/// A loaded tokenizer.
pub struct ModelTokenizer {
    inner: Tokenizer,
    path: PathBuf,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ModelTokenizer {
    /// Loads `<dir>/tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        let path = dir.join("tokenizer.json");
        if path.symlink_metadata().is_err() {
            let hint = if dir.join("tokenizer.model").is_file() {
                "only a sentencepiece tokenizer.model is present; save a fast tokenizer with \
                 `AutoTokenizer.from_pretrained(dir).save_pretrained(dir)` or use the harness evaluator"
            } else {
                "the model directory must contain the tokenizer.json of a fast tokenizer"
            };
            return Err(EvalError::Tokenizer {
                path,
                message: format!("not found (hint: {hint})"),
            });
        }
        // Read through the cap (a FIFO or a device is refused by name), then parsed from memory.
        let bytes = reprobox::input_file::read(&path, crate::TOKENIZER_CAP)?;
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(|e| EvalError::Tokenizer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // transformers turns off a truncation or padding saved in tokenizer.json unless the call
        // asks for one (`set_truncation_and_padding`), so a plain `tokenizer(text)` never
        // truncates or pads.
        inner
            .with_truncation(None)
            .map_err(|e| EvalError::Tokenizer {
                path: path.clone(),
                message: e.to_string(),
            })?
            .with_padding(None);
        Ok(Self { inner, path })
    }

    /// A copy that truncates every encoding to `max_length` tokens, special tokens included,
    /// from the right or (with `left`) the left, as transformers' `truncation=True,
    /// max_length=…` with the tokenizer's `truncation_side`.
    pub fn truncating(&self, max_length: usize, left: bool) -> Result<Self, EvalError> {
        use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};
        let mut inner = self.inner.clone();
        inner
            .with_truncation(Some(TruncationParams {
                direction: if left {
                    TruncationDirection::Left
                } else {
                    TruncationDirection::Right
                },
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| EvalError::BadArgument {
                message: format!("cannot truncate to {max_length} tokens: {e}"),
            })?;
        Ok(Self {
            inner,
            path: self.path.clone(),
        })
    }

    /// Token ids of `text`. With `add_special_tokens` the tokenizer's post-processor runs (it adds
    /// BOS for Llama-style tokenizers), as `tokenizer(text)` does in transformers.
    pub fn encode(
        &self,
        id: &str,
        text: &str,
        add_special_tokens: bool,
    ) -> Result<Vec<i64>, EvalError> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| EvalError::Tokenize {
                id: id.to_string(),
                message: e.to_string(),
            })?;
        Ok(enc.get_ids().iter().map(|&t| i64::from(t)).collect())
    }
}

impl ModelTokenizer {
    /// The id of the token `token` (a special or ordinary vocabulary entry).
    pub fn token_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(i64::from)
    }

    /// The text of `ids`, special tokens skipped (`decode(ids, skip_special_tokens=True)`).
    pub fn decode(&self, ids: &[i64]) -> Result<String, EvalError> {
        let ids: Vec<u32> = ids.iter().filter_map(|&t| u32::try_from(t).ok()).collect();
        self.inner
            .decode(&ids, true)
            .map_err(|e| EvalError::Tokenizer {
                path: self.path.clone(),
                message: format!("cannot decode: {e}"),
            })
    }
}

/// Python's `str.isspace` (what `str.rstrip()` strips): Unicode White_Space plus the
/// information separators U+001C..U+001F, which Python also counts.
fn python_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// lm-evaluation-harness 0.4.13 `HFLM._encode_pair`: trailing whitespace of the context moves to
/// the start of the continuation; the continuation's tokens are those of `context +
/// continuation` after the context's own tokens. Both go through lm-eval's `tok_encode`
/// defaults: `add_special_tokens` is left to the tokenizer, so its post-processor runs (a
/// Llama-style tokenizer puts BOS first), except for a string that already starts with
/// `prefix_text` (the text of lm-eval's `prefix_token_id`, usually the BOS), which gets no
/// special tokens.
pub fn encode_pair(
    tok: &ModelTokenizer,
    id: &str,
    context: &str,
    continuation: &str,
    prefix_text: Option<&str>,
) -> Result<(Vec<i64>, Vec<i64>), EvalError> {
    let tok_encode = |s: &str| {
        let has_prefix = prefix_text.is_some_and(|p| s.starts_with(p));
        tok.encode(id, s, !has_prefix)
    };
    let trimmed = context.trim_end_matches(python_isspace);
    let moved = &context[trimmed.len()..];
    let continuation = format!("{moved}{continuation}");
    let whole = tok_encode(&format!("{trimmed}{continuation}"))?;
    let ctx = tok_encode(trimmed)?;
    let cont = whole
        .get(ctx.len()..)
        .map(<[i64]>::to_vec)
        .unwrap_or_default();
    Ok((ctx, cont))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_matches_rstrip() {
        assert!(
            python_isspace(' ')
                && python_isspace('\n')
                && python_isspace('\u{1f}')
                && python_isspace('\u{a0}')
        );
        assert!(!python_isspace('a') && !python_isspace('\u{200b}'));
    }

    #[test]
    fn missing_tokenizer_has_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let e = ModelTokenizer::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("hint"), "{e}");
    }
}
