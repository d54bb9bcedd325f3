//! The language-model boundary.
//!
//! The core sees one small trait, [`Model`]: a non-streaming chat completion that takes a
//! system prompt plus alternating user/assistant messages and returns text and token usage.
//! Two clients implement it on plain reqwest:
//!
//! - [`anthropic::AnthropicClient`] speaks the Anthropic Messages API (`POST {base}/v1/messages`).
//! - [`openai::OpenAiClient`] speaks OpenAI-compatible chat completions
//!   (`POST {base}/chat/completions`): OpenAI, vLLM, Ollama, llama.cpp server, OpenRouter.
//!
//! Both share [`retry`]: per-request timeouts, retries with backoff on 408/409/429/5xx/529 and
//! connection errors, honouring `retry-after`; any other 4xx fails at once. The base URL is
//! the only seam tests use (they point it at a scripted server on loopback).
//!
//! [`budget::BudgetedModel`] wraps any model with per-session caps on turns, tokens and wall
//! time and accumulates [`Usage`]. [`config`] turns environment/CLI settings into a model.
//!
//! Invariants: API keys are `SecretString`s and appear in no `Display`/`Debug` output;
//! [`ModelError`]'s `Display` is short, bounded and safe to show a maintainer.

pub mod anthropic;
pub mod budget;
pub mod config;
mod error_body;
pub mod openai;
pub mod retry;

use serde::{Deserialize, Serialize};

pub use budget::{BudgetedModel, SessionBudget, UsageTotals};
pub use config::{ConfigError, ModelArgs, Provider, from_args};
pub use retry::{RetryPolicy, Sleeper, TokioSleeper};

/// Who wrote a message in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation (the system prompt is separate, see [`ChatRequest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A provider-neutral chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
}

/// Tokens consumed by one call (input includes any cached prompt tokens the provider reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// What a model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub usage: Usage,
    /// The provider's reason for stopping (`end_turn`, `max_tokens`, `stop`, `length`, ...).
    pub stop_reason: Option<String>,
    /// The model that answered, as the provider named it.
    pub model: String,
}

/// Which per-session cap a call would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetLimit {
    Turns { max: u32 },
    Tokens { max: u64, used: u64 },
    WallTime { max_secs: u64 },
}

impl std::fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Turns { max } => write!(f, "the session already used its {max} model turns"),
            Self::Tokens { max, used } => write!(
                f,
                "the session already used {used} of its {max} model tokens"
            ),
            Self::WallTime { max_secs } => write!(
                f,
                "the session's model time limit of {max_secs} s was reached"
            ),
        }
    }
}

/// Why a model call failed. `Display` is one bounded sentence with no secrets.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The endpoint answered with an error status (after retries, if it was retryable).
    #[error("model API at {endpoint} returned HTTP {status}{}: {message} (after {attempts} attempt(s))", kind_suffix(.kind))]
    Status {
        endpoint: String,
        status: u16,
        /// The provider's error type, e.g. `overloaded_error` or `rate_limit_error`.
        kind: Option<String>,
        /// The provider's error message, truncated.
        message: String,
        attempts: u32,
    },
    /// No answer within the per-request timeout (after retries).
    #[error(
        "model API at {endpoint} did not answer within {timeout_secs} s (after {attempts} attempt(s))"
    )]
    Timeout {
        endpoint: String,
        timeout_secs: u64,
        attempts: u32,
    },
    /// The endpoint could not be reached (after retries).
    #[error("could not reach the model API at {endpoint}: {message} (after {attempts} attempt(s))")]
    Connection {
        endpoint: String,
        message: String,
        attempts: u32,
    },
    /// The endpoint answered 2xx with something that is not a usable completion.
    #[error("the model API at {endpoint} sent an unusable response: {message}")]
    InvalidResponse { endpoint: String, message: String },
    /// A per-session cap refused the call before it was made.
    #[error("model budget exhausted: {0}")]
    Budget(BudgetLimit),
}

fn kind_suffix(kind: &Option<String>) -> String {
    kind.as_deref().map(|k| format!(" {k}")).unwrap_or_default()
}

/// How replies are generated, from the operator's settings. Every caller that builds a
/// [`ChatRequest`] takes its output limit and temperature from here, so a documented setting
/// cannot be dropped on the way to the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    /// `PATCHPILOT_MODEL_MAX_OUTPUT_TOKENS`.
    pub max_output_tokens: u32,
    /// `PATCHPILOT_MODEL_TEMPERATURE`; `None` leaves the provider's default.
    pub temperature: Option<f32>,
    /// `PATCHPILOT_MODEL_CONTEXT_TOKENS`: the model's context window (prompt + reply), when the
    /// operator set it. Wins over what the server reports.
    pub context_tokens: Option<u32>,
}

impl Default for Generation {
    fn default() -> Self {
        Self {
            max_output_tokens: 8192,
            temperature: None,
            context_tokens: None,
        }
    }
}

/// A chat model. Implementations are cheap to share (`Arc<dyn Model>`).
#[async_trait::async_trait]
pub trait Model: Send + Sync {
    /// Provider and model, e.g. `anthropic/claude-sonnet-4-5`, for logs and reports.
    fn name(&self) -> String;

    /// The configured output limit, temperature and context window.
    fn generation(&self) -> Generation;

    /// The same endpoint, key and settings asking for `model` instead (a repository's
    /// `model:` in `.github/patchpilot.yml`). The provider never changes.
    fn with_model(&self, model: &str) -> std::sync::Arc<dyn Model>;

    /// The context window in tokens: the configured one, else what the server reports (llama.cpp
    /// `/props`, vLLM or gateway `/models`), else `None` (unknown: the default prompt budget).
    async fn context_tokens(&self) -> Option<u32> {
        self.generation().context_tokens
    }

    /// One non-streaming completion.
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError>;
}

/// What every client needs: where, who, which model, and how patiently.
#[derive(Clone)]
pub struct ClientOptions {
    /// Anthropic: without `/v1` (e.g. `https://api.anthropic.com`); OpenAI-compatible: with
    /// it (e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`).
    pub base_url: String,
    pub api_key: Option<secrecy::SecretString>,
    pub model: String,
    /// Per-request timeout (each attempt).
    pub timeout: std::time::Duration,
    pub retry: RetryPolicy,
    pub sleeper: std::sync::Arc<dyn retry::Sleeper>,
    pub generation: Generation,
}

impl ClientOptions {
    /// Options with the default timeout (300 s), retry policy, tokio sleeper and generation
    /// settings.
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<secrecy::SecretString>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            model: model.into(),
            timeout: std::time::Duration::from_secs(300),
            retry: RetryPolicy::default(),
            sleeper: std::sync::Arc::new(retry::TokioSleeper),
            generation: Generation::default(),
        }
    }

    /// `{base}{path}` with exactly one slash between, after checking the base is http(s).
    pub(crate) fn endpoint(&self, path: &str) -> Result<String, ConfigError> {
        let base = self.base_url.trim().trim_end_matches('/');
        let parsed = url::Url::parse(base).map_err(|e| ConfigError::InvalidUrl {
            url: base.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::InvalidUrl {
                url: base.to_owned(),
                reason: "only http and https are supported".to_owned(),
            });
        }
        Ok(format!("{base}{path}"))
    }

    pub(crate) fn transport(&self) -> Result<retry::Transport, ConfigError> {
        retry::Transport::new(self.timeout, self.retry.clone(), self.sleeper.clone())
            .map_err(|e| ConfigError::HttpClient(e.to_string()))
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A provider's error type (if any) and a short, bounded message from an error body, for any
/// JSON API that follows the common `{"error": {"type", "message"}}` conventions.
pub fn describe_error_body(body: &[u8]) -> (Option<String>, String) {
    error_body::describe(body)
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
pub(crate) fn truncate_for_display(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_display_is_one_bounded_sentence() {
        let err = ModelError::Status {
            endpoint: "https://api.anthropic.com/v1/messages".into(),
            status: 529,
            kind: Some("overloaded_error".into()),
            message: "Overloaded".into(),
            attempts: 4,
        };
        assert_eq!(
            err.to_string(),
            "model API at https://api.anthropic.com/v1/messages returned HTTP 529 overloaded_error: Overloaded (after 4 attempt(s))"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_for_display("héllo", 2), "h…");
        assert_eq!(truncate_for_display("  short ", 10), "short");
    }

    #[test]
    fn budget_display_names_the_cap() {
        let err = ModelError::Budget(BudgetLimit::Turns { max: 3 });
        assert_eq!(
            err.to_string(),
            "model budget exhausted: the session already used its 3 model turns"
        );
    }
}
