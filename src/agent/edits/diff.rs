//! Unified diffs: parsing the text of a ```` ```diff ```` fence into per-file hunks, and
//! applying hunks to a file's text. Pure functions.
//!
//! Models get hunk line numbers and counts wrong far more often than the lines
//! themselves, so counts are ignored (a hunk runs until the next header) and a hunk is
//! placed by *content*: the exact old lines, searched nearest to the stated line and after
//! the previous hunk. A hunk whose old lines appear nowhere is an error naming the hunk,
//! which the caller turns into a closest-match message for the model.

use super::matching::split_lines;

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HunkLine {
    Context(String),
    Remove(String),
    Add(String),
}

/// One `@@` hunk. `old_start` is 1-based as written (0 when the header had no numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub old_start: u32,
    pub lines: Vec<HunkLine>,
}

impl Hunk {
    /// The lines the hunk expects to find (context and removals).
    pub fn old_lines(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                HunkLine::Context(s) | HunkLine::Remove(s) => Some(s.as_str()),
                HunkLine::Add(_) => None,
            })
            .collect()
    }

    /// The lines the hunk leaves behind (context and additions).
    pub fn new_lines(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                HunkLine::Context(s) | HunkLine::Add(s) => Some(s.as_str()),
                HunkLine::Remove(_) => None,
            })
            .collect()
    }
}

/// `(path, hunks, new_file)` per file in a diff.
pub type FileDiff = (String, Vec<Hunk>, bool);

/// Parses the body of a diff fence. Errors are `(line offset within body, reason)`.
pub fn parse_unified_diff(body: &[&str]) -> Result<Vec<FileDiff>, (usize, String)> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let line = body[i];
        if let Some(old) = line.strip_prefix("--- ")
            && let Some(new) = body.get(i + 1).and_then(|l| l.strip_prefix("+++ "))
        {
            let (old, new) = (header_path(old), header_path(new));
            if new == "/dev/null" {
                return Err((
                    i,
                    format!("deleting {old} is not supported; edit its contents instead"),
                ));
            }
            let new_file = old == "/dev/null";
            let path = strip_prefix_pair(&old, &new, new_file);
            files.push((path, Vec::new(), new_file));
            i += 2;
        } else if line.starts_with("@@") {
            let Some(file) = files.last_mut() else {
                return Err((
                    i,
                    "a hunk (`@@`) appears before any `---`/`+++` file header".to_owned(),
                ));
            };
            let (hunk, next) = parse_hunk(body, i);
            file.1.push(hunk);
            i = next;
        } else {
            i += 1;
        }
    }
    if let Some((path, _, _)) = files.iter().find(|f| f.1.is_empty()) {
        return Err((0, format!("the diff for {path} has no hunks")));
    }
    Ok(files)
}

/// Drops a trailing tab-separated timestamp and surrounding whitespace.
fn header_path(raw: &str) -> String {
    raw.split('\t').next().unwrap_or(raw).trim().to_owned()
}

/// `a/x` + `b/x` → `x` (git's prefixes); otherwise the new path as written.
fn strip_prefix_pair(old: &str, new: &str, new_file: bool) -> String {
    let old_ok = new_file || old.starts_with("a/");
    match new.strip_prefix("b/") {
        Some(rest) if old_ok => rest.to_owned(),
        _ => new.to_owned(),
    }
}

fn parse_hunk(body: &[&str], header_at: usize) -> (Hunk, usize) {
    let old_start = body[header_at]
        .trim_start_matches('@')
        .split_whitespace()
        .find_map(|t| t.strip_prefix('-'))
        .and_then(|t| t.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut lines = Vec::new();
    let mut i = header_at + 1;
    while i < body.len() {
        let l = body[i];
        if l.starts_with("@@") || is_file_header(body, i) {
            break;
        }
        match l.as_bytes().first() {
            Some(b'+') => lines.push(HunkLine::Add(l[1..].to_owned())),
            Some(b'-') => lines.push(HunkLine::Remove(l[1..].to_owned())),
            Some(b' ') => lines.push(HunkLine::Context(l[1..].to_owned())),
            Some(b'\\') => {} // "\ No newline at end of file"
            None => lines.push(HunkLine::Context(String::new())),
            Some(_) if l.starts_with("diff ") || l.starts_with("index ") => break,
            // Models sometimes drop the leading space of a context line.
            Some(_) => lines.push(HunkLine::Context(l.to_owned())),
        }
        i += 1;
    }
    // Blank lines trailing a hunk are usually the gap before prose, not context.
    while matches!(lines.last(), Some(HunkLine::Context(s)) if s.is_empty()) {
        lines.pop();
    }
    (Hunk { old_start, lines }, i)
}

fn is_file_header(body: &[&str], i: usize) -> bool {
    body[i].starts_with("--- ") && body.get(i + 1).is_some_and(|n| n.starts_with("+++ "))
}

/// Why a hunk could not be placed: its index and its expected old text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HunkMismatch {
    pub hunk: usize,
    pub old_text: String,
}

/// Applies hunks in order. New lines take the file's line ending (CRLF files stay CRLF).
/// Matching ignores only the line terminator, then, if that fails, trailing whitespace.
pub fn apply_hunks(content: &str, hunks: &[Hunk]) -> Result<String, HunkMismatch> {
    let eol = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let had_final_newline = content.is_empty() || content.ends_with('\n');
    let mut lines: Vec<String> = split_lines(content)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut cursor = 0usize;
    let mut offset: isize = 0;
    for (n, h) in hunks.iter().enumerate() {
        let old = h.old_lines();
        let new: Vec<String> = h.new_lines().into_iter().map(str::to_owned).collect();
        let expected = (h.old_start as isize - 1 + offset).max(0) as usize;
        let pos = if old.is_empty() {
            Some(expected.clamp(cursor, lines.len()))
        } else {
            find_block(&lines, &old, cursor, expected, |a, b| a == b).or_else(|| {
                find_block(&lines, &old, cursor, expected, |a, b| {
                    a.trim_end() == b.trim_end()
                })
            })
        };
        let Some(pos) = pos else {
            return Err(HunkMismatch {
                hunk: n,
                old_text: old.iter().map(|l| format!("{l}\n")).collect(),
            });
        };
        lines.splice(pos..pos + old.len(), new.iter().cloned());
        cursor = pos + new.len();
        offset += new.len() as isize - old.len() as isize;
    }
    let mut out = lines.join(eol);
    if had_final_newline && !lines.is_empty() {
        out.push_str(eol);
    }
    Ok(out)
}

/// The start of `old` in `lines` at or after `from`, nearest to `expected`.
fn find_block(
    lines: &[String],
    old: &[&str],
    from: usize,
    expected: usize,
    eq: impl Fn(&str, &str) -> bool,
) -> Option<usize> {
    if old.len() > lines.len() {
        return None;
    }
    (from..=lines.len() - old.len())
        .filter(|&p| old.iter().enumerate().all(|(k, o)| eq(&lines[p + k], o)))
        .min_by_key(|&p| p.abs_diff(expected))
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
