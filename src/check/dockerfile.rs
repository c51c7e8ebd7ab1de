//! Dockerfile lint: everything in a build that is fetched without being pinned.
//!
//! NeurIPS 2023 finalists' Dockerfiles pulled nightly base images by tag, `pip install -U
//! git+…` at HEAD, `git clone`d forks at HEAD, ran `huggingface-cli download` without a revision
//! and fetched data from Google Drive (shared/reference/competitions-and-peers.md §1.5 item 4;
//! recommendation §7.2 "pin or refuse"). Each of those makes a rebuild produce different bytes, so
//! this module reports them with the physical line of the offending token, following continuation
//! lines. The parser is deliberately small: logical instructions, shell-ish tokens, and the handful
//! of commands that download things. It never fails: unparseable text just yields no finding.

use std::collections::HashSet;

use super::finding::{Finding, FindingKind};

/// One logical instruction: a keyword, its arguments joined across continuation lines, and a map
/// from byte offsets in `args` back to physical line numbers.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// The keyword, upper-cased (`FROM`, `RUN`, …).
    pub keyword: String,
    /// The arguments after the keyword, continuation lines joined with a single space.
    pub args: String,
    /// `(offset in args, 1-based line)` at the start of each physical piece, ascending.
    segments: Vec<(usize, u32)>,
}

impl Instruction {
    /// The 1-based line the instruction starts on.
    pub fn line(&self) -> u32 {
        self.segments.first().map(|s| s.1).unwrap_or(1)
    }

    /// The physical line that holds byte `offset` of `args`: a binary search, since lint asks
    /// this for every word and an instruction can span 10^5 continuation lines.
    pub fn line_at(&self, offset: usize) -> u32 {
        match self.segments.partition_point(|&(start, _)| start <= offset) {
            0 => self.line(),
            i => self.segments[i - 1].1,
        }
    }
}

/// Splits a Dockerfile into logical instructions. Honours the `# escape=` parser directive,
/// skips comments and blank lines (also inside continuations, as BuildKit does), and ignores
/// heredoc bodies' structure (they are kept as arguments of their instruction).
pub fn parse(text: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut out = Vec::new();
    let mut current: Option<Instruction> = None;
    let mut directives_open = true;
    for (idx, raw_line) in text.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let trimmed = raw_line.trim();
        if directives_open {
            if let Some(rest) = trimmed.strip_prefix('#') {
                let rest = rest.trim();
                if let Some(value) = rest.strip_prefix("escape=") {
                    if value.trim() == "`" {
                        escape = '`';
                    }
                    continue;
                }
            } else {
                directives_open = trimmed.is_empty() && current.is_none() && out.is_empty();
            }
        }
        if trimmed.starts_with('#') || trimmed.is_empty() {
            // A comment or blank line: inside a continuation it is skipped, outside it ends nothing.
            continue;
        }
        let (piece, continues) = match trimmed.strip_suffix(escape) {
            Some(p) => (p, true),
            None => (trimmed, false),
        };
        match current.as_mut() {
            Some(inst) => {
                if !inst.args.is_empty() {
                    inst.args.push(' ');
                }
                inst.segments.push((inst.args.len(), line_no));
                inst.args.push_str(piece);
            }
            None => {
                let (kw, rest) = match piece.find(char::is_whitespace) {
                    Some(i) => (&piece[..i], piece[i..].trim_start()),
                    None => (piece, ""),
                };
                current = Some(Instruction {
                    keyword: kw.to_ascii_uppercase(),
                    args: rest.to_owned(),
                    segments: vec![(0, line_no)],
                });
            }
        }
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current.take());
    out
}

/// A shell word with its byte offset in the instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: String,
    offset: usize,
}

/// Splits shell text into simple commands (separated by `&&`, `||`, `;`, `|`, `&`, parentheses
/// and newlines), each a list of words with quotes removed. Good enough for lint, not a shell.
fn simple_commands(text: &str) -> Vec<Vec<Word>> {
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
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' | '\t' => flush(&mut words, &mut cur, &mut cur_start),
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

/// The text a RUN instruction hands to the shell: the JSON exec form joined with spaces, or the
/// shell form as written.
fn run_text(args: &str) -> String {
    let args = strip_run_flags(args);
    if args.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(args)
    {
        return v.join(" ");
    }
    args.to_owned()
}

/// Drops BuildKit `RUN --mount=… --network=…` flags, which come before the command.
fn strip_run_flags(mut args: &str) -> &str {
    while let Some(rest) = args.strip_prefix("--") {
        match rest.find(char::is_whitespace) {
            Some(i) => args = rest[i..].trim_start(),
            None => return "",
        }
    }
    args
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full git commit id (SHA-1, or SHA-256 for sha256 repositories).
fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && is_hex(s)
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Hints, shared by several findings so docs/checks.md can quote them once.
pub const HINT_BASE_IMAGE: &str = "pin the base image by digest: `FROM image:tag@sha256:<64 hex>` (`docker buildx imagetools inspect image:tag` prints it)";
pub const HINT_PIP: &str = "pin every package with `==<version>` (or install from a requirements file with pins and `--require-hashes`); never use `-U/--upgrade`";
pub const HINT_GIT_PIP: &str =
    "pin the git dependency to a full commit: `git+https://…/repo.git@<40-hex commit>`";
pub const HINT_GIT_CLONE: &str = "after `git clone`, `git checkout <40-hex commit>` (or `git fetch origin <commit> && git checkout FETCH_HEAD` with the commit named)";
pub const HINT_HF: &str = "download nothing at build time: declare the model or dataset under [base_model]/[[datasets]] with a commit revision and digest so reprobox stages it read-only under /inputs; if you must download, pass `--revision <40-hex commit>` / `revision=\"<commit>\"`";
pub const HINT_FETCH: &str = "declare the file as an input with a digest, or verify it in the same RUN with `echo \"<sha256>  <file>\" | sha256sum -c`";
pub const HINT_GDRIVE: &str = "Google Drive links are neither stable nor hashable: publish the data where it has a pinned revision (e.g. a Hugging Face dataset commit) and declare it under [[datasets]]";
pub const HINT_REMOTE_ADD: &str = "use `ADD --checksum=sha256:<64 hex> <url> <dest>`, or better declare the file as an input with a digest";
pub const HINT_APT: &str = "pin system packages with `apt-get install pkg=<version>` (the base image digest alone does not pin the package index)";

/// Lints one Dockerfile. `label` is the path findings carry (relative to the submission root).
pub fn lint_dockerfile(text: &str, label: &str) -> Vec<Finding> {
    let instructions = parse(text);
    let mut findings = Vec::new();
    let mut stages: HashSet<String> = HashSet::new();
    // ARGs declared before the first FROM may be used in FROM lines; resolve their defaults.
    let mut global_args: Vec<(String, String)> = Vec::new();
    let mut seen_from = false;

    // Commits checked out anywhere in the file, with the instruction index: a `git clone` is
    // pinned by a checkout in the same or a later RUN.
    let mut checkouts: Vec<usize> = Vec::new();
    for (i, inst) in instructions.iter().enumerate() {
        if inst.keyword == "RUN" {
            for cmd in simple_commands(&run_text(&inst.args)) {
                if is_git_checkout_of_commit(&cmd) {
                    checkouts.push(i);
                }
            }
        }
    }

    for (i, inst) in instructions.iter().enumerate() {
        let at = |offset: usize| inst.line_at(offset);
        match inst.keyword.as_str() {
            "ARG" if !seen_from => {
                if let Some((k, v)) = inst.args.split_once('=') {
                    global_args.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
                }
            }
            "FROM" => {
                seen_from = true;
                lint_from(inst, &global_args, &mut stages, label, &mut findings);
            }
            "ADD" => lint_add(inst, label, &mut findings),
            "RUN" => {
                let text = run_text(&inst.args);
                // Offsets in `text` equal offsets in `args` for the shell form (the common case);
                // for the exec form the line of the instruction is the best we can say.
                let exec_form = strip_run_flags(&inst.args).starts_with('[');
                let base = inst.args.len() - strip_run_flags(&inst.args).len();
                let line_of = |o: usize| if exec_form { inst.line() } else { at(base + o) };
                // `checkouts` ascends, so its last entry answers "in this or a later RUN" in O(1)
                // (an `any` over it was quadratic in the number of RUNs).
                let pinned_by_checkout = checkouts.last().is_some_and(|&c| c >= i);
                // Only this RUN's findings can share its line: the duplicate check below looks at
                // those alone (all findings made it quadratic in the number of RUNs).
                let own_from = findings.len();
                let verified = text.contains("sha256sum -c")
                    || text.contains("sha256sum --check")
                    || text.contains("shasum -a 256 -c");
                for cmd in simple_commands(&text) {
                    lint_command(
                        &cmd,
                        pinned_by_checkout,
                        verified,
                        label,
                        &line_of,
                        &mut findings,
                    );
                }
                lint_python_downloads(&text, label, &line_of, &mut findings);
                if (text.contains("drive.google.com") || text.contains("docs.google.com"))
                    && !findings[own_from..]
                        .iter()
                        .any(|f| f.line == Some(line_of(0)) && f.message.contains("Google Drive"))
                {
                    let o = text.find("google.com").unwrap_or(0);
                    findings.push(
                        Finding::error(
                            FindingKind::UnpinnedDownload,
                            "RUN fetches from Google Drive, whose files can change or vanish",
                            HINT_GDRIVE,
                        )
                        .at(label)
                        .line(line_of(o)),
                    );
                }
            }
            _ => {}
        }
    }
    findings
}

/// A base image a Dockerfile builds from: a `FROM` that names neither `scratch` nor an earlier
/// stage, with its `ARG` defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference as resolved, e.g. `python:3.11@sha256:…` or `sha256:<image id>`.
    pub reference: String,
    /// The 64 hex digits it is pinned by (a registry manifest digest or a local image id);
    /// `None` when it is not pinned.
    pub digest: Option<String>,
    pub line: u32,
}

/// The base images of a Dockerfile, in order (what provenance lists as dependencies).
pub fn base_images(text: &str) -> Vec<BaseImage> {
    let mut stages = HashSet::new();
    let mut global_args = Vec::new();
    let mut seen_from = false;
    let mut out = Vec::new();
    for inst in parse(text) {
        match inst.keyword.as_str() {
            "ARG" if !seen_from => {
                if let Some((k, v)) = inst.args.split_once('=') {
                    global_args.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
                }
            }
            "FROM" => {
                seen_from = true;
                if let Some((_, resolved)) = from_reference(&inst, &global_args, &mut stages) {
                    out.push(BaseImage {
                        digest: pinned_digest(&resolved).map(str::to_owned),
                        reference: resolved,
                        line: inst.line(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// The image a `FROM` names, as written and resolved; `None` for `scratch` or an earlier stage.
/// Adds the instruction's own `AS` name to `stages`.
fn from_reference(
    inst: &Instruction,
    global_args: &[(String, String)],
    stages: &mut HashSet<String>,
) -> Option<(String, String)> {
    let words: Vec<&str> = inst
        .args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    let image = words.first()?;
    let stage_name = (words.len() >= 3 && words[1].eq_ignore_ascii_case("as"))
        .then(|| words[2].to_ascii_lowercase());
    let mut resolved = (*image).to_owned();
    for (k, v) in global_args {
        resolved = resolved
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("${k}"), v);
    }
    // A stage name is checked before this FROM's own `AS` name is added: `FROM python AS python`
    // still pulls `python`.
    let earlier_stage = stages.contains(&resolved.to_ascii_lowercase());
    stages.extend(stage_name);
    if resolved.eq_ignore_ascii_case("scratch") || earlier_stage {
        return None;
    }
    Some(((*image).to_owned(), resolved))
}

/// The digest a resolved `FROM` reference is pinned by. `FROM name@sha256:<digest>` pins a
/// registry manifest; `FROM sha256:<image id>` pins a local image by its content-addressed id,
/// which is how images built without a registry (as on reprobox's own hosts) are pinned: the
/// classic builder resolves an id without pulling.
fn pinned_digest(resolved: &str) -> Option<&str> {
    let is_digest = |d: &&str| d.len() == 64 && is_hex(d);
    resolved
        .split_once("@sha256:")
        .map(|(_, d)| d)
        .filter(is_digest)
        .or_else(|| resolved.strip_prefix("sha256:").filter(is_digest))
}

fn lint_from(
    inst: &Instruction,
    global_args: &[(String, String)],
    stages: &mut HashSet<String>,
    label: &str,
    findings: &mut Vec<Finding>,
) {
    let Some((image, resolved)) = from_reference(inst, global_args, stages) else {
        return;
    };
    if pinned_digest(&resolved).is_none() {
        findings.push(
            Finding::error(
                FindingKind::UnpinnedBaseImage,
                format!("base image `{image}` is not pinned by digest; a tag can be moved to different bytes"),
                HINT_BASE_IMAGE,
            )
            .at(label)
            .line(inst.line()),
        );
    }
}

fn lint_add(inst: &Instruction, label: &str, findings: &mut Vec<Finding>) {
    let words: Vec<&str> = inst.args.split_whitespace().collect();
    let has_checksum = words.iter().any(|w| w.starts_with("--checksum=sha256:"));
    let operands: Vec<&&str> = words.iter().filter(|w| !w.starts_with("--")).collect();
    if operands.len() < 2 {
        return;
    }
    for src in &operands[..operands.len() - 1] {
        let remote = ["http://", "https://", "ftp://", "git@", "git://"]
            .iter()
            .any(|p| src.starts_with(p));
        if remote && !has_checksum {
            let offset = inst.args.find(**src).unwrap_or(0);
            findings.push(
                Finding::error(
                    FindingKind::RemoteAdd,
                    "ADD fetches a URL without a checksum; the bytes are neither pinned nor hashed",
                    HINT_REMOTE_ADD,
                )
                .at(label)
                .line(inst.line_at(offset)),
            );
        }
    }
}

/// Strips `VAR=value` prefixes and wrappers (`sudo`, `env`, `time`, …) from a simple command.
fn program_and_args(cmd: &[Word]) -> Option<(&str, &[Word])> {
    let mut i = 0;
    while i < cmd.len() {
        let w = cmd[i].text.as_str();
        let is_assignment = w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_assignment
            || matches!(
                w,
                "sudo" | "env" | "time" | "nohup" | "exec" | "then" | "do" | "else" | "!"
            )
        {
            i += 1;
        } else {
            break;
        }
    }
    cmd.get(i).map(|w| (basename(&w.text), &cmd[i + 1..]))
}

fn is_git_checkout_of_commit(cmd: &[Word]) -> bool {
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

fn lint_command(
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
    let is_python = prog.starts_with("python");
    let is_pip = prog.starts_with("pip")
        && prog
            .trim_start_matches("pip")
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
    // `pip install`, `python -m pip install`, `uv pip install`.
    let pip_args: Option<&[Word]> = if is_pip {
        args.first()
            .filter(|w| w.text == "install")
            .map(|_| &args[1..])
    } else if is_python {
        let pos = args
            .windows(3)
            .position(|w| w[0].text == "-m" && w[1].text == "pip" && w[2].text == "install");
        pos.map(|p| &args[p + 3..])
    } else if prog == "uv" {
        (args.len() >= 2 && args[0].text == "pip" && args[1].text == "install").then(|| &args[2..])
    } else {
        None
    };
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

fn lint_pip_install(args: &[Word], push: &mut dyn FnMut(Finding, usize)) {
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
fn lint_pip_requirement(
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

    fn kinds(text: &str) -> Vec<(FindingKind, u32)> {
        lint_dockerfile(text, "Dockerfile")
            .into_iter()
            .map(|f| (f.kind, f.line.unwrap_or(0)))
            .collect()
    }

    #[test]
    fn continuation_lines_map_to_physical_lines() {
        let insts = parse("FROM a\nRUN echo 1 \\\n  # comment\n  && pip install \\\n   torch\n");
        assert_eq!(insts.len(), 2);
        let run = &insts[1];
        assert_eq!(run.line(), 2);
        let off = run.args.find("torch").unwrap();
        assert_eq!(run.line_at(off), 5);
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
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, super::super::Severity::Warning);
        assert!(f[0].message.contains("git"));
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
