//! `reprobox audit verify RUN_DIR [--key PUB]`: re-checks a run directory (journal chain, every
//! recorded digest, the provenance statements and, with `--key`, their DSSE signatures), and
//! `reprobox audit keygen OUT`: writes an Ed25519 key pair for `--sign-key` / `--key`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use reprobox::audit::{AuditOptions, verify_run};
use reprobox::exit_codes;
use reprobox::provenance::{self, generate_key, key_id, read_verifying_key, write_key_pair};

use super::output::{self, Format};

/// Arguments of `reprobox audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
    /// `text` prints one line per difference; `json` prints the whole audit result.
    #[arg(long, global = true, value_enum, default_value_t)]
    pub format: Format,
}

/// `reprobox audit` verbs.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every digest and the journal chain of a run directory; exit 0 intact, 4 tampered,
    /// 2 when RUN_DIR is not a run directory. Only reads; never repairs.
    Verify {
        /// The run directory (`audits/<run-id>`).
        run_dir: PathBuf,
        /// An Ed25519 public key file (64 hex digits): every statement must be signed by it.
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
    },
    /// Write a new Ed25519 key pair: OUT (the private seed, mode 0600) and OUT.pub.
    Keygen {
        /// Where to write the private key; the public key goes to OUT.pub.
        out: PathBuf,
    },
}

/// Runs `reprobox audit …`.
pub fn run(args: AuditArgs) -> i32 {
    match args.command {
        AuditCommand::Verify { run_dir, key } => verify(run_dir, key, args.format),
        AuditCommand::Keygen { out } => keygen(out, args.format),
    }
}

fn verify(run_dir: PathBuf, key: Option<PathBuf>, format: Format) -> i32 {
    let key = match key.map(|k| read_verifying_key(&k)).transpose() {
        Ok(k) => k,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::UNREADABLE_INPUT;
        }
    };
    let report = match verify_run(&run_dir, &AuditOptions { key }) {
        Ok(r) => r,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::UNREADABLE_INPUT;
        }
    };
    match format {
        Format::Json => output::print_json(&report),
        Format::Text => {
            if report.intact {
                let journal = report
                    .journal
                    .as_ref()
                    .map(|j| format!("journal {} lines, head {}", j.lines, j.head))
                    .unwrap_or_default();
                let sigs = if report.signatures_checked {
                    "signatures verified"
                } else {
                    "signatures not checked (no --key)"
                };
                outln!(
                    "intact: {} ({} checks passed; {journal}; {} statements, {sigs})",
                    run_dir.display(),
                    report.checks.len(),
                    report.statements
                );
            } else {
                outln!(
                    "TAMPERED: {} ({} differences)",
                    run_dir.display(),
                    report.problems.len()
                );
                for p in &report.problems {
                    let at = match p.line {
                        Some(l) => format!("{}:{l}", p.file),
                        None => p.file.clone(),
                    };
                    outln!("  {at}: {}", p.message);
                }
            }
        }
    }
    if report.intact {
        exit_codes::OK
    } else {
        exit_codes::TAMPERED
    }
}

fn keygen(out: PathBuf, format: Format) -> i32 {
    let mut public = out.clone().into_os_string();
    public.push(".pub");
    let public = PathBuf::from(public);
    let result = generate_key().and_then(|k| write_key_pair(&k, &out, &public).map(|()| k));
    match result {
        Ok(k) => {
            let id = key_id(&k.verifying_key());
            match format {
                Format::Json => output::print_json(&serde_json::json!({
                    "private_key": out, "public_key": public, "keyid": id,
                })),
                Format::Text => outln!(
                    "wrote {} and {} (keyid {id})",
                    out.display(),
                    public.display()
                ),
            }
            exit_codes::OK
        }
        Err(e @ provenance::ProvenanceError::Io { .. }) => {
            output::print_error(&e);
            exit_codes::UNREADABLE_INPUT
        }
        Err(e) => {
            output::print_error(&e);
            exit_codes::INFRA_ERROR
        }
    }
}
