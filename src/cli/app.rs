//! The clap definition of the `reprobox` command line; `///` docs are the `--help` text.

use clap::{Parser, Subcommand};

use reprobox::exit_codes;

#[derive(Debug, Parser)]
#[command(
    name = "reprobox",
    version,
    about = "Re-runs a competition submission and decides whether its result reproduces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Re-check a run directory: journal chain, every recorded digest, provenance and signatures (`audit verify RUN_DIR`); `audit keygen OUT` writes an Ed25519 key pair.
    Audit(super::audit::AuditArgs),
    /// Static compliance checks of a submission: manifest vs policy, Dockerfile pinning, secrets, undeclared data, paths, models.
    Check(super::check::CheckArgs),
    /// Score a Hugging Face model directory on a JSONL file with the native evaluator.
    Eval(super::eval_forward::EvalForwardArgs),
    /// Verify a leaderboard from the top, replacing each entry that does not reproduce by the
    /// next, until --top entries reproduce; --resume continues a campaign.
    Finalists(super::finalists::FinalistsArgs),
    /// List the GPUs (NVML) and the policy tracks each is approved for.
    Gpu(super::gpu::GpuArgs),
    /// Print the OpenSSF model-signing (OMS) root digest of a model or data directory.
    Hash(super::hash::HashArgs),
    /// List the competition policies, or show one (`policy list`, `policy show ID`).
    Policy(super::policy::PolicyArgs),
    /// Continue a run whose runner died; finished stages are not repeated and the training
    /// deadline is not reset.
    Resume(super::verify::ResumeArgs),
    /// The whole pipeline: check, stage inputs, build, train in the sandbox, collect and hash,
    /// evaluate, report. Exits with the verdict's code.
    Verify(super::verify::VerifyArgs),
}

/// Parses the command line, runs the verb and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit_codes::UNREADABLE_INPUT
            } else {
                exit_codes::OK
            };
        }
    };
    match cli.command {
        Command::Audit(args) => super::audit::run(args),
        Command::Check(args) => super::check::run(args),
        Command::Eval(args) => super::eval_forward::run(args),
        Command::Finalists(args) => super::finalists::run(args),
        Command::Gpu(args) => super::gpu::run(args),
        Command::Hash(args) => super::hash::run(args),
        Command::Policy(args) => super::policy::run(args),
        Command::Resume(args) => super::verify::resume(args),
        Command::Verify(args) => super::verify::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag and positional of every verb says what it does in `--help`.
    #[test]
    fn every_argument_of_every_verb_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path} {} (the verb itself)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "reprobox", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help text:\n  {}",
            missing.join("\n  ")
        );
    }

    /// The markdown files whose `reprobox …` examples must match the command line.
    fn documents() -> Vec<std::path::PathBuf> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut docs = vec![root.join("README.md"), root.join("examples/README.md")];
        let mut more: Vec<_> = std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        more.sort();
        docs.extend(more);
        docs
    }

    /// One mention of the command line in the docs: where, what, and whether it is a whole
    /// command (a line of a shell code block) or a reference in prose or a synopsis.
    struct Mention {
        at: String,
        text: String,
        whole: bool,
    }

    fn mentions(path: &std::path::Path) -> Vec<Mention> {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut out = Vec::new();
        let mut in_block = false;
        let mut pending: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with("```") {
                in_block = !in_block;
                continue;
            }
            if in_block {
                // A command continued with `\` is one command.
                let (start, mut cmd) = match pending.take() {
                    Some(p) => p,
                    None => {
                        let body = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
                        if !body.starts_with("reprobox ") {
                            continue;
                        }
                        (i + 1, String::new())
                    }
                };
                let body = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
                match body.strip_suffix('\\') {
                    Some(head) => {
                        cmd.push_str(head);
                        cmd.push(' ');
                        pending = Some((start, cmd));
                    }
                    None => {
                        cmd.push_str(body);
                        // A synopsis in a code block (`[--flag]`, `A|B`) is checked like prose.
                        let whole = !cmd.contains(['[', '|', '<', '…']);
                        out.push(Mention {
                            at: format!("{name}:{start}"),
                            text: cmd,
                            whole,
                        });
                    }
                }
                continue;
            }
            for (j, span) in line.split('`').enumerate() {
                if j % 2 == 1 && span.starts_with("reprobox ") {
                    out.push(Mention {
                        at: format!("{name}:{}", i + 1),
                        text: span.to_owned(),
                        whole: false,
                    });
                }
            }
        }
        out
    }

    /// The words of a shell command up to its first pipe, redirection, `&&`, `;` or comment.
    fn words(cmd: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut quote: Option<char> = None;
        let mut any = false;
        for c in cmd.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => cur.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    any = true;
                }
                (None, c) if c.is_whitespace() => {
                    if any || !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                (None, c) => cur.push(c),
            }
        }
        if any || !cur.is_empty() {
            words.push(cur);
        }
        let end = words
            .iter()
            .position(|w| {
                matches!(w.as_str(), "|" | "&&" | ";" | "#" | "||")
                    || w.starts_with('>')
                    || w.starts_with("2>")
            })
            .unwrap_or(words.len());
        words.truncate(end);
        words
    }

    /// Every `reprobox …` in README.md, examples/README.md and docs/*.md names verbs and flags
    /// that exist, and every whole command in a code block parses with today's flags.
    /// `reprobox eval` passes its arguments to `reprobox-eval`, which checks its own.
    #[test]
    fn every_cli_example_in_the_docs_matches_the_command_line() {
        let root = Cli::command();
        let flag = regex::Regex::new(r"(?:^|[\s\[|(])(--[a-z][a-z0-9-]*)").unwrap();
        let mut wrong = Vec::new();
        let (mut whole, mut seen) = (0, 0);
        for doc in documents() {
            for m in mentions(&doc) {
                seen += 1;
                let words = words(&m.text);
                // The verb path: as many leading words as name subcommands.
                let mut cmd = &root;
                // The commands on the path: a parent's flags (`global = true`) apply below it.
                let mut path = vec![&root];
                for w in &words[1..] {
                    match cmd.find_subcommand(w) {
                        Some(sub) => {
                            cmd = sub;
                            path.push(sub);
                        }
                        None => break,
                    }
                }
                if cmd.get_name() == "eval" {
                    continue;
                }
                if std::ptr::eq(cmd, &root) {
                    wrong.push(format!("{}: `{}`: no such verb", m.at, m.text));
                    continue;
                }
                for f in flag.captures_iter(&m.text) {
                    let long = &f[1][2..];
                    if matches!(long, "help" | "version") {
                        continue;
                    }
                    if !path
                        .iter()
                        .any(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
                    {
                        wrong.push(format!(
                            "{}: `{}`: `{} --{long}` is not a flag",
                            m.at,
                            m.text,
                            cmd.get_name()
                        ));
                    }
                }
                if m.whole {
                    whole += 1;
                    if let Err(e) = Cli::try_parse_from(&words)
                        && !matches!(
                            e.kind(),
                            clap::error::ErrorKind::DisplayHelp
                                | clap::error::ErrorKind::DisplayVersion
                        )
                    {
                        wrong.push(format!(
                            "{}: `{}` does not parse: {}",
                            m.at,
                            m.text,
                            e.kind()
                        ));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // The docs do hold commands: the checks above are not vacuous.
        assert!(
            whole >= 5 && seen >= 50,
            "only {whole} whole commands and {seen} mentions found"
        );
    }

    #[test]
    fn shell_words_stop_at_operators_and_keep_quotes() {
        assert_eq!(
            words(r#"reprobox check "my sub" --format json | jq . "#),
            ["reprobox", "check", "my sub", "--format", "json"]
        );
        assert_eq!(words("reprobox hash m > d.txt"), ["reprobox", "hash", "m"]);
        assert_eq!(words("reprobox gpu ''"), ["reprobox", "gpu", ""]);
    }
}
