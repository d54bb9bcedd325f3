//! Extracting a short, safe description from a provider's error body.
//!
//! Providers disagree on the shape: Anthropic sends
//! `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, OpenAI
//! `{"error":{"message":..,"type":..,"code":..}}`, Ollama `{"error":"..."}` and vLLM a flat
//! `{"object":"error","message":..,"type":..}`. Anything else (an HTML page from a proxy, say)
//! is shown as a truncated snippet, so a maintainer never gets a huge body.

use serde_json::Value;

use super::truncate_for_display;

/// Longest provider message shown to a maintainer.
const MAX_MESSAGE_BYTES: usize = 300;

/// The provider's error type (if any) and a bounded message.
pub(crate) fn describe(body: &[u8]) -> (Option<String>, String) {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let message = if text.is_empty() {
            "empty response body".to_owned()
        } else {
            truncate_for_display(&text, MAX_MESSAGE_BYTES)
        };
        return (None, message);
    };
    let (kind, message) = match json.get("error") {
        Some(Value::Object(err)) => (str_field(err.get("type")), str_field(err.get("message"))),
        Some(Value::String(msg)) => (None, Some(msg.clone())),
        _ => (str_field(json.get("type")), str_field(json.get("message"))),
    };
    // A flat Anthropic-style `"type":"error"` says nothing useful on its own.
    let kind = kind.filter(|k| k != "error");
    let message = message.unwrap_or_else(|| truncate_for_display(&json.to_string(), 120));
    (kind, truncate_for_display(&message, MAX_MESSAGE_BYTES))
}

fn str_field(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_shape() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(
            describe(body),
            (Some("overloaded_error".into()), "Overloaded".into())
        );
    }

    #[test]
    fn openai_shape() {
        let body = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            describe(body),
            (Some("requests".into()), "Rate limit reached".into())
        );
    }

    #[test]
    fn ollama_and_vllm_shapes() {
        assert_eq!(
            describe(br#"{"error":"model 'x' not found"}"#),
            (None, "model 'x' not found".into())
        );
        assert_eq!(
            describe(br#"{"object":"error","message":"bad","type":"BadRequestError","code":400}"#),
            (Some("BadRequestError".into()), "bad".into())
        );
    }

    #[test]
    fn non_json_is_bounded() {
        let body = format!("<html>{}</html>", "x".repeat(10_000));
        let (kind, message) = describe(body.as_bytes());
        assert_eq!(kind, None);
        assert!(message.len() <= MAX_MESSAGE_BYTES + 4, "{}", message.len());
        assert_eq!(describe(b"  "), (None, "empty response body".into()));
    }
}
