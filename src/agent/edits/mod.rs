//! The edit protocol: how a model's reply becomes file changes, and the rules that keep
//! those changes inside the work tree.
//!
//! `parse` turns a reply into [`Edit`]s (SEARCH/REPLACE blocks, or unified diffs in a
//! ```` ```diff ```` fence). `apply` validates *all* edits, then writes them, so a reply is
//! applied entirely or not at all. Every error's Display is written for the model: it
//! names the file and says what to do, and a SEARCH that does not match shows the
//! closest region of the file with line numbers.
//!
//! Safety invariants (enforced in `safety`): no absolute paths, no `..`, nothing under any
//! `.git` directory, no symlink anywhere on the path, nothing matching the protected
//! patterns, per-file and total size limits.

mod apply;
mod diff;
mod matching;
mod parse;
mod safety;

pub use apply::{Closest, apply_edits};

pub use diff::{Hunk, HunkLine};
pub use parse::{ParseError, parse_edits};

/// One change to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Replace the exact lines `search` with `replace`; an empty `search` creates a file.
    /// Both hold whole lines, each ending in `\n`.
    SearchReplace {
        path: String,
        search: String,
        replace: String,
    },
    /// A unified diff for one file; `new_file` when its old side was `/dev/null`.
    Diff {
        path: String,
        hunks: Vec<Hunk>,
        new_file: bool,
    },
}

impl Edit {
    /// The repo-relative path as the model wrote it.
    pub fn path(&self) -> &str {
        match self {
            Edit::SearchReplace { path, .. } | Edit::Diff { path, .. } => path,
        }
    }
}

/// Limits for one batch of edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditPolicy {
    /// Patterns in `.gitignore` syntax that edits may not touch (e.g. `.github/`, `*.lock`).
    pub protected_paths: Vec<String>,
    /// Largest file an edit may read or produce.
    pub max_file_bytes: u64,
    /// Largest sum of the sizes of all files a batch writes.
    pub max_total_bytes: u64,
}

impl Default for EditPolicy {
    fn default() -> Self {
        Self {
            protected_paths: Vec::new(),
            max_file_bytes: 1024 * 1024,
            max_total_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What a successful batch changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedEdits {
    /// Repo-relative paths, sorted, each changed or created.
    pub changed_files: Vec<String>,
    /// The same files (same order) with the content PatchPilot read and wrote: publishing
    /// commits these bytes, never what the work tree holds later.
    pub files: Vec<AppliedFile>,
}

/// One file a batch of edits wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedFile {
    pub path: String,
    /// The content the edits were applied to (`None`: the file was created).
    pub original: Option<String>,
    /// The content written.
    pub content: String,
}

/// Why a batch was refused; nothing was written. Display is model-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("refused edit to `{path}`: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("refused edit to `{path}`: files under `.git` may not be edited")]
    GitDir { path: String },
    #[error(
        "refused edit to `{path}`: `{link}` is a symbolic link, and edits never write through links"
    )]
    Symlink { path: String, link: String },
    #[error(
        "refused edit to `{path}`: this path is protected by the repository's PatchPilot settings"
    )]
    Protected { path: String },
    #[error("refused edit to `{path}`: {size} bytes is over the {limit}-byte limit per file")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("refused edits: together they write {size} bytes, over the {limit}-byte limit")]
    TotalTooLarge { size: u64, limit: u64 },
    #[error("cannot edit `{path}`: it is not UTF-8 text")]
    NotText { path: String },
    #[error(
        "cannot edit `{path}`: the file does not exist; to create it, use a SEARCH/REPLACE block with an empty SEARCH section"
    )]
    FileMissing { path: String },
    #[error(
        "cannot create `{path}`: the file already exists; use a SEARCH block with its exact existing lines"
    )]
    FileExists { path: String },
    #[error("the SEARCH block for `{path}` matches {} places (lines {}); add surrounding lines so it matches exactly one", lines.len(), join_numbers(lines))]
    Ambiguous { path: String, lines: Vec<usize> },
    #[error("{}", no_match_message(path, *hunk, searched, closest.as_ref()))]
    NoMatch {
        path: String,
        hunk: Option<usize>,
        searched: String,
        closest: Option<Closest>,
    },
    #[error("invalid edit policy: {0}")]
    Policy(String),
    #[error("could not write `{path}`: {message}")]
    Io { path: String, message: String },
}

fn join_numbers(n: &[usize]) -> String {
    n.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_match_message(
    path: &str,
    hunk: Option<usize>,
    searched: &str,
    closest: Option<&Closest>,
) -> String {
    let what = match hunk {
        Some(h) => format!("hunk {h} of the diff for `{path}`"),
        None => format!("the SEARCH block for `{path}`"),
    };
    let mut s = format!("{what} does not match the file exactly. It searched for:\n{searched}");
    match closest {
        Some(c) => s.push_str(&format!(
            "The closest region of `{path}` is at line {}:\n{}Copy the existing lines exactly (including indentation) into SEARCH and try again.",
            c.line, c.snippet
        )),
        None => s.push_str(&format!("Nothing in `{path}` resembles it; check the file path and its current contents.")),
    }
    s
}
