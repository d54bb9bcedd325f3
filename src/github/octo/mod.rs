//! [`GitHub`] over octocrab, pointed at `GITHUB_API_URL`.
//!
//! octocrab is the HTTP transport (hyper + rustls, base URI joining for GitHub Enterprise's
//! `/api/v3` prefix, connect/read/write timeouts). Its own retry layer is switched off: we
//! retry through [`super::retry::classify`] so the rules are ours and tested. Responses are
//! decoded into narrow structs of only the fields we read, so GitHub adding or omitting
//! unrelated fields cannot break us.
//!
//! Tokens travel only in the `Authorization` header (marked sensitive). Errors carry the
//! method, the path (which never contains a secret) and GitHub's `message`.
//!
//! This file is the transport (auth headers, retries, timeouts); `api.rs` maps each domain
//! verb of [`GitHub`] to its REST route and narrow response struct.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method, header};
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::auth::{AppCredentials, CachedToken, GitHubArgs, GitHubConfigError, TokenCache};
use super::client::*;
use super::retry::{Attempt, RetryPolicy, Verdict, classify};
use super::types::{InstallationId, RepoName};

/// The production GitHub client.
pub struct OctocrabGitHub {
    octo: Octocrab,
    app: AppCredentials,
    tokens: TokenCache,
    bot_login: OnceCell<String>,
    timeout: Duration,
    retry: RetryPolicy,
}

/// Which credential a request carries.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// The App JWT (App-level endpoints).
    App,
    /// An installation token scoped to one repository.
    Repo(InstallationId, &'a RepoName),
}

/// A response read to the end.
struct Answer {
    status: u16,
    body: String,
    route: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn message(&self) -> String {
        #[derive(Deserialize)]
        struct ErrorBody {
            message: Option<String>,
        }
        serde_json::from_str::<ErrorBody>(&self.body)
            .ok()
            .and_then(|b| b.message)
            .unwrap_or_else(|| self.body.chars().take(200).collect())
    }

    fn into_error(self) -> GitHubError {
        let message = self.message();
        GitHubError::Api {
            status: self.status,
            route: self.route,
            message,
        }
    }

    /// Decodes a 2xx body; any other status is an [`GitHubError::Api`].
    fn json<T: DeserializeOwned>(self) -> GitHubResult<T> {
        if !self.ok() {
            return Err(self.into_error());
        }
        serde_json::from_str(&self.body).map_err(|e| GitHubError::Decode {
            route: self.route,
            message: e.to_string(),
        })
    }

    fn empty(self) -> GitHubResult<()> {
        if self.ok() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

/// Percent-encodes a path segment (keeping `/` when `keep_slash`, for file paths).
fn encode(segment: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

fn repo_path(repo: &RepoName) -> String {
    format!(
        "/repos/{}/{}",
        encode(&repo.owner, false),
        encode(&repo.name, false)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OctocrabGitHub {
    /// A client for the API at `api_url` (e.g. `https://api.github.com`).
    pub fn new(
        api_url: &str,
        app: AppCredentials,
        bot_login: Option<String>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, GitHubConfigError> {
        let bad_url = || GitHubConfigError::BadApiUrl {
            url: api_url.to_owned(),
        };
        let parsed = url::Url::parse(api_url).map_err(|_| bad_url())?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(bad_url());
        }
        let octo = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|_| bad_url())?
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(timeout))
            .set_read_timeout(Some(timeout))
            .set_write_timeout(Some(timeout))
            .build()
            .map_err(|e| GitHubConfigError::Client(e.to_string()))?;
        Ok(Self {
            octo,
            app,
            tokens: TokenCache::default(),
            bot_login: OnceCell::new_with(bot_login),
            timeout,
            retry,
        })
    }

    /// Boxed: minting a token goes through `send`, which asks for an auth header, so the
    /// futures would otherwise contain themselves.
    fn auth_header<'a>(&'a self, auth: Auth<'a>) -> BoxFuture<'a, GitHubResult<HeaderValue>> {
        Box::pin(async move {
            let secret = match auth {
                Auth::App => self.app.jwt(Utc::now()).map_err(GitHubError::Auth)?,
                Auth::Repo(inst, repo) => self.token(inst, repo).await?,
            };
            let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret()))
                .map_err(|_| GitHubError::Auth("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            Ok(value)
        })
    }

    async fn token(&self, inst: InstallationId, repo: &RepoName) -> GitHubResult<SecretString> {
        self.tokens
            .get_or_mint(inst, Some(repo), Utc::now(), || self.mint(inst, repo))
            .await
    }

    /// `POST /app/installations/{id}/access_tokens`, scoped to one repository.
    async fn mint(&self, inst: InstallationId, repo: &RepoName) -> GitHubResult<CachedToken> {
        #[derive(Deserialize)]
        struct TokenBody {
            token: String,
            expires_at: DateTime<Utc>,
        }
        let path = format!("/app/installations/{inst}/access_tokens");
        let body = json!({ "repositories": [repo.name] });
        let answer: TokenBody = self
            .send(Auth::App, Method::POST, &path, Some(&body))
            .await?
            .json()?;
        Ok(CachedToken {
            token: answer.token.into(),
            expires_at: answer.expires_at,
        })
    }

    /// One logical call with classified retries. Returns any final answer (2xx or not);
    /// callers decide what a 404 or 422 means.
    async fn send(
        &self,
        auth: Auth<'_>,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> GitHubResult<Answer> {
        let route = format!(
            "{method} {}",
            path_and_query.split('?').next().unwrap_or_default()
        );
        let mut refreshed_after_401 = false;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(auth, &method, path_and_query, body).await;
            let (verdict, result) = match outcome {
                Ok((status, headers, text)) => {
                    let verdict = classify(
                        &self.retry,
                        attempt,
                        &Attempt::Answered {
                            status,
                            headers: &headers,
                            body: &text,
                        },
                        unix_now(),
                    );
                    (
                        verdict,
                        Ok(Answer {
                            status,
                            body: text,
                            route: route.clone(),
                        }),
                    )
                }
                Err(message) => (
                    classify(&self.retry, attempt, &Attempt::Transport, unix_now()),
                    Err(GitHubError::Transport {
                        route: route.clone(),
                        message,
                    }),
                ),
            };
            // A revoked or expired installation token: mint a new one once.
            if let (Ok(Answer { status: 401, .. }), Auth::Repo(inst, _)) = (&result, auth)
                && !refreshed_after_401
            {
                refreshed_after_401 = true;
                self.tokens.forget(inst).await;
                continue;
            }
            match verdict {
                Verdict::Stop => return result,
                Verdict::RateLimitExhausted => {
                    return Err(GitHubError::RateLimited {
                        route,
                        attempts: attempt,
                    });
                }
                Verdict::RetryAfter(wait) => {
                    let why = match &result {
                        Ok(answer) => format!("status {}", answer.status),
                        Err(err) => err.to_string(),
                    };
                    tracing::warn!(%route, attempt, wait_ms = wait.as_millis() as u64, %why, "retrying GitHub call");
                    if !super::retry::wait_unless_shutdown(wait).await {
                        tracing::info!(%route, attempt, "GitHub retry abandoned: shutting down");
                        return result;
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// One HTTP exchange under the overall timeout. Errors are Display strings only
    /// (octocrab's Debug output is a backtrace, and nothing here may hold a token).
    async fn attempt(
        &self,
        auth: Auth<'_>,
        method: &Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(u16, HeaderMap, String), String> {
        let authorization = self.auth_header(auth).await.map_err(|e| e.to_string())?;
        let builder = http::Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header(header::AUTHORIZATION, authorization);
        let request = self
            .octo
            .build_request(builder, body)
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .octo
                .execute(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = self
                .octo
                .body_to_string(response)
                .await
                .map_err(|e| e.to_string())?;
            Ok((status, headers, text))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs_f32())),
        }
    }

    async fn repo_json<T: DeserializeOwned>(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        method: Method,
        tail: &str,
        body: Option<&Value>,
    ) -> GitHubResult<T> {
        let path = format!("{}{tail}", repo_path(repo));
        self.send(Auth::Repo(inst, repo), method, &path, body)
            .await?
            .json()
    }
}

mod api;
mod iteration_api;

/// The client is built here, from the settings `auth` parses, so that `auth` needs nothing
/// of octocrab.
impl GitHubArgs {
    /// The configured client, or `None` when no App is configured at all.
    pub fn build(&self) -> Result<Option<Arc<dyn GitHub>>, GitHubConfigError> {
        let Some(credentials) = self.credentials()? else {
            return Ok(None);
        };
        let client = OctocrabGitHub::new(
            &self.github_api_url,
            credentials,
            self.bot_login.clone(),
            Duration::from_secs(self.github_timeout_secs.max(1)),
            RetryPolicy::default(),
        )?;
        Ok(Some(Arc::new(client)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("fix/a b#1", false), "fix%2Fa%20b%231");
        assert_eq!(
            encode(".github/patchpilot.yml", true),
            ".github/patchpilot.yml"
        );
        assert_eq!(query(&[("q", "repo:o/r is:pr")]), "q=repo%3Ao%2Fr+is%3Apr");
    }
}
