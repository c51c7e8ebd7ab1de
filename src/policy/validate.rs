//! Raw → domain, in one place. Reads the version first, then the strict raw types, then checks
//! every cross-field rule, each failure a named [`Problem`] with the field path and line.

use std::collections::HashSet;
use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::{PolicyError, Problem};
use super::locate::{line_of, line_of_path, path_at, table_path_covering};
use super::model::*;
use super::open_data::{DeniedEntry, OpenDataRegistry, OpenDataset};
use super::raw::{self, NormalizationKind, RawPolicy, RawTolerance, SCHEMA_VERSION, VersionOnly};

/// Deserializes `text` strictly, turning a serde error into [`PolicyError::Parse`] with the line
/// and field path.
fn parse_strict<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, PolicyError> {
    let version: VersionOnly = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
    if let Some(found) = version.schema_version
        && found > SCHEMA_VERSION
    {
        return Err(PolicyError::UnsupportedSchema {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    toml::from_str(text).map_err(|e| parse_error(text, path, &e))
}

fn parse_error(text: &str, path: &Path, err: &toml::de::Error) -> PolicyError {
    let message = err.message().trim().to_owned();
    let offset = err.span().map_or(0, |s| s.start);
    let line = line_of(text, offset);
    let at = err
        .span()
        .and_then(|s| path_at(text, s.start))
        .unwrap_or_default();
    let backticked = message.split('`').nth(1).unwrap_or("").to_owned();
    let (field, hint) = if message.starts_with("missing field") {
        // toml reports a missing field at its table's header, not at a key.
        let table = err
            .span()
            .and_then(|s| table_path_covering(text, s))
            .unwrap_or_default();
        let field = if table.is_empty() {
            backticked.clone()
        } else {
            format!("{table}.{backticked}")
        };
        (
            field,
            format!("add `{backticked}`; every policy field is described in docs/policies.md"),
        )
    } else if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        let what = if message.starts_with("unknown field") {
            "key"
        } else {
            "value"
        };
        (
            if at.is_empty() {
                backticked.clone()
            } else {
                at
            },
            format!(
                "check the spelling of this {what}: unknown {what}s are errors so that a typo never loosens a limit; the accepted ones are listed above and in docs/policies.md"
            ),
        )
    } else {
        (
            if !at.is_empty() {
                at
            } else {
                // A syntax error leaves no document to walk: name the key written on that line.
                text.lines()
                    .nth(line.saturating_sub(1))
                    .and_then(|l| l.split_once('='))
                    .map(|(k, _)| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| "(document)".to_owned())
            },
            "fix the value; docs/policies.md lists every field and the accepted forms".to_owned(),
        )
    };
    PolicyError::Parse {
        path: path.to_owned(),
        line,
        field,
        message,
        hint,
    }
}

/// `[evaluation.harness.server]`: a port, a request path that cannot smuggle a header (it goes
/// into the request line verbatim), a body only with POST, and a readiness timeout.
fn harness_server(
    c: &Checker<'_>,
    s: &raw::RawHarnessServer,
) -> Result<HarnessServer, PolicyError> {
    let f = |k: &str| format!("evaluation.harness.server.{k}");
    if s.port == 0 {
        return Err(c.fail(f("port"), Problem::Zero));
    }
    let path_ok = s.ready_path.starts_with('/')
        && s.ready_path
            .chars()
            .all(|ch| !ch.is_whitespace() && !ch.is_control());
    if !path_ok {
        return Err(c.fail(f("ready_path"), Problem::BadReadyPath(s.ready_path.clone())));
    }
    let method = s.ready_method.unwrap_or(raw::ReadyMethod::Get);
    if s.ready_body.is_some() && method != raw::ReadyMethod::Post {
        return Err(c.fail(f("ready_body"), Problem::ReadyBodyWithoutPost));
    }
    if s.ready_timeout.0.is_zero() {
        return Err(c.fail(f("ready_timeout"), Problem::Zero));
    }
    Ok(HarnessServer {
        command: s.command.clone(),
        port: s.port,
        ready_method: method,
        ready_path: s.ready_path.clone(),
        ready_body: s.ready_body.clone(),
        ready_timeout: s.ready_timeout.0,
    })
}

/// Collects the first cross-field problem with its field path.
struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    fn fail(&self, field: impl Into<String>, problem: Problem) -> PolicyError {
        let field = field.into();
        PolicyError::Invalid {
            path: self.path.to_owned(),
            line: line_of_path(self.text, &field),
            field,
            problem,
        }
    }

    fn non_empty(&self, field: &str, value: &str) -> Result<(), PolicyError> {
        if value.trim().is_empty() {
            Err(self.fail(field, Problem::Empty))
        } else {
            Ok(())
        }
    }

    fn positive_u64(&self, field: &str, value: Option<u64>) -> Result<(), PolicyError> {
        if value == Some(0) {
            Err(self.fail(field, Problem::Zero))
        } else {
            Ok(())
        }
    }

    fn tolerance(&self, field: &str, raw: Option<&RawTolerance>) -> Result<Tolerance, PolicyError> {
        let Some(raw) = raw else {
            return Ok(Tolerance::default());
        };
        for (name, v) in [("absolute", raw.absolute), ("relative", raw.relative)] {
            if let Some(v) = v
                && (!v.is_finite() || v < 0.0)
            {
                return Err(self.fail(format!("{field}.{name}"), Problem::NegativeTolerance(v)));
            }
        }
        Ok(Tolerance {
            absolute: raw.absolute,
            relative: raw.relative,
        })
    }
}

/// Whether `name`, joined to a directory, stays inside it: one or more `/`-separated plain
/// components (no `.`, `..` or empty component, no backslash, not absolute). Lexical: the
/// directory it is joined to is reprobox's own (a run's `eval/`), where a symlink is refused
/// when the file is read.
pub fn is_relative_inside(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
}

/// A sandbox profile name: the stem of `sandboxes/<name>.toml`, as the profile loader accepts it.
fn is_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A task name: a file stem (`<name>.jsonl`, `<name>.data.jsonl`), never a path.
fn is_task_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn sha256_digest(text: &str) -> String {
    crate::digest::bytes_sha256(text.as_bytes()).to_string()
}

/// Parses and validates one policy file. `path` names the file in errors and its stem must equal
/// the policy id.
pub fn parse_policy(text: &str, path: &Path) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = parse_strict(text, path)?;
    let c = Checker { text, path };
    if raw.schema_version < SCHEMA_VERSION {
        return Err(PolicyError::UnsupportedSchema {
            path: path.to_owned(),
            found: raw.schema_version,
            supported: SCHEMA_VERSION,
        });
    }

    // Identity.
    if !is_kebab(&raw.id) {
        return Err(c.fail("id", Problem::BadId(raw.id.clone())));
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if raw.id != stem {
        return Err(c.fail(
            "id",
            Problem::IdMismatch {
                id: raw.id.clone(),
                stem: stem.to_owned(),
            },
        ));
    }
    c.non_empty("name", &raw.name)?;
    c.non_empty("summary", &raw.summary)?;
    for (i, url) in raw.rules_urls.iter().enumerate() {
        if !url.starts_with("https://") || url.len() <= "https://".len() {
            return Err(c.fail(format!("rules_urls[{i}]"), Problem::BadUrl(url.clone())));
        }
    }
    c.non_empty("sandbox", &raw.sandbox)?;
    if !is_profile_name(&raw.sandbox) {
        return Err(c.fail("sandbox", Problem::BadProfileName(raw.sandbox.clone())));
    }

    // Tracks.
    if raw.tracks.is_empty() {
        return Err(c.fail("tracks", Problem::EmptyList));
    }
    let mut seen = HashSet::new();
    for (i, t) in raw.tracks.iter().enumerate() {
        if !is_kebab(&t.id) {
            return Err(c.fail(format!("tracks[{i}].id"), Problem::BadId(t.id.clone())));
        }
        if !seen.insert(t.id.as_str()) {
            return Err(c.fail(format!("tracks[{i}].id"), Problem::Duplicate(t.id.clone())));
        }
        c.non_empty(&format!("tracks[{i}].name"), &t.name)?;
        if t.gpus.is_empty() {
            return Err(c.fail(format!("tracks[{i}].gpus"), Problem::EmptyList));
        }
        for (j, g) in t.gpus.iter().enumerate() {
            c.non_empty(&format!("tracks[{i}].gpus[{j}]"), g)?;
        }
    }

    // Limits.
    let l = &raw.limits;
    for (name, d) in [
        ("build", l.build),
        ("train", l.train),
        ("eval", l.eval),
        ("train_plus_eval", l.train_plus_eval),
    ] {
        if d.is_some_and(|d| d.0.is_zero()) {
            return Err(c.fail(format!("limits.{name}"), Problem::Zero));
        }
    }
    for (name, s) in [("memory", l.memory), ("disk", l.disk), ("shm", l.shm)] {
        c.positive_u64(&format!("limits.{name}"), s.map(|s| s.0))?;
    }
    c.positive_u64("sequence_length", raw.sequence_length.map(u64::from))?;

    // Base model.
    let b = &raw.base_model;
    if b.required && (b.families.is_empty() || b.licenses.is_empty()) {
        let field = if b.families.is_empty() {
            "base_model.families"
        } else {
            "base_model.licenses"
        };
        return Err(c.fail(field, Problem::RequiredWithoutFamilies));
    }
    for (i, lic) in b.licenses.iter().enumerate() {
        c.non_empty(&format!("base_model.licenses[{i}]"), lic)?;
    }
    let any_license = b.licenses.iter().any(|l| l == "*");
    for (i, f) in b.families.iter().enumerate() {
        c.non_empty(&format!("base_model.families[{i}].name"), &f.name)?;
        c.non_empty(&format!("base_model.families[{i}].pattern"), &f.pattern)?;
        if let Some(lic) = &f.license
            && !any_license
            && !b.licenses.iter().any(|l| l.eq_ignore_ascii_case(lic))
        {
            return Err(c.fail(
                format!("base_model.families[{i}].license"),
                Problem::FamilyLicenseNotAllowed(lic.clone()),
            ));
        }
    }
    if let Some(date) = &b.uploaded_before
        && (date.len() != 10 || chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err())
    {
        return Err(c.fail("base_model.uploaded_before", Problem::BadDate(date.clone())));
    }

    // Model.
    let m = &raw.model;
    c.positive_u64("model.max_parameters", m.max_parameters)?;
    if let (Some(min), Some(max)) = (m.min_parameters, m.max_parameters)
        && min > max
    {
        return Err(c.fail("model.min_parameters", Problem::MinExceedsMax { min, max }));
    }
    c.positive_u64("model.max_bytes", m.max_bytes.map(|s| s.0))?;
    for (i, a) in m.architectures.iter().enumerate() {
        c.non_empty(&format!("model.architectures[{i}]"), a)?;
    }
    let weight_norm = match &m.weight_norm {
        None => None,
        Some(w) => {
            let ok_num = |v: f64| v.is_finite() && v > 0.0;
            if !ok_num(w.hard_max) || !ok_num(w.soft_max) || w.soft_max > w.hard_max {
                return Err(c.fail(
                    "model.weight_norm.soft_max",
                    Problem::BadWeightNorm(format!(
                        "need 0 < soft_max ({}) ≤ hard_max ({})",
                        w.soft_max, w.hard_max
                    )),
                ));
            }
            if !(0.0..=1.0).contains(&w.soft_fraction_max) {
                return Err(c.fail(
                    "model.weight_norm.soft_fraction_max",
                    Problem::BadWeightNorm(format!(
                        "soft_fraction_max {} must be within [0, 1]",
                        w.soft_fraction_max
                    )),
                ));
            }
            if w.tensors.is_empty() {
                return Err(c.fail("model.weight_norm.tensors", Problem::EmptyList));
            }
            Some(WeightNorm {
                hard_max: w.hard_max,
                soft_max: w.soft_max,
                soft_fraction_max: w.soft_fraction_max,
                tensors: w.tensors.clone(),
            })
        }
    };

    // Submission and dry run.
    let s = &raw.submission;
    for (name, v) in [
        ("max_file_bytes", s.max_file_bytes),
        ("max_context_bytes", s.max_context_bytes),
        ("undeclared_data_bytes", s.undeclared_data_bytes),
    ] {
        c.positive_u64(&format!("submission.{name}"), v.map(|v| v.0))?;
    }
    if raw.dry_run.train.is_some_and(|d| d.0.is_zero()) {
        return Err(c.fail("dry_run.train", Problem::Zero));
    }
    if let (Some(dry), Some(train)) = (raw.dry_run.train, l.train)
        && dry.0 > train.0
    {
        return Err(c.fail("dry_run.train", Problem::DryRunExceedsTrain));
    }
    c.positive_u64(
        "dry_run.eval_examples",
        raw.dry_run.eval_examples.map(u64::from),
    )?;

    // Evaluation.
    let e = &raw.evaluation;
    if e.tasks.is_empty() {
        return Err(c.fail("evaluation.tasks", Problem::EmptyList));
    }
    let mut names = HashSet::new();
    let mut tasks = Vec::with_capacity(e.tasks.len());
    for (i, t) in e.tasks.iter().enumerate() {
        let f = |name: &str| format!("evaluation.tasks[{i}].{name}");
        c.non_empty(&f("name"), &t.name)?;
        if !is_task_name(&t.name) {
            return Err(c.fail(f("name"), Problem::BadTaskName(t.name.clone())));
        }
        if !names.insert(t.name.as_str()) {
            return Err(c.fail(f("name"), Problem::Duplicate(t.name.clone())));
        }
        if !(t.weight.is_finite() && t.weight > 0.0) {
            return Err(c.fail(f("weight"), Problem::NonPositiveWeight(t.weight)));
        }
        c.positive_u64(&f("samples"), t.samples.map(u64::from))?;
        if let (Some(min), Some(samples)) = (t.min_samples, t.samples)
            && min > samples
        {
            return Err(c.fail(
                f("min_samples"),
                Problem::MinSamplesExceedsSamples { min, samples },
            ));
        }
        let normalization = match (t.normalization, t.ceiling) {
            (NormalizationKind::None, None) => Normalization::None,
            (NormalizationKind::None, Some(_)) => {
                return Err(c.fail(f("ceiling"), Problem::UnusedCeiling));
            }
            (NormalizationKind::InverseExponential, None) => {
                return Err(c.fail(f("normalization"), Problem::MissingCeiling));
            }
            (NormalizationKind::InverseExponential, Some(ceiling)) => {
                if !(ceiling.is_finite() && ceiling > 0.0) {
                    return Err(c.fail(f("ceiling"), Problem::BadCeiling(ceiling)));
                }
                Normalization::InverseExponential { ceiling }
            }
        };
        if t.method == Method::Harness && e.harness.is_none() {
            return Err(c.fail(f("method"), Problem::MissingHarness));
        }
        if let Some(d) = &t.data {
            c.non_empty(&f("data"), d)?;
        }
        if t.method != Method::TextLoss {
            if t.text_layout != TextLayout::Plain {
                return Err(c.fail(f("text_layout"), Problem::TextLossOnly("text_layout")));
            }
            if t.reasonable_output_gate {
                return Err(c.fail(
                    f("reasonable_output_gate"),
                    Problem::TextLossOnly("reasonable_output_gate"),
                ));
            }
        }
        if t.text_layout != TextLayout::Plain && raw.sequence_length.is_none() {
            return Err(c.fail(f("text_layout"), Problem::LayoutWithoutSequenceLength));
        }
        tasks.push(Task {
            name: t.name.clone(),
            method: t.method,
            data: t.data.clone(),
            samples: t.samples,
            min_samples: t.min_samples,
            weight: t.weight,
            normalization,
            tolerance: c.tolerance(&f("tolerance"), t.tolerance.as_ref())?,
            higher_is_better: t.higher_is_better,
            text_layout: t.text_layout,
            reasonable_output_gate: t.reasonable_output_gate,
        });
    }
    if e.aggregate == Aggregate::WeightedSum {
        let sum: f64 = tasks.iter().map(|t| t.weight).sum();
        if (sum - 1.0).abs() > 1e-9 {
            return Err(c.fail("evaluation.tasks", Problem::WeightsNotNormalized(sum)));
        }
    }
    let harness = match &e.harness {
        None => None,
        Some(h) => {
            c.non_empty("evaluation.harness.image", &h.image)?;
            if let Some(name) = &h.scores_file
                && !is_relative_inside(name)
            {
                return Err(c.fail(
                    "evaluation.harness.scores_file",
                    Problem::PathEscape(name.clone()),
                ));
            }
            Some(Harness {
                image: h.image.clone(),
                command: h.command.clone(),
                scores_file: h
                    .scores_file
                    .clone()
                    .unwrap_or_else(|| "scores.json".to_owned()),
                server: match &h.server {
                    None => None,
                    Some(s) => Some(harness_server(&c, s)?),
                },
            })
        }
    };
    let evaluation = Evaluation {
        aggregate: e.aggregate,
        renormalize_failed: e.renormalize_failed,
        tolerance: c.tolerance("evaluation.tolerance", e.tolerance.as_ref())?,
        tasks,
        harness,
    };

    Ok(Policy {
        id: raw.id.clone(),
        name: raw.name.clone(),
        summary: raw.summary.trim().to_owned(),
        rules_urls: raw.rules_urls.clone(),
        source_digest: sha256_digest(text),
        tracks: raw
            .tracks
            .iter()
            .map(|t| Track {
                id: t.id.clone(),
                name: t.name.clone(),
                gpus: t.gpus.clone(),
            })
            .collect(),
        limits: Limits {
            build: l.build.map(|d| d.0),
            train: l.train.map(|d| d.0),
            eval: l.eval.map(|d| d.0),
            train_plus_eval: l.train_plus_eval.map(|d| d.0),
            memory_bytes: l.memory.map(|s| s.0),
            disk_bytes: l.disk.map(|s| s.0),
            shm_bytes: l.shm.map(|s| s.0),
        },
        sequence_length: raw.sequence_length,
        base_model: BaseModelRules {
            required: b.required,
            allow_instruction_tuned: b.allow_instruction_tuned,
            require_revision: b.require_revision,
            uploaded_before: b.uploaded_before.clone(),
            licenses: b.licenses.clone(),
            families: b
                .families
                .iter()
                .map(|f| BaseFamily {
                    name: f.name.clone(),
                    pattern: f.pattern.clone(),
                    license: f.license.clone(),
                })
                .collect(),
            instruction_tuned: b.instruction_tuned.clone(),
        },
        model: ModelRules {
            min_parameters: m.min_parameters,
            max_parameters: m.max_parameters,
            architectures: m.architectures.clone(),
            max_bytes: m.max_bytes.map(|s| s.0),
            tokenizer: m.tokenizer.clone(),
            dtype: m.dtype.clone(),
            weight_norm,
        },
        data: DataRules {
            open_data_only: raw.data.open_data_only,
            allow_llm_generated: raw.data.allow_llm_generated,
        },
        submission: SubmissionRules {
            max_file_bytes: s.max_file_bytes.map(|v| v.0),
            max_context_bytes: s.max_context_bytes.map(|v| v.0),
            undeclared_data_bytes: s.undeclared_data_bytes.map(|v| v.0),
        },
        network: NetworkRules {
            build: raw.network.build,
            train: raw.network.train,
            eval: raw.network.eval,
        },
        sandbox: raw.sandbox.clone(),
        cpu_allowed: raw.cpu_allowed,
        dry_run: DryRunRules {
            train: raw.dry_run.train.map(|d| d.0),
            eval_examples: raw.dry_run.eval_examples,
        },
        evaluation,
    })
}

/// Parses and validates `open-data.toml`.
pub fn parse_open_data(text: &str, path: &Path) -> Result<OpenDataRegistry, PolicyError> {
    let raw: raw::RawOpenData = parse_strict(text, path)?;
    let c = Checker { text, path };
    if raw.schema_version < SCHEMA_VERSION {
        return Err(PolicyError::UnsupportedSchema {
            path: path.to_owned(),
            found: raw.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    if raw.open_licenses.is_empty() {
        return Err(c.fail("open_licenses", Problem::EmptyList));
    }
    for (i, l) in raw.open_licenses.iter().enumerate() {
        c.non_empty(&format!("open_licenses[{i}]"), l)?;
    }
    let mut ids = HashSet::new();
    for (i, d) in raw.datasets.iter().enumerate() {
        c.non_empty(&format!("datasets[{i}].id"), &d.id)?;
        c.non_empty(&format!("datasets[{i}].license"), &d.license)?;
        if !raw
            .open_licenses
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&d.license))
        {
            return Err(c.fail(
                format!("datasets[{i}].license"),
                Problem::LicenseNotOpen(d.license.clone()),
            ));
        }
        if !ids.insert(d.id.to_ascii_lowercase()) {
            return Err(c.fail(
                format!("datasets[{i}].id"),
                Problem::Duplicate(d.id.clone()),
            ));
        }
    }
    for (i, d) in raw.denied.iter().enumerate() {
        c.non_empty(&format!("denied[{i}].pattern"), &d.pattern)?;
        c.non_empty(&format!("denied[{i}].reason"), &d.reason)?;
    }
    Ok(OpenDataRegistry::new(
        raw.open_licenses,
        raw.datasets
            .into_iter()
            .map(|d| OpenDataset {
                id: d.id,
                license: d.license,
                notes: d.notes,
            })
            .collect(),
        raw.denied
            .into_iter()
            .map(|d| DeniedEntry {
                pattern: d.pattern,
                generated_by: d.generated_by,
                reason: d.reason,
            })
            .collect(),
        sha256_digest(text),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEURIPS: &str = include_str!("../../policies/neurips-2023-llm-efficiency.toml");

    /// The NeurIPS policy with `server` as its `[evaluation.harness.server]` table.
    fn with_server(server: &str) -> Result<Policy, PolicyError> {
        let text = NEURIPS.replace(
            "scores_file = \"scores.json\"\n",
            &format!("scores_file = \"scores.json\"\n\n[evaluation.harness.server]\n{server}\n"),
        );
        assert_ne!(text, NEURIPS, "the anchor is in the shipped policy");
        parse_policy(&text, Path::new("neurips-2023-llm-efficiency.toml"))
    }

    #[test]
    fn a_harness_server_is_parsed_with_its_defaults() {
        let p = with_server("port = 8080\nready_path = \"/tokenize\"\nready_timeout = \"90s\"")
            .unwrap();
        let s = p.evaluation.harness.unwrap().server.unwrap();
        assert_eq!(s.port, 8080);
        assert_eq!(s.ready_method, raw::ReadyMethod::Get);
        assert_eq!(s.ready_path, "/tokenize");
        assert_eq!(s.ready_body, None);
        assert!(s.command.is_empty());
        assert_eq!(s.ready_timeout, std::time::Duration::from_secs(90));
        let p = with_server(
            "command = [\"sh\", \"/srv/serve.sh\"]\nport = 80\nready_method = \"POST\"\nready_path = \"/process\"\nready_body = '{\"prompt\": \"The capital of France is \"}'\nready_timeout = \"20m\"",
        )
        .unwrap();
        let s = p.evaluation.harness.unwrap().server.unwrap();
        assert_eq!(s.ready_method, raw::ReadyMethod::Post);
        assert_eq!(s.command, ["sh", "/srv/serve.sh"]);
        assert!(s.ready_body.unwrap().contains("France"));
    }

    #[test]
    fn a_bad_harness_server_names_its_field() {
        let cases: [(&str, &str, &str); 7] = [
            (
                "port = 0\nready_path = \"/\"\nready_timeout = \"1s\"",
                "evaluation.harness.server.port",
                "greater than zero",
            ),
            (
                "port = 8080\nready_path = \"process\"\nready_timeout = \"1s\"",
                "evaluation.harness.server.ready_path",
                "request path",
            ),
            (
                "port = 8080\nready_path = \"/a b\"\nready_timeout = \"1s\"",
                "evaluation.harness.server.ready_path",
                "request path",
            ),
            (
                "port = 8080\nready_path = \"/\"\nready_body = \"{}\"\nready_timeout = \"1s\"",
                "evaluation.harness.server.ready_body",
                "POST",
            ),
            (
                "port = 8080\nready_path = \"/\"\nready_timeout = \"0s\"",
                "evaluation.harness.server.ready_timeout",
                "greater than zero",
            ),
            (
                "port = 8080\nready_path = \"/\"\nready_method = \"PUT\"\nready_timeout = \"1s\"",
                "evaluation.harness.server.ready_method",
                "unknown variant",
            ),
            (
                "port = 8080\nready_path = \"/\"\nready_timeout = \"1s\"\nhost_network = true",
                "evaluation.harness.server.host_network",
                "unknown field",
            ),
        ];
        for (table, field, says) in cases {
            let e = with_server(table).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(field), "{table}: {text}");
            assert!(text.contains(says), "{table}: {text}");
            assert!(text.contains("neurips-2023-llm-efficiency.toml:"), "{text}");
        }
        let e = with_server("ready_path = \"/\"\nready_timeout = \"1s\"").unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }

    const B7: &str = include_str!("../../policies/sn37-b7-multichoice.toml");

    #[test]
    fn text_loss_settings_are_parsed_and_refused_elsewhere() {
        let path = Path::new("sn37-b7-multichoice.toml");
        let p = parse_policy(B7, path).unwrap();
        let fineweb = p.evaluation.task("FINEWEB").unwrap();
        assert_eq!(fineweb.text_layout, TextLayout::AppendEos);
        assert!(fineweb.reasonable_output_gate);
        let mmlu = p.evaluation.task("SYNTHETIC_MMLU").unwrap();
        assert_eq!(mmlu.text_layout, TextLayout::Plain);
        assert!(!mmlu.reasonable_output_gate);

        let on_mc = B7.replace(
            "higher_is_better = false                      # fraction incorrect (S§2.1)\n",
            "higher_is_better = false\nreasonable_output_gate = true\n",
        );
        assert_ne!(on_mc, B7);
        let e = parse_policy(&on_mc, path).unwrap_err().to_string();
        assert!(
            e.contains("evaluation.tasks[0].reasonable_output_gate")
                && e.contains("`text_loss` only")
                && e.contains("hint"),
            "{e}"
        );
        let no_length = B7.replace("sequence_length = 4096", "");
        let e = parse_policy(&no_length, path).unwrap_err().to_string();
        assert!(
            e.contains("evaluation.tasks[2].text_layout") && e.contains("sequence_length"),
            "{e}"
        );
        let bad = B7.replace("\"append_eos\"", "\"pad_right\"");
        let e = parse_policy(&bad, path).unwrap_err().to_string();
        assert!(e.contains("unknown variant"), "{e}");
    }

    /// Issue 17 item 5: every name a policy resolves in a directory stays inside it; durations
    /// are strict; unknown keys are refused.
    #[test]
    fn names_that_leave_their_directory_and_loose_durations_are_refused() {
        let path = Path::new("neurips-2023-llm-efficiency.toml");
        let cases: [(&str, &str, &str, &str); 11] = [
            (
                "scores_file = \"scores.json\"",
                "scores_file = \"../../../../etc/passwd\"",
                "evaluation.harness.scores_file",
                "must stay inside",
            ),
            (
                "scores_file = \"scores.json\"",
                "scores_file = \"/etc/passwd\"",
                "evaluation.harness.scores_file",
                "must stay inside",
            ),
            (
                "scores_file = \"scores.json\"",
                "scores_file = \"out/../../x\"",
                "evaluation.harness.scores_file",
                "must stay inside",
            ),
            (
                "sandbox = \"strict\"",
                "sandbox = \"../../etc/passwd\"",
                "`sandbox`",
                "not a sandbox profile name",
            ),
            (
                "sandbox = \"strict\"",
                "sandbox = \"/etc/strict\"",
                "`sandbox`",
                "not a sandbox profile name",
            ),
            (
                "name = \"mmlu\"",
                "name = \"../mmlu\"",
                "evaluation.tasks[1].name",
                "task name",
            ),
            (
                "name = \"mmlu\"",
                "name = \".hidden\"",
                "evaluation.tasks[1].name",
                "task name",
            ),
            (
                "train = \"24h\"",
                "train = \"  24h\"",
                "limits.train",
                "spaces",
            ),
            (
                "train = \"24h\"",
                "train = \"24\"",
                "limits.train",
                "no unit",
            ),
            (
                "train = \"24h\"",
                "train = \"400d\"",
                "limits.train",
                "longer than 30d",
            ),
            (
                "sandbox = \"strict\"",
                "sandbox = \"strict\"\nsandbox_dir = \"/tmp\"",
                "sandbox_dir",
                "unknown field",
            ),
        ];
        for (from, to, field, want) in cases {
            let text = NEURIPS.replacen(from, to, 1);
            assert_ne!(
                text, NEURIPS,
                "the anchor `{from}` is in the shipped policy"
            );
            let e = parse_policy(&text, path).unwrap_err().to_string();
            assert!(
                e.contains(field) && e.contains(want) && e.contains("hint"),
                "{to}: {e}"
            );
        }
        let nested = NEURIPS.replace(
            "scores_file = \"scores.json\"",
            "scores_file = \"out/scores.json\"",
        );
        assert_eq!(
            parse_policy(&nested, path)
                .unwrap()
                .evaluation
                .harness
                .unwrap()
                .scores_file,
            "out/scores.json"
        );
    }
}
