//! Dockerfile lint: everything in a build that is fetched without being pinned, every build step
//! that needs the network, and what the builder would reject.
//!
//! NeurIPS 2023 finalists' Dockerfiles pulled nightly base images by tag, `pip install -U
//! git+…` at HEAD, `git clone`d forks at HEAD, ran `huggingface-cli download` without a revision
//! and fetched data from Google Drive. Each of those makes a rebuild produce different bytes, and
//! each fails outright when the build has no network. This module reports them on the physical
//! line of the offending word, from the one parser in [`crate::dockerfile`]. Scripts a RUN
//! executes are linted the same way ([`lint_build_shell`]) when the build path finds them.

use crate::dockerfile::shell::{Word, program_and_args, simple_commands};
use crate::dockerfile::{self as parser, Dockerfile, Instruction, LineIndex};

use super::pip::{is_commit, lint_pip_install};
use crate::finding::{Finding, FindingKind, Severity};

pub use super::pip::{HINT_GIT_PIP, HINT_PIP, lint_requirements};
pub use crate::dockerfile::BaseImage;

/// Hints, shared by several findings so docs/checks.md can quote them once.
pub const HINT_BASE_IMAGE: &str = "pin the base image by digest: `FROM image:tag@sha256:<64 hex>` (`docker buildx imagetools inspect image:tag` prints it)";
pub const HINT_GIT_CLONE: &str = "after `git clone`, `git checkout <40-hex commit>` (or `git fetch origin <commit> && git checkout FETCH_HEAD` with the commit named)";
pub const HINT_HF: &str = "download nothing at build time: declare the model or dataset under [base_model]/[[datasets]] with a commit revision and digest so reprobox stages it read-only under /inputs; if you must download, pass `--revision <40-hex commit>` / `revision=\"<commit>\"`";
pub const HINT_FETCH: &str = "declare the file as an input with a digest, or verify it in the same RUN with `echo \"<sha256>  <file>\" | sha256sum -c`";
pub const HINT_GDRIVE: &str = "Google Drive links are neither stable nor hashable: publish the data where it has a pinned revision (e.g. a Hugging Face dataset commit) and declare it under [[datasets]]";
pub const HINT_REMOTE_ADD: &str = "use `ADD --checksum=sha256:<64 hex> <url> <dest>`, or better declare the file as an input with a digest";
pub const HINT_APT: &str = "pin system packages with `apt-get install pkg=<version>` (the base image digest alone does not pin the package index)";
pub const HINT_BUILD_NETWORK: &str = "build offline: vendor wheels into the context and `pip install --no-index --find-links ./wheels -r requirements.txt`, start from a base image that already holds the system packages, and declare models and data as inputs (staged under /inputs)";
pub const HINT_SYNTAX: &str = "fix the Dockerfile so `docker build` accepts it";

/// How the lint judges what a build fetches.
#[derive(Debug, Clone, Copy)]
pub struct LintOptions {
    /// The severity of a `build_network` finding: an error under a policy whose build network
    /// is `none` (the step cannot work), a warning where the build network is allowed (the
    /// fetched bytes are recorded by nothing).
    pub build_network: Severity,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            build_network: Severity::Warning,
        }
    }
}

/// Lints one Dockerfile's text with the default options. `label` is the path findings carry.
pub fn lint_dockerfile(text: &str, label: &str) -> Vec<Finding> {
    lint(&parser::parse(text), label, &LintOptions::default())
}

/// The base images of a Dockerfile's text, in order (what provenance lists as dependencies).
pub fn base_images(text: &str) -> Vec<BaseImage> {
    parser::base_images(&parser::parse(text))
}

/// Lints a parsed Dockerfile.
pub fn lint(df: &Dockerfile, label: &str, opts: &LintOptions) -> Vec<Finding> {
    let mut findings: Vec<Finding> = df
        .errors
        .iter()
        .map(|e| {
            Finding::error(
                FindingKind::DockerfileSyntax,
                e.message.clone(),
                format!("{}; {HINT_SYNTAX}", e.hint),
            )
            .at(label)
            .line(e.line)
        })
        .collect();
    for b in parser::base_images(df) {
        if b.digest.is_none() {
            findings.push(
                Finding::error(
                    FindingKind::UnpinnedBaseImage,
                    format!(
                        "base image `{}` is not pinned by digest; a tag can be moved to different bytes",
                        b.written
                    ),
                    HINT_BASE_IMAGE,
                )
                .at(label)
                .line(b.line),
            );
        }
    }
    // A `git clone` is pinned by a checkout of a commit in the same or a later RUN.
    let last_checkout = df.instructions.iter().rposition(|inst| {
        inst.keyword == "RUN"
            && shell_texts(inst).iter().any(|(t, _)| {
                simple_commands(t)
                    .iter()
                    .any(|c| is_git_checkout_of_commit(c))
            })
    });
    for (i, inst) in df.instructions.iter().enumerate() {
        match inst.keyword.as_str() {
            "ADD" => lint_add(inst, label, opts, &mut findings),
            "RUN" => {
                let pinned_by_checkout = last_checkout.is_some_and(|c| c >= i);
                let offline = inst.flag("network").is_some_and(|n| n == "none");
                let run_opts = LintOptions {
                    build_network: opts.build_network,
                };
                for (text, line_of) in shell_texts(inst) {
                    let ctx = ShellContext {
                        label,
                        pinned_by_checkout,
                        offline,
                        opts: &run_opts,
                    };
                    lint_build_shell(&text, &ctx, &*line_of, &mut findings);
                }
            }
            _ => {}
        }
    }
    findings
}

pub(crate) type LineOf<'a> = Box<dyn Fn(usize) -> u32 + 'a>;

/// The shell texts a RUN hands to the shell, each with its offset-to-line map: the command line
/// (exec form joined with spaces, or the shell form as written), and each heredoc body when the
/// command line feeds it to a shell (`RUN <<EOF`, `RUN bash <<EOF`).
pub(crate) fn shell_texts(inst: &Instruction) -> Vec<(String, LineOf<'_>)> {
    let (_, start) = inst.flags();
    let mut out: Vec<(String, LineOf<'_>)> = Vec::new();
    match inst.exec_form() {
        Some(v) => {
            let line = inst.line();
            out.push((v.join(" "), Box::new(move |_| line)));
        }
        None => out.push((
            inst.args[start..].to_owned(),
            Box::new(move |o| inst.line_at(start + o)),
        )),
    }
    let ops = inst.operands().trim_start();
    let feeds_shell = ops.starts_with("<<")
        || ["sh", "bash", "/bin/sh", "/bin/bash"].iter().any(|s| {
            ops.strip_prefix(s)
                .is_some_and(|r| r.trim_start().starts_with("<<"))
        });
    for h in &inst.heredocs {
        let idx = LineIndex::new(&h.body);
        if feeds_shell {
            out.push((h.body.clone(), Box::new(move |o| h.line_at(&idx, o))));
        } else if ops.starts_with("python") || ops.contains(" python") {
            // A Python heredoc: only its download calls are looked at.
            out.push((
                format!("python -c {}", shell_quote(&h.body)),
                Box::new(move |o| h.line_at(&idx, o.saturating_sub(10))),
            ));
        }
    }
    out
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Where shell text runs at build time, for [`lint_build_shell`].
pub struct ShellContext<'a> {
    /// The path findings carry.
    pub label: &'a str,
    /// A later step checks out a commit, so a `git clone` here is pinned.
    pub pinned_by_checkout: bool,
    /// The step runs with `--network=none`: it fetches nothing.
    pub offline: bool,
    pub opts: &'a LintOptions,
}

/// Lints shell text that runs at build time (a RUN, or a script a RUN executes): unpinned
/// packages and downloads, and every command that fetches from the network.
pub fn lint_build_shell(
    text: &str,
    ctx: &ShellContext<'_>,
    line_of: &dyn Fn(usize) -> u32,
    findings: &mut Vec<Finding>,
) {
    let verified = text.contains("sha256sum -c")
        || text.contains("sha256sum --check")
        || text.contains("shasum -a 256 -c");
    let mut gdrive_reported = false;
    for cmd in simple_commands(text) {
        let before = findings.len();
        lint_command(
            &cmd,
            ctx.pinned_by_checkout,
            verified,
            ctx.label,
            line_of,
            findings,
        );
        gdrive_reported |= findings[before..]
            .iter()
            .any(|f| f.message.contains("Google Drive"));
        if !ctx.offline
            && let Some(what) = network_fetch(&cmd)
        {
            let offset = cmd.first().map(|w| w.offset).unwrap_or(0);
            findings.push(
                Finding {
                    severity: ctx.opts.build_network,
                    ..Finding::error(
                        FindingKind::BuildNetwork,
                        format!("this build step needs the network: {what}"),
                        HINT_BUILD_NETWORK,
                    )
                }
                .at(ctx.label)
                .line(line_of(offset)),
            );
        }
    }
    lint_python_downloads(text, ctx.label, line_of, findings);
    if !gdrive_reported && (text.contains("drive.google.com") || text.contains("docs.google.com")) {
        let o = text.find("google.com").unwrap_or(0);
        findings.push(
            Finding::error(
                FindingKind::UnpinnedDownload,
                "RUN fetches from Google Drive, whose files can change or vanish",
                HINT_GDRIVE,
            )
            .at(ctx.label)
            .line(line_of(o)),
        );
    }
}

/// The words of a `pip install` in a simple command (`pip install`, `python -m pip install`,
/// `uv pip install`): the arguments after `install`.
pub fn pip_install_args(cmd: &[Word]) -> Option<&[Word]> {
    let (prog, args) = program_and_args(cmd)?;
    let is_pip = prog.starts_with("pip")
        && prog
            .trim_start_matches("pip")
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
    // `pip wheel` and `pip download` read requirement files and fetch like `pip install`.
    let sub = |w: &Word| matches!(w.text.as_str(), "install" | "wheel" | "download");
    if is_pip {
        args.first().filter(|w| sub(w)).map(|_| &args[1..])
    } else if prog.starts_with("python") {
        let pos = args
            .windows(3)
            .position(|w| w[0].text == "-m" && w[1].text == "pip" && sub(&w[2]));
        pos.map(|p| &args[p + 3..])
    } else if prog == "uv" {
        (args.len() >= 2 && args[0].text == "pip" && sub(&args[1])).then(|| &args[2..])
    } else {
        None
    }
}

/// `install`, `wheel` or `download`: the pip subcommand of a command.
fn cmd_sub(cmd: &[Word]) -> &str {
    cmd.iter()
        .map(|w| w.text.as_str())
        .find(|t| matches!(*t, "install" | "wheel" | "download"))
        .unwrap_or("install")
}

/// What a simple command fetches from the network, in words; `None` when it fetches nothing.
pub fn network_fetch(cmd: &[Word]) -> Option<String> {
    let (prog, args) = program_and_args(cmd)?;
    let has = |w: &str| args.iter().any(|a| a.text == w);
    let sub = args.first().map(|w| w.text.as_str()).unwrap_or("");
    let operands = |skip: usize| -> String {
        let ops: Vec<&str> = args
            .iter()
            .skip(skip)
            .map(|w| w.text.as_str())
            .filter(|t| !t.starts_with('-'))
            .collect();
        match ops.len() {
            0 => String::new(),
            1..=3 => format!(" {}", ops.join(" ")),
            n => format!(" {} … ({n} in all)", ops[..3].join(" ")),
        }
    };
    if let Some(pip) = pip_install_args(cmd) {
        if pip.iter().any(|w| w.text == "--no-index") {
            return None;
        }
        // The arguments as written (flags too: `-r reqs.txt` says what is installed), at most six.
        let ops: Vec<&str> = pip.iter().map(|w| w.text.as_str()).take(7).collect();
        let list = if ops.len() > 6 {
            format!("{} …", ops[..6].join(" "))
        } else {
            ops.join(" ")
        };
        return Some(format!(
            "`pip {} {list}` fetches packages from the package index",
            cmd_sub(cmd)
        ));
    }
    match prog {
        "conda" | "mamba" | "micromamba"
            if matches!(sub, "install" | "create" | "update" | "env") && !has("--offline") =>
        {
            Some(format!(
                "`{prog} {sub}{}` fetches packages from conda channels",
                operands(1)
            ))
        }
        "apt-get" | "apt" if matches!(sub, "install" | "update" | "upgrade" | "dist-upgrade") => {
            Some(format!(
                "`{prog} {sub}{}` fetches from the distribution's mirrors",
                operands(1)
            ))
        }
        "apk" if sub == "add" && !has("--no-network") => Some(format!(
            "`apk add{}` fetches from Alpine's mirrors",
            operands(1)
        )),
        "yum" | "dnf" if sub == "install" => Some(format!(
            "`{prog} install{}` fetches from the distribution's mirrors",
            operands(1)
        )),
        "git" => {
            let sub = args
                .iter()
                .map(|w| w.text.as_str())
                .find(|t| matches!(*t, "clone" | "fetch" | "pull" | "submodule"));
            sub.map(|s| {
                let url = args
                    .iter()
                    .find(|w| w.text.contains("://") || w.text.starts_with("git@"))
                    .map(|w| format!(" {}", w.text))
                    .unwrap_or_default();
                format!("`git {s}{url}` fetches a repository")
            })
        }
        "curl" | "wget" => args
            .iter()
            .find(|w| w.text.contains("://"))
            .map(|w| format!("`{prog}` fetches {}", w.text)),
        "gdown" => Some(format!("`gdown{}` fetches from Google Drive", operands(0))),
        "huggingface-cli" | "hf" if sub == "download" => Some(format!(
            "`{prog} download{}` fetches from the Hugging Face Hub",
            operands(1)
        )),
        "poetry" if sub == "install" => Some("`poetry install` fetches packages".to_owned()),
        "uv" if matches!(sub, "sync" | "add") => Some(format!("`uv {sub}` fetches packages")),
        "npm" | "yarn" if matches!(sub, "install" | "ci" | "add") => {
            Some(format!("`{prog} {sub}` fetches packages"))
        }
        _ if prog.starts_with("python")
            && args.first().is_some_and(|w| w.text == "-c")
            && [
                "snapshot_download(",
                "hf_hub_download(",
                "from_pretrained(",
                "load_dataset(",
            ]
            .iter()
            .any(|c| args.get(1).is_some_and(|w| w.text.contains(c))) =>
        {
            Some("a Python download call fetches from the Hugging Face Hub".to_owned())
        }
        _ => None,
    }
}

fn lint_add(inst: &Instruction, label: &str, opts: &LintOptions, findings: &mut Vec<Finding>) {
    let has_checksum = inst
        .flag("checksum")
        .is_some_and(|c| c.starts_with("sha256:"));
    let words: Vec<&str> = inst.operands().split_whitespace().collect();
    if words.len() < 2 {
        return;
    }
    for src in &words[..words.len() - 1] {
        let remote = ["http://", "https://", "ftp://", "git@", "git://"]
            .iter()
            .any(|p| src.starts_with(p));
        if !remote {
            continue;
        }
        let line = inst.line_at(inst.args.find(*src).unwrap_or(0));
        if !has_checksum {
            findings.push(
                Finding::error(
                    FindingKind::RemoteAdd,
                    "ADD fetches a URL without a checksum; the bytes are neither pinned nor hashed",
                    HINT_REMOTE_ADD,
                )
                .at(label)
                .line(line),
            );
        }
        findings.push(
            Finding {
                severity: opts.build_network,
                ..Finding::error(
                    FindingKind::BuildNetwork,
                    format!("this build step needs the network: `ADD` fetches {src}"),
                    HINT_BUILD_NETWORK,
                )
            }
            .at(label)
            .line(line),
        );
    }
}

pub(crate) fn is_git_checkout_of_commit(cmd: &[Word]) -> bool {
    let Some((prog, args)) = program_and_args(cmd) else {
        return false;
    };
    if prog != "git" {
        return false;
    }
    // Skip `-C dir` and other global options.
    let mut rest = args;
    while let Some(first) = rest.first() {
        if first.text == "-C" || first.text == "-c" {
            rest = rest.get(2..).unwrap_or(&[]);
        } else if first.text.starts_with('-') {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let Some(sub) = rest.first() else {
        return false;
    };
    // `git fetch origin <commit>` (then `checkout FETCH_HEAD`) pins as well as a checkout does.
    matches!(sub.text.as_str(), "checkout" | "switch" | "reset" | "fetch")
        && rest[1..].iter().any(|w| is_commit(&w.text))
}

pub(crate) fn lint_command(
    cmd: &[Word],
    pinned_by_checkout: bool,
    verified: bool,
    label: &str,
    line_of: &dyn Fn(usize) -> u32,
    findings: &mut Vec<Finding>,
) {
    let Some((prog, args)) = program_and_args(cmd) else {
        return;
    };
    let first_offset = cmd.first().map(|w| w.offset).unwrap_or(0);
    let mut push = |f: Finding, offset: usize| findings.push(f.at(label).line(line_of(offset)));
    // `pip install`, `python -m pip install`, `uv pip install`.
    let pip_args = pip_install_args(cmd);
    if let Some(pip_args) = pip_args {
        lint_pip_install(pip_args, &mut push);
        return;
    }
    match prog {
        "git" => {
            let clone = args.iter().position(|w| w.text == "clone");
            if let Some(p) = clone
                && !pinned_by_checkout
            {
                push(
                    Finding::error(
                        FindingKind::UnpinnedDownload,
                        "`git clone` without a later checkout of a commit builds whatever HEAD is that day",
                        HINT_GIT_CLONE,
                    ),
                    args[p].offset,
                );
            }
        }
        "huggingface-cli" | "hf" if args.first().is_some_and(|w| w.text == "download") => {
            let rev = args
                .iter()
                .position(|w| w.text == "--revision")
                .and_then(|p| args.get(p + 1))
                .map(|w| w.text.clone())
                .or_else(|| {
                    args.iter()
                        .find_map(|w| w.text.strip_prefix("--revision=").map(str::to_owned))
                });
            let repo = args.get(1).map(|w| w.text.as_str()).unwrap_or("?");
            match rev {
                Some(r) if is_commit(&r) => {}
                Some(r) => push(
                    Finding::error(
                        FindingKind::UnpinnedDownload,
                        format!(
                            "`{prog} download {repo}` uses revision `{r}`, which is not a commit id"
                        ),
                        HINT_HF,
                    ),
                    first_offset,
                ),
                None => push(
                    Finding::error(
                        FindingKind::UnpinnedDownload,
                        format!(
                            "`{prog} download {repo}` has no `--revision`; it fetches whatever `main` is"
                        ),
                        HINT_HF,
                    ),
                    first_offset,
                ),
            }
        }
        "curl" | "wget" => {
            let has_url = args.iter().any(|w| w.text.contains("://"));
            if has_url && !verified {
                let gdrive = args.iter().any(|w| {
                    w.text.contains("drive.google.com") || w.text.contains("docs.google.com")
                });
                push(
                    if gdrive {
                        Finding::error(
                            FindingKind::UnpinnedDownload,
                            format!(
                                "`{prog}` fetches from Google Drive, whose files can change or vanish"
                            ),
                            HINT_GDRIVE,
                        )
                    } else {
                        Finding::error(
                            FindingKind::UnpinnedDownload,
                            format!(
                                "`{prog}` fetches a URL at build time without verifying a checksum"
                            ),
                            HINT_FETCH,
                        )
                    },
                    first_offset,
                );
            }
        }
        "gdown" => push(
            Finding::error(
                FindingKind::UnpinnedDownload,
                "`gdown` fetches from Google Drive, whose files can change or vanish",
                HINT_GDRIVE,
            ),
            first_offset,
        ),
        "apt-get" | "apt" if args.iter().any(|w| w.text == "install") => {
            let unpinned: Vec<&str> = args
                .iter()
                .skip_while(|w| w.text != "install")
                .skip(1)
                .filter(|w| !w.text.starts_with('-') && !w.text.contains('='))
                .map(|w| w.text.as_str())
                .collect();
            if !unpinned.is_empty() {
                push(
                    Finding::warning(
                        FindingKind::UnpinnedDependency,
                        format!("system packages without a version: {}", unpinned.join(" ")),
                        HINT_APT,
                    ),
                    first_offset,
                );
            }
        }
        _ => {}
    }
}

/// Python download calls inside RUN (`python -c "…"`): `snapshot_download`, `hf_hub_download`,
/// `from_pretrained`, `load_dataset` without a `revision=` argument.
fn lint_python_downloads(
    text: &str,
    label: &str,
    line_of: &dyn Fn(usize) -> u32,
    findings: &mut Vec<Finding>,
) {
    for call in [
        "snapshot_download(",
        "hf_hub_download(",
        "from_pretrained(",
        "load_dataset(",
    ] {
        let mut search = 0;
        while let Some(pos) = text[search..].find(call) {
            let start = search + pos;
            let args_start = start + call.len();
            let args = call_arguments(&text[args_start..]);
            search = args_start;
            // A local path (`/inputs/…`, `./model`) is not a download.
            let first = args.trim_start().trim_start_matches(['"', '\'']);
            if first.starts_with('/') || first.starts_with('.') {
                continue;
            }
            let revision = args
                .split_once("revision=")
                .map(|(_, r)| r.trim_start().trim_start_matches(['"', '\'']))
                .map(|r| {
                    r.chars()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect::<String>()
                });
            let name = call.trim_end_matches('(');
            let message = match revision {
                Some(r) if is_commit(&r) => continue,
                Some(r) if !r.is_empty() => {
                    format!("`{name}` in RUN uses revision `{r}`, which is not a commit id")
                }
                _ => format!(
                    "`{name}` in RUN downloads from the Hugging Face Hub without `revision=<commit>`"
                ),
            };
            findings.push(
                Finding::error(FindingKind::UnpinnedDownload, message, HINT_HF)
                    .at(label)
                    .line(line_of(start)),
            );
        }
    }
}

/// The text of a call's arguments up to its matching close parenthesis (or the end).
fn call_arguments(text: &str) -> &str {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    /// The findings other than `build_network`, which `build_network_steps` tests.
    fn kinds(text: &str) -> Vec<(FindingKind, u32)> {
        lint_dockerfile(text, "Dockerfile")
            .into_iter()
            .filter(|f| f.kind != FindingKind::BuildNetwork)
            .map(|f| (f.kind, f.line.unwrap_or(0)))
            .collect()
    }

    #[test]
    fn from_pinning() {
        assert_eq!(
            kinds("FROM python:3.11\n"),
            vec![(FindingKind::UnpinnedBaseImage, 1)]
        );
        assert!(kinds(&format!("FROM python:3.11@sha256:{DIGEST}\n")).is_empty());
        assert!(kinds("FROM scratch\n").is_empty());
        // A local image pinned by its content-addressed id.
        assert!(kinds(&format!("FROM sha256:{DIGEST}\n")).is_empty());
        assert_eq!(kinds("FROM sha256:abc\n").len(), 1);
        let bases = base_images(&format!(
            "ARG B=python@sha256:{DIGEST}\nFROM ${{B}} AS build\nFROM build\nFROM scratch\nFROM sha256:{DIGEST}\nFROM debian:12\n"
        ));
        let refs: Vec<(&str, Option<&str>, u32)> = bases
            .iter()
            .map(|b| (b.reference.as_str(), b.digest.as_deref(), b.line))
            .collect();
        assert_eq!(
            refs,
            [
                (format!("python@sha256:{DIGEST}").as_str(), Some(DIGEST), 2),
                (format!("sha256:{DIGEST}").as_str(), Some(DIGEST), 5),
                ("debian:12", None, 6),
            ]
        );
        let multi = format!(
            "FROM python@sha256:{DIGEST} AS build\nFROM build\nFROM --platform=linux/amd64 BUILD\n"
        );
        assert!(kinds(&multi).is_empty(), "{:?}", kinds(&multi));
        let arg = format!("ARG BASE=python@sha256:{DIGEST}\nFROM ${{BASE}}\n");
        assert!(kinds(&arg).is_empty());
        assert_eq!(kinds("FROM python@sha256:abc\n").len(), 1);
    }

    #[test]
    fn pip_pins() {
        let base = "FROM scratch\n";
        let k = |run: &str| kinds(&format!("{base}{run}\n"));
        assert!(
            k("RUN pip install --no-cache-dir torch==2.1.0 'numpy==1.26.4' -r requirements.txt")
                .is_empty()
        );
        assert_eq!(
            k("RUN pip install torch"),
            vec![(FindingKind::UnpinnedDependency, 2)]
        );
        assert_eq!(k("RUN pip install 'torch>=2'").len(), 1);
        assert_eq!(k("RUN pip install torch==2.*").len(), 1);
        assert_eq!(k("RUN pip3 install -U torch==2.1.0").len(), 1);
        assert_eq!(k("RUN python3 -m pip install --upgrade pip==24.0").len(), 1);
        assert_eq!(k("RUN pip install -qU x==1").len(), 1);
        assert_eq!(
            k("RUN pip install git+https://github.com/huggingface/peft.git").len(),
            1
        );
        assert_eq!(
            k("RUN pip install git+https://github.com/NVIDIA/TransformerEngine.git@stable").len(),
            1
        );
        let sha = "a".repeat(40);
        assert!(
            k(&format!(
                "RUN pip install git+https://github.com/huggingface/peft.git@{sha}"
            ))
            .is_empty()
        );
        assert!(k("RUN pip install -e . && pip install ./wheels/x.whl").is_empty());
        assert_eq!(k("RUN uv pip install requests").len(), 1);
    }

    #[test]
    fn downloads() {
        let k = |run: &str| kinds(&format!("FROM scratch\n{run}\n"));
        assert_eq!(
            k("RUN git clone https://github.com/a/b.git"),
            vec![(FindingKind::UnpinnedDownload, 2)]
        );
        let sha = "b".repeat(40);
        assert!(
            k(&format!(
                "RUN git clone https://github.com/a/b.git && git -C b checkout {sha}"
            ))
            .is_empty()
        );
        assert!(
            k(&format!(
                "RUN git clone https://x/b.git\nWORKDIR b\nRUN git checkout {sha}"
            ))
            .is_empty()
        );
        assert!(k(&format!("RUN git clone https://x/b.git && cd b && git fetch --depth 1 origin {sha} && git checkout FETCH_HEAD")).is_empty());
        assert_eq!(
            k("RUN git clone https://x/b.git && cd b && git checkout v1.0").len(),
            1
        );
        assert_eq!(
            k("RUN huggingface-cli download mistralai/Mistral-7B-v0.1").len(),
            1
        );
        assert_eq!(k("RUN hf download x/y --revision main").len(), 1);
        assert!(k(&format!("RUN hf download x/y --revision {sha}")).is_empty());
        assert_eq!(
            k("RUN python -c \"from huggingface_hub import snapshot_download; snapshot_download('x/y')\"").len(),
            1
        );
        assert!(k(&format!("RUN python -c \"from transformers import A; A.from_pretrained('x/y', revision='{sha}')\"")).is_empty());
        assert!(k("RUN python -c \"A.from_pretrained('/inputs/base_model')\"").is_empty());
        assert_eq!(
            k("RUN wget https://example.com/data.tar"),
            vec![(FindingKind::UnpinnedDownload, 2)]
        );
        assert!(k(&format!("RUN curl -fsSLo d.tar https://e.com/d.tar && echo \"{DIGEST}  d.tar\" | sha256sum -c")).is_empty());
        assert_eq!(k("RUN gdown 1AbCdEf").len(), 1);
        assert_eq!(k("RUN curl -L 'https://drive.google.com/uc?id=1'").len(), 1);
        assert_eq!(
            k("ADD https://example.com/x.tar /x.tar"),
            vec![(FindingKind::RemoteAdd, 2)]
        );
        assert!(
            k(&format!(
                "ADD --checksum=sha256:{DIGEST} https://example.com/x.tar /x.tar"
            ))
            .is_empty()
        );
        assert!(k("ADD src/ /app/").is_empty());
    }

    #[test]
    fn apt_is_a_warning() {
        let f = lint_dockerfile(
            "FROM scratch\nRUN apt-get update && apt-get install -y git curl=7.88.1-10\n",
            "D",
        );
        let f: Vec<Finding> = f
            .into_iter()
            .filter(|f| f.kind != FindingKind::BuildNetwork)
            .collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, super::super::Severity::Warning);
        assert!(f[0].message.contains("git"));
    }

    #[test]
    fn build_network_steps() {
        let net = |text: &str, sev: Severity| -> Vec<(u32, Severity, String)> {
            lint(
                &parser::parse(text),
                "D",
                &LintOptions { build_network: sev },
            )
            .into_iter()
            .filter(|f| f.kind == FindingKind::BuildNetwork)
            .map(|f| (f.line.unwrap_or(0), f.severity, f.message))
            .collect()
        };
        let text = "FROM scratch\nRUN apt-get update && apt-get install -y git=1 \\\n  && pip install -r reqs.txt\nRUN pip install --no-index --find-links /w -r reqs.txt\nRUN git clone https://git.example.com/a/b.git\nADD https://e.com/x.tar /x\nRUN --network=none pip install x==1\nRUN conda env create -f environment.yml\nRUN echo offline\nRUN <<EOF\nwget https://e.com/f\nEOF\n";
        let got = net(text, Severity::Error);
        let lines: Vec<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(lines, [2, 2, 3, 5, 6, 8, 11], "{got:#?}");
        assert!(got.iter().all(|g| g.1 == Severity::Error));
        assert!(
            got[2].2.contains("`pip install -r reqs.txt`"),
            "{}",
            got[2].2
        );
        assert!(
            got[3].2.contains("https://git.example.com/a/b.git"),
            "{}",
            got[3].2
        );
        assert!(got[6].2.contains("https://e.com/f"), "{}", got[6].2);
        assert!(
            net(text, Severity::Warning)
                .iter()
                .all(|g| g.1 == Severity::Warning)
        );
    }

    #[test]
    fn syntax_errors_are_findings_with_lines() {
        let f = lint_dockerfile("FROM scratch\nRUN pip install \\\n  x==1\n  && echo\n", "D");
        let syntax: Vec<u32> = f
            .iter()
            .filter(|f| f.kind == FindingKind::DockerfileSyntax)
            .map(|f| f.line.unwrap_or(0))
            .collect();
        assert_eq!(syntax, [4]);
    }

    #[test]
    fn requirements_file() {
        let f = lint_requirements(
            "# c\ntorch==2.1.0 --hash=sha256:aa\nnumpy>=1\npeft==0.6; python_version>'3'\n",
            "requirements.txt",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].line, Some(3));
    }

    #[test]
    fn hostile_text_does_not_panic() {
        for t in [
            "RUN \\",
            "FROM",
            "ADD",
            "RUN pip install \"unterminated",
            "RUN ['x'",
            "\u{feff}RUN é\\\n\\",
            "RUN from_pretrained(((",
            "RUN git -C",
        ] {
            let _ = lint_dockerfile(t, "D");
        }
    }
}
