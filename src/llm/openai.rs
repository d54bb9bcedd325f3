//! OpenAI-compatible chat completions client (non-streaming): OpenAI, vLLM, Ollama,
//! llama.cpp server, OpenRouter and anything else that speaks the format.
//!
//! Wire format: `POST {base}/chat/completions` with `Authorization: Bearer <key>` (omitted
//! when no key is configured, as local servers need none) and a JSON body `{model, messages:
//! [{role: "system"|"user"|"assistant", content}], max_tokens | max_completion_tokens,
//! temperature?}`. The answer is `{choices: [{message: {content}, finish_reason}], model,
//! usage?: {prompt_tokens, completion_tokens}}`.
//!
//! Leniency, because "compatible" servers vary: unknown fields are ignored, `usage` may be
//! absent (counted as zero), `content` may be a string or an array of `{type: "text", text}`
//! parts, and a 200 answer carrying `{"error": ...}` (some gateways do this) is an error.
//! OpenAI's own API rejects `max_tokens` for its newer models, so for `api.openai.com` the
//! limit is sent as `max_completion_tokens`; other servers get the widely supported `max_tokens`.
//!
//! Context window: unless `PATCHPILOT_MODEL_CONTEXT_TOKENS` is set, the client asks the server
//! once, on first use: llama.cpp's `GET /props` (`default_generation_settings.n_ctx`, the
//! context each slot really has, at the server root beside `/v1`), then `GET {base}/models`
//! for the entry of this model (vLLM's `max_model_len`, OpenRouter's `context_length`, LM
//! Studio's `max_context_length`). An answer is remembered; an unreachable server is asked
//! again next time. Ollama reports neither: set the setting to its `num_ctx`.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::retry::Transport;
use super::{
    ChatRequest, ChatResponse, ClientOptions, ConfigError, Generation, Model, ModelError, Usage,
    error_body,
};

/// Which request field carries the output-token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLimitField {
    MaxTokens,
    MaxCompletionTokens,
}

impl TokenLimitField {
    /// `max_completion_tokens` for OpenAI's own API, `max_tokens` elsewhere.
    pub fn for_endpoint(endpoint: &str) -> Self {
        let host = url::Url::parse(endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        if host.as_deref() == Some("api.openai.com") {
            Self::MaxCompletionTokens
        } else {
            Self::MaxTokens
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::MaxTokens => "max_tokens",
            Self::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// A client for one model behind an OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct OpenAiClient {
    endpoint: String,
    headers: HeaderMap,
    model: String,
    token_field: TokenLimitField,
    transport: Transport,
    generation: Generation,
    /// `GET` URLs that may report the context window, in order of trust.
    props_url: String,
    models_url: String,
    /// The server's answer about its context window, once it gave one.
    discovered_context: tokio::sync::OnceCell<Option<u32>>,
}

impl OpenAiClient {
    /// Builds the client; the API key is optional (Ollama, llama.cpp and vLLM often need none).
    pub fn new(options: ClientOptions) -> Result<Self, ConfigError> {
        let endpoint = options.endpoint("/chat/completions")?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &options.api_key {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", key.expose_secret().trim()))
                    .map_err(|_| ConfigError::InvalidKey("OPENAI_API_KEY"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let base = options.endpoint("")?;
        let root = base.strip_suffix("/v1").unwrap_or(&base);
        Ok(Self {
            token_field: TokenLimitField::for_endpoint(&endpoint),
            endpoint,
            headers,
            model: options.model.clone(),
            transport: options.transport()?,
            generation: options.generation,
            props_url: format!("{root}/props"),
            models_url: format!("{base}/models"),
            discovered_context: tokio::sync::OnceCell::new(),
        })
    }

    /// Overrides the automatic choice of the token-limit field.
    pub fn with_token_field(mut self, field: TokenLimitField) -> Self {
        self.token_field = field;
        self
    }
}

impl OpenAiClient {
    /// Asks the server for its context window; `Err` when it could not be reached.
    async fn discover_context(&self) -> Result<Option<u32>, ()> {
        if let Some(props) = self
            .transport
            .get_metadata(&self.props_url, &self.headers)
            .await?
            && let Some(n_ctx) = llama_cpp_context(&props)
        {
            return Ok(Some(n_ctx));
        }
        let models = self
            .transport
            .get_metadata(&self.models_url, &self.headers)
            .await?;
        Ok(models.and_then(|m| listed_context(&m, &self.model)))
    }
}

/// `default_generation_settings.n_ctx` of llama.cpp's `GET /props`.
pub fn llama_cpp_context(props: &Value) -> Option<u32> {
    positive(&props["default_generation_settings"]["n_ctx"])
}

/// The context window a `GET /models` list gives for `model` (or for its only entry): vLLM's
/// `max_model_len`, OpenRouter's `context_length`, LM Studio's `max_context_length`.
pub fn listed_context(models: &Value, model: &str) -> Option<u32> {
    let entries = models["data"].as_array()?;
    let entry = entries
        .iter()
        .find(|e| e["id"].as_str() == Some(model))
        .or_else(|| (entries.len() == 1).then(|| &entries[0]))?;
    ["max_model_len", "context_length", "max_context_length"]
        .iter()
        .find_map(|field| positive(&entry[field]))
}

fn positive(value: &Value) -> Option<u32> {
    value
        .as_u64()
        .filter(|&n| n > 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// The request body for `req`.
pub fn request_body(model: &str, field: TokenLimitField, req: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({ "role": "system", "content": req.system }));
    }
    messages.extend(
        req.messages
            .iter()
            .map(|m| json!({ "role": m.role, "content": m.content })),
    );
    let mut body = json!({ "model": model, "messages": messages });
    body[field.key()] = json!(req.max_tokens);
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    body
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// Parses a 2xx body into a response; `fallback_model` names the model if the body does not.
pub fn parse_response(
    endpoint: &str,
    fallback_model: &str,
    body: &[u8],
) -> Result<ChatResponse, ModelError> {
    let invalid = |message: String| ModelError::InvalidResponse {
        endpoint: endpoint.to_owned(),
        message,
    };
    let wire: WireResponse = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("not a chat completions response ({e})")))?;
    if wire.choices.is_empty() {
        if wire.error.is_some() {
            let (_, message) = error_body::describe(body);
            return Err(invalid(format!("error in a 200 response: {message}")));
        }
        return Err(invalid("no choices".to_owned()));
    }
    let choice = &wire.choices[0];
    let message = choice.message.as_ref();
    let text = message
        .and_then(|m| m.content.as_ref())
        .map(content_text)
        .unwrap_or_default();
    if text.trim().is_empty() {
        let why = match message.and_then(|m| m.refusal.as_deref()) {
            Some(refusal) => format!("the model refused: {refusal}"),
            None => format!(
                "empty message content (finish_reason {})",
                choice.finish_reason.as_deref().unwrap_or("missing")
            ),
        };
        return Err(invalid(super::truncate_for_display(&why, 300)));
    }
    let usage = wire.usage.unwrap_or_default();
    Ok(ChatResponse {
        text,
        usage: Usage {
            input_tokens: usage.prompt_tokens.unwrap_or(0),
            output_tokens: usage.completion_tokens.unwrap_or(0),
        },
        stop_reason: choice.finish_reason.clone(),
        model: wire.model.unwrap_or_else(|| fallback_model.to_owned()),
    })
}

/// A string, or the concatenated `text` of an array of content parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str).unwrap_or("text") == "text")
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

#[async_trait::async_trait]
impl Model for OpenAiClient {
    fn name(&self) -> String {
        format!("openai/{}", self.model)
    }

    fn generation(&self) -> Generation {
        self.generation
    }

    fn with_model(&self, model: &str) -> std::sync::Arc<dyn Model> {
        std::sync::Arc::new(Self {
            endpoint: self.endpoint.clone(),
            headers: self.headers.clone(),
            model: model.to_owned(),
            token_field: self.token_field,
            transport: self.transport.clone(),
            generation: self.generation,
            props_url: self.props_url.clone(),
            models_url: self.models_url.clone(),
            // Another model may be served with another window (`/models` lists each).
            discovered_context: tokio::sync::OnceCell::new(),
        })
    }

    async fn context_tokens(&self) -> Option<u32> {
        if let Some(configured) = self.generation.context_tokens {
            return Some(configured);
        }
        if let Some(known) = self.discovered_context.get() {
            return *known;
        }
        let found = self.discover_context().await.ok()?;
        let _ = self.discovered_context.set(found);
        if let Some(n) = found {
            tracing::info!(
                model = %self.model,
                context_tokens = n,
                "model server reported its context window"
            );
        }
        found
    }

    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = request_body(&self.model, self.token_field, req);
        let bytes = self
            .transport
            .post_json(&self.endpoint, &self.headers, &body)
            .await?;
        parse_response(&self.endpoint, &self.model, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    #[test]
    fn body_puts_system_first_and_picks_the_limit_field() {
        let req = ChatRequest {
            system: "sys".into(),
            messages: vec![Message::user("hi")],
            max_tokens: 99,
            temperature: None,
        };
        assert_eq!(
            request_body("m", TokenLimitField::MaxTokens, &req),
            json!({
                "model": "m",
                "max_tokens": 99,
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "hi"},
                ],
            })
        );
        let body = request_body("m", TokenLimitField::MaxCompletionTokens, &req);
        assert_eq!(body["max_completion_tokens"], 99);
        assert!(body.get("max_tokens").is_none());
    }

    #[test]
    fn token_field_follows_the_host() {
        assert_eq!(
            TokenLimitField::for_endpoint("https://api.openai.com/v1/chat/completions"),
            TokenLimitField::MaxCompletionTokens
        );
        assert_eq!(
            TokenLimitField::for_endpoint("http://localhost:11434/v1/chat/completions"),
            TokenLimitField::MaxTokens
        );
    }

    #[test]
    fn parses_string_and_part_content() {
        let body = br#"{"id":"x","object":"chat.completion","model":"gpt-x",
            "choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop","logprobs":null}],
            "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        let r = parse_response("u", "m", body).unwrap();
        assert_eq!((r.text.as_str(), r.model.as_str()), ("done", "gpt-x"));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 12,
                output_tokens: 3
            }
        );
        assert_eq!(r.stop_reason.as_deref(), Some("stop"));

        let parts = br#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#;
        let r = parse_response("u", "fallback", parts).unwrap();
        assert_eq!((r.text.as_str(), r.model.as_str()), ("ab", "fallback"));
        assert_eq!(r.usage, Usage::default());
    }

    #[test]
    fn errors_in_200_and_empty_content_are_reported() {
        let err = parse_response("u", "m", br#"{"error":{"message":"upstream down"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("upstream down"), "{err}");
        let err = parse_response(
            "u",
            "m",
            br#"{"choices":[{"message":{"content":null},"finish_reason":"length"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("finish_reason length"), "{err}");
    }
}
