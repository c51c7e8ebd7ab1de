//! Policies: the shipped files load (built in and from `policies/`, identically), invalid files
//! fail naming file, line and field, the open-data registry classifies ids, the JSON Schema has
//! not drifted, and `reprobox policy list|show` behave through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reprobox::policy::{
    self, Aggregate, DataStatus, Method, Normalization, PolicyError, PolicySet, Problem,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/policies").join(name)
}

const SHIPPED: [&str; 5] = [
    "llm-merging-2024",
    "neurips-2023-llm-efficiency",
    "sn37-b7-multichoice",
    "sn37-distilled-reasoning-3b",
    "sn37-instruct-8b",
];

#[test]
fn builtin_and_directory_agree() {
    let builtin = PolicySet::builtin().expect("builtin policies load");
    let dir = PolicySet::load_dir(&repo().join("policies")).expect("policies/ loads");
    let ids: Vec<&str> = builtin.ids().collect();
    assert_eq!(ids, SHIPPED);
    assert_eq!(dir.ids().collect::<Vec<_>>(), SHIPPED);
    for id in SHIPPED {
        let a = serde_json::to_value(builtin.get(id).unwrap()).unwrap();
        let b = serde_json::to_value(dir.get(id).unwrap()).unwrap();
        assert_eq!(
            a, b,
            "{id}: builtin and policies/ differ (rebuild after editing policies/)"
        );
    }
    assert_eq!(
        builtin.open_data().source_digest(),
        dir.open_data().source_digest()
    );
    // Every file in policies/ is built in, so the binary is self-contained.
    let files = std::fs::read_dir(repo().join("policies"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert_eq!(files, policy::BUILTIN_POLICIES.len() + 1);
}

#[test]
fn neurips_2023_numbers() {
    let set = PolicySet::builtin().unwrap();
    let p = set.get("neurips-2023-llm-efficiency").unwrap();
    assert_eq!(p.limits.train, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(p.limits.eval, Some(Duration::from_secs(2 * 3600)));
    assert!(p.limits.build_counts_toward_train());
    assert_eq!(p.limits.memory_bytes, Some(128 << 30));
    assert_eq!(p.limits.disk_bytes, Some(500 << 30));
    assert_eq!(p.sequence_length, Some(2048));
    assert_eq!(p.track_ids(), ["a100-40gb", "rtx-4090"]);
    assert!(p.gpu_approved("a100-40gb", "NVIDIA A100-SXM4-40GB"));
    assert!(p.gpu_approved("a100-40gb", "NVIDIA A100-PCIE-40GB"));
    assert!(
        !p.gpu_approved("a100-40gb", "NVIDIA A100-SXM4-80GB"),
        "80 GB is a different class"
    );
    assert!(!p.gpu_approved("a100-40gb", "NVIDIA GeForce RTX 4090"));
    assert!(p.gpu_approved("rtx-4090", "NVIDIA GeForce RTX 4090"));
    assert!(!p.gpu_approved("h100", "NVIDIA H100 80GB HBM3"));
    assert_eq!(
        p.approved_family("meta-llama/Llama-2-7b-hf")
            .map(|f| f.name.as_str()),
        Some("Llama 2")
    );
    assert_eq!(
        p.approved_family("openlm-research/open_llama_3b_v2")
            .map(|f| f.license.as_deref()),
        Some(Some("apache-2.0"))
    );
    assert!(p.approved_family("google/flan-t5-base").is_none());
    assert!(p.approved_family("meta-llama/Meta-Llama-3-8B").is_none());
    assert!(!p.base_model.allow_instruction_tuned);
    assert!(
        p.base_model
            .is_instruction_tuned("meta-llama/Llama-2-7b-chat-hf")
    );
    assert!(
        p.base_model
            .is_instruction_tuned("mistralai/Mistral-7B-Instruct-v0.1")
    );
    assert!(
        !p.base_model
            .is_instruction_tuned("mistralai/Mistral-7B-v0.1")
    );
    assert!(
        p.base_model.license_allowed("Apache-2.0") && !p.base_model.license_allowed("cc-by-nc-4.0")
    );
    assert!(p.data.open_data_only);
    assert_eq!(p.evaluation.aggregate, Aggregate::GeometricMean);
    assert!(
        p.evaluation
            .tasks
            .iter()
            .all(|t| t.method == Method::Harness && t.higher_is_better)
    );
    assert!(p.evaluation.harness.is_some());
    assert_eq!(p.sandbox, "strict");
    assert!(!p.cpu_allowed);
    assert!(p.source_digest.starts_with("sha256:") && p.source_digest.len() == 71);
}

#[test]
fn llm_merging_2024_numbers() {
    let set = PolicySet::builtin().unwrap();
    let p = set.get("llm-merging-2024").unwrap();
    assert_eq!(p.limits.train_plus_eval, Some(Duration::from_secs(3600)));
    // C§2.1: 128 GB / 500 GB are not LLM-Merging limits.
    assert_eq!((p.limits.memory_bytes, p.limits.disk_bytes), (None, None));
    assert_eq!(p.model.max_parameters, Some(8_000_000_000));
    assert!(p.base_model.require_revision);
    assert_eq!(p.base_model.uploaded_before.as_deref(), Some("2024-05-31"));
    assert!(p.gpu_approved("a6000-48gb", "NVIDIA RTX A6000"));
    assert!(!p.gpu_approved("a6000-48gb", "NVIDIA A100-SXM4-40GB"));
    assert!(p.approved_family("any/model").is_some());
    let cosmos = p.evaluation.task("cosmos_qa").unwrap();
    assert!(cosmos.tolerance.accepts(0.234, 0.234) && !cosmos.tolerance.accepts(0.234, 0.2341));
}

#[test]
fn sn37_numbers() {
    let set = PolicySet::builtin().unwrap();
    for (id, max, min, seq, bytes, tok) in [
        (
            "sn37-b7-multichoice",
            6_900_000_000u64,
            0u64,
            4096u32,
            15u64 << 30,
            Some("Xenova/gpt-4"),
        ),
        ("sn37-instruct-8b", 8_100_000_000, 0, 4096, 20 << 30, None),
        (
            "sn37-distilled-reasoning-3b",
            3_400_000_000,
            3_200_000_000,
            16_384,
            15 << 30,
            Some("Xenova/gpt-4"),
        ),
    ] {
        let p = set.get(id).unwrap();
        assert_eq!(p.model.max_parameters, Some(max), "{id}");
        assert_eq!(p.model.min_parameters, Some(min), "{id}");
        assert_eq!(p.sequence_length, Some(seq), "{id}");
        assert_eq!(p.model.max_bytes, Some(bytes), "{id}");
        assert_eq!(p.model.tokenizer.as_deref(), tok, "{id}");
        assert_eq!(p.limits.eval, Some(Duration::from_secs(720)), "{id}");
        let w = p.model.weight_norm.as_ref().unwrap();
        assert_eq!(
            (w.hard_max, w.soft_max, w.soft_fraction_max, w.tensors.len()),
            (1000.0, 200.0, 0.15, 6),
            "{id}"
        );
        assert_eq!(p.evaluation.aggregate, Aggregate::WeightedSum);
        let sum: f64 = p.evaluation.tasks.iter().map(|t| t.weight).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{id}: weights sum to {sum}");
        assert!(
            p.model.architecture_allowed("LlamaForCausalLM")
                && !p.model.architecture_allowed("Qwen2ForCausalLM"),
            "{id}"
        );
    }
    let b7 = set.get("sn37-b7-multichoice").unwrap();
    assert!(!b7.model.architecture_allowed("Phi3ForCausalLM"));
    let fineweb = b7.evaluation.task("FINEWEB").unwrap();
    assert_eq!(
        fineweb.normalization,
        Normalization::InverseExponential { ceiling: 20.0 }
    );
    assert_eq!(fineweb.weight, 0.10);
    // The combined score of S§2.5 with the S§2.6 worked value for FINEWEB loss 2.5.
    let combined = b7
        .evaluation
        .combine([
            ("SYNTHETIC_MMLU", 0.2),
            ("WORD_SORTING", 0.0391),
            ("FINEWEB", fineweb.normalization.apply(2.5)),
            ("IF_EVAL_V2", 0.3),
        ])
        .unwrap();
    let want = 0.75 * 0.2 + 0.05 * 0.0391 + 0.10 * 0.1859 + 0.10 * 0.3;
    assert!((combined - want).abs() < 1e-4, "{combined} vs {want}");
    let i8b = set.get("sn37-instruct-8b").unwrap();
    assert_eq!(i8b.evaluation.task("FINEWEB").unwrap().weight, 0.35);
    assert!(i8b.model.architecture_allowed("Phi3ForCausalLM"));
    let dr = set.get("sn37-distilled-reasoning-3b").unwrap();
    assert!(
        dr.evaluation
            .tasks
            .iter()
            .all(|t| t.method == Method::ReferenceLoss && t.normalization == Normalization::None)
    );
}

/// Every numeric value in a shipped policy carries a comment citing a section (`§`) of the
/// reference documents, as the project requires.
/// A contestant's rehearsal under any shipped policy has a short budget of its own, never the
/// real wall clock.
#[test]
fn every_shipped_policy_has_a_dry_run_budget() {
    let set = PolicySet::builtin().unwrap();
    for id in SHIPPED {
        let p = set.get(id).unwrap();
        let dry = p
            .dry_run
            .train
            .unwrap_or_else(|| panic!("{id}: no [dry_run] train"));
        let real = p
            .limits
            .train
            .or(p.limits.train_plus_eval)
            .unwrap_or(Duration::from_secs(24 * 3600));
        assert!(
            dry <= real / 6,
            "{id}: a dry run of {dry:?} against {real:?}"
        );
    }
}

#[test]
fn shipped_numbers_cite_their_source() {
    let mut missing = Vec::new();
    for (file, text) in policy::BUILTIN_POLICIES {
        for (i, line) in text.lines().enumerate() {
            let (code, comment) = line.split_once('#').unwrap_or((line, ""));
            let Some((key, value)) = code.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key == "schema_version" || key.contains(' ') || key.starts_with('[') {
                continue;
            }
            let numeric_literal = value.starts_with(|c: char| c.is_ascii_digit());
            let unit_string = value.starts_with('"')
                && value[1..].starts_with(|c: char| c.is_ascii_digit())
                && !value.contains('/');
            let inline_number = value.starts_with('{')
                && value
                    .split('=')
                    .skip(1)
                    .any(|v| v.trim_start().starts_with(|c: char| c.is_ascii_digit()));
            if (numeric_literal || unit_string || inline_number) && !comment.contains('§') {
                missing.push(format!("{file}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "numbers without a § citation:\n{}",
        missing.join("\n")
    );
}

#[test]
fn open_data_registry() {
    let set = PolicySet::builtin().unwrap();
    let reg = set.open_data();
    match reg.lookup("databricks/databricks-dolly-15k") {
        DataStatus::Known(d) => assert_eq!(d.license, "cc-by-sa-3.0"),
        other => panic!("dolly should be known open, got {other:?}"),
    }
    assert!(
        matches!(
            reg.lookup("Databricks/Databricks-Dolly-15K"),
            DataStatus::Known(_)
        ),
        "ids ignore case"
    );
    for denied in [
        "tatsu-lab/alpaca",
        "TATSU-LAB/Alpaca",
        "yahma/alpaca-cleaned",
        "anon8231489123/ShareGPT_Vicuna_unfiltered",
        "RyokoAI/ShareGPT52K",
        "vicgalle/alpaca-gpt4",
    ] {
        match reg.lookup(denied) {
            DataStatus::Denied(e) => assert!(!e.reason.is_empty(), "{denied}"),
            other => panic!("{denied} should be denied, got {other:?}"),
        }
    }
    for unknown in ["someone/my-private-data", "tatsu-lab/alpaca-eval-extra", ""] {
        assert!(
            matches!(reg.lookup(unknown), DataStatus::Unknown),
            "{unknown}"
        );
    }
    assert!(
        reg.license_is_open("cc-by-sa-3.0")
            && reg.license_is_open("Apache-2.0")
            && reg.license_is_open("odc-by")
    );
    assert!(
        !reg.license_is_open("cc-by-nc-4.0")
            && !reg.license_is_open("llama2")
            && !reg.license_is_open("other")
    );
}

/// (case name, edit of base.toml: (from, to), expected field, text on the expected line, message
/// substring). The expected line is found in the edited text, not hard-coded.
#[allow(clippy::type_complexity)]
const INVALID: &[(&str, (&str, &str), &str, &str, &str)] = &[
    (
        "unknown key",
        ("eval = \"2h\"", "eval = \"2h\"\ntrian = \"1h\""),
        "limits.trian",
        "trian =",
        "unknown field `trian`",
    ),
    (
        "unknown top-level key",
        (
            "sandbox = \"strict\"",
            "sandbox = \"strict\"\ncpu_alowed = true",
        ),
        "cpu_alowed",
        "cpu_alowed",
        "unknown field",
    ),
    (
        "bad duration",
        ("train = \"24h\"", "train = \"24 hours\""),
        "limits.train",
        "train = \"24 hours\"",
        "invalid duration",
    ),
    (
        "duration as number",
        ("train = \"24h\"", "train = 86400"),
        "limits.train",
        "train = 86400",
        "\"24h\"",
    ),
    (
        "bad size",
        ("memory = \"128GiB\"", "memory = \"128 gigs\""),
        "limits.memory",
        "memory =",
        "invalid size",
    ),
    (
        "min above max",
        ("min_parameters = 1000", "min_parameters = 3000"),
        "model.min_parameters",
        "min_parameters = 3000",
        "exceeds max_parameters",
    ),
    (
        "missing field",
        ("allow_llm_generated = false\n", ""),
        "data.allow_llm_generated",
        "[data]",
        "missing field `allow_llm_generated`",
    ),
    (
        "missing task field",
        (
            "weight = 0.25\nhigher_is_better = false\n",
            "weight = 0.25\n",
        ),
        "evaluation.tasks[1].higher_is_better",
        "[[evaluation.tasks]]\nname = \"mc\"",
        "missing field `higher_is_better`",
    ),
    (
        "missing top-level field",
        ("summary = \"A small policy for tests.\"\n", ""),
        "summary",
        "# A minimal",
        "missing field `summary`",
    ),
    (
        "toml syntax error",
        ("eval = \"2h\"", "eval = 2h"),
        "eval",
        "eval = 2h",
        "expected",
    ),
    (
        "negative weight",
        ("weight = 0.25", "weight = -0.25"),
        "evaluation.tasks[1].weight",
        "weight = -0.25",
        "positive",
    ),
    (
        "weights do not sum to 1",
        ("weight = 0.25", "weight = 0.5"),
        "evaluation.tasks",
        "[[evaluation.tasks]]",
        "sum to 1.25",
    ),
    (
        "negative tolerance",
        (
            "tolerance = { relative = 0.01 }",
            "tolerance = { relative = -0.01 }",
        ),
        "evaluation.tasks[0].tolerance.relative",
        "relative = -0.01",
        "≥ 0",
    ),
    (
        "missing ceiling",
        ("ceiling = 20.0\n", ""),
        "evaluation.tasks[0].normalization",
        "normalization = \"inverse_exponential\"",
        "needs a `ceiling`",
    ),
    (
        "unknown method",
        ("method = \"text_loss\"", "method = \"text-loss\""),
        "evaluation.tasks[0].method",
        "text-loss",
        "unknown variant",
    ),
    (
        "empty gpu list",
        ("gpus = [\"NVIDIA A100-SXM4-40GB\"]", "gpus = []"),
        "tracks[0].gpus",
        "gpus = []",
        "must not be empty",
    ),
    (
        "empty sandbox",
        ("sandbox = \"strict\"", "sandbox = \"\""),
        "sandbox",
        "sandbox = \"\"",
        "must not be empty",
    ),
    (
        "id not the file stem",
        ("id = \"base\"", "id = \"other\""),
        "id",
        "id = \"other\"",
        "does not match the file name",
    ),
    (
        "family license not allowed",
        ("license = \"apache-2.0\" }", "license = \"mit\" }"),
        "base_model.families[0].license",
        "families = [",
        "not in base_model.licenses",
    ),
    (
        "zero limit",
        ("eval = \"2h\"", "eval = \"0s\""),
        "limits.eval",
        "eval = \"0s\"",
        "greater than zero",
    ),
];

#[test]
fn invalid_policies_name_file_line_and_field() {
    let base = std::fs::read_to_string(fixture("base.toml")).unwrap();
    let path = Path::new("tests/fixtures/policies/base.toml");
    policy::parse_policy(&base, path).expect("the base fixture itself is valid");
    for (case, (from, to), field, line_text, message) in INVALID {
        assert!(base.contains(from), "{case}: base.toml lacks `{from}`");
        let text = base.replacen(from, to, 1);
        let at = text
            .find(line_text)
            .unwrap_or_else(|| panic!("{case}: `{line_text}` not in edited text"));
        let want_line = text[..at].matches('\n').count() + 1;
        let err = policy::parse_policy(&text, path)
            .err()
            .unwrap_or_else(|| panic!("{case}: should be rejected"));
        let (got_field, got_line) = match &err {
            PolicyError::Parse { field, line, .. } => (field.clone(), Some(*line)),
            PolicyError::Invalid { field, line, .. } => (field.clone(), *line),
            other => panic!("{case}: unexpected error {other}"),
        };
        let shown = err.to_string();
        assert_eq!(got_field, *field, "{case}: {shown}");
        assert_eq!(got_line, Some(want_line), "{case}: {shown}");
        assert!(
            shown.contains(message),
            "{case}: `{shown}` lacks `{message}`"
        );
        assert!(
            shown.starts_with(&format!(
                "tests/fixtures/policies/base.toml:{want_line}: `{field}`"
            )),
            "{case}: {shown}"
        );
        assert!(shown.contains("(hint: "), "{case}: {shown}");
    }
}

#[test]
fn newer_schema_is_refused_before_unknown_keys() {
    let base = std::fs::read_to_string(fixture("base.toml")).unwrap();
    let text = base.replace(
        "schema_version = 1",
        "schema_version = 2\nnew_feature = true",
    );
    let err = policy::parse_policy(&text, Path::new("base.toml")).unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::UnsupportedSchema {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("requires a newer reprobox"));
}

#[test]
fn problems_are_named_variants() {
    let base = std::fs::read_to_string(fixture("base.toml")).unwrap();
    let text = base.replace("min_parameters = 1000", "min_parameters = 3000");
    match policy::parse_policy(&text, Path::new("base.toml")) {
        Err(PolicyError::Invalid {
            problem:
                Problem::MinExceedsMax {
                    min: 3000,
                    max: 2000,
                },
            ..
        }) => {}
        other => panic!("expected MinExceedsMax, got {other:?}"),
    }
}

#[test]
fn load_dir_errors() {
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        PolicySet::load_dir(empty.path()),
        Err(PolicyError::MissingOpenData { .. })
    ));
    std::fs::copy(
        repo().join("policies/open-data.toml"),
        empty.path().join("open-data.toml"),
    )
    .unwrap();
    assert!(matches!(
        PolicySet::load_dir(empty.path()),
        Err(PolicyError::NoPolicies { .. })
    ));
    std::fs::copy(fixture("base.toml"), empty.path().join("base.toml")).unwrap();
    let set = PolicySet::load_dir(empty.path()).unwrap();
    assert_eq!(set.ids().collect::<Vec<_>>(), ["base"]);
    assert!(
        matches!(set.require("nope"), Err(PolicyError::UnknownPolicy { ref known, .. }) if known == &["base"])
    );
    assert!(matches!(
        PolicySet::load_dir(&empty.path().join("absent")),
        Err(PolicyError::MissingOpenData { .. } | PolicyError::Io { .. })
    ));
}

/// Issue 17 item 5: a policy directory's files are its own, not links to files elsewhere.
#[test]
fn a_policy_linked_from_outside_the_directory_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (dir, outside) = (t.path().join("policies"), t.path().join("elsewhere"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(
        repo().join("policies/open-data.toml"),
        dir.join("open-data.toml"),
    )
    .unwrap();
    std::fs::copy(fixture("base.toml"), outside.join("base.toml")).unwrap();
    std::os::unix::fs::symlink(outside.join("base.toml"), dir.join("base.toml")).unwrap();
    let err = PolicySet::load_dir(&dir).unwrap_err();
    assert!(matches!(err, PolicyError::SymlinkEscape { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("base.toml") && text.contains("outside") && text.contains("hint"),
        "{text}"
    );
    // Linked from inside the directory, it loads.
    std::fs::remove_file(dir.join("base.toml")).unwrap();
    std::fs::create_dir(dir.join("shared")).unwrap();
    std::fs::copy(fixture("base.toml"), dir.join("shared/base.toml")).unwrap();
    std::os::unix::fs::symlink(dir.join("shared/base.toml"), dir.join("base.toml")).unwrap();
    assert_eq!(
        PolicySet::load_dir(&dir).unwrap().ids().collect::<Vec<_>>(),
        ["base"]
    );
}

#[test]
fn open_data_rejects_closed_license_in_known_list() {
    let text = std::fs::read_to_string(repo().join("policies/open-data.toml")).unwrap();
    let bad = text.replacen(
        "license = \"cc-by-sa-3.0\"",
        "license = \"cc-by-nc-4.0\"",
        1,
    );
    let err = policy::parse_open_data(&bad, Path::new("open-data.toml")).unwrap_err();
    assert!(
        err.to_string().contains("datasets[0].license") && err.to_string().contains("cc-by-nc-4.0"),
        "{err}"
    );
    let typo = text.replacen("reason = ", "reson = ", 1);
    assert!(
        policy::parse_open_data(&typo, Path::new("open-data.toml"))
            .unwrap_err()
            .to_string()
            .contains("unknown field `reson`")
    );
}

#[test]
fn schema_has_not_drifted() {
    let path = repo().join("docs/schemas/policy.schema.json");
    let want = serde_json::to_string_pretty(&policy::policy_json_schema()).unwrap() + "\n";
    if std::env::var_os("REPROBOX_UPDATE_SCHEMAS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/schemas/policy.schema.json is stale (hint: run with REPROBOX_UPDATE_SCHEMAS=1 and commit it)"
    );
    assert!(
        want.contains("\"deny_unknown_fields\"")
            || want.contains("\"additionalProperties\": false")
    );
}

fn reprobox(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(args)
        .env_remove("REPROBOX_POLICIES")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_list() {
    let (code, out, err) = reprobox(&["policy", "list"]);
    assert_eq!(code, 0, "{err}");
    for id in SHIPPED {
        assert!(out.contains(id), "{out}");
    }
    assert!(out.lines().next().unwrap().starts_with("ID"));
    assert!(
        out.lines()
            .any(|l| l.starts_with("neurips-2023-llm-efficiency")
                && l.contains("a100-40gb,rtx-4090")
                && l.ends_with("24h")),
        "{out}"
    );

    let (code, out, _) = reprobox(&["policy", "list", "--format", "json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), SHIPPED.len());
    let neurips = rows
        .iter()
        .find(|r| r["id"] == "neurips-2023-llm-efficiency")
        .unwrap();
    assert_eq!(neurips["train_secs"], 86_400);
    assert_eq!(
        neurips["tracks"],
        serde_json::json!(["a100-40gb", "rtx-4090"])
    );
}

#[test]
fn cli_show() {
    let (code, out, err) = reprobox(&["policy", "show", "sn37-b7-multichoice", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["model"]["max_parameters"], 6_900_000_000u64);
    assert_eq!(p["limits"]["eval_secs"], 720);
    assert_eq!(
        p["evaluation"]["tasks"][2]["normalization"],
        serde_json::json!({"kind": "inverse_exponential", "ceiling": 20.0})
    );

    let (code, out, _) = reprobox(&["policy", "show", "neurips-2023-llm-efficiency"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("train 24h, eval 2h") && out.contains("memory 128GiB, disk 500GiB"),
        "{out}"
    );
    assert!(out.contains("NVIDIA A100-SXM4-40GB"));
}

#[test]
fn cli_unknown_id_exits_2_with_known_ids() {
    let (code, out, err) = reprobox(&["policy", "show", "neurips-2032"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("unknown policy `neurips-2032`"), "{err}");
    for id in SHIPPED {
        assert!(err.contains(id), "hint should list {id}: {err}");
    }
}

#[test]
fn cli_policies_dir_and_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("policies/open-data.toml"),
        dir.path().join("open-data.toml"),
    )
    .unwrap();
    std::fs::copy(fixture("base.toml"), dir.path().join("base.toml")).unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = reprobox(&["policy", "list", "--policies", d]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("base") && !out.contains("neurips"), "{out}");

    let out = Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .args(["policy", "show", "base", "--format", "json"])
        .env("REPROBOX_POLICIES", d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["id"], "base");

    // A broken file: exit 2, and the message names file, line and field.
    let text = std::fs::read_to_string(fixture("base.toml"))
        .unwrap()
        .replace("eval = \"2h\"", "eval = \"2 hours\"");
    std::fs::write(dir.path().join("base.toml"), text).unwrap();
    let (code, _, err) = reprobox(&["policy", "list", "--policies", d]);
    assert_eq!(code, 2);
    assert!(
        err.contains("base.toml:16: `limits.eval`") && err.contains("hint"),
        "{err}"
    );
}
