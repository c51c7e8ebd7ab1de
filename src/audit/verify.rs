//! `audit verify`: re-checks a run directory without changing it. It walks the journal chain,
//! recomputes every digest recorded in report.json's `artifacts` and in the provenance
//! statements (subjects, byproducts and resolved dependencies that carry a `path` annotation),
//! compares the recorded journal heads with the chain's head, checks that the statements are
//! well-formed and, given a key, that every one is signed by it. Every difference becomes a
//! [`Problem`]; nothing stops at the first one, so the report names all that changed.

use std::collections::HashMap;
use std::path::Path;

use super::AuditError;
use super::report::{AuditReport, Check, JournalSummary, Problem, ProblemKind};
use crate::digest::{Sha256Digest, root_of};
use crate::journal::{self, JournalError};
use crate::provenance::{
    self, ArtifactKind, ArtifactRecord, Computed, ResourceDescriptor, SLSA_PROVENANCE_V1,
    SlsaPredicate, VERDICT_PREDICATE_TYPE, VerdictPredicate, VerifyingKey,
};
use crate::rundir::{self, RunDir};

/// What `audit verify` should additionally check.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// Require every statement to be a DSSE envelope signed by this key.
    pub key: Option<VerifyingKey>,
}

type CacheKey = (String, ArtifactKind, Option<u64>);

struct Auditor<'a> {
    dir: &'a RunDir,
    cache: HashMap<CacheKey, Result<Computed, String>>,
    problems: Vec<Problem>,
    checks: Vec<Check>,
}

impl Auditor<'_> {
    fn problem(
        &mut self,
        kind: ProblemKind,
        file: &str,
        line: Option<u64>,
        recorded_in: Option<String>,
        message: String,
    ) {
        self.problems.push(Problem {
            kind,
            file: file.to_owned(),
            line,
            recorded_in,
            message,
        });
    }

    fn ok(&mut self, file: &str, what: String) {
        self.checks.push(Check {
            file: file.to_owned(),
            what,
        });
    }

    fn compute(
        &mut self,
        name: &str,
        rel: &str,
        kind: ArtifactKind,
        shard: Option<u64>,
    ) -> Result<Computed, String> {
        let key = (rel.to_owned(), kind, shard);
        if let Some(c) = self.cache.get(&key) {
            return c.clone();
        }
        let c = provenance::compute(self.dir, name, rel, kind, shard).map_err(|e| e.to_string());
        self.cache.insert(key, c.clone());
        c
    }

    /// Recomputes one recorded digest and records the outcome. `files`, when given, names the
    /// changed files inside a tree.
    fn check_digest(&mut self, record: &ArtifactRecord, recorded_in: String) {
        let (name, rel, kind, shard) = (
            record.name.as_str(),
            record.path.as_str(),
            record.kind,
            record.shard_size,
        );
        let recorded = &record.digest;
        // Inline in an older report, else the tree's listing (which must match its digest).
        let files = match record.recorded_files(self.dir) {
            Ok(files) => files,
            Err(e) => {
                self.problem(
                    ProblemKind::Inconsistent,
                    record.listing.as_deref().unwrap_or(rundir::REPORT_JSON),
                    None,
                    Some(recorded_in.clone()),
                    e,
                );
                Vec::new()
            }
        };
        let files = files.as_slice();
        // A recorded file list must produce the recorded root, or it could name the wrong files.
        if !files.is_empty() && root_of(files.iter().map(|f| &f.digest)) != *recorded {
            self.problem(
                ProblemKind::Inconsistent,
                rundir::REPORT_JSON,
                None,
                Some(recorded_in.clone()),
                format!("the `files` of `{name}` do not hash to its recorded digest {recorded}"),
            );
        }
        if let Err(e) = self.dir.resolve(rel) {
            self.problem(
                ProblemKind::Malformed,
                rel,
                None,
                Some(recorded_in),
                e.to_string(),
            );
            return;
        }
        if !self
            .dir
            .resolve(rel)
            .is_ok_and(|p| p.symlink_metadata().is_ok())
        {
            self.problem(
                ProblemKind::Missing,
                rel,
                None,
                Some(recorded_in),
                format!("{} `{name}` is missing", kind.as_str()),
            );
            return;
        }
        let computed = match self.compute(name, rel, kind, shard) {
            Ok(c) => c,
            Err(e) => {
                self.problem(ProblemKind::Unreadable, rel, None, Some(recorded_in), e);
                return;
            }
        };
        if computed.digest == *recorded {
            self.ok(
                rel,
                format!("{} digest {recorded} matches {recorded_in}", kind.as_str()),
            );
            return;
        }
        let differing = tree_differences(files, &computed.files);
        if differing.is_empty() {
            self.problem(
                ProblemKind::DigestMismatch,
                rel,
                None,
                Some(recorded_in.clone()),
                format!(
                    "{} `{name}` hashes to {} but {recorded_in} records {recorded}",
                    kind.as_str(),
                    computed.digest
                ),
            );
        } else {
            for (inner, why) in differing {
                self.problem(
                    ProblemKind::DigestMismatch,
                    &format!("{rel}/{inner}"),
                    None,
                    Some(recorded_in.clone()),
                    format!(
                        "{why} (tree `{name}` hashes to {} but {recorded_in} records {recorded})",
                        computed.digest
                    ),
                );
            }
        }
    }

    /// Checks a descriptor that points into the run directory (`annotations.path`).
    fn check_descriptor(&mut self, rd: &ResourceDescriptor, recorded_in: String) -> bool {
        let Some(ann) = &rd.annotations else {
            return false;
        };
        let Some(rel) = ann.get("path").and_then(|v| v.as_str()) else {
            return false;
        };
        let kind = match ann.get("kind").and_then(|v| v.as_str()) {
            None | Some("file") => ArtifactKind::File,
            Some("tree") => ArtifactKind::Tree,
            Some(other) => {
                self.problem(
                    ProblemKind::Malformed,
                    rundir::PROVENANCE,
                    None,
                    Some(recorded_in),
                    format!("annotation kind `{other}` is neither file nor tree"),
                );
                return true;
            }
        };
        let shard = ann.get("shardSize").and_then(|v| v.as_u64());
        let recorded = match rd
            .sha256()
            .map(|h| format!("sha256:{h}").parse::<Sha256Digest>())
        {
            Some(Ok(d)) => d,
            _ => {
                self.problem(
                    ProblemKind::Malformed,
                    rundir::PROVENANCE,
                    None,
                    Some(recorded_in),
                    "the descriptor has no valid sha256 digest".to_owned(),
                );
                return true;
            }
        };
        let name = rd.name.clone().unwrap_or_else(|| rel.to_owned());
        let record = ArtifactRecord {
            name,
            path: rel.to_owned(),
            kind,
            digest: recorded,
            shard_size: shard,
            files: Vec::new(),
            file_count: None,
            listing: None,
            listing_digest: None,
            largest: Vec::new(),
        };
        self.check_digest(&record, recorded_in);
        true
    }
}

/// The journal event the pipeline appends when it has hashed the rebuilt model
/// (`pipeline::state::events::MODEL_COLLECTED`).
const MODEL_COLLECTED_EVENT: &str = "model_collected";

/// The files inside a tree that differ between the recorded and the recomputed manifests.
fn tree_differences(
    recorded: &[provenance::TreeEntry],
    now: &[provenance::TreeEntry],
) -> Vec<(String, String)> {
    if recorded.is_empty() {
        return Vec::new();
    }
    let strip = |n: &str| n.split(':').next().unwrap_or(n).to_owned();
    let old: HashMap<&str, &Sha256Digest> = recorded
        .iter()
        .map(|e| (e.name.as_str(), &e.digest))
        .collect();
    let new: HashMap<&str, &Sha256Digest> =
        now.iter().map(|e| (e.name.as_str(), &e.digest)).collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for e in recorded {
        match new.get(e.name.as_str()) {
            None => out.push((strip(&e.name), format!("`{}` was removed", e.name))),
            Some(d) if *d != &e.digest => out.push((
                strip(&e.name),
                format!("`{}` changed: now {d}, recorded {}", e.name, e.digest),
            )),
            _ => {}
        }
    }
    for e in now {
        if !old.contains_key(e.name.as_str()) {
            out.push((strip(&e.name), format!("`{}` was added", e.name)));
        }
    }
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Audits the run directory at `dir`. `Err` only when it is not a run directory; a tampered one
/// is an `Ok` report with problems.
pub fn verify_run(dir: &Path, opts: &AuditOptions) -> Result<AuditReport, AuditError> {
    let run = RunDir::new(dir);
    if !run.looks_like_run_dir() {
        return Err(AuditError::NotRunDir {
            path: dir.to_owned(),
        });
    }
    let mut a = Auditor {
        dir: &run,
        cache: HashMap::new(),
        problems: Vec::new(),
        checks: Vec::new(),
    };

    // 1. The journal chain.
    let mut chain_head = None;
    // Unknown (unreadable journal) counts as "had a model", as before: a bundle is then expected.
    let mut journal_has_model = true;
    // Anything at the path that is not a regular file (a FIFO, a device, a directory) is read
    // through `input_file` and reported as unreadable by name, not as missing.
    if run.journal().symlink_metadata().is_err() {
        a.problem(
            ProblemKind::Missing,
            rundir::JOURNAL,
            None,
            None,
            "the journal is missing".to_owned(),
        );
    } else {
        // One pass over the journal: the chain and the events step 3 asks about.
        match journal::read_verified(run.journal()) {
            Ok((entries, r)) => {
                journal_has_model = entries.iter().any(|e| e.event == MODEL_COLLECTED_EVENT);
                if let Some(t) = &r.torn_tail {
                    a.problem(
                        ProblemKind::JournalTorn,
                        rundir::JOURNAL,
                        Some(t.line),
                        None,
                        format!(
                            "line {} is torn: {} bytes without a newline (a finished run has none)",
                            t.line, t.bytes
                        ),
                    );
                }
                a.ok(
                    rundir::JOURNAL,
                    format!(
                        "hash chain of {} lines verifies, head {}",
                        r.lines, r.head.hash
                    ),
                );
                chain_head = Some(r.head);
            }
            Err(JournalError::Broken { line, reason, .. }) => {
                a.problem(
                    ProblemKind::JournalBroken,
                    rundir::JOURNAL,
                    Some(line),
                    None,
                    reason.to_string(),
                );
            }
            Err(e) => a.problem(
                ProblemKind::Unreadable,
                rundir::JOURNAL,
                None,
                None,
                e.to_string(),
            ),
        }
    }

    // 2. report.json: artifacts and journal_head.
    let mut model_digest: Option<Sha256Digest> = None;
    let mut report_verdict: Option<String> = None;
    match crate::input_file::read(&run.report_json(), rundir::REPORT_CAP) {
        Err(e) if e.is_not_found() => {
            a.problem(
                ProblemKind::Missing,
                rundir::REPORT_JSON,
                None,
                None,
                "report.json is missing".to_owned(),
            );
        }
        Err(e) => a.problem(
            ProblemKind::Unreadable,
            rundir::REPORT_JSON,
            None,
            None,
            e.to_string(),
        ),
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Err(e) => a.problem(
                ProblemKind::Malformed,
                rundir::REPORT_JSON,
                Some(e.line() as u64),
                None,
                format!("not JSON: {e}"),
            ),
            Ok(report) => {
                report_verdict = report
                    .get("verdict")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                match report.get("journal_head").and_then(|v| v.as_str()).map(str::parse::<Sha256Digest>) {
                    Some(Ok(recorded)) => match chain_head {
                        Some(h) if h.hash == recorded => a.ok(rundir::REPORT_JSON, "journal_head is the chain's head".to_owned()),
                        Some(h) => a.problem(
                            ProblemKind::HeadMismatch,
                            rundir::JOURNAL,
                            Some(h.seq),
                            Some("report.json journal_head".to_owned()),
                            format!("report.json records journal_head {recorded} but the journal's head (line {}) is {}: the journal was changed or extended after the report", h.seq, h.hash),
                        ),
                        None => {}
                    },
                    _ => a.problem(ProblemKind::Malformed, rundir::REPORT_JSON, None, None, "journal_head is missing or not a sha256:<hex> digest".to_owned()),
                }
                match report.get("artifacts").and_then(|v| v.as_array()) {
                    None => a.problem(
                        ProblemKind::Malformed,
                        rundir::REPORT_JSON,
                        None,
                        None,
                        "artifacts is missing or not an array".to_owned(),
                    ),
                    Some(list) => {
                        for (i, v) in list.iter().enumerate() {
                            match serde_json::from_value::<ArtifactRecord>(v.clone()) {
                                Err(e) => a.problem(
                                    ProblemKind::Malformed,
                                    rundir::REPORT_JSON,
                                    None,
                                    Some(format!("report.json artifacts[{i}]")),
                                    format!("not an artifact record: {e}"),
                                ),
                                Ok(r) => {
                                    if r.name == "model" {
                                        model_digest = Some(r.digest);
                                    }
                                    let at = format!("report.json artifacts[{i}] ({})", r.name);
                                    a.check_digest(&r, at);
                                }
                            }
                        }
                    }
                }
            }
        },
    }

    // 3. The provenance bundle. Its statements are about the rebuilt model, so a run that never
    // produced one (non-compliant, build or training failed) has none; the journal says whether
    // a model was collected, so deleting the model's records and the bundle together is caught.
    let mut statements = 0;
    let prov = rundir::PROVENANCE;
    let had_model = model_digest.is_some() || opts.key.is_some() || journal_has_model;
    match provenance::read_bundle(&run.provenance()) {
        Err(_) if !run.provenance().exists() && !had_model => a.ok(
            prov,
            "no provenance bundle: the run produced no model to attest".to_owned(),
        ),
        Err(_) if !run.provenance().exists() => a.problem(
            ProblemKind::Missing,
            prov,
            None,
            None,
            "the provenance bundle is missing".to_owned(),
        ),
        Err(e) => a.problem(ProblemKind::Unreadable, prov, None, None, e.to_string()),
        Ok(lines) => {
            let (mut slsa, mut verdicts) = (0, 0);
            let mut subjects: Vec<(u64, String)> = Vec::new();
            for (line, parsed) in lines {
                let line = line as u64;
                let entry = match parsed {
                    Ok(e) => e,
                    Err(e) => {
                        a.problem(ProblemKind::Malformed, prov, Some(line), None, e);
                        continue;
                    }
                };
                statements += 1;
                if let Some(key) = &opts.key {
                    match &entry.envelope {
                        None => a.problem(
                            ProblemKind::Unsigned,
                            prov,
                            Some(line),
                            None,
                            "the statement is not in a signed DSSE envelope".to_owned(),
                        ),
                        Some(env) => match provenance::verify_envelope(env, key) {
                            Ok(_) => a.ok(
                                prov,
                                format!(
                                    "line {line}: signature verifies with key {}",
                                    provenance::key_id(key)
                                ),
                            ),
                            Err(e) => a.problem(
                                ProblemKind::BadSignature,
                                prov,
                                Some(line),
                                None,
                                e.to_string(),
                            ),
                        },
                    }
                }
                let st = &entry.statement;
                for p in st.problems() {
                    a.problem(ProblemKind::Malformed, prov, Some(line), None, p);
                }
                for (i, s) in st.subject.iter().enumerate() {
                    if let Some(h) = s.sha256() {
                        subjects.push((line, h.to_owned()));
                    }
                    a.check_descriptor(s, format!("{prov} line {line} subject[{i}]"));
                }
                match st.predicate_type.as_str() {
                    SLSA_PROVENANCE_V1 => {
                        slsa += 1;
                        match serde_json::from_value::<SlsaPredicate>(st.predicate.clone()) {
                            Err(e) => a.problem(
                                ProblemKind::Malformed,
                                prov,
                                Some(line),
                                None,
                                format!("not an SLSA Provenance v1 predicate: {e}"),
                            ),
                            Ok(p) => {
                                for msg in p.problems() {
                                    a.problem(ProblemKind::Malformed, prov, Some(line), None, msg);
                                }
                                for (i, rd) in
                                    p.build_definition.resolved_dependencies.iter().enumerate()
                                {
                                    a.check_descriptor(
                                        rd,
                                        format!("{prov} line {line} resolvedDependencies[{i}]"),
                                    );
                                }
                                for (i, rd) in p.run_details.byproducts.iter().enumerate() {
                                    a.check_descriptor(
                                        rd,
                                        format!("{prov} line {line} byproducts[{i}]"),
                                    );
                                }
                            }
                        }
                    }
                    VERDICT_PREDICATE_TYPE => {
                        verdicts += 1;
                        match serde_json::from_value::<VerdictPredicate>(st.predicate.clone()) {
                            Err(e) => a.problem(
                                ProblemKind::Malformed,
                                prov,
                                Some(line),
                                None,
                                format!("not a reprobox verdict predicate: {e}"),
                            ),
                            Ok(p) => {
                                for msg in p.problems() {
                                    a.problem(ProblemKind::Malformed, prov, Some(line), None, msg);
                                }
                                if let Some(v) =
                                    report_verdict.as_deref().filter(|v| *v != p.verdict)
                                {
                                    a.problem(
                                        ProblemKind::Inconsistent,
                                        rundir::REPORT_JSON,
                                        None,
                                        Some(format!("{prov} line {line} predicate.verdict")),
                                        format!("report.json says {v} but the verdict statement says {}", p.verdict),
                                    );
                                }
                                if let Some(h) = chain_head {
                                    if h.hash == p.journal.head && h.seq == p.journal.seq {
                                        a.ok(prov, format!("line {line}: verdict journal head is the chain's head"));
                                    } else {
                                        a.problem(
                                            ProblemKind::HeadMismatch,
                                            rundir::JOURNAL,
                                            Some(h.seq),
                                            Some(format!("{prov} line {line} predicate.journal")),
                                            format!("the verdict statement records journal head {} (seq {}) but the chain's head is {} (seq {})", p.journal.head, p.journal.seq, h.hash, h.seq),
                                        );
                                    }
                                }
                                if let Some(r) = &p.report {
                                    a.check_descriptor(
                                        r,
                                        format!("{prov} line {line} predicate.report"),
                                    );
                                }
                            }
                        }
                    }
                    // Other predicates are allowed and ignored (in-toto parsing rules); the two
                    // required ones are counted below, so ignoring never turns a deny into an allow.
                    _ => {}
                }
            }
            if slsa != 1 {
                a.problem(
                    ProblemKind::Malformed,
                    prov,
                    None,
                    None,
                    format!("expected 1 statement of type {SLSA_PROVENANCE_V1}, found {slsa}"),
                );
            }
            if verdicts != 1 {
                a.problem(
                    ProblemKind::Malformed,
                    prov,
                    None,
                    None,
                    format!(
                        "expected 1 statement of type {VERDICT_PREDICATE_TYPE}, found {verdicts}"
                    ),
                );
            }
            let reference = model_digest
                .map(|d| d.hex())
                .or_else(|| subjects.first().map(|s| s.1.clone()));
            if let Some(want) = reference {
                for (line, got) in &subjects {
                    if *got != want {
                        a.problem(
                            ProblemKind::Inconsistent,
                            prov,
                            Some(*line),
                            Some("report.json artifacts (model)".to_owned()),
                            format!(
                                "subject digest sha256:{got} is not the model digest sha256:{want}"
                            ),
                        );
                    }
                }
            }
        }
    }

    let report = AuditReport {
        run_dir: dir.to_owned(),
        intact: a.problems.is_empty(),
        journal: chain_head.map(|h| JournalSummary {
            lines: h.seq,
            head: h.hash,
        }),
        statements,
        signatures_checked: opts.key.is_some(),
        checks: a.checks,
        problems: a.problems,
    };
    Ok(report)
}
