//! `reprobox gpu`: the host's GPUs as NVML reports them, and for each, the policy tracks whose
//! approved GPU list it matches (`reprobox::gpu::approved`).

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use reprobox::exit_codes;
use reprobox::gpu::{GpuInfo, GpuProbe, NvmlProbe, approved};
use reprobox::policy::PolicySet;

use super::output::{self, Format};

/// Arguments of `reprobox gpu`.
#[derive(Debug, Args)]
pub struct GpuArgs {
    /// The NVML library to load (default: $REPROBOX_NVML_LIB, else libnvidia-ml.so.1 through the
    /// dynamic loader).
    #[arg(long, value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,
    /// Read policies from this directory instead of the ones built into reprobox.
    #[arg(long, value_name = "DIR", env = "REPROBOX_POLICIES")]
    pub policies: Option<PathBuf>,
    /// `text` prints a table; `json` prints the GPUs with their approval per track.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Whether one GPU is approved for one policy track.
#[derive(Debug, Serialize)]
struct TrackApproval {
    policy: String,
    track: String,
    approved: bool,
}

/// One GPU with its approvals, as `--format json` prints it.
#[derive(Debug, Serialize)]
struct GpuRow {
    #[serde(flatten)]
    info: GpuInfo,
    tracks: Vec<TrackApproval>,
}

#[derive(Debug, Serialize)]
struct GpuReport {
    nvml_lib: String,
    gpus: Vec<GpuRow>,
}

/// Runs `reprobox gpu`. Exit 0 (also with no GPUs), 6 (`INFRA_ERROR`) when NVML cannot be loaded
/// or queried, 2 when the policies cannot be read.
pub fn run(args: GpuArgs) -> i32 {
    let policies = match PolicySet::load(args.policies.as_deref()) {
        Ok(set) => set,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::UNREADABLE_INPUT;
        }
    };
    let probe = match NvmlProbe::new(args.nvml_lib.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::INFRA_ERROR;
        }
    };
    let gpus = match probe.gpus() {
        Ok(g) => g,
        Err(e) => {
            output::print_error(&e);
            return exit_codes::INFRA_ERROR;
        }
    };
    let rows: Vec<GpuRow> = gpus
        .into_iter()
        .map(|info| {
            let tracks = policies
                .policies()
                .flat_map(|p| {
                    p.tracks.iter().map(|t| TrackApproval {
                        policy: p.id.clone(),
                        track: t.id.clone(),
                        approved: approved(&info.name, &t.gpus),
                    })
                })
                .collect();
            GpuRow { info, tracks }
        })
        .collect();
    let report = GpuReport {
        nvml_lib: probe.lib().to_owned(),
        gpus: rows,
    };
    match args.format {
        Format::Json => output::print_json(&report),
        Format::Text => print!("{}", render(&report)),
    }
    exit_codes::OK
}

fn render(report: &GpuReport) -> String {
    let Some(first) = report.gpus.first() else {
        return format!(
            "no GPUs (NVML library `{}` loaded, it reports none)\n",
            report.nvml_lib
        );
    };
    let mut out = format!(
        "driver {}, CUDA {}\n",
        first.info.driver_version,
        first
            .info
            .cuda_driver_version
            .as_deref()
            .unwrap_or("unknown")
    );
    for row in &report.gpus {
        let g = &row.info;
        let approved: Vec<String> = row
            .tracks
            .iter()
            .filter(|t| t.approved)
            .map(|t| format!("{}/{}", t.policy, t.track))
            .collect();
        out.push_str(&format!(
            "{}  {}  {}  {:.1} GiB\n  approved for: {}\n",
            g.index,
            g.name,
            g.uuid,
            g.memory_total_bytes as f64 / (1u64 << 30) as f64,
            if approved.is_empty() {
                "no track".to_owned()
            } else {
                approved.join(", ")
            }
        ));
    }
    out
}
