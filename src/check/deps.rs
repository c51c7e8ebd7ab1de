//! Dependency files on the build path, whatever their name: pip requirements files (linted as
//! `pip install` arguments), conda `environment.yml` (`dependencies:` and its `pip:` list),
//! `pyproject.toml` (`[project] dependencies`) and `setup.py` (`install_requires=[…]`). Each
//! requirement is judged by the same rules as a `pip install` in a RUN.

use serde::Deserialize;

use crate::dockerfile::LineIndex;

use super::pip::{HINT_PIP, lint_pip_requirement, lint_requirements};
use super::python::{Tok, tokenize};
use crate::finding::{Finding, FindingKind};

/// How a dependency file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepFormat {
    Requirements,
    CondaEnv,
    Pyproject,
    SetupPy,
}

/// The format a file has by its name, for files that a step names without saying how
/// (`pip install .` reads pyproject.toml or setup.py; `conda env create -f` an environment file).
pub fn format_by_name(rel: &str) -> Option<DepFormat> {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    if name == "pyproject.toml" {
        Some(DepFormat::Pyproject)
    } else if name == "setup.py" {
        Some(DepFormat::SetupPy)
    } else if (name.ends_with(".yml") || name.ends_with(".yaml"))
        && (name.starts_with("environment") || name.starts_with("conda") || name.starts_with("env"))
    {
        Some(DepFormat::CondaEnv)
    } else if name.ends_with(".txt")
        && (name.contains("requirement") || name.starts_with("req") || name.contains("constraint"))
    {
        Some(DepFormat::Requirements)
    } else {
        None
    }
}

/// Lints one dependency file; `label` is its path relative to the submission root.
pub fn lint(text: &str, format: DepFormat, label: &str) -> Vec<Finding> {
    match format {
        DepFormat::Requirements => lint_requirements(text, label),
        DepFormat::CondaEnv => lint_conda(text, label),
        DepFormat::Pyproject => lint_specs(pyproject_specs(text), label),
        DepFormat::SetupPy => lint_specs(setup_py_specs(text), label),
    }
}

fn lint_specs(specs: Vec<(String, u32)>, label: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (spec, line) in specs {
        let spec = spec.split(';').next().unwrap_or(&spec).trim().to_owned();
        lint_pip_requirement(&spec, false, 0, &mut |f: Finding, _| {
            findings.push(f.at(label).line(line))
        });
    }
    findings
}

#[derive(Deserialize)]
struct PyprojectConfig {
    project: Option<ProjectConfig>,
}

#[derive(Deserialize)]
struct ProjectConfig {
    dependencies: Option<Vec<String>>,
}

/// `[project] dependencies`, each with the line it is written on.
fn pyproject_specs(text: &str) -> Vec<(String, u32)> {
    let Ok(cfg) = toml::from_str::<PyprojectConfig>(text) else {
        return Vec::new();
    };
    let deps = cfg.project.and_then(|p| p.dependencies).unwrap_or_default();
    let idx = LineIndex::new(text);
    let start = text.find("dependencies").unwrap_or(0);
    let mut from = start;
    deps.into_iter()
        .map(|d| {
            let pos = text[from..].find(&d).map(|p| p + from).unwrap_or(start);
            from = pos.min(text.len());
            (d, idx.line(pos))
        })
        .collect()
}

/// `install_requires=[...]` string literals in a setup.py.
fn setup_py_specs(text: &str) -> Vec<(String, u32)> {
    let toks = tokenize(text);
    let Some(at) = toks
        .iter()
        .position(|t| t.tok == Tok::Name("install_requires".into()))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut depth = 0usize;
    for t in &toks[at + 1..] {
        match &t.tok {
            Tok::Op(o) if o == "[" || o == "(" => depth += 1,
            Tok::Op(o) if o == "]" || o == ")" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            Tok::Str(s) if depth > 0 => out.push((s.clone(), t.line)),
            Tok::Newline if depth == 0 => break,
            _ => {}
        }
    }
    out
}

/// A conda `environment.yml`: each entry under `dependencies:` is pinned by `=<version>` (or
/// `==`), without wildcards or ranges; the entries under `- pip:` are pip requirements.
fn lint_conda(text: &str, label: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut in_deps = false;
    let mut pip_indent: Option<usize> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let content = raw.split(" #").next().unwrap_or(raw);
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let indent = content.len() - content.trim_start().len();
        if indent == 0 {
            in_deps = content.trim_end() == "dependencies:";
            pip_indent = None;
            continue;
        }
        let Some(entry) = content.trim_start().strip_prefix("- ") else {
            continue;
        };
        if !in_deps {
            continue;
        }
        let entry = entry.trim().trim_matches(['"', '\'']);
        if let Some(pi) = pip_indent {
            if indent > pi {
                lint_pip_requirement(entry, false, 0, &mut |f: Finding, _| {
                    findings.push(f.at(label).line(line_no))
                });
                continue;
            }
            pip_indent = None;
        }
        if entry == "pip:" {
            pip_indent = Some(indent);
            continue;
        }
        let version = entry
            .split_once('=')
            .map(|(_, v)| v.trim_start_matches('='));
        let pinned = !entry.contains(['<', '>', '!', '~'])
            && version.is_some_and(|v| {
                !v.is_empty() && !v.contains('*') && !v.contains(['<', '>', ',', '|'])
            });
        if !pinned {
            findings.push(
                Finding::error(
                    FindingKind::UnpinnedDependency,
                    format!("conda package `{entry}` is not pinned with `=<version>`"),
                    format!("pin conda packages with `name=<version>` (`conda env export` lists them); {HINT_PIP}"),
                )
                .at(label)
                .line(line_no),
            );
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str, format: DepFormat) -> Vec<u32> {
        lint(text, format, "f")
            .iter()
            .map(|f| f.line.unwrap_or(0))
            .collect()
    }

    #[test]
    fn each_format_is_linted_on_its_lines() {
        assert_eq!(
            format_by_name("deps/reqs-gpu.txt"),
            Some(DepFormat::Requirements)
        );
        assert_eq!(format_by_name("environment.yml"), Some(DepFormat::CondaEnv));
        assert_eq!(format_by_name("notes.txt"), None);
        let conda = "name: x\nchannels:\n  - pytorch\ndependencies:\n  - python=3.10\n  - pytorch\n  - numpy>=1\n  - pip:\n    - peft==0.6.2\n    - trl\n  - cudatoolkit=11.8\n";
        assert_eq!(lines(conda, DepFormat::CondaEnv), [6, 7, 10]);
        let pyproject = "[project]\nname = \"x\"\ndependencies = [\n  \"torch==2.1.0\",\n  \"transformers>=4\",\n]\n";
        assert_eq!(lines(pyproject, DepFormat::Pyproject), [5]);
        let setup = "from setuptools import setup\nsetup(\n  name='x',\n  install_requires=[\n    'torch==2.1.0',\n    'accelerate',\n  ],\n)\n";
        assert_eq!(lines(setup, DepFormat::SetupPy), [6]);
    }
}
