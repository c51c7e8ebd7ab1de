//! Loads safetensors weights (one `model.safetensors`, or the shards a
//! `model.safetensors.index.json` names) by memory-mapping each file and copying one tensor at a
//! time into libtorch, converted to the evaluation dtype and device. Unlike
//! `Tensor::read_safetensors` (docs/references.md K§3.4) no file is read into RAM whole.
//! Pickle checkpoints (`.bin`, `.pt`, `.pth`, `.ckpt`) are refused, never unpickled.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype as StDtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use super::EvalError;

/// The weights of a model, by checkpoint name.
pub struct Weights {
    dir: PathBuf,
    tensors: HashMap<String, Tensor>,
}

/// The weight files of a model directory, in load order.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let index = dir.join("model.safetensors.index.json");
    if index.symlink_metadata().is_ok() {
        let text = reprobox::input_file::read_to_string(&index, crate::MODEL_JSON_CAP)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| EvalError::Safetensors {
                path: index.clone(),
                message: format!("not valid JSON: {e}"),
            })?;
        let Some(map) = value
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
        else {
            return Err(EvalError::Safetensors {
                path: index,
                message: "no `weight_map` object".into(),
            });
        };
        let mut files = BTreeSet::new();
        for (name, file) in map {
            let Some(file) = file.as_str() else {
                return Err(EvalError::Safetensors {
                    path: index,
                    message: format!("`{name}` maps to a non-string"),
                });
            };
            // A shard name is a plain file name in the directory: no traversal out of it.
            if file.contains('/')
                || file.contains('\\')
                || file == ".."
                || !file.ends_with(".safetensors")
            {
                return Err(EvalError::Safetensors {
                    path: index,
                    message: format!(
                        "shard `{file}` is not a .safetensors file in the model directory"
                    ),
                });
            }
            files.insert(file.to_string());
        }
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    for name in [
        "pytorch_model.bin",
        "model.bin",
        "model.pt",
        "model.pth",
        "pytorch_model.bin.index.json",
    ] {
        if dir.join(name).is_file() {
            return Err(EvalError::PickleWeights {
                path: dir.join(name),
            });
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "bin" | "pt" | "pth" | "ckpt") {
                return Err(EvalError::PickleWeights { path });
            }
        }
    }
    Err(EvalError::NoWeights {
        dir: dir.to_path_buf(),
    })
}

/// What a safetensors file must be, appended to every error about one.
const LAYOUT: &str = "expected a safetensors file: an 8-byte little-endian header length N, an N-byte JSON header from byte 8, then the tensor data, which the header's `data_offsets` must tile exactly";

/// Validates the header of the weight file `path` with reprobox's reader, which names the byte
/// position or the tensor of each problem.
fn check_header(path: &Path) -> Result<(), EvalError> {
    match reprobox::model::header::read_header(path) {
        Ok(_) => Ok(()),
        Err(reprobox::model::ModelError::BadSafetensors { path, reason }) => {
            Err(EvalError::Safetensors {
                path,
                message: format!("{reason} ({LAYOUT})"),
            })
        }
        Err(reprobox::model::ModelError::Io { path, source }) => {
            Err(EvalError::Io { path, source })
        }
        Err(e) => Err(EvalError::Safetensors {
            path: path.to_owned(),
            message: format!("{e} ({LAYOUT})"),
        }),
    }
}

/// The safetensors crate's error in words (its `Display` is the variant's `Debug` name).
fn describe(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::InvalidHeader => "the JSON header (from byte 8) is not valid UTF-8".into(),
        E::InvalidHeaderStart => "the JSON header does not start with `{` at byte 8".into(),
        E::InvalidHeaderDeserialization | E::JsonError(_) => {
            "the header (from byte 8) is not the JSON object of tensors the format defines".into()
        }
        E::HeaderTooLarge => "the header length in bytes 0-7 is above the 100 MB limit".into(),
        E::HeaderTooSmall => "the file is shorter than the 8-byte header length".into(),
        E::InvalidHeaderLength => {
            "the header length in bytes 0-7 runs past the end of the file".into()
        }
        E::TensorNotFound(name) => format!("tensor `{name}` is not in the header"),
        E::TensorInvalidInfo => {
            "a tensor's dtype and shape do not match the length of its data_offsets".into()
        }
        E::InvalidOffset(name) => {
            format!("tensor `{name}`: its data_offsets do not start where the previous tensor ends")
        }
        E::IoError(io) => format!("cannot read it: {io}"),
        E::InvalidTensorView(dtype, shape, len) => {
            format!("a {dtype:?} tensor of shape {shape:?} cannot be made from {len} bytes")
        }
        E::MetadataIncompleteBuffer => {
            "the tensors' data_offsets do not cover the data section up to the end of the file"
                .into()
        }
        E::ValidationOverflow => "a tensor's shape or byte size overflows".into(),
    }
}

fn kind_of(dtype: StDtype) -> Option<Kind> {
    Some(match dtype {
        StDtype::F32 => Kind::Float,
        StDtype::BF16 => Kind::BFloat16,
        StDtype::F16 => Kind::Half,
        StDtype::F64 => Kind::Double,
        _ => return None,
    })
}

impl Weights {
    /// Loads every floating-point tensor of the checkpoint in `dir` as `kind` on `device`.
    pub fn load(dir: &Path, kind: Kind, device: Device) -> Result<Self, EvalError> {
        let mut tensors = HashMap::new();
        for path in weight_files(dir)? {
            // Refused unless a regular file, so the map below never maps a device.
            let file = reprobox::input_file::open(&path, "safetensors file")?;
            // SAFETY: the map is only read, and dropped at the end of this iteration. A process
            // truncating the file meanwhile could fault it; model directories are inputs that
            // reprobox mounts read-only and does not share with running submissions.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|source| EvalError::Io {
                path: path.clone(),
                source,
            })?;
            // reprobox's own header check first: it says in words what is wrong and where
            // (the safetensors crate's errors are bare enum names such as `HeaderTooSmall`).
            check_header(&path)?;
            let st = SafeTensors::deserialize(&mmap).map_err(|e| EvalError::Safetensors {
                path: path.clone(),
                message: format!("{} ({LAYOUT})", describe(&e)),
            })?;
            for (name, view) in st.tensors() {
                let Some(file_kind) = kind_of(view.dtype()) else {
                    // Integer buffers (e.g. GPT-2's old `attn.bias` masks) are not weights.
                    continue;
                };
                let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
                // from_data_size copies the mapped bytes into a tensor libtorch owns (any alignment).
                let cpu = Tensor::f_from_data_size(view.data(), &shape, file_kind)?;
                let t = cpu.f_to_dtype(kind, false, false)?.f_to(device)?;
                tensors.insert(name, t);
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            tensors,
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the checkpoint has `name`.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Takes the tensor `name`, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor, EvalError> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| EvalError::MissingWeight {
                name: name.to_string(),
                dir: self.dir.clone(),
            })?;
        let found = t.size();
        if found != shape {
            return Err(EvalError::WeightShape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found,
            });
        }
        Ok(t)
    }

    /// Takes `name` when present (optional biases, untied heads).
    pub fn take_opt(&mut self, name: &str, shape: &[i64]) -> Result<Option<Tensor>, EvalError> {
        if self.has(name) {
            self.take(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The first of `prefixes` under which `name` exists (checkpoints saved from a base model lack
    /// the `model.` / `transformer.` prefix).
    pub fn prefix_for(&self, prefixes: &[&'static str], name: &str) -> &'static str {
        prefixes
            .iter()
            .copied()
            .find(|p| self.has(&format!("{p}{name}")))
            .or_else(|| prefixes.first().copied())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickle_checkpoints_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pytorch_model.bin"), b"not read").unwrap();
        let e = weight_files(dir.path()).unwrap_err();
        assert!(matches!(e, EvalError::PickleWeights { .. }), "{e}");
        assert!(e.to_string().contains("safetensors"), "{e}");
    }

    #[test]
    fn index_shards_must_stay_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"weight_map":{"a":"../x.safetensors"}}"#,
        )
        .unwrap();
        assert!(weight_files(dir.path()).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            weight_files(empty.path()),
            Err(EvalError::NoWeights { .. })
        ));
    }

    #[test]
    fn loads_and_converts_a_safetensors_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 4.0]).reshape([2, 2]);
        Tensor::write_safetensors(&[("w", &t)], dir.path().join("model.safetensors")).unwrap();
        let mut w = Weights::load(dir.path(), Kind::BFloat16, Device::Cpu).unwrap();
        assert!(w.take("w", &[4]).is_err());
        let mut w2 = Weights::load(dir.path(), Kind::BFloat16, Device::Cpu).unwrap();
        let got = w2.take("w", &[2, 2]).unwrap();
        assert_eq!(got.kind(), Kind::BFloat16);
        let v: Vec<f32> = Vec::try_from(got.to_kind(Kind::Float).flatten(0, -1)).unwrap();
        assert_eq!(v, vec![1.5, -2.0, 3.25, 4.0]);
        assert!(matches!(
            w.take("missing", &[1]),
            Err(EvalError::MissingWeight { .. })
        ));
    }
}
