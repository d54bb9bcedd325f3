//! Settings of the HTTP edge.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};

/// Settings of the HTTP server and the webhook intake.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Listen address.
    #[arg(long, env = "PATCHPILOT_ADDR", default_value = "0.0.0.0:3000")]
    pub addr: SocketAddr,
    /// Webhook secret(s); several comma-separated secrets are all accepted (rotation).
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", value_parser = secret, hide_env_values = true)]
    pub webhook_secret: Option<SecretString>,
    /// Bearer token required by the session API's write routes and listings.
    #[arg(long, env = "PATCHPILOT_API_TOKEN", value_parser = secret, hide_env_values = true)]
    pub api_token: Option<SecretString>,
    /// Public base URL of this server, used for links to session pages in comments.
    #[arg(long, env = "PATCHPILOT_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Issue label that starts a session.
    #[arg(long, env = "PATCHPILOT_LABEL", default_value = "patchpilot")]
    pub label: String,
    /// Largest accepted webhook body in bytes (GitHub caps payloads at 25 MB).
    #[arg(long, env = "PATCHPILOT_MAX_BODY_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Webhook bodies read and recorded at once; more are answered 503 with `Retry-After`
    /// before their body is read. Worst-case buffered memory is this times the body limit.
    #[arg(long, env = "PATCHPILOT_MAX_INFLIGHT_WEBHOOKS", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inflight_webhooks: u32,
    /// Seconds a webhook body may take to arrive; a slower sender is answered 408.
    #[arg(long, env = "PATCHPILOT_BODY_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_secs: u64,
    /// Seconds any request may take until its response starts; a slower one is answered 503
    /// with `Retry-After` (event streams count only the time to their first byte).
    #[arg(long, env = "PATCHPILOT_REQUEST_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Log format: `plain` or `json`.
    #[arg(long, env = "PATCHPILOT_LOG_FORMAT", default_value = "plain")]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Parses a secret given on the command line (surrounding whitespace, such as the newline of
/// `$(cat file)`, is not part of it). A blank flag is refused rather than taken as "no secret":
/// leave the flag out to switch the feature off. Blank environment values never get here
/// (see `config::parse_cli`).
pub fn secret(value: &str) -> Result<SecretString, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("the value is empty; leave the setting out to switch it off".to_owned());
    }
    Ok(SecretString::from(value.to_owned()))
}

/// `Some` only for a secret with non-whitespace content.
pub fn present(secret: Option<&SecretString>) -> Option<&SecretString> {
    secret.filter(|s| !s.expose_secret().trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_secret_flags_are_refused_and_values_trimmed() {
        assert!(secret("  ").is_err());
        assert_eq!(secret(" abc\n").unwrap().expose_secret(), "abc");
        assert!(present(Some(&SecretString::from(" "))).is_none());
    }
}
