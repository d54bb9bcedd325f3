//! A scripted model server on loopback that speaks both wire formats:
//! - Anthropic Messages: `POST /v1/messages` (checks `x-api-key` and `anthropic-version`);
//! - OpenAI-compatible chat completions: `POST /v1/chat/completions` and `/chat/completions`
//!   (checks `Authorization: Bearer <key>`).
//!
//! It also serves the metadata that local servers report about themselves, when a test sets
//! it: llama.cpp's `GET /props` ([`FakeModel::serve_props`], e.g. [`llama_cpp_props`]) and
//! `GET /v1/models` ([`FakeModel::serve_models`], e.g. [`vllm_models`]); unset, both are 404.
//!
//! Each request takes the next [`Reply`] from the test's script (text, or an error status with
//! body and headers, optionally after a delay) and is recorded with its headers and JSON for
//! assertions. Like the real APIs it answers 401 for a wrong key and 400 for a body missing
//! required fields, in the provider's own error shape. A request that finds the script empty
//! gets a 500 and is counted in [`FakeModel::unexpected`], so tests can fail on it.
//!
//! ```ignore
//! let fake = FakeModel::start().await;
//! fake.push_reply(Reply::status(529, FakeModel::anthropic_error("overloaded_error", "Overloaded")));
//! fake.push_reply(Reply::text("calc.py\n<<<<<<< SEARCH\n..."));
//! // point a client at fake.anthropic_base_url() with FAKE_MODEL_KEY ...
//! assert_eq!(fake.requests().len(), 2);
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The key [`FakeModel::start`] expects.
pub const FAKE_MODEL_KEY: &str = "fake-model-key-0123456789";

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    kind: ReplyKind,
    headers: Vec<(String, String)>,
    delay: Duration,
}

#[derive(Debug, Clone)]
enum ReplyKind {
    Text {
        text: String,
        input_tokens: u64,
        output_tokens: u64,
        stop_reason: Option<String>,
    },
    Status {
        status: u16,
        body: String,
    },
}

impl Reply {
    /// A successful completion with `text` (usage 100 in / 20 out unless set).
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: ReplyKind::Text {
                text: text.into(),
                input_tokens: 100,
                output_tokens: 20,
                stop_reason: None,
            },
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// An answer with this status and raw body (served as JSON).
    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            kind: ReplyKind::Status {
                status,
                body: body.into(),
            },
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Anthropic's 529 overloaded answer.
    pub fn overloaded() -> Self {
        Self::status(
            529,
            FakeModel::anthropic_error("overloaded_error", "Overloaded"),
        )
    }

    /// A 429 with `retry-after: <retry_after>`.
    pub fn rate_limited(retry_after: &str) -> Self {
        Self::status(
            429,
            FakeModel::anthropic_error(
                "rate_limit_error",
                "Number of requests has exceeded your rate limit",
            ),
        )
        .header("retry-after", retry_after)
    }

    /// Sets the reported token usage of a text reply.
    pub fn usage(mut self, input: u64, output: u64) -> Self {
        if let ReplyKind::Text {
            input_tokens,
            output_tokens,
            ..
        } = &mut self.kind
        {
            *input_tokens = input;
            *output_tokens = output;
        }
        self
    }

    /// Sets the stop reason of a text reply (default: the provider's normal end).
    pub fn stop_reason(mut self, reason: &str) -> Self {
        if let ReplyKind::Text { stop_reason, .. } = &mut self.kind {
            *stop_reason = Some(reason.to_owned());
        }
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long before answering (to trigger client timeouts).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Which wire format a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Anthropic,
    OpenAi,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub wire: Wire,
    pub path: String,
    /// Lower-cased header names.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The system prompt, from either format.
    pub fn system(&self) -> String {
        match self.wire {
            Wire::Anthropic => self.body["system"].as_str().unwrap_or_default().to_owned(),
            Wire::OpenAi => self
                .messages()
                .into_iter()
                .find(|(role, _)| role == "system")
                .map(|(_, c)| c)
                .unwrap_or_default(),
        }
    }

    /// `(role, content)` of every message, in order (OpenAI's system message included).
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or_default().to_owned(),
                            m["content"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The content of the first user message (where the patch prompt puts its evidence).
    pub fn first_user_message(&self) -> String {
        self.messages()
            .into_iter()
            .find(|(role, _)| role == "user")
            .map(|(_, c)| c)
            .unwrap_or_default()
    }
}

/// llama.cpp `llama-server`'s `GET /props`, trimmed to the fields a client reads, in the shape
/// of build b4000+ (`default_generation_settings.n_ctx` is the context of one slot).
pub fn llama_cpp_props(n_ctx: u64) -> Value {
    json!({
        "default_generation_settings": {
            "id": 0, "id_task": -1, "n_ctx": n_ctx, "speculative": false, "is_processing": false,
            "params": {"n_predict": -1, "seed": 4294967295u64, "temperature": 0.8,
                       "top_k": 40, "top_p": 0.95, "min_p": 0.05, "stream": true},
            "prompt": "", "next_token": {"has_next_token": true, "n_remain": -1, "n_decoded": 0}
        },
        "total_slots": 1,
        "model_path": "/models/gemma-3-270m-it-Q4_K_M.gguf",
        "modalities": {"vision": false, "audio": false},
        "chat_template": "{{ bos_token }}{% for message in messages %}...{% endfor %}",
        "bos_token": "<bos>", "eos_token": "<eos>",
        "build_info": "b6000-deadbeef"
    })
}

/// vLLM's `GET /v1/models`, with `max_model_len` for the served model.
pub fn vllm_models(model: &str, max_model_len: u64) -> Value {
    json!({
        "object": "list",
        "data": [{
            "id": model, "object": "model", "created": 1_700_000_000, "owned_by": "vllm",
            "root": format!("/models/{model}"), "parent": null, "max_model_len": max_model_len,
            "permission": [{"id": "modelperm-fake", "object": "model_permission",
                            "allow_sampling": true, "allow_view": true, "is_blocking": false}]
        }]
    })
}

#[derive(Default)]
struct Inner {
    props: Mutex<Option<Value>>,
    models: Mutex<Option<Value>>,
    metadata_requests: Mutex<Vec<String>>,
    key: Option<String>,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    unexpected: Mutex<Vec<String>>,
}

/// The running server; stops when dropped.
pub struct FakeModel {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeModel {
    /// Starts a server that expects [`FAKE_MODEL_KEY`].
    pub async fn start() -> Self {
        Self::start_with_key(Some(FAKE_MODEL_KEY)).await
    }

    /// Starts a server that checks `key`, or accepts anything with `None` (like Ollama).
    pub async fn start_with_key(key: Option<&str>) -> Self {
        let inner = Arc::new(Inner {
            key: key.map(str::to_owned),
            ..Inner::default()
        });
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/chat/completions", post(openai))
            .route("/chat/completions", post(openai))
            .route("/props", get(props))
            .route("/v1/models", get(models))
            .route("/models", get(models))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `ANTHROPIC_BASE_URL` should be.
    pub fn anthropic_base_url(&self) -> String {
        self.base_url()
    }

    /// What `OPENAI_BASE_URL` should be.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// Queues the next answer.
    pub fn push_reply(&self, reply: Reply) {
        self.inner.script.lock().unwrap().push_back(reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Scripted replies not yet used.
    pub fn remaining_replies(&self) -> usize {
        self.inner.script.lock().unwrap().len()
    }

    /// Serves `props` at `GET /props` (llama.cpp).
    pub fn serve_props(&self, props: Value) {
        *self.inner.props.lock().unwrap() = Some(props);
    }

    /// Serves `models` at `GET /v1/models` and `GET /models`.
    pub fn serve_models(&self, models: Value) {
        *self.inner.models.lock().unwrap() = Some(models);
    }

    /// Paths of the metadata `GET`s received, in order.
    pub fn metadata_requests(&self) -> Vec<String> {
        self.inner.metadata_requests.lock().unwrap().clone()
    }

    /// Requests that found the script empty.
    pub fn unexpected(&self) -> Vec<String> {
        self.inner.unexpected.lock().unwrap().clone()
    }

    /// An Anthropic-shaped error body.
    pub fn anthropic_error(kind: &str, message: &str) -> String {
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})
            .to_string()
    }

    /// An OpenAI-shaped error body.
    pub fn openai_error(kind: &str, message: &str) -> String {
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            .to_string()
    }
}

async fn props(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    inner
        .metadata_requests
        .lock()
        .unwrap()
        .push(uri.path().to_owned());
    metadata(inner.props.lock().unwrap().clone())
}

async fn models(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    inner
        .metadata_requests
        .lock()
        .unwrap()
        .push(uri.path().to_owned());
    metadata(inner.models.lock().unwrap().clone())
}

fn metadata(value: Option<Value>) -> Response {
    match value {
        Some(value) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            value.to_string(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

async fn anthropic(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&inner, Wire::Anthropic, uri, headers, body).await
}

async fn openai(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&inner, Wire::OpenAi, uri, headers, body).await
}

async fn handle(inner: &Inner, wire: Wire, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let recorded_headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.requests.lock().unwrap().push(RecordedRequest {
        wire,
        path: uri.path().to_owned(),
        headers: recorded_headers.clone(),
        body: json.clone(),
    });

    if let Some(problem) = auth_problem(inner, wire, &recorded_headers) {
        return error(wire, 401, "authentication_error", &problem);
    }
    if let Some(problem) = shape_problem(wire, &json, &recorded_headers) {
        return error(wire, 400, "invalid_request_error", &problem);
    }
    let Some(reply) = inner.script.lock().unwrap().pop_front() else {
        let note = format!(
            "{} request to {} with no scripted reply left",
            wire_name(wire),
            uri.path()
        );
        inner.unexpected.lock().unwrap().push(note.clone());
        return error(wire, 500, "api_error", &note);
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let model = json["model"].as_str().unwrap_or("fake-model").to_owned();
    let mut response = match reply.kind {
        ReplyKind::Text {
            text,
            input_tokens,
            output_tokens,
            stop_reason,
        } => {
            let body = match wire {
                Wire::Anthropic => json!({
                    "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": stop_reason.unwrap_or_else(|| "end_turn".into()),
                    "stop_sequence": null,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                }),
                Wire::OpenAi => json!({
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000,
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": stop_reason.unwrap_or_else(|| "stop".into()), "logprobs": null}],
                    "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                              "total_tokens": input_tokens + output_tokens},
                }),
            };
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        ReplyKind::Status { status, body } => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
    };
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

fn wire_name(wire: Wire) -> &'static str {
    match wire {
        Wire::Anthropic => "Anthropic",
        Wire::OpenAi => "OpenAI",
    }
}

fn auth_problem(inner: &Inner, wire: Wire, headers: &BTreeMap<String, String>) -> Option<String> {
    let expected = inner.key.as_deref()?;
    let ok = match wire {
        Wire::Anthropic => headers.get("x-api-key").map(String::as_str) == Some(expected),
        Wire::OpenAi => headers.get("authorization") == Some(&format!("Bearer {expected}")),
    };
    (!ok).then(|| "invalid x-api-key".to_owned())
}

fn shape_problem(wire: Wire, body: &Value, headers: &BTreeMap<String, String>) -> Option<String> {
    if !body.is_object() {
        return Some("body is not a JSON object".into());
    }
    if body["model"].as_str().is_none_or(str::is_empty) {
        return Some("model: field required".into());
    }
    if body["messages"].as_array().is_none_or(Vec::is_empty) {
        return Some("messages: field required".into());
    }
    if wire == Wire::Anthropic {
        if !headers.contains_key("anthropic-version") {
            return Some("anthropic-version: header is required".into());
        }
        if body["max_tokens"].as_u64().is_none() {
            return Some("max_tokens: field required".into());
        }
        if body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "system")
        {
            return Some(
                "messages: system is not a valid role; use the top-level system field".into(),
            );
        }
    }
    None
}

fn error(wire: Wire, status: u16, kind: &str, message: &str) -> Response {
    let body = match wire {
        Wire::Anthropic => FakeModel::anthropic_error(kind, message),
        Wire::OpenAi => FakeModel::openai_error(kind, message),
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}
