//! The one line lookup of the crate (Dockerfiles, scripts, dependency files, and the TOML spans of
//! policies and sandbox profiles): byte offsets to 1-based line numbers, by binary search over the line
//! starts. Built once per text in linear time, each lookup is `O(log lines)`, so callers that
//! report many findings in a large file never rescan it.

/// Where each line of a text starts.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// The 1-based line that holds byte `offset` (the last line for an offset past the end).
    pub fn line(&self, offset: usize) -> u32 {
        let n = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(n.max(1)).unwrap_or(u32::MAX)
    }

    /// The number of lines (a text without a final newline still counts its last line).
    pub fn lines(&self) -> usize {
        self.starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6, 99].map(|o| idx.line(o)),
            [1, 1, 2, 2, 2, 3, 4, 4]
        );
        assert_eq!(idx.lines(), 4);
        assert_eq!(LineIndex::new("").line(0), 1);
    }
}
