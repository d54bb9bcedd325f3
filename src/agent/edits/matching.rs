//! Locating a SEARCH block in a file, and finding the closest region when it is absent.
//!
//! Exact matching is the rule. Two tolerances are applied, each only when exact
//! matching found nothing, and only when the tolerant match is unique:
//! - **Line endings**: the file is compared line by line with `\r\n` and `\n` treated as
//!   the same terminator. Line endings carry no meaning to the model, which never sees
//!   `\r`; the replacement is written with the file's own line ending.
//! - **Trailing whitespace**: lines are compared with trailing spaces/tabs trimmed. The
//!   matched lines are replaced wholesale by the model's replacement, so whitespace the
//!   model did not see is only ever dropped from lines it rewrote, never elsewhere.
//!
//! Indentation and any other difference are never tolerated: in Python, YAML or
//! Makefiles they change meaning.

/// Splits text into lines without their terminators (`\n` or `\r\n`).
pub fn split_lines(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// Where a SEARCH block matched: a line range `start..end` (0-based, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMatch {
    pub start: usize,
    pub end: usize,
    pub tolerance: Tolerance,
}

/// Which comparison found the match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    Exact,
    TrailingWhitespace,
}

/// Outcome of looking for a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    One(LineMatch),
    /// 1-based start lines of every exact occurrence.
    Many(Vec<usize>),
    None,
}

/// Finds `search` (lines) in `file` (lines): exact (modulo line terminators) first, then
/// trailing-whitespace-insensitive.
pub fn find(file: &[&str], search: &[&str]) -> Found {
    let exact = positions(file, search, |a, b| a == b);
    match exact.len() {
        1 => {
            return Found::One(LineMatch {
                start: exact[0],
                end: exact[0] + search.len(),
                tolerance: Tolerance::Exact,
            });
        }
        n if n > 1 => return Found::Many(exact.iter().map(|p| p + 1).collect()),
        _ => {}
    }
    let loose = positions(file, search, |a, b| a.trim_end() == b.trim_end());
    match loose.len() {
        1 => Found::One(LineMatch {
            start: loose[0],
            end: loose[0] + search.len(),
            tolerance: Tolerance::TrailingWhitespace,
        }),
        n if n > 1 => Found::Many(loose.iter().map(|p| p + 1).collect()),
        _ => Found::None,
    }
}

fn positions(file: &[&str], search: &[&str], eq: impl Fn(&str, &str) -> bool) -> Vec<usize> {
    if search.is_empty() || search.len() > file.len() {
        return Vec::new();
    }
    (0..=file.len() - search.len())
        .filter(|&p| search.iter().enumerate().all(|(k, s)| eq(file[p + k], s)))
        .collect()
}

/// Largest file (in lines) for which the closest-region search runs; beyond it the
/// error still names the file, without a suggestion.
const MAX_CLOSEST_LINES: usize = 50_000;

/// The window of `search.len()` lines most similar to `search`, as
/// `(1-based start line, rendered snippet with line numbers)`.
pub fn closest_region(file: &[&str], search: &[&str]) -> Option<(usize, String)> {
    if file.is_empty() || search.is_empty() || file.len() > MAX_CLOSEST_LINES {
        return None;
    }
    let width = search.len().min(file.len());
    let anchors: Vec<Vec<&str>> = search.iter().map(|s| words(s)).collect();
    let line_words: Vec<Vec<&str>> = file.iter().map(|l| words(l)).collect();
    let mut best = (0.0, 0usize);
    for start in 0..=file.len() - width {
        let score: f64 = (0..width)
            .map(|k| similarity(&line_words[start + k], &anchors[k]))
            .sum();
        if score > best.0 {
            best = (score, start);
        }
    }
    if best.0 <= 0.0 {
        return None;
    }
    let (_, start) = best;
    Some((start + 1, render(file, start, start + width)))
}

/// Lines `start..end` as `  42 | text`.
pub fn render(file: &[&str], start: usize, end: usize) -> String {
    let w = end.to_string().len();
    file[start..end]
        .iter()
        .enumerate()
        .map(|(k, l)| format!("{:>w$} | {l}\n", start + k + 1))
        .collect()
}

fn words(line: &str) -> Vec<&str> {
    line.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect()
}

/// Dice coefficient over word multisets; 1.0 for two blank lines.
fn similarity(a: &[&str], b: &[&str]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.5;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut used = vec![false; b.len()];
    let mut common = 0usize;
    for w in a {
        if let Some(k) = (0..b.len()).find(|&k| !used[k] && b[k] == *w) {
            used[k] = true;
            common += 1;
        }
    }
    2.0 * common as f64 / (a.len() + b.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_handles_crlf_and_final_newline() {
        assert_eq!(split_lines("a\r\nb\n"), ["a", "b"]);
        assert_eq!(split_lines("a\nb"), ["a", "b"]);
        assert_eq!(split_lines("a\n\n"), ["a", ""]);
        assert!(split_lines("").is_empty());
    }

    #[test]
    fn exact_match_wins_and_duplicates_are_reported() {
        let file = ["x = 1", "y = 2", "x = 1"];
        assert_eq!(
            find(&file, &["y = 2"]),
            Found::One(LineMatch {
                start: 1,
                end: 2,
                tolerance: Tolerance::Exact
            })
        );
        assert_eq!(find(&file, &["x = 1"]), Found::Many(vec![1, 3]));
    }

    #[test]
    fn trailing_whitespace_is_tolerated_but_indentation_is_not() {
        let file = ["def f():   ", "    return 1"];
        let m = find(&file, &["def f():", "    return 1"]);
        assert_eq!(
            m,
            Found::One(LineMatch {
                start: 0,
                end: 2,
                tolerance: Tolerance::TrailingWhitespace
            })
        );
        assert_eq!(find(&file, &["def f():", "  return 1"]), Found::None);
    }

    #[test]
    fn closest_region_points_at_the_most_similar_lines() {
        let file = [
            "import os",
            "",
            "def load(path):",
            "    with open(path) as f:",
            "        return f.read()",
            "",
            "def save(): pass",
        ];
        let (line, snippet) = closest_region(
            &file,
            &["def load(path, mode):", "    with open(path) as f:"],
        )
        .unwrap();
        assert_eq!(line, 3);
        assert_eq!(
            snippet,
            "3 | def load(path):\n4 |     with open(path) as f:\n"
        );
    }

    #[test]
    fn closest_region_of_unrelated_text_is_none() {
        assert!(closest_region(&["alpha"], &["omega"]).is_none());
    }
}
