//! The safetensors header, read and validated without touching tensor data.
//!
//! Format: an 8-byte little-endian header length N, N bytes of JSON (`{"name": {"dtype", "shape",
//! "data_offsets": [begin, end]}, "__metadata__": {…}}`), then the data. The file is untrusted
//! (trust boundaries in docs/ARCHITECTURE.md), so the length is bounded before anything is
//! allocated, and every tensor's byte range must match its dtype and shape, lie inside the data
//! section and, sorted, tile it exactly with no gap or overlap: the same rules the `safetensors`
//! crate applies.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::ModelError;

/// The largest header reprobox reads: 100 MB, the limit the safetensors reference implementation
/// uses. A hostile length above it is rejected before any allocation.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor's entry in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Element count (product of the shape; 1 for a scalar).
    pub elements: u64,
    /// Byte length of the tensor's data.
    pub bytes: u64,
    /// Where the tensor's data begins, counted from the start of the file (8 + header length +
    /// the entry's first data offset).
    pub offset: u64,
}

/// A validated header.
#[derive(Debug, Clone)]
pub struct Header {
    pub tensors: Vec<TensorInfo>,
    pub metadata: BTreeMap<String, String>,
    /// Size of the whole file.
    pub file_bytes: u64,
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// Bytes per element of a safetensors dtype; `None` for an unknown dtype. Sub-byte types are
/// rejected rather than guessed.
fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" | "C64" => 8,
        _ => return None,
    })
}

/// Reads and validates the header of `path`, reading only `8 + N` bytes.
pub fn read_header(path: &Path) -> Result<Header, ModelError> {
    let bad = |reason: String| ModelError::BadSafetensors {
        path: path.to_owned(),
        reason,
    };
    let io = |source| ModelError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = crate::input_file::open(path, "safetensors file")?;
    let file_bytes = file.metadata().map_err(io)?.len();
    let mut len_buf = [0u8; 8];
    file.read_exact(&mut len_buf)
        .map_err(|_| bad("shorter than the 8-byte header length".into()))?;
    let header_len = u64::from_le_bytes(len_buf);
    if header_len > MAX_HEADER_BYTES {
        return Err(bad(format!(
            "header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit"
        )));
    }
    if header_len > file_bytes.saturating_sub(8) {
        return Err(bad(format!(
            "header length {header_len} runs past the end of the {file_bytes}-byte file"
        )));
    }
    // Bounded by MAX_HEADER_BYTES and by the file size above, so this allocation is safe.
    let mut json =
        vec![0u8; usize::try_from(header_len).map_err(|_| bad("header too large".into()))?];
    file.read_exact(&mut json).map_err(io)?;
    let data_bytes = file_bytes.saturating_sub(8).saturating_sub(header_len);
    parse_header(&json, data_bytes, file_bytes).map_err(bad)
}

/// Validates a header's JSON against the size of the data section that follows it.
pub fn parse_header(json: &[u8], data_bytes: u64, file_bytes: u64) -> Result<Header, String> {
    if json.first() != Some(&b'{') {
        return Err("header is not a JSON object".into());
    }
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(json).map_err(|e| format!("header is not valid JSON: {e}"))?;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    let mut ranges: Vec<(u64, u64, usize)> = Vec::new();
    for (name, value) in raw {
        if name == "__metadata__" {
            let m: BTreeMap<String, String> = serde_json::from_value(value)
                .map_err(|e| format!("__metadata__ must map strings to strings: {e}"))?;
            metadata = m;
            continue;
        }
        let entry: RawEntry =
            serde_json::from_value(value).map_err(|e| format!("tensor `{name}`: {e}"))?;
        let size = dtype_bytes(&entry.dtype)
            .ok_or_else(|| format!("tensor `{name}`: unknown dtype `{}`", entry.dtype))?;
        let elements = entry
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("tensor `{name}`: shape {:?} overflows", entry.shape))?;
        let bytes = elements
            .checked_mul(size)
            .ok_or_else(|| format!("tensor `{name}`: byte size overflows"))?;
        let (begin, end) = entry.data_offsets;
        if end < begin || end - begin != bytes {
            return Err(format!(
                "tensor `{name}`: data_offsets [{begin}, {end}] do not hold {bytes} bytes of {} {:?}",
                entry.dtype, entry.shape
            ));
        }
        if end > data_bytes {
            return Err(format!(
                "tensor `{name}`: data_offsets end {end} is past the data section ({data_bytes} bytes)"
            ));
        }
        ranges.push((begin, end, tensors.len()));
        tensors.push(TensorInfo {
            name,
            dtype: entry.dtype,
            shape: entry.shape,
            elements,
            bytes,
            offset: (8 + json.len() as u64).saturating_add(begin),
        });
    }
    ranges.sort_unstable();
    let mut expected = 0u64;
    for (begin, end, idx) in &ranges {
        if *begin != expected {
            return Err(format!(
                "tensor `{}` starts at {begin}, expected {expected}: tensors must tile the data section without gaps or overlaps",
                tensors[*idx].name
            ));
        }
        expected = *end;
    }
    if expected != data_bytes {
        return Err(format!(
            "tensors cover {expected} bytes but the data section has {data_bytes}"
        ));
    }
    Ok(Header {
        tensors,
        metadata,
        file_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend(std::iter::repeat_n(0u8, data));
        v
    }

    fn read(bytes: &[u8]) -> Result<Header, ModelError> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.safetensors");
        std::fs::write(&p, bytes).unwrap();
        read_header(&p)
    }

    #[test]
    fn reads_a_valid_header() {
        let h = r#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[],"data_offsets":[24,26]},"__metadata__":{"format":"pt"}}"#;
        let hdr = read(&file(h, 26)).unwrap();
        assert_eq!(hdr.tensors.len(), 2);
        assert_eq!(hdr.tensors[0].elements, 6);
        assert_eq!(hdr.tensors[1].elements, 1);
        assert_eq!(hdr.tensors[1].offset, 8 + h.len() as u64 + 24);
        assert_eq!(hdr.metadata["format"], "pt");
    }

    #[test]
    fn rejects_hostile_headers() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (u64::MAX.to_le_bytes().to_vec(), "exceeds"),
            (
                {
                    let mut v = 50u64.to_le_bytes().to_vec();
                    v.extend(b"{}");
                    v
                },
                "past the end",
            ),
            (vec![1, 2, 3], "shorter"),
            (file("[]", 0), "not a JSON object"),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                    4,
                ),
                "do not hold",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                    8,
                ),
                "cover 4",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    8,
                ),
                "starts at 4",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                    4,
                ),
                "expected 4",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}"#,
                    4,
                ),
                "overflows",
            ),
            (
                file(
                    r#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#,
                    1,
                ),
                "unknown dtype",
            ),
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                    0,
                ),
                "past the data section",
            ),
        ];
        for (bytes, want) in cases {
            let err = read(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }
}
