//! pip: `pip install` arguments and requirements files, linted for pins, and read for the files
//! they name (`-r`, `-c`, local projects) so the build path can follow them.
//!
//! A package is pinned only by `==<version>` without wildcards (or `===`); a git dependency by
//! a full commit; a URL by a `#sha256=` fragment. Local paths, `-e`, wheels and `-r` files are not
//! packages.

use crate::dockerfile::shell::Word;

use crate::finding::{Finding, FindingKind};

pub const HINT_PIP: &str = "pin every package with `==<version>` (or install from a requirements file with pins and `--require-hashes`); never use `-U/--upgrade`";
pub const HINT_GIT_PIP: &str =
    "pin the git dependency to a full commit: `git+https://…/repo.git@<40-hex commit>`";

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full git commit id (SHA-1, or SHA-256 for sha256 repositories).
pub fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && is_hex(s)
}

/// pip options that take a value as the next word.
const PIP_VALUE_OPTIONS: &[&str] = &[
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--trusted-host",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--src",
    "--upgrade-strategy",
    "--progress-bar",
    "--cache-dir",
    "--log",
    "--proxy",
    "--timeout",
    "--retries",
    "--only-binary",
    "--no-binary",
    "--config-settings",
    "-C",
    "--global-option",
    "--python",
];

pub fn lint_pip_install(args: &[Word], push: &mut dyn FnMut(Finding, usize)) {
    let mut i = 0;
    let mut editable = false;
    while i < args.len() {
        let w = &args[i];
        let t = w.text.as_str();
        i += 1;
        if t == "-U"
            || t == "--upgrade"
            || (t.starts_with('-')
                && !t.starts_with("--")
                && t.len() > 2
                && t[1..].contains('U')
                && t[1..].chars().all(|c| c.is_ascii_alphabetic()))
        {
            push(
                Finding::error(
                    FindingKind::UnpinnedDependency,
                    format!("`pip install {t}` upgrades to whatever is newest at build time"),
                    HINT_PIP,
                ),
                w.offset,
            );
            continue;
        }
        if t == "-e" || t == "--editable" {
            editable = true;
            continue;
        }
        if PIP_VALUE_OPTIONS.contains(&t) {
            i += 1;
            continue;
        }
        if t.starts_with('-') || t.is_empty() {
            continue;
        }
        let was_editable = std::mem::take(&mut editable);
        lint_pip_requirement(t, was_editable, w.offset, push);
    }
}

/// Lints one requirement as pip reads it (a package spec, a VCS URL, a URL or a local path).
pub fn lint_pip_requirement(
    spec: &str,
    editable: bool,
    offset: usize,
    push: &mut dyn FnMut(Finding, usize),
) {
    let spec = spec.trim();
    let vcs = spec.split_once("git+").map(|(_, rest)| rest);
    if let Some(rest) = vcs {
        // `git+https://host/repo.git@<ref>#egg=…`: the ref is after the last `@` of the path.
        let url = rest.split('#').next().unwrap_or(rest);
        let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let path = after_scheme.split_once('/').map(|(_, p)| p).unwrap_or("");
        let reference = path.rsplit_once('@').map(|(_, r)| r);
        if !reference.is_some_and(is_commit) {
            push(
                Finding::error(
                    FindingKind::UnpinnedDependency,
                    match reference {
                        Some(r) => {
                            format!("git dependency pinned to `{r}`, a branch or tag that can move")
                        }
                        None => "git dependency without a commit builds whatever HEAD is that day"
                            .to_owned(),
                    },
                    HINT_GIT_PIP,
                ),
                offset,
            );
        }
        return;
    }
    if spec.contains("://") {
        if !spec.contains("#sha256=") {
            push(
                Finding::error(
                    FindingKind::UnpinnedDependency,
                    "pip installs from a URL without a `#sha256=` fragment",
                    HINT_PIP,
                ),
                offset,
            );
        }
        return;
    }
    let local = editable
        || spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('$')
        || spec.ends_with(".whl")
        || spec.ends_with(".tar.gz")
        || spec.ends_with(".zip");
    if local {
        return;
    }
    // A package spec: pinned only by `==X` without wildcards, or `===X`.
    let pinned = spec.split_once("==").is_some_and(|(_, v)| {
        !v.is_empty() && !v.contains('*') && !v.contains([',', '<', '>', '!', '~'])
    });
    if !pinned {
        push(
            Finding::error(
                FindingKind::UnpinnedDependency,
                format!("pip package `{spec}` is not pinned with `==<version>`"),
                HINT_PIP,
            ),
            offset,
        );
    }
}

/// Lints a pip requirements file (`requirements*.txt`) the same way as `pip install` arguments.
pub fn lint_requirements(text: &str, label: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let content = line.split(" #").next().unwrap_or(line).trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        // Environment markers (`pkg==1; python_version < "3.9"`) and hashes do not change pinning.
        let spec = content.split(';').next().unwrap_or(content);
        let spec_words: Vec<Word> = spec
            .split_whitespace()
            .filter(|t| !t.starts_with("--hash"))
            .map(|t| Word {
                text: t.to_owned(),
                offset: 0,
            })
            .collect();
        let mut push = |f: Finding, _o: usize| findings.push(f.at(label).line(line_no));
        lint_pip_install(&spec_words, &mut push);
    }
    findings
}

/// The files a `pip install` names: requirement and constraint files, local projects
/// (`.`, `./pkg`, `-e .`), and whether it runs without the package index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipFiles {
    /// `-r FILE` / `--requirement FILE`, with the word's offset.
    pub requirements: Vec<(String, usize)>,
    /// `-c FILE` / `--constraint FILE`.
    pub constraints: Vec<(String, usize)>,
    /// Local project directories (`pip install .`): their pyproject.toml / setup.py are read.
    pub projects: Vec<(String, usize)>,
    /// `--no-index`: nothing is fetched from an index.
    pub no_index: bool,
}

/// Reads the files a `pip install`'s arguments name (the words after `install`).
pub fn pip_files(args: &[Word]) -> PipFiles {
    let mut out = PipFiles::default();
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        let offset = args[i].offset;
        i += 1;
        let value = |i: usize| args.get(i).map(|w| (w.text.clone(), w.offset));
        match t {
            "-r" | "--requirement" => {
                out.requirements.extend(value(i));
                i += 1;
            }
            "-c" | "--constraint" => {
                out.constraints.extend(value(i));
                i += 1;
            }
            "--no-index" => out.no_index = true,
            "-e" | "--editable" => {
                if let Some((p, o)) = value(i)
                    && is_local_project(&p)
                {
                    out.projects.push((p, o));
                }
                i += 1;
            }
            _ if PIP_VALUE_OPTIONS.contains(&t) => i += 1,
            _ => {
                if let Some(f) = t
                    .strip_prefix("--requirement=")
                    .or_else(|| t.strip_prefix("-r").filter(|r| !r.is_empty()))
                {
                    out.requirements.push((f.to_owned(), offset));
                } else if let Some(f) = t.strip_prefix("--constraint=") {
                    out.constraints.push((f.to_owned(), offset));
                } else if !t.starts_with('-') && is_local_project(t) {
                    out.projects.push((t.to_owned(), offset));
                }
            }
        }
    }
    out
}

/// A pip operand that names a local project directory (not a wheel, archive or URL).
fn is_local_project(t: &str) -> bool {
    let t = t.split('[').next().unwrap_or(t);
    (t == "."
        || t.starts_with("./")
        || t.starts_with('/')
        || t.starts_with("..")
        || t.ends_with('/'))
        && !t.ends_with(".whl")
        && !t.ends_with(".tar.gz")
        && !t.ends_with(".zip")
        && !t.contains("://")
}

/// The `-r` / `-c` files a requirements file includes, with their 1-based lines.
pub fn requirements_includes(text: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let words: Vec<Word> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(|t| Word {
                text: t.to_owned(),
                offset: 0,
            })
            .collect();
        let files = pip_files(&words);
        for (f, _) in files.requirements.into_iter().chain(files.constraints) {
            out.push((f, line_no));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::shell::simple_commands;

    #[test]
    fn pip_files_names_what_install_reads() {
        let cmd = &simple_commands(
            "-r reqs/gpu.txt --requirement=base.txt -c constraints.txt --no-index -e . ./pkg torch==2 x.whl -i https://i",
        )[0];
        let f = pip_files(cmd);
        let names = |v: &[(String, usize)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&f.requirements), ["reqs/gpu.txt", "base.txt"]);
        assert_eq!(names(&f.constraints), ["constraints.txt"]);
        assert_eq!(names(&f.projects), [".", "./pkg"]);
        assert!(f.no_index);
        assert_eq!(
            requirements_includes("torch==2\n-r base.txt # shared\n-c pins.txt\n"),
            [("base.txt".to_owned(), 2), ("pins.txt".to_owned(), 3)]
        );
    }
}
