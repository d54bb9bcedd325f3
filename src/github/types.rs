//! Domain newtypes shared by the core and the GitHub boundary, so octocrab's types never
//! leak past `github/`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `owner/name` of a repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            name: name.into(),
        }
    }

    /// Parses `owner/name`; anything else (empty parts, extra slashes) is `None`.
    pub fn parse(full_name: &str) -> Option<Self> {
        let (owner, name) = full_name.split_once('/')?;
        let valid = |s: &str| !s.is_empty() && !s.contains('/') && !s.contains(char::is_whitespace);
        (valid(owner) && valid(name)).then(|| Self::new(owner, name))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_newtype!(
    /// A GitHub App installation.
    InstallationId
);
id_newtype!(
    /// An issue or pull-request number within a repository.
    IssueNumber
);
id_newtype!(
    /// An issue comment.
    CommentId
);
id_newtype!(
    /// A check run.
    CheckRunId
);

/// A full 40-hex commit id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitSha(pub String);

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_name_parses_owner_and_name_only() {
        assert_eq!(
            RepoName::parse("octo/hello").unwrap().to_string(),
            "octo/hello"
        );
        for bad in ["", "octo", "octo/", "/hello", "a/b/c", "a b/c"] {
            assert!(RepoName::parse(bad).is_none(), "{bad:?} should not parse");
        }
    }
}
