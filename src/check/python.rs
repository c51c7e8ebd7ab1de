//! Python source as tokens and the few facts `check` reads from it, without a Python interpreter:
//! imports, calls with their arguments, string constants, argparse defaults and dataclass field
//! defaults. The tokenizer knows strings (prefixes, triple quotes, escapes), comments, line
//! continuations and brackets across lines, so a call split over lines or a `#` inside a string
//! is read right. It is a scanner, not a parser: code built at run time is not understood.

/// A token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Name(String),
    Str(String),
    Num,
    Op(String),
    /// The end of a logical line.
    Newline,
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: u32,
}

/// Splits Python source into tokens. Never fails: an unterminated string runs to the end.
pub fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line: u32 = 1;
    let mut depth: usize = 0;
    let push_newline = |out: &mut Vec<Token>, line: u32| {
        if out.last().is_some_and(|t| t.tok != Tok::Newline) {
            out.push(Token {
                tok: Tok::Newline,
                line,
            });
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                if depth == 0 {
                    push_newline(&mut out, line);
                }
                line += 1;
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                line += 1;
                i += 2;
            }
            b' ' | b'\t' | b'\r' | b'\x0c' | b'\\' => i += 1,
            b'"' | b'\'' => {
                let (s, next, lines) = read_string(src, i, false);
                out.push(Token {
                    tok: Tok::Str(s),
                    line,
                });
                line += lines;
                i = next;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &src[start..i];
                let is_prefix = word.len() <= 2
                    && word
                        .chars()
                        .all(|ch| matches!(ch.to_ascii_lowercase(), 'r' | 'b' | 'u' | 'f'));
                if is_prefix && matches!(b.get(i), Some(b'"' | b'\'')) {
                    let raw = word.to_ascii_lowercase().contains('r');
                    let (s, next, lines) = read_string(src, i, raw);
                    out.push(Token {
                        tok: Tok::Str(s),
                        line,
                    });
                    line += lines;
                    i = next;
                } else {
                    out.push(Token {
                        tok: Tok::Name(word.to_owned()),
                        line,
                    });
                }
            }
            _ if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Num,
                    line,
                });
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                let op = if matches!(
                    two,
                    "==" | "!=" | "<=" | ">=" | "**" | "//" | "->" | ":=" | "+=" | "-=" | "*="
                ) {
                    two
                } else {
                    match src.get(i..i + 1) {
                        Some(s) => s,
                        None => {
                            i += 1;
                            continue;
                        }
                    }
                };
                match op {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth = depth.saturating_sub(1),
                    ";" if depth == 0 => {
                        push_newline(&mut out, line);
                        i += 1;
                        continue;
                    }
                    _ => {}
                }
                out.push(Token {
                    tok: Tok::Op(op.to_owned()),
                    line,
                });
                i += op.len();
            }
        }
    }
    push_newline(&mut out, line);
    out
}

/// Reads a string literal starting at the quote at `start`: its value, the byte after it, and
/// the newlines it spans.
fn read_string(src: &str, start: usize, raw: bool) -> (String, usize, u32) {
    let b = src.as_bytes();
    let q = b[start];
    let triple = b.get(start + 1) == Some(&q) && b.get(start + 2) == Some(&q);
    let mut i = start + if triple { 3 } else { 1 };
    let mut lines = 0;
    let mut value = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'\n' {
                lines += 1;
            }
            if raw {
                value.extend_from_slice(&b[i..i + 2]);
            } else {
                value.push(b[i + 1]);
            }
            i += 2;
            continue;
        }
        if c == q && (!triple || (b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q))) {
            i += if triple { 3 } else { 1 };
            return (String::from_utf8_lossy(&value).into_owned(), i, lines);
        }
        if c == b'\n' {
            lines += 1;
            if !triple {
                // An unterminated one-line string ends at the newline.
                return (String::from_utf8_lossy(&value).into_owned(), i, lines - 1);
            }
        }
        value.push(c);
        i += 1;
    }
    (String::from_utf8_lossy(&value).into_owned(), i, lines)
}

/// One argument of a call: `key=` for a keyword argument, and the value's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub key: Option<String>,
    pub value: Vec<Token>,
}

/// A call: the dotted name before `(` as written (`AutoModel.from_pretrained`, `torch.save`),
/// its line and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub line: u32,
    pub args: Vec<Arg>,
}

impl Call {
    /// The last component of the name (`from_pretrained`).
    pub fn method(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }

    /// The keyword argument `key`.
    pub fn kwarg(&self, key: &str) -> Option<&[Token]> {
        self.args
            .iter()
            .find(|a| a.key.as_deref() == Some(key))
            .map(|a| a.value.as_slice())
    }

    /// The `n`-th positional argument.
    pub fn positional(&self, n: usize) -> Option<&[Token]> {
        self.args
            .iter()
            .filter(|a| a.key.is_none())
            .nth(n)
            .map(|a| a.value.as_slice())
    }
}

/// A value an expression stands for, as far as a scanner can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
    /// A name or attribute whose value lives elsewhere: `args.model_name` → `model_name`,
    /// `cfg["model_name"]` → `model_name`, `MODEL` → `MODEL`.
    Ref(String),
}

/// What one expression's tokens stand for; `None` for anything computed.
pub fn value_of(tokens: &[Token]) -> Option<Value> {
    let toks: Vec<&Tok> = tokens.iter().map(|t| &t.tok).collect();
    match toks.as_slice() {
        [Tok::Str(s)] => Some(Value::Str(s.clone())),
        [Tok::Name(n)] if n == "True" => Some(Value::Bool(true)),
        [Tok::Name(n)] if n == "False" => Some(Value::Bool(false)),
        [Tok::Name(n)] => Some(Value::Ref(n.clone())),
        // `a.b.c`
        [Tok::Name(_), rest @ ..]
            if !rest.is_empty()
                && rest.len() % 2 == 0
                && rest
                    .chunks(2)
                    .all(|p| matches!(p, [Tok::Op(o), Tok::Name(_)] if o == ".")) =>
        {
            match rest.last() {
                Some(Tok::Name(n)) => Some(Value::Ref(n.clone())),
                _ => None,
            }
        }
        // `cfg["key"]`, `cfg.get("key")`, `os.environ.get("K", "default")`, `os.getenv("K", "d")`
        [.., Tok::Op(open), Tok::Str(k), Tok::Op(close)] if open == "[" && close == "]" => {
            Some(Value::Ref(k.clone()))
        }
        [
            ..,
            Tok::Name(get),
            Tok::Op(open),
            Tok::Str(_),
            Tok::Op(comma),
            Tok::Str(d),
            Tok::Op(close),
        ] if (get == "get" || get == "getenv") && open == "(" && comma == "," && close == ")" => {
            Some(Value::Str(d.clone()))
        }
        [
            ..,
            Tok::Name(get),
            Tok::Op(open),
            Tok::Str(k),
            Tok::Op(close),
        ] if get == "get" && open == "(" && close == ")" => Some(Value::Ref(k.clone())),
        _ => None,
    }
}

/// An import: the module as written, the names a `from` import takes, the relative level
/// (the number of leading dots) and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub module: String,
    pub names: Vec<String>,
    pub level: usize,
    pub line: u32,
}

/// A name given a value somewhere: an argparse option's default (`--model_name` → `model_name`),
/// a dataclass field's default, or a module constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Default {
    pub name: String,
    pub value: Value,
    pub line: u32,
    /// How it was given, for messages: "the default of `--model_name`", "the field default of
    /// `model_name_or_path`", "the constant `MODEL`".
    pub how: String,
}

/// The facts `check` reads from one Python file.
#[derive(Debug, Clone, Default)]
pub struct PyFacts {
    pub imports: Vec<Import>,
    pub calls: Vec<Call>,
    pub defaults: Vec<Default>,
    /// Environment variables the file sets (`os.environ["K"] = "v"`, `os.environ.setdefault`).
    pub env: Vec<(String, String)>,
}

/// The longest argument list read for one call, in tokens: bounds the work a pathological
/// file of unclosed parentheses costs.
const MAX_CALL_TOKENS: usize = 4096;

fn op(t: &Token, s: &str) -> bool {
    matches!(&t.tok, Tok::Op(o) if o == s)
}

fn name(t: &Token) -> Option<&str> {
    match &t.tok {
        Tok::Name(n) => Some(n),
        _ => None,
    }
}

/// The arguments of the call whose `(` is at `open`.
fn call_args(toks: &[Token], open: usize) -> Vec<Arg> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut cur: Vec<Token> = Vec::new();
    let end = toks.len().min(open + 1 + MAX_CALL_TOKENS);
    let finish = |cur: &mut Vec<Token>, args: &mut Vec<Arg>| {
        if cur.is_empty() {
            return;
        }
        let kw = cur.len() >= 2
            && name(&cur[0]).is_some()
            && op(&cur[1], "=")
            && cur.first().is_none_or(|t| name(t) != Some("lambda"));
        let arg = if kw {
            Arg {
                key: name(&cur[0]).map(str::to_owned),
                value: cur[2..].to_vec(),
            }
        } else {
            Arg {
                key: None,
                value: std::mem::take(cur),
            }
        };
        cur.clear();
        args.push(arg);
    };
    for t in &toks[open + 1..end] {
        match &t.tok {
            Tok::Op(o) if matches!(o.as_str(), "(" | "[" | "{") => depth += 1,
            Tok::Op(o) if matches!(o.as_str(), ")" | "]" | "}") => {
                if depth == 0 {
                    finish(&mut cur, &mut args);
                    return args;
                }
                depth -= 1;
            }
            Tok::Op(o) if o == "," && depth == 0 => {
                finish(&mut cur, &mut args);
                continue;
            }
            Tok::Newline => continue,
            _ => {}
        }
        cur.push(t.clone());
    }
    finish(&mut cur, &mut args);
    args
}

/// Reads the facts of one Python file.
pub fn facts(src: &str) -> PyFacts {
    let toks = tokenize(src);
    let mut f = PyFacts::default();
    // Calls.
    for i in 1..toks.len() {
        if !op(&toks[i], "(") {
            continue;
        }
        let Some(last) = name(&toks[i - 1]) else {
            continue;
        };
        if matches!(
            last,
            "if" | "while" | "for" | "return" | "and" | "or" | "not" | "in"
        ) {
            continue;
        }
        let mut parts = vec![last];
        let mut j = i - 1;
        while j >= 2 && op(&toks[j - 1], ".") {
            match name(&toks[j - 2]) {
                Some(n) => {
                    parts.push(n);
                    j -= 2;
                }
                None => break,
            }
        }
        parts.reverse();
        let call = Call {
            name: parts.join("."),
            line: toks[i - 1].line,
            args: call_args(&toks, i),
        };
        if call.method() == "add_argument"
            && let Some(d) = argparse_default(&call)
        {
            f.defaults.push(d);
        }
        if call.name.ends_with("environ.setdefault")
            && let (Some(Value::Str(k)), Some(Value::Str(v))) = (
                call.positional(0).and_then(value_of),
                call.positional(1).and_then(value_of),
            )
        {
            f.env.push((k, v));
        }
        f.calls.push(call);
    }
    // Logical lines: imports, constants, dataclass fields, `os.environ[...] = ...`.
    for line in toks.split(|t| t.tok == Tok::Newline) {
        logical_line(line, &mut f);
    }
    f
}

fn logical_line(line: &[Token], f: &mut PyFacts) {
    let Some(first) = line.first() else {
        return;
    };
    let at = first.line;
    match name(first) {
        Some("import") => {
            for part in line[1..].split(|t| op(t, ",")) {
                let module = dotted(part);
                if !module.is_empty() {
                    f.imports.push(Import {
                        module,
                        names: Vec::new(),
                        level: 0,
                        line: at,
                    });
                }
            }
            return;
        }
        Some("from") => {
            let mut k = 1;
            let mut level = 0;
            while k < line.len() && op(&line[k], ".") {
                level += 1;
                k += 1;
            }
            let start = k;
            while k < line.len() && name(&line[k]) != Some("import") {
                k += 1;
            }
            let module = dotted(&line[start..k]);
            let names = line
                .get(k + 1..)
                .unwrap_or(&[])
                .split(|t| op(t, ","))
                .filter_map(|p| p.iter().find_map(name).map(str::to_owned))
                .filter(|n| n != "(" && n != "*")
                .collect();
            f.imports.push(Import {
                module,
                names,
                level,
                line: at,
            });
            return;
        }
        _ => {}
    }
    // `NAME = value`, `NAME: type = value`, `NAME: type = field(default=value)`.
    if let Some(n) = name(first) {
        let eq = line.iter().position(|t| op(t, "="));
        let annotated = line.get(1).is_some_and(|t| op(t, ":"));
        if let Some(eq) = eq
            && (eq == 1 || annotated)
        {
            let rhs = &line[eq + 1..];
            let field_default = match rhs {
                [f0, open, ..] if name(f0) == Some("field") && op(open, "(") => call_args(rhs, 1)
                    .into_iter()
                    .find(|a| a.key.as_deref() == Some("default"))
                    .and_then(|a| value_of(&a.value)),
                _ => None,
            };
            let value = field_default.or_else(|| match value_of(rhs) {
                Some(Value::Ref(_)) | None => None,
                v => v,
            });
            if let Some(value) = value {
                f.defaults.push(Default {
                    name: n.to_owned(),
                    value,
                    line: at,
                    how: if annotated {
                        format!("the field default of `{n}`")
                    } else {
                        format!("the constant `{n}`")
                    },
                });
            }
        }
    }
    // `os.environ["K"] = "v"`
    if let Some(eq) = line.iter().position(|t| op(t, "=")) {
        let lhs = &line[..eq];
        let is_environ = lhs.iter().any(|t| name(t) == Some("environ"));
        if is_environ
            && let (Some(Value::Ref(k)), Some(Value::Str(v))) =
                (value_of(lhs), value_of(&line[eq + 1..]))
        {
            f.env.push((k, v));
        }
    }
}

fn dotted(tokens: &[Token]) -> String {
    let mut s = String::new();
    for t in tokens {
        match &t.tok {
            Tok::Name(n) if n == "as" => break,
            Tok::Name(n) => s.push_str(n),
            Tok::Op(o) if o == "." => s.push('.'),
            _ => break,
        }
    }
    s
}

/// `parser.add_argument("--model_name", default="x")` → `model_name` = "x".
fn argparse_default(call: &Call) -> Option<Default> {
    let value = value_of(call.kwarg("default")?)?;
    let flags: Vec<String> = call
        .args
        .iter()
        .filter(|a| a.key.is_none())
        .filter_map(|a| match value_of(&a.value) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        })
        .collect();
    let dest = match call.kwarg("dest").and_then(value_of) {
        Some(Value::Str(d)) => d,
        _ => {
            let long = flags
                .iter()
                .find(|f| f.starts_with("--"))
                .or(flags.first())?;
            long.trim_start_matches('-').replace('-', "_")
        }
    };
    let shown = flags.first().cloned().unwrap_or_else(|| dest.clone());
    Some(Default {
        name: dest,
        value,
        line: call.line,
        how: format!("the default of `{shown}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_comments_and_brackets_across_lines() {
        let src = "x = f(\n  'a#b',  # c\n  \"\"\"t\nu\"\"\", r'\\d'\n)\ny = 1\n";
        let toks = tokenize(src);
        let strs: Vec<(&str, u32)> = toks
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Str(s) => Some((s.as_str(), t.line)),
                _ => None,
            })
            .collect();
        assert_eq!(strs, [("a#b", 2), ("t\nu", 3), ("\\d", 4)]);
        let newlines: Vec<u32> = toks
            .iter()
            .filter(|t| t.tok == Tok::Newline)
            .map(|t| t.line)
            .collect();
        assert_eq!(newlines, [5, 6]);
        let y = toks
            .iter()
            .find(|t| t.tok == Tok::Name("y".into()))
            .unwrap();
        assert_eq!(y.line, 6);
    }

    #[test]
    fn calls_imports_and_defaults() {
        let src = r#"
import os, torch.nn as nn
from .utils import load, save
from transformers import (
    AutoModel,
    AutoTokenizer,
)
MODEL = "org/model"

@dataclass
class Args:
    model_name_or_path: str = field(default="meta-llama/Llama-2-7b-hf", metadata={"h": 1})
    dataset: str = "tatsu-lab/alpaca"

p.add_argument("--model-name", type=str, default="EleutherAI/pythia-1b")
os.environ["WANDB_MODE"] = "offline"
m = AutoModel.from_pretrained(
    args.model_name,
    trust_remote_code=True,
)
"#;
        let f = facts(src);
        let imports: Vec<(&str, usize, u32)> = f
            .imports
            .iter()
            .map(|i| (i.module.as_str(), i.level, i.line))
            .collect();
        assert_eq!(
            imports,
            [
                ("os", 0, 2),
                ("torch.nn", 0, 2),
                ("utils", 1, 3),
                ("transformers", 0, 4)
            ]
        );
        assert_eq!(f.imports[3].names, ["AutoModel", "AutoTokenizer"]);
        let defaults: Vec<(&str, &Value, u32)> = f
            .defaults
            .iter()
            .map(|d| (d.name.as_str(), &d.value, d.line))
            .collect();
        assert!(defaults.contains(&("MODEL", &Value::Str("org/model".into()), 8)));
        assert!(defaults.contains(&(
            "model_name_or_path",
            &Value::Str("meta-llama/Llama-2-7b-hf".into()),
            12
        )));
        assert!(defaults.contains(&("dataset", &Value::Str("tatsu-lab/alpaca".into()), 13)));
        assert!(defaults.contains(&("model_name", &Value::Str("EleutherAI/pythia-1b".into()), 15)));
        assert_eq!(f.env, [("WANDB_MODE".to_owned(), "offline".to_owned())]);
        let call = f
            .calls
            .iter()
            .find(|c| c.method() == "from_pretrained")
            .unwrap();
        assert_eq!(call.name, "AutoModel.from_pretrained");
        assert_eq!(call.line, 17);
        assert_eq!(
            call.positional(0).and_then(value_of),
            Some(Value::Ref("model_name".into()))
        );
        assert_eq!(
            call.kwarg("trust_remote_code").and_then(value_of),
            Some(Value::Bool(true))
        );
    }

    #[test]
    fn hostile_source_does_not_panic() {
        for src in [
            "(((((",
            "'unterminated",
            "\"\"\"never",
            "f(x=",
            "\\",
            "from . import",
            "é(",
            "x: int =",
        ] {
            let _ = facts(src);
        }
    }
}
