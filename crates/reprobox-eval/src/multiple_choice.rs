//! Subnet 37 MULTIPLE_CHOICE in its generation style (`compute_multiple_choice_deviation`,
//! docs/references.md S§2.1): the challenge becomes a user turn of the model's chat template with the
//! generation prompt, the model generates greedily (at most 20 new tokens, repetition penalty 1.1,
//! stopping at the tokenizer's EOS), and the answer is the first standalone letter A–D of the
//! decoded text.

use unicode_categories::UnicodeCategories;

/// `GenerationConfig(max_new_tokens=20)` of the subnet.
pub const MAX_NEW_TOKENS: usize = 20;
/// `GenerationConfig(repetition_penalty=1.1)` of the subnet.
pub const REPETITION_PENALTY: f64 = 1.1;
/// The competitions' `sequence_length` (B7_MULTI_CHOICE, INSTRUCT_8B): prompts longer than this are
/// truncated from the left (`truncation_side="left"`).
pub const SEQUENCE_LENGTH: usize = 4096;
/// The letters the subnet accepts as answers.
pub const LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// Python's `\w` on `str` patterns: Unicode letters (`isalpha`: categories L*), numbers
/// (`isnumeric`: N*) and the underscore.
fn is_word_char(c: char) -> bool {
    c == '_' || c.is_letter() || c.is_number()
}

/// The subnet's answer parser: `re.sub(r"\W", " ", response).split()`, keep the tokens that are
/// exactly `A`, `B`, `C` or `D` (case-sensitive), and take the first. So a leading article "A"
/// answers A, "(B)" and "B." answer B, and "Bb", "b" or "A_" answer nothing.
pub fn parse_answer_letter(response: &str) -> Option<&'static str> {
    response
        .split(|c: char| !is_word_char(c))
        .find_map(|token| LETTERS.iter().find(|&&l| l == token).copied())
}

/// `{question}\nA. {choice}\nB. …`: the challenge reprobox builds from a `{"question", "choices"}`
/// line, in the layout of the subnet's MMLU rows (docs/references.md S§3.1, S§3.4).
pub fn format_challenge(question: &str, choices: &[String]) -> String {
    let mut s = question.to_string();
    for (letter, choice) in LETTERS.iter().zip(choices) {
        s.push_str(&format!("\n{letter}. {choice}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_standalone_letter_as_the_subnet_parses_it() {
        // (response, parsed letter): docs/references.md S§2.1.
        let table: &[(&str, Option<&str>)] = &[
            ("B", Some("B")),
            ("The answer is C.", Some("C")),
            ("A dog is the answer: D", Some("A")), // the article "A" counts as A
            ("(B) because", Some("B")),
            ("B.", Some("B")),
            ("answer:D", Some("D")),
            ("C-D", Some("C")),
            ("Option: b", None), // case-sensitive
            ("Bb or AB", None),  // whole tokens only
            ("A_ B", Some("B")), // `_` is a word character
            ("B2 then C", Some("C")),
            ("\u{e9}A C", Some("C")),   // é is a letter: "éA" is one token
            ("\u{b7}A", Some("A")),     // · is not a word character
            ("\u{2460}B D", Some("D")), // ① is a number (No): "①B" is one token
            ("E F", None),
            ("", None),
            ("\n\n  D\n", Some("D")),
            ("Answer\u{a0}A", Some("A")),
        ];
        for &(response, want) in table {
            assert_eq!(parse_answer_letter(response), want, "{response:?}");
        }
    }

    #[test]
    fn challenge_layout() {
        assert_eq!(
            format_challenge("Q?", &["x".into(), "y".into()]),
            "Q?\nA. x\nB. y"
        );
    }
}
