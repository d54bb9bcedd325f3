//! The process-wide shutdown signal.
//!
//! `patchpilot serve` fires it on SIGTERM/SIGINT. Boundaries that wait on their own (the GitHub
//! and model retry back-offs) watch it, so a worker parked in a back-off does not hold the
//! process up: the wait ends at once and the call returns its last error, which the worker
//! turns into a job handed back to the queue. It is a process global rather than an injected
//! value because it *is* one fact of the process (a signal arrived), read by clients built
//! deep inside settings code.

use std::sync::LazyLock;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

static SHUTDOWN: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

/// The token that is cancelled when the process begins to shut down.
pub fn token() -> &'static CancellationToken {
    &SHUTDOWN
}

/// Whether shutdown has begun.
pub fn requested() -> bool {
    SHUTDOWN.is_cancelled()
}

/// Begins shutdown: every back-off wait ends now.
pub fn begin() {
    SHUTDOWN.cancel();
}

/// Sleeps for `wait` unless `token` is cancelled first; true when the whole wait elapsed.
pub async fn sleep_unless_cancelled(wait: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = token.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancelled_token_ends_the_wait() {
        let token = CancellationToken::new();
        assert!(sleep_unless_cancelled(Duration::from_millis(1), &token).await);
        let waiting = tokio::spawn({
            let token = token.clone();
            async move { sleep_unless_cancelled(Duration::from_secs(3600), &token).await }
        });
        tokio::task::yield_now().await;
        token.cancel();
        assert!(!waiting.await.unwrap());
    }
}
