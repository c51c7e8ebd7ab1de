//! What the training path does that an offline, sandboxed rebuild cannot: downloads at run time
//! (`runtime_download`), remote code (`trust_remote_code`), online trackers and Hub uploads
//! (`online_logging`), a model saved with pickle (`pickle_output`), host volumes and the Docker
//! socket (`host_mount`; compose files are in [`super::compose`]) and shuffles without a seed
//! (`unseeded_randomness`). [`super::entry`] judges the command itself (`no_training_entry`).
//!
//! The Python files, shell scripts and config files are the ones on the build path
//! ([`super::buildpath`]). A Hub id is resolved as far as a scanner can: a literal, a module
//! constant, an argparse `default=`, a dataclass field default, a `--key value` the command passes,
//! or a `key: value` in a config file the command passes (`--config cfg.yaml`). "Declared" means
//! the manifest's `[base_model]` / `[[datasets]]` ids: those are staged offline, so their download
//! is a note (`info`); any other id is an error.

use std::collections::HashSet;

use regex::Regex;

use crate::dockerfile::shell::basename;

use super::buildpath::{BuildPath, Phase, Role};
use super::compose::HINT_HOST_MOUNT;
use super::python::{Call, PyFacts, Tok, Token, value_of};
use super::resolve::{Origin, Resolved, Resolver, config_values};
use crate::finding::{Finding, FindingKind, Severity};

pub const HINT_DOWNLOAD: &str = "declare it under [base_model] or [[datasets]] with a commit revision and digest and it will be staged offline under /inputs; load it from there";
pub const HINT_DOWNLOAD_DECLARED: &str = "a declared input is staged offline under /inputs: load it from that path (or with HF_HUB_OFFLINE=1 from the staged cache)";
pub const HINT_URL: &str = "nothing can be fetched at run time (network none): declare the file as an input with a digest, or put it in the build context";
pub const HINT_REMOTE_CODE: &str = "declare the repository as an input with a commit revision (its code is then pinned and staged), or drop trust_remote_code and use a transformers class";
pub const HINT_LOGGING: &str = "log offline: set `WANDB_MODE=offline` (or `report_to=\"none\"`, `push_to_hub=False`); the sandbox has no network and uploads would leak the run";
pub const HINT_PICKLE: &str = "save the final model with `save_pretrained(out, safe_serialization=True)` or `safetensors.torch.save_file`: reprobox never unpickles a model";
pub const HINT_SEED: &str = "seed the run (`transformers.set_seed(seed)`, `torch.manual_seed`, `random.seed`) or pass `seed=` / `random_state=` / `generator=`";

/// What the training lint needs besides the build path.
#[derive(Debug, Clone)]
pub struct TrainingContext {
    /// The manifest's base-model and dataset ids, lower-cased.
    pub declared: Vec<String>,
    /// Every path in the submission and the build context (files and their directories), so a
    /// local path that looks like `org/name` is not taken for a Hub id.
    pub local_paths: HashSet<String>,
    /// The severity of a download by a script a RUN executes (`build_network`).
    pub build_network: Severity,
}

fn hub_id_re() -> Regex {
    // Infallible: a constant pattern.
    Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$").expect("valid regex")
}

const FILE_EXTENSIONS: &[&str] = &[
    ".json",
    ".jsonl",
    ".yaml",
    ".yml",
    ".txt",
    ".py",
    ".csv",
    ".tsv",
    ".parquet",
    ".bin",
    ".pt",
    ".pth",
    ".safetensors",
    ".arrow",
    ".gz",
    ".zip",
    ".tar",
    ".model",
];

impl TrainingContext {
    fn is_hub_id(&self, re: &Regex, s: &str) -> bool {
        re.is_match(s)
            && !FILE_EXTENSIONS.iter().any(|e| s.ends_with(e))
            && !self.local_paths.contains(s)
            && !s.starts_with("data/")
            && !s.starts_with("output")
            && !s.starts_with("checkpoint")
    }

    fn is_declared(&self, id: &str) -> bool {
        self.declared.iter().any(|d| d.eq_ignore_ascii_case(id))
    }
}

/// Calls that fetch from the Hugging Face Hub, and the keyword that names the repository.
fn hub_call(c: &Call) -> Option<&'static str> {
    match c.method() {
        "from_pretrained" => Some("pretrained_model_name_or_path"),
        "load_dataset" => Some("path"),
        "snapshot_download" | "hf_hub_download" => Some("repo_id"),
        "pipeline" if c.kwarg("model").is_some() => Some("model"),
        "SentenceTransformer" => Some("model_name_or_path"),
        _ => None,
    }
}

fn call_text(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| match &t.tok {
            Tok::Name(n) => n.clone(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Op(o) => o.clone(),
            Tok::Num => "0".into(),
            Tok::Newline => String::new(),
        })
        .collect()
}

fn is_true(r: &Resolved) -> bool {
    r.value.eq_ignore_ascii_case("true") || r.value == "1"
}

/// Lints the training path.
pub fn lint(bp: &BuildPath, ctx: &TrainingContext) -> Vec<Finding> {
    let mut out = Vec::new();
    let resolver = Resolver::new(bp);
    let re = hub_id_re();
    let wandb_offline = wandb_offline(bp);
    // Seeding anywhere on the training path seeds every global generator the shuffles use.
    let seeded = bp.in_phase(Phase::Train).any(|f| {
        f.python.as_ref().is_some_and(|py| {
            py.calls.iter().any(|c| {
                matches!(
                    c.method(),
                    "manual_seed" | "set_seed" | "seed_everything" | "manual_seed_all"
                ) || c.name.ends_with("random.seed")
            })
        })
    });
    // Whether every model load on the path is a declared (pinned, staged) input: then a
    // trust_remote_code flag or config runs only pinned code.
    let mut all_loads_declared = true;
    for f in bp.in_phase(Phase::Train) {
        let Some(py) = &f.python else { continue };
        for c in py.calls.iter().filter(|c| c.method() == "from_pretrained") {
            let id = c
                .positional(0)
                .or_else(|| c.kwarg("pretrained_model_name_or_path"))
                .and_then(value_of)
                .and_then(|v| resolver.resolve(&v, &f.rel));
            let local = id.as_ref().is_some_and(|r| !ctx.is_hub_id(&re, &r.value));
            let declared = id.as_ref().is_some_and(|r| ctx.is_declared(&r.value));
            all_loads_declared &= local || declared;
        }
    }
    for phase in [Phase::Build, Phase::Train] {
        for f in bp.in_phase(phase) {
            let Some(py) = &f.python else { continue };
            if phase == Phase::Build && f.phases.contains(&Phase::Train) {
                continue;
            }
            lint_python(
                py,
                &f.rel,
                phase,
                ctx,
                &resolver,
                &re,
                wandb_offline,
                seeded,
                &mut out,
            );
        }
    }
    for f in bp.in_phase(Phase::Train).filter(|f| f.role == Role::Config) {
        for c in config_values(f.text.as_deref().unwrap_or(""), &f.rel) {
            let truthy = c.value.eq_ignore_ascii_case("true");
            let finding = match c.key.as_str() {
                "trust_remote_code" if truthy && !all_loads_declared => Some(Finding::error(
                    FindingKind::TrustRemoteCode,
                    "`trust_remote_code: true` in a config the training uses: code from the Hub runs unpinned",
                    HINT_REMOTE_CODE,
                )),
                "report_to" if logs_online(&c.value, wandb_offline) => Some(Finding::warning(
                    FindingKind::OnlineLogging,
                    format!(
                        "`report_to: {}` uploads the run to an online tracker",
                        c.value
                    ),
                    HINT_LOGGING,
                )),
                "push_to_hub" if truthy => Some(Finding::warning(
                    FindingKind::OnlineLogging,
                    "`push_to_hub: true` uploads the model to the Hub",
                    HINT_LOGGING,
                )),
                _ => None,
            };
            out.extend(finding.map(|x| x.at(&f.rel).line(c.line)));
        }
    }
    lint_commands(bp, ctx, wandb_offline, all_loads_declared, &mut out);
    out
}

fn logs_online(value: &str, wandb_offline: bool) -> bool {
    let v = value.to_ascii_lowercase();
    ["comet", "mlflow", "neptune", "clearml", "dvclive"]
        .iter()
        .any(|t| v.contains(t))
        || (!wandb_offline && (v.contains("wandb") || v.contains("\"all\"") || v == "all"))
}

/// `WANDB_MODE=offline|disabled` or `WANDB_DISABLED=true`, in the Dockerfile's ENV, a Python
/// file on the path, or a script's `export`.
fn wandb_offline(bp: &BuildPath) -> bool {
    let offline = |k: &str, v: &str| {
        (k == "WANDB_MODE" && matches!(v, "offline" | "disabled" | "dryrun"))
            || (k == "WANDB_DISABLED" && v.eq_ignore_ascii_case("true"))
    };
    bp.env.iter().any(|(k, v)| offline(k, v))
        || bp.files.values().any(|f| {
            f.python
                .as_ref()
                .is_some_and(|py| py.env.iter().any(|(k, v)| offline(k, v)))
        })
        || bp.commands.iter().any(|c| {
            c.words
                .iter()
                .filter_map(|w| w.split_once('='))
                .any(|(k, v)| offline(k, v))
        })
}

#[allow(clippy::too_many_arguments)]
fn lint_python(
    py: &PyFacts,
    rel: &str,
    phase: Phase,
    ctx: &TrainingContext,
    resolver: &Resolver<'_>,
    re: &Regex,
    wandb_offline: bool,
    seeded: bool,
    out: &mut Vec<Finding>,
) {
    let mut push = |f: Finding, line: u32| out.push(f.at(rel).line(line));
    let resolve =
        |t: Option<&[Token]>| t.and_then(value_of).and_then(|v| resolver.resolve(&v, rel));
    for c in &py.calls {
        let m = c.method();
        // Downloads from the Hub by id.
        if let Some(key) = hub_call(c) {
            let id = resolve(c.positional(0).or_else(|| c.kwarg(key)));
            if let Some(r) = &id
                && ctx.is_hub_id(re, &r.value)
            {
                let what = format!(
                    "`{}` downloads `{}` from the Hugging Face Hub at run time{}",
                    c.name, r.value, r.source
                );
                let f = if phase == Phase::Build {
                    Finding::error(
                        FindingKind::BuildNetwork,
                        format!("a script the build runs: {what}"),
                        HINT_DOWNLOAD,
                    )
                    .severity(ctx.build_network)
                } else if ctx.is_declared(&r.value) {
                    Finding::info(
                        FindingKind::RuntimeDownload,
                        format!("{what}; it is a declared input"),
                        HINT_DOWNLOAD_DECLARED,
                    )
                } else {
                    Finding::error(
                        FindingKind::RuntimeDownload,
                        format!("{what}, and it is not a declared input"),
                        HINT_DOWNLOAD,
                    )
                };
                push(f, c.line);
            }
            if phase == Phase::Train
                && let Some(t) = resolve(c.kwarg("trust_remote_code"))
                && is_true(&t)
                && matches!(t.origin, Origin::Literal | Origin::Code)
            {
                let pinned = id
                    .as_ref()
                    .is_some_and(|r| !ctx.is_hub_id(re, &r.value) || ctx.is_declared(&r.value));
                if !pinned {
                    let repo = id
                        .as_ref()
                        .map(|r| format!(" for `{}`", r.value))
                        .unwrap_or_default();
                    push(
                        Finding::error(
                            FindingKind::TrustRemoteCode,
                            format!(
                                "`{}` with `trust_remote_code=True`{repo}{}: code from the Hub runs unpinned",
                                c.name, t.source
                            ),
                            HINT_REMOTE_CODE,
                        ),
                        c.line,
                    );
                }
            }
        }
        if phase == Phase::Build {
            continue;
        }
        // torch.hub and plain URL fetches.
        let url_fetch = matches!(
            c.name.as_str(),
            "requests.get"
                | "requests.post"
                | "urllib.request.urlretrieve"
                | "urlretrieve"
                | "urlopen"
                | "urllib.request.urlopen"
                | "wget.download"
                | "gdown.download"
        );
        if c.name.starts_with("torch.hub.") || url_fetch {
            push(
                Finding::error(
                    FindingKind::RuntimeDownload,
                    format!("`{}` fetches from the network at run time", c.name),
                    HINT_URL,
                ),
                c.line,
            );
        }
        // Online trackers and uploads.
        let online = match (c.name.as_str(), m) {
            ("wandb.init", _) => {
                let mode = resolve(c.kwarg("mode")).map(|r| r.value);
                !wandb_offline
                    && !matches!(mode.as_deref(), Some("offline" | "disabled" | "dryrun"))
            }
            ("wandb.login", _) => !wandb_offline,
            (n, _)
                if n.starts_with("comet_ml.") && matches!(m, "Experiment" | "start" | "init") =>
            {
                true
            }
            (n, _) if n.starts_with("mlflow.") && (m == "start_run" || m.starts_with("log_")) => {
                true
            }
            (n, _) if n.starts_with("neptune.") && m.starts_with("init") => true,
            (_, "push_to_hub" | "upload_file" | "upload_folder") => true,
            _ => false,
        };
        if online {
            push(
                Finding::warning(
                    FindingKind::OnlineLogging,
                    format!("`{}` needs the network and uploads the run", c.name),
                    HINT_LOGGING,
                ),
                c.line,
            );
        }
        if let Some(r) = resolve(c.kwarg("report_to"))
            && logs_online(&r.value, wandb_offline)
            && matches!(r.origin, Origin::Literal | Origin::Code)
        {
            push(
                Finding::warning(
                    FindingKind::OnlineLogging,
                    format!(
                        "`report_to={}`{} uploads the run to an online tracker",
                        r.value, r.source
                    ),
                    HINT_LOGGING,
                ),
                c.line,
            );
        } else if let Some(list) = c.kwarg("report_to")
            && list
                .iter()
                .any(|t| matches!(&t.tok, Tok::Str(s) if logs_online(s, wandb_offline)))
        {
            push(
                Finding::warning(
                    FindingKind::OnlineLogging,
                    format!(
                        "`report_to={}` uploads the run to an online tracker",
                        call_text(list)
                    ),
                    HINT_LOGGING,
                ),
                c.line,
            );
        }
        if let Some(r) = resolve(c.kwarg("push_to_hub"))
            && is_true(&r)
            && matches!(r.origin, Origin::Literal | Origin::Code)
        {
            push(
                Finding::warning(
                    FindingKind::OnlineLogging,
                    format!(
                        "`push_to_hub=True`{} uploads the model to the Hub",
                        r.source
                    ),
                    HINT_LOGGING,
                ),
                c.line,
            );
        }
        // The model saved with pickle.
        let first = c
            .positional(0)
            .map(call_text)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let modelish = ["model", "state_dict", "adapter", "lora", "peft", "weights"]
            .iter()
            .any(|w| first.contains(w))
            && !first.contains("optim")
            && !first.contains("scheduler");
        let pickled = match c.name.as_str() {
            "torch.save" | "pickle.dump" | "joblib.dump" | "dill.dump" => modelish,
            _ => {
                m == "save_pretrained"
                    && resolve(c.kwarg("safe_serialization")).is_some_and(|r| r.value == "false")
            }
        };
        if pickled {
            push(
                Finding::error(
                    FindingKind::PickleOutput,
                    format!(
                        "`{}` writes the model as a pickle, which reprobox never loads",
                        c.name
                    ),
                    HINT_PICKLE,
                ),
                c.line,
            );
        }
        // Writing to a host volume.
        let target = match c.name.as_str() {
            "torch.save" => resolve(c.positional(1)),
            _ if matches!(m, "save_pretrained" | "save_model" | "save_state") => {
                resolve(c.positional(0))
            }
            _ => None,
        }
        .or_else(|| resolve(c.kwarg("output_dir")))
        .or_else(|| resolve(c.kwarg("save_directory")));
        if let Some(t) = target
            && host_path(&t.value)
        {
            push(
                Finding::warning(
                    FindingKind::HostMount,
                    format!(
                        "`{}` writes to `{}`{}, a host volume the sandbox does not mount; only /out is writable",
                        c.name, t.value, t.source
                    ),
                    HINT_HOST_MOUNT,
                ),
                c.line,
            );
        }
        // Shuffles and splits without a seed.
        let no_seed = |keys: &[&str]| keys.iter().all(|k| c.kwarg(k).is_none());
        let unseeded = !seeded
            && match c.name.as_str() {
                "random.shuffle"
                | "np.random.shuffle"
                | "numpy.random.shuffle"
                | "np.random.permutation"
                | "numpy.random.permutation" => true,
                "torch.randperm" => no_seed(&["generator"]),
                _ => match m {
                    "shuffle" => {
                        c.args.is_empty()
                            || no_seed(&["seed", "generator"]) && c.positional(0).is_none()
                    }
                    "train_test_split" => no_seed(&["seed", "random_state", "generator"]),
                    "random_split" => no_seed(&["generator"]),
                    "DataLoader" => resolve(c.kwarg("shuffle")).is_some_and(|r| is_true(&r)),
                    _ => false,
                },
            };
        if unseeded {
            push(
                Finding::warning(
                    FindingKind::UnseededRandomness,
                    format!(
                        "`{}` draws from an unseeded random generator, so the order differs on every run",
                        c.name
                    ),
                    HINT_SEED,
                ),
                c.line,
            );
        }
    }
}

/// Absolute paths that only exist as host volumes on rented GPU machines and notebooks.
fn host_path(p: &str) -> bool {
    [
        "/workspace",
        "/mnt/",
        "/content/",
        "/home/",
        "/root/",
        "/data/",
    ]
    .iter()
    .any(|h| p == h.trim_end_matches('/') || p.starts_with(h) || p.starts_with(&format!("{h}/")))
}

/// The commands the entry and the training scripts run.
fn lint_commands(
    bp: &BuildPath,
    ctx: &TrainingContext,
    wandb_offline: bool,
    all_loads_declared: bool,
    out: &mut Vec<Finding>,
) {
    for c in bp.commands.iter().filter(|c| c.phase == Phase::Train) {
        let w: Vec<&str> = c.words.iter().map(String::as_str).collect();
        let Some(first) = w
            .iter()
            .position(|x| !x.contains('=') || x.starts_with('-'))
        else {
            continue;
        };
        let prog = basename(w[first]);
        let args = &w[first + 1..];
        let mut push = |f: Finding| out.push(f.at(&c.by).line(c.line));
        match prog {
            "wget" | "curl" if args.iter().any(|a| a.contains("://")) => push(Finding::error(
                FindingKind::RuntimeDownload,
                format!(
                    "`{prog}` fetches {} at run time",
                    args.iter().find(|a| a.contains("://")).unwrap_or(&"")
                ),
                HINT_URL,
            )),
            "gdown" => push(Finding::error(
                FindingKind::RuntimeDownload,
                "`gdown` fetches from Google Drive at run time",
                HINT_URL,
            )),
            "git" if args.contains(&"clone") => push(Finding::error(
                FindingKind::RuntimeDownload,
                "`git clone` at run time fetches a repository the sandbox cannot reach",
                HINT_URL,
            )),
            "huggingface-cli" | "hf" if args.first() == Some(&"download") => {
                let id = args.get(1).copied().unwrap_or("?");
                push(if ctx.is_declared(id) {
                    Finding::info(
                        FindingKind::RuntimeDownload,
                        format!("`{prog} download {id}` at run time; it is a declared input"),
                        HINT_DOWNLOAD_DECLARED,
                    )
                } else {
                    Finding::error(
                        FindingKind::RuntimeDownload,
                        format!(
                            "`{prog} download {id}` fetches from the Hub at run time, and it is not a declared input"
                        ),
                        HINT_DOWNLOAD,
                    )
                });
            }
            "pip" | "pip3" if args.first() == Some(&"install") && !args.contains(&"--no-index") => {
                push(Finding::error(
                    FindingKind::RuntimeDownload,
                    "`pip install` at run time fetches packages the sandbox cannot reach",
                    "install every package in the Dockerfile, at build time",
                ))
            }
            "wandb" if args.first() == Some(&"login") && !wandb_offline => push(Finding::warning(
                FindingKind::OnlineLogging,
                "`wandb login` needs the network (and a key in the image)",
                HINT_LOGGING,
            )),
            "docker" if args.contains(&"run") => {
                if w.iter().any(|a| a.contains("docker.sock")) {
                    push(Finding::error(
                        FindingKind::HostMount,
                        "`docker run` with the Docker socket",
                        HINT_HOST_MOUNT,
                    ));
                } else if args.iter().any(|a| {
                    matches!(*a, "-v" | "--volume" | "--mount")
                        || a.starts_with("--volume=")
                        || a.starts_with("--mount=")
                }) {
                    push(Finding::warning(
                        FindingKind::HostMount,
                        "`docker run -v` expects host volumes",
                        HINT_HOST_MOUNT,
                    ));
                }
            }
            _ => {}
        }
        // Flags the command passes.
        for (k, a) in args.iter().enumerate() {
            let (flag, value) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (
                    *a,
                    args.get(k + 1).copied().filter(|v| !v.starts_with("--")),
                ),
            };
            let truthy = value.is_none_or(|v| v.eq_ignore_ascii_case("true") || v == "1");
            match flag.trim_start_matches('-').replace('-', "_").as_str() {
                "trust_remote_code" if flag.starts_with("--") && truthy && !all_loads_declared => {
                    out.push(Finding::error(FindingKind::TrustRemoteCode, format!("`{flag}` on the training command line: code from the Hub runs unpinned"), HINT_REMOTE_CODE).at(&c.by).line(c.line));
                }
                "report_to"
                    if flag.starts_with("--")
                        && value.is_some_and(|v| logs_online(v, wandb_offline)) =>
                {
                    out.push(
                        Finding::warning(
                            FindingKind::OnlineLogging,
                            format!(
                                "`{flag} {}` uploads the run to an online tracker",
                                value.unwrap_or("")
                            ),
                            HINT_LOGGING,
                        )
                        .at(&c.by)
                        .line(c.line),
                    );
                }
                "push_to_hub" if flag.starts_with("--") && truthy => {
                    out.push(
                        Finding::warning(
                            FindingKind::OnlineLogging,
                            format!("`{flag}` uploads the model to the Hub"),
                            HINT_LOGGING,
                        )
                        .at(&c.by)
                        .line(c.line),
                    );
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::check::buildpath::{BuildPathInput, build_path};
    use crate::check::compose::{is_compose_file, lint_compose};
    use crate::check::entry::no_training_entry;
    use crate::check::ignore::DockerIgnore;
    use crate::dockerfile::parse;

    /// The findings (kind, severity, path, line) of a repository given as files, with
    /// `Dockerfile` among them.
    fn lint_repo(files: &[(&str, &str)]) -> Vec<(FindingKind, Severity, String, u32)> {
        let mut got: Vec<_> = findings_of(files)
            .into_iter()
            .map(|f| {
                (
                    f.kind,
                    f.severity,
                    f.path.unwrap_or_default(),
                    f.line.unwrap_or(0),
                )
            })
            .collect();
        got.sort();
        got
    }

    fn findings_of(files: &[(&str, &str)]) -> Vec<Finding> {
        let map: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let names: Vec<String> = map.keys().cloned().collect();
        let df = parse(&map["Dockerfile"]);
        let ig = DockerIgnore::default();
        let read = |rel: &str| map.get(rel).cloned();
        let bp = build_path(&BuildPathInput {
            dockerfile: &df,
            dockerfile_label: "Dockerfile",
            context: ".",
            command: None,
            files: &names,
            ignore: &ig,
            read: &read,
        });
        let ctx = TrainingContext {
            declared: vec!["org/declared".into()],
            local_paths: names.iter().cloned().collect(),
            build_network: Severity::Error,
        };
        let mut out = lint(&bp, &ctx);
        out.extend(no_training_entry(&bp));
        out
    }

    const DF: &str = "FROM x\nWORKDIR /app\nCOPY . .\nCMD [\"sh\", \"run.sh\"]\n";

    #[test]
    fn ids_resolve_through_command_line_config_and_defaults() {
        let run = "python train.py --model org/from-cli --config cfg.yaml\n";
        let train = "import argparse\np = argparse.ArgumentParser()\np.add_argument('--model', default='org/from-default')\np.add_argument('--data', default='org/declared')\np.add_argument('--tok', default='org/tok-default')\na = p.parse_args()\nA.from_pretrained(a.model)\nload_dataset(a.data)\nT.from_pretrained(a.tok)\nT.from_pretrained(a.tokenizer_name)\nA.from_pretrained('/inputs/base_model', trust_remote_code=True)\nA.from_pretrained('org/x', trust_remote_code=True)\n";
        let cfg = "tokenizer_name: org/from-config\n";
        let files = [
            ("Dockerfile", DF),
            ("run.sh", run),
            ("train.py", train),
            ("cfg.yaml", cfg),
        ];
        let got = lint_repo(&files);
        let message = |line: u32| {
            findings_of(&files)
                .into_iter()
                .find(|f| f.line == Some(line))
                .map(|f| f.message)
                .unwrap_or_default()
        };
        assert!(
            message(7).contains("`org/from-cli`") && message(7).contains("run.sh:1"),
            "{}",
            message(7)
        );
        assert!(
            message(9).contains("the default of `--tok` at train.py:5"),
            "{}",
            message(9)
        );
        assert!(
            message(10).contains("`tokenizer_name` in cfg.yaml:1"),
            "{}",
            message(10)
        );
        let k = |kind, sev, line| (kind, sev, "train.py".to_owned(), line);
        // Line 7: the command line's `--model` beats the argparse default; 8: a declared id is
        // a note; 9: the default; 10: the config file; 11: a local path with remote code is
        // pinned; 12: an undeclared id with remote code.
        let mut want = vec![
            k(FindingKind::RuntimeDownload, Severity::Info, 8),
            k(FindingKind::RuntimeDownload, Severity::Error, 7),
            k(FindingKind::RuntimeDownload, Severity::Error, 9),
            k(FindingKind::RuntimeDownload, Severity::Error, 10),
            k(FindingKind::RuntimeDownload, Severity::Error, 12),
            k(FindingKind::TrustRemoteCode, Severity::Error, 12),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn offline_tracking_seeding_and_safe_saving_are_quiet() {
        let quiet = "import os\nos.environ['WANDB_MODE'] = 'offline'\nset_seed(1)\nwandb.init()\nds.shuffle()\nrandom.shuffle(x)\nmodel.save_pretrained('/out/model', safe_serialization=True)\ntorch.save(optimizer.state_dict(), '/out/opt.pt')\n";
        assert!(
            lint_repo(&[
                ("Dockerfile", DF),
                ("run.sh", "python train.py\n"),
                ("train.py", quiet)
            ])
            .is_empty()
        );
        let loud = "wandb.init()\nds.shuffle()\ntorch.save(model, '/workspace/m.pt')\nTrainingArguments(report_to=['wandb'], push_to_hub=True)\n";
        let got: Vec<(FindingKind, u32)> = lint_repo(&[
            ("Dockerfile", DF),
            ("run.sh", "python train.py\n"),
            ("train.py", loud),
        ])
        .into_iter()
        .map(|g| (g.0, g.3))
        .collect();
        let mut want = vec![
            (FindingKind::OnlineLogging, 1),
            (FindingKind::OnlineLogging, 4),
            (FindingKind::OnlineLogging, 4),
            (FindingKind::PickleOutput, 3),
            (FindingKind::HostMount, 3),
            (FindingKind::UnseededRandomness, 2),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn idle_entries_and_compose_mounts() {
        let idle = |cmd: &str| {
            lint_repo(&[("Dockerfile", &format!("FROM x\nCMD {cmd}\n"))])
                .iter()
                .any(|g| g.0 == FindingKind::NoTrainingEntry)
        };
        assert!(idle("[\"sleep\", \"infinity\"]"));
        assert!(idle("[\"bash\"]"));
        assert!(idle("tail -f /dev/null"));
        assert!(!idle("[\"python3\", \"train.py\"]"));
        assert!(!idle("[\"python3\", \"-m\", \"pkg.train\"]"));
        assert!(!idle("accelerate launch train.py"));
        assert!(
            lint_repo(&[("Dockerfile", "FROM x\n")])
                .iter()
                .any(|g| g.0 == FindingKind::NoTrainingEntry)
        );
        let compose = lint_compose(
            "services:\n  t:\n    build: .\n    volumes:\n      - ./data:/data\n      - /var/run/docker.sock:/var/run/docker.sock\n    image: a:b\n",
            "docker-compose.yml",
        );
        let got: Vec<(Severity, u32)> = compose
            .iter()
            .map(|f| (f.severity, f.line.unwrap_or(0)))
            .collect();
        assert_eq!(got, [(Severity::Warning, 5), (Severity::Error, 6)]);
        assert!(is_compose_file("deploy/docker-compose.gpu.yaml"));
        assert!(!is_compose_file("configs/train.yaml"));
    }
}
