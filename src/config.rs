//! Settings for `patchpilot serve`, from flags or the environment, validated once at start-up.
//!
//! Every option has an environment variable (the names in DESIGN.md). Secrets are
//! `SecretString`s so they cannot be printed by accident. Features whose settings are missing
//! are switched off with one log line each; invalid settings stop start-up with one sentence.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

/// Parses a secret from the command line or environment.
pub fn secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_owned()))
}

/// Database settings, shared by `serve` and `migrate`.
#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Where state lives: `sqlite://file.db` (default, created if missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://patchpilot.db")]
    pub database_url: String,
}

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
    /// Log format: `plain` or `json`.
    #[arg(long, env = "PATCHPILOT_LOG_FORMAT", default_value = "plain")]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Everything `patchpilot serve` takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[command(flatten)]
    pub sandbox: crate::sandbox::SandboxArgs,
    #[command(flatten)]
    pub github: crate::github::auth::GitHubArgs,
    #[command(flatten)]
    pub model: crate::llm::ModelArgs,
    #[command(flatten)]
    pub exa: crate::agent::exa::ExaArgs,
}

/// Settings of the worker that runs sessions.
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// How many sessions run at once on this replica.
    #[arg(long, env = "PATCHPILOT_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// Directory for the repository cache and per-session work trees.
    #[arg(long, env = "PATCHPILOT_DATA_DIR", default_value = ".patchpilot")]
    pub data_dir: PathBuf,
}

/// The accepted webhook secrets, parsed from the comma-separated setting.
#[derive(Clone)]
pub struct WebhookSecrets(Vec<SecretString>);

impl WebhookSecrets {
    /// `None` when no non-empty secret is given.
    pub fn parse(setting: &SecretString) -> Option<Self> {
        let secrets: Vec<SecretString> = setting
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        (!secrets.is_empty()).then_some(Self(secrets))
    }

    pub fn iter(&self) -> impl Iterator<Item = &SecretString> {
        self.0.iter()
    }
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets([{} redacted])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_split_on_commas_and_skip_blanks() {
        let parsed =
            WebhookSecrets::parse(&SecretString::from(" old , new ,,".to_owned())).unwrap();
        let values: Vec<&str> = parsed.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(values, ["old", "new"]);
        assert!(WebhookSecrets::parse(&SecretString::from(" , ".to_owned())).is_none());
        assert_eq!(format!("{parsed:?}"), "WebhookSecrets([2 redacted])");
    }
}
