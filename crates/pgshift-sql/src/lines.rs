//! Byte offsets to the 1-based line and column that editors and CI annotations expect.

/// A 1-based line and column; the column counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for LineCol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where each line of a text starts, for repeated offset → line:column lookups.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The line and column of a byte offset. Offsets past the end, or inside a multi-byte
    /// character, are clamped rather than trusted.
    pub fn line_col(&self, text: &str, offset: usize) -> LineCol {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = text[start..offset].chars().count() + 1;
        LineCol { line, column }
    }

    /// The byte range of a 1-based line, without its line ending.
    pub fn line_range(&self, text: &str, line: usize) -> std::ops::Range<usize> {
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        let end = self.starts.get(line).map_or(text.len(), |&next| next - 1);
        let end = if end > start && text.as_bytes().get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        start..end.max(start)
    }

    pub fn line_count(&self) -> usize {
        self.starts.len()
    }
}

/// The greatest char boundary not after `offset`.
pub fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The byte offset of the `n`-th character (1-based, as PostgreSQL reports error positions)
/// of `text`, clamped to its length.
pub fn char_position_to_offset(text: &str, position: usize) -> usize {
    text.char_indices()
        .nth(position.saturating_sub(1))
        .map_or(text.len(), |(i, _)| i)
}

/// Whether `text` contains `word` (ASCII, any case), without a lowercased copy of `text`: a
/// step's SQL can be a whole file.
pub fn contains_ignore_ascii_case(text: &str, word: &str) -> bool {
    let (text, word) = (text.as_bytes(), word.as_bytes());
    word.is_empty()
        || text
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_ignore_ascii_case_finds_a_word_in_any_case() {
        assert!(contains_ignore_ascii_case(
            "SET Search_Path TO app",
            "search_path"
        ));
        assert!(!contains_ignore_ascii_case(
            "SET search path",
            "search_path"
        ));
        assert!(!contains_ignore_ascii_case("", "x"));
    }

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let text = "ab\nçd\r\nx";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line_col(text, 0), LineCol { line: 1, column: 1 });
        assert_eq!(idx.line_col(text, 3), LineCol { line: 2, column: 1 });
        assert_eq!(
            idx.line_col(text, 5),
            LineCol { line: 2, column: 2 },
            "ç is two bytes, one column"
        );
        assert_eq!(idx.line_col(text, 8), LineCol { line: 3, column: 1 });
        assert_eq!(idx.line_col(text, 999), LineCol { line: 3, column: 2 });
        assert_eq!(&text[idx.line_range(text, 2)], "çd");
    }

    #[test]
    fn postgres_positions_are_characters() {
        assert_eq!(char_position_to_offset("é x", 3), 3);
        assert_eq!(char_position_to_offset("abc", 10), 3);
    }
}
