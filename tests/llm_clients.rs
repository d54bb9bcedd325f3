//! The real Anthropic and OpenAI-compatible clients against the scripted model server:
//! request shape, usage, retries (honouring retry-after), no retry on 4xx, timeouts,
//! connection failures and per-session budgets.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use patchpilot::llm::anthropic::AnthropicClient;
use patchpilot::llm::openai::OpenAiClient;
use patchpilot::llm::{
    BudgetLimit, BudgetedModel, ChatRequest, ClientOptions, Message, Model, ModelArgs, ModelError,
    Provider, RetryPolicy, SessionBudget, Sleeper, Usage,
};
use secrecy::SecretString;
use support::fake_model::{FAKE_MODEL_KEY, FakeModel, Reply};

/// Records every wait instead of sleeping, so retry tests are fast and assert the waits
/// the client chose rather than wall-clock timings.
#[derive(Clone, Default)]
struct RecordingSleeper(Arc<Mutex<Vec<Duration>>>);

impl RecordingSleeper {
    fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

fn options(base_url: String, key: Option<&str>, sleeper: &RecordingSleeper) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
        },
        sleeper: Arc::new(sleeper.clone()),
        ..ClientOptions::new(base_url, key.map(SecretString::from), "test-model")
    }
}

fn anthropic(fake: &FakeModel, sleeper: &RecordingSleeper) -> AnthropicClient {
    AnthropicClient::new(options(
        fake.anthropic_base_url(),
        Some(FAKE_MODEL_KEY),
        sleeper,
    ))
    .unwrap()
}

fn openai(fake: &FakeModel, sleeper: &RecordingSleeper) -> OpenAiClient {
    OpenAiClient::new(options(
        fake.openai_base_url(),
        Some(FAKE_MODEL_KEY),
        sleeper,
    ))
    .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        system: "You fix bugs.".into(),
        messages: vec![Message::user("Fix the division.")],
        max_tokens: 1000,
        temperature: Some(0.2),
    }
}

#[tokio::test]
async fn anthropic_round_trip_sends_the_documented_request() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("the fix").usage(1234, 56));
    let sleeper = RecordingSleeper::default();

    let response = anthropic(&fake, &sleeper)
        .complete(&request())
        .await
        .unwrap();

    assert_eq!(response.text, "the fix");
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 1234,
            output_tokens: 56
        }
    );
    assert_eq!(response.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(response.model, "test-model");
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/messages");
    assert_eq!(sent[0].header("x-api-key"), Some(FAKE_MODEL_KEY));
    assert_eq!(sent[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent[0].system(), "You fix bugs.");
    assert_eq!(sent[0].body["max_tokens"], 1000);
    assert_eq!(
        sent[0].messages(),
        vec![("user".to_owned(), "Fix the division.".to_owned())]
    );
    assert!(sleeper.waits().is_empty());
}

#[tokio::test]
async fn openai_round_trip_sends_the_documented_request() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("done").usage(10, 3).stop_reason("length"));
    let sleeper = RecordingSleeper::default();

    let response = openai(&fake, &sleeper).complete(&request()).await.unwrap();

    assert_eq!(response.text, "done");
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 10,
            output_tokens: 3
        }
    );
    assert_eq!(response.stop_reason.as_deref(), Some("length"));
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {FAKE_MODEL_KEY}").as_str())
    );
    assert_eq!(
        sent.messages(),
        vec![
            ("system".to_owned(), "You fix bugs.".to_owned()),
            ("user".to_owned(), "Fix the division.".to_owned()),
        ]
    );
    assert_eq!(sent.body["max_tokens"], 1000);
}

#[tokio::test]
async fn openai_compatible_server_without_a_key_gets_no_authorization_header() {
    // Ollama and llama.cpp take no key; the base URL may also lack /v1.
    let fake = FakeModel::start_with_key(None).await;
    fake.push_reply(Reply::text("ok"));
    let sleeper = RecordingSleeper::default();
    let client = OpenAiClient::new(options(fake.base_url(), None, &sleeper)).unwrap();

    client.complete(&request()).await.unwrap();

    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(sent.header("authorization"), None);
}

#[tokio::test]
async fn overloaded_and_server_errors_are_retried_with_backoff() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::overloaded());
    fake.push_reply(Reply::status(503, "<html>upstream unavailable</html>"));
    fake.push_reply(Reply::text("finally"));
    let sleeper = RecordingSleeper::default();

    let response = anthropic(&fake, &sleeper)
        .complete(&request())
        .await
        .unwrap();

    assert_eq!(response.text, "finally");
    assert_eq!(fake.requests().len(), 3);
    let waits = sleeper.waits();
    assert_eq!(waits.len(), 2);
    // Exponential backoff with jitter: the second wait's range lies above the first's start.
    assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(100));
    assert!(waits[1] >= Duration::from_millis(100) && waits[1] <= Duration::from_millis(200));
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::rate_limited("7"));
    fake.push_reply(Reply::text("ok"));
    let sleeper = RecordingSleeper::default();

    anthropic(&fake, &sleeper)
        .complete(&request())
        .await
        .unwrap();

    assert_eq!(sleeper.waits(), vec![Duration::from_secs(7)]);
}

#[tokio::test]
async fn retry_after_as_http_date_and_retry_after_ms_are_honoured() {
    let fake = FakeModel::start().await;
    let at = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() + Duration::from_secs(30));
    fake.push_reply(Reply::rate_limited(
        &at.to_rfc2822().replace("+0000", "GMT"),
    ));
    fake.push_reply(
        Reply::status(429, FakeModel::openai_error("requests", "slow down"))
            .header("retry-after-ms", "1500"),
    );
    fake.push_reply(Reply::text("ok"));
    let sleeper = RecordingSleeper::default();

    openai(&fake, &sleeper).complete(&request()).await.unwrap();

    let waits = sleeper.waits();
    assert_eq!(waits.len(), 2);
    assert!(
        waits[0] > Duration::from_secs(20) && waits[0] <= Duration::from_secs(30),
        "{waits:?}"
    );
    assert_eq!(waits[1], Duration::from_millis(1500));
}

#[tokio::test]
async fn a_huge_retry_after_is_capped() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::rate_limited("86400"));
    fake.push_reply(Reply::text("ok"));
    let sleeper = RecordingSleeper::default();

    anthropic(&fake, &sleeper)
        .complete(&request())
        .await
        .unwrap();

    assert_eq!(sleeper.waits(), vec![Duration::from_secs(60)]);
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_a_clear_error() {
    let fake = FakeModel::start().await;
    for _ in 0..3 {
        fake.push_reply(Reply::overloaded());
    }
    let sleeper = RecordingSleeper::default();

    let err = anthropic(&fake, &sleeper)
        .complete(&request())
        .await
        .unwrap_err();

    match &err {
        ModelError::Status {
            status,
            kind,
            attempts,
            ..
        } => {
            assert_eq!(
                (*status, kind.as_deref(), *attempts),
                (529, Some("overloaded_error"), 3)
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains("HTTP 529 overloaded_error: Overloaded (after 3 attempt(s))"),
        "{shown}"
    );
    assert_eq!(fake.requests().len(), 3);
    assert!(fake.unexpected().is_empty());
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::status(
        400,
        FakeModel::anthropic_error("invalid_request_error", "prompt is too long"),
    ));
    fake.push_reply(Reply::text("never used"));
    let sleeper = RecordingSleeper::default();

    let err = anthropic(&fake, &sleeper)
        .complete(&request())
        .await
        .unwrap_err();

    assert!(matches!(
        err,
        ModelError::Status {
            status: 400,
            attempts: 1,
            ..
        }
    ));
    assert!(err.to_string().contains("prompt is too long"));
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.remaining_replies(), 1);
    assert!(sleeper.waits().is_empty());
}

#[tokio::test]
async fn a_wrong_key_fails_at_once_without_showing_the_key() {
    let fake = FakeModel::start().await;
    let sleeper = RecordingSleeper::default();
    let client = AnthropicClient::new(options(
        fake.anthropic_base_url(),
        Some("sk-wrong-secret-value"),
        &sleeper,
    ))
    .unwrap();

    let err = client.complete(&request()).await.unwrap_err();

    assert!(matches!(err, ModelError::Status { status: 401, .. }));
    assert!(!err.to_string().contains("sk-wrong-secret-value"));
    assert!(!format!("{err:?}").contains("sk-wrong-secret-value"));
    assert!(!format!("{client:?}").contains("sk-wrong-secret-value"));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_huge_error_body_is_shown_bounded() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::status(404, "x".repeat(100_000)));
    let sleeper = RecordingSleeper::default();

    let err = openai(&fake, &sleeper)
        .complete(&request())
        .await
        .unwrap_err();

    assert!(matches!(err, ModelError::Status { status: 404, .. }));
    assert!(err.to_string().len() < 500, "{}", err.to_string().len());
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("late").delay(Duration::from_secs(5)));
    fake.push_reply(Reply::text("on time"));
    let sleeper = RecordingSleeper::default();
    let client = AnthropicClient::new(ClientOptions {
        timeout: Duration::from_millis(300),
        ..options(fake.anthropic_base_url(), Some(FAKE_MODEL_KEY), &sleeper)
    })
    .unwrap();

    let response = client.complete(&request()).await.unwrap();

    assert_eq!(response.text, "on time");
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(sleeper.waits().len(), 1);
}

#[tokio::test]
async fn persistent_timeouts_end_in_a_timeout_error() {
    let fake = FakeModel::start().await;
    for _ in 0..2 {
        fake.push_reply(Reply::text("late").delay(Duration::from_secs(5)));
    }
    let sleeper = RecordingSleeper::default();
    let mut opts = options(fake.openai_base_url(), Some(FAKE_MODEL_KEY), &sleeper);
    opts.timeout = Duration::from_millis(300);
    opts.retry.max_attempts = 2;
    let client = OpenAiClient::new(opts).unwrap();

    let err = client.complete(&request()).await.unwrap_err();

    assert!(
        matches!(err, ModelError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn an_endpoint_that_is_down_fails_after_retries() {
    // A port that was just free: nothing listens on it.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sleeper = RecordingSleeper::default();
    let client =
        AnthropicClient::new(options(format!("http://{addr}"), Some("k"), &sleeper)).unwrap();

    let err = client.complete(&request()).await.unwrap_err();

    assert!(
        matches!(err, ModelError::Connection { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("could not reach the model API at http://127.0.0.1:")
    );
    assert_eq!(sleeper.waits().len(), 2);
}

#[tokio::test]
async fn the_session_budget_caps_turns_and_tallies_usage() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("one").usage(100, 10));
    fake.push_reply(Reply::text("two").usage(200, 20));
    fake.push_reply(Reply::text("three"));
    let sleeper = RecordingSleeper::default();
    let budget = SessionBudget {
        max_turns: 2,
        ..SessionBudget::default()
    };
    let model = BudgetedModel::new(Arc::new(openai(&fake, &sleeper)), budget);

    model.complete(&request()).await.unwrap();
    model.complete(&request()).await.unwrap();
    let err = model.complete(&request()).await.unwrap_err();

    assert!(matches!(
        err,
        ModelError::Budget(BudgetLimit::Turns { max: 2 })
    ));
    assert_eq!(
        fake.requests().len(),
        2,
        "a refused call never reaches the endpoint"
    );
    let totals = model.totals();
    assert_eq!(totals.turns, 2);
    assert_eq!(
        totals.usage,
        Usage {
            input_tokens: 300,
            output_tokens: 30
        }
    );
}

#[tokio::test]
async fn the_session_budget_caps_tokens() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("big").usage(900, 200));
    fake.push_reply(Reply::text("never"));
    let sleeper = RecordingSleeper::default();
    let budget = SessionBudget {
        max_tokens: 1000,
        ..SessionBudget::default()
    };
    let model = BudgetedModel::new(Arc::new(anthropic(&fake, &sleeper)), budget);

    model.complete(&request()).await.unwrap();
    let err = model.complete(&request()).await.unwrap_err();

    assert_eq!(
        err.to_string(),
        "model budget exhausted: the session already used 1100 of its 1000 model tokens"
    );
    assert_eq!(fake.remaining_replies(), 1);
}

#[tokio::test]
async fn from_args_builds_working_clients_for_both_providers() {
    let fake = FakeModel::start().await;
    fake.push_reply(Reply::text("via anthropic"));
    fake.push_reply(Reply::text("via openai"));

    let anthropic_args = ModelArgs {
        anthropic_api_key: Some(SecretString::from(FAKE_MODEL_KEY)),
        anthropic_base_url: Some(fake.anthropic_base_url()),
        model: Some("claude-test".into()),
        ..ModelArgs::default()
    };
    let model = patchpilot::llm::from_args(&anthropic_args)
        .unwrap()
        .unwrap();
    assert_eq!(model.name(), "anthropic/claude-test");
    assert_eq!(
        model.complete(&request()).await.unwrap().text,
        "via anthropic"
    );

    let openai_args = ModelArgs {
        openai_api_key: Some(SecretString::from(FAKE_MODEL_KEY)),
        openai_base_url: Some(format!("{}/", fake.openai_base_url())),
        provider: Some(Provider::Openai),
        model: Some("llama-test".into()),
        ..ModelArgs::default()
    };
    let model = patchpilot::llm::from_args(&openai_args).unwrap().unwrap();
    assert_eq!(model.complete(&request()).await.unwrap().text, "via openai");

    let paths: Vec<_> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/v1/messages", "/v1/chat/completions"]);
    assert_eq!(fake.requests()[1].body["model"], "llama-test");
}
