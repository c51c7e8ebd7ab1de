//! Where each key of a manifest sits in its text: dotted field paths mapped to byte spans, and byte
//! offsets turned into 1-based line and column numbers.
//!
//! The typed serde pass only knows the byte span of the value it failed on, and the validation pass
//! knows only field names. One index built from toml's spanned document (`toml::de::DeTable`)
//! answers both questions: "which field is at this span?" and "on which line is this field?".

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One key or array element of the document.
#[derive(Debug, Clone)]
struct Entry {
    /// The dotted path, e.g. `datasets[1].digest` or `claims.scores."mmlu.5shot"`.
    path: String,
    /// The key's span; `None` for array elements, which have no key.
    key: Option<Range<usize>>,
    /// The value's span. For a `[table]` or `[[array]]` element this is its header.
    value: Range<usize>,
}

/// Dotted field paths of one manifest and where they are.
#[derive(Clone, Default)]
pub(crate) struct SpanIndex {
    entries: Vec<Entry>,
    /// Byte offset of the start of every line, so lookups do not rescan the text.
    line_starts: Vec<usize>,
    /// The text, kept to count characters (not bytes) for columns.
    text: String,
}

/// Short, because `LoadedManifest`'s `Debug` includes it and the full text helps no one there.
impl std::fmt::Debug for SpanIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanIndex")
            .field("fields", &self.entries.len())
            .field("lines", &self.line_starts.len())
            .finish()
    }
}

/// A 1-based line and column (the column counts characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineCol {
    pub line: u32,
    pub column: u32,
}

impl SpanIndex {
    /// Indexes every key of `root`, a document parsed from `text`.
    pub(crate) fn new(text: &str, root: Option<&DeTable<'_>>) -> SpanIndex {
        let mut index = SpanIndex {
            entries: Vec::new(),
            line_starts: line_starts(text),
            text: text.to_owned(),
        };
        if let Some(root) = root {
            index.walk_table("", root);
        }
        index
    }

    fn walk_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let path = join_key(prefix, key.get_ref());
            self.entries.push(Entry {
                path: path.clone(),
                key: Some(key.span()),
                value: value.span(),
            });
            self.walk_value(&path, value);
        }
    }

    fn walk_value(&mut self, path: &str, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Table(table) => self.walk_table(path, table),
            DeValue::Array(array) => {
                for (i, item) in array.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.entries.push(Entry {
                        path: item_path.clone(),
                        key: None,
                        value: item.span(),
                    });
                    self.walk_value(&item_path, item);
                }
            }
            _ => {}
        }
    }

    /// The span of a field's value, if the document has that field.
    pub(crate) fn value_span(&self, field: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.path == field)
            .map(|e| e.value.clone())
    }

    /// Where a field is: its value's position, or, when the document lacks the field (a default
    /// was used), the position of its nearest ancestor that is there, or the start of the file.
    pub(crate) fn locate(&self, field: &str) -> LineCol {
        let mut field = field;
        loop {
            if let Some(span) = self.value_span(field) {
                return self.line_col(span.start);
            }
            match parent(field) {
                Some(p) => field = p,
                None => return LineCol { line: 1, column: 1 },
            }
        }
    }

    /// The 1-based line of a field (the line of its key, or of an array element's start).
    pub(crate) fn line_of(&self, field: &str) -> Option<u32> {
        let entry = self.entries.iter().find(|e| e.path == field)?;
        let offset = entry.key.as_ref().unwrap_or(&entry.value).start;
        Some(self.line_col(offset).line)
    }

    /// The field at a byte span reported by toml: the key with exactly that span, else the
    /// innermost value containing it. Ties (an `[[array]]` header is the span of both the array
    /// key and its element) go to the deeper path. `None` means the document root, which toml
    /// gives an empty span (no key or value has one).
    pub(crate) fn field_at(&self, span: &Range<usize>) -> Option<&str> {
        if span.is_empty() {
            return None;
        }
        if let Some(e) = self.entries.iter().find(|e| e.key.as_ref() == Some(span)) {
            return Some(&e.path);
        }
        self.entries
            .iter()
            .filter(|e| e.value.start <= span.start && span.end <= e.value.end)
            .min_by(|a, b| {
                let len = |e: &Entry| e.value.end - e.value.start;
                len(a)
                    .cmp(&len(b))
                    .then_with(|| b.path.len().cmp(&a.path.len()))
            })
            .map(|e| e.path.as_str())
    }

    /// The line and column of a byte offset; offsets past the end clamp to the end.
    pub(crate) fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        // `line_starts` always holds 0, so the partition point is at least 1.
        let line_idx = self
            .line_starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.line_starts.get(line_idx).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        LineCol {
            line: u32::try_from(line_idx + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Appends a key to a dotted path, quoting keys that are not bare TOML keys (so `mmlu.5shot`
/// cannot be mistaken for two keys).
pub(crate) fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

/// The parent of a dotted path: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → none. Quoted keys that
/// contain `.` or `[` make this approximate, which only costs precision in error positions.
fn parent(field: &str) -> Option<&str> {
    let cut = field.rfind(['.', '['])?;
    Some(&field[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> SpanIndex {
        let doc = DeTable::parse(text).unwrap();
        SpanIndex::new(text, Some(doc.get_ref()))
    }

    #[test]
    fn lines_of_keys_tables_and_array_elements() {
        let text = "a = 1\n[t]\nk = \"v\"\n\n[[d]]\nn = 1\n[[d]]\nn = 2\n";
        let idx = index(text);
        assert_eq!(idx.line_of("a"), Some(1));
        assert_eq!(idx.line_of("t"), Some(2));
        assert_eq!(idx.line_of("t.k"), Some(3));
        assert_eq!(idx.line_of("d[0]"), Some(5));
        assert_eq!(idx.line_of("d[1].n"), Some(8));
        assert_eq!(idx.line_of("nope"), None);
        assert_eq!(idx.locate("t.k"), LineCol { line: 3, column: 5 });
        // A missing field is placed at its nearest present ancestor.
        assert_eq!(idx.locate("d[1].missing").line, 7);
        assert_eq!(idx.locate("zzz"), LineCol { line: 1, column: 1 });
    }

    #[test]
    fn field_at_prefers_exact_keys_then_the_deepest_value() {
        let text = "[[d]]\nn = 1\n[[d]]\nn = 2\n";
        let idx = index(text);
        // The second header's span is the value of `d[1]`.
        let header = idx.value_span("d[1]").unwrap();
        assert_eq!(idx.field_at(&header), Some("d[1]"));
        let first = idx.value_span("d[0]").unwrap();
        assert_eq!(idx.field_at(&first), Some("d[0]"));
        assert_eq!(idx.field_at(&(0..0)), None);
    }

    #[test]
    fn quoted_keys_and_columns_count_characters() {
        let text = "[s]\n\"mmlu.5shot\" = 1\n\"é\" = 2\n";
        let idx = index(text);
        assert_eq!(idx.line_of("s.\"mmlu.5shot\""), Some(2));
        assert_eq!(idx.locate("s.\"é\""), LineCol { line: 3, column: 7 });
        assert_eq!(join_key("", ""), "\"\"");
        assert_eq!(join_key("a", "b_c-1"), "a.b_c-1");
        assert_eq!(join_key("a", "x\"y\\z"), r#"a."x\"y\\z""#);
    }

    #[test]
    fn offsets_past_the_end_clamp() {
        let idx = SpanIndex::new("ab\ncd", None);
        assert_eq!(idx.line_col(100), LineCol { line: 2, column: 3 });
        assert_eq!(idx.line_col(0), LineCol { line: 1, column: 1 });
    }
}
