//! Which GPU a run uses: `--gpu UUID|INDEX|none` parsed into a [`GpuSelector`], resolved against
//! the host's GPUs by [`select`].
//!
//! Prefer UUIDs: NVML indexes are not stable across reboots and may differ from CUDA's order.

use std::fmt;
use std::str::FromStr;

use super::error::GpuError;
use super::probe::GpuInfo;

/// A `--gpu` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelector {
    /// A GPU UUID (`GPU-…`, or `MIG-…` for a MIG instance), compared ignoring ASCII case.
    Uuid(String),
    /// An NVML index.
    Index(u32),
    /// No GPU: a CPU run, where the policy allows one.
    None,
}

impl FromStr for GpuSelector {
    type Err = GpuError;

    /// `none` (any case), a decimal index, or a UUID starting with `GPU-` or `MIG-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("none") {
            return Ok(GpuSelector::None);
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse()
                .map(GpuSelector::Index)
                .map_err(|_| GpuError::InvalidSelector {
                    value: s.to_owned(),
                });
        }
        let upper = t.to_ascii_uppercase();
        if (upper.starts_with("GPU-") || upper.starts_with("MIG-")) && t.len() > 4 {
            return Ok(GpuSelector::Uuid(t.to_owned()));
        }
        Err(GpuError::InvalidSelector {
            value: s.to_owned(),
        })
    }
}

impl fmt::Display for GpuSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuSelector::Uuid(u) => f.write_str(u),
            GpuSelector::Index(i) => write!(f, "{i}"),
            GpuSelector::None => f.write_str("none"),
        }
    }
}

/// Resolves a selector against the host's GPUs: `Ok(None)` for [`GpuSelector::None`], the GPU
/// otherwise, or an error listing what the host has.
pub fn select(gpus: &[GpuInfo], selector: &GpuSelector) -> Result<Option<GpuInfo>, GpuError> {
    match selector {
        GpuSelector::None => Ok(None),
        GpuSelector::Uuid(uuid) => gpus
            .iter()
            .find(|g| g.uuid.eq_ignore_ascii_case(uuid))
            .cloned()
            .map(Some)
            .ok_or_else(|| GpuError::UnknownUuid {
                uuid: uuid.clone(),
                available: describe(gpus),
            }),
        GpuSelector::Index(index) => gpus
            .iter()
            .find(|g| g.index == *index)
            .cloned()
            .map(Some)
            .ok_or_else(|| GpuError::IndexOutOfRange {
                index: *index,
                count: gpus.len(),
                available: describe(gpus),
            }),
    }
}

/// `0: NVIDIA A100-SXM4-40GB (GPU-…), 1: …`, or `no GPUs`.
fn describe(gpus: &[GpuInfo]) -> String {
    if gpus.is_empty() {
        return "no GPUs".to_owned();
    }
    gpus.iter()
        .map(|g| format!("{}: {} ({})", g.index, g.name, g.uuid))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, name: &str, uuid: &str) -> GpuInfo {
        GpuInfo {
            index,
            name: name.into(),
            uuid: uuid.into(),
            memory_total_bytes: 40 << 30,
            driver_version: "550.54.15".into(),
            cuda_driver_version: Some("12.4".into()),
        }
    }

    fn host() -> Vec<GpuInfo> {
        vec![
            gpu(0, "NVIDIA A100-SXM4-40GB", "GPU-aaaa"),
            gpu(1, "NVIDIA GeForce RTX 4090", "GPU-bbbb"),
        ]
    }

    #[test]
    fn parses_selectors() {
        assert_eq!("none".parse::<GpuSelector>().unwrap(), GpuSelector::None);
        assert_eq!("NONE".parse::<GpuSelector>().unwrap(), GpuSelector::None);
        assert_eq!("3".parse::<GpuSelector>().unwrap(), GpuSelector::Index(3));
        assert_eq!(
            "GPU-abc".parse::<GpuSelector>().unwrap(),
            GpuSelector::Uuid("GPU-abc".into())
        );
        assert_eq!(
            "MIG-abc".parse::<GpuSelector>().unwrap(),
            GpuSelector::Uuid("MIG-abc".into())
        );
        for bad in ["", "-1", "gpu0", "GPU-", "99999999999"] {
            let err = bad.parse::<GpuSelector>().unwrap_err();
            assert!(
                matches!(err, GpuError::InvalidSelector { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn selects_by_uuid_ignoring_case_and_by_index() {
        let gpus = host();
        assert_eq!(
            select(&gpus, &GpuSelector::Uuid("gpu-BBBB".into()))
                .unwrap()
                .unwrap()
                .index,
            1
        );
        assert_eq!(
            select(&gpus, &GpuSelector::Index(0)).unwrap().unwrap().uuid,
            "GPU-aaaa"
        );
        assert_eq!(select(&gpus, &GpuSelector::None).unwrap(), None);
    }

    #[test]
    fn errors_list_what_the_host_has() {
        let gpus = host();
        let e = select(&gpus, &GpuSelector::Index(2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("GPU index 2 is out of range: this host has 2 GPU(s)"),
            "{e}"
        );
        assert!(e.contains("0: NVIDIA A100-SXM4-40GB (GPU-aaaa)"), "{e}");
        assert!(e.contains("1: NVIDIA GeForce RTX 4090 (GPU-bbbb)"), "{e}");
        let e = select(&gpus, &GpuSelector::Uuid("GPU-cccc".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no GPU with UUID `GPU-cccc`"), "{e}");
        assert!(e.contains("GPU-aaaa") && e.contains("(hint:"), "{e}");
        let e = select(&[], &GpuSelector::Index(0)).unwrap_err().to_string();
        assert!(e.contains("has 0 GPU(s): no GPUs"), "{e}");
    }
}
