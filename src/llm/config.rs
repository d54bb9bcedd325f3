//! Model settings (environment / CLI) and choosing a client from them.
//!
//! Rules, applied once at start-up so a bad combination fails with one clear sentence:
//! - nothing configured (no key, no OpenAI-compatible base URL, no model): `Ok(None)`, the
//!   patch step is off and sessions say so;
//! - `PATCHPILOT_MODEL_PROVIDER` chooses explicitly; otherwise the provider is inferred when
//!   only one side is configured (`ANTHROPIC_API_KEY`, or `OPENAI_API_KEY`/`OPENAI_BASE_URL`);
//! - with both sides configured, `PATCHPILOT_MODEL`'s name decides: the Anthropic API serves
//!   only `claude-*` models, so such a name means Anthropic and any other name means the
//!   OpenAI-compatible endpoint; only both sides without a model name is refused as ambiguous;
//! - Anthropic needs a key and defaults to [`DEFAULT_ANTHROPIC_MODEL`]; an OpenAI-compatible
//!   endpoint may have no key (Ollama, llama.cpp) but needs `PATCHPILOT_MODEL`, because what it
//!   serves is the operator's choice.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::anthropic::AnthropicClient;
use super::openai::OpenAiClient;
use super::{ClientOptions, Generation, Model, RetryPolicy, SessionBudget};

/// Default Anthropic endpoint (without `/v1`).
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The model used with `ANTHROPIC_API_KEY` alone (Anthropic's alias for its current Sonnet).
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
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
        "an OpenAI-compatible model endpoint is configured but PATCHPILOT_MODEL is not set; set it to the model name the endpoint serves, e.g. gpt-4.1 or llama3.1"
    )]
    MissingModel,
    #[error(
        "PATCHPILOT_MODEL is set but no provider is configured; set ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL"
    )]
    NoProvider,
    #[error(
        "both Anthropic and OpenAI-compatible settings are present and PATCHPILOT_MODEL is not set; set PATCHPILOT_MODEL (a claude-* name selects Anthropic, any other the OpenAI-compatible endpoint) or PATCHPILOT_MODEL_PROVIDER"
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
    /// Model name, e.g. `claude-sonnet-4-5`, `gpt-4.1`, `llama3.1` [Anthropic default:
    /// claude-sonnet-4-5].
    #[arg(long = "model", env = "PATCHPILOT_MODEL")]
    pub model: Option<String>,
    /// Which API to speak; inferred from the settings present and the model's name.
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
    /// The model's context window in tokens (prompt + reply); when unset, read from the server
    /// where it reports it (llama.cpp, vLLM, OpenRouter), else the default prompt budget.
    #[arg(long = "model-context-tokens", env = "PATCHPILOT_MODEL_CONTEXT_TOKENS")]
    pub context_tokens: Option<u32>,
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
            context_tokens: None,
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

    /// How replies are generated: what every request carries.
    pub fn generation(&self) -> Generation {
        Generation {
            max_output_tokens: self.max_output_tokens,
            temperature: self.temperature,
            context_tokens: self.context_tokens,
        }
    }

    /// The provider these settings select, `None` when no model is configured.
    pub fn resolve_provider(&self) -> Result<Option<Provider>, ConfigError> {
        let anthropic = set(&self.anthropic_base_url) || key_set(&self.anthropic_api_key);
        let openai = set(&self.openai_base_url) || key_set(&self.openai_api_key);
        let provider = match (self.provider, anthropic, openai) {
            (Some(p), _, _) => p,
            (None, true, false) => Provider::Anthropic,
            (None, false, true) => Provider::Openai,
            (None, true, true) => {
                provider_for_model(self.model_name()).ok_or(ConfigError::Ambiguous)?
            }
            (None, false, false) if set(&self.model) => return Err(ConfigError::NoProvider),
            (None, false, false) => return Ok(None),
        };
        Ok(Some(provider))
    }

    /// `PATCHPILOT_MODEL`, trimmed, `None` when blank.
    fn model_name(&self) -> Option<&str> {
        self.model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }

    /// The model to ask for: `PATCHPILOT_MODEL`, or Anthropic's default.
    fn model_for(&self, provider: Provider) -> Result<&str, ConfigError> {
        match (self.model_name(), provider) {
            (Some(model), _) => Ok(model),
            (None, Provider::Anthropic) => Ok(DEFAULT_ANTHROPIC_MODEL),
            (None, Provider::Openai) => Err(ConfigError::MissingModel),
        }
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
            self.context_tokens.is_none_or(|n| n >= 256),
            "PATCHPILOT_MODEL_CONTEXT_TOKENS",
            "at least 256",
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

fn key_set(value: &Option<SecretString>) -> bool {
    use secrecy::ExposeSecret;
    value
        .as_ref()
        .is_some_and(|v| !v.expose_secret().trim().is_empty())
}

/// The provider a model name belongs to when both are configured; `None` without a name.
/// The Anthropic API serves only `claude-*` models; every other name (`gpt-4.1`, `o3`,
/// `llama3.1`, OpenRouter's `anthropic/claude-…`) is for the OpenAI-compatible endpoint.
pub fn provider_for_model(model: Option<&str>) -> Option<Provider> {
    let model = model?.trim().to_ascii_lowercase();
    Some(if model.starts_with("claude-") {
        Provider::Anthropic
    } else {
        Provider::Openai
    })
}

/// The configured model, `None` if none is configured, or one clear sentence saying why the
/// settings cannot work.
pub fn from_args(args: &ModelArgs) -> Result<Option<Arc<dyn Model>>, ConfigError> {
    let Some(provider) = args.resolve_provider()? else {
        return Ok(None);
    };
    args.validate()?;
    let model = args.model_for(provider)?;
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
        generation: args.generation(),
        ..ClientOptions::new(base_url, key.clone().filter(|_| key_set(key)), model)
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
    fn anthropic_key_alone_uses_the_default_model() {
        let alone = ModelArgs {
            anthropic_api_key: key("sk-ant"),
            ..ModelArgs::default()
        };
        assert_eq!(
            from_args(&alone).unwrap().unwrap().name(),
            format!("anthropic/{DEFAULT_ANTHROPIC_MODEL}")
        );
    }

    #[test]
    fn with_both_providers_the_model_name_decides() {
        let both = |model: Option<&str>| ModelArgs {
            anthropic_api_key: key("a"),
            openai_api_key: key("o"),
            openai_base_url: Some("http://localhost:8080/v1".into()),
            model: model.map(str::to_owned),
            ..ModelArgs::default()
        };
        let name = |model| from_args(&both(Some(model))).unwrap().unwrap().name();
        assert_eq!(name("claude-sonnet-4-5"), "anthropic/claude-sonnet-4-5");
        assert_eq!(name("gpt-4.1"), "openai/gpt-4.1");
        assert_eq!(name("o3-mini"), "openai/o3-mini");
        assert_eq!(name("llama3.1"), "openai/llama3.1");
        assert_eq!(
            name("anthropic/claude-sonnet-4.5"),
            "openai/anthropic/claude-sonnet-4.5"
        );
        // Only no name at all is ambiguous; an explicit provider still settles it.
        assert!(err(both(None)).contains("PATCHPILOT_MODEL is not set"));
        let chosen = ModelArgs {
            provider: Some(Provider::Openai),
            ..both(Some("claude-sonnet-4-5"))
        };
        assert_eq!(
            from_args(&chosen).unwrap().unwrap().name(),
            "openai/claude-sonnet-4-5"
        );
    }

    #[test]
    fn blank_keys_and_urls_count_as_unset() {
        let blank_openai = ModelArgs {
            anthropic_api_key: key("sk-ant"),
            openai_api_key: key("  "),
            openai_base_url: Some(" ".into()),
            ..ModelArgs::default()
        };
        assert_eq!(
            from_args(&blank_openai).unwrap().unwrap().name(),
            format!("anthropic/{DEFAULT_ANTHROPIC_MODEL}")
        );
        let all_blank = ModelArgs {
            anthropic_api_key: key(""),
            openai_api_key: key(" "),
            ..ModelArgs::default()
        };
        assert!(from_args(&all_blank).unwrap().is_none());
    }

    #[test]
    fn generation_settings_reach_the_client() {
        let args = ModelArgs {
            anthropic_api_key: key("a"),
            max_output_tokens: 400,
            temperature: Some(0.3),
            context_tokens: Some(8192),
            ..ModelArgs::default()
        };
        let model = from_args(&args).unwrap().unwrap();
        assert_eq!(
            model.generation(),
            Generation {
                max_output_tokens: 400,
                temperature: Some(0.3),
                context_tokens: Some(8192),
            }
        );
    }

    #[test]
    fn bad_combinations_fail_with_one_sentence() {
        let no_model = ModelArgs {
            openai_base_url: Some("http://localhost:11434/v1".into()),
            ..ModelArgs::default()
        };
        assert!(err(no_model).starts_with(
            "an OpenAI-compatible model endpoint is configured but PATCHPILOT_MODEL is not set"
        ));
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
