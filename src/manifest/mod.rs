//! The submission manifest `reprobox.toml` (schema_version 1): read in three passes, each error
//! naming the file, line, column and dotted field and ending with a hint.
//!
//! 1. A version-only pass reads `schema_version`, so a manifest for a newer schema fails with
//!    "requires reprobox ≥ X" (`version.rs`).
//! 2. Typed raw serde structs, `deny_unknown_fields` on every table (`raw.rs`); they also generate
//!    the JSON Schema in `docs/schemas/manifest.schema.json` ([`json_schema`]).
//! 3. One validation pass (`validate.rs`) producing the domain [`Manifest`].
//!
//! The wire format is documented in `docs/manifest.md`.

mod error;
mod parse;
mod raw;
mod spans;
mod types;
mod validate;
mod version;

pub use error::{Location, ManifestError, ManifestProblem};
pub use parse::{FILE_NAME, MAX_MANIFEST_BYTES, load, parse};
pub use types::{
    Claims, DatasetInput, LoadedManifest, Manifest, ModelInput, RelPath, RelPathError, Submission,
    Train,
};
pub use version::{SCHEMA_HISTORY, SCHEMA_VERSION, required_reprobox};

/// The JSON Schema (draft 2020-12) of `reprobox.toml`, generated from the raw serde types. The
/// committed copy is `docs/schemas/manifest.schema.json`; a test keeps the two equal.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<raw::RawManifest>()
        .to_value();
    remove_null_defaults(&mut schema);
    schema
}

/// schemars writes `"default": null` for optional fields; TOML has no null, so an editor that
/// offered it would write an invalid manifest. Absent means absent.
fn remove_null_defaults(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("default").is_some_and(serde_json::Value::is_null) {
                map.remove("default");
            }
            map.values_mut().for_each(remove_null_defaults);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(remove_null_defaults),
        _ => {}
    }
}
