//! Anthropic Messages API client (non-streaming).
//!
//! Wire format: `POST {base}/v1/messages` with headers `x-api-key`, `anthropic-version:
//! 2023-06-01` and a JSON body `{model, max_tokens, system?, messages, temperature?}`; the
//! answer is `{content: [{type: "text", text}, ...], model, stop_reason, usage: {input_tokens,
//! output_tokens, cache_creation_input_tokens?, cache_read_input_tokens?}}`. Unknown fields
//! and non-text content blocks are ignored; the text blocks are concatenated.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::retry::Transport;
use super::{
    ChatRequest, ChatResponse, ClientOptions, ConfigError, Generation, Model, ModelError, Usage,
};

/// The API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client for one Anthropic model.
#[derive(Debug, Clone)]
pub struct AnthropicClient {
    endpoint: String,
    headers: HeaderMap,
    model: String,
    transport: Transport,
    generation: Generation,
}

impl AnthropicClient {
    /// Builds the client; the API key is required.
    pub fn new(options: ClientOptions) -> Result<Self, ConfigError> {
        let endpoint = options.endpoint("/v1/messages")?;
        let key = options
            .api_key
            .as_ref()
            .ok_or(ConfigError::MissingKey("ANTHROPIC_API_KEY"))?;
        Ok(Self {
            endpoint,
            headers: headers(key)?,
            model: options.model.clone(),
            transport: options.transport()?,
            generation: options.generation,
        })
    }
}

fn headers(key: &SecretString) -> Result<HeaderMap, ConfigError> {
    let mut key = HeaderValue::from_str(key.expose_secret().trim())
        .map_err(|_| ConfigError::InvalidKey("ANTHROPIC_API_KEY"))?;
    // Keeps the value out of reqwest's and hyper's debug output.
    key.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-api-key"), key);
    headers.insert(
        HeaderName::from_static("anthropic-version"),
        HeaderValue::from_static(ANTHROPIC_VERSION),
    );
    Ok(headers)
}

/// The request body for `req`.
pub fn request_body(model: &str, req: &ChatRequest) -> serde_json::Value {
    let messages: Vec<_> = req
        .messages
        .iter()
        .map(|m| json!({ "role": m.role, "content": m.content }))
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "messages": messages,
    });
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    body
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    content: Vec<WireBlock>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
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
        .map_err(|e| invalid(format!("not a Messages API response ({e})")))?;
    let texts: Vec<&str> = wire
        .content
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect();
    if texts.is_empty() {
        return Err(invalid(format!(
            "no text content (stop_reason {})",
            wire.stop_reason.as_deref().unwrap_or("missing")
        )));
    }
    let usage = wire.usage.unwrap_or_default();
    let input = usage.input_tokens
        + usage.cache_creation_input_tokens.unwrap_or(0)
        + usage.cache_read_input_tokens.unwrap_or(0);
    Ok(ChatResponse {
        text: texts.concat(),
        usage: Usage {
            input_tokens: input,
            output_tokens: usage.output_tokens,
        },
        stop_reason: wire.stop_reason,
        model: wire.model.unwrap_or_else(|| fallback_model.to_owned()),
    })
}

#[async_trait::async_trait]
impl Model for AnthropicClient {
    fn name(&self) -> String {
        format!("anthropic/{}", self.model)
    }

    /// Anthropic does not report context windows over the API; the configured one (or none:
    /// Claude models hold 200k tokens, more than the default prompt budget uses).
    fn generation(&self) -> Generation {
        self.generation
    }

    fn with_model(&self, model: &str) -> std::sync::Arc<dyn Model> {
        std::sync::Arc::new(Self {
            model: model.to_owned(),
            ..self.clone()
        })
    }

    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = request_body(&self.model, req);
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
    fn body_has_the_documented_shape() {
        let req = ChatRequest {
            system: "be brief".into(),
            messages: vec![
                Message::user("hi"),
                Message::assistant("yo"),
                Message::user("fix"),
            ],
            max_tokens: 1024,
            temperature: Some(0.0),
        };
        assert_eq!(
            request_body("claude-x", &req),
            json!({
                "model": "claude-x",
                "max_tokens": 1024,
                "system": "be brief",
                "temperature": 0.0,
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": "fix"},
                ],
            })
        );
        let bare = ChatRequest {
            system: String::new(),
            temperature: None,
            ..req
        };
        let body = request_body("claude-x", &bare);
        assert!(body.get("system").is_none() && body.get("temperature").is_none());
    }

    #[test]
    fn parses_text_blocks_usage_and_ignores_the_rest() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x-2025",
            "content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"a"},{"type":"text","text":"b"}],
            "stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":100,"service_tier":"standard"}}"#;
        let r = parse_response("u", "claude-x", body).unwrap();
        assert_eq!(r.text, "ab");
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 110,
                output_tokens: 5
            }
        );
        assert_eq!(r.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(r.model, "claude-x-2025");
    }

    #[test]
    fn no_text_is_an_error() {
        let body = br#"{"content":[],"stop_reason":"max_tokens"}"#;
        let err = parse_response("u", "m", body).unwrap_err();
        assert!(
            err.to_string()
                .contains("no text content (stop_reason max_tokens)")
        );
        assert!(parse_response("u", "m", b"[1,2]").is_err());
    }
}
