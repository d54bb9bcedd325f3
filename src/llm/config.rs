//! Model settings (environment / CLI) and choosing a client from them.
//!
//! Rules, applied once at start-up so a bad combination fails with one clear sentence:
//! - nothing configured (no key, no OpenAI-compatible base URL, no model): `Ok(None)`, the
//!   patch step is off and sessions say so;
//! - `PATCHPILOT_MODEL_PROVIDER` chooses explicitly; otherwise the provider is inferred when
//!   only one side is configured (`ANTHROPIC_API_KEY`, or `OPENAI_API_KEY`/`OPENAI_BASE_URL`);
//! - Anthropic needs a key; an OpenAI-compatible endpoint may have none (Ollama, llama.cpp);
//! - `PATCHPILOT_MODEL` is required once a provider is chosen (model names age too fast for a
//!   default to be honest).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::anthropic::AnthropicClient;
use super::openai::OpenAiClient;
use super::{ClientOptions, Model, RetryPolicy, SessionBudget};

/// Default Anthropic endpoint (without `/v1`).
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// Default OpenAI endpoint (with `/v1`).
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// Which wire format to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp, OpenRouter).
    Openai,
}

/// A model configuration that cannot work. `Display` is one sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required for this model provider but is not set")]
    MissingKey(&'static str),
    #[error("{0} contains characters that cannot be sent in an HTTP header")]
    InvalidKey(&'static str),
    #[error("invalid model base URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("could not build the HTTP client for the model: {0}")]
    HttpClient(String),
    #[error(
        "a model provider is configured but PATCHPILOT_MODEL is not set; set it to the model name, e.g. claude-sonnet-4-5 or llama3.1"
    )]
    MissingModel,
    #[error(
        "PATCHPILOT_MODEL is set but no provider is configured; set ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL"
    )]
    NoProvider,
    #[error(
        "both Anthropic and OpenAI-compatible settings are present; set PATCHPILOT_MODEL_PROVIDER to anthropic or openai"
    )]
    Ambiguous,
    #[error("{setting} must be {expected}")]
    OutOfRange {
        setting: &'static str,
        expected: &'static str,
    },
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// Model settings. Every field reads an environment variable; flags override.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Anthropic API key.
    #[arg(long, env = "ANTHROPIC_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub anthropic_api_key: Option<SecretString>,
    /// Anthropic API base URL, without `/v1` [default: https://api.anthropic.com].
    #[arg(long, env = "ANTHROPIC_BASE_URL")]
    pub anthropic_base_url: Option<String>,
    /// API key for an OpenAI-compatible endpoint (optional for local servers).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub openai_api_key: Option<SecretString>,
    /// OpenAI-compatible base URL, with `/v1` [default: https://api.openai.com/v1].
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,
    /// Model name, e.g. `claude-sonnet-4-5`, `gpt-4.1`, `llama3.1`.
    #[arg(long = "model", env = "PATCHPILOT_MODEL")]
    pub model: Option<String>,
    /// Which API to speak; inferred when only one provider is configured.
    #[arg(long = "model-provider", env = "PATCHPILOT_MODEL_PROVIDER", value_enum)]
    pub provider: Option<Provider>,
    /// Timeout of one model request, in seconds.
    #[arg(
        id = "model_timeout_secs",
        long = "model-timeout-secs",
        env = "PATCHPILOT_MODEL_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub timeout_secs: u64,
    /// Attempts per model request, including the first (retries on 429/5xx/529/network errors).
    #[arg(
        long = "model-max-attempts",
        env = "PATCHPILOT_MODEL_MAX_ATTEMPTS",
        default_value_t = 4
    )]
    pub max_attempts: u32,
    /// Output-token limit of one model reply.
    #[arg(
        long = "model-max-output-tokens",
        env = "PATCHPILOT_MODEL_MAX_OUTPUT_TOKENS",
        default_value_t = 8192
    )]
    pub max_output_tokens: u32,
    /// Sampling temperature; the provider's default when unset.
    #[arg(long = "model-temperature", env = "PATCHPILOT_MODEL_TEMPERATURE")]
    pub temperature: Option<f32>,
    /// Model calls allowed per session.
    #[arg(
        long = "model-max-turns",
        env = "PATCHPILOT_MODEL_MAX_TURNS",
        default_value_t = 10
    )]
    pub max_turns: u32,
    /// Tokens (input + output) allowed per session.
    #[arg(
        long = "model-max-session-tokens",
        env = "PATCHPILOT_MODEL_MAX_SESSION_TOKENS",
        default_value_t = 500_000
    )]
    pub max_session_tokens: u64,
    /// Wall time allowed for model calls per session, in seconds (counted from the session's
    /// first use of the model).
    #[arg(
        long = "model-max-wall-secs",
        env = "PATCHPILOT_MODEL_MAX_WALL_SECS",
        default_value_t = 1800
    )]
    pub max_wall_secs: u64,
}

impl Default for ModelArgs {
    /// The same defaults as the CLI, with nothing configured.
    fn default() -> Self {
        Self {
            anthropic_api_key: None,
            anthropic_base_url: None,
            openai_api_key: None,
            openai_base_url: None,
            model: None,
            provider: None,
            timeout_secs: 300,
            max_attempts: 4,
            max_output_tokens: 8192,
            temperature: None,
            max_turns: 10,
            max_session_tokens: 500_000,
            max_wall_secs: 1800,
        }
    }
}

impl ModelArgs {
    /// The per-session caps.
    pub fn budget(&self) -> SessionBudget {
        SessionBudget {
            max_turns: self.max_turns,
            max_tokens: self.max_session_tokens,
            max_wall: Duration::from_secs(self.max_wall_secs),
        }
    }

    /// The retry policy for one request.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            ..RetryPolicy::default()
        }
    }

    /// The provider these settings select, `None` when no model is configured.
    pub fn resolve_provider(&self) -> Result<Option<Provider>, ConfigError> {
        let anthropic = set(&self.anthropic_base_url) || self.anthropic_api_key.is_some();
        let openai = set(&self.openai_base_url) || self.openai_api_key.is_some();
        let provider = match (self.provider, anthropic, openai) {
            (Some(p), _, _) => p,
            (None, true, false) => Provider::Anthropic,
            (None, false, true) => Provider::Openai,
            (None, true, true) => return Err(ConfigError::Ambiguous),
            (None, false, false) if set(&self.model) => return Err(ConfigError::NoProvider),
            (None, false, false) => return Ok(None),
        };
        Ok(Some(provider))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let range = |ok: bool, setting, expected| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange { setting, expected })
            }
        };
        range(
            self.timeout_secs > 0,
            "PATCHPILOT_MODEL_TIMEOUT_SECS",
            "at least 1",
        )?;
        range(
            (1..=20).contains(&self.max_attempts),
            "PATCHPILOT_MODEL_MAX_ATTEMPTS",
            "between 1 and 20",
        )?;
        range(
            self.max_output_tokens > 0,
            "PATCHPILOT_MODEL_MAX_OUTPUT_TOKENS",
            "at least 1",
        )?;
        range(
            self.max_turns > 0,
            "PATCHPILOT_MODEL_MAX_TURNS",
            "at least 1",
        )?;
        range(
            self.max_wall_secs > 0,
            "PATCHPILOT_MODEL_MAX_WALL_SECS",
            "at least 1",
        )?;
        range(
            self.temperature.is_none_or(|t| (0.0..=2.0).contains(&t)),
            "PATCHPILOT_MODEL_TEMPERATURE",
            "between 0 and 2",
        )
    }
}

fn set(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.trim().is_empty())
}

/// The configured model, `None` if none is configured, or one clear sentence saying why the
/// settings cannot work.
pub fn from_args(args: &ModelArgs) -> Result<Option<Arc<dyn Model>>, ConfigError> {
    let Some(provider) = args.resolve_provider()? else {
        return Ok(None);
    };
    args.validate()?;
    let model = args
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or(ConfigError::MissingModel)?;
    let base = |url: &Option<String>, default: &str| {
        url.as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(default)
            .to_owned()
    };
    let options = |base_url: String, key: &Option<SecretString>| ClientOptions {
        timeout: Duration::from_secs(args.timeout_secs),
        retry: args.retry_policy(),
        ..ClientOptions::new(base_url, key.clone(), model)
    };
    let client: Arc<dyn Model> = match provider {
        Provider::Anthropic => Arc::new(AnthropicClient::new(options(
            base(&args.anthropic_base_url, DEFAULT_ANTHROPIC_BASE_URL),
            &args.anthropic_api_key,
        ))?),
        Provider::Openai => Arc::new(OpenAiClient::new(options(
            base(&args.openai_base_url, DEFAULT_OPENAI_BASE_URL),
            &args.openai_api_key,
        ))?),
    };
    Ok(Some(client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        model: ModelArgs,
    }

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    fn key(s: &str) -> Option<SecretString> {
        Some(SecretString::from(s))
    }

    fn err(args: ModelArgs) -> String {
        match from_args(&args) {
            Err(e) => e.to_string(),
            Ok(m) => panic!("expected an error, got {:?}", m.map(|m| m.name())),
        }
    }

    #[test]
    fn nothing_configured_means_no_model() {
        assert!(from_args(&ModelArgs::default()).unwrap().is_none());
    }

    #[test]
    fn provider_is_inferred_when_unambiguous() {
        let anthropic = ModelArgs {
            anthropic_api_key: key("sk-ant"),
            model: Some("claude-x".into()),
            ..ModelArgs::default()
        };
        assert_eq!(
            from_args(&anthropic).unwrap().unwrap().name(),
            "anthropic/claude-x"
        );

        let ollama = ModelArgs {
            openai_base_url: Some("http://localhost:11434/v1".into()),
            model: Some("llama3.1".into()),
            ..ModelArgs::default()
        };
        assert_eq!(
            from_args(&ollama).unwrap().unwrap().name(),
            "openai/llama3.1"
        );
    }

    #[test]
    fn both_providers_need_an_explicit_choice() {
        let both = ModelArgs {
            anthropic_api_key: key("a"),
            openai_api_key: key("o"),
            model: Some("m".into()),
            ..ModelArgs::default()
        };
        assert!(err(both.clone()).contains("PATCHPILOT_MODEL_PROVIDER"));
        let chosen = ModelArgs {
            provider: Some(Provider::Openai),
            ..both
        };
        assert_eq!(from_args(&chosen).unwrap().unwrap().name(), "openai/m");
    }

    #[test]
    fn bad_combinations_fail_with_one_sentence() {
        let no_model = ModelArgs {
            anthropic_api_key: key("a"),
            ..ModelArgs::default()
        };
        assert!(err(no_model).starts_with("a model provider is configured but PATCHPILOT_MODEL"));
        let no_provider = ModelArgs {
            model: Some("m".into()),
            ..ModelArgs::default()
        };
        assert!(err(no_provider).contains("no provider is configured"));
        let anthropic_without_key = ModelArgs {
            provider: Some(Provider::Anthropic),
            model: Some("m".into()),
            ..ModelArgs::default()
        };
        assert_eq!(
            err(anthropic_without_key),
            "ANTHROPIC_API_KEY is required for this model provider but is not set"
        );
        let bad_url = ModelArgs {
            openai_base_url: Some("ftp://x".into()),
            model: Some("m".into()),
            ..ModelArgs::default()
        };
        assert!(err(bad_url).contains("only http and https"));
        let zero_attempts = ModelArgs {
            anthropic_api_key: key("a"),
            model: Some("m".into()),
            max_attempts: 0,
            ..ModelArgs::default()
        };
        assert_eq!(
            err(zero_attempts),
            "PATCHPILOT_MODEL_MAX_ATTEMPTS must be between 1 and 20"
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        let args = ModelArgs {
            anthropic_api_key: key("sk-ant-very-secret"),
            ..ModelArgs::default()
        };
        assert!(!format!("{args:?}").contains("very-secret"));
    }
}
