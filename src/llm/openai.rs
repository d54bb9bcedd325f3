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

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::retry::Transport;
use super::{
    ChatRequest, ChatResponse, ClientOptions, ConfigError, Model, ModelError, Usage, error_body,
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
        Ok(Self {
            token_field: TokenLimitField::for_endpoint(&endpoint),
            endpoint,
            headers,
            model: options.model.clone(),
            transport: options.transport()?,
        })
    }

    /// Overrides the automatic choice of the token-limit field.
    pub fn with_token_field(mut self, field: TokenLimitField) -> Self {
        self.token_field = field;
        self
    }
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
