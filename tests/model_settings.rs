//! Model settings take effect on the wire: the output limit, the temperature, the context
//! window (configured or reported by the server) and the provider choice, seen in the JSON the
//! scripted model server received.
//!
//! The pipeline tests run `patchpilot run`'s code (the real pipeline, the real sandbox, a
//! repository served over git smart HTTP) against the fake model speaking llama.cpp's and
//! vLLM's real shapes.

mod support;

use clap::Parser;
use patchpilot::agent::prompt::BYTES_PER_TOKEN;
use patchpilot::llm::ModelArgs;
use patchpilot::local_run::RunArgs;
use serde_json::Value;
use support::e2e::{PYTHON_FIX, PYTHON_REPRO, python_project};
use support::fake_model::{
    FAKE_MODEL_KEY, FakeModel, RecordedRequest, Reply, llama_cpp_props, vllm_models,
};

#[derive(Parser)]
struct RunCli {
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Parser)]
struct ModelCli {
    #[command(flatten)]
    model: ModelArgs,
}

fn model_args(args: &[&str]) -> ModelArgs {
    let mut argv = vec!["patchpilot"];
    argv.extend_from_slice(args);
    ModelCli::try_parse_from(argv).unwrap().model
}

/// Bytes of text a request carried (system prompt and every message).
fn prompt_bytes(sent: &RecordedRequest) -> usize {
    let system = sent.body["system"].as_str().map_or(0, str::len);
    system
        + sent
            .messages()
            .iter()
            .map(|(_, content)| content.len())
            .sum::<usize>()
}

/// A long, noisy issue text, like real bug reports that paste logs.
fn noisy_description() -> String {
    let mut text = String::from("average() crashes on an empty list instead of returning 0.\n\n");
    for i in 0..400 {
        text.push_str(&format!(
            "log line {i}: computing statistics for batch {i} of the nightly job\n"
        ));
    }
    text
}

/// Runs one local session on the Python project with `model` settings; true when verified.
async fn run_session(fake: &FakeModel, extra: &[&str]) -> bool {
    run_session_on(fake, &python_project(), extra).await
}

async fn run_session_on(fake: &FakeModel, files: &[(&str, &str)], extra: &[&str]) -> bool {
    let git_dir = tempfile::tempdir().unwrap();
    support::git_http::init_bare_repo(git_dir.path(), "octo/calc.git", files);
    let (git_addr, _server) = support::git_http::serve_git(git_dir.path().to_owned(), None).await;
    let data = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", data.path().join("pp.db").display());
    let data_dir = data.path().join("data").display().to_string();
    let repo = format!("http://{git_addr}/octo/calc.git");
    let description = noisy_description();
    let base = fake.openai_base_url();
    let mut argv = vec![
        "patchpilot",
        "--repo",
        &repo,
        "--branch",
        "main",
        "--description",
        &description,
        "--repro",
        PYTHON_REPRO,
        "--database-url",
        &db,
        "--data-dir",
        &data_dir,
        "--openai-base-url",
        &base,
        "--sandbox-timeout-secs",
        "120",
    ];
    argv.extend_from_slice(extra);
    let args = RunCli::try_parse_from(argv).unwrap().run;
    patchpilot::local_run::run_local(args).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_small_context_output_limit_and_temperature_shape_the_request() {
    // llama-server with a 2048-token context and no API key.
    let fake = FakeModel::start_with_key(None).await;
    fake.serve_props(llama_cpp_props(2048));
    fake.push_reply(Reply::text(PYTHON_FIX));

    let verified = run_session(
        &fake,
        &[
            "--model",
            "gemma-3-270m",
            "--model-max-output-tokens",
            "400",
            "--model-temperature",
            "0.3",
        ],
    )
    .await;

    assert!(verified, "the session should verify the scripted fix");
    assert!(fake.unexpected().is_empty(), "{:?}", fake.unexpected());
    assert_eq!(fake.metadata_requests(), ["/props"]);
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    let body = &sent[0].body;
    assert_eq!(
        body["max_tokens"], 400,
        "PATCHPILOT_MODEL_MAX_OUTPUT_TOKENS"
    );
    let temperature = body["temperature"].as_f64().expect("temperature sent");
    assert!((temperature - 0.3).abs() < 1e-6, "{temperature}");
    // The prompt plus the reply fit the 2048-token window at the documented estimate...
    let bytes = prompt_bytes(&sent[0]);
    assert!(
        bytes / BYTES_PER_TOKEN + 400 <= 2048,
        "prompt of {bytes} bytes does not fit 2048 tokens with a 400-token reply"
    );
    // ...and still carries the evidence that matters.
    let first = sent[0].first_user_message();
    assert!(first.contains("## calc.py"), "{first}");
    assert!(
        first.contains("return sum(values) / len(values)"),
        "{first}"
    );
    assert!(first.contains("ZeroDivisionError"), "{first}");
    assert!(
        first.contains("[... truncated]"),
        "the noisy description is cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_known_window_the_default_budget_applies_and_the_repository_picks_the_model() {
    // An OpenAI-compatible server that reports no window (like Ollama): /props is 404 and the
    // model list has no context fields. The repository asks for its own model.
    let fake = FakeModel::start_with_key(None).await;
    fake.serve_models(serde_json::json!({"object": "list", "data": [
        {"id": "qwen", "object": "model"}, {"id": "qwen-repo", "object": "model"}
    ]}));
    fake.push_reply(Reply::text(PYTHON_FIX));
    let mut files = python_project();
    files.push((".github/patchpilot.yml", "model: qwen-repo\n"));

    assert!(run_session_on(&fake, &files, &["--model", "qwen"]).await);

    let sent = fake.requests();
    assert_eq!(
        sent[0].body["model"], "qwen-repo",
        "the repository's `model:`"
    );
    assert_eq!(sent[0].body["max_tokens"], 8192);
    assert!(sent[0].body.get("temperature").is_none());
    // The default budget keeps 12 kB of the noisy description: far more than fits 2048 tokens.
    assert!(prompt_bytes(&sent[0]) > 12_000);
    assert_eq!(fake.metadata_requests(), ["/props", "/v1/models"]);
}

#[tokio::test]
async fn vllm_reports_max_model_len_and_the_answer_is_remembered() {
    let fake = FakeModel::start_with_key(None).await;
    fake.serve_models(vllm_models("Qwen/Qwen2.5-Coder-7B-Instruct", 4096));
    let base = fake.openai_base_url();
    let model = patchpilot::llm::from_args(&model_args(&[
        "--openai-base-url",
        &base,
        "--model",
        "Qwen/Qwen2.5-Coder-7B-Instruct",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(model.context_tokens().await, Some(4096));
    assert_eq!(model.context_tokens().await, Some(4096));
    // llama.cpp's /props first (404 here), then the model list, once.
    assert_eq!(fake.metadata_requests(), ["/props", "/v1/models"]);
}

#[tokio::test]
async fn a_configured_context_window_wins_and_nothing_is_asked() {
    let fake = FakeModel::start_with_key(None).await;
    fake.serve_props(llama_cpp_props(32_768));
    let base = fake.openai_base_url();
    let model = patchpilot::llm::from_args(&model_args(&[
        "--openai-base-url",
        &base,
        "--model",
        "m",
        "--model-context-tokens",
        "8192",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(model.context_tokens().await, Some(8192));
    assert!(fake.metadata_requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_asked_again_later() {
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let model =
        patchpilot::llm::from_args(&model_args(&["--openai-base-url", &base, "--model", "m"]))
            .unwrap()
            .unwrap();
    assert_eq!(model.context_tokens().await, None);
}

#[tokio::test]
async fn anthropic_key_alone_uses_the_documented_default_model() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("ok"));
    let base = fake.anthropic_base_url();
    let model = patchpilot::llm::from_args(&model_args(&[
        "--anthropic-api-key",
        FAKE_MODEL_KEY,
        "--anthropic-base-url",
        &base,
        "--model-max-output-tokens",
        "300",
        "--model-temperature",
        "0",
    ]))
    .unwrap()
    .unwrap();
    let generation = model.generation();
    let request = patchpilot::llm::ChatRequest {
        system: "s".into(),
        messages: vec![patchpilot::llm::Message::user("hi")],
        max_tokens: generation.max_output_tokens,
        temperature: generation.temperature,
    };
    model.complete(&request).await.unwrap();
    let body: &Value = &fake.requests()[0].body;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 300);
    assert_eq!(body["temperature"], 0.0);
}

#[tokio::test]
async fn with_both_providers_configured_the_model_name_picks_the_wire() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("from anthropic"));
    fake.push_reply(Reply::text("from openai"));
    let (anthropic, openai) = (fake.anthropic_base_url(), fake.openai_base_url());
    let both = |model: &str| {
        model_args(&[
            "--anthropic-api-key",
            FAKE_MODEL_KEY,
            "--anthropic-base-url",
            &anthropic,
            "--openai-api-key",
            FAKE_MODEL_KEY,
            "--openai-base-url",
            &openai,
            "--model",
            model,
        ])
    };
    let request = patchpilot::llm::ChatRequest {
        system: String::new(),
        messages: vec![patchpilot::llm::Message::user("hi")],
        max_tokens: 10,
        temperature: None,
    };
    for model in ["claude-sonnet-4-5", "gpt-4.1"] {
        let client = patchpilot::llm::from_args(&both(model)).unwrap().unwrap();
        client.complete(&request).await.unwrap();
    }
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/messages", "/v1/chat/completions"]);
}
