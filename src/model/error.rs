//! Why a model directory could not be read.

use std::path::PathBuf;

/// A model directory that is not a readable Hugging Face model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model directory `{path}` does not exist or is not a directory (hint: pass the directory that holds config.json)"
    )]
    NotADirectory { path: PathBuf },
    #[error(
        "`{path}` is missing: not a Hugging Face model directory (hint: save the model with `save_pretrained(dir, safe_serialization=True)`)"
    )]
    MissingConfig { path: PathBuf },
    #[error(
        "model directory `{path}` holds no safetensors weights (hint: save with `safe_serialization=True`)"
    )]
    NoWeights { path: PathBuf },
    /// A model file is not a regular file, or is past its cap.
    #[error(transparent)]
    Input(#[from] crate::input_file::InputFileError),
    #[error("failed to read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid JSON for a model directory: {reason}")]
    BadJson { path: PathBuf, reason: String },
    #[error(
        "`{path}` is not a valid safetensors file: {reason} (hint: re-save it with the safetensors library)"
    )]
    BadSafetensors { path: PathBuf, reason: String },
    #[error(
        "tensor `{tensor}` in `{path}` is stored as {dtype}; the weight-norm rule reads F32, F16, BF16 and F64 tensors only (hint: save the weights in bf16 or fp32 with safetensors)"
    )]
    UnsupportedDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },
}
