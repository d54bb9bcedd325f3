//! The parsers that fill a session: the issue body, the repository's `.patchpilot.yml`, the
//! round asked on a pull request, and the signed links to a session's page. The session
//! record itself is the store's (`store::Session`).

pub mod issue_body;
pub mod iteration;
pub mod links;
pub mod repo_config;
