//! `reprobox policy list` and `reprobox policy show ID`: the competition policies this binary
//! knows (built in, or from `--policies DIR` / `REPROBOX_POLICIES`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use reprobox::exit_codes;
use reprobox::policy::{Normalization, Policy, PolicyError, PolicySet, PolicySource};
use reprobox::units::{format_duration, format_size};

use super::output::{self, Format};

/// Arguments of `reprobox policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
    /// Read policies from this directory (its `*.toml` and `open-data.toml`) instead of the ones
    /// built into reprobox.
    #[arg(long, global = true, value_name = "DIR", env = "REPROBOX_POLICIES")]
    pub policies: Option<PathBuf>,
    /// `text` prints a table or a readable summary; `json` prints the validated policies.
    #[arg(long, global = true, value_enum, default_value_t)]
    pub format: Format,
}

/// `reprobox policy` verbs.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the policies: id, name, tracks and training limit.
    List,
    /// Print everything one policy says.
    Show {
        /// The policy id (see `reprobox policy list`).
        id: String,
    },
    /// Print the open-data registry: open licenses, known datasets and the deny list.
    OpenData,
}

/// One row of `policy list --format json`.
#[derive(Serialize)]
struct ListRow<'a> {
    id: &'a str,
    name: &'a str,
    tracks: Vec<&'a str>,
    train_secs: Option<u64>,
    eval_secs: Option<u64>,
    source_digest: &'a str,
}

/// Runs `reprobox policy …`. Exit 0, or 2 when the policies cannot be loaded or the id is unknown.
pub fn run(args: PolicyArgs) -> i32 {
    let set = match PolicySet::load(args.policies.as_deref()) {
        Ok(set) => set,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::UNREADABLE_INPUT;
        }
    };
    match args.command {
        PolicyCommand::List => {
            list(&set, args.format);
            exit_codes::OK
        }
        PolicyCommand::Show { id } => match set.require(&id) {
            Ok(policy) => {
                match args.format {
                    Format::Json => output::print_json(policy),
                    Format::Text => print!("{}", render(policy)),
                }
                exit_codes::OK
            }
            Err(e @ PolicyError::UnknownPolicy { .. }) => {
                output::print_error(&e);
                exit_codes::UNREADABLE_INPUT
            }
            Err(e) => {
                output::print_error(&e);
                exit_codes::UNREADABLE_INPUT
            }
        },
        PolicyCommand::OpenData => {
            let reg = set.open_data();
            match args.format {
                Format::Json => output::print_json(reg),
                Format::Text => {
                    println!("open licenses: {}", reg.open_licenses().join(", "));
                    println!("\nknown open datasets:");
                    for d in reg.datasets() {
                        println!("  {:<40} {:<14} {}", d.id, d.license, d.notes);
                    }
                    println!("\ndenied:");
                    for d in reg.denied() {
                        println!("  {:<40} {}", d.pattern, d.reason);
                    }
                }
            }
            exit_codes::OK
        }
    }
}

fn list(set: &PolicySet, format: Format) {
    match format {
        Format::Json => {
            let rows: Vec<ListRow<'_>> = set
                .policies()
                .map(|p| ListRow {
                    id: &p.id,
                    name: &p.name,
                    tracks: p.track_ids(),
                    train_secs: p.limits.train.map(|d| d.as_secs()),
                    eval_secs: p.limits.eval.map(|d| d.as_secs()),
                    source_digest: &p.source_digest,
                })
                .collect();
            output::print_json(&rows);
        }
        Format::Text => {
            let rows: Vec<[String; 4]> = set
                .policies()
                .map(|p| {
                    [
                        p.id.clone(),
                        p.name.clone(),
                        p.track_ids().join(","),
                        p.limits
                            .train
                            .map_or_else(|| "-".to_owned(), format_duration),
                    ]
                })
                .collect();
            let header = ["ID", "NAME", "TRACKS", "TRAIN"];
            let mut widths = header.map(str::len);
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: [&str; 4]| {
                format!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                    cells[0],
                    cells[1],
                    cells[2],
                    cells[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2]
                )
            };
            println!("{}", line(header));
            for r in &rows {
                println!("{}", line([&r[0], &r[1], &r[2], &r[3]]));
            }
            if let PolicySource::Dir(dir) = set.source() {
                println!("(from {})", dir.display());
            }
        }
    }
}

/// The wire (snake_case) name of a unit enum value, as policy files write it.
fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

/// The readable form of one policy.
fn render(p: &Policy) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{} ({})", p.name, p.id);
    let _ = writeln!(s, "{}", p.summary);
    for u in &p.rules_urls {
        let _ = writeln!(s, "  rules: {u}");
    }
    let _ = writeln!(s, "  digest: {}", p.source_digest);
    let _ = writeln!(s, "\ntracks:");
    for t in &p.tracks {
        let _ = writeln!(s, "  {:<12} {} [{}]", t.id, t.name, t.gpus.join(", "));
    }
    let l = &p.limits;
    let _ = writeln!(s, "\nlimits:");
    let build = match l.build {
        Some(d) => format_duration(d),
        None => "- (counts toward train)".to_owned(),
    };
    let _ = writeln!(
        s,
        "  build {build}, train {}, eval {}, train+eval {}",
        opt(l.train, format_duration),
        opt(l.eval, format_duration),
        opt(l.train_plus_eval, format_duration)
    );
    let _ = writeln!(
        s,
        "  memory {}, disk {}, shm {}",
        opt(l.memory_bytes, format_size),
        opt(l.disk_bytes, format_size),
        opt(l.shm_bytes, format_size)
    );
    let _ = writeln!(
        s,
        "  sequence length {}",
        opt(p.sequence_length, |n| n.to_string())
    );
    let b = &p.base_model;
    let _ = writeln!(
        s,
        "\nbase model: required {}, instruction-tuned allowed {}, revision required {}, uploaded before {}",
        b.required,
        b.allow_instruction_tuned,
        b.require_revision,
        b.uploaded_before.as_deref().unwrap_or("-")
    );
    if !b.licenses.is_empty() {
        let _ = writeln!(s, "  licenses: {}", b.licenses.join(", "));
    }
    for f in &b.families {
        let _ = writeln!(
            s,
            "  family {:<12} {} ({})",
            f.name,
            f.pattern,
            f.license.as_deref().unwrap_or("any listed license")
        );
    }
    if !b.instruction_tuned.is_empty() {
        let _ = writeln!(
            s,
            "  instruction-tuned ids: {}",
            b.instruction_tuned.join(", ")
        );
    }
    let m = &p.model;
    let _ = writeln!(
        s,
        "\nmodel: parameters {}..{}, max bytes {}, tokenizer {}, dtype {}",
        opt(m.min_parameters, |n| n.to_string()),
        opt(m.max_parameters, |n| n.to_string()),
        opt(m.max_bytes, format_size),
        m.tokenizer.as_deref().unwrap_or("(model's own)"),
        m.dtype.as_deref().unwrap_or("-")
    );
    if !m.architectures.is_empty() {
        let _ = writeln!(s, "  architectures: {}", m.architectures.join(", "));
    }
    if let Some(w) = &m.weight_norm {
        let _ = writeln!(
            s,
            "  weight norm: hard {} soft {} (≤ {} of layers) over {}",
            w.hard_max,
            w.soft_max,
            w.soft_fraction_max,
            w.tensors.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\ndata: open data only {}, LLM-generated allowed {}",
        p.data.open_data_only, p.data.allow_llm_generated
    );
    let n = &p.network;
    let _ = writeln!(
        s,
        "network: build {}, train {}, eval {}; sandbox `{}`; cpu allowed {}",
        wire(&n.build),
        wire(&n.train),
        wire(&n.eval),
        p.sandbox,
        p.cpu_allowed
    );
    let _ = writeln!(
        s,
        "dry run: train {}, eval examples {}",
        opt(p.dry_run.train, format_duration),
        opt(p.dry_run.eval_examples, |n| n.to_string())
    );
    let e = &p.evaluation;
    let _ = writeln!(
        s,
        "\nevaluation: aggregate {}, renormalize failed {}, combined tolerance {}",
        wire(&e.aggregate),
        e.renormalize_failed,
        tol(e.tolerance)
    );
    for t in &e.tasks {
        let norm = match t.normalization {
            Normalization::None => "none".to_owned(),
            Normalization::InverseExponential { ceiling } => {
                format!("inverse_exponential(ceiling {ceiling})")
            }
        };
        let _ = writeln!(
            s,
            "  {:<20} {:<16} weight {:<5} norm {:<34} samples {:<5} tol {} {} data {}",
            t.name,
            wire(&t.method),
            t.weight,
            norm,
            opt(t.samples, |n| n.to_string()),
            tol(t.tolerance),
            if t.higher_is_better {
                "higher-better"
            } else {
                "lower-better"
            },
            t.data.as_deref().unwrap_or("-"),
        );
    }
    if let Some(h) = &e.harness {
        let _ = writeln!(
            s,
            "  harness: {} {} -> {}",
            h.image,
            h.command.join(" "),
            h.scores_file
        );
    }
    s
}

fn tol(t: reprobox::policy::Tolerance) -> String {
    match (t.absolute, t.relative) {
        (None, None) => "exact".to_owned(),
        (a, r) => {
            let mut parts = Vec::new();
            if let Some(a) = a {
                parts.push(format!("±{a}"));
            }
            if let Some(r) = r {
                parts.push(format!("±{}%", r * 100.0));
            }
            parts.join(" + ")
        }
    }
}
