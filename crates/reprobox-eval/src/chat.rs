//! Chat templates: the Jinja template of a model's `tokenizer_config.json` (or
//! `chat_template.jinja`), rendered with minijinja in the environment transformers'
//! `apply_chat_template(..., tokenize=False)` builds with jinja2 (`utils/chat_template_utils.py`):
//! `trim_blocks` and `lstrip_blocks`, the `loopcontrols` extension, the globals `raise_exception`
//! and `strftime_now`, a `tojson` filter that is Python's `json.dumps` (no HTML escaping), Python's
//! string and dict methods (`.strip()`, `.items()`, …), and the tokenizer's named special tokens
//! (`bos_token`, `eos_token`, …) as variables. The subnet renders every MULTIPLE_CHOICE,
//! WORD_SORTING and IF_EVAL prompt this way (docs/references.md S§2.1, S§3.2, S§3.4).

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::Value as Json;

use super::EvalError;

/// transformers' `SPECIAL_TOKENS_ATTRIBUTES`: the named special tokens a template sees.
const SPECIAL_TOKENS: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// A model's chat template and the special tokens it is rendered with.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    /// Where the template came from (for errors).
    path: PathBuf,
    /// `(name, token)` for each named special token tokenizer_config.json sets.
    special_tokens: Vec<(String, String)>,
}

/// `tokenizer_config.json` as JSON (`null` when the file is absent).
fn read_tokenizer_config(config_path: &Path) -> Result<Json, EvalError> {
    // Only a missing file means "no config": anything else there is read, or refused by name.
    if config_path.symlink_metadata().is_err() {
        return Ok(Json::Null);
    }
    let text = reprobox::input_file::read_to_string(config_path, crate::MODEL_JSON_CAP)?;
    serde_json::from_str::<Json>(&text).map_err(|e| EvalError::ChatTemplate {
        path: config_path.to_path_buf(),
        message: format!("not valid JSON: {e}"),
    })
}

/// The named special tokens a tokenizer config sets (strings or `{"content": …}` objects).
fn special_tokens_of(config: &Json) -> Vec<(String, String)> {
    SPECIAL_TOKENS
        .iter()
        .filter_map(|&name| {
            let token = match config.get(name)? {
                Json::String(s) => s.clone(),
                Json::Object(o) => o.get("content")?.as_str()?.to_string(),
                _ => return None,
            };
            Some((name.to_string(), token))
        })
        .collect()
}

/// The named special tokens (`bos_token`, `eos_token`, …) of the model directory's
/// `tokenizer_config.json`, which need no chat template; none when the file is absent.
pub fn special_tokens(dir: &Path) -> Result<Vec<(String, String)>, EvalError> {
    Ok(special_tokens_of(&read_tokenizer_config(
        &dir.join("tokenizer_config.json"),
    )?))
}

/// Whether tokenizer_config.json sets `key` (`truncation_side`, `padding_side`) to `"left"`;
/// transformers' default for both is `"right"`.
pub fn side_is_left(dir: &Path, key: &str) -> Result<bool, EvalError> {
    let config = read_tokenizer_config(&dir.join("tokenizer_config.json"))?;
    Ok(config.get(key).and_then(Json::as_str) == Some("left"))
}

impl ChatTemplate {
    /// A template from its source, with the given named special tokens.
    pub fn new(source: &str, special_tokens: &[(&str, &str)]) -> Self {
        Self {
            source: source.to_string(),
            path: PathBuf::from("<chat template>"),
            special_tokens: special_tokens
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Loads the template of the model directory `dir`: `chat_template.jinja` when present (it
    /// takes precedence in transformers), else `chat_template` in `tokenizer_config.json` (a
    /// string, or a list of `{name, template}` of which `default` is used). Special tokens come
    /// from `tokenizer_config.json` (strings or `{"content": …}` objects).
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        let config_path = dir.join("tokenizer_config.json");
        let config = read_tokenizer_config(&config_path)?;
        let special_tokens = special_tokens_of(&config);
        let jinja_path = dir.join("chat_template.jinja");
        let (source, path) = if jinja_path.symlink_metadata().is_ok() {
            let source = reprobox::input_file::read_to_string(&jinja_path, crate::MODEL_JSON_CAP)?;
            (source, jinja_path)
        } else {
            let source = match config.get("chat_template") {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                    .and_then(|t| t.get("template")?.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| EvalError::ChatTemplate {
                        path: config_path.clone(),
                        message: "`chat_template` is a list without a `default` template".into(),
                    })?,
                _ => {
                    return Err(EvalError::ChatTemplate {
                        path: config_path,
                        message: "no chat template (hint: the generation-style methods render \
                                  prompts with the model's chat template; add `chat_template` to \
                                  tokenizer_config.json, as `tokenizer.save_pretrained` writes it)"
                            .into(),
                    });
                }
            };
            (source, config_path)
        };
        Ok(Self {
            source,
            path,
            special_tokens,
        })
    }

    /// The named special token `name` (e.g. `eos_token`), when tokenizer_config.json sets it.
    pub fn special_token(&self, name: &str) -> Option<&str> {
        self.special_tokens
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Renders `messages_json` (the text of a JSON array of message objects; keys keep their
    /// order, as in a Python dict), as transformers' `apply_chat_template(messages,
    /// tokenize=False, add_generation_prompt=…)`: keys whose value is `null` are dropped first,
    /// and `tools` and `documents` are none.
    pub fn render_json(
        &self,
        messages_json: &str,
        add_generation_prompt: bool,
    ) -> Result<String, EvalError> {
        let messages: Value =
            serde_json::from_str(messages_json).map_err(|e| EvalError::ChatTemplate {
                path: self.path.clone(),
                message: format!("the messages are not valid JSON: {e}"),
            })?;
        if messages.kind() != ValueKind::Seq {
            return Err(EvalError::ChatTemplate {
                path: self.path.clone(),
                message: "the messages must be a JSON array".into(),
            });
        }
        let messages: Vec<Value> = messages
            .try_iter()
            .map_err(|e| self.error("the messages", &e))?
            .map(|m| {
                if m.kind() != ValueKind::Map {
                    return m;
                }
                let keys: Vec<Value> = m.try_iter().map(Iterator::collect).unwrap_or_default();
                Value::from_pairs(keys.into_iter().filter_map(|k| {
                    let v = m.get_item(&k).ok()?;
                    (!v.is_none()).then_some((k, v))
                }))
            })
            .collect();
        self.render(messages, add_generation_prompt)
    }

    fn error(&self, what: &str, e: &Error) -> EvalError {
        EvalError::ChatTemplate {
            path: self.path.clone(),
            message: format!("{what}: {}", describe(e)),
        }
    }

    fn render(
        &self,
        messages: Vec<Value>,
        add_generation_prompt: bool,
    ) -> Result<String, EvalError> {
        let env = environment();
        let template = env
            .template_from_str(&self.source)
            .map_err(|e| self.error("cannot parse the chat template", &e))?;
        let mut context: Vec<(String, Value)> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        context.push(("messages".into(), Value::from(messages)));
        context.push(("tools".into(), Value::from(())));
        context.push(("documents".into(), Value::from(())));
        context.push((
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        ));
        template
            .render(Value::from_pairs(context))
            .map_err(|e| self.error("cannot render the chat template", &e))
    }

    /// `[{"role": "user", "content": content}]` rendered with the generation prompt: how the
    /// subnet turns a challenge into a prompt (docs/references.md S§2.1, S§3.2).
    pub fn render_user_turn(&self, content: &str) -> Result<String, EvalError> {
        let message = Value::from_pairs([("role", "user"), ("content", content)]);
        self.render(vec![message], true)
    }
}

/// The message of a minijinja error, with `raise_exception`'s text and the template line.
fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        s.push_str(&format!(" (template line {line})"));
    }
    s
}

/// transformers' jinja2 environment, in minijinja.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    // jinja2's default `Undefined`: printing an undefined value gives "", attribute access on it
    // fails.
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    // Python prints True, False and None where minijinja prints true, false and none.
    env.set_formatter(|out, state, value| match value.kind() {
        ValueKind::Bool => out
            .write_str(if value.is_true() { "True" } else { "False" })
            .map_err(Error::from),
        ValueKind::None => out.write_str("None").map_err(Error::from),
        _ => minijinja::escape_formatter(out, state, value),
    });
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_function("strftime_now", |format: String| -> Result<String, Error> {
        strftime_now(&format)
    });
    env.add_filter("tojson", tojson);
    env
}

/// transformers' `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_string()),
        Some(v) => Some(" ".repeat(usize::try_from(v.as_i64().unwrap_or(0)).unwrap_or(0))),
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() => {
            let parts: Vec<String> = v.try_iter()?.map(|p| p.to_string()).collect();
            match parts.as_slice() {
                [a, b] => (a.clone(), b.clone()),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: `separators` must be a pair of strings",
                    ));
                }
            }
        }
        // json.dumps: (', ', ': ') without indent, (',', ': ') with one.
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let dumper = PyJson {
        ensure_ascii: ensure_ascii.unwrap_or(false),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
    };
    let mut out = String::new();
    dumper.dump(value, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

/// Python's `json.dumps` settings.
struct PyJson {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl PyJson {
    fn newline(&self, level: usize, out: &mut String) {
        if let Some(indent) = &self.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(indent);
            }
        }
    }

    fn string(&self, s: &str, out: &mut String) {
        let quoted = serde_json::to_string(s).unwrap_or_default();
        if self.ensure_ascii {
            for c in quoted.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        } else {
            out.push_str(&quoted);
        }
    }

    fn dump(&self, v: &Value, level: usize, out: &mut String) -> Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
            ValueKind::Number => out.push_str(&python_float(f64::try_from(v.clone())?)),
            ValueKind::String => self.string(v.as_str().unwrap_or(""), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    self.dump(item, level + 1, out)?;
                }
                self.newline(level, out);
                out.push(']');
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                if self.sort_keys {
                    keys.sort_by_key(|k| k.to_string());
                }
                out.push('{');
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(level + 1, out);
                    // json.dumps turns non-string keys into strings.
                    let name = match key.as_str() {
                        Some(s) => s.to_string(),
                        None => {
                            let mut s = String::new();
                            self.dump(key, level, &mut s)?;
                            s
                        }
                    };
                    self.string(&name, out);
                    out.push_str(&self.key_sep);
                    self.dump(&v.get_item(key)?, level + 1, out)?;
                }
                self.newline(level, out);
                out.push('}');
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: a {} is not JSON serializable", v.kind()),
                ));
            }
        }
        Ok(())
    }
}

/// Python's `repr(float)` (what `json.dumps` prints): the shortest round-tripping digits,
/// positional for exponents -4..16, else `d.ddde±XX`.
fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        if exp < 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if exp + 1 >= n {
            format!("{sign}{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{sign}{a}.{b}")
        }
    } else {
        let (a, b) = digits.split_at(1);
        let frac = if b.is_empty() {
            String::new()
        } else {
            format!(".{b}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{a}{frac}e{esign}{:02}", exp.abs())
    }
}

/// `datetime.now().strftime(format)` for the directives chat templates use (UTC).
fn strftime_now(format: &str) -> Result<String, Error> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    strftime(format, secs)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn strftime(format: &str, unix_secs: u64) -> Result<String, Error> {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = doy_mar - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cumulative[(month - 1) as usize] + day + i64::from(leap && month > 2);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = (days + 3).rem_euclid(7) as usize;
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('B') => out.push_str(month_name),
            Some('b') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(WEEKDAYS[weekday]),
            Some('a') => out.push_str(&WEEKDAYS[weekday][..3]),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "strftime_now: unsupported directive %{}",
                        other.map(String::from).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &str, gen_prompt: bool) -> Result<String, EvalError> {
        ChatTemplate::new(source, &[("bos_token", "<s>"), ("eos_token", "</s>")])
            .render_json(messages, gen_prompt)
    }

    #[test]
    fn renders_chatml_with_trim_and_lstrip_blocks() {
        // Checked against jinja2 3.1.6 with trim_blocks and lstrip_blocks.
        let t = "{{ bos_token }}\n{% for m in messages %}\n    <|im_start|>{{ m['role'] }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}\n{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let out = render(t, r#"[{"role": "user", "content": " hi "}]"#, true).unwrap();
        assert_eq!(
            out,
            "<s>\n    <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn raise_exception_fails_the_render_with_its_message() {
        let t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}ok";
        let e = render(t, r#"[{"role": "system", "content": "x"}]"#, false).unwrap_err();
        assert!(
            e.to_string().contains("Conversation roles must alternate"),
            "{e}"
        );
        let e = ChatTemplate::new("{{ messages }", &[])
            .render_json("[]", false)
            .unwrap_err();
        assert!(e.to_string().contains("cannot parse"), "{e}");
    }

    #[test]
    fn tojson_is_python_json_dumps() {
        let t = "{{ messages[0] | tojson }}|{{ messages[0] | tojson(indent=2) }}|{{ messages[0].x | tojson(separators=(',', ':')) }}";
        let out = render(
            t,
            r#"[{"b": "<é>\"", "a": [1, 2.5, 1e-5, true, null], "x": {"k": []}}]"#,
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            "{\"b\": \"<é>\\\"\", \"a\": [1, 2.5, 1e-05, true, null], \"x\": {\"k\": []}}|\
             {\n  \"b\": \"<é>\\\"\",\n  \"a\": [\n    1,\n    2.5,\n    1e-05,\n    true,\n    null\n  ],\n  \"x\": {\n    \"k\": []\n  }\n}|\
             {\"k\":[]}"
        );
    }

    #[test]
    fn python_methods_and_loop_controls() {
        let t = "{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{{ m.content.strip().upper() }}{% if m.content.startswith(' a') %}!{% endif %}{% endfor %}";
        let out = render(
            t,
            r#"[{"content": " a "}, {"content": "b", "x": null}, {"content": "c"}]"#,
            false,
        )
        .unwrap();
        assert_eq!(out, "A!B");
    }

    #[test]
    fn python_float_repr() {
        for (x, want) in [
            (0.1, "0.1"),
            (3.0, "3.0"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (123456789.0, "123456789.0"),
        ] {
            assert_eq!(python_float(x), want);
        }
    }

    #[test]
    fn strftime_formats_a_known_date() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(
            strftime("%d %b %Y %H:%M:%S %A %j %%", t).unwrap(),
            "29 Feb 2024 13:05:09 Thursday 060 %"
        );
        assert!(strftime("%Q", t).is_err());
    }
}
