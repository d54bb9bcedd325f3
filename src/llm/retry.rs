//! Sending one JSON request to a model endpoint with timeouts and retries.
//!
//! Classification (shared by both clients):
//! - retried: connection errors, timeouts, 408, 409, 429, every 5xx (including Anthropic's 529
//!   `overloaded_error`);
//! - never retried: any other status, since a 400/401/403/404 will not get better by waiting.
//!
//! The wait before a retry honours the server: `retry-after-ms` (OpenAI), then `retry-after`
//! as seconds or as an HTTP date; otherwise exponential backoff with jitter. A server-given
//! wait is capped by [`RetryPolicy::max_retry_after`] so a hostile or confused endpoint cannot
//! park a session for hours (the session's wall-time budget bounds it anyway).
//!
//! Sleeping goes through [`Sleeper`] so tests can record the waits instead of asserting timings.
//! Once the process begins to shut down no further attempt is made and a wait in progress ends
//! (the default sleeper watches [`crate::shutdown`]), so SIGTERM is not held up by a back-off.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::{ModelError, error_body};

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (at least 1).
    pub max_attempts: u32,
    /// First backoff when the server gives no `retry-after`; doubles each retry.
    pub base_delay: Duration,
    /// Cap on the computed backoff.
    pub max_delay: Duration,
    /// Cap on a server-requested wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based), without a server hint.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        // "Equal jitter": between half and all of the computed delay, so many sessions that
        // failed together do not retry together.
        let half = full / 2;
        let jitter_ms = rand::random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter_ms).min(half)
    }
}

/// Waits between attempts. The default sleeps on tokio's clock.
pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// Sleeps with `tokio::time::sleep` (which honours tokio's paused test clock), waking early
/// when the process begins to shut down.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(async move {
            crate::shutdown::sleep_unless_cancelled(duration, crate::shutdown::token()).await;
        })
    }
}

/// A reqwest client plus the timeout and retry policy, shared by the model clients.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    timeout: Duration,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What one attempt produced, before deciding whether to retry.
enum Attempt {
    Done(bytes::Bytes),
    Retry {
        err: ModelError,
        wait: Option<Duration>,
    },
    Fail(ModelError),
}

impl Transport {
    pub(crate) fn new(
        timeout: Duration,
        policy: RetryPolicy,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("patchpilot/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            timeout,
            policy,
            sleeper,
        })
    }

    /// GETs `url` once, with a short timeout, for optional server metadata (context size):
    /// `Ok(Some(json))` for a 2xx JSON answer, `Ok(None)` for any other answer (the server does
    /// not offer it), `Err(())` when the server could not be reached (worth asking again later).
    pub(crate) async fn get_metadata(
        &self,
        url: &str,
        headers: &HeaderMap,
    ) -> Result<Option<serde_json::Value>, ()> {
        /// Metadata answers are small (llama.cpp's `/props` with its chat template is ~10 KB).
        const MAX_METADATA_BYTES: u64 = 1024 * 1024;
        let response = self
            .client
            .get(url)
            .headers(headers.clone())
            .timeout(self.timeout.min(Duration::from_secs(10)))
            .send()
            .await
            .map_err(|_| ())?;
        if !response.status().is_success()
            || response
                .content_length()
                .is_some_and(|n| n > MAX_METADATA_BYTES)
        {
            return Ok(None);
        }
        let Ok(bytes) = response.bytes().await else {
            return Err(());
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// POSTs `body` to `url` and returns the 2xx response body, retrying as documented above.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &serde_json::Value,
    ) -> Result<bytes::Bytes, ModelError> {
        let max_attempts = self.policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.attempt(url, headers, body, attempt).await {
                Attempt::Done(bytes) => return Ok(bytes),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry { err, wait } => {
                    if attempt >= max_attempts || crate::shutdown::requested() {
                        return Err(err);
                    }
                    let wait = match wait {
                        Some(server) => server.min(self.policy.max_retry_after),
                        None => self.policy.backoff(attempt),
                    };
                    tracing::warn!(error = %err, wait_ms = wait.as_millis() as u64, "model call failed; retrying");
                    self.sleeper.sleep(wait).await;
                    // Shutdown cut the wait short: give the caller the last error now.
                    if crate::shutdown::requested() {
                        return Err(err);
                    }
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &serde_json::Value,
        attempt: u32,
    ) -> Attempt {
        let sent = self
            .client
            .post(url)
            .headers(headers.clone())
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return self.transport_error(url, &e, attempt),
        };
        let status = response.status();
        let wait = retry_after(response.headers(), SystemTime::now());
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return self.transport_error(url, &e, attempt),
        };
        if status.is_success() {
            return Attempt::Done(bytes);
        }
        let (kind, message) = error_body::describe(&bytes);
        let err = ModelError::Status {
            endpoint: url.to_owned(),
            status: status.as_u16(),
            kind,
            message,
            attempts: attempt,
        };
        if is_retryable(status) {
            Attempt::Retry { err, wait }
        } else {
            Attempt::Fail(err)
        }
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error, attempt: u32) -> Attempt {
        if e.is_timeout() {
            return Attempt::Retry {
                err: ModelError::Timeout {
                    endpoint: url.to_owned(),
                    timeout_secs: self.timeout.as_secs_f64().ceil() as u64,
                    attempts: attempt,
                },
                wait: None,
            };
        }
        let err = ModelError::Connection {
            endpoint: url.to_owned(),
            message: describe_reqwest(e),
            attempts: attempt,
        };
        if e.is_connect() || e.is_request() || e.is_body() {
            Attempt::Retry { err, wait: None }
        } else {
            Attempt::Fail(err)
        }
    }
}

/// reqwest's own message plus its innermost cause ("connection refused", ...), bounded.
fn describe_reqwest(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    if let Some(mut root) = e.source() {
        while let Some(next) = root.source() {
            root = next;
        }
        text = format!("{text}: {root}");
    }
    super::truncate_for_display(&text, 300)
}

/// Whether waiting and trying again can help.
pub fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// The server-requested wait, from `retry-after-ms` or `retry-after` (seconds or HTTP date).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return duration_from_secs(ms / 1000.0);
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return duration_from_secs(secs);
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    // A date in the past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn duration_from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_ms_wins() {
        let h = headers(&[("retry-after", "7"), ("retry-after-ms", "250")]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn retry_after_http_date() {
        let now =
            SystemTime::from(chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z").unwrap());
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        let later = now + Duration::from_secs(3600);
        assert_eq!(retry_after(&h, later), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        let h = headers(&[("retry-after", "soon")]);
        assert_eq!(retry_after(&h, SystemTime::now()), None);
        let h = headers(&[("retry-after", "-3")]);
        assert_eq!(retry_after(&h, SystemTime::now()), None);
        assert_eq!(retry_after(&HeaderMap::new(), SystemTime::now()), None);
    }

    #[test]
    fn classification() {
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(is_retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!is_retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = p.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }
}
