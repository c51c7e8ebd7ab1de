//! Values a scanner can resolve on the training path: a literal, or a name looked up in this
//! order: a `--key value` the training's commands pass, a `key: value` line of a config file on
//! the path (YAML or JSON, read line by line, so nesting is flattened to the leaf key), a default
//! in code (argparse, dataclass field, module constant; the same file first).

use super::buildpath::{BuildPath, Role};
use super::python::Value;

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Literal,
    Code,
    CommandLine,
    ConfigFile,
}

#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub value: String,
    pub origin: Origin,
    /// " (the default of `--model` at train.py:12)", or "" for a literal.
    pub source: String,
}

/// `key: value` (YAML) or `"key": value` (JSON) lines of the config files on the path.
#[derive(Debug, Clone)]
pub(crate) struct ConfigValue {
    pub key: String,
    pub value: String,
    pub file: String,
    pub line: u32,
}

pub(crate) struct Resolver<'a> {
    bp: &'a BuildPath,
    configs: Vec<ConfigValue>,
}

pub(crate) fn config_values(text: &str, file: &str) -> Vec<ConfigValue> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim().trim_start_matches("- ").trim_end_matches(',');
        if l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let key = k.trim().trim_matches(['"', '\'']);
        let value = v
            .split(" #")
            .next()
            .unwrap_or(v)
            .trim()
            .trim_matches(['"', '\'']);
        if key.is_empty() || value.is_empty() || key.contains(' ') {
            continue;
        }
        out.push(ConfigValue {
            key: key.to_owned(),
            value: value.to_owned(),
            file: file.to_owned(),
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
        });
    }
    out
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(bp: &'a BuildPath) -> Self {
        let configs = bp
            .files
            .values()
            .filter(|f| f.role == Role::Config)
            .flat_map(|f| config_values(f.text.as_deref().unwrap_or(""), &f.rel))
            .collect();
        Resolver { bp, configs }
    }

    pub(crate) fn resolve(&self, v: &Value, file: &str) -> Option<Resolved> {
        match v {
            Value::Str(s) => Some(Resolved {
                value: s.clone(),
                origin: Origin::Literal,
                source: String::new(),
            }),
            Value::Bool(b) => Some(Resolved {
                value: if *b { "true" } else { "false" }.to_owned(),
                origin: Origin::Literal,
                source: String::new(),
            }),
            Value::Ref(name) => self.lookup(name, file),
        }
    }

    /// A name's value: given on a command line, in a config file, or as a default in code
    /// (the same file's first).
    fn lookup(&self, name: &str, file: &str) -> Option<Resolved> {
        if let Some(c) = self.bp.cli_values.iter().find(|c| c.key == name) {
            return Some(Resolved {
                value: c.value.clone(),
                origin: Origin::CommandLine,
                source: format!(" (given as `--{name}` at {}:{})", c.by, c.line),
            });
        }
        if let Some(c) = self.configs.iter().find(|c| c.key == name) {
            return Some(Resolved {
                value: c.value.clone(),
                origin: Origin::ConfigFile,
                source: format!(" (`{name}` in {}:{})", c.file, c.line),
            });
        }
        let mut best: Option<(bool, Resolved)> = None;
        for f in self.bp.files.values() {
            let Some(py) = &f.python else { continue };
            for d in py.defaults.iter().filter(|d| d.name == name) {
                let value = match &d.value {
                    Value::Str(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Ref(_) => continue,
                };
                let same = f.rel == file;
                if best.as_ref().is_none_or(|(s, _)| !s && same) {
                    best = Some((
                        same,
                        Resolved {
                            value,
                            origin: Origin::Code,
                            source: format!(" ({} at {}:{})", d.how, f.rel, d.line),
                        },
                    ));
                }
            }
        }
        best.map(|b| b.1)
    }
}
