//! The session API and live page over real HTTP.

mod support;

use patchpilot::session::{EventLevel, SessionStatus};
use patchpilot::store::SessionPatch;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::server::{API_TOKEN, TestServer};

fn create_body() -> Value {
    json!({
        "repoUrl": "https://github.com/octo/hello.git",
        "bugDescription": "Division by zero on empty input",
        "reproCommand": "python -m pytest -x",
    })
}

async fn create(server: &TestServer, body: &Value, token: Option<&str>) -> reqwest::Response {
    let mut request = server
        .client
        .post(format!("{}/api/sessions", server.url))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

on_both_backends! {
    async fn create_read_list_and_cancel(db) {
        let server = TestServer::start(db, &[]).await;
        let response = create(&server, &create_body(), Some(API_TOKEN)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["url"], format!("/sessions/{id}"));

        server.store.append_event(&id, "clone", EventLevel::Info, "cloned at abc123").await.unwrap();
        let session: Value = server.client.get(format!("{}/api/sessions/{id}", server.url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(session["repoUrl"], "https://github.com/octo/hello.git");
        assert_eq!(session["bugDescription"], "Division by zero on empty input");
        assert_eq!(session["reproCommand"], "python -m pytest -x");
        assert_eq!(session["status"], "queued");
        assert!(session["logs"].as_str().unwrap().contains("cloned at abc123"));
        for field in ["branch", "patchDiff", "prUrl", "errorMessage", "createdAt", "updatedAt"] {
            assert!(session.get(field).is_some(), "seed field {field} present");
        }

        let list = server.client.get(format!("{}/api/sessions", server.url)).bearer_auth(API_TOKEN).send().await.unwrap();
        assert_eq!(list.json::<Vec<Value>>().await.unwrap().len(), 1);
        let unauthorised = server.client.get(format!("{}/api/sessions", server.url)).send().await.unwrap();
        assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);

        let cancel = server.client.post(format!("{}/api/sessions/{id}/cancel", server.url)).bearer_auth(API_TOKEN).send().await.unwrap();
        assert_eq!(cancel.status(), StatusCode::ACCEPTED);
        assert!(server.store.get_session(&id).await.unwrap().unwrap().cancel_requested);
        server.store.update_session(&id, &SessionPatch { status: Some(SessionStatus::Cancelled), ..Default::default() }).await.unwrap();
        let again = server.client.post(format!("{}/api/sessions/{id}/cancel", server.url)).bearer_auth(API_TOKEN).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn bad_requests_get_clear_4xx() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    assert_eq!(
        create(&server, &create_body(), None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        create(&server, &create_body(), Some("wrong"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let mut missing = create_body();
    missing.as_object_mut().unwrap().remove("reproCommand");
    let response = create(&server, &missing, Some(API_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("reproCommand"));

    let mut bad_url = create_body();
    bad_url["repoUrl"] = json!("file:///etc/passwd");
    let response = create(&server, &bad_url, Some(API_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("repoUrl"));

    let response = server
        .client
        .post(format!("{}/api/sessions", server.url))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let missing = server
        .client
        .get(format!("{}/api/sessions/nope", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_writes_are_disabled_without_a_token() {
    let server = TestServer::start_with(support::db::fresh_sqlite().await, &[]).await;
    let response = create(&server, &create_body(), Some("anything")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("PATCHPILOT_API_TOKEN")
    );
}

#[tokio::test]
async fn events_stream_until_the_session_ends_and_the_page_escapes_text() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let created: Value = create(&server, &create_body(), Some(API_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    server
        .store
        .append_event(
            &id,
            "reproduce",
            EventLevel::Output,
            "FAILED test_div - ZeroDivisionError",
        )
        .await
        .unwrap();

    let response = server
        .client
        .get(format!("{}/api/sessions/{id}/events", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response;
    let store = server.store.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        store
            .append_event(&id, "verify", EventLevel::Info, "repro passes <b>now</b>")
            .await
            .unwrap();
        store
            .update_session(
                &id,
                &SessionPatch {
                    status: Some(SessionStatus::Failed),
                    error_message: Some("<script>x</script>".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        id
    });
    let mut text = String::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(chunk) = body.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "the stream ends once the session is finished");
    assert!(text.contains("ZeroDivisionError"), "{text}");
    assert!(text.contains("repro passes"), "{text}");
    assert!(text.contains("\"status\":\"failed\""), "{text}");
    let id = writer.await.unwrap();

    let page = server
        .client
        .get(format!("{}/sessions/{id}", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;script&gt;x&lt;/script&gt;"),
        "error text is escaped"
    );
    assert!(!page.contains("<script>x</script>"));
    assert!(page.contains(&format!("/api/sessions/{id}/events")));
}
