//! Optional web search through Exa, to add outside fixes (forum answers, upstream issues) to
//! the similar-fixes step when `EXA_API_KEY` is set.
//!
//! Wire format: `POST {base}/search` with header `x-api-key` and a JSON body `{query,
//! numResults, type: "auto", contents: {text: {maxCharacters}}}`; the answer is `{results:
//! [{title, url, text?, highlights?, ...}]}`. Unknown fields are ignored and a missing title
//! falls back to the URL. One attempt with a short timeout and no retries: the similar-fixes
//! step never fails a session, so the caller logs an error and moves on.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

/// Default Exa endpoint.
pub const DEFAULT_EXA_BASE_URL: &str = "https://api.exa.ai";
/// Longest snippet kept per result.
const MAX_SNIPPET_BYTES: usize = 400;
/// Most results asked for, whatever the caller wants.
const MAX_RESULTS: usize = 10;

/// Exa settings; search is off without a key.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ExaArgs {
    /// Exa API key; enables web search for similar fixes.
    #[arg(long, env = "EXA_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub exa_api_key: Option<SecretString>,
    /// Exa API base URL [default: https://api.exa.ai].
    #[arg(long, env = "EXA_BASE_URL")]
    pub exa_base_url: Option<String>,
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// One web result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebResult {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

/// Why a search failed. `Display` is bounded and never contains the key.
#[derive(Debug, thiserror::Error)]
pub enum ExaError {
    #[error("invalid Exa configuration: {0}")]
    Config(String),
    #[error("Exa search request failed: {0}")]
    Request(String),
    #[error("Exa search returned HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("Exa search sent an unusable response: {0}")]
    InvalidResponse(String),
}

/// A client for Exa's search endpoint.
#[derive(Debug, Clone)]
pub struct ExaClient {
    endpoint: String,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl ExaClient {
    /// A client for `base_url` (e.g. [`DEFAULT_EXA_BASE_URL`]) authenticating with `key`.
    pub fn new(base_url: &str, key: SecretString) -> Result<Self, ExaError> {
        let base = base_url.trim().trim_end_matches('/');
        let parsed = url::Url::parse(base).map_err(|e| ExaError::Config(format!("{base}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ExaError::Config(format!("{base}: not an http(s) URL")));
        }
        let mut value = HeaderValue::from_str(key.expose_secret().trim())
            .map_err(|_| ExaError::Config("EXA_API_KEY is not a valid header value".into()))?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x-api-key"), value);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("patchpilot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ExaError::Config(e.to_string()))?;
        Ok(Self {
            endpoint: format!("{base}/search"),
            headers,
            client,
        })
    }

    /// The client the settings ask for: `None` without a key.
    pub fn from_args(args: &ExaArgs) -> Result<Option<Self>, ExaError> {
        let Some(key) = &args.exa_api_key else {
            return Ok(None);
        };
        let base = args
            .exa_base_url
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or(DEFAULT_EXA_BASE_URL);
        Self::new(base, key.clone()).map(Some)
    }

    /// Up to `n` results for `query` (at most 10).
    pub async fn search(&self, query: &str, n: usize) -> Result<Vec<WebResult>, ExaError> {
        let n = n.clamp(1, MAX_RESULTS);
        let body = json!({
            "query": query,
            "numResults": n,
            "type": "auto",
            "contents": { "text": { "maxCharacters": MAX_SNIPPET_BYTES } },
        });
        let response = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| ExaError::Request(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ExaError::Request(e.to_string()))?;
        if !status.is_success() {
            let (kind, message) = crate::llm::describe_error_body(&bytes);
            let message = match kind {
                Some(kind) => format!("{kind}: {message}"),
                None => message,
            };
            return Err(ExaError::Status {
                status: status.as_u16(),
                message,
            });
        }
        let mut results = parse_results(&bytes)?;
        results.truncate(n);
        Ok(results)
    }
}

#[derive(Deserialize)]
struct WireResponse {
    results: Vec<WireResult>,
}

#[derive(Deserialize)]
struct WireResult {
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    highlights: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
}

/// Results with a URL, each with a one-line bounded snippet.
pub fn parse_results(body: &[u8]) -> Result<Vec<WebResult>, ExaError> {
    let wire: WireResponse = serde_json::from_slice(body)
        .map_err(|e| ExaError::InvalidResponse(format!("not a search response ({e})")))?;
    Ok(wire
        .results
        .into_iter()
        .filter_map(|r| {
            let url = r.url.filter(|u| !u.trim().is_empty())?;
            let snippet = r
                .highlights
                .and_then(|h| h.into_iter().find(|s| !s.trim().is_empty()))
                .or(r.summary)
                .or(r.text)
                .unwrap_or_default();
            let snippet = snippet.split_whitespace().collect::<Vec<_>>().join(" ");
            Some(WebResult {
                title: r
                    .title
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| url.clone()),
                snippet: crate::agent::prompt::head(&snippet, MAX_SNIPPET_BYTES)
                    .replace("\n[... truncated]", "…"),
                url,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_leniently() {
        let body = br#"{"requestId":"r","resolvedSearchType":"neural","results":[
            {"id":"1","url":"https://stackoverflow.com/q/1","title":"ZeroDivisionError in calc","score":0.9,
             "text":"When you divide\n by zero ...","publishedDate":null},
            {"id":"2","url":"https://example.com/x","title":null,"highlights":["", "the fix is to check b"]},
            {"id":"3","title":"no url"}
        ],"costDollars":{"total":0.005}}"#;
        let r = parse_results(body).unwrap();
        assert_eq!(
            r,
            vec![
                WebResult {
                    title: "ZeroDivisionError in calc".into(),
                    url: "https://stackoverflow.com/q/1".into(),
                    snippet: "When you divide by zero ...".into(),
                },
                WebResult {
                    title: "https://example.com/x".into(),
                    url: "https://example.com/x".into(),
                    snippet: "the fix is to check b".into(),
                },
            ]
        );
    }

    #[test]
    fn long_snippets_are_bounded() {
        let text = "word ".repeat(1000);
        let body =
            serde_json::to_vec(&json!({"results": [{"url": "https://a", "text": text}]})).unwrap();
        let r = parse_results(&body).unwrap();
        assert!(r[0].snippet.len() <= MAX_SNIPPET_BYTES + 3);
        assert!(r[0].snippet.ends_with('…'));
    }

    #[test]
    fn no_key_means_no_client() {
        assert!(ExaClient::from_args(&ExaArgs::default()).unwrap().is_none());
        assert!(ExaClient::new("file:///x", SecretString::from("k")).is_err());
    }
}
