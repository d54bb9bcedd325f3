//! Classified retries for GitHub calls: a pure decision function plus the policy knobs.
//!
//! - Transport errors (no answer) and 5xx: retry with exponential backoff.
//! - 429, and 403 that carries rate-limit evidence (`Retry-After`, `x-ratelimit-remaining: 0`
//!   or a "rate limit" message): wait as GitHub asks — `Retry-After` seconds, else until
//!   `x-ratelimit-reset` — capped by [`RetryPolicy::max_rate_limit_wait`].
//!   <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>
//! - Every other 4xx (validation, permission, not found) is final: retrying cannot help.
//!
//! The decision takes "now" as an argument so it stays pure and testable. The wait itself
//! ([`wait_unless_shutdown`]) ends early when the process shuts down.

use std::time::Duration;

use http::HeaderMap;

/// How hard to try. Injected so tests can use tiny waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub max_attempts: u32,
    /// First backoff; doubles each attempt.
    pub base_delay: Duration,
    /// Cap on one backoff.
    pub max_delay: Duration,
    /// Cap on one rate-limit wait: we never park a session for an hour.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// What happened on one attempt.
#[derive(Debug)]
pub enum Attempt<'a> {
    /// No HTTP answer (connect error, timeout, reset).
    Transport,
    /// GitHub answered.
    Answered {
        status: u16,
        headers: &'a HeaderMap,
        body: &'a str,
    },
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wait, then try again.
    RetryAfter(Duration),
    /// Rate limited and out of attempts.
    RateLimitExhausted,
    /// Final: success, or an error retrying cannot fix.
    Stop,
}

/// Decides whether attempt number `attempt` (1-based) should be retried.
/// `now_unix` is the current time in seconds since the epoch (for `x-ratelimit-reset`).
pub fn classify(
    policy: &RetryPolicy,
    attempt: u32,
    outcome: &Attempt<'_>,
    now_unix: u64,
) -> Verdict {
    let out_of_attempts = attempt >= policy.max_attempts;
    let wait = match outcome {
        Attempt::Transport => Some(backoff(policy, attempt)),
        Attempt::Answered {
            status,
            headers,
            body,
        } => match *status {
            500..=599 => Some(backoff(policy, attempt)),
            429 => Some(rate_limit_wait(policy, attempt, headers, now_unix)),
            403 if is_rate_limited(headers, body) => {
                Some(rate_limit_wait(policy, attempt, headers, now_unix))
            }
            _ => None,
        },
    };
    let rate_limited = matches!(
        outcome,
        Attempt::Answered {
            status: 403 | 429,
            ..
        }
    );
    match wait {
        None => Verdict::Stop,
        Some(_) if out_of_attempts && rate_limited => Verdict::RateLimitExhausted,
        Some(_) if out_of_attempts => Verdict::Stop,
        Some(wait) => Verdict::RetryAfter(wait),
    }
}

/// Waits `wait` before the next attempt unless the process begins to shut down first; false
/// when shutdown cut it short (the caller then returns its last answer instead of retrying).
pub async fn wait_unless_shutdown(wait: Duration) -> bool {
    !crate::shutdown::requested()
        && crate::shutdown::sleep_unless_cancelled(wait, crate::shutdown::token()).await
}

fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    policy
        .base_delay
        .saturating_mul(factor)
        .min(policy.max_delay)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A 403 is a rate limit only with evidence; otherwise it is a real "forbidden".
fn is_rate_limited(headers: &HeaderMap, body: &str) -> bool {
    headers.contains_key("retry-after")
        || header_u64(headers, "x-ratelimit-remaining") == Some(0)
        || body.to_ascii_lowercase().contains("rate limit")
}

fn rate_limit_wait(
    policy: &RetryPolicy,
    attempt: u32,
    headers: &HeaderMap,
    now_unix: u64,
) -> Duration {
    let asked = if let Some(seconds) = header_u64(headers, "retry-after") {
        Duration::from_secs(seconds)
    } else if header_u64(headers, "x-ratelimit-remaining") == Some(0)
        && let Some(reset) = header_u64(headers, "x-ratelimit-reset")
    {
        Duration::from_secs(reset.saturating_sub(now_unix))
    } else {
        // Secondary limits without headers: GitHub asks for at least a minute.
        Duration::from_secs(60).max(backoff(policy, attempt))
    };
    asked.min(policy.max_rate_limit_wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
            max_rate_limit_wait: Duration::from_secs(30),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn answered(status: u16, headers: &HeaderMap, body: &'static str) -> Verdict {
        classify(
            &policy(),
            1,
            &Attempt::Answered {
                status,
                headers,
                body,
            },
            1_000,
        )
    }

    #[test]
    fn transport_errors_and_5xx_back_off_exponentially_up_to_the_cap() {
        let p = policy();
        assert_eq!(
            classify(&p, 1, &Attempt::Transport, 0),
            Verdict::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            classify(&p, 2, &Attempt::Transport, 0),
            Verdict::RetryAfter(Duration::from_secs(2))
        );
        let h = HeaderMap::new();
        let big = RetryPolicy {
            max_attempts: 10,
            ..p.clone()
        };
        let at = |n| {
            classify(
                &big,
                n,
                &Attempt::Answered {
                    status: 502,
                    headers: &h,
                    body: "",
                },
                0,
            )
        };
        assert_eq!(at(5), Verdict::RetryAfter(Duration::from_secs(3)));
    }

    #[test]
    fn the_last_attempt_is_final() {
        let h = HeaderMap::new();
        let p = policy();
        assert_eq!(classify(&p, 3, &Attempt::Transport, 0), Verdict::Stop);
        assert_eq!(
            classify(
                &p,
                3,
                &Attempt::Answered {
                    status: 429,
                    headers: &h,
                    body: ""
                },
                0
            ),
            Verdict::RateLimitExhausted
        );
    }

    #[test]
    fn client_errors_are_never_retried() {
        let h = HeaderMap::new();
        for status in [400, 401, 403, 404, 409, 410, 422] {
            assert_eq!(
                answered(status, &h, "Validation Failed"),
                Verdict::Stop,
                "{status}"
            );
        }
        assert_eq!(answered(200, &h, ""), Verdict::Stop);
        assert_eq!(answered(201, &h, ""), Verdict::Stop);
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            answered(429, &h, ""),
            Verdict::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            answered(403, &h, ""),
            Verdict::RetryAfter(Duration::from_secs(7))
        );
        let h = headers(&[("retry-after", "3600")]);
        assert_eq!(
            answered(429, &h, ""),
            Verdict::RetryAfter(Duration::from_secs(30))
        );
    }

    #[test]
    fn exhausted_primary_limit_waits_until_reset() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1012"),
        ]);
        assert_eq!(
            answered(403, &h, ""),
            Verdict::RetryAfter(Duration::from_secs(12))
        );
        let past = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]);
        assert_eq!(
            answered(429, &past, ""),
            Verdict::RetryAfter(Duration::ZERO)
        );
    }

    #[test]
    fn secondary_limit_without_headers_is_recognised_by_its_message() {
        let h = HeaderMap::new();
        let body = "You have exceeded a secondary rate limit. Please wait a few minutes.";
        assert_eq!(
            answered(403, &h, body),
            Verdict::RetryAfter(Duration::from_secs(30))
        );
        let forbidden = headers(&[("x-ratelimit-remaining", "4999")]);
        assert_eq!(
            answered(403, &forbidden, "Resource not accessible by integration"),
            Verdict::Stop
        );
    }
}
