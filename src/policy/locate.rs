//! Maps between TOML byte spans, line numbers and dotted field paths (`evaluation.tasks[2].weight`),
//! so every policy error can name the file, the line and the field. Validation works on the plain
//! raw types and reports a field path; this module finds that path's line in the source text.
//! Parse errors carry a span; this module finds the field at that span.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    crate::lines::LineIndex::new(text).line(offset) as usize
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(close) = stripped.find(']') else {
                break;
            };
            if let Ok(i) = stripped[..close].parse() {
                out.push(Seg::Index(i));
            }
            rest = &stripped[close + 1..];
        }
    }
    out
}

/// The 1-based line where the field at `path` is written. When the field itself is absent, the
/// line of its nearest present ancestor (so "missing" errors point at the right table); `None`
/// when the text does not parse or nothing on the path is present.
pub fn line_of_path(text: &str, path: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let root_span = root.span();
    let mut current = DeValue::Table(root.into_inner());
    let mut best: Option<Range<usize>> = None;
    for seg in segments(path) {
        let next: Option<Spanned<DeValue<'_>>> = match seg {
            Seg::Key(k) => current.get(k).cloned(),
            Seg::Index(i) => current.get(i).cloned(),
        };
        match next {
            Some(v) => {
                // Array-of-tables entries may carry an empty span; keep the last useful one.
                let span = v.span();
                if span.end > span.start {
                    best = Some(span);
                }
                current = v.into_inner();
            }
            None => break,
        }
    }
    let span = best.unwrap_or(root_span);
    Some(line_of(text, span.start))
}

/// The dotted path of the innermost key whose key or value contains byte `offset`.
pub fn path_at(text: &str, offset: usize) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut path = String::new();
    walk_table(root.get_ref(), offset, &mut path);
    if path.is_empty() { None } else { Some(path) }
}

/// The dotted path of the table (or array-of-tables entry) that serde blames for a missing
/// field: toml reports it at the table's header span, so this finds the table whose header covers
/// `span`; `""` (the document) when none does.
pub fn table_path_covering(text: &str, span: Range<usize>) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut found = None;
    search_tables(root.get_ref(), &span, &mut String::new(), &mut found);
    Some(found.unwrap_or_default())
}

fn search_tables(
    table: &DeTable<'_>,
    span: &Range<usize>,
    path: &mut String,
    found: &mut Option<String>,
) {
    let covers = |v: &Range<usize>| v.end > v.start && v.start <= span.start && span.end <= v.end;
    for (key, value) in table.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        match value.get_ref() {
            DeValue::Table(t) => {
                if covers(&value.span()) {
                    *found = Some(path.clone());
                }
                search_tables(t, span, path, found);
            }
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        if covers(&item.span()) {
                            *found = Some(path.clone());
                        }
                        search_tables(t, span, path, found);
                        path.truncate(len);
                    }
                }
            }
            _ => {}
        }
        path.truncate(len);
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut String) {
    for (key, value) in table.iter() {
        let vspan = value.span();
        if contains(&key.span(), offset)
            || contains(&vspan, offset)
            || value_contains(value.get_ref(), offset)
        {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key.get_ref());
            walk_value(value.get_ref(), offset, path);
            return;
        }
    }
}

fn value_contains(value: &DeValue<'_>, offset: usize) -> bool {
    match value {
        DeValue::Table(t) => t.iter().any(|(k, v)| {
            contains(&k.span(), offset)
                || contains(&v.span(), offset)
                || value_contains(v.get_ref(), offset)
        }),
        DeValue::Array(a) => a
            .iter()
            .any(|v| contains(&v.span(), offset) || value_contains(v.get_ref(), offset)),
        _ => false,
    }
}

fn walk_value(value: &DeValue<'_>, offset: usize, path: &mut String) {
    match value {
        DeValue::Table(t) => walk_table(t, offset, path),
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if contains(&v.span(), offset) || value_contains(v.get_ref(), offset) {
                    path.push_str(&format!("[{i}]"));
                    walk_value(v.get_ref(), offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "id = \"x\"\n\n[limits]\ntrain = \"24h\"\n\n[[evaluation.tasks]]\nname = \"a\"\nweight = 1.0\n\n[[evaluation.tasks]]\nname = \"b\"\nweight = -1.0\n";

    #[test]
    fn lines_of_paths() {
        assert_eq!(line_of_path(DOC, "id"), Some(1));
        assert_eq!(line_of_path(DOC, "limits.train"), Some(4));
        assert_eq!(line_of_path(DOC, "evaluation.tasks[0].weight"), Some(8));
        assert_eq!(line_of_path(DOC, "evaluation.tasks[1].weight"), Some(12));
        assert_eq!(line_of_path(DOC, "evaluation.tasks[1].name"), Some(11));
    }

    #[test]
    fn paths_at_offsets() {
        let off = DOC.find("-1.0").unwrap();
        assert_eq!(
            path_at(DOC, off).as_deref(),
            Some("evaluation.tasks[1].weight")
        );
        let off = DOC.find("\"24h\"").unwrap();
        assert_eq!(path_at(DOC, off).as_deref(), Some("limits.train"));
    }

    #[test]
    fn tables_covering_spans() {
        assert_eq!(table_path_covering(DOC, 0..DOC.len()).as_deref(), Some(""));
        let at = DOC.find("[limits]").unwrap();
        assert_eq!(
            table_path_covering(DOC, at..at + 8).as_deref(),
            Some("limits")
        );
        let at = DOC.rfind("[[evaluation.tasks]]").unwrap();
        assert_eq!(
            table_path_covering(DOC, at..at + 20).as_deref(),
            Some("evaluation.tasks[1]")
        );
    }
}
