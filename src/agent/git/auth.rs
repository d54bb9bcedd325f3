//! Credentials for git over HTTPS, supplied only through libgit2's credential callback.
//!
//! libgit2 calls the callback after a 401 and again after every refused attempt; we answer
//! once and then give up, so a bad token fails fast with a clear [`GitError::Auth`] instead
//! of looping until libgit2's replay limit.
//!
//! The token is for one origin only: the clone URL's scheme, host and port. libgit2 asks the
//! callback with the URL it is talking to, which after a redirect (or a remote URL rewritten
//! by something we did not write) may be another server; that server gets nothing.

use std::cell::RefCell;
use std::rc::Rc;

use secrecy::{ExposeSecret, SecretString};

use super::GitError;

/// The user name GitHub expects with an installation (or App) token.
const TOKEN_USER: &str = "x-access-token";

/// How to authenticate to the remote. `token: None` is for public or local repositories.
#[derive(Clone, Debug, Default)]
pub struct GitAuth {
    pub token: Option<SecretString>,
}

impl GitAuth {
    /// Authentication with an installation token.
    pub fn with_token(token: SecretString) -> Self {
        Self { token: Some(token) }
    }

    /// No credentials: the remote must allow anonymous access.
    pub fn anonymous() -> Self {
        Self { token: None }
    }
}

/// Records why the credential callback gave up, so the caller can report an
/// authentication failure rather than libgit2's generic transport error.
#[derive(Clone, Default)]
pub(crate) struct AuthOutcome(Rc<RefCell<Option<String>>>);

impl AuthOutcome {
    /// Converts a libgit2 error from a network operation into a [`GitError`], preferring
    /// the authentication reason when the callback refused to continue.
    pub(crate) fn error(&self, url: &str, context: &str, err: &git2::Error) -> GitError {
        if let Some(reason) = self.0.borrow().clone() {
            return GitError::Auth {
                url: url.to_owned(),
                reason,
            };
        }
        if err.code() == git2::ErrorCode::Auth || err.class() == git2::ErrorClass::Http {
            let message = err.message();
            if message.contains("401") || message.contains("authentication") {
                return GitError::Auth {
                    url: url.to_owned(),
                    reason: message.to_owned(),
                };
            }
        }
        GitError::git(format!("{context} {url}"), err)
    }
}

/// Scheme, host and port of a URL (the port made explicit), e.g. `https://github.com:443`.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(format!(
        "{}://{}:{}",
        url.scheme(),
        host.to_ascii_lowercase(),
        url.port_or_known_default()?
    ))
}

/// Installs the credential callback for `auth` on `callbacks`; it answers only requests
/// from the origin of `clone_url`.
pub(crate) fn install_credentials<'a>(
    callbacks: &mut git2::RemoteCallbacks<'a>,
    auth: &'a GitAuth,
    outcome: &AuthOutcome,
    clone_url: &str,
) {
    let outcome = outcome.clone();
    let allowed_origin = origin_of(clone_url);
    let mut attempts = 0u32;
    callbacks.credentials(move |url, _user_from_url, allowed| {
        attempts += 1;
        let refuse = |reason: &str| {
            *outcome.0.borrow_mut() = Some(reason.to_owned());
            Err(git2::Error::from_str(reason))
        };
        let asking = origin_of(url);
        if asking.is_none() || asking != allowed_origin {
            return refuse(&format!(
                "{} asked for credentials, but the token is only sent to {}",
                asking
                    .as_deref()
                    .unwrap_or("a server with an unparsable URL"),
                allowed_origin.as_deref().unwrap_or("the clone URL's host")
            ));
        }
        let Some(token) = auth.token.as_ref() else {
            return refuse("the server requires authentication and no token was provided");
        };
        if attempts > 1 {
            return refuse("the server refused the access token");
        }
        if !allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
            return refuse("the server does not accept token (user/password) authentication");
        }
        git2::Cred::userpass_plaintext(TOKEN_USER, token.expose_secret())
    });
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_make_the_port_explicit_and_ignore_the_path() {
        assert_eq!(
            origin_of("https://github.com/o/r.git").as_deref(),
            Some("https://github.com:443")
        );
        assert_eq!(
            origin_of("https://GitHub.com:443/x"),
            origin_of("https://github.com/y")
        );
        assert_ne!(
            origin_of("http://github.com/o/r"),
            origin_of("https://github.com/o/r")
        );
        assert_ne!(
            origin_of("http://127.0.0.1:1/a"),
            origin_of("http://127.0.0.1:2/a")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
