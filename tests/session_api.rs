//! The session API and live page over real HTTP.

mod support;

use patchpilot::session::links::LinkSigner;
use patchpilot::store::NewSession;
use patchpilot::store::SessionPatch;
use patchpilot::store::{EventLevel, SessionStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::server::{API_TOKEN, SECRET, TestServer};

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

        assert_eq!(id.len(), 32, "128 random bits, hex");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));

        server.store.append_event(&id, "clone", EventLevel::Info, "cloned at abc123").await.unwrap();
        let anonymous = server.client.get(format!("{}/api/sessions/{id}", server.url)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "API sessions have unknown visibility: private");
        let session: Value = server.client.get(format!("{}/api/sessions/{id}", server.url)).bearer_auth(API_TOKEN).send().await.unwrap().json().await.unwrap();
        assert_eq!(session["private"], true);
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
        .bearer_auth(API_TOKEN)
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
        .bearer_auth(API_TOKEN)
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
    assert!(page.contains(&format!("/api/sessions/{id}/events?after=")));
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The issue's report: `PATCHPILOT_API_TOKEN=` (docker-compose's `${VAR}`) left the API open.
#[tokio::test]
async fn a_blank_api_token_disables_the_api_and_never_opens_it() {
    for blank in ["", "   ", " \t "] {
        // The CLI refuses a blank flag and drops a blank variable (config::parse_cli); the
        // server must stay closed even if a blank token reaches it some other way.
        let mut args = support::server::serve_args(&["--webhook-secret", SECRET]);
        args.server.api_token = Some(secrecy::SecretString::from(blank.to_owned()));
        let server = TestServer::start_with_args(support::db::fresh_sqlite().await, args).await;
        let url = &server.url;
        for auth in [None, Some(""), Some(" "), Some(blank)] {
            let mut list = server.client.get(format!("{url}/api/sessions"));
            let mut post = server
                .client
                .post(format!("{url}/api/sessions"))
                .json(&create_body());
            if let Some(token) = auth {
                list = list.header("authorization", format!("Bearer {token}"));
                post = post.header("authorization", format!("Bearer {token}"));
            }
            assert_eq!(
                list.send().await.unwrap().status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "list with token {blank:?} and auth {auth:?}"
            );
            assert_eq!(
                post.send().await.unwrap().status(),
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        let sign_in = server
            .client
            .post(format!("{url}/signin"))
            .header("origin", url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("token", blank), ("next", "/sessions")]))
            .send()
            .await
            .unwrap();
        assert_eq!(sign_in.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(sign_in.headers().get("set-cookie").is_none());
        let list_page = server
            .client
            .get(format!("{url}/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(list_page.status(), StatusCode::SERVICE_UNAVAILABLE);
        let form = server
            .client
            .post(format!("{url}/sessions"))
            .header("origin", url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("repoUrl", "https://github.com/o/r.git"),
                ("bugDescription", "x"),
                ("reproCommand", "true"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::SERVICE_UNAVAILABLE);
        let sessions = server
            .store
            .list_sessions(&Default::default())
            .await
            .unwrap();
        assert!(sessions.is_empty(), "nothing was started");
    }
}

async fn stored_session(server: &TestServer, private: Option<bool>) -> String {
    let session = server
        .store
        .create_session(NewSession {
            repo_url: "https://github.com/octo/secret.git".into(),
            bug_description: "private output".into(),
            repository: Some("octo/secret".into()),
            issue_number: Some(7),
            private,
            ..NewSession::default()
        })
        .await
        .unwrap();
    server
        .store
        .append_event(
            &session.id,
            "reproduce",
            EventLevel::Output,
            "SECRET-OUTPUT",
        )
        .await
        .unwrap();
    server
        .store
        .update_session(
            &session.id,
            &SessionPatch {
                status: Some(SessionStatus::Failed),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    session.id
}

async fn status_of(server: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = server.client.get(format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn private_sessions_need_the_token_or_a_signed_link() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let public = stored_session(&server, Some(false)).await;
    let private = stored_session(&server, Some(true)).await;
    let unknown = stored_session(&server, None).await;
    let signer = LinkSigner::new([SECRET.as_bytes()]).unwrap();
    let now = chrono::Utc::now();
    let good = signer.sign(&private, now + chrono::Duration::hours(1));
    let expired = signer.sign(&private, now - chrono::Duration::seconds(1));
    let other = signer.sign(&public, now + chrono::Duration::hours(1));
    let forged = LinkSigner::new([b"guess".as_slice()])
        .unwrap()
        .sign(&private, now + chrono::Duration::hours(1));

    for kind in [
        "/sessions/{id}",
        "/api/sessions/{id}",
        "/api/sessions/{id}/events",
    ] {
        let path = |id: &str| kind.replace("{id}", id);
        let (status, body) = status_of(&server, &path(&public), None).await;
        assert_eq!(status, StatusCode::OK, "public {kind}");
        assert!(body.contains("SECRET-OUTPUT"), "public {kind} shows output");
        for id in [&private, &unknown] {
            let (status, body) = status_of(&server, &path(id), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous {kind}");
            assert!(!body.contains("SECRET-OUTPUT"));
            let (status, _) = status_of(&server, &path(id), Some("wrong")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong token {kind}");
            let (status, body) = status_of(&server, &path(id), Some(API_TOKEN)).await;
            assert_eq!(status, StatusCode::OK, "operator {kind}");
            assert!(body.contains("SECRET-OUTPUT"));
        }
        let (status, body) = status_of(&server, &format!("{}?{good}", path(&private)), None).await;
        assert_eq!(status, StatusCode::OK, "signed link {kind}");
        assert!(body.contains("SECRET-OUTPUT"));
        for bad in [&expired, &other, &forged] {
            let (status, body) =
                status_of(&server, &format!("{}?{bad}", path(&private)), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "bad link {kind}: {bad}");
            assert!(!body.contains("SECRET-OUTPUT"));
        }
    }
    // The page passes its link on to the event stream it opens.
    let (_, page) = status_of(&server, &format!("/sessions/{private}?{good}"), None).await;
    let events_url = format!("/api/sessions/{private}/events?after=");
    let start = page
        .find(&events_url)
        .expect("the page opens the event stream");
    let attribute = &page[start..start + page[start..].find('"').unwrap()];
    assert!(
        attribute.ends_with(&format!("&amp;{}", good.replace('&', "&amp;"))),
        "{attribute}"
    );
}

#[tokio::test]
async fn a_webhook_records_whether_the_repository_is_private() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    for (delivery, private) in [("d-private", true), ("d-public", false)] {
        let mut payload = support::example("issues", "labeled");
        payload["label"]["name"] = json!("patchpilot");
        payload["installation"] = json!({ "id": 1, "node_id": "x" });
        payload["issue"]["number"] = json!(if private { 1 } else { 2 });
        payload["repository"]["private"] = json!(private);
        payload["sender"]["type"] = json!("User");
        let body = serde_json::to_vec(&payload).unwrap();
        let response = server.deliver("issues", delivery, &body).await;
        assert!(response.status().is_success());
        let session_id = server
            .store
            .get_delivery(delivery)
            .await
            .unwrap()
            .unwrap()
            .session_id
            .expect("a session was recorded");
        let session = server
            .store
            .get_session(&session_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.private, private);
    }
}

#[tokio::test]
async fn lists_are_newest_first_and_streams_resume_after_last_event_id() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let created: Value = create(&server, &create_body(), Some(API_TOKEN))
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let list: Vec<Value> = server
        .client
        .get(format!("{}/api/sessions", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(
        listed, newest_first,
        "ordered by creation time, not by (random) id"
    );

    let id = &ids[0];
    let mut event_ids = Vec::new();
    for n in 1..=3 {
        let event = server
            .store
            .append_event(id, "reproduce", EventLevel::Output, &format!("line-{n}"))
            .await
            .unwrap();
        event_ids.push(event);
    }
    server
        .store
        .update_session(
            id,
            &SessionPatch {
                status: Some(SessionStatus::Failed),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let resumed = server
        .client
        .get(format!("{}/api/sessions/{id}/events", server.url))
        .bearer_auth(API_TOKEN)
        .header("last-event-id", event_ids[0].to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!resumed.contains("line-1"), "{resumed}");
    assert_eq!(resumed.matches("line-2").count(), 1, "{resumed}");
    assert_eq!(resumed.matches("line-3").count(), 1, "{resumed}");
    let from_page = server
        .client
        .get(format!(
            "{}/api/sessions/{id}/events?after={}",
            server.url, event_ids[1]
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !from_page.contains("line-2") && from_page.contains("line-3"),
        "{from_page}"
    );
}

#[tokio::test]
async fn live_event_streams_are_capped() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let created: Value = create(&server, &create_body(), Some(API_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let url = format!("{}/api/sessions/{id}/events", server.url);
    let mut open = Vec::new();
    for _ in 0..patchpilot::server::access::MAX_EVENT_STREAMS {
        let response = server
            .client
            .get(&url)
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        open.push(response);
    }
    let refused = server
        .client
        .get(&url)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().get("retry-after").is_some());
    drop(open);
    let mut admitted = false;
    for _ in 0..250 {
        let again = server
            .client
            .get(&url)
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        if again.status() == StatusCode::OK {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(admitted, "closed streams free their slots");
}

/// Every untrusted field of a session, rendered: issue text, command output, the diff, the
/// model's words, the reason it stopped.
#[tokio::test]
async fn the_session_page_escapes_every_untrusted_field() {
    let server = TestServer::start(support::db::fresh_sqlite().await, &[]).await;
    let evil =
        |field: &str| format!("<script>alert('{field}')</script><img src=x onerror=alert(1)>\"'");
    let session = server
        .store
        .create_session(NewSession {
            repo_url: format!("https://github.com/o/r.git?{}", evil("url")),
            branch: Some(evil("branch")),
            bug_description: evil("description"),
            repro_command: Some(evil("repro")),
            // A GitHub session: installation, repository and issue are known together.
            installation_id: Some(1),
            repository: Some(evil("repository")),
            issue_number: Some(1),
            issue_title: Some(evil("title")),
            private: Some(false),
            ..NewSession::default()
        })
        .await
        .unwrap();
    let id = session.id.clone();
    for (step, level, message) in [
        ("reproduce", EventLevel::Output, evil("before")),
        (
            "patch",
            EventLevel::Info,
            format!("attempt 1 of 1: asking {}", evil("model")),
        ),
        ("verify", EventLevel::Output, evil("after")),
        ("worker", EventLevel::Warn, evil("other")),
    ] {
        server
            .store
            .append_event(&id, step, level, &message)
            .await
            .unwrap();
    }
    server
        .store
        .update_session(
            &id,
            &SessionPatch {
                status: Some(SessionStatus::Failed),
                error_message: Some(evil("reason")),
                patch_diff: Some(format!(
                    "diff --git a/{0} b/{0}\n--- a/{0}\n+++ b/{0}\n@@ -1 +1 @@\n-a\n+{0}\n",
                    evil("diff")
                )),
                pr_url: Some("javascript:alert(1)".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let response = server
        .client
        .get(format!("{}/sessions/{id}", server.url))
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let page = response.text().await.unwrap();
    for field in [
        "branch",
        "description",
        "repro",
        "repository",
        "title",
        "before",
        "model",
        "after",
        "other",
        "reason",
        "diff",
    ] {
        assert!(
            page.contains(&format!(
                "&lt;script&gt;alert(&#39;{field}&#39;)&lt;/script&gt;"
            )),
            "{field} is shown, escaped"
        );
    }
    assert!(!page.contains("<script>alert"), "no raw script");
    assert!(!page.contains("<img"), "no raw image");
    assert!(
        !page.contains("javascript:"),
        "a non-http PR URL is not a link"
    );
    assert_eq!(
        page.matches("<script").count(),
        0,
        "a finished session's page loads no script"
    );

    let list = server
        .client
        .get(format!("{}/sessions", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("&lt;script&gt;alert(&#39;title&#39;)"));
    assert!(!list.contains("<script>alert") && !list.contains("<img"));
}

/// The `event: session` data of a finished session's event stream.
async fn streamed_session(server: &TestServer, id: &str) -> Value {
    let text = server
        .client
        .get(format!("{}/api/sessions/{id}/events", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = text
        .split("\n\n")
        .find_map(|event| {
            let mut lines = event.lines();
            lines.any(|l| l == "event: session").then(|| {
                event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap()
            })
        })
        .unwrap_or_else(|| panic!("no session event in {text}"));
    serde_json::from_str(data).unwrap()
}

#[tokio::test]
async fn every_route_shows_a_session_with_the_same_json_fields() {
    let db = support::db::fresh_sqlite().await;
    db.clock.set(
        chrono::DateTime::parse_from_rfc3339("2001-02-03T04:05:06Z")
            .unwrap()
            .into(),
    );
    let server = TestServer::start(db, &[]).await;
    let session = server
        .store
        .create_session(NewSession {
            repo_url: "https://github.com/octo/hello.git".into(),
            branch: Some("main".into()),
            bug_description: "Division by zero on empty input".into(),
            repro_command: Some("python -m pytest -x".into()),
            installation_id: Some(7),
            repository: Some("octo/hello".into()),
            issue_number: Some(42),
            issue_title: Some("Crash on empty input".into()),
            trigger_kind: Some(patchpilot::store::TriggerKind::Comment),
            triggered_by: Some("maintainer".into()),
            trigger_comment_id: Some(1001),
            feedback: Some("keep the API".into()),
            private: Some(false),
            parent_session_id: Some("parent".into()),
            iteration_key: Some("comment:1001".into()),
            iteration_request: Some("{}".into()),
            pr_number: Some(43),
            head_branch: Some("patchpilot/issue-42".into()),
        })
        .await
        .unwrap();
    server
        .store
        .update_session(
            &session.id,
            &SessionPatch {
                status: Some(SessionStatus::Succeeded),
                patch_diff: Some("--- a/x\n+++ b/x\n".into()),
                pr_url: Some("https://github.com/octo/hello/pull/43".into()),
                error_message: Some("none".into()),
                base_sha: Some("b".repeat(40)),
                head_sha: Some("c".repeat(40)),
                check_run_id: Some(5),
                progress_comment_id: Some(6),
                attempt_count: Some(2),
                add_input_tokens: Some(1200),
                add_output_tokens: Some(340),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    server
        .store
        .append_event(&session.id, "clone", EventLevel::Info, "cloned")
        .await
        .unwrap();

    let listed: Vec<Value> = server
        .client
        .get(format!("{}/api/sessions", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let json = serde_json::to_string_pretty(&listed[0])
        .unwrap()
        .replace(&session.id, "<id>");
    insta::assert_snapshot!(json, @r#"
    {
      "attemptCount": 2,
      "baseSha": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
      "branch": "main",
      "bugDescription": "Division by zero on empty input",
      "cancelRequested": false,
      "checkRunId": 5,
      "createdAt": "2001-02-03T04:05:06Z",
      "deliveryId": null,
      "errorMessage": "none",
      "feedback": "keep the API",
      "headBranch": "patchpilot/issue-42",
      "headSha": "cccccccccccccccccccccccccccccccccccccccc",
      "id": "<id>",
      "inputTokens": 1200,
      "installationId": 7,
      "issueNumber": 42,
      "issueTitle": "Crash on empty input",
      "iterationKey": "comment:1001",
      "iterationRequest": "{}",
      "outputTokens": 340,
      "parentSessionId": "parent",
      "patchDiff": "--- a/x\n+++ b/x\n",
      "prNumber": 43,
      "prUrl": "https://github.com/octo/hello/pull/43",
      "private": false,
      "progressCommentId": 6,
      "repoUrl": "https://github.com/octo/hello.git",
      "repository": "octo/hello",
      "reproCommand": "python -m pytest -x",
      "status": "succeeded",
      "triggerCommentId": 1001,
      "triggerKind": "comment",
      "triggeredBy": "maintainer",
      "updatedAt": "2001-02-03T04:05:06Z"
    }
    "#);

    // The single session is the same object plus its logs and page address.
    let mut one: Value = server
        .client
        .get(format!("{}/api/sessions/{}", server.url, session.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let extra = one.as_object_mut().unwrap();
    assert_eq!(
        extra.remove("url"),
        Some(json!(format!("/sessions/{}", session.id)))
    );
    assert_eq!(
        extra.remove("logs"),
        Some(json!("[04:05:06] clone info: cloned\n"))
    );
    assert_eq!(one, listed[0]);
    // So is the event stream's `session` event.
    assert_eq!(streamed_session(&server, &session.id).await, listed[0]);
}
