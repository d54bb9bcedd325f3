//! Commit exactly the content the edits produced and push it to a branch of the clone URL.
//!
//! The commit's tree is the base commit's tree plus blobs written from PatchPilot's own
//! bytes ([`FileChange`]); the work tree is never read, so nothing a sandboxed command left
//! there (build output, venvs, links to host files, a rewritten file) can get into the pull
//! request. The push goes to the clone URL through an anonymous remote: no remote, URL or
//! hook is read from any configuration a sandboxed command could have reached.

use std::cell::RefCell;
use std::path::{Component, Path};
use std::rc::Rc;

use super::auth::{AuthOutcome, install_credentials};
use super::changes::{base_commit, build_tree, open};
use super::{FileChange, GitAuth, GitError, validate_branch};

/// Who the commit is by (author and committer), e.g. the App's bot identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

/// Where and how a commit is published.
#[derive(Clone, Debug)]
pub struct Publication<'a> {
    /// The session's clone URL: the only place pushed to, and the only origin credentials
    /// are sent to.
    pub clone_url: &'a str,
    /// The branch to create locally and on the remote (`refs/heads/<branch>`).
    pub branch: &'a str,
    pub message: &'a str,
    pub author: &'a Signature,
    /// Overwrite the remote branch (a new iteration of the same PR).
    pub force: bool,
}

/// Commits `changes` on top of `base_sha` in the bare `git_dir` as branch
/// `publication.branch` and pushes it to the clone URL. Returns the commit sha. A ref the
/// server (or the fast-forward check) rejects is an error.
pub fn commit_and_push(
    git_dir: &Path,
    base_sha: &str,
    changes: &[FileChange],
    publication: &Publication<'_>,
    auth: &GitAuth,
) -> Result<String, GitError> {
    let refname = validate_branch(publication.branch)?;
    let repo = open(git_dir)?;
    let commit = commit_changes(&repo, base_sha, changes, publication)?;
    repo.reference(&refname, commit, true, "patchpilot: commit")
        .map_err(|e| GitError::git(format!("creating branch `{}`", publication.branch), &e))?;
    push(
        &repo,
        publication.clone_url,
        &refname,
        auth,
        publication.force,
    )?;
    Ok(commit.to_string())
}

/// Pushes the existing branch `branch` of `git_dir` to the clone URL again, e.g. after
/// [`commit_and_push`] committed but its push failed.
pub fn push_branch(
    git_dir: &Path,
    clone_url: &str,
    branch: &str,
    auth: &GitAuth,
    force: bool,
) -> Result<(), GitError> {
    let refname = validate_branch(branch)?;
    let repo = open(git_dir)?;
    repo.find_reference(&refname)
        .map_err(|e| GitError::git(format!("finding branch `{branch}`"), &e))?;
    push(&repo, clone_url, &refname, auth, force)
}

/// A path must be relative, stay inside the work tree and not touch `.git`.
pub(crate) fn check_path(path: &str) -> Result<(), GitError> {
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

fn commit_changes(
    repo: &git2::Repository,
    base_sha: &str,
    changes: &[FileChange],
    publication: &Publication<'_>,
) -> Result<git2::Oid, GitError> {
    let git = |context: &'static str| move |e: git2::Error| GitError::git(context, &e);
    let parent = base_commit(repo, base_sha)?;
    let parent_tree = parent.tree().map_err(git("reading the base tree"))?;
    let tree_id = build_tree(repo, &parent_tree, changes)?;
    if tree_id == parent_tree.id() {
        return Err(GitError::NothingToCommit);
    }
    let tree = repo.find_tree(tree_id).map_err(git("reading the tree"))?;
    let author = publication.author;
    let signature = git2::Signature::now(&author.name, &author.email)
        .map_err(git("building the commit signature"))?;
    repo.commit(
        None,
        &signature,
        &signature,
        publication.message,
        &tree,
        &[&parent],
    )
    .map_err(git("creating the commit"))
}

fn push(
    repo: &git2::Repository,
    url: &str,
    refname: &str,
    auth: &GitAuth,
    force: bool,
) -> Result<(), GitError> {
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| GitError::git("preparing the push", &e))?;
    let outcome = AuthOutcome::default();
    let rejected: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let mut callbacks = git2::RemoteCallbacks::new();
    install_credentials(&mut callbacks, auth, &outcome, url);
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
        return Err(outcome.error(url, "pushing to", &err));
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
