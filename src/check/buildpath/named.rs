//! The files one simple command names, and the `--key value` pairs it passes: `pip install -r`
//! / `-c` / `.`, `conda env create -f`, the script a shell, Python or a launcher (`torchrun`,
//! `accelerate`, `deepspeed`) runs, `python -m pkg.mod`, and config files on the command line.

use crate::check::deps::{DepFormat, format_by_name};
use crate::check::dockerfile::pip_install_args;
use crate::check::pip::pip_files;
use crate::dockerfile::shell::{Word, program_and_args};

use super::{ReasonKind, Role};

/// A file a command names: the word as written, why, and the role the command gives it.
pub(super) type Named = (String, ReasonKind, Option<Role>);

/// The files `cmd` names and the `--key value` pairs it passes (keys with `-` as `_`).
pub(super) fn named_files(cmd: &[Word]) -> (Vec<Named>, Vec<(String, String)>) {
    let mut named: Vec<Named> = Vec::new();
    let mut cli: Vec<(String, String)> = Vec::new();
    let Some((prog, args)) = program_and_args(cmd) else {
        return (named, cli);
    };
    if let Some(pip) = pip_install_args(cmd) {
        let f = pip_files(pip);
        for (r, _) in f.requirements {
            named.push((
                r,
                ReasonKind::Requirements,
                Some(Role::Dependency(DepFormat::Requirements)),
            ));
        }
        for (c, _) in f.constraints {
            named.push((
                c,
                ReasonKind::Constraints,
                Some(Role::Dependency(DepFormat::Requirements)),
            ));
        }
        for (p, _) in f.projects {
            let p = p.split('[').next().unwrap_or(&p).to_owned();
            named.push((
                format!("{p}/pyproject.toml"),
                ReasonKind::Project,
                Some(Role::Dependency(DepFormat::Pyproject)),
            ));
            named.push((
                format!("{p}/setup.py"),
                ReasonKind::Project,
                Some(Role::Dependency(DepFormat::SetupPy)),
            ));
        }
    } else if matches!(prog, "conda" | "mamba" | "micromamba") {
        let mut it = args.iter();
        while let Some(w) = it.next() {
            if (w.text == "-f" || w.text == "--file")
                && let Some(v) = it.next()
            {
                let role = match format_by_name(&v.text) {
                    Some(DepFormat::Requirements) => DepFormat::Requirements,
                    _ if v.text.ends_with(".txt") => DepFormat::Requirements,
                    _ => DepFormat::CondaEnv,
                };
                named.push((
                    v.text.clone(),
                    ReasonKind::CondaEnv,
                    Some(Role::Dependency(role)),
                ));
            }
        }
    } else {
        let all: Vec<&Word> = std::iter::once(&cmd[cmd.len() - args.len() - 1])
            .chain(args)
            .collect();
        let mut script: Option<(String, Role)> = None;
        let is_python = prog.starts_with("python");
        let launcher = matches!(prog, "torchrun" | "deepspeed" | "accelerate" | "composer");
        if matches!(prog, "bash" | "sh" | "source" | "." | "zsh") {
            script = args
                .iter()
                .find(|w| !w.text.starts_with('-'))
                .map(|w| (w.text.clone(), Role::Shell));
        } else if is_python || launcher {
            let mut k = 0;
            while k < args.len() {
                let t = &args[k].text;
                if t == "-m" {
                    if let Some(m) = args.get(k + 1) {
                        let m = m.text.replace('.', "/");
                        script = Some((format!("{m}.py"), Role::Python));
                    }
                    break;
                }
                if t == "-c" {
                    break;
                }
                if t.ends_with(".py") {
                    script = Some((t.clone(), Role::Python));
                    break;
                }
                if t.ends_with(".sh") {
                    script = Some((t.clone(), Role::Shell));
                    break;
                }
                k += 1;
            }
        } else if all[0].text.ends_with(".sh") || all[0].text.starts_with("./") {
            let role = if all[0].text.ends_with(".py") {
                Role::Python
            } else {
                Role::Shell
            };
            script = Some((all[0].text.clone(), role));
        } else if all[0].text.ends_with(".py") {
            script = Some((all[0].text.clone(), Role::Python));
        }
        if let Some((s, role)) = script {
            named.push((s, ReasonKind::Run, Some(role)));
        }
        // Config files and `--key value` pairs on the command line.
        let mut k = 0;
        while k < args.len() {
            let t = args[k].text.as_str();
            let is_cfg_path = |s: &str| [".yaml", ".yml", ".json"].iter().any(|e| s.ends_with(e));
            if let Some(key) = t.strip_prefix("--") {
                let (key, value) = match key.split_once('=') {
                    Some((k2, v)) => (k2.to_owned(), Some(v.to_owned())),
                    None => (
                        key.to_owned(),
                        args.get(k + 1)
                            .filter(|v| !v.text.starts_with("--"))
                            .map(|v| v.text.clone()),
                    ),
                };
                if let Some(v) = &value {
                    if is_cfg_path(v) {
                        named.push((v.clone(), ReasonKind::Config, Some(Role::Config)));
                    }
                    cli.push((key.replace('-', "_"), v.clone()));
                }
            } else if is_cfg_path(t) && k > 0 {
                named.push((t.to_owned(), ReasonKind::Config, Some(Role::Config)));
            }
            k += 1;
        }
    }
    (named, cli)
}
