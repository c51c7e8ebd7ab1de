//! Neutralising control characters in text that came from a submission (task names, file
//! names, the team name, log lines) before it reaches a terminal or a Markdown file.
//!
//! A file name the submission alone controls could otherwise set a terminal's window title
//! (OSC), clear the screen, recolour the output, or reorder what a reader sees (bidi
//! overrides, "Trojan Source", CVE-2021-42574). Every such character is written out as a
//! visible `\u{…}` escape, so nothing is lost and nothing acts.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 controls (tab and newline excepted when
/// `multiline`), DEL, C1 controls, and the Unicode bidirectional formatting characters.
fn is_active(c: char, multiline: bool) -> bool {
    match c {
        '\n' | '\t' => !multiline,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi embeddings, overrides and isolates, the marks, and the Arabic letter mark.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => true,
        '\u{61c}' => true,
        // Line and paragraph separators end a line in some terminals and editors.
        '\u{2028}' | '\u{2029}' => true,
        _ => false,
    }
}

/// `s` with every control character written as a visible `\u{…}` escape. With `multiline`,
/// newlines and tabs are kept (log lines, messages spanning lines); without it, they are
/// escaped too (a name on one line). Returns `s` itself when nothing needs escaping.
pub fn neutralize(s: &str, multiline: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_active(c, multiline)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_active(c, multiline) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text with the characters JSON leaves raw (DEL, C1 controls, bidi formatting) written as
/// `\uXXXX` escapes: the same document, which no longer acts on a terminal. They can only occur
/// inside strings (the JSON grammar allows them nowhere else), where the escape means the same
/// character, so a parser reads back exactly what was written.
pub fn json_escape_controls(json: &str) -> Cow<'_, str> {
    // serde_json already escapes C0 controls; everything else `is_active` names is left here.
    if !json.chars().any(|c| is_active(c, true)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_active(c, true) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_kind_of_control_character() {
        let cases = [
            // OSC 0: set the window title, ended by BEL.
            ("\u{1b}]0;pwned\u{7}model", "\\u{1b}]0;pwned\\u{7}model"),
            // Clear screen and a colour.
            ("\u{1b}[2J\u{1b}[31mred", "\\u{1b}[2J\\u{1b}[31mred"),
            ("cr\rback", "cr\\u{d}back"),
            ("del\u{7f}", "del\\u{7f}"),
            // C1 CSI, which some terminals act on in UTF-8 too.
            ("c1\u{9b}2J", "c1\\u{9b}2J"),
            ("bidi \u{202e}txt.exe", "bidi \\u{202e}txt.exe"),
            ("iso\u{2066}late\u{2069}", "iso\\u{2066}late\\u{2069}"),
            ("mark\u{200f}", "mark\\u{200f}"),
            ("nul\u{0}", "nul\\u{0}"),
        ];
        for (input, want) in cases {
            assert_eq!(neutralize(input, true), want, "{input:?}");
            assert_eq!(neutralize(input, false), want, "{input:?}");
        }
    }

    #[test]
    fn newlines_and_tabs_are_kept_only_in_multiline_text() {
        assert_eq!(neutralize("a\tb\nc", true), "a\tb\nc");
        assert_eq!(neutralize("a\tb\nc", false), "a\\u{9}b\\u{a}c");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "",
            "model/pytorch_model.bin",
            "Ünïcødé ✓ 模型",
            "tabs\tand\nlines",
        ] {
            assert!(
                matches!(neutralize(s, true), Cow::Borrowed(x) if x == s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn json_stays_the_same_document() {
        let value = serde_json::json!({
            "task": "\u{1b}]0;x\u{7}\u{9b}\u{202e}\u{7f}",
        });
        let text = serde_json::to_string(&value).unwrap();
        let safe = json_escape_controls(&text);
        assert!(
            !safe.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }
}
