//! Sentence counting as subnet 37's IF_EVAL rules 3 and 4 do it: NLTK's `PunktSentenceTokenizer()`
//! with no training, so no abbreviations, collocations or sentence starters are known
//! (docs/references.md S§3.4). This is a port of the parts of NLTK 3.x's
//! `nltk/tokenize/punkt.py` that run with empty parameters: the period-context scan, the word
//! tokenizer, the first annotation pass, the orthographic heuristic for initials and numbers, and
//! the boundary realignment. The regular expressions are NLTK's, compiled with Oniguruma's Python
//! syntax (Rust's `regex` has no look-ahead).
//!
//! Known difference: Oniguruma's `\s` is Unicode White_Space, Python's `\s` also matches the
//! separators U+001C–U+001F. Offsets are byte offsets, which slice the same text as Python's
//! code-point offsets.

use std::sync::OnceLock;

use onig::{Regex, RegexOptions, Syntax};

/// `PunktLanguageVars._re_non_word_chars`.
const NON_WORD: &str = r#"(?:[)";}\]\*:@'\({\[!?])"#;
/// `PunktLanguageVars._re_multi_char_punct`.
const MULTI_CHAR: &str = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)";
/// `PunktLanguageVars._re_word_start`.
const WORD_START: &str = r#"[^\("\`{\[:;&\#\*@\)}\]\-,]"#;

fn compile(pattern: &str) -> Regex {
    // The patterns are constants: a failure is a bug caught by every test.
    Regex::with_options(pattern, RegexOptions::REGEX_OPTION_NONE, Syntax::python())
        .unwrap_or_else(|e| panic!("punkt pattern {pattern:?}: {e}"))
}

/// `_word_tokenize_fmt`: one token per match.
fn word_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        compile(&format!(
            r"({MULTI_CHAR}|(?={WORD_START})\S+?(?=\s|$|{NON_WORD}|{MULTI_CHAR}|,(?=$|\s|{NON_WORD}|{MULTI_CHAR}))|\S)"
        ))
    })
}

/// `_period_context_fmt`: group 1 is `after_tok`, group 2 `next_tok`.
fn period_context_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile(&format!(r"[\.\?!](?=({NON_WORD}|\s+(\S+)))")))
}

/// `re_boundary_realignment`, compiled MULTILINE in NLTK: `$` is written out as "before a
/// newline or at the end".
fn realign_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile(r#"["')\]}]+?(?:\s+|(?=--)|(?=\n)|(?![\s\S]))"#))
}

fn number_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile(r"^-?[\.,]?\d[\d,\.-]*\.?$"))
}

fn initial_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile(r"^[^\W\d]\.$"))
}

fn ellipsis_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile(r"^\.\.+$"))
}

/// Python's `str.isupper()` / `str.islower()` on one character: titlecase letters count as
/// neither here, but make `isupper`/`islower` of a string false (see [`super::python_isupper`]).
fn first_upper(tok: &str) -> bool {
    tok.chars().next().is_some_and(char::is_uppercase)
}

fn first_lower(tok: &str) -> bool {
    tok.chars().next().is_some_and(char::is_lowercase)
}

/// A token and what the annotation passes decided about it.
struct Token<'a> {
    tok: &'a str,
    sentbreak: bool,
    abbr: bool,
}

impl Token<'_> {
    fn period_final(&self) -> bool {
        self.tok.ends_with('.')
    }

    /// `type`: the lowercased token, numbers folded to `##number##`.
    fn typ(&self) -> String {
        let lower = self.tok.to_lowercase();
        if number_re().is_match(&lower) {
            "##number##".into()
        } else {
            lower
        }
    }

    fn type_no_period(&self) -> String {
        let t = self.typ();
        if t.chars().count() > 1 && t.ends_with('.') {
            t[..t.len() - 1].to_owned()
        } else {
            t
        }
    }
}

/// `_tokenize_words`: the word tokenizer, line by line.
fn tokenize_words(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            continue;
        }
        for m in word_re().find_iter(line) {
            out.push(Token {
                tok: &line[m.0..m.1],
                sentbreak: false,
                abbr: false,
            });
        }
    }
    out
}

/// `_annotate_tokens` with empty parameters.
fn annotate(tokens: &mut [Token<'_>]) {
    for t in tokens.iter_mut() {
        // `tok in sent_end_chars` is membership in the tuple (".", "?", "!").
        if matches!(t.tok, "." | "?" | "!") {
            t.sentbreak = true;
        } else if ellipsis_re().is_match(t.tok) {
            // an ellipsis: never a break without a known sentence starter
        } else if t.period_final() && !t.tok.ends_with("..") {
            // No abbreviation is known: every other period-final token is a break.
            t.sentbreak = true;
        }
    }
    for i in 0..tokens.len().saturating_sub(1) {
        if !tokens[i].period_final() {
            continue;
        }
        let is_initial = initial_re().is_match(tokens[i].tok);
        let is_number = tokens[i].type_no_period() == "##number##";
        if !(is_initial || is_number) {
            continue;
        }
        match ortho_heuristic(tokens[i + 1].tok) {
            Some(false) => {
                tokens[i].sentbreak = false;
                tokens[i].abbr = true;
            }
            None if is_initial && first_upper(tokens[i + 1].tok) => {
                tokens[i].sentbreak = false;
                tokens[i].abbr = true;
            }
            _ => {}
        }
    }
}

/// `_ortho_heuristic` with an empty orthographic context: `Some(false)` means "does not start a
/// sentence", `None` is NLTK's "unknown". It never says `Some(true)` without training.
fn ortho_heuristic(tok: &str) -> Option<bool> {
    // NLTK tests `tok in ";:,.!?"`, a substring test.
    if ";:,.!?".contains(tok) {
        return Some(false);
    }
    if first_lower(tok) {
        return Some(false);
    }
    None
}

/// `text_contains_sentbreak`: a break followed by at least one more token.
fn contains_sentbreak(context: &str) -> bool {
    let mut tokens = tokenize_words(context);
    annotate(&mut tokens);
    let mut found = false;
    for t in &tokens {
        if found {
            return true;
        }
        if t.sentbreak {
            found = true;
        }
    }
    false
}

/// One potential sentence end: where its match ends, where the next token starts (when
/// whitespace follows), and the context NLTK tokenizes to decide.
struct EndContext<'a> {
    end: usize,
    next_tok: Option<usize>,
    context: &'a str,
}

/// `_get_last_whitespace_index`: the last index holding `string.whitespace`, or 0.
fn last_whitespace_index(text: &str) -> usize {
    text.bytes()
        .rposition(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .unwrap_or(0)
}

/// `_match_potential_end_contexts`: each end character with the word before it. A candidate
/// whose word overlaps the next candidate's is dropped, as NLTK does.
fn potential_end_contexts(text: &str) -> Vec<EndContext<'_>> {
    // (word start, match end, after_tok end, next_tok start)
    let mut candidates: Vec<(usize, usize, usize, Option<usize>)> = Vec::new();
    let mut out = Vec::new();
    let mut previous_slice = (0usize, 0usize);
    let mut previous: Option<(usize, usize, usize, Option<usize>)> = None;
    for caps in period_context_re().captures_iter(text) {
        let Some((m0, m1)) = caps.pos(0) else {
            continue;
        };
        let after_end = caps.pos(1).map_or(m1, |(_, e)| e);
        let next_tok = caps.pos(2).map(|(s, _)| s);
        let idx = last_whitespace_index(&text[previous_slice.1..m0]);
        // NLTK's `if index_after_last_space:` treats a space at index 0 as none.
        let word_start = if idx != 0 {
            idx + previous_slice.1 + 1
        } else {
            previous_slice.0
        };
        if let Some(p) = previous
            && previous_slice.1 <= word_start
        {
            candidates.push(p);
        }
        previous = Some((word_start, m1, after_end, next_tok));
        previous_slice = (word_start, m0);
    }
    candidates.extend(previous);
    for (word_start, end, after_end, next_tok) in candidates {
        out.push(EndContext {
            end,
            next_tok,
            context: &text[word_start..after_end],
        });
    }
    out
}

/// `_slices_from_text` then `_realign_boundaries`: the sentences' byte ranges.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let mut slices = Vec::new();
    let mut last_break = 0;
    for c in potential_end_contexts(text) {
        if contains_sentbreak(c.context) {
            slices.push((last_break, c.end));
            last_break = c.next_tok.unwrap_or(c.end);
        }
    }
    slices.push((last_break, text.trim_end_matches(python_whitespace).len()));

    let mut out = Vec::new();
    let mut realign = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        // A closing quote or bracket at the start of the next sentence belongs to this one.
        let s1 = (start + realign, stop);
        match slices.get(i + 1) {
            None => {
                if s1.0 < s1.1 {
                    out.push(s1);
                }
            }
            Some(&(n0, n1)) => {
                let next = text.get(n0..n1.max(n0)).unwrap_or("");
                match realign_re().match_with_options(
                    next,
                    0,
                    onig::SearchOptions::SEARCH_OPTION_NONE,
                    None,
                ) {
                    Some(len) => {
                        let m = &next[..len];
                        out.push((s1.0, n0 + m.trim_end_matches(python_whitespace).len()));
                        realign = len;
                    }
                    None => {
                        realign = 0;
                        if s1.0 < s1.1 {
                            out.push(s1);
                        }
                    }
                }
            }
        }
    }
    out
}

/// `len(PunktSentenceTokenizer().tokenize(text))`.
pub fn count_sentences(text: &str) -> usize {
    sentence_spans(text).len()
}

/// Python's `str.isspace()` for the characters `rstrip()` removes.
fn python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_examples() {
        // docs/references.md S§3.4: the untrained tokenizer splits "Hello!?" in two.
        assert_eq!(count_sentences("Hello!?"), 2);
        assert_eq!(count_sentences("Hello. World."), 2);
        assert_eq!(count_sentences("Hello."), 1);
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("   "), 0);
    }

    #[test]
    fn initials_and_numbers_before_lowercase_do_not_break() {
        assert_eq!(count_sentences("It cost 3. dollars more."), 1);
        assert_eq!(count_sentences("J. Smith wrote it. Then he left."), 2);
        assert_eq!(count_sentences("Wait... what happened? Nothing."), 2);
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        let text = "He said \"stop.\" Then he left.";
        let spans = sentence_spans(text);
        let sentences: Vec<&str> = spans.iter().map(|&(a, b)| &text[a..b]).collect();
        assert_eq!(sentences, ["He said \"stop.\"", "Then he left."]);
    }
}
