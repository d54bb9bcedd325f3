//! Where an edit may write: path syntax, `.git`, protected paths and symlinks.
//!
//! The invariant: every byte an edit writes lands in a regular file inside the work tree,
//! outside `.git`, reached without following a symlink. Syntax is checked first (no
//! absolute paths, drive letters, backslashes, `..` or `.git` components), then every
//! existing component of the path is `lstat`ed so that no symlink — to a file or to a
//! directory — is ever traversed. The final write additionally opens with `O_NOFOLLOW`
//! (see `apply`), so a link created between check and write is refused by the kernel.
//! Nothing else writes into the work tree while edits are applied (the sandbox is not
//! running), so the check-then-write window is not reachable by the repository's code.
//!
//! Protected paths add up: [`DEFAULT_PROTECTED_PATHS`] are always enforced (matched without
//! regard to case, for checkouts on case-insensitive file systems) and a repository's own
//! `protected_paths` only add to them. The defaults are the files a repository's CI or its
//! developers' tools execute with secrets or on checkout; a pushed branch must not change
//! what runs with those secrets.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::EditError;

/// A validated, normalised repo-relative path (`/`-separated, no `.` components).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SafePath(String);

impl SafePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks syntax only; see [`check_on_disk`] for symlinks.
    pub fn parse(raw: &str) -> Result<Self, EditError> {
        let invalid = |reason: &str| EditError::InvalidPath {
            path: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let p = raw.trim();
        if p.is_empty() {
            return Err(invalid("the path is empty"));
        }
        if p.contains('\0') || p.chars().any(char::is_control) {
            return Err(invalid("the path contains control characters"));
        }
        if p.starts_with('/') || p.starts_with('~') || p.as_bytes().get(1) == Some(&b':') {
            return Err(invalid(
                "absolute paths are not allowed; use a path relative to the repository root",
            ));
        }
        if p.contains('\\') {
            return Err(invalid("use `/` as the path separator"));
        }
        let parts: Vec<&str> = p
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if parts.is_empty() {
            return Err(invalid("the path names no file"));
        }
        if parts.contains(&"..") {
            return Err(invalid(
                "`..` is not allowed; edits stay inside the repository",
            ));
        }
        if parts.iter().any(|c| c.eq_ignore_ascii_case(".git")) {
            return Err(EditError::GitDir {
                path: raw.to_owned(),
            });
        }
        Ok(Self(parts.join("/")))
    }
}

/// Paths no edit may touch, whatever the repository configures (`.gitignore` syntax). The
/// README's "Protected paths" section says why each is here, and why build files such as a
/// `Makefile` are not.
pub const DEFAULT_PROTECTED_PATHS: &[&str] = &[
    // GitHub: workflows and composite actions run with the repository's secrets; also
    // CODEOWNERS, Dependabot and PatchPilot's own settings.
    ".github/",
    // Other CI services' pipeline definitions.
    ".gitlab-ci.yml",
    ".gitlab/",
    ".circleci/",
    "Jenkinsfile",
    "*.jenkinsfile",
    ".buildkite/",
    "azure-pipelines.yml",
    "azure-pipelines.yaml",
    ".azure-pipelines/",
    ".travis.yml",
    "appveyor.yml",
    ".appveyor.yml",
    "bitbucket-pipelines.yml",
    ".drone.yml",
    ".woodpecker.yml",
    ".woodpecker/",
    ".cirrus.yml",
    "cloudbuild.yaml",
    "cloudbuild.yml",
    // Hooks that run on developers' machines on commit or checkout.
    ".pre-commit-config.yaml",
    ".pre-commit-hooks.yaml",
    ".husky/",
    "lefthook.yml",
    ".lefthook.yml",
    ".envrc",
    // Git behaviour: submodule URLs, filter/diff drivers, LFS endpoints, code owners.
    ".gitmodules",
    ".gitattributes",
    ".lfsconfig",
    "CODEOWNERS",
];

/// Protected-path patterns in `.gitignore` syntax (`.github/`, `*.lock`, `/secrets/**`): the
/// defaults plus the repository's own.
pub struct Protected {
    defaults: Gitignore,
    configured: Gitignore,
}

impl Protected {
    /// The defaults plus `patterns` (the repository's `protected_paths`).
    pub fn new(root: &Path, patterns: &[String]) -> Result<Self, EditError> {
        let mut defaults = GitignoreBuilder::new(root);
        defaults.case_insensitive(true).map_err(policy_error)?;
        for p in DEFAULT_PROTECTED_PATHS {
            defaults.add_line(None, p).map_err(policy_error)?;
        }
        let mut configured = GitignoreBuilder::new(root);
        for p in patterns {
            configured
                .add_line(None, p)
                .map_err(|e| EditError::Policy(format!("protected path `{p}`: {e}")))?;
        }
        Ok(Self {
            defaults: defaults.build().map_err(policy_error)?,
            configured: configured.build().map_err(policy_error)?,
        })
    }

    pub fn matches(&self, path: &SafePath) -> bool {
        [&self.defaults, &self.configured].iter().any(|set| {
            set.matched_path_or_any_parents(path.as_str(), false)
                .is_ignore()
        })
    }
}

fn policy_error(e: ignore::Error) -> EditError {
    EditError::Policy(e.to_string())
}

/// State of the target on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A regular file exists.
    File,
    /// Nothing there yet; missing parent directories will be created.
    Missing,
}

/// `lstat`s every existing component of `path` under `root`; refuses symlinks anywhere,
/// a file where a directory is needed, and a non-regular final component.
pub fn check_on_disk(root: &Path, path: &SafePath) -> Result<Target, EditError> {
    let parts: Vec<&str> = path.as_str().split('/').collect();
    let mut cur = PathBuf::from(root);
    for (i, part) in parts.iter().enumerate() {
        cur.push(part);
        let last = i + 1 == parts.len();
        let meta = match std::fs::symlink_metadata(&cur) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Target::Missing),
            Err(e) => {
                return Err(EditError::Io {
                    path: path.as_str().to_owned(),
                    message: e.to_string(),
                });
            }
        };
        let shown = parts[..=i].join("/");
        if meta.file_type().is_symlink() {
            return Err(EditError::Symlink {
                path: path.as_str().to_owned(),
                link: shown,
            });
        }
        if !last && !meta.is_dir() {
            return Err(EditError::InvalidPath {
                path: path.as_str().to_owned(),
                reason: format!("{shown} is a file, not a directory"),
            });
        }
        if last && !meta.is_file() {
            return Err(EditError::InvalidPath {
                path: path.as_str().to_owned(),
                reason: "it is not a regular file".to_owned(),
            });
        }
    }
    Ok(Target::File)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises_relative_paths() {
        assert_eq!(SafePath::parse("src/a.rs").unwrap().as_str(), "src/a.rs");
        assert_eq!(SafePath::parse("./src//a.rs").unwrap().as_str(), "src/a.rs");
        assert_eq!(
            SafePath::parse(".github/workflows/ci.yml")
                .unwrap()
                .as_str(),
            ".github/workflows/ci.yml"
        );
    }

    #[test]
    fn refuses_escapes_absolute_paths_and_git() {
        for bad in [
            "/etc/passwd",
            "../x",
            "src/../../x",
            "C:/x",
            r"src\a.rs",
            "~/.ssh/config",
            "",
            "a\0b",
        ] {
            assert!(
                matches!(SafePath::parse(bad), Err(EditError::InvalidPath { .. })),
                "{bad}"
            );
        }
        for git in [".git/config", "sub/.git/hooks/pre-commit", ".GIT/HEAD"] {
            assert!(
                matches!(SafePath::parse(git), Err(EditError::GitDir { .. })),
                "{git}"
            );
        }
    }

    #[test]
    fn defaults_apply_with_or_without_configured_patterns() {
        let dir = tempfile::tempdir().unwrap();
        for configured in [vec![], vec!["src/generated/**".to_owned()]] {
            let p = Protected::new(dir.path(), &configured).unwrap();
            let m = |s: &str| p.matches(&SafePath::parse(s).unwrap());
            for path in [
                ".github/workflows/ci.yml",
                ".GitHub/Workflows/ci.yml",
                ".github/actions/setup/action.yml",
                ".github/patchpilot.yml",
                ".gitlab-ci.yml",
                ".circleci/config.yml",
                "Jenkinsfile",
                "ci/Jenkinsfile",
                ".buildkite/pipeline.yml",
                "azure-pipelines.yml",
                ".travis.yml",
                ".pre-commit-config.yaml",
                ".husky/pre-commit",
                ".gitmodules",
                "sub/.gitattributes",
                "docs/CODEOWNERS",
            ] {
                assert!(m(path), "{path} should be protected ({configured:?})");
            }
            for path in ["src/main.rs", "Makefile", "github/notes.md", "src/ci.yml"] {
                assert!(!m(path), "{path} should be editable");
            }
        }
        let p = Protected::new(dir.path(), &["src/generated/**".into()]).unwrap();
        assert!(p.matches(&SafePath::parse("src/generated/x.rs").unwrap()));
    }

    /// The whole chain a session uses: the repository's settings file, the model's reply, the
    /// edit policy the patch step builds from them.
    #[test]
    fn a_repository_with_its_own_protected_paths_still_cannot_edit_workflows() {
        use crate::agent::edits::{EditError, EditPolicy, apply_edits, parse_edits};
        use crate::session::repo_config::RepoConfig;

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
        std::fs::write(dir.path().join(".github/workflows/x.yml"), "on: push\n").unwrap();
        std::fs::create_dir_all(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/a.md"), "old\n").unwrap();
        std::fs::write(dir.path().join("calc.py"), "x = 1\n").unwrap();
        let config = RepoConfig::parse(Some("protected_paths: [\"docs/**\"]\n")).unwrap();
        let policy = EditPolicy {
            protected_paths: config.protected_paths.clone(),
            ..EditPolicy::default()
        };
        let reply = |path: &str, old: &str| {
            format!("{path}\n<<<<<<< SEARCH\n{old}\n=======\nchanged\n>>>>>>> REPLACE\n")
        };
        for (path, old) in [
            (".github/workflows/x.yml", "on: push"),
            ("docs/a.md", "old"),
        ] {
            let edits = parse_edits(&reply(path, old)).unwrap();
            assert_eq!(
                apply_edits(dir.path(), &edits, &policy).unwrap_err(),
                EditError::Protected { path: path.into() },
            );
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".github/workflows/x.yml")).unwrap(),
            "on: push\n"
        );
        let edits = parse_edits(&reply("calc.py", "x = 1")).unwrap();
        apply_edits(dir.path(), &edits, &policy).unwrap();
    }

    #[test]
    fn protected_patterns_use_gitignore_syntax() {
        let dir = tempfile::tempdir().unwrap();
        let p = Protected::new(
            dir.path(),
            &[".github/".into(), "*.lock".into(), "/secrets/**".into()],
        )
        .unwrap();
        let m = |s: &str| p.matches(&SafePath::parse(s).unwrap());
        assert!(m(".github/workflows/ci.yml"));
        assert!(m("Cargo.lock"));
        assert!(m("sub/yarn.lock"));
        assert!(m("secrets/key.pem"));
        assert!(!m("src/secrets/x.rs"));
        assert!(!m("src/main.rs"));
    }

    #[test]
    fn symlinked_directories_and_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a.rs"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), dir.path().join("src/link.rs"))
            .unwrap();
        let check = |s: &str| check_on_disk(dir.path(), &SafePath::parse(s).unwrap());
        assert_eq!(check("src/a.rs").unwrap(), Target::File);
        assert_eq!(check("src/new/b.rs").unwrap(), Target::Missing);
        assert!(matches!(check("out/x.rs"), Err(EditError::Symlink { link, .. }) if link == "out"));
        assert!(matches!(
            check("src/link.rs"),
            Err(EditError::Symlink { .. })
        ));
        assert!(matches!(
            check("src/a.rs/b"),
            Err(EditError::InvalidPath { .. })
        ));
        assert!(matches!(check("src"), Err(EditError::InvalidPath { .. })));
    }
}
