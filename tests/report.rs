//! The report.json contract: the committed JSON Schema matches the code, and every top-level
//! field is documented in docs/report-format.md.

use std::path::Path;

#[test]
fn committed_report_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas/report.schema.json");
    let generated =
        serde_json::to_string_pretty(&reprobox::pipeline::report_json_schema()).unwrap() + "\n";
    if std::env::var_os("REPROBOX_UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let how = "regenerate it with `REPROBOX_UPDATE_SCHEMAS=1 cargo nextest run --test report` and commit it";
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {how}", path.display()));
    if let Some((n, (want, got))) = generated
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(committed.lines().map(Some).chain(std::iter::repeat(None)))
        .take(generated.lines().count().max(committed.lines().count()))
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "{} differs from the code's schema at line {}:\n  generated: {}\n  committed: {}\n{how}",
            path.display(),
            n + 1,
            want.unwrap_or("<end of file>"),
            got.unwrap_or("<end of file>")
        );
    }
}

#[test]
fn every_report_field_is_documented() {
    let schema = reprobox::pipeline::report_json_schema();
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-format.md"),
    )
    .unwrap();
    let section = doc
        .split("## report.json")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/report-format.md has a report.json section");
    let props = schema["properties"].as_object().expect("an object schema");
    assert!(props.len() > 15, "{schema}");
    let missing: Vec<&String> = props
        .keys()
        .filter(|k| !section.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "report.json fields not documented in docs/report-format.md: {missing:?}"
    );
    assert_eq!(
        schema["title"], "reprobox report.json",
        "the schema says what it describes"
    );
}
