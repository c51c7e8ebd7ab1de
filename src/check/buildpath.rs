//! The build path: the files the build and the training actually use, each with the reason it
//! is on the path.
//!
//! Starting from the declared Dockerfile: COPY/ADD sources named as files or globs (what
//! `.dockerignore` leaves out is not in the image); files a RUN names (`pip install -r X`,
//! `-c X`, `pip install .` → pyproject.toml / setup.py, `conda env create -f X`, `bash X.sh`,
//! `python X.py`, `--config X.yaml`); the command the image runs (ENTRYPOINT plus
//! `train.command` or CMD); and, transitively, what those shell scripts run and the modules those
//! Python files import from the context. Image paths are mapped back to context files through the
//! COPY destinations and WORKDIR. Files reached only through `COPY . .` are in the image but not
//! on the path: a requirements file no step installs is not a dependency of the run.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::dockerfile::shell::{Word, basename, simple_commands};
use crate::dockerfile::{Dockerfile, Instruction, LineIndex};

use super::deps::{DepFormat, format_by_name};
use super::dockerfile::shell_texts;
use super::ignore::{DockerIgnore, source_matches};
use super::pip::requirements_includes;
use super::python::{self, PyFacts};

mod named;

/// When a file is used: while the image is built, or while the training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Build,
    Train,
}

/// Why a file is on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    /// A COPY/ADD source named as a file or glob.
    Copied,
    /// `pip install -r FILE` (or `-r` inside another requirements file).
    Requirements,
    /// `pip install -c FILE`.
    Constraints,
    /// `conda env create -f FILE`.
    CondaEnv,
    /// `pip install .`: the project's pyproject.toml / setup.py.
    Project,
    /// Run by a command (`bash X.sh`, `python X.py`, `python -m X`).
    Run,
    /// Imported by a Python file on the path.
    Imported,
    /// A config file passed on a command line (`--config X.yaml`) or as an argparse default.
    Config,
    /// A file a setup.py reads (`open("requirements.txt")`).
    ReadBy,
}

/// A reason with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub kind: ReasonKind,
    /// The file that names it, relative to the submission root.
    pub by: String,
    pub line: u32,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ReasonKind::Copied => "COPY source",
            ReasonKind::Requirements => "`pip install -r`",
            ReasonKind::Constraints => "`pip install -c`",
            ReasonKind::CondaEnv => "`conda env create -f`",
            ReasonKind::Project => "`pip install .`",
            ReasonKind::Run => "run",
            ReasonKind::Imported => "imported",
            ReasonKind::Config => "passed as a config",
            ReasonKind::ReadBy => "read",
        };
        let prep = match self.kind {
            ReasonKind::Run | ReasonKind::Imported | ReasonKind::Config | ReasonKind::ReadBy => {
                "by"
            }
            _ => "at",
        };
        write!(f, "{what} {prep} {}:{}", self.by, self.line)
    }
}

/// What a file on the path is, which decides how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Dependency(DepFormat),
    Shell,
    Python,
    Config,
    Other,
}

/// One file on the path.
#[derive(Debug, Clone)]
pub struct PathFile {
    /// Relative to the submission root.
    pub rel: String,
    pub role: Role,
    /// The phases a step runs, reads or imports it in (empty for a file only copied).
    pub phases: Vec<Phase>,
    pub reasons: Vec<Reason>,
    /// Its text, read once (`None` when it could not be read as text).
    pub text: Option<String>,
    /// The Python facts, for a Python file.
    pub python: Option<PyFacts>,
}

/// `--key value` given to a Python program on the path, which overrides an argparse default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliValue {
    pub key: String,
    pub value: String,
    pub by: String,
    pub line: u32,
}

/// A command the image or a script on the path runs, for the training lint.
#[derive(Debug, Clone)]
pub struct Command {
    pub words: Vec<String>,
    pub by: String,
    pub line: u32,
    pub phase: Phase,
}

/// The build path of one submission.
#[derive(Debug, Clone, Default)]
pub struct BuildPath {
    pub files: BTreeMap<String, PathFile>,
    /// ENTRYPOINT + (train.command or CMD), and where that is written (file, line).
    pub entry: Vec<String>,
    pub entry_at: (String, u32),
    /// `ENV` settings in the Dockerfile.
    pub env: Vec<(String, String)>,
    pub cli_values: Vec<CliValue>,
    /// Every simple command run by the entry and the scripts on the path.
    pub commands: Vec<Command>,
}

impl BuildPath {
    /// The files on the path used in `phase`.
    pub fn in_phase(&self, phase: Phase) -> impl Iterator<Item = &PathFile> {
        self.files
            .values()
            .filter(move |f| f.phases.contains(&phase))
    }
}

/// What the build path is worked out from.
pub struct BuildPathInput<'a> {
    pub dockerfile: &'a Dockerfile,
    /// The Dockerfile's path relative to the submission root.
    pub dockerfile_label: &'a str,
    /// The build context relative to the submission root (`.` or a directory).
    pub context: &'a str,
    /// `train.command` and its line in reprobox.toml.
    pub command: Option<(&'a [String], u32)>,
    /// Every regular file of the submission, relative to the root.
    pub files: &'a [String],
    /// `.dockerignore` of the context.
    pub ignore: &'a DockerIgnore,
    /// Reads a file (relative to the root) as text: the one place this module reads files.
    pub read: &'a dyn Fn(&str) -> Option<String>,
}

/// A COPY destination: `dest` (absolute, in the image) holds context path `src`.
#[derive(Debug, Clone)]
struct Mount {
    dest: String,
    src: String,
    dir: bool,
}

struct Walker<'a> {
    input: &'a BuildPathInput<'a>,
    /// Context files (relative to the context) that reach the image.
    ctx_files: HashSet<String>,
    ctx_dirs: HashSet<String>,
    prefix: String,
    path: BuildPath,
    queue: Vec<(String, Phase)>,
    done: HashSet<(String, Phase)>,
}

/// `a/./b/../c` → `a/c`, without a leading or trailing `/`.
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// `base` joined with `p` in the image (absolute result).
fn image_join(base: &str, p: &str) -> String {
    if p.starts_with('/') {
        format!("/{}", normalize(p))
    } else {
        format!("/{}", normalize(&format!("{base}/{p}")))
    }
}

fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn join_rel(dir: &str, p: &str) -> String {
    if dir.is_empty() {
        normalize(p)
    } else {
        normalize(&format!("{dir}/{p}"))
    }
}

impl<'a> Walker<'a> {
    fn new(input: &'a BuildPathInput<'a>) -> Self {
        let ctx = normalize(input.context);
        let prefix = if ctx.is_empty() {
            String::new()
        } else {
            format!("{ctx}/")
        };
        let mut ctx_files = HashSet::new();
        let mut ctx_dirs = HashSet::new();
        for f in input.files {
            let Some(rel) = f.strip_prefix(&prefix) else {
                continue;
            };
            if input.ignore.excludes(rel) {
                continue;
            }
            let mut d = parent(rel);
            while !d.is_empty() && ctx_dirs.insert(d.to_owned()) {
                d = parent(d);
            }
            ctx_files.insert(rel.to_owned());
        }
        Walker {
            input,
            ctx_files,
            ctx_dirs,
            prefix,
            path: BuildPath::default(),
            queue: Vec::new(),
            done: HashSet::new(),
        }
    }

    /// A context path as the submission-root path findings carry.
    fn label(&self, ctx_rel: &str) -> String {
        format!("{}{ctx_rel}", self.prefix)
    }

    fn add(&mut self, ctx_rel: &str, phase: Phase, reason: Reason, role: Option<Role>) {
        let rel = self.label(ctx_rel);
        let role = role.unwrap_or_else(|| role_by_name(ctx_rel));
        let entry = self
            .path
            .files
            .entry(rel.clone())
            .or_insert_with(|| PathFile {
                rel: rel.clone(),
                role,
                phases: Vec::new(),
                reasons: Vec::new(),
                text: None,
                python: None,
            });
        // A role a step states (`pip install -r` → requirements) beats the one the name suggests.
        let new_role = matches!(entry.role, Role::Other) && !matches!(role, Role::Other);
        if new_role {
            entry.role = role;
        }
        // A copied file is in the image; only a step that runs, reads or imports it puts it
        // in a phase (a copied `train.sh` is run by the training, not by the build).
        if reason.kind != ReasonKind::Copied && !entry.phases.contains(&phase) {
            entry.phases.push(phase);
        }
        if !entry.reasons.contains(&reason) {
            entry.reasons.push(reason);
        }
        if self.done.insert((ctx_rel.to_owned(), phase)) || new_role {
            self.queue.push((ctx_rel.to_owned(), phase));
        }
    }

    /// The context file an image path holds, through the COPY destinations so far.
    fn resolve_image(&self, image_path: &str, mounts: &[Mount]) -> Option<String> {
        for m in mounts.iter().rev() {
            if !m.dir {
                if m.dest == image_path {
                    return Some(m.src.clone());
                }
                continue;
            }
            let rest = if m.dest == "/" {
                image_path.strip_prefix('/')
            } else {
                image_path
                    .strip_prefix(m.dest.as_str())
                    .and_then(|r| r.strip_prefix('/'))
            };
            if let Some(rest) = rest {
                let cand = join_rel(&m.src, rest);
                if self.ctx_files.contains(&cand) {
                    return Some(cand);
                }
            }
        }
        None
    }

    /// A path a command names: relative to `workdir` in the image, else relative to `dir` in the
    /// context (the naming file's directory), else as a context path.
    fn resolve_word(
        &self,
        word: &str,
        workdir: &str,
        dir: &str,
        mounts: &[Mount],
    ) -> Option<String> {
        if word.is_empty() || word.contains('$') || word.contains("://") {
            return None;
        }
        if let Some(hit) = self.resolve_image(&image_join(workdir, word), mounts) {
            return Some(hit);
        }
        if word.starts_with('/') {
            return None;
        }
        [join_rel(dir, word), normalize(word)]
            .into_iter()
            .find(|c| self.ctx_files.contains(c))
    }

    fn copy(&mut self, inst: &Instruction, workdir: &str, mounts: &mut Vec<Mount>, label: &str) {
        if inst.flag("from").is_some() || !inst.heredocs.is_empty() {
            return;
        }
        let words: Vec<String> = inst.exec_form().unwrap_or_else(|| {
            inst.operands()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        });
        let Some((dest, srcs)) = words.split_last() else {
            return;
        };
        let dest_abs = image_join(workdir, dest);
        // A file copied onto an existing directory (`.`, the WORKDIR) lands inside it.
        let into_dir = dest.ends_with('/')
            || srcs.len() > 1
            || dest_abs == workdir
            || mounts.iter().any(|m| m.dir && m.dest == dest_abs);
        for src in srcs {
            if src.contains("://") || src.starts_with("git@") {
                continue;
            }
            let norm = normalize(src);
            let glob = src.contains(['*', '?', '[']);
            let reason = Reason {
                kind: ReasonKind::Copied,
                by: label.to_owned(),
                line: inst.line(),
            };
            if glob {
                let mut hits: Vec<String> = self
                    .ctx_files
                    .iter()
                    .filter(|f| source_matches(&norm, f))
                    .cloned()
                    .collect();
                hits.sort();
                for h in hits {
                    mounts.push(Mount {
                        dest: image_join(&dest_abs, basename(&h)),
                        src: h.clone(),
                        dir: false,
                    });
                    self.add(&h, Phase::Build, reason.clone(), None);
                }
            } else if norm.is_empty() || self.ctx_dirs.contains(&norm) {
                mounts.push(Mount {
                    dest: dest_abs.clone(),
                    src: norm,
                    dir: true,
                });
            } else if self.ctx_files.contains(&norm) {
                let dest = if into_dir {
                    image_join(&dest_abs, basename(&norm))
                } else {
                    dest_abs.clone()
                };
                mounts.push(Mount {
                    dest,
                    src: norm.clone(),
                    dir: false,
                });
                self.add(&norm, Phase::Build, reason, None);
            }
        }
    }

    /// The files one simple command names, added to the path.
    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        cmd: &[Word],
        line: u32,
        by: &str,
        phase: Phase,
        workdir: &str,
        dir: &str,
        mounts: &[Mount],
    ) {
        let reason = |kind| Reason {
            kind,
            by: by.to_owned(),
            line,
        };
        let (named, cli) = named::named_files(cmd);
        for (key, value) in cli {
            self.path.cli_values.push(CliValue {
                key,
                value,
                by: by.to_owned(),
                line,
            });
        }
        for (word, kind, role) in named {
            if let Some(hit) = self.resolve_word(&word, workdir, dir, mounts) {
                self.add(&hit, phase, reason(kind), role);
            }
        }
    }

    fn dockerfile(&mut self) -> (String, Vec<Mount>, Vec<String>, Option<u32>) {
        let label = self.input.dockerfile_label.to_owned();
        let mut workdir = "/".to_owned();
        let mut mounts: Vec<Mount> = Vec::new();
        let mut cmd: Option<(Vec<String>, u32)> = None;
        let mut entrypoint: Option<(Vec<String>, u32)> = None;
        for inst in &self.input.dockerfile.instructions {
            match inst.keyword.as_str() {
                "FROM" => {
                    workdir = "/".to_owned();
                    cmd = None;
                    entrypoint = None;
                }
                "WORKDIR" => workdir = image_join(&workdir, inst.args.trim()),
                "ENV" => self.path.env.extend(env_pairs(&inst.args)),
                "COPY" | "ADD" => self.copy(inst, &workdir, &mut mounts, &label),
                "RUN" => {
                    for (text, line_of) in shell_texts(inst) {
                        for c in simple_commands(&text) {
                            let line = line_of(c.first().map(|w| w.offset).unwrap_or(0));
                            self.command(&c, line, &label, Phase::Build, &workdir, "", &mounts);
                        }
                    }
                }
                "CMD" => cmd = Some((command_words(inst), inst.line())),
                "ENTRYPOINT" => entrypoint = Some((command_words(inst), inst.line())),
                _ => {}
            }
        }
        let mut entry: Vec<String> = entrypoint.as_ref().map(|e| e.0.clone()).unwrap_or_default();
        let mut at = entrypoint.as_ref().map(|e| e.1);
        match self.input.command {
            Some((c, line)) => {
                entry.extend(c.iter().cloned());
                self.path.entry_at = ("reprobox.toml".to_owned(), line);
                at = None;
            }
            None => {
                if let Some((c, line)) = &cmd {
                    entry.extend(c.iter().cloned());
                    at = at.or(Some(*line));
                }
            }
        }
        (workdir, mounts, entry, at)
    }

    fn run(mut self) -> BuildPath {
        let (workdir, mounts, entry, entry_line) = self.dockerfile();
        if let Some(l) = entry_line {
            self.path.entry_at = (self.input.dockerfile_label.to_owned(), l);
        }
        self.path.entry = entry.clone();
        let (by, line) = self.path.entry_at.clone();
        // The entry: an exec-form list, or `sh -c "<script>"`.
        for c in entry_commands(&entry) {
            self.record_command(&c, line, &by, Phase::Train);
            self.command(&c, line, &by, Phase::Train, &workdir, "", &mounts);
        }
        // Transitively through what the path's files run, import and include.
        while let Some((ctx_rel, phase)) = self.queue.pop() {
            let rel = self.label(&ctx_rel);
            let role = self
                .path
                .files
                .get(&rel)
                .map(|f| f.role)
                .unwrap_or(Role::Other);
            let text = match self.path.files.get(&rel).and_then(|f| f.text.clone()) {
                Some(t) => Some(t),
                None => (self.input.read)(&rel),
            };
            let Some(text) = text else { continue };
            let dir = parent(&ctx_rel).to_owned();
            match role {
                Role::Shell => {
                    let idx = LineIndex::new(&text);
                    for c in simple_commands(&text) {
                        let line = idx.line(c.first().map(|w| w.offset).unwrap_or(0));
                        self.record_command(&c, line, &rel, phase);
                        self.command(&c, line, &rel, phase, &workdir, &dir, &mounts);
                    }
                }
                Role::Python => {
                    let facts = python::facts(&text);
                    self.python(&facts, &ctx_rel, &rel, phase);
                    if let Some(f) = self.path.files.get_mut(&rel) {
                        f.python = Some(facts);
                    }
                }
                Role::Dependency(DepFormat::Requirements) => {
                    for (inc, line) in requirements_includes(&text) {
                        if let Some(hit) = [join_rel(&dir, &inc)]
                            .into_iter()
                            .find(|c| self.ctx_files.contains(c))
                        {
                            self.add(
                                &hit,
                                phase,
                                Reason {
                                    kind: ReasonKind::Requirements,
                                    by: rel.clone(),
                                    line,
                                },
                                Some(Role::Dependency(DepFormat::Requirements)),
                            );
                        }
                    }
                }
                Role::Dependency(DepFormat::SetupPy) => {
                    for t in python::tokenize(&text) {
                        if let python::Tok::Str(s) = &t.tok
                            && s.ends_with(".txt")
                        {
                            let cand = join_rel(&dir, s);
                            if self.ctx_files.contains(&cand) {
                                self.add(
                                    &cand,
                                    phase,
                                    Reason {
                                        kind: ReasonKind::ReadBy,
                                        by: rel.clone(),
                                        line: t.line,
                                    },
                                    Some(Role::Dependency(DepFormat::Requirements)),
                                );
                            }
                        }
                    }
                }
                _ => {}
            }
            if let Some(f) = self.path.files.get_mut(&rel) {
                f.text = Some(text);
            }
        }
        self.path
    }

    fn record_command(&mut self, c: &[Word], line: u32, by: &str, phase: Phase) {
        self.path.commands.push(Command {
            words: c.iter().map(|w| w.text.clone()).collect(),
            by: by.to_owned(),
            line,
            phase,
        });
    }

    /// Imported modules and config-file defaults of one Python file.
    fn python(&mut self, facts: &PyFacts, ctx_rel: &str, rel: &str, phase: Phase) {
        let dir = parent(ctx_rel).to_owned();
        for imp in &facts.imports {
            let roots: Vec<String> = if imp.level > 0 {
                let mut d = dir.clone();
                for _ in 1..imp.level {
                    d = parent(&d).to_owned();
                }
                vec![d]
            } else {
                let mut v = vec![dir.clone()];
                let mut d = dir.as_str();
                while !d.is_empty() {
                    d = parent(d);
                    v.push(d.to_owned());
                }
                v
            };
            let module = imp.module.replace('.', "/");
            for root in roots {
                let base = join_rel(&root, &module);
                let mut hits: Vec<String> = Vec::new();
                if !module.is_empty() {
                    hits.extend([format!("{base}.py"), format!("{base}/__init__.py")]);
                }
                for n in &imp.names {
                    hits.push(join_rel(&base, &format!("{n}.py")));
                }
                // The packages above the module run their __init__.py.
                let mut pkg = parent(&base).to_owned();
                while !pkg.is_empty() && pkg != root {
                    hits.push(format!("{pkg}/__init__.py"));
                    pkg = parent(&pkg).to_owned();
                }
                let found: Vec<String> = hits
                    .into_iter()
                    .map(|h| normalize(&h))
                    .filter(|h| self.ctx_files.contains(h))
                    .collect();
                if found.is_empty() {
                    continue;
                }
                for h in found {
                    self.add(
                        &h,
                        phase,
                        Reason {
                            kind: ReasonKind::Imported,
                            by: rel.to_owned(),
                            line: imp.line,
                        },
                        Some(Role::Python),
                    );
                }
                break;
            }
        }
        for d in &facts.defaults {
            if let python::Value::Str(s) = &d.value
                && [".yaml", ".yml", ".json"].iter().any(|e| s.ends_with(e))
                && let Some(hit) = [join_rel(&dir, s), normalize(s)]
                    .into_iter()
                    .find(|c| self.ctx_files.contains(c))
            {
                self.add(
                    &hit,
                    phase,
                    Reason {
                        kind: ReasonKind::Config,
                        by: rel.to_owned(),
                        line: d.line,
                    },
                    Some(Role::Config),
                );
            }
        }
    }
}

/// A file only copied is judged by its name: a dependency file is linted, anything else is
/// only read once a step runs or imports it.
fn role_by_name(rel: &str) -> Role {
    format_by_name(rel)
        .map(Role::Dependency)
        .unwrap_or(Role::Other)
}

/// `ENV A=1 B="2"` or `ENV A 1`.
fn env_pairs(args: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = args.split_whitespace().collect();
    if words.first().is_some_and(|w| !w.contains('=')) {
        return words
            .split_first()
            .map(|(k, v)| vec![((*k).to_owned(), v.join(" "))])
            .unwrap_or_default();
    }
    words
        .iter()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
        .collect()
}

/// CMD/ENTRYPOINT as words: the exec form, or `sh -c <text>` for the shell form.
fn command_words(inst: &Instruction) -> Vec<String> {
    match inst.exec_form() {
        Some(v) => v,
        None if inst.args.trim().is_empty() => Vec::new(),
        None => vec!["/bin/sh".into(), "-c".into(), inst.args.trim().to_owned()],
    }
}

/// The simple commands an entry runs: a `sh -c` / `bash -c` script is split into its commands.
pub fn entry_commands(entry: &[String]) -> Vec<Vec<Word>> {
    let prog = entry.first().map(|p| basename(p)).unwrap_or("");
    if matches!(prog, "sh" | "bash") && entry.get(1).is_some_and(|a| a == "-c" || a == "-lc") {
        return simple_commands(entry.get(2).map(String::as_str).unwrap_or(""));
    }
    if entry.is_empty() {
        return Vec::new();
    }
    vec![
        entry
            .iter()
            .map(|w| Word {
                text: w.clone(),
                offset: 0,
            })
            .collect(),
    ]
}

/// Works out the build path.
pub fn build_path(input: &BuildPathInput<'_>) -> BuildPath {
    Walker::new(input).run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;
    use std::collections::HashMap;

    fn walk(
        files: &[(&str, &str)],
        dockerfile: &str,
        command: Option<&[String]>,
        ignore: &str,
    ) -> BuildPath {
        let map: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let names: Vec<String> = map.keys().cloned().collect();
        let df = parse(dockerfile);
        let ig = DockerIgnore::parse(ignore);
        let read = |rel: &str| map.get(rel).cloned();
        build_path(&BuildPathInput {
            dockerfile: &df,
            dockerfile_label: "Dockerfile",
            context: ".",
            command: command.map(|c| (c, 13)),
            files: &names,
            ignore: &ig,
            read: &read,
        })
    }

    fn reasons(bp: &BuildPath) -> Vec<(String, String)> {
        bp.files
            .values()
            .flat_map(|f| f.reasons.iter().map(|r| (f.rel.clone(), r.to_string())))
            .collect()
    }

    #[test]
    fn follows_copy_run_cmd_scripts_and_imports() {
        let files = [
            ("reqs/gpu.txt", "torch==2\n-r base.txt\n"),
            ("reqs/base.txt", "numpy==1\n"),
            ("requirements-dev.txt", "pytest\n"),
            (
                "scripts/train.sh",
                "#!/bin/sh\nset -e\npython src/train.py --config configs/a.yaml \\\n  --model_name x/y\n",
            ),
            (
                "src/train.py",
                "import os\nfrom lib.data import load\nfrom . import util\n",
            ),
            ("src/util.py", ""),
            ("src/lib/__init__.py", ""),
            ("src/lib/data.py", "import numpy\n"),
            ("configs/a.yaml", "model: x\n"),
            ("configs/unused.yaml", "model: y\n"),
            ("setup/install.sh", "pip install -r ../reqs/base.txt\n"),
            ("data/big.jsonl", ""),
        ];
        let df = "FROM x\nWORKDIR /app\nCOPY reqs/gpu.txt /tmp/\nRUN pip install -r /tmp/gpu.txt\nCOPY . .\nRUN bash setup/install.sh\nCMD [\"bash\", \"scripts/train.sh\"]\n";
        let bp = walk(&files, df, None, "data\n");
        let got = reasons(&bp);
        let want = [
            ("configs/a.yaml", "passed as a config by scripts/train.sh:3"),
            ("reqs/base.txt", "`pip install -r` at reqs/gpu.txt:2"),
            ("reqs/base.txt", "`pip install -r` at setup/install.sh:1"),
            ("reqs/gpu.txt", "COPY source at Dockerfile:3"),
            ("reqs/gpu.txt", "`pip install -r` at Dockerfile:4"),
            ("scripts/train.sh", "run by Dockerfile:7"),
            ("setup/install.sh", "run by Dockerfile:6"),
            ("src/lib/__init__.py", "imported by src/train.py:2"),
            ("src/lib/data.py", "imported by src/train.py:2"),
            ("src/train.py", "run by scripts/train.sh:3"),
            ("src/util.py", "imported by src/train.py:3"),
        ];
        for (f, r) in want {
            assert!(
                got.contains(&(f.to_owned(), r.to_owned())),
                "missing {f}: {r} in {got:#?}"
            );
        }
        assert!(!bp.files.contains_key("requirements-dev.txt"));
        assert!(!bp.files.contains_key("configs/unused.yaml"));
        assert_eq!(bp.files["src/train.py"].phases, [Phase::Train]);
        assert_eq!(bp.files["setup/install.sh"].phases, [Phase::Build]);
        assert!(
            bp.cli_values
                .iter()
                .any(|c| c.key == "model_name" && c.value == "x/y")
        );
        assert_eq!(bp.entry, ["bash", "scripts/train.sh"]);
        assert_eq!(bp.entry_at, ("Dockerfile".to_owned(), 7));
    }

    #[test]
    fn dockerignore_and_manifest_command() {
        let files = [
            ("train.py", ""),
            ("requirements.txt", "x==1\n"),
            ("pyproject.toml", ""),
        ];
        let df =
            "FROM x\nWORKDIR /w\nCOPY . /w\nRUN pip install .\nCMD [\"python\", \"other.py\"]\n";
        let cmd = ["python3".to_owned(), "/w/train.py".to_owned()];
        let bp = walk(&files, df, Some(&cmd), "requirements.txt\n");
        let got = reasons(&bp);
        assert!(
            got.contains(&("train.py".into(), "run by reprobox.toml:13".into())),
            "{got:#?}"
        );
        assert!(
            got.contains(&(
                "pyproject.toml".into(),
                "`pip install .` at Dockerfile:4".into()
            )),
            "{got:#?}"
        );
        assert!(!bp.files.contains_key("requirements.txt"));
        assert_eq!(bp.entry_at, ("reprobox.toml".to_owned(), 13));
    }
}
