//! `reprobox finalists LEADERBOARD --policy ID --track T --top N --submissions DIR`: verify down
//! the ranking with fallback (`reprobox::campaign`), and `--resume CAMPAIGN_DIR` to continue one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use reprobox::campaign::{
    self, CampaignError, CampaignResult, CampaignSpec, Status, Verifier, VerifySettings,
};
use reprobox::exit_codes;
use reprobox::gpu::GpuSelector;
use reprobox::pipeline::{
    self, NoProgress, PipelineError, Progress, ResumeOptions, RunResult, VerifyOptions,
};
use reprobox::policy::PolicySet;

use super::output::{self, Format};
use super::progress::TermProgress;
use super::verify::{HostArgs, RunArgs, inputs_mirror, load_policies, parse_gpu, runtime};

/// Arguments of `reprobox finalists`.
#[derive(Debug, Args)]
pub struct FinalistsArgs {
    /// The leaderboard: CSV (`rank,team,submission,score`) or JSON, best first.
    #[arg(required_unless_present = "resume")]
    pub leaderboard: Option<PathBuf>,
    /// The policy every entry is verified under.
    #[arg(long, required_unless_present = "resume")]
    pub policy: Option<String>,
    /// The policy's track.
    #[arg(long, required_unless_present = "resume")]
    pub track: Option<String>,
    /// How many reproduced entries end the campaign.
    #[arg(long, default_value_t = 3)]
    pub top: u32,
    /// The directory the leaderboard's submission paths are relative to.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub submissions: Option<PathBuf>,
    /// Continue the campaign in this directory (what an earlier `finalists` printed).
    #[arg(long, value_name = "CAMPAIGN_DIR", conflicts_with_all = ["leaderboard", "policy", "track", "submissions", "gpu", "gpus", "dry_run", "eval_image", "task_data", "task_seed", "task_block_hash", "inputs", "train_limit", "sign_key", "nvml_lib", "lease_dir"])]
    pub resume: Option<PathBuf>,
    /// Where the campaign directory is created.
    #[arg(long, value_name = "DIR", default_value = "audits")]
    pub out: PathBuf,
    /// Several GPUs (UUIDs or indices, comma-separated): up to one entry runs on each at a
    /// time, never more at once than places are still open.
    #[arg(long, value_delimiter = ',', value_parser = parse_gpu, conflicts_with = "gpu")]
    pub gpus: Vec<GpuSelector>,
    /// The settings of every entry's run, as `verify` takes them.
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// `text` prints each event on stderr and a summary; `json` prints only the campaign summary as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Runs each entry through the real pipeline, slot `i` on `gpus[i]` when GPUs are listed.
struct PipelineVerifier {
    base: VerifyOptions,
    gpus: Vec<GpuSelector>,
    resume: ResumeOptions,
    text: bool,
}

impl PipelineVerifier {
    /// A run's progress on the terminal; with several runs at once only the campaign's own
    /// lines are printed (interleaved status lines would be unreadable).
    fn progress(&self) -> Box<dyn Progress> {
        if self.text && self.gpus.len() <= 1 {
            Box::new(TermProgress::new())
        } else {
            Box::new(NoProgress)
        }
    }
}

impl Verifier for PipelineVerifier {
    fn slots(&self) -> usize {
        self.gpus.len().max(1)
    }

    async fn verify(
        &self,
        slot: usize,
        submission: &Path,
        audits_dir: &Path,
    ) -> Result<RunResult, PipelineError> {
        let mut opts = self.base.clone();
        opts.submission = submission.to_owned();
        opts.audits_dir = audits_dir.to_owned();
        if let Some(g) = self.gpus.get(slot) {
            opts.gpu = g.clone();
        }
        pipeline::verify(&opts, self.progress().as_mut()).await
    }

    async fn resume(&self, _slot: usize, run_dir: &Path) -> Result<RunResult, PipelineError> {
        // A resumed run keeps the GPU its plan recorded.
        pipeline::resume(run_dir, &self.resume, self.progress().as_mut()).await
    }
}

fn verifier(
    s: &VerifySettings,
    host: &HostArgs,
    policies: PolicySet,
    text: bool,
) -> Result<PipelineVerifier, i32> {
    let parse = |g: &str| {
        g.parse::<GpuSelector>().map_err(|e| {
            output::print_error(&e);
            exit_codes::UNREADABLE_INPUT
        })
    };
    let gpu = parse(&s.gpu)?;
    let gpus = s
        .gpus
        .iter()
        .map(|g| parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PipelineVerifier {
        base: VerifyOptions {
            submission: PathBuf::new(),
            audits_dir: PathBuf::new(),
            dry_run: s.dry_run,
            gpu,
            nvml_lib: s.nvml_lib.clone(),
            lease_dir: s.lease_dir.clone(),
            inputs: inputs_mirror(s.inputs.clone()),
            policies: policies.clone(),
            train_limit: s.train_limit_secs.map(Duration::from_secs),
            sign_key: s.sign_key.clone(),
            eval_image: s.eval_image.clone(),
            task_data: s.task_data.clone(),
            task_seed: s.task_seed.clone(),
            sandboxes_dir: host.sandboxes.clone(),
            evaluator: host.evaluator.clone(),
        },
        gpus,
        resume: ResumeOptions {
            policies,
            lease_dir: s.lease_dir.clone(),
            sign_key: s.sign_key.clone(),
            sandboxes_dir: host.sandboxes.clone(),
            inputs: inputs_mirror(s.inputs.clone()),
        },
        text,
    })
}

/// The campaign as the user asked for it, checked before anything is written.
fn spec(args: &FinalistsArgs, policies: &PolicySet) -> Result<CampaignSpec, i32> {
    let bad = |msg: String| {
        errln!("error: {msg}");
        exit_codes::UNREADABLE_INPUT
    };
    let (Some(lb), Some(policy), Some(track), Some(subs)) = (
        &args.leaderboard,
        &args.policy,
        &args.track,
        &args.submissions,
    ) else {
        return Err(bad("a leaderboard, --policy, --track and --submissions are needed (hint: or --resume CAMPAIGN_DIR)".into()));
    };
    let Some(p) = policies.get(policy) else {
        return Err(bad(format!(
            "unknown policy `{policy}` (hint: one of {}; `reprobox policy list`)",
            policies.ids().collect::<Vec<_>>().join(", ")
        )));
    };
    if p.track(track).is_none() {
        return Err(bad(format!(
            "policy `{policy}` has no track `{track}` (hint: one of {})",
            p.track_ids().join(", ")
        )));
    }
    if args.top == 0 {
        return Err(bad("--top must be at least 1".into()));
    }
    // Mistakes of the operator's are refused here, once, rather than cost every team its run.
    if !p.cpu_allowed
        && !args.run.dry_run
        && args.gpus.is_empty()
        && args.run.gpu == GpuSelector::None
    {
        return Err(bad(format!(
            "policy `{policy}` does not allow a run without a GPU (hint: pass --gpu UUID|INDEX or --gpus LIST, or --dry-run for a CPU rehearsal)"
        )));
    }
    if let Some(k) = &args.run.sign_key
        && !k.is_file()
    {
        return Err(bad(format!(
            "the signing key `{}` is not a file (hint: `reprobox audit keygen FILE` makes one)",
            k.display()
        )));
    }
    let listed: Vec<String> = args.gpus.iter().map(ToString::to_string).collect();
    if listed.iter().any(|g| g == "none") {
        return Err(bad(
            "--gpus lists GPUs; `none` is not one (hint: leave --gpus out for a CPU campaign)"
                .into(),
        ));
    }
    if let Some(dup) = listed
        .iter()
        .enumerate()
        .find(|(i, g)| listed[..*i].contains(g))
    {
        return Err(bad(format!(
            "--gpus names `{}` twice (hint: each GPU runs one entry at a time; name each once)",
            dup.1
        )));
    }
    let board = campaign::leaderboard::load(lb, subs).map_err(|e| {
        output::print_error(&e);
        exit_codes::UNREADABLE_INPUT
    })?;
    Ok(CampaignSpec {
        policy: policy.clone(),
        track: track.clone(),
        top: args.top,
        leaderboard: std::path::absolute(lb).unwrap_or_else(|_| lb.clone()),
        leaderboard_sha256: board.sha256,
        entries: board.entries,
        verify: VerifySettings {
            dry_run: args.run.dry_run,
            gpu: args.run.gpu.to_string(),
            gpus: args.gpus.iter().map(ToString::to_string).collect(),
            inputs: args.run.inputs.as_deref().map(absolute),
            train_limit_secs: args.run.train_limit,
            eval_image: args.run.eval_image.clone(),
            task_data: args
                .run
                .task_data
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            task_seed: reprobox::native::TaskSeed::from_args(
                args.run.task_seed.clone(),
                args.run.task_block_hash.clone(),
            ),
            nvml_lib: args.run.nvml_lib.as_deref().map(absolute),
            lease_dir: args.run.lease_dir.as_deref().map(absolute),
            sign_key: args.run.sign_key.as_deref().map(absolute),
        },
    })
}

/// Paths a campaign records are absolute, so `--resume` from another directory finds them.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Runs `reprobox finalists`.
pub fn run(args: FinalistsArgs) -> i32 {
    let policies = match load_policies(args.run.policies.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let text = args.format == Format::Text;
    let mut say = |event: &str, line: &str| {
        if text {
            errln!("[finalists] {event}: {line}");
        }
    };
    let result = if let Some(dir) = &args.resume {
        // The settings come from the campaign's own journal.
        let settings = match campaign_settings(dir) {
            Ok(s) => s,
            Err(e) => {
                output::print_error(&e);
                return exit_codes::UNREADABLE_INPUT;
            }
        };
        let v = match verifier(&settings, &args.host, policies, text) {
            Ok(v) => v,
            Err(code) => return code,
        };
        rt.block_on(campaign::resume(dir, &v, &mut say))
    } else {
        let spec = match spec(&args, &policies) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let v = match verifier(&spec.verify, &args.host, policies, text) {
            Ok(v) => v,
            Err(code) => return code,
        };
        rt.block_on(campaign::start(spec, &args.out, &v, &mut say))
    };
    finish(result, args.format)
}

fn campaign_settings(dir: &Path) -> Result<VerifySettings, CampaignError> {
    let path = dir.join(campaign::JOURNAL);
    if !path.is_file() {
        return Err(CampaignError::NotACampaign {
            path: dir.to_owned(),
        });
    }
    let (entries, _) = reprobox::journal::read_verified(&path)?;
    let spec: CampaignSpec = entries
        .first()
        .and_then(|e| serde_json::from_value(e.data.clone()).ok())
        .ok_or_else(|| CampaignError::State {
            path,
            detail: "the first line is not a readable `campaign_started`".into(),
        })?;
    Ok(spec.verify)
}

fn finish(result: Result<CampaignResult, CampaignError>, format: Format) -> i32 {
    match result {
        Ok(r) => {
            match format {
                Format::Json => output::print_json(&r),
                Format::Text => {
                    let status = match r.status {
                        Status::Complete => "complete",
                        Status::Exhausted if r.winners.is_empty() => "no winner",
                        Status::Exhausted => "leaderboard exhausted",
                        Status::Interrupted => "interrupted",
                        Status::InProgress => "in progress",
                    };
                    outln!("campaign: {status}");
                    for (i, w) in r.winners.iter().enumerate() {
                        outln!("  {}. {} (rank {})", i + 1, w.team, w.rank);
                    }
                    if let Some(why) = &r.interruption {
                        outln!(
                            "  the host failed: {why}\n  continue with: reprobox finalists --resume {}",
                            r.dir.display()
                        );
                    }
                    outln!("summary: {}", r.dir.join(campaign::SUMMARY_MD).display());
                }
            }
            if r.status == Status::Interrupted {
                exit_codes::INFRA_ERROR
            } else {
                exit_codes::OK
            }
        }
        Err(e) => {
            output::print_error(&e);
            match e {
                CampaignError::Leaderboard(_)
                | CampaignError::NotACampaign { .. }
                | CampaignError::Finished { .. }
                | CampaignError::BadTop(_) => exit_codes::UNREADABLE_INPUT,
                _ => exit_codes::INFRA_ERROR,
            }
        }
    }
}
