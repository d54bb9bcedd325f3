//! Parses a model's reply into edits, with no I/O.
//!
//! Two forms are accepted, anywhere in the reply and in any mix:
//!
//! ```text
//! path/to/file.py
//! <<<<<<< SEARCH
//! exact existing lines
//! =======
//! replacement lines
//! >>>>>>> REPLACE
//! ```
//!
//! (optionally inside a code fence; the path line may be wrapped in backticks or `**`,
//! and may be omitted for a second block on the same file), and unified diffs inside a
//! fence whose info string is `diff` or `patch`. An empty SEARCH section creates a new
//! file. Errors carry the 1-based reply line and are phrased for the model.

use super::Edit;
use super::diff::{Hunk, parse_unified_diff};

/// Why a reply could not be turned into edits; Display is model-facing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error(
        "your reply contained no edits: use SEARCH/REPLACE blocks (a path line, `<<<<<<< SEARCH`, the exact existing lines, `=======`, the replacement, `>>>>>>> REPLACE`) or a ```diff fence"
    )]
    NoEdits,
    #[error("line {line}: a `<<<<<<< SEARCH` block has no file path on the line before it")]
    MissingPath { line: usize },
    #[error("line {line}: the SEARCH block for {path} is not closed: expected `{expected}`")]
    Unterminated {
        line: usize,
        path: String,
        expected: &'static str,
    },
    #[error("line {line}: unexpected `{marker}` outside a SEARCH/REPLACE block")]
    StrayMarker { line: usize, marker: String },
    #[error("line {line}: malformed diff: {reason}")]
    BadDiff { line: usize, reason: String },
}

const SEARCH: &str = "<<<<<<< SEARCH";
const DIVIDER: &str = "=======";
const REPLACE: &str = ">>>>>>> REPLACE";

/// Parses every edit in `reply`, in order.
pub fn parse_edits(reply: &str) -> Result<Vec<Edit>, ParseError> {
    let lines: Vec<&str> = reply.lines().collect();
    let mut edits = Vec::new();
    let mut last_path: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if is_marker(line, SEARCH) {
            let path = path_before(&lines, i, last_path.as_deref())
                .ok_or(ParseError::MissingPath { line: i + 1 })?;
            let (edit, next) = parse_block(&lines, i, &path)?;
            edits.push(edit);
            last_path = Some(path);
            i = next;
        } else if is_marker(line, REPLACE)
            || is_marker(line, DIVIDER) && inside_block_context(&lines, i)
        {
            return Err(ParseError::StrayMarker {
                line: i + 1,
                marker: line.trim().to_owned(),
            });
        } else if let Some(lang) = fence_info(line)
            && (lang == "diff" || lang == "patch")
        {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim_start().starts_with("```"))
                .unwrap_or(lines.len());
            let body = &lines[i + 1..end];
            let parsed = parse_unified_diff(body).map_err(|(off, reason)| ParseError::BadDiff {
                line: i + 2 + off,
                reason,
            })?;
            edits.extend(
                parsed
                    .into_iter()
                    .map(|(path, hunks, new_file)| diff_edit(path, hunks, new_file)),
            );
            i = end + 1;
        } else {
            i += 1;
        }
    }
    if edits.is_empty() {
        return Err(ParseError::NoEdits);
    }
    Ok(edits)
}

fn diff_edit(path: String, hunks: Vec<Hunk>, new_file: bool) -> Edit {
    Edit::Diff {
        path,
        hunks,
        new_file,
    }
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.trim() == marker
}

/// A `=======` line is only an error when a `>>>>>>> REPLACE` follows before the next
/// SEARCH (a stray divider in prose or a Markdown heading underline is harmless).
fn inside_block_context(lines: &[&str], i: usize) -> bool {
    lines[i + 1..]
        .iter()
        .map(|l| l.trim())
        .find(|l| *l == SEARCH || *l == REPLACE)
        .is_some_and(|l| l == REPLACE)
}

/// The info string of an opening code fence (```` ```diff ```` → `diff`).
fn fence_info(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("```")?;
    Some(rest.trim())
}

/// The path for a SEARCH marker at `i`: the nearest non-blank line above it, skipping an
/// opening fence; if that line is the end of a previous block, the previous block's path.
fn path_before(lines: &[&str], i: usize, last: Option<&str>) -> Option<String> {
    let mut j = i;
    while j > 0 {
        j -= 1;
        let l = lines[j].trim();
        if l.is_empty() || l.starts_with("```") && j + 1 == i {
            continue;
        }
        if l == REPLACE || l.starts_with("```") {
            return last.map(str::to_owned);
        }
        return clean_path(l);
    }
    last.map(str::to_owned)
}

/// Strips decoration models put around paths: backticks, `**`, a trailing colon, a
/// `File:`/`Path:` prefix, a leading `#`.
fn clean_path(line: &str) -> Option<String> {
    let mut s = line.trim().trim_start_matches('#').trim();
    for prefix in ["File:", "file:", "Path:", "path:", "Filename:"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.trim();
        }
    }
    let s = s
        .trim_end_matches(':')
        .trim_matches(|c| c == '`' || c == '*' || c == '"' || c == '\'')
        .trim();
    if s.is_empty() || s.contains(char::is_whitespace) {
        None
    } else {
        Some(s.to_owned())
    }
}

/// Parses the block whose SEARCH marker is at `start`; returns the edit and the index
/// of the line after `>>>>>>> REPLACE`.
fn parse_block(lines: &[&str], start: usize, path: &str) -> Result<(Edit, usize), ParseError> {
    let unterminated = |expected| ParseError::Unterminated {
        line: start + 1,
        path: path.to_owned(),
        expected,
    };
    let divider = (start + 1..lines.len())
        .find(|&j| is_marker(lines[j], DIVIDER))
        .ok_or_else(|| unterminated(DIVIDER))?;
    if let Some(j) =
        (start + 1..divider).find(|&j| is_marker(lines[j], SEARCH) || is_marker(lines[j], REPLACE))
    {
        return Err(ParseError::StrayMarker {
            line: j + 1,
            marker: lines[j].trim().to_owned(),
        });
    }
    let end = (divider + 1..lines.len())
        .find(|&j| is_marker(lines[j], REPLACE))
        .ok_or_else(|| unterminated(REPLACE))?;
    if let Some(j) = (divider + 1..end).find(|&j| is_marker(lines[j], SEARCH)) {
        return Err(ParseError::StrayMarker {
            line: j + 1,
            marker: SEARCH.to_owned(),
        });
    }
    let edit = Edit::SearchReplace {
        path: path.to_owned(),
        search: join_lines(&lines[start + 1..divider]),
        replace: join_lines(&lines[divider + 1..end]),
    };
    Ok((edit, end + 1))
}

/// Lines back to text, each ending in `\n` (empty for no lines).
fn join_lines(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l.strip_suffix('\r').unwrap_or(l));
        s.push('\n');
    }
    s
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
