//! Credentials for git over HTTPS, supplied only through libgit2's credential callback.
//!
//! libgit2 calls the callback after a 401 and again after every refused attempt; we answer
//! once and then give up, so a bad token fails fast with a clear [`GitError::Auth`] instead
//! of looping until libgit2's replay limit.

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

/// Installs the credential callback for `auth` on `callbacks`.
pub(crate) fn install_credentials<'a>(
    callbacks: &mut git2::RemoteCallbacks<'a>,
    auth: &'a GitAuth,
    outcome: &AuthOutcome,
) {
    let outcome = outcome.clone();
    let mut attempts = 0u32;
    callbacks.credentials(move |_url, _user_from_url, allowed| {
        attempts += 1;
        let refuse = |reason: &str| {
            *outcome.0.borrow_mut() = Some(reason.to_owned());
            Err(git2::Error::from_str(reason))
        };
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
