//! The repository cache: one bare mirror per clone URL, and fresh sessions made from it: a
//! bare git directory of the session's own and, apart from it, a work tree with no `.git`.
//!
//! Layout under the cache root: `<key>.git/` (bare mirror) and `<key>.lock` (lock file),
//! where the key is a readable, sanitised form of the clone URL plus a hash of the full URL
//! so that two URLs never share a mirror.
//!
//! Concurrency: [`RepoCache::checkout`] takes an exclusive `flock` on the repository's lock
//! file for the fetch and the copy, so concurrent sessions of the same repository (in this
//! process or another on the same cache) never fetch into the mirror at the same time, and
//! a copy never sees a half-updated ref. Different repositories proceed in parallel.
//!
//! History depth: the mirror holds the full history of the base branch. libgit2 shallow
//! mirrors cannot be cloned locally (the file transport refuses shallow fetches), and the
//! cost of full history is paid once per repository, not per session.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::auth::{AuthOutcome, install_credentials};
use super::{GitAuth, GitError, validate_branch};

/// A cache of bare mirrors, one per repository, under one directory.
#[derive(Clone, Debug)]
pub struct RepoCache {
    root: PathBuf,
}

/// The result of [`RepoCache::checkout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// The commit of the base branch that the work tree has checked out.
    pub base_sha: String,
}

impl RepoCache {
    /// A cache rooted at `root` (created on first use).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The directory holding the mirror of `clone_url` (it may not exist yet).
    pub fn mirror_path(&self, clone_url: &str) -> PathBuf {
        self.root.join(format!("{}.git", cache_key(clone_url)))
    }

    /// Fetches `base_branch` of `clone_url` into the mirror, copies the mirror into the bare
    /// git directory `git_dir` and checks `base_branch` out into `work_dir` (each must not
    /// exist or be empty). The work tree gets no `.git`: host code opens `git_dir` by its
    /// path, so nothing a sandboxed command writes in the work tree is read as git metadata.
    pub fn checkout(
        &self,
        clone_url: &str,
        base_branch: &str,
        auth: &GitAuth,
        git_dir: &Path,
        work_dir: &Path,
    ) -> Result<Checkout, GitError> {
        check_url(clone_url)?;
        let refname = validate_branch(base_branch)?;
        fs::create_dir_all(&self.root)
            .map_err(|e| GitError::io("creating the repository cache directory", e))?;
        let key = cache_key(clone_url);
        let _lock = lock(&self.root.join(format!("{key}.lock")))?;
        let mirror_dir = self.root.join(format!("{key}.git"));
        let mirror = open_or_init_mirror(&mirror_dir)?;
        let base_sha = fetch_branch(&mirror, clone_url, base_branch, &refname, auth)?;
        copy_repository(&mirror_dir, base_branch, git_dir, work_dir, base_sha)?;
        Ok(Checkout {
            base_sha: base_sha.to_string(),
        })
    }
}

/// Refuses URLs that carry credentials: tokens belong in the callback only.
fn check_url(clone_url: &str) -> Result<(), GitError> {
    if let Ok(url) = url::Url::parse(clone_url)
        && (!url.username().is_empty() || url.password().is_some())
    {
        return Err(GitError::InvalidUrl(
            "the clone URL must not contain a user name or password".into(),
        ));
    }
    if clone_url.trim().is_empty() {
        return Err(GitError::InvalidUrl("the clone URL is empty".into()));
    }
    Ok(())
}

/// A file-system-safe key for a clone URL: a readable slug (host and path, ASCII
/// alphanumerics and `-` only, so never `/`, `.` or `..`) and a hash of the whole URL.
pub(crate) fn cache_key(clone_url: &str) -> String {
    let readable = match url::Url::parse(clone_url) {
        Ok(url) => format!("{}{}", url.host_str().unwrap_or(""), url.path()),
        Err(_) => clone_url.to_owned(),
    };
    let readable = readable.trim_end_matches('/');
    let readable = readable.strip_suffix(".git").unwrap_or(readable);
    let mut slug: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Keep the tail (owner/name), which is the informative part; cap the length.
    if slug.len() > 80 {
        slug = slug[slug.len() - 80..].to_owned();
    }
    let slug = slug.trim_matches('_');
    let digest = Sha256::digest(clone_url.as_bytes());
    format!("{slug}-{}", &hex::encode(digest)[..12])
}

/// Takes an exclusive lock held until the returned file is dropped.
fn lock(path: &Path) -> Result<File, GitError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| GitError::io("opening the repository cache lock", e))?;
    file.lock()
        .map_err(|e| GitError::io("locking the repository cache", e))?;
    Ok(file)
}

fn open_or_init_mirror(dir: &Path) -> Result<git2::Repository, GitError> {
    match git2::Repository::open_bare(dir) {
        Ok(repo) => Ok(repo),
        Err(_) => {
            // A directory left by an interrupted first fetch is not a usable mirror.
            if dir.exists() {
                fs::remove_dir_all(dir).map_err(|e| GitError::io("removing a broken mirror", e))?;
            }
            git2::Repository::init_bare(dir)
                .map_err(|e| GitError::git("creating the repository mirror", &e))
        }
    }
}

/// Fetches `refs/heads/<branch>` into the mirror's ref of the same name and returns its
/// commit. An anonymous remote is used so the mirror's config never records the URL.
fn fetch_branch(
    mirror: &git2::Repository,
    clone_url: &str,
    branch: &str,
    refname: &str,
    auth: &GitAuth,
) -> Result<git2::Oid, GitError> {
    let outcome = AuthOutcome::default();
    let mut callbacks = git2::RemoteCallbacks::new();
    install_credentials(&mut callbacks, auth, &outcome, clone_url);
    let mut options = git2::FetchOptions::new();
    options
        .remote_callbacks(callbacks)
        .download_tags(git2::AutotagOption::None);
    let mut remote = mirror
        .remote_anonymous(clone_url)
        .map_err(|e| GitError::git("preparing the fetch", &e))?;
    // `+`: the base branch may have been force-pushed since the last session.
    let refspec = format!("+{refname}:{refname}");
    let fetched = remote.fetch(&[refspec.as_str()], Some(&mut options), None);
    if let Err(err) = fetched {
        return Err(outcome.error(clone_url, "fetching from", &err));
    }
    let advertised = remote
        .list()
        .map(|heads| heads.iter().any(|h| h.name() == refname))
        .unwrap_or(false);
    if !advertised {
        return Err(GitError::BranchNotFound {
            url: clone_url.to_owned(),
            branch: branch.to_owned(),
        });
    }
    mirror
        .refname_to_id(refname)
        .map_err(|_| GitError::BranchNotFound {
            url: clone_url.to_owned(),
            branch: branch.to_owned(),
        })
}

/// Makes `git_dir` a full, independent bare copy of the mirror (objects copied, not linked)
/// with `branch` as `HEAD`, and checks `base` out into `work_dir`. The copy's `origin`
/// remote (the mirror's path) is deleted: pushes name the clone URL explicitly.
fn copy_repository(
    mirror_dir: &Path,
    branch: &str,
    git_dir: &Path,
    work_dir: &Path,
    base: git2::Oid,
) -> Result<(), GitError> {
    let mirror_url = mirror_dir
        .to_str()
        .ok_or_else(|| GitError::InvalidUrl("the cache directory is not valid UTF-8".into()))?;
    let repo = git2::build::RepoBuilder::new()
        .bare(true)
        .branch(branch)
        .clone_local(git2::build::CloneLocal::NoLinks)
        .clone(mirror_url, git_dir)
        .map_err(|e| GitError::git("copying the repository", &e))?;
    repo.remote_delete("origin")
        .map_err(|e| GitError::git("removing the mirror remote", &e))?;
    let head = repo
        .head()
        .ok()
        .and_then(|h| h.target())
        .ok_or_else(|| GitError::Git {
            context: "checking out the base branch".into(),
            message: "the repository has no HEAD commit".into(),
        })?;
    if head != base {
        return Err(GitError::Git {
            context: "checking out the base branch".into(),
            message: format!("expected {base}, found {head}"),
        });
    }
    fs::create_dir_all(work_dir).map_err(|e| GitError::io("creating the work tree", e))?;
    let commit = repo
        .find_commit(base)
        .map_err(|e| GitError::git("reading the base commit", &e))?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.force().target_dir(work_dir).update_index(false);
    repo.checkout_tree(commit.as_object(), Some(&mut checkout))
        .map_err(|e| GitError::git("checking out the work tree", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_is_readable_and_distinct() {
        let a = cache_key("https://github.com/owner/name.git");
        let b = cache_key("https://github.com/owner/name");
        let c = cache_key("https://ghe.example.com/owner/name.git");
        assert!(a.starts_with("github_com_owner_name-"), "{a}");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, cache_key("https://github.com/owner/name.git"));
    }

    #[test]
    fn cache_key_has_no_path_separators_or_dot_dot() {
        for url in [
            "../../etc/passwd",
            "/abs/path/repo",
            "http://h/a/../../b",
            "x",
        ] {
            let key = cache_key(url);
            assert!(!key.contains('/') && !key.contains(".."), "{url} -> {key}");
            assert!(!key.starts_with('.'), "{url} -> {key}");
        }
        assert!(cache_key(&format!("https://h/{}", "a".repeat(500))).len() < 100);
    }

    #[test]
    fn urls_with_credentials_are_refused() {
        assert!(matches!(
            check_url("https://x-access-token:secret@github.com/o/r.git"),
            Err(GitError::InvalidUrl(_))
        ));
        assert!(check_url("https://github.com/o/r.git").is_ok());
        assert!(check_url("").is_err());
    }

    #[test]
    fn invalid_branch_names_are_refused() {
        let cache = RepoCache::new(PathBuf::from("/nonexistent-cache"));
        let dir = Path::new("/nonexistent-work");
        for branch in ["", "a..b", "-x", "with space", "x.lock"] {
            let err = cache
                .checkout("https://h/o/r.git", branch, &GitAuth::anonymous(), dir, dir)
                .unwrap_err();
            assert!(matches!(err, GitError::InvalidBranch(_)), "{branch}: {err}");
        }
    }
}
