//! Applies edits to a work tree, all or nothing.
//!
//! Phase 1 (plan) validates every edit and computes every file's new text in memory:
//! path rules and symlinks (`safety`), protected paths, SEARCH matching (`matching`) or
//! hunk placement (`diff`), and size limits. Only if all of it succeeds does phase 2
//! write, each file through `git::worktree` (every directory opened without following links,
//! the file replaced by rename, so neither a symlink nor a hard link is written through). If
//! a write fails part-way (disk full), the files already written are restored from the
//! originals kept in memory. The written content is returned, for publishing.

use std::collections::BTreeMap;
use std::path::Path;

use crate::agent::git::worktree;

use super::diff::{HunkLine, apply_hunks};
use super::matching::{Found, closest_region, split_lines};
use super::safety::{Protected, SafePath, Target, check_on_disk};
use super::{AppliedEdits, AppliedFile, Edit, EditError, EditPolicy};

/// One file's planned change.
struct Planned {
    original: Option<String>,
    current: Option<String>,
}

/// Validates all `edits`, then writes them; see the module docs.
pub fn apply_edits(
    work_tree: &Path,
    edits: &[Edit],
    policy: &EditPolicy,
) -> Result<AppliedEdits, EditError> {
    let root = work_tree.canonicalize().map_err(|e| EditError::Io {
        path: work_tree.display().to_string(),
        message: e.to_string(),
    })?;
    let protected = Protected::new(&root, &policy.protected_paths)?;
    let mut plan: BTreeMap<SafePath, Planned> = BTreeMap::new();
    for edit in edits {
        let path = SafePath::parse(edit.path())?;
        if protected.matches(&path) {
            return Err(EditError::Protected {
                path: path.as_str().to_owned(),
            });
        }
        if !plan.contains_key(&path) {
            let original = load(&root, &path, policy)?;
            plan.insert(
                path.clone(),
                Planned {
                    current: original.clone(),
                    original,
                },
            );
        }
        let entry = plan.get_mut(&path).expect("inserted above");
        entry.current = Some(apply_one(path.as_str(), entry.current.as_deref(), edit)?);
    }
    let changed: Vec<(&SafePath, &Planned)> = plan
        .iter()
        .filter(|(_, p)| p.current != p.original)
        .collect();
    check_sizes(&changed, policy)?;
    write_all(&root, &changed)?;
    Ok(AppliedEdits {
        changed_files: changed.iter().map(|(p, _)| p.as_str().to_owned()).collect(),
        files: changed
            .iter()
            .map(|(path, p)| AppliedFile {
                path: path.as_str().to_owned(),
                original: p.original.clone(),
                content: p.current.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

fn load(root: &Path, path: &SafePath, policy: &EditPolicy) -> Result<Option<String>, EditError> {
    let io = |e: std::io::Error| EditError::Io {
        path: path.as_str().to_owned(),
        message: e.to_string(),
    };
    match check_on_disk(root, path)? {
        Target::Missing => Ok(None),
        Target::File => {
            let full = root.join(path.as_str());
            let size = std::fs::symlink_metadata(&full).map_err(io)?.len();
            if size > policy.max_file_bytes {
                return Err(EditError::TooLarge {
                    path: path.as_str().to_owned(),
                    size,
                    limit: policy.max_file_bytes,
                });
            }
            // Read without following links too (the check above named any link for the model).
            let bytes = worktree::read_file(root, path.as_str())
                .map_err(|e| EditError::Io {
                    path: path.as_str().to_owned(),
                    message: e.to_string(),
                })?
                .unwrap_or_default();
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| EditError::NotText {
                    path: path.as_str().to_owned(),
                })
        }
    }
}

/// Applies one edit to a file's current text (`None`: the file does not exist).
fn apply_one(path: &str, current: Option<&str>, edit: &Edit) -> Result<String, EditError> {
    match edit {
        Edit::SearchReplace {
            search, replace, ..
        } if search.trim().is_empty() => match current {
            Some(_) => Err(EditError::FileExists {
                path: path.to_owned(),
            }),
            None => Ok(replace.clone()),
        },
        Edit::SearchReplace {
            search, replace, ..
        } => {
            let text = current.ok_or_else(|| EditError::FileMissing {
                path: path.to_owned(),
            })?;
            search_replace(path, text, search, replace)
        }
        Edit::Diff {
            hunks,
            new_file: true,
            ..
        } => match current {
            Some(_) => Err(EditError::FileExists {
                path: path.to_owned(),
            }),
            None => Ok(hunks
                .iter()
                .flat_map(|h| h.lines.iter())
                .filter_map(|l| match l {
                    HunkLine::Add(s) | HunkLine::Context(s) => Some(format!("{s}\n")),
                    HunkLine::Remove(_) => None,
                })
                .collect()),
        },
        Edit::Diff { hunks, .. } => {
            let text = current.ok_or_else(|| EditError::FileMissing {
                path: path.to_owned(),
            })?;
            apply_hunks(text, hunks)
                .map_err(|m| no_match(path, text, &m.old_text, Some(m.hunk + 1)))
        }
    }
}

fn search_replace(
    path: &str,
    text: &str,
    search: &str,
    replace: &str,
) -> Result<String, EditError> {
    let lines = split_lines(text);
    let wanted = split_lines(search);
    match super::matching::find(&lines, &wanted) {
        Found::One(m) => {
            let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
            let mut out: Vec<&str> = lines[..m.start].to_vec();
            out.extend(split_lines(replace));
            out.extend(&lines[m.end..]);
            let mut s = out.join(eol);
            if !out.is_empty() && text.ends_with('\n') {
                s.push_str(eol);
            }
            Ok(s)
        }
        Found::Many(at) => Err(EditError::Ambiguous {
            path: path.to_owned(),
            lines: at,
        }),
        Found::None => Err(no_match(path, text, search, None)),
    }
}

fn no_match(path: &str, text: &str, search: &str, hunk: Option<usize>) -> EditError {
    let lines = split_lines(text);
    let wanted = split_lines(search);
    let closest = closest_region(&lines, &wanted).map(|(line, snippet)| Closest { line, snippet });
    EditError::NoMatch {
        path: path.to_owned(),
        hunk,
        searched: wanted.iter().map(|l| format!("    {l}\n")).collect(),
        closest,
    }
}

/// The region of a file most similar to a SEARCH that did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closest {
    /// 1-based first line.
    pub line: usize,
    /// The region with line numbers, `  42 | text` per line.
    pub snippet: String,
}

fn check_sizes(changed: &[(&SafePath, &Planned)], policy: &EditPolicy) -> Result<(), EditError> {
    let mut total = 0u64;
    for (path, p) in changed {
        let size = p.current.as_ref().map_or(0, |c| c.len() as u64);
        if size > policy.max_file_bytes {
            return Err(EditError::TooLarge {
                path: path.as_str().to_owned(),
                size,
                limit: policy.max_file_bytes,
            });
        }
        total += size;
    }
    if total > policy.max_total_bytes {
        return Err(EditError::TotalTooLarge {
            size: total,
            limit: policy.max_total_bytes,
        });
    }
    Ok(())
}

fn write_all(root: &Path, changed: &[(&SafePath, &Planned)]) -> Result<(), EditError> {
    for (n, (path, p)) in changed.iter().enumerate() {
        let content = p.current.as_deref().unwrap_or_default();
        if let Err(e) = write_file(root, path, content) {
            rollback(root, &changed[..n]);
            return Err(EditError::Io {
                path: path.as_str().to_owned(),
                message: e,
            });
        }
    }
    Ok(())
}

fn write_file(root: &Path, path: &SafePath, content: &str) -> Result<(), String> {
    worktree::write_file(root, path.as_str(), content.as_bytes(), None).map_err(|e| e.to_string())
}

/// Best effort: restore originals and remove files this call created.
fn rollback(root: &Path, written: &[(&SafePath, &Planned)]) {
    for (path, p) in written {
        let _ = match &p.original {
            Some(orig) => write_file(root, path, orig),
            None => worktree::remove_file(root, path.as_str()).map_err(|e| e.to_string()),
        };
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
