//! The session API: create, list, read, follow (Server-Sent Events) and cancel sessions.
//!
//! Access: writes (create, cancel) and listings need `Authorization: Bearer
//! $PATCHPILOT_API_TOKEN` and are disabled when no token is configured. Reading one session
//! by id is open: ids are random UUIDs, so a session URL works as a capability link, which is
//! what the progress comment on the issue links to.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::access::{Denied, LinkQuery, MAX_STREAM_LIFETIME};
use super::session_json::SessionJson;
use crate::store::SessionFilter;
use crate::store::{NewSession, Session, TriggerKind};

/// An API error: status and a sentence.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::error!(error = %err, "store error in API");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage is unavailable; try again".to_owned(),
        )
    }
}

/// Operator routes (create, list, cancel) need the bearer token; see `access`.
fn require_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    state.web.bearer(headers).map_err(denied)
}

fn denied(why: Denied) -> ApiError {
    match why {
        Denied::Disabled => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this route is disabled: set PATCHPILOT_API_TOKEN on the server to enable it"
                .to_owned(),
        ),
        Denied::Unauthorized => ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".to_owned(),
        ),
    }
}

/// The session, if this request may read it (public repository, operator, or signed link).
async fn readable(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    link: &LinkQuery,
) -> Result<Session, ApiError> {
    let session = find(state, id).await?;
    if state
        .web
        .may_read(&session, headers, link, chrono::Utc::now())
    {
        Ok(session)
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "this session belongs to a private repository: send the API token or use a signed link"
                .to_owned(),
        ))
    }
}

/// `POST /api/sessions` body (the seed prototype's fields).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSession {
    pub repo_url: String,
    #[serde(default)]
    pub branch: Option<String>,
    pub bug_description: String,
    pub repro_command: String,
}

/// A create request's mistake: which field (its JSON name) and a sentence for the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: &str) -> Self {
        Self {
            field,
            message: message.to_owned(),
        }
    }
}

/// Checks a create request (the API's JSON and the start form share it).
pub fn validate(request: &CreateSession) -> Result<(), FieldError> {
    let bad_url = || FieldError::new("repoUrl", "repoUrl must be an http(s) URL");
    let url = url::Url::parse(request.repo_url.trim()).map_err(|_| bad_url())?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(bad_url());
    }
    if let Some(branch) = &request.branch
        && (branch.is_empty()
            || branch.starts_with('-')
            || branch.contains("..")
            || branch.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(FieldError::new(
            "branch",
            "branch is not a valid branch name",
        ));
    }
    if request.bug_description.trim().is_empty() {
        return Err(FieldError::new(
            "bugDescription",
            "bugDescription must not be empty",
        ));
    }
    if request.repro_command.trim().is_empty() {
        return Err(FieldError::new(
            "reproCommand",
            "reproCommand must not be empty",
        ));
    }
    Ok(())
}

/// Records a validated request as a queued session and wakes a worker.
pub async fn start_session(state: &AppState, request: CreateSession) -> Result<Session, ApiError> {
    let session = state
        .store
        .create_session(NewSession {
            repo_url: request.repo_url.trim().to_owned(),
            branch: request.branch,
            bug_description: request.bug_description,
            repro_command: Some(request.repro_command),
            trigger_kind: Some(TriggerKind::Api),
            ..NewSession::default()
        })
        .await?;
    state.worker_wakeup.notify_one();
    Ok(session)
}

pub async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_token(&state, &headers)?;
    let Json(request) = body.map_err(|err| ApiError(StatusCode::BAD_REQUEST, err.body_text()))?;
    validate(&request).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.message))?;
    let session = start_session(&state, request).await?;
    let url = crate::session::links::session_page_url(state.public_url.as_ref(), &session.id);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": session.id, "url": url })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    repository: Option<String>,
    issue: Option<i64>,
    status: Option<String>,
    limit: Option<i64>,
}

pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    require_token(&state, &headers)?;
    let status = query
        .status
        .map(|s| s.parse())
        .transpose()
        .map_err(|message| ApiError(StatusCode::BAD_REQUEST, message))?;
    let filter = SessionFilter {
        repository: query.repository,
        issue_number: query.issue,
        status,
        limit: query.limit.unwrap_or(50),
    };
    let sessions = state.store.list_sessions(&filter).await?;
    let json: Vec<SessionJson> = sessions.iter().map(SessionJson::from).collect();
    Ok(Json(json).into_response())
}

async fn find(state: &AppState, id: &str) -> Result<Session, ApiError> {
    state
        .store
        .get_session(id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no session `{id}`")))
}

/// `GET /api/sessions/{id}`: the session, with `logs` (its recent events as text).
pub async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(link): Query<LinkQuery>,
) -> Result<Response, ApiError> {
    let session = readable(&state, &id, &headers, &link).await?;
    let events = state.store.events_after(&id, 0, 2_000).await?;
    let logs: String = events
        .iter()
        .map(|e| {
            format!(
                "[{}] {} {}: {}\n",
                e.at.format("%H:%M:%S"),
                e.step,
                e.level.as_str(),
                e.message
            )
        })
        .collect();
    let mut value = serde_json::to_value(SessionJson::from(&session)).unwrap_or_default();
    value["logs"] = json!(logs);
    value["url"] = json!(crate::session::links::session_page_url(
        state.public_url.as_ref(),
        &id
    ));
    Ok(Json(value).into_response())
}

pub async fn cancel_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_token(&state, &headers)?;
    let session = find(&state, &id).await?;
    if state.store.request_cancel(&id).await? {
        state.worker_wakeup.notify_waiters();
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "cancelRequested": true })),
        )
            .into_response())
    } else {
        Err(ApiError(
            StatusCode::CONFLICT,
            format!("session `{id}` is already {}", session.status),
        ))
    }
}

/// `GET /api/sessions/{id}/events` query: a signed link's fields, and where to start when
/// no `Last-Event-ID` header is sent (the page passes the last event it rendered).
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    expires: Option<i64>,
    sig: Option<String>,
    after: Option<i64>,
}

/// `GET /api/sessions/{id}/events`: the session's events as SSE, then status changes, until
/// the session ends. Resumes after `Last-Event-ID` (what a browser's `EventSource` sends when
/// it reconnects), else after `?after=`. The store is polled so that events written by a
/// worker on another replica arrive too.
///
/// Streams are capped (`access::MAX_EVENT_STREAMS` per replica, 503 with `Retry-After` beyond) and
/// end after [`MAX_STREAM_LIFETIME`]; a browser then reconnects where it left off.
pub async fn session_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let link = LinkQuery {
        expires: query.expires,
        sig: query.sig,
    };
    readable(&state, &id, &headers, &link).await?;
    let Some(slot) = state.web.stream_slot() else {
        let mut response = ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live event streams are open; try again shortly".to_owned(),
        )
        .into_response();
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("5"),
        );
        return Ok(response);
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(query.after)
        .unwrap_or(0)
        .max(0);
    let deadline = tokio::time::Instant::now() + MAX_STREAM_LIFETIME;
    let stream = futures::stream::unfold(
        (state, id, after, None::<String>, false),
        move |(state, id, mut after, mut last_status, done)| async move {
            if done || tokio::time::Instant::now() >= deadline {
                return None;
            }
            let mut batch = Vec::new();
            loop {
                let events = state
                    .store
                    .events_after(&id, after, 200)
                    .await
                    .unwrap_or_default();
                for event in &events {
                    after = event.id;
                    let data = serde_json::to_string(event).unwrap_or_default();
                    batch.push(Ok::<_, Infallible>(
                        SseEvent::default()
                            .id(event.id.to_string())
                            // A dropped stream resumes after 1 s instead of the browser's 3 s.
                            .retry(Duration::from_secs(1))
                            .event("log")
                            .data(data),
                    ));
                }
                let session = state.store.get_session(&id).await.ok().flatten();
                let status = session.as_ref().map(|s| s.status.to_string());
                if status != last_status {
                    last_status = status.clone();
                    if let Some(session) = &session {
                        let data =
                            serde_json::to_string(&SessionJson::from(session)).unwrap_or_default();
                        batch.push(Ok(SseEvent::default().event("session").data(data)));
                    }
                }
                let finished =
                    session.as_ref().is_none_or(|s| !s.status.is_active()) && events.is_empty();
                if !batch.is_empty() || finished || tokio::time::Instant::now() >= deadline {
                    let stream = futures::stream::iter(batch);
                    return Some((stream, (state, id, after, last_status, finished)));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        },
    );
    use futures::StreamExt;
    // The permit lives as long as the stream does.
    let stream = stream.flatten().map(move |item| {
        let _slot = &slot;
        item
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> CreateSession {
        CreateSession {
            repo_url: url.to_owned(),
            branch: None,
            bug_description: "it breaks".to_owned(),
            repro_command: "pytest".to_owned(),
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert_eq!(validate(&request("https://github.com/o/r")), Ok(()));
        assert_eq!(
            validate(&request("file:///etc")),
            Err(FieldError::new("repoUrl", "repoUrl must be an http(s) URL"))
        );
        assert_eq!(
            validate(&request("not a url")),
            Err(FieldError::new("repoUrl", "repoUrl must be an http(s) URL"))
        );
        let mut empty = request("https://github.com/o/r");
        empty.repro_command = "  ".into();
        assert_eq!(
            validate(&empty),
            Err(FieldError::new(
                "reproCommand",
                "reproCommand must not be empty"
            ))
        );
        let mut branch = request("https://github.com/o/r");
        branch.branch = Some("--upload-pack=x".into());
        assert_eq!(
            validate(&branch),
            Err(FieldError::new(
                "branch",
                "branch is not a valid branch name"
            ))
        );
    }
}
