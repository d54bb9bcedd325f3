//! Settings for `patchpilot serve`, from flags or the environment, validated once at start-up.
//!
//! Every option has an environment variable (the names in DESIGN.md). Secrets are
//! `SecretString`s so they cannot be printed by accident. Features whose settings are missing
//! are switched off with one log line each; invalid settings stop start-up with one sentence.
//!
//! Blank means unset: clap keeps `VAR=` (what docker-compose's `${VAR}` gives for a missing
//! variable) as `Some("")`, which once switched the API token "on" with an empty value. So the
//! command line is parsed through [`parse_cli`], which drops the environment binding of every
//! argument whose variable is empty or whitespace: that setting then gets its default, or
//! stays `None`, exactly as if the variable were absent. This covers every setting of every
//! subcommand, including those defined in other modules, without each having to remember.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

/// Parses a secret given on the command line (surrounding whitespace, such as the newline of
/// `$(cat file)`, is not part of it). A blank flag is refused rather than taken as "no secret":
/// leave the flag out to switch the feature off. Blank environment values never get here
/// (see [`parse_cli`]).
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

/// Parses the process's command line and environment into `T`, with blank environment
/// variables treated as unset; exits with clap's message on invalid input.
pub fn parse_cli<T: clap::Parser>() -> T {
    let mut command = blank_env_is_unset(T::command(), &|name| std::env::var_os(name));
    let mut matches = command.clone().get_matches();
    T::from_arg_matches_mut(&mut matches).unwrap_or_else(|err| err.format(&mut command).exit())
}

/// `command` (and its subcommands) with the environment binding removed from every argument
/// whose variable `lookup` finds blank.
pub fn blank_env_is_unset(
    command: clap::Command,
    lookup: &dyn Fn(&OsStr) -> Option<OsString>,
) -> clap::Command {
    let is_blank =
        |name: &OsStr| lookup(name).is_some_and(|value| value.to_string_lossy().trim().is_empty());
    let blank: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| arg.get_env().is_some_and(is_blank))
        .map(|arg| arg.get_id().clone())
        .collect();
    let command = blank.into_iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| arg.env(None::<&str>))
    });
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    subcommands.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, |sub| blank_env_is_unset(sub, lookup))
    })
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
    /// Seconds a running session's lease lasts without a heartbeat (heartbeats come four times
    /// per lease). After a crash, another replica resumes the session once it runs out.
    #[arg(long, env = "PATCHPILOT_LEASE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_secs: u64,
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
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn env_names(command: &clap::Command) -> Vec<String> {
        command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_blank_setting_loses_its_environment_binding() {
        let all = env_names(&Cli::command());
        for name in [
            "PATCHPILOT_API_TOKEN",
            "GITHUB_WEBHOOK_SECRET",
            "PATCHPILOT_PUBLIC_URL",
            "GITHUB_APP_ID",
            "GITHUB_PRIVATE_KEY",
            "GITHUB_PRIVATE_KEY_PATH",
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "PATCHPILOT_MODEL",
            "EXA_API_KEY",
        ] {
            assert!(all.iter().any(|n| n == name), "{name} is not a setting");
        }
        let blank = |_: &OsStr| Some(OsString::from(" \t"));
        assert!(env_names(&blank_env_is_unset(Cli::command(), &blank)).is_empty());
        let set = |_: &OsStr| Some(OsString::from("value"));
        assert_eq!(env_names(&blank_env_is_unset(Cli::command(), &set)), all);
        let absent = |_: &OsStr| None;
        assert_eq!(env_names(&blank_env_is_unset(Cli::command(), &absent)), all);
    }

    #[test]
    fn blank_detection_walks_subcommands() {
        let command = clap::Command::new("top").subcommand(
            clap::Command::new("serve")
                .arg(clap::Arg::new("token").long("token").env("PP_TEST_TOKEN")),
        );
        let lookup = |name: &OsStr| (name == "PP_TEST_TOKEN").then(|| OsString::from(" "));
        let command = blank_env_is_unset(command, &lookup);
        let serve = command.find_subcommand("serve").unwrap();
        let token = serve.get_arguments().next().unwrap();
        assert!(token.get_env().is_none());
    }

    #[test]
    fn blank_secret_flags_are_refused_and_values_trimmed() {
        assert!(secret("  ").is_err());
        assert_eq!(secret(" abc\n").unwrap().expose_secret(), "abc");
        assert!(present(Some(&SecretString::from(" "))).is_none());
    }

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
