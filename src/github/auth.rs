//! GitHub App authentication: settings, the App JWT, and cached installation tokens.
//!
//! - The App JWT (RS256) is signed with the App's private key; `iat` is back-dated 60 s for
//!   clock skew and `exp` is 9 minutes ahead, inside GitHub's 10-minute limit
//!   (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>).
//! - Installation tokens live one hour. They are cached per (installation, repository) and
//!   replaced once less than [`REFRESH_MARGIN`] remains, so no request starts with a token
//!   about to die mid-clone.
//! - Secrets are `SecretString` (or a key that has no `Debug` output) so they cannot be
//!   printed by accident.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use octocrab::jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::Mutex;

use super::types::{InstallationId, RepoName};

/// Tokens with less than this left are replaced before use.
pub const REFRESH_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// GitHub App settings (flattened into the CLI by the lead).
#[derive(clap::Args, Debug, Clone)]
pub struct GitHubArgs {
    /// The GitHub App's numeric id. Without it PatchPilot runs without GitHub.
    #[arg(long, env = "GITHUB_APP_ID")]
    pub github_app_id: Option<u64>,
    /// The App's private key (PEM text).
    #[arg(long, env = "GITHUB_PRIVATE_KEY", hide_env_values = true)]
    pub github_private_key: Option<SecretString>,
    /// Path to the App's private key PEM file (alternative to GITHUB_PRIVATE_KEY).
    #[arg(long, env = "GITHUB_PRIVATE_KEY_PATH")]
    pub github_private_key_path: Option<PathBuf>,
    /// REST API base URL; GitHub Enterprise Server uses `https://HOST/api/v3`.
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com")]
    pub github_api_url: String,
    /// The App's bot login (`<slug>[bot]`); looked up with `GET /app` when absent.
    #[arg(long, env = "PATCHPILOT_BOT_LOGIN")]
    pub bot_login: Option<String>,
    /// Per-request timeout for GitHub calls, in seconds.
    #[arg(long, env = "PATCHPILOT_GITHUB_TIMEOUT_SECS", default_value_t = 30)]
    pub github_timeout_secs: u64,
}

/// Why the GitHub settings cannot be used. Each message is one sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum GitHubConfigError {
    #[error("GITHUB_APP_ID is set but neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH is")]
    MissingKey,
    #[error("set only one of GITHUB_PRIVATE_KEY and GITHUB_PRIVATE_KEY_PATH")]
    TwoKeys,
    #[error("a GitHub private key is set but GITHUB_APP_ID is not")]
    MissingAppId,
    #[error("cannot read GITHUB_PRIVATE_KEY_PATH {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the GitHub App private key is not an RSA key in PEM format: {0}")]
    BadKey(String),
    #[error("GITHUB_API_URL {url:?} is not a valid http(s) URL")]
    BadApiUrl { url: String },
    #[error("cannot build the GitHub HTTP client: {0}")]
    Client(String),
}

impl GitHubArgs {
    /// The App credentials, or `None` when neither an id nor a key is configured.
    pub fn credentials(&self) -> Result<Option<AppCredentials>, GitHubConfigError> {
        let pem = match (&self.github_private_key, &self.github_private_key_path) {
            (Some(_), Some(_)) => return Err(GitHubConfigError::TwoKeys),
            (Some(key), None) => Some(key.expose_secret().as_bytes().to_vec()),
            (None, Some(path)) => {
                Some(
                    std::fs::read(path).map_err(|source| GitHubConfigError::ReadKey {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            (None, None) => None,
        };
        match (self.github_app_id, pem) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(GitHubConfigError::MissingKey),
            (None, Some(_)) => Err(GitHubConfigError::MissingAppId),
            (Some(app_id), Some(pem)) => AppCredentials::from_pem(app_id, &pem).map(Some),
        }
    }
}

/// The App id and its signing key. Deliberately not `Debug`-printing the key.
#[derive(Clone)]
pub struct AppCredentials {
    app_id: u64,
    key: EncodingKey,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

impl AppCredentials {
    pub fn from_pem(app_id: u64, pem: &[u8]) -> Result<Self, GitHubConfigError> {
        let key =
            EncodingKey::from_rsa_pem(pem).map_err(|e| GitHubConfigError::BadKey(e.to_string()))?;
        Ok(Self { app_id, key })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// A fresh App JWT valid from 60 s before `now` to 9 minutes after it.
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<SecretString, String> {
        let claims = Claims {
            iat: now.timestamp() - 60,
            exp: now.timestamp() + 9 * 60,
            iss: self.app_id.to_string(),
        };
        octocrab::jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(SecretString::from)
            .map_err(|e| format!("cannot sign the App JWT: {e}"))
    }
}

/// A minted installation token and when it dies.
#[derive(Clone)]
pub struct CachedToken {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
}

impl CachedToken {
    /// Usable at `now` with the refresh margin to spare.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.expires_at - now > REFRESH_MARGIN
    }
}

/// Installation tokens keyed by installation and repository scope.
///
/// One async mutex over the map: concurrent callers for the same key wait for the first
/// mint instead of minting several tokens (GitHub rate-limits token creation too).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(InstallationId, Option<RepoName>), CachedToken>>,
}

impl TokenCache {
    /// Returns a fresh cached token or mints one with `mint` and caches it.
    pub async fn get_or_mint<F, Fut, E>(
        &self,
        inst: InstallationId,
        repo: Option<&RepoName>,
        now: DateTime<Utc>,
        mint: F,
    ) -> Result<SecretString, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedToken, E>>,
    {
        let mut tokens = self.tokens.lock().await;
        let key = (inst, repo.cloned());
        if let Some(cached) = tokens.get(&key).filter(|t| t.is_fresh(now)) {
            return Ok(cached.token.clone());
        }
        let fresh = mint().await?;
        let token = fresh.token.clone();
        tokens.insert(key, fresh);
        Ok(token)
    }

    /// Forgets every token of an installation (after a 401, or when it is uninstalled).
    pub async fn forget(&self, inst: InstallationId) {
        self.tokens.lock().await.retain(|(i, _), _| *i != inst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use octocrab::jsonwebtoken::{DecodingKey, Validation, decode};

    const KEY: &str = include_str!("../../tests/fixtures/test-app-key.pem");
    const PUB: &str = include_str!("../../tests/fixtures/test-app-key.pub.pem");

    fn args() -> GitHubArgs {
        GitHubArgs {
            github_app_id: None,
            github_private_key: None,
            github_private_key_path: None,
            github_api_url: "https://api.github.com".into(),
            bot_login: None,
            github_timeout_secs: 30,
        }
    }

    #[test]
    fn jwt_is_rs256_backdated_and_short_lived() {
        let creds = AppCredentials::from_pem(42, KEY.as_bytes()).unwrap();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let jwt = creds.jwt(now).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iat", "exp", "iss"]);
        let data = decode::<serde_json::Value>(
            jwt.expose_secret(),
            &DecodingKey::from_rsa_pem(PUB.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(data.claims["iss"], "42");
        assert_eq!(data.claims["iat"], 1_700_000_000 - 60);
        assert_eq!(data.claims["exp"], 1_700_000_000 + 540);
    }

    #[test]
    fn no_app_settings_means_no_github() {
        assert!(args().build().unwrap().is_none());
    }

    #[test]
    fn half_configured_app_is_one_clear_sentence() {
        let only_id = GitHubArgs {
            github_app_id: Some(1),
            ..args()
        };
        assert_eq!(
            only_id.credentials().unwrap_err().to_string(),
            "GITHUB_APP_ID is set but neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH is"
        );
        let only_key = GitHubArgs {
            github_private_key: Some(KEY.into()),
            ..args()
        };
        assert!(matches!(
            only_key.credentials(),
            Err(GitHubConfigError::MissingAppId)
        ));
        let bad_key = GitHubArgs {
            github_app_id: Some(1),
            github_private_key: Some("nope".into()),
            ..args()
        };
        assert!(matches!(
            bad_key.credentials(),
            Err(GitHubConfigError::BadKey(_))
        ));
        let missing = GitHubArgs {
            github_app_id: Some(1),
            github_private_key_path: Some("/nonexistent/key.pem".into()),
            ..args()
        };
        assert!(
            missing
                .credentials()
                .unwrap_err()
                .to_string()
                .starts_with("cannot read")
        );
    }

    #[test]
    fn bad_api_url_is_rejected_at_start_up() {
        let a = GitHubArgs {
            github_app_id: Some(1),
            github_private_key: Some(KEY.into()),
            github_api_url: "not a url".into(),
            ..args()
        };
        assert!(matches!(
            a.build(),
            Err(GitHubConfigError::BadApiUrl { .. })
        ));
    }

    #[tokio::test]
    async fn cache_reuses_fresh_tokens_and_replaces_ones_near_expiry() {
        let cache = TokenCache::default();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let repo = RepoName::new("o", "r");
        let mint = |tag: &'static str, minutes| {
            move || async move {
                Ok::<_, ()>(CachedToken {
                    token: tag.into(),
                    expires_at: now + chrono::TimeDelta::minutes(minutes),
                })
            }
        };
        let a = cache
            .get_or_mint(InstallationId(1), Some(&repo), now, mint("a", 60))
            .await
            .unwrap();
        let b = cache
            .get_or_mint(InstallationId(1), Some(&repo), now, mint("b", 60))
            .await
            .unwrap();
        assert_eq!((a.expose_secret(), b.expose_secret()), ("a", "a"));
        let later = now + chrono::TimeDelta::minutes(51);
        let c = cache
            .get_or_mint(InstallationId(1), Some(&repo), later, mint("c", 60))
            .await
            .unwrap();
        assert_eq!(c.expose_secret(), "c");
        let other = cache
            .get_or_mint(InstallationId(2), Some(&repo), now, mint("d", 60))
            .await
            .unwrap();
        assert_eq!(other.expose_secret(), "d");
        cache.forget(InstallationId(1)).await;
        let e = cache
            .get_or_mint(InstallationId(1), Some(&repo), later, mint("e", 60))
            .await
            .unwrap();
        assert_eq!(e.expose_secret(), "e");
    }
}
