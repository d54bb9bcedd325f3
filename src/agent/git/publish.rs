//! Commit exactly the paths the edits changed and push them to a branch.
//!
//! The commit's tree is `HEAD`'s tree plus the listed paths taken from the work tree, built
//! from a fresh index read from `HEAD`: nothing else the repro or set-up commands left
//! behind (build output, venvs, stray staged files) can get into the pull request.

use std::cell::RefCell;
use std::path::{Component, Path};
use std::rc::Rc;

use super::auth::{AuthOutcome, install_credentials};
use super::{GitAuth, GitError, validate_branch};

/// Who the commit is by (author and committer), e.g. the App's bot identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

/// Commits `paths` (added, modified or deleted in the work tree) on top of `HEAD` as a new
/// local branch `branch`, and pushes it to `refs/heads/<branch>` on `origin`. With `force`
/// the remote branch is overwritten (a new iteration of the same PR). Returns the commit
/// sha. A ref the server (or the fast-forward check) rejects is an error.
pub fn commit_and_push(
    work_dir: &Path,
    paths: &[String],
    message: &str,
    author: &Signature,
    branch: &str,
    auth: &GitAuth,
    force: bool,
) -> Result<String, GitError> {
    let refname = validate_branch(branch)?;
    for path in paths {
        check_path(path)?;
    }
    let repo =
        git2::Repository::open(work_dir).map_err(|e| GitError::git("opening the work tree", &e))?;
    let commit = commit_paths(&repo, work_dir, paths, message, author)?;
    repo.reference(&refname, commit, true, "patchpilot: commit")
        .and_then(|_| repo.set_head(&refname))
        .map_err(|e| GitError::git(format!("creating branch `{branch}`"), &e))?;
    push(&repo, &refname, auth, force)?;
    Ok(commit.to_string())
}

/// Pushes the existing local branch `branch` to `refs/heads/<branch>` on `origin` again,
/// e.g. after [`commit_and_push`] committed but its push failed (a second
/// `commit_and_push` would find nothing left to commit).
pub fn push_branch(
    work_dir: &Path,
    branch: &str,
    auth: &GitAuth,
    force: bool,
) -> Result<(), GitError> {
    let refname = validate_branch(branch)?;
    let repo =
        git2::Repository::open(work_dir).map_err(|e| GitError::git("opening the work tree", &e))?;
    repo.find_reference(&refname)
        .map_err(|e| GitError::git(format!("finding branch `{branch}`"), &e))?;
    push(&repo, &refname, auth, force)
}

/// A path must be relative, stay inside the work tree and not touch `.git`.
fn check_path(path: &str) -> Result<(), GitError> {
    let invalid = || GitError::InvalidPath(path.to_owned());
    if path.is_empty() || path.contains('\\') || path.contains('\0') {
        return Err(invalid());
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) if !name.eq_ignore_ascii_case(".git") => {}
            _ => return Err(invalid()),
        }
    }
    Ok(())
}

fn commit_paths(
    repo: &git2::Repository,
    work_dir: &Path,
    paths: &[String],
    message: &str,
    author: &Signature,
) -> Result<git2::Oid, GitError> {
    let git = |context: &'static str| move |e: git2::Error| GitError::git(context, &e);
    let parent = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(git("reading HEAD"))?;
    let parent_tree = parent.tree().map_err(git("reading HEAD"))?;
    let mut index = repo.index().map_err(git("opening the index"))?;
    index
        .read_tree(&parent_tree)
        .map_err(git("resetting the index"))?;
    for path in paths {
        stage(&mut index, work_dir, path)?;
    }
    index.write().map_err(git("writing the index"))?;
    let tree_id = index.write_tree().map_err(git("writing the tree"))?;
    if tree_id == parent_tree.id() {
        return Err(GitError::NothingToCommit);
    }
    let tree = repo.find_tree(tree_id).map_err(git("reading the tree"))?;
    let signature = git2::Signature::now(&author.name, &author.email)
        .map_err(git("building the commit signature"))?;
    repo.commit(None, &signature, &signature, message, &tree, &[&parent])
        .map_err(git("creating the commit"))
}

/// Adds a file that exists (symlinks are staged as links) or removes one that does not.
fn stage(index: &mut git2::Index, work_dir: &Path, path: &str) -> Result<(), GitError> {
    let staged = match std::fs::symlink_metadata(work_dir.join(path)) {
        Ok(meta) if meta.is_dir() => return Err(GitError::InvalidPath(path.to_owned())),
        Ok(_) => index.add_path(Path::new(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => index.remove_path(Path::new(path)),
        Err(e) => return Err(GitError::io(format!("reading `{path}`"), e)),
    };
    staged.map_err(|e| GitError::git(format!("staging `{path}`"), &e))
}

fn push(
    repo: &git2::Repository,
    refname: &str,
    auth: &GitAuth,
    force: bool,
) -> Result<(), GitError> {
    let mut remote = repo
        .find_remote("origin")
        .map_err(|e| GitError::git("finding the origin remote", &e))?;
    let url = remote.url().unwrap_or("origin").to_owned();
    let outcome = AuthOutcome::default();
    let rejected: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let mut callbacks = git2::RemoteCallbacks::new();
    install_credentials(&mut callbacks, auth, &outcome);
    let sink = rejected.clone();
    callbacks.push_update_reference(move |name, status| {
        if let Some(reason) = status {
            sink.borrow_mut().push((name.to_owned(), reason.to_owned()));
        }
        Ok(())
    });
    let mut options = git2::PushOptions::new();
    options.remote_callbacks(callbacks);
    let refspec = format!("{}{refname}:{refname}", if force { "+" } else { "" });
    if let Err(err) = remote.push(&[refspec.as_str()], Some(&mut options)) {
        if err.code() == git2::ErrorCode::NotFastForward {
            return Err(GitError::PushRejected {
                refname: refname.to_owned(),
                reason: "the remote branch has commits this push does not contain".into(),
            });
        }
        return Err(outcome.error(&url, "pushing to", &err));
    }
    let rejected = rejected.borrow();
    if let Some((name, reason)) = rejected.first() {
        return Err(GitError::PushRejected {
            refname: name.clone(),
            reason: reason.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside_the_work_tree() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            ".git/config",
            "sub/.GIT/hooks/x",
            "./a",
            "a\\b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} should be refused");
        }
        for good in [
            "src/lib.rs",
            "a",
            ".github/patchpilot.yml",
            "dir/.gitignore",
        ] {
            assert!(check_path(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
