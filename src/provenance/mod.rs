//! Provenance for a run: the in-toto bundle `provenance.intoto.jsonl` with an SLSA Provenance v1
//! statement for the training run and a reprobox verdict statement, both about the rebuilt
//! model's OMS root digest; the `artifacts` record the report embeds; and optional DSSE signing
//! with Ed25519. Formats: docs/report-format.md.
//!
//! The runner fills a [`TrainingRun`], the report code a [`VerdictRecord`] and an [`Artifacts`];
//! [`write_bundle`] writes the statements, signed when given a key. `audit verify` reads them
//! back with [`read_bundle`].

mod artifacts;
mod bundle;
mod dsse;
mod error;
mod slsa;
mod statement;
mod verdict;

pub use artifacts::{ArtifactKind, ArtifactRecord, Artifacts, Computed, TreeEntry, compute};
pub use bundle::{BundleEntry, BundleLine, parse_line, read_bundle, write_bundle};
pub use dsse::{
    Envelope, EnvelopeSignature, KEY_CAP, PAYLOAD_TYPE, SigningKey, VerifyingKey, generate_key,
    key_id, pae, read_signing_key, read_verifying_key, sign_statement, verify_envelope,
    write_key_pair,
};
pub use error::ProvenanceError;
pub use slsa::{
    BUILD_TYPE, BUILDER_ID_RUNC, BUILDER_ID_RUNSC, BuildDefinition, BuildMetadata, Builder,
    ExternalParameters, GpuParameters, InternalParameters, Limits, RunDetails, Runtime,
    SLSA_PROVENANCE_V1, SandboxParameters, SlsaPredicate, TrainingRun, dependency,
    is_known_builder, slsa_timestamp,
};
pub use statement::{ResourceDescriptor, STATEMENT_TYPE, Statement};
pub use verdict::{
    JournalRef, PolicyRef, TaskScore, VERDICT_PREDICATE_TYPE, VERDICTS, VerdictPredicate,
    VerdictRecord,
};
