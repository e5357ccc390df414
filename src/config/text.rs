//! The configuration text before TOML sees it: the original's `;` comment
//! lines, line numbers, and the split into sections that a large file is
//! parsed by.

use std::collections::HashSet;
use std::ops::Range;

use toml::de::DeTable;

/// The original accepted `;` comment lines; TOML does not. Turn them into
/// `#` comments, keeping every byte offset (and so every line number).
pub fn semicolon_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(comment) = trimmed.strip_prefix(';') {
            out.push_str(&line[..line.len() - trimmed.len()]);
            out.push('#');
            out.push_str(comment);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Line numbers of byte offsets.
pub struct Lines {
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        Lines {
            starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

/// Byte ranges of the text split before each line that opens a table
/// (`[...]`), outside multi-line strings.
pub fn sections(text: &str) -> Vec<Range<usize>> {
    const BASIC: &str = "\"\"\"";
    const LITERAL: &str = "'''";
    let mut starts = vec![0];
    let mut in_string: Option<&str> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if in_string.is_none() && at > 0 && line.trim_start().starts_with('[') {
            starts.push(at);
        }
        let mut rest = line;
        loop {
            // The next delimiter that opens or closes a multi-line string.
            let next = match in_string {
                Some(d) => rest.find(d).map(|pos| (pos, d)),
                None => [BASIC, LITERAL]
                    .iter()
                    .filter_map(|d| rest.find(d).map(|pos| (pos, *d)))
                    .min(),
            };
            let Some((pos, d)) = next else { break };
            rest = &rest[pos + d.len()..];
            in_string = if in_string.is_some() { None } else { Some(d) };
        }
        at += line.len();
    }
    starts.push(text.len());
    starts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Does every section parse alone, each top-level name in one section only?
pub fn sections_stand_alone(text: &str, chunks: &[Range<usize>]) -> bool {
    let mut seen: HashSet<String> = HashSet::new();
    chunks
        .iter()
        .all(|c| match DeTable::parse(&text[c.clone()]) {
            Ok(t) => t
                .get_ref()
                .iter()
                .all(|(k, _)| seen.insert(k.get_ref().to_string())),
            Err(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_outside_multiline_strings() {
        let text = "a=1\n[x]\nk=\"\"\"\n[not a section]\n\"\"\"\n  [y]\nv='''\n[z]'''\n[w]\n";
        let parts: Vec<&str> = sections(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            parts,
            [
                "a=1\n",
                "[x]\nk=\"\"\"\n[not a section]\n\"\"\"\n",
                "  [y]\nv='''\n[z]'''\n",
                "[w]\n"
            ]
        );
    }

    #[test]
    fn semicolon_lines_become_comments_in_place() {
        let text = "a=1\n  ;x=\n;\nb=\"x;y\"\n";
        let out = semicolon_comments(text);
        assert_eq!(out, "a=1\n  #x=\n#\nb=\"x;y\"\n");
        let lines = Lines::new(&out);
        assert_eq!(
            (lines.line(0), lines.line(4), lines.line(out.len())),
            (1, 2, 5)
        );
    }
}
