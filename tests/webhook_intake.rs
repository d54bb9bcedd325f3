//! `POST /webhooks/github` over real HTTP: verification, size limit, shape errors, durable
//! recording, deduplication, and GitHub's real example payloads of every event type.

mod support;

use patchpilot::store::SessionFilter;
use patchpilot::store::{SessionStatus, TriggerKind};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::server::{SECRET, TestServer};

/// A real `issues.labeled` payload, relabelled `patchpilot` and given an installation.
fn labeled_payload(issue_body: &str) -> Value {
    let mut payload = support::example("issues", "labeled");
    payload["label"]["name"] = json!("patchpilot");
    payload["installation"] = json!({ "id": 4242, "node_id": "x" });
    payload["issue"]["body"] = json!(issue_body);
    payload
}

async fn sessions(server: &TestServer) -> Vec<patchpilot::store::Session> {
    server
        .store
        .list_sessions(&SessionFilter::default())
        .await
        .unwrap()
}

on_both_backends! {
    async fn labeled_issue_is_recorded_then_acknowledged_and_deduplicated(db) {
        let server = TestServer::start(db, &[]).await;
        let body = serde_json::to_vec(&labeled_payload("It crashes.\n\nrepro: pytest -x tests/test_a.py\nbranch: develop")).unwrap();
        let response = server.deliver("issues", "delivery-1", &body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let answer: Value = response.json().await.unwrap();
        let session_id = answer["sessionId"].as_str().expect("a session id").to_owned();

        // Committed before the answer: visible right away.
        let session = server.store.get_session(&session_id).await.unwrap().unwrap();
        assert_eq!(session.status, SessionStatus::Queued);
        assert_eq!(session.trigger_kind, TriggerKind::Label);
        let github = session.github.as_ref().expect("GitHub coordinates");
        assert_eq!(github.installation_id, 4242);
        assert_eq!(session.repro_command.as_deref(), Some("pytest -x tests/test_a.py"));
        assert_eq!(session.branch.as_deref(), Some("develop"));
        assert_eq!(github.repository, "Codertocat/Hello-World");
        assert!(session.bug_description.starts_with("Spelling error in the README file"));
        let delivery = server.store.get_delivery("delivery-1").await.unwrap().unwrap();
        assert_eq!(delivery.record.event, "issues");
        assert_eq!(delivery.record.action.as_deref(), Some("labeled"));

        // GitHub redelivers: answered 200, nothing done twice.
        let again = server.deliver("issues", "delivery-1", &body).await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
        assert_eq!(sessions(&server).await.len(), 1);
    }

    async fn other_labels_and_bots_start_nothing(db) {
        let server = TestServer::start(db, &[]).await;
        let mut other = labeled_payload("x");
        other["label"]["name"] = json!("bug");
        assert_eq!(server.deliver("issues", "d-1", &serde_json::to_vec(&other).unwrap()).await.status(), StatusCode::ACCEPTED);
        let mut bot = labeled_payload("x");
        bot["sender"]["login"] = json!("renovate[bot]");
        bot["sender"]["type"] = json!("Bot");
        assert_eq!(server.deliver("issues", "d-2", &serde_json::to_vec(&bot).unwrap()).await.status(), StatusCode::ACCEPTED);
        assert!(sessions(&server).await.is_empty());
        let outcome = server.store.get_delivery("d-2").await.unwrap().unwrap().outcome;
        assert_eq!(outcome, "ignored: sender is a bot");
    }

    async fn every_real_example_payload_is_acknowledged(db) {
        let server = TestServer::start(db, &[]).await;
        let examples = support::octokit_examples();
        assert!(examples.len() > 300, "the fixture has every event type");
        for (i, (event, payload)) in examples.iter().enumerate() {
            let response = server.deliver(event, &format!("ex-{i}"), &serde_json::to_vec(payload).unwrap()).await;
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "{event}.{}: {status} {text}", payload["action"]);
        }
        for (i, (event, _)) in examples.iter().enumerate() {
            let stored = server.store.get_delivery(&format!("ex-{i}")).await.unwrap();
            assert_eq!(stored.map(|d| d.record.event).as_deref(), Some(event.as_str()));
        }
        // None of the examples carries our label, so none starts a session.
        assert!(sessions(&server).await.is_empty());
    }
}

#[tokio::test]
async fn ping_answers_ok() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let (_, ping) = support::octokit_examples()
        .into_iter()
        .find(|(name, _)| name == "ping")
        .unwrap();
    let ping = serde_json::to_vec(&ping).unwrap();
    let response = server.deliver("ping", "ping-1", &ping).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server
            .store
            .get_delivery("ping-1")
            .await
            .unwrap()
            .unwrap()
            .outcome,
        "ping"
    );
}

async fn post(
    server: &TestServer,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut request = server
        .client
        .post(format!("{}/webhooks/github", server.url))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn bad_signatures_are_401() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let body = br#"{"zen":"hi"}"#.to_vec();
    let good = patchpilot::webhook::signature::sign(SECRET, &body);
    let wrong = patchpilot::webhook::signature::sign("another secret", &body);
    let base = [("X-GitHub-Event", "ping"), ("X-GitHub-Delivery", "d")];
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("missing", base.to_vec()),
        (
            "wrong secret",
            [base.as_slice(), &[("X-Hub-Signature-256", wrong.as_str())]].concat(),
        ),
        (
            "sha1 only",
            [
                base.as_slice(),
                &[(
                    "X-Hub-Signature",
                    "sha1=0123456789abcdef0123456789abcdef01234567",
                )],
            ]
            .concat(),
        ),
        (
            "garbage",
            [base.as_slice(), &[("X-Hub-Signature-256", "sha256=xyz")]].concat(),
        ),
    ];
    for (name, headers) in cases {
        let (status, text) = post(&server, &headers, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {text}");
    }
    // The same body with the right signature but a tampered byte fails too.
    let (status, _) = post(
        &server,
        &[base.as_slice(), &[("X-Hub-Signature-256", good.as_str())]].concat(),
        br#"{"zen":"ho"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        server.store.get_delivery("d").await.unwrap().is_none(),
        "nothing recorded"
    );
}

#[tokio::test]
async fn githubs_test_vector_passes_signature_verification() {
    let server = TestServer::start_with(
        support::db::fresh_sqlite().await,
        &["--webhook-secret", "It's a Secret to Everybody"],
    )
    .await;
    let headers = [
        ("X-GitHub-Event", "ping"),
        ("X-GitHub-Delivery", "vector"),
        (
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
    ];
    // The signature is accepted; the body is not JSON, which is the next check.
    let (status, text) = post(&server, &headers, b"Hello, World!".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("not valid JSON"), "{text}");
}

#[tokio::test]
async fn malformed_requests_are_400_naming_the_problem() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let signed = |body: &[u8]| patchpilot::webhook::signature::sign(SECRET, body);
    let body = br#"{"action":"labeled"}"#.to_vec();
    let sig = signed(&body);
    let (status, text) = post(
        &server,
        &[("X-GitHub-Delivery", "d"), ("X-Hub-Signature-256", &sig)],
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, text.contains("X-GitHub-Event")),
        (StatusCode::BAD_REQUEST, true),
        "{text}"
    );
    let (status, text) = post(
        &server,
        &[("X-GitHub-Event", "issues"), ("X-Hub-Signature-256", &sig)],
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, text.contains("X-GitHub-Delivery")),
        (StatusCode::BAD_REQUEST, true),
        "{text}"
    );

    let broken = b"{\"action\": \"labeled\", ".to_vec();
    let response = server.deliver("issues", "d2", &broken).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("not valid JSON"));

    let mut shape = labeled_payload("x");
    shape["issue"]["number"] = json!("seven");
    let response = server
        .deliver("issues", "d3", &serde_json::to_vec(&shape).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.contains("issue.number"), "names the JSON path: {text}");
    assert!(server.store.get_delivery("d3").await.unwrap().is_none());
}

#[tokio::test]
async fn bodies_over_githubs_25_mb_limit_are_413() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let body = vec![b' '; 25 * 1024 * 1024 + 1];
    let response = server.deliver("issues", "huge", &body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly at the limit is read (and then rejected only for not being JSON).
    let body = vec![b' '; 25 * 1024 * 1024];
    assert_eq!(
        server.deliver("issues", "big", &body).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn without_a_secret_webhooks_answer_503_and_record_nothing() {
    let server = TestServer::start_with(support::db::fresh_sqlite().await, &[]).await;
    let response = server.deliver("ping", "p", b"{}").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("GITHUB_WEBHOOK_SECRET")
    );
    assert!(server.store.get_delivery("p").await.unwrap().is_none());
}

#[tokio::test]
async fn healthz_reports_the_store() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let health: Value = server
        .client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "sqlite");
    let response = server
        .client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().contains_key("x-request-id"),
        "request ids are propagated"
    );
}
