//! The submission manifest through its public API: the fixtures under tests/fixtures/manifests,
//! loading from a directory, line lookups, the committed JSON Schema, and a property test that
//! `parse` never panics.

use std::path::{Path, PathBuf};

use reprobox::manifest::{self, LoadedManifest, ManifestError, RelPath};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

fn parse_fixture(rel: &str) -> Result<LoadedManifest, ManifestError> {
    let path = fixtures().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    manifest::parse(&text, &path)
}

/// Every error about the file's content names the file, line and column, and ends with a hint.
fn assert_well_formed_error(err: &ManifestError) {
    let msg = err.to_string();
    assert!(msg.contains("(hint: "), "no hint in: {msg}");
    assert!(msg.ends_with(')'), "does not end with the hint: {msg}");
    assert!(
        msg.contains(&err.path().display().to_string()),
        "does not name the file: {msg}"
    );
    if let Some(loc) = err.location() {
        assert!(loc.line >= 1 && loc.column >= 1, "{loc}");
        assert!(
            msg.starts_with(&format!("{loc}: ")),
            "does not start with path:line:column: {msg}"
        );
    }
}

#[test]
fn complete_example_parses_with_every_field() {
    let loaded = parse_fixture("valid/complete.toml").unwrap();
    let m = &loaded.manifest;
    assert_eq!(m.schema_version, manifest::SCHEMA_VERSION);
    assert_eq!(m.submission.team, "lora-lions");
    assert_eq!(m.submission.policy, "neurips-2023-llm-efficiency");
    assert_eq!(m.submission.track, "a100-40gb");
    assert_eq!(m.train.dockerfile.as_str(), "Dockerfile.train");
    assert!(m.train.context.is_root());
    assert_eq!(
        m.train.command.as_deref(),
        Some(&["python3".to_owned(), "train.py".to_owned()][..])
    );
    assert_eq!(m.train.output.as_path(), Path::new("model"));
    assert_eq!(m.train.seed, Some(1234));
    let base = m.base_model.as_ref().unwrap();
    assert_eq!(base.id, "openlm-research/open_llama_3b_v2");
    assert_eq!(base.revision, "bce5d60d3b0c68318862270ec4e794d83308d80a");
    assert_eq!(base.license, "apache-2.0");
    assert_eq!(
        base.digest.unwrap().to_string(),
        "sha256:cae662172fd450bb0cd710a769079c05bfc5d8e35efa6576edc7d0377afdd4a2"
    );
    assert_eq!(m.datasets.len(), 2);
    assert_eq!(m.datasets[0].name, "dolly");
    assert_eq!(m.datasets[0].license, "cc-by-sa-3.0");
    assert!(m.datasets[0].digest.is_some());
    assert_eq!(m.datasets[1].name, "oasst1.en");
    // An absent digest is not a parse error: `check` reports it as missing_digest.
    assert_eq!(m.datasets[1].digest, None);
    assert_eq!(m.claims.scores.get("mmlu"), Some(&0.512));
    assert_eq!(m.claims.scores.get("fineweb_loss"), Some(&2.31));
    assert_eq!(
        m.claims.submitted_model.as_ref().map(RelPath::as_str),
        Some("submitted-model")
    );
    assert_eq!(loaded.root, fixtures().join("valid"));
    assert_eq!(loaded.path, fixtures().join("valid/complete.toml"));
}

#[test]
fn minimal_manifest_takes_the_defaults() {
    let m = parse_fixture("valid/minimal.toml").unwrap().manifest;
    assert_eq!(m.train.context.as_str(), ".");
    assert_eq!(m.train.output.as_str(), "model");
    assert_eq!(m.train.command, None);
    assert_eq!(m.train.seed, None);
    assert_eq!(m.base_model, None);
    assert!(m.datasets.is_empty());
    assert_eq!(m.claims.submitted_model, None);
    // A TOML integer is a valid claimed score.
    assert_eq!(m.claims.scores.get("mmlu"), Some(&1.0));
}

#[test]
fn paths_are_normalized_and_quoted_task_names_kept() {
    let loaded = parse_fixture("valid/normalized-paths.toml").unwrap();
    let m = &loaded.manifest;
    assert_eq!(m.train.dockerfile.as_str(), "docker/Dockerfile.train");
    assert_eq!(m.train.context.as_str(), ".");
    assert_eq!(m.train.output.as_str(), "out/model");
    assert_eq!(m.train.seed, Some(0));
    assert_eq!(
        m.claims.submitted_model.as_ref().map(ToString::to_string),
        Some("submitted".to_owned())
    );
    assert_eq!(m.claims.scores.get("mmlu.5shot"), Some(&-0.5));
    assert_eq!(loaded.line_of("claims.scores.\"mmlu.5shot\""), Some(20));
    assert_eq!(loaded.line_of("claims.scores.loss"), Some(21));
    assert_eq!(loaded.line_of("submission.team"), Some(4));
    assert_eq!(
        loaded.resolve(&m.train.dockerfile),
        fixtures().join("valid/docker/Dockerfile.train")
    );
    assert_eq!(loaded.resolve(&m.train.context), fixtures().join("valid"));
}

/// One malformed manifest per rule: (file, the field the error names, its line, a substring).
/// Syntax errors have no field.
#[rustfmt::skip]
const INVALID: &[(&str, Option<&str>, u32, &str)] = &[
    ("missing-schema-version", Some("schema_version"), 1, "`schema_version` is missing"),
    ("newer-schema-version", Some("schema_version"), 2, "requires reprobox ≥ 0.2.0"),
    ("schema-version-zero", Some("schema_version"), 2, "which no reprobox reads"),
    ("schema-version-string", Some("schema_version"), 2, "expected an integer from 0 to 4294967295"),
    ("unknown-top-level-field", Some("notes"), 3, "unknown field `notes`"),
    ("unknown-dataset-field", Some("datasets[1].sha"), 34, "unknown field `datasets[1].sha`"),
    ("missing-team", Some("submission.team"), 4, "missing field `submission.team`"),
    ("missing-claims", Some("claims"), 1, "missing field `claims`"),
    ("missing-dataset-id", Some("datasets[1].id"), 29, "missing field `datasets[1].id`"),
    ("empty-team", Some("submission.team"), 5, "must not be empty"),
    ("blank-policy", Some("submission.policy"), 6, "must not be empty or blank"),
    ("empty-track", Some("submission.track"), 7, "must not be empty"),
    ("absolute-dockerfile", Some("train.dockerfile"), 10, "is an absolute path"),
    ("dockerfile-is-root", Some("train.dockerfile"), 10, "not a Dockerfile"),
    ("backslash-dockerfile", Some("train.dockerfile"), 10, "contains a backslash"),
    ("parent-dir-context", Some("train.context"), 11, "has a `..` component"),
    ("empty-output", Some("train.output"), 13, "the path is empty"),
    ("absolute-output", Some("train.output"), 13, "relative to /out in the container"),
    ("empty-command", Some("train.command"), 12, "is an empty list"),
    ("empty-command-argument", Some("train.command[1]"), 12, "must not be empty"),
    ("command-not-array", Some("train.command"), 12, "expected an array"),
    ("negative-seed", Some("train.seed"), 14, "expected a non-negative integer"),
    ("float-seed", Some("train.seed"), 14, "write it as a non-negative integer"),
    ("empty-base-model-license", Some("base_model.license"), 19, "must not be empty"),
    ("short-base-model-digest", Some("base_model.digest"), 20, "is not a digest"),
    ("uppercase-dataset-digest", Some("datasets[0].digest"), 27, "lowercase hex"),
    ("duplicate-dataset-name", Some("datasets[1].name"), 30, "already used by `datasets[0]`"),
    ("unsafe-dataset-name", Some("datasets[1].name"), 30, "not a safe directory name"),
    ("hidden-dataset-name", Some("datasets[1].name"), 30, "not starting with `.`"),
    ("nan-score", Some("claims.scores.mmlu"), 36, "is not a finite number"),
    ("infinite-score", Some("claims.scores.fineweb_loss"), 36, "`-inf` is not a finite number"),
    ("string-score", Some("claims.scores.mmlu"), 36, "expected a number"),
    ("no-scores", Some("claims.scores"), 36, "no claimed scores"),
    ("empty-task-name", Some("claims.scores.\"\""), 36, "must not be empty"),
    ("parent-dir-submitted-model", Some("claims.submitted_model"), 37, "has a `..` component"),
    ("wrong-type-table", Some("submission"), 4, "expected a table"),
    ("syntax-error", None, 7, "invalid TOML"),
    ("duplicate-key", None, 15, "duplicate key"),
];

#[test]
fn each_invalid_fixture_names_its_field_and_line() {
    let mut failures = Vec::new();
    for &(name, field, line, needle) in INVALID {
        let file = format!("invalid/{name}.toml");
        let err = match parse_fixture(&file) {
            Ok(_) => {
                failures.push(format!("{file}: parsed, but should fail"));
                continue;
            }
            Err(e) => e,
        };
        assert_well_formed_error(&err);
        let msg = err.to_string();
        if err.field() != field {
            failures.push(format!(
                "{file}: field {:?}, want {field:?}: {msg}",
                err.field()
            ));
        }
        if let Some(field) = field
            && !msg.contains(&format!("`{field}`"))
        {
            failures.push(format!("{file}: message does not name `{field}`: {msg}"));
        }
        if err.line() != Some(line) {
            failures.push(format!("{file}: line {:?}, want {line}: {msg}", err.line()));
        }
        if !msg.contains(&format!("{name}.toml:{line}:")) {
            failures.push(format!(
                "{file}: message lacks `{name}.toml:{line}:`: {msg}"
            ));
        }
        if !msg.contains(needle) {
            failures.push(format!("{file}: message lacks {needle:?}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_fixture_is_in_the_table() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures().join("invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = INVALID.iter().map(|c| format!("{}.toml", c.0)).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn newer_schema_is_reported_before_unknown_fields() {
    // The fixture also has a key schema 1 does not know; the version pass must win.
    let err = parse_fixture("invalid/newer-schema-version.toml").unwrap_err();
    assert!(
        matches!(err, ManifestError::NewerSchemaVersion { found: 2, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("requires reprobox ≥ "), "{msg}");
    assert!(!msg.contains("requires_gpu"), "{msg}");
    let err = manifest::parse("schema_version = 77\n", Path::new("x/reprobox.toml")).unwrap_err();
    assert!(err.to_string().contains(&format!(
        "requires reprobox ≥ {}",
        manifest::required_reprobox(77)
    )));
}

#[test]
fn unknown_fields_are_rejected_in_every_table() {
    let complete = std::fs::read_to_string(fixtures().join("valid/complete.toml")).unwrap();
    for (header, field) in [
        ("[submission]", "submission.typo"),
        ("[train]", "train.typo"),
        ("[base_model]", "base_model.typo"),
        ("[[datasets]]", "datasets[0].typo"),
        ("[claims]", "claims.typo"),
    ] {
        // After the header line (which may end with a comment).
        let at = complete.find(header).unwrap();
        let eol = at + complete[at..].find('\n').unwrap() + 1;
        let text = format!("{}typo = 1\n{}", &complete[..eol], &complete[eol..]);
        let err = manifest::parse(&text, Path::new("reprobox.toml")).unwrap_err();
        assert!(matches!(err, ManifestError::UnknownField { .. }), "{err:?}");
        assert_eq!(err.field(), Some(field));
        assert_well_formed_error(&err);
    }
}

#[test]
fn line_of_finds_tables_keys_and_array_elements() {
    let loaded = parse_fixture("valid/complete.toml").unwrap();
    assert_eq!(loaded.line_of("schema_version"), Some(2));
    assert_eq!(loaded.line_of("submission"), Some(4));
    assert_eq!(loaded.line_of("train"), Some(9));
    assert_eq!(loaded.line_of("train.seed"), Some(14));
    assert_eq!(loaded.line_of("base_model.license"), Some(19));
    assert_eq!(loaded.line_of("datasets[0]"), Some(22));
    assert_eq!(loaded.line_of("datasets[0].license"), Some(26));
    assert_eq!(loaded.line_of("datasets[1].name"), Some(30));
    assert_eq!(loaded.line_of("claims.scores.mmlu"), Some(36));
    assert_eq!(loaded.line_of("claims.submitted_model"), Some(37));
    assert_eq!(loaded.line_of("datasets[1].digest"), None);
    assert_eq!(loaded.line_of("nope"), None);
}

#[test]
fn manifest_serializes_for_reports() {
    let m = parse_fixture("valid/complete.toml").unwrap().manifest;
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["train"]["dockerfile"], "Dockerfile.train");
    assert_eq!(
        json["base_model"]["digest"],
        "sha256:cae662172fd450bb0cd710a769079c05bfc5d8e35efa6576edc7d0377afdd4a2"
    );
    assert_eq!(json["datasets"][1]["digest"], serde_json::Value::Null);
    assert_eq!(json["claims"]["scores"]["mmlu"], 0.512);
}

#[test]
fn load_reads_the_manifest_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let complete = std::fs::read(fixtures().join("valid/complete.toml")).unwrap();
    std::fs::write(dir.path().join(manifest::FILE_NAME), &complete).unwrap();
    let loaded = manifest::load(dir.path()).unwrap();
    assert_eq!(loaded.root, dir.path());
    assert_eq!(loaded.path, dir.path().join("reprobox.toml"));
    assert_eq!(loaded.manifest.submission.team, "lora-lions");
}

#[test]
fn load_errors_name_the_file_and_end_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let err = manifest::load(dir.path()).unwrap_err();
    assert!(matches!(err, ManifestError::NotFound { .. }), "{err:?}");
    assert_eq!(err.path(), dir.path().join("reprobox.toml"));
    assert_well_formed_error(&err);

    let file = dir.path().join(manifest::FILE_NAME);
    std::fs::write(&file, "schema_version = 1\n").unwrap();
    let err = manifest::load(&file).unwrap_err();
    assert!(
        matches!(err, ManifestError::NotADirectory { .. }),
        "{err:?}"
    );
    assert_well_formed_error(&err);

    std::fs::write(&file, b"schema_version = 1\n\n# caf\xe9\n").unwrap();
    let err = manifest::load(dir.path()).unwrap_err();
    assert!(matches!(err, ManifestError::NotUtf8 { .. }), "{err:?}");
    assert_eq!(err.line(), Some(3));
    assert_eq!(err.location().unwrap().column, 6);
    assert_well_formed_error(&err);

    let big = vec![b'#'; usize::try_from(manifest::MAX_MANIFEST_BYTES).unwrap() + 1];
    std::fs::write(&file, big).unwrap();
    let err = manifest::load(dir.path()).unwrap_err();
    assert!(matches!(err, ManifestError::TooLarge { .. }), "{err:?}");
    assert_well_formed_error(&err);
}

#[test]
fn submission_root_is_the_manifest_directory() {
    let text = std::fs::read_to_string(fixtures().join("valid/minimal.toml")).unwrap();
    let loaded = manifest::parse(&text, Path::new("reprobox.toml")).unwrap();
    assert_eq!(loaded.root, Path::new("."));
    let loaded = manifest::parse(&text, Path::new("subs/a/reprobox.toml")).unwrap();
    assert_eq!(loaded.root, Path::new("subs/a"));
}

/// Rewrites the committed schema with REPROBOX_UPDATE_SCHEMAS=1; otherwise fails on any
/// difference, showing the first differing line.
#[test]
fn committed_json_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas/manifest.schema.json");
    let generated = serde_json::to_string_pretty(&manifest::json_schema()).unwrap() + "\n";
    if std::env::var_os("REPROBOX_UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let how = "regenerate it with `REPROBOX_UPDATE_SCHEMAS=1 cargo nextest run --test manifest committed_json_schema` and commit it";
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {how}", path.display()));
    if committed != generated {
        let (n, (want, got)) = generated
            .lines()
            .map(Some)
            .chain(std::iter::repeat(None))
            .zip(committed.lines().map(Some).chain(std::iter::repeat(None)))
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .unwrap_or((0, (None, None)));
        panic!(
            "{} differs from the schema generated from the code, first at line {}:\n  generated: {}\n  committed: {}\n{how}",
            path.display(),
            n + 1,
            want.unwrap_or("<end of file>"),
            got.unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn json_schema_rejects_unknown_keys_everywhere() {
    let schema = manifest::json_schema();
    assert_eq!(schema["additionalProperties"], false);
    let required = schema["required"].as_array().unwrap();
    for key in ["schema_version", "submission", "train", "claims"] {
        assert!(required.iter().any(|r| r == key), "{key} not required");
    }
    let defs = schema["$defs"].as_object().unwrap();
    let mut objects = 0;
    for (name, def) in defs {
        if def["type"] == "object" {
            objects += 1;
            assert_eq!(def["additionalProperties"], false, "$defs/{name}");
        }
    }
    // submission, train, base_model, dataset, claims.
    assert_eq!(objects, 5, "{defs:?}");
    // TOML has no null: optional fields are absent, never `null`.
    assert!(!schema.to_string().contains("\"default\":null"), "{schema}");
    assert_eq!(
        defs["DatasetInput"]["properties"]["digest"]["$ref"],
        "#/$defs/Sha256Digest"
    );
    assert_eq!(defs["Train"]["properties"]["output"]["default"], "model");
    assert_eq!(defs["Train"]["properties"]["context"]["default"], ".");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn valid_texts() -> Vec<String> {
        [
            "valid/complete.toml",
            "valid/minimal.toml",
            "valid/normalized-paths.toml",
        ]
        .iter()
        .map(|f| std::fs::read_to_string(fixtures().join(f)).unwrap())
        .collect()
    }

    /// What must hold for any input: no panic, and either a manifest that keeps the invariants
    /// or a well-formed error.
    fn check(text: &str) {
        let path = Path::new("sub/reprobox.toml");
        match manifest::parse(text, path) {
            Ok(loaded) => {
                let m = &loaded.manifest;
                assert_eq!(m.schema_version, manifest::SCHEMA_VERSION);
                for p in [&m.train.dockerfile, &m.train.context, &m.train.output]
                    .into_iter()
                    .chain(m.claims.submitted_model.as_ref())
                {
                    assert_eq!(RelPath::parse(p.as_str()).as_ref(), Ok(p));
                    assert!(
                        !p.as_str().starts_with('/') && !p.as_str().split('/').any(|c| c == "..")
                    );
                }
                let mut names: Vec<_> = m.datasets.iter().map(|d| d.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), m.datasets.len());
                assert!(!m.claims.scores.is_empty());
                assert!(m.claims.scores.values().all(|v| v.is_finite()));
                assert!(!m.submission.team.trim().is_empty());
            }
            Err(err) => {
                assert_well_formed_error(&err);
                let lines = u32::try_from(text.lines().count()).unwrap() + 1;
                assert!(
                    err.line().unwrap() <= lines,
                    "{err} (text has {lines} lines)"
                );
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Delete { at: usize, len: usize },
        Insert { at: usize, text: String },
        ReplaceValue { line: usize, value: String },
        DuplicateLine { line: usize },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let toml_value = prop_oneof![
            Just("nan".to_owned()),
            Just("-inf".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"/abs\"".to_owned()),
            Just("\"../up\"".to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just("-1".to_owned()),
            Just("1979-05-27T07:32:00Z".to_owned()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            "\"[ -~]{0,12}\"",
            "[\\PC]{0,8}",
        ];
        prop_oneof![
            (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
            (any::<usize>(), "[\\[\\]{}=\"'#.,\\n a-z0-9]{0,12}")
                .prop_map(|(at, text)| Mutation::Insert { at, text }),
            (any::<usize>(), toml_value)
                .prop_map(|(line, value)| Mutation::ReplaceValue { line, value }),
            any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        ]
    }

    /// Applies a mutation at character boundaries, so the result stays a `str`.
    fn apply(text: &str, m: &Mutation) -> String {
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let pick = |i: usize| bounds[i % bounds.len()];
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        match m {
            Mutation::Delete { at, len } => {
                let start = at % bounds.len();
                let end = (start + len).min(bounds.len() - 1);
                format!("{}{}", &text[..bounds[start]], &text[bounds[end]..])
            }
            Mutation::Insert { at, text: ins } => {
                let at = pick(*at);
                format!("{}{ins}{}", &text[..at], &text[at..])
            }
            Mutation::ReplaceValue { line, value } => {
                if lines.is_empty() {
                    return text.to_owned();
                }
                let n = line % lines.len();
                if let Some((key, _)) = lines[n].split_once('=') {
                    lines[n] = format!("{key}= {value}");
                }
                lines.join("\n")
            }
            Mutation::DuplicateLine { line } => {
                if lines.is_empty() {
                    return text.to_owned();
                }
                let n = line % lines.len();
                let dup = lines[n].clone();
                lines.insert(n, dup);
                lines.join("\n")
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn arbitrary_strings_never_panic(text in "\\PC{0,300}") {
            check(&text);
        }

        #[test]
        fn toml_like_strings_never_panic(text in "(schema_version = [0-9]\n)?(\\[[a-z_.\\[\\]]{1,12}\\]\n)?([a-z_]{1,10} = (\"[ -~]{0,10}\"|[0-9.e+-]{1,6}|nan|inf|\\[\\]|\\{\\})\n){0,6}") {
            check(&text);
        }

        #[test]
        fn mutated_valid_manifests_never_panic(
            which in 0usize..3,
            mutations in proptest::collection::vec(mutation(), 1..4),
        ) {
            let mut text = valid_texts()[which].clone();
            for m in &mutations {
                text = apply(&text, m);
            }
            check(&text);
        }
    }
}
