//! What the edits changed in a work tree: the list of paths and their unified diff.
//!
//! Both compare the work tree (and index) with `HEAD`, include untracked files and
//! respect `.gitignore`, so a build's `target/` or a venv does not show up.

use std::path::Path;

use super::GitError;

fn open(work_dir: &Path) -> Result<git2::Repository, GitError> {
    git2::Repository::open(work_dir).map_err(|e| GitError::git("opening the work tree", &e))
}

/// Paths (relative, `/`-separated, sorted) that differ from `HEAD`: modified, added,
/// deleted, renamed or untracked, but not ignored.
pub fn changed_files(work_dir: &Path) -> Result<Vec<String>, GitError> {
    let repo = open(work_dir)?;
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(|e| GitError::git("listing changed files", &e))?;
    let mut paths: Vec<String> = statuses
        .iter()
        .filter(|entry| {
            let status = entry.status();
            !status.is_empty() && !status.contains(git2::Status::IGNORED)
        })
        .map(|entry| String::from_utf8_lossy(entry.path_bytes()).into_owned())
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// Puts `paths` back as they are at `HEAD`; a path that is not in `HEAD` (a file the edits
/// created) is removed. Used between patch attempts so each reply applies to the original.
pub fn restore_paths(work_dir: &Path, paths: &[String]) -> Result<(), GitError> {
    if paths.is_empty() {
        return Ok(());
    }
    let repo = open(work_dir)?;
    let head_tree = repo
        .head()
        .and_then(|head| head.peel_to_tree())
        .map_err(|e| GitError::git("reading HEAD", &e))?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.force().disable_pathspec_match(true);
    let mut tracked = false;
    for path in paths {
        if head_tree.get_path(Path::new(path)).is_ok() {
            checkout.path(path);
            tracked = true;
        } else {
            let file = work_dir.join(path);
            if file.symlink_metadata().is_ok() {
                std::fs::remove_file(&file)
                    .map_err(|e| GitError::io("removing a created file", e))?;
            }
        }
    }
    if tracked {
        repo.checkout_tree(head_tree.as_object(), Some(&mut checkout))
            .map_err(|e| GitError::git("restoring edited files", &e))?;
    }
    Ok(())
}

/// The unified diff of `paths` between `HEAD` and the work tree, new files included.
/// An empty `paths` yields an empty diff (never "everything").
pub fn diff(work_dir: &Path, paths: &[String]) -> Result<String, GitError> {
    if paths.is_empty() {
        return Ok(String::new());
    }
    let repo = open(work_dir)?;
    let head_tree = repo
        .head()
        .and_then(|head| head.peel_to_tree())
        .map_err(|e| GitError::git("reading HEAD", &e))?;
    let mut options = git2::DiffOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true)
        // Paths are literal file names, not globs.
        .disable_pathspec_match(true);
    for path in paths {
        options.pathspec(path);
    }
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&head_tree), Some(&mut options))
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
