//! `no_training_entry`: the command the image runs (ENTRYPOINT plus `train.command` or CMD) is
//! missing, or every command it runs is idle (a shell or Python without a script, `sleep`, …).

use super::buildpath::{BuildPath, entry_commands};
use crate::dockerfile::shell::program_and_args;
use crate::finding::{Finding, FindingKind};

pub const HINT_ENTRY: &str = "end the Dockerfile with `CMD [\"python3\", \"train.py\"]` (or set `train.command` in reprobox.toml) to run the training";

/// Programs that never train: a shell without a script, sleeping, printing, notebooks.
const IDLE: &[&str] = &[
    "sleep",
    "tail",
    "echo",
    "true",
    "cat",
    "jupyter",
    "jupyter-lab",
    "tensorboard",
    "printf",
    "ls",
    "nvidia-smi",
    "bash",
    "sh",
    "zsh",
    "python",
    "python3",
];

/// `no_training_entry`: the entry is empty, or every command it runs is idle.
pub fn no_training_entry(bp: &BuildPath) -> Option<Finding> {
    let (by, line) = &bp.entry_at;
    if bp.entry.is_empty() {
        return Some(Finding::error(
            FindingKind::NoTrainingEntry,
            "the image has no CMD or ENTRYPOINT and `train.command` is not set: the container runs nothing",
            HINT_ENTRY,
        ));
    }
    let commands = entry_commands(&bp.entry);
    let trains = commands.iter().any(|c| {
        let Some((prog, args)) = program_and_args(c) else {
            return false;
        };
        let with_operand = args.iter().any(|a| !a.text.starts_with('-'));
        !IDLE.contains(&prog)
            || (matches!(prog, "bash" | "sh" | "zsh" | "python" | "python3") && with_operand)
            || (prog.starts_with("python") && args.iter().any(|a| a.text == "-m" || a.text == "-c"))
    });
    (!trains).then(|| {
        Finding::error(
            FindingKind::NoTrainingEntry,
            format!(
                "the training command `{}` runs nothing that trains",
                bp.entry.join(" ")
            ),
            HINT_ENTRY,
        )
        .at(by.as_str())
        .line(*line)
    })
}
