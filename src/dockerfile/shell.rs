//! Shell text as simple commands: enough of `sh` to lint RUN lines and the scripts a build or a
//! training runs, not a shell. Commands are split on `&&`, `||`, `;`, `|`, `&`, parentheses and
//! newlines; quotes are removed; a `#` that starts a word starts a comment. Variables are not
//! expanded, so a command built from variables is not understood.

/// A shell word with its byte offset in the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub offset: usize,
}

/// Splits shell text into simple commands, each a list of words with quotes removed.
pub fn simple_commands(text: &str) -> Vec<Vec<Word>> {
    let mut commands = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut cur = String::new();
    let mut cur_start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    let flush = |words: &mut Vec<Word>, cur: &mut String, start: &mut Option<usize>| {
        if let Some(s) = start.take() {
            words.push(Word {
                text: std::mem::take(cur),
                offset: s,
            });
        }
    };
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' {
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                cur_start.get_or_insert(i);
            }
            '\\' => {
                cur_start.get_or_insert(i);
                if let Some((_, n)) = chars.next()
                    && n != '\n'
                {
                    cur.push(n);
                }
            }
            '#' if cur_start.is_none() => {
                // A comment runs to the end of the line.
                while chars.peek().is_some_and(|&(_, n)| n != '\n') {
                    chars.next();
                }
            }
            ' ' | '\t' | '\r' => flush(&mut words, &mut cur, &mut cur_start),
            ';' | '|' | '&' | '(' | ')' | '\n' => {
                flush(&mut words, &mut cur, &mut cur_start);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            _ => {
                cur_start.get_or_insert(i);
                cur.push(c);
            }
        }
    }
    flush(&mut words, &mut cur, &mut cur_start);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

/// The last path component of a word (`/usr/bin/python3` → `python3`).
pub fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Strips `VAR=value` prefixes and wrappers (`sudo`, `env`, `time`, …) from a simple command:
/// the program's basename and its arguments.
pub fn program_and_args(cmd: &[Word]) -> Option<(&str, &[Word])> {
    let mut i = 0;
    while i < cmd.len() {
        let w = cmd[i].text.as_str();
        let is_assignment = w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_assignment
            || matches!(
                w,
                "sudo"
                    | "env"
                    | "time"
                    | "nohup"
                    | "exec"
                    | "then"
                    | "do"
                    | "else"
                    | "!"
                    | "if"
                    | "while"
            )
        {
            i += 1;
        } else {
            break;
        }
    }
    cmd.get(i).map(|w| (basename(&w.text), &cmd[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &str) -> Vec<Vec<String>> {
        simple_commands(t)
            .into_iter()
            .map(|c| c.into_iter().map(|w| w.text).collect())
            .collect()
    }

    #[test]
    fn splits_commands_and_strips_quotes_and_comments() {
        assert_eq!(
            texts("a 'b c' && d \"e\\\"f\" # no\n g#h; i|j"),
            [
                vec!["a", "b c"],
                vec!["d", "e\"f"],
                vec!["g#h"],
                vec!["i"],
                vec!["j"]
            ]
        );
        let cmd = &simple_commands("FOO=1 sudo /usr/bin/python3 x.py")[0];
        let (prog, args) = program_and_args(cmd).unwrap();
        assert_eq!(prog, "python3");
        assert_eq!(args[0].text, "x.py");
        assert_eq!(args[0].offset, 28);
    }
}
