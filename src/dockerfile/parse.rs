//! Dockerfile text to logical instructions, and the instructions the builder would reject.
//!
//! The grammar is BuildKit's (docs.docker.com/reference/dockerfile/): parser directives
//! (`# escape=`) only before the first comment, blank line or instruction; a line ending in the
//! escape character continues on the next; comment and blank lines inside a continuation are
//! skipped; `RUN`, `COPY` and `ADD` may carry heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`), whose
//! bodies are not instructions. Every instruction keeps a map from byte offsets in its joined
//! arguments to physical lines, so a finding names the line of the offending word. One pass over
//! the lines, each joined once: linear in the size of the file.

use crate::lines::LineIndex;

/// The instructions BuildKit knows (docs.docker.com/reference/dockerfile/#overview).
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The `--flag`s each instruction accepts (the same reference, per instruction).
fn known_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "FROM" => &["platform"],
        "RUN" => &["mount", "network", "security"],
        "COPY" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "ADD" => &[
            "chown",
            "chmod",
            "checksum",
            "keep-git-dir",
            "link",
            "exclude",
            "unpack",
        ],
        "HEALTHCHECK" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    }
}

/// One heredoc: the body between `<<NAME` and the line that is exactly `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word.
    pub name: String,
    /// The body, lines joined with `\n` (leading tabs stripped for `<<-`).
    pub body: String,
    /// The 1-based line of the body's first line.
    pub first_line: u32,
}

impl Heredoc {
    /// The physical line of byte `offset` of the body.
    pub fn line_at(&self, index: &LineIndex, offset: usize) -> u32 {
        self.first_line + index.line(offset) - 1
    }
}

/// A `--name=value` (or bare `--name`) flag before an instruction's operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// One logical instruction: a keyword, its arguments joined across continuation lines, and a map
/// from byte offsets in `args` back to physical line numbers.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// The keyword, upper-cased (`FROM`, `RUN`, …).
    pub keyword: String,
    /// The arguments after the keyword, continuation lines joined with a single space.
    pub args: String,
    /// Heredoc bodies, in the order their markers appear.
    pub heredocs: Vec<Heredoc>,
    /// `(offset in args, 1-based line)` at the start of each physical piece, ascending.
    segments: Vec<(usize, u32)>,
}

impl Instruction {
    /// The 1-based line the instruction starts on.
    pub fn line(&self) -> u32 {
        self.segments.first().map(|s| s.1).unwrap_or(1)
    }

    /// The physical line that holds byte `offset` of `args`.
    pub fn line_at(&self, offset: usize) -> u32 {
        let n = self.segments.partition_point(|&(start, _)| start <= offset);
        self.segments
            .get(n.saturating_sub(1))
            .map(|s| s.1)
            .unwrap_or(1)
    }

    /// The leading `--flags` and the byte offset in `args` where the operands start.
    pub fn flags(&self) -> (Vec<Flag>, usize) {
        let mut flags = Vec::new();
        let mut rest = self.args.as_str();
        let mut offset = 0;
        while let Some(after) = rest.strip_prefix("--") {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            let word = &after[..end];
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v.trim_matches('"').to_owned())),
                None => (word, None),
            };
            flags.push(Flag {
                name: name.to_owned(),
                value,
            });
            let consumed = 2 + end;
            let trimmed = after[end..].trim_start();
            offset += consumed + (after.len() - end - trimmed.len());
            rest = trimmed;
        }
        (flags, offset)
    }

    /// The value of flag `--name`, if given.
    pub fn flag(&self, name: &str) -> Option<String> {
        self.flags()
            .0
            .into_iter()
            .find(|f| f.name == name)
            .map(|f| f.value.unwrap_or_default())
    }

    /// The arguments after the flags.
    pub fn operands(&self) -> &str {
        &self.args[self.flags().1..]
    }

    /// The exec (JSON array) form of the operands, when they are one.
    pub fn exec_form(&self) -> Option<Vec<String>> {
        let ops = self.operands().trim();
        if !ops.starts_with('[') {
            return None;
        }
        serde_json::from_str::<Vec<String>>(ops).ok()
    }
}

/// An instruction the builder would reject, or a file it cannot read as a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line (1 when the whole file is meant).
    pub line: u32,
    pub message: String,
    pub hint: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
    /// What the builder would reject, in line order.
    pub errors: Vec<SyntaxError>,
}

impl Dockerfile {
    /// The instructions with this keyword.
    pub fn with_keyword<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }
}

/// The `# escape=` directive's character, when `line` is that directive.
fn directive(line: &str) -> Option<Directive> {
    let rest = line.trim().strip_prefix('#')?.trim();
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    if key.eq_ignore_ascii_case("escape") {
        return Some(Directive::Escape(value.trim().to_owned()));
    }
    Some(Directive::Other)
}

enum Directive {
    Escape(String),
    Other,
}

/// The heredoc markers in an instruction's arguments: `(name, strip tabs)`, in order.
fn heredoc_markers(args: &str) -> Vec<(String, bool)> {
    let bytes = args.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'<'
            && bytes[i + 1] == b'<'
            && bytes.get(i + 2) != Some(&b'<')
            && (i == 0 || bytes[i - 1] != b'<')
        {
            let mut j = i + 2;
            let strip = bytes.get(j) == Some(&b'-');
            if strip {
                j += 1;
            }
            let quote = match bytes.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    j += 1;
                    Some(q)
                }
                _ => None,
            };
            let start = j;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j > start && quote.is_none_or(|q| bytes.get(j) == Some(&q)) {
                out.push((args[start..j].to_owned(), strip));
            }
            i = j.max(i + 2);
        } else {
            i += 1;
        }
    }
    out
}

/// Splits a Dockerfile into logical instructions and checks them against the builder's rules.
pub fn parse(text: &str) -> Dockerfile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut out: Vec<Instruction> = Vec::new();
    let mut errors = Vec::new();
    let mut current: Option<Instruction> = None;
    let mut directives_open = true;
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        i += 1;
        if directives_open {
            match directive(raw) {
                Some(Directive::Escape(v)) => {
                    match v.as_str() {
                        "`" => escape = '`',
                        "\\" => escape = '\\',
                        _ => errors.push(SyntaxError {
                            line: line_no,
                            message: format!("invalid escape directive `{v}`"),
                            hint: "the escape character is ``\\`` (the default) or `` ` ``"
                                .to_owned(),
                        }),
                    }
                    continue;
                }
                Some(Directive::Other) => continue,
                None => directives_open = false,
            }
        }
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            // A comment or blank line: inside a continuation it is skipped, outside it ends nothing.
            continue;
        }
        let (piece, continues) = match trimmed.strip_suffix(escape) {
            Some(p) => (p.trim_end(), true),
            None => (trimmed, false),
        };
        match current.as_mut() {
            Some(inst) => {
                if !inst.args.is_empty() {
                    inst.args.push(' ');
                }
                inst.segments.push((inst.args.len(), line_no));
                inst.args.push_str(piece.trim_start());
            }
            None => {
                let (kw, rest) = match piece.find(char::is_whitespace) {
                    Some(p) => (&piece[..p], piece[p..].trim_start()),
                    None => (piece, ""),
                };
                current = Some(Instruction {
                    keyword: kw.to_ascii_uppercase(),
                    args: rest.to_owned(),
                    heredocs: Vec::new(),
                    segments: vec![(0, line_no)],
                });
            }
        }
        if continues {
            continue;
        }
        let Some(mut inst) = current.take() else {
            continue;
        };
        if matches!(inst.keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, strip) in heredoc_markers(&inst.args) {
                let first_line = u32::try_from(i + 1).unwrap_or(u32::MAX);
                let mut body = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let l = if strip { l.trim_start_matches('\t') } else { l };
                    if l == name {
                        closed = true;
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                if !closed {
                    errors.push(SyntaxError {
                        line: inst.line(),
                        message: format!("heredoc `<<{name}` is never closed"),
                        hint: format!("end the heredoc with a line that is exactly `{name}`"),
                    });
                }
                inst.heredocs.push(Heredoc {
                    name,
                    body,
                    first_line,
                });
            }
        }
        out.push(inst);
    }
    out.extend(current.take());
    errors.extend(validate(&out));
    errors.sort_by_key(|e| e.line);
    Dockerfile {
        instructions: out,
        errors,
    }
}

fn err(line: u32, message: String, hint: &str) -> SyntaxError {
    SyntaxError {
        line,
        message,
        hint: hint.to_owned(),
    }
}

/// What the builder rejects before it runs anything: unknown instructions and flags, an
/// instruction before the first FROM, missing or malformed operands.
fn validate(instructions: &[Instruction]) -> Vec<SyntaxError> {
    let mut errors = Vec::new();
    if instructions.is_empty() {
        errors.push(err(
            1,
            "the Dockerfile has no instructions".to_owned(),
            "start it with `FROM <image>@sha256:<digest>`",
        ));
        return errors;
    }
    let mut seen_from = false;
    for inst in instructions {
        let line = inst.line();
        let kw = inst.keyword.as_str();
        if !KEYWORDS.contains(&kw) {
            errors.push(err(
                line,
                format!("unknown instruction `{}`", inst.keyword),
                "use one of FROM, RUN, COPY, ADD, ARG, ENV, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, EXPOSE, VOLUME, SHELL, HEALTHCHECK, STOPSIGNAL, ONBUILD (a continued line needs `\\` at the end of the line before)",
            ));
            continue;
        }
        if kw == "FROM" {
            seen_from = true;
        } else if kw != "ARG" && !seen_from {
            errors.push(err(
                line,
                format!("`{kw}` before the first FROM"),
                "only ARG may come before the first FROM",
            ));
        }
        let allowed = known_flags(kw);
        if !allowed.is_empty() {
            for f in inst.flags().0 {
                if !allowed.contains(&f.name.as_str()) {
                    errors.push(err(
                        line,
                        format!("unknown flag `--{}` for {kw}", f.name),
                        &format!(
                            "{kw} accepts {}",
                            allowed
                                .iter()
                                .map(|a| format!("--{a}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
        let ops = if allowed.is_empty() {
            inst.args.as_str()
        } else {
            inst.operands()
        };
        let words: Vec<&str> = ops.split_whitespace().collect();
        let needs_args = !matches!(kw, "CMD" | "ENTRYPOINT" | "HEALTHCHECK");
        if needs_args && words.is_empty() {
            errors.push(err(
                line,
                format!("{kw} has no arguments"),
                "give the instruction its arguments, or delete the line",
            ));
            continue;
        }
        match kw {
            "FROM" => {
                let ok =
                    words.len() == 1 || (words.len() == 3 && words[1].eq_ignore_ascii_case("as"));
                if !ok {
                    errors.push(err(
                        line,
                        "FROM takes an image and optionally `AS <name>`".to_owned(),
                        "write `FROM <image> [AS <stage>]`",
                    ));
                }
            }
            "COPY" | "ADD" if inst.exec_form().is_none() && words.len() < 2 => {
                errors.push(err(
                    line,
                    format!("{kw} needs a source and a destination"),
                    &format!("write `{kw} <source>… <destination>`"),
                ));
            }
            "ENV" if !words[0].contains('=') && words.len() < 2 => {
                errors.push(err(
                    line,
                    format!("ENV `{}` has no value", words[0]),
                    "write `ENV NAME=value`",
                ));
            }
            "SHELL" if inst.exec_form().is_none() => {
                errors.push(err(
                    line,
                    "SHELL must be a JSON array".to_owned(),
                    "write `SHELL [\"/bin/bash\", \"-c\"]`",
                ));
            }
            "ONBUILD" => {
                let inner = words[0].to_ascii_uppercase();
                if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    errors.push(err(
                        line,
                        format!("ONBUILD cannot trigger {inner}"),
                        "ONBUILD takes any instruction except ONBUILD, FROM and MAINTAINER",
                    ));
                }
            }
            _ => {}
        }
    }
    if !seen_from {
        errors.push(err(
            1,
            "the Dockerfile has no FROM instruction".to_owned(),
            "start the build with `FROM <image>@sha256:<digest>`",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_map_to_physical_lines() {
        let df = parse("FROM a\nRUN echo 1 \\\n  # comment\n  && pip install \\\n   torch\n");
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        let insts = &df.instructions;
        assert_eq!(insts.len(), 2);
        let run = &insts[1];
        assert_eq!(run.line(), 2);
        let off = run.args.find("torch").unwrap();
        assert_eq!(run.line_at(off), 5);
        assert_eq!(run.line_at(0), 2);
    }

    #[test]
    fn escape_directive_and_backtick_continuations() {
        let df = parse("# escape=`\nFROM a\nRUN echo `\n  b\nCOPY c:\\x d\n");
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        assert_eq!(df.instructions[1].args, "echo b");
        assert_eq!(df.instructions[2].args, "c:\\x d");
        // A directive after a comment is just a comment.
        let late = parse("# hello\n# escape=`\nFROM a\nRUN x `\n");
        assert_eq!(late.instructions[1].args, "x `");
    }

    #[test]
    fn heredocs_are_bodies_not_instructions() {
        let df = parse(
            "FROM a\nRUN <<EOF\npip install x\nFROM y\nEOF\nCOPY <<-\"CFG\" /etc/c\n\tk = v\n\tCFG\nUSER 1000\n",
        );
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        let kws: Vec<&str> = df.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(kws, ["FROM", "RUN", "COPY", "USER"]);
        let run = &df.instructions[1];
        assert_eq!(run.heredocs[0].body, "pip install x\nFROM y\n");
        assert_eq!(run.heredocs[0].first_line, 3);
        let idx = LineIndex::new(&run.heredocs[0].body);
        assert_eq!(run.heredocs[0].line_at(&idx, 14), 4);
        assert_eq!(df.instructions[2].heredocs[0].body, "k = v\n");
        let open = parse("FROM a\nRUN <<EOF\necho\n");
        assert_eq!(open.errors.len(), 1);
        assert_eq!(open.errors[0].line, 2);
        // A here-string is not a heredoc.
        assert!(
            parse("FROM a\nRUN cat <<<x\n").instructions[1]
                .heredocs
                .is_empty()
        );
    }

    #[test]
    fn flags_operands_and_exec_form() {
        let df = parse(
            "FROM --platform=linux/amd64 img AS b\nCOPY --from=b --chown=1:1 /a /b\nCMD [\"python3\", \"t.py\"]\nRUN --mount=type=cache,target=/r pip install x\n",
        );
        assert!(df.errors.is_empty(), "{:?}", df.errors);
        let from = &df.instructions[0];
        assert_eq!(from.flag("platform").as_deref(), Some("linux/amd64"));
        assert_eq!(from.operands(), "img AS b");
        let copy = &df.instructions[1];
        assert_eq!(copy.flag("from").as_deref(), Some("b"));
        assert_eq!(copy.operands(), "/a /b");
        assert_eq!(
            df.instructions[2].exec_form(),
            Some(vec!["python3".to_owned(), "t.py".to_owned()])
        );
        let run = &df.instructions[3];
        assert_eq!(&run.args[run.flags().1..], "pip install x");
    }

    #[test]
    fn what_the_builder_rejects() {
        let lines = |t: &str| -> Vec<u32> { parse(t).errors.iter().map(|e| e.line).collect() };
        assert_eq!(lines("FROM a\nRUNN x\n"), [2]);
        assert_eq!(lines("RUN x\nFROM a\n"), [1]);
        assert_eq!(lines("ARG A=1\nFROM a\n"), Vec::<u32>::new());
        assert_eq!(lines("FROM a\nCOPY x\n"), [2]);
        assert_eq!(lines("FROM a\nCOPY --frm=x a b\n"), [2]);
        assert_eq!(lines("FROM a b\n"), [1]);
        assert_eq!(lines("FROM\n"), [1]);
        assert_eq!(lines("FROM a\nENV X\n"), [2]);
        assert_eq!(lines("FROM a\nSHELL /bin/bash\n"), [2]);
        assert_eq!(lines(""), [1]);
        assert_eq!(lines("# only a comment\n"), [1]);
        assert_eq!(lines("FROM a\nONBUILD FROM b\n"), [2]);
        // A missing continuation turns the next line into an unknown instruction.
        assert_eq!(lines("FROM a\nRUN pip install \\\n  x\n  && echo\n"), [4]);
    }

    #[test]
    fn parsing_is_linear() {
        let mut text = String::from("FROM a\nRUN echo start");
        for _ in 0..100_000 {
            text.push_str(" \\\n  && echo x");
        }
        text.push('\n');
        // It must finish (quadratic joining of 10^5 pieces takes minutes) and be right; the
        // scaling itself is measured by scripts/bench-parse, not asserted on a clock here.
        let df = parse(&text);
        assert_eq!(df.instructions.len(), 2);
        let run = &df.instructions[1];
        assert_eq!(run.line_at(run.args.len() - 1), 100_002);
        // Every piece's line, looked up once: a linear scan per lookup would be 10^10 steps.
        let mut last = 0;
        for (offset, _) in run.args.match_indices("&&") {
            let line = run.line_at(offset);
            assert!(line > last);
            last = line;
        }
        assert_eq!(last, 100_002);
    }
}
