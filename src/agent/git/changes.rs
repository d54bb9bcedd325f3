//! What the edits changed, computed from PatchPilot's own content: the tree a commit gets,
//! the diff shown to the model and in the pull request, and putting edited paths back to the
//! base commit between attempts. Nothing here reads the work tree through a path a sandboxed
//! command could have changed: content comes from memory or from the session's git
//! directory, and the revert writes through [`super::worktree`], which never follows a link.

use std::path::Path;

use super::worktree::{self, WorkTreeError};
use super::{FileChange, GitError, check_path};

/// The session's bare git directory, opened by its own path (never discovered from a work
/// tree, whose `.git` a sandboxed command could have planted).
pub(crate) fn open(git_dir: &Path) -> Result<git2::Repository, GitError> {
    git2::Repository::open_bare(git_dir)
        .map_err(|e| GitError::git("opening the session's git directory", &e))
}

pub(crate) fn base_commit<'r>(
    repo: &'r git2::Repository,
    base_sha: &str,
) -> Result<git2::Commit<'r>, GitError> {
    git2::Oid::from_str(base_sha)
        .and_then(|oid| repo.find_commit(oid))
        .map_err(|e| GitError::git(format!("reading the base commit {base_sha}"), &e))
}

/// The base tree with each change's content written as a blob at its path. A file keeps
/// the base's executable bit; a new file is a plain (0644) file.
pub(crate) fn build_tree(
    repo: &git2::Repository,
    base: &git2::Tree<'_>,
    changes: &[FileChange],
) -> Result<git2::Oid, GitError> {
    let mut update = git2::build::TreeUpdateBuilder::new();
    for change in changes {
        check_path(&change.path)?;
        let blob = repo
            .blob(&change.content)
            .map_err(|e| GitError::git(format!("storing `{}`", change.path), &e))?;
        let executable = base
            .get_path(Path::new(&change.path))
            .is_ok_and(|entry| entry.filemode() == i32::from(git2::FileMode::BlobExecutable));
        let mode = if executable {
            git2::FileMode::BlobExecutable
        } else {
            git2::FileMode::Blob
        };
        update.upsert(change.path.as_str(), blob, mode);
    }
    update
        .create_updated(repo, base)
        .map_err(|e| GitError::git("building the tree", &e))
}

/// The unified diff from the base commit to the base plus `changes`. No changes, no diff.
pub fn diff(git_dir: &Path, base_sha: &str, changes: &[FileChange]) -> Result<String, GitError> {
    if changes.is_empty() {
        return Ok(String::new());
    }
    let repo = open(git_dir)?;
    let base = base_commit(&repo, base_sha)?
        .tree()
        .map_err(|e| GitError::git("reading the base tree", &e))?;
    let new_tree = build_tree(&repo, &base, changes)?;
    let new_tree = repo
        .find_tree(new_tree)
        .map_err(|e| GitError::git("reading the new tree", &e))?;
    let diff = repo
        .diff_tree_to_tree(Some(&base), Some(&new_tree), None)
        .map_err(|e| GitError::git("computing the diff", &e))?;
    let mut out = Vec::new();
    diff.print(git2::DiffFormat::Patch, |_delta, _hunk, line| {
        // Content lines carry their origin (+, -, space) separately from the text.
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin() as u8);
        }
        out.extend_from_slice(line.content());
        true
    })
    .map_err(|e| GitError::git("formatting the diff", &e))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The content of `path` in the base commit, or `None` when the base has no file there.
pub fn base_content(
    git_dir: &Path,
    base_sha: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, GitError> {
    check_path(path)?;
    let repo = open(git_dir)?;
    let tree = base_commit(&repo, base_sha)?
        .tree()
        .map_err(|e| GitError::git("reading the base tree", &e))?;
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    match entry.to_object(&repo).map(|o| o.into_blob()) {
        Ok(Ok(blob)) => Ok(Some(blob.content().to_vec())),
        _ => Ok(None),
    }
}

/// Puts `paths` in `work_dir` back as they are in the base commit; a path the base does not
/// have (a file the edits created) is removed. Used between patch attempts so each reply
/// applies to the original. A link anywhere on a path, or an edited file that is no longer
/// a single regular file, is [`GitError::Tampered`]: nothing is deleted or written through it.
pub fn restore_paths(
    git_dir: &Path,
    base_sha: &str,
    work_dir: &Path,
    paths: &[String],
) -> Result<(), GitError> {
    if paths.is_empty() {
        return Ok(());
    }
    let repo = open(git_dir)?;
    let tree = base_commit(&repo, base_sha)?
        .tree()
        .map_err(|e| GitError::git("reading the base tree", &e))?;
    for path in paths {
        check_path(path)?;
        // Refuses links on the path and non-regular or hard-linked files before any change.
        worktree::read_file(work_dir, path).map_err(from_work_tree)?;
        let entry = tree.get_path(Path::new(path)).ok();
        let blob = entry
            .as_ref()
            .and_then(|e| e.to_object(&repo).ok())
            .and_then(|o| o.into_blob().ok());
        let written = match (entry.as_ref(), blob) {
            (Some(entry), Some(blob)) => {
                let mode = if entry.filemode() == i32::from(git2::FileMode::BlobExecutable) {
                    0o755
                } else {
                    0o644
                };
                worktree::write_file(work_dir, path, blob.content(), Some(mode))
            }
            _ => worktree::remove_file(work_dir, path),
        };
        written.map_err(from_work_tree)?;
    }
    Ok(())
}

pub(crate) fn from_work_tree(err: WorkTreeError) -> GitError {
    match err {
        WorkTreeError::Tampered(t) => GitError::Tampered(t),
        WorkTreeError::Io {
            path,
            context,
            source,
        } => GitError::io(format!("{context} `{path}`"), source),
    }
}
