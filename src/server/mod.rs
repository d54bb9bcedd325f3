//! The HTTP edge: webhooks, the session API, live pages, health and metrics.
//!
//! Handlers stay thin: they validate, call the store, and answer. Nothing here talks to
//! GitHub or runs a pipeline; the worker does, woken through `worker_wakeup`.
//!
//! Load limits ([`EdgeLimits`]): every request must start its response within the request
//! timeout (503 + `Retry-After` otherwise, so a hung handler frees its connection); the webhook
//! route additionally reads at most `max_inflight_webhooks` bodies at once (more are shed with
//! 503 + `Retry-After` before a byte of their body is read) and cuts off a body that takes
//! longer than the body timeout to arrive (408). Memory held by webhook bodies is therefore at
//! most `max_inflight_webhooks` × `max_body_bytes`.

pub mod access;
mod api;
mod assets;
mod config;
mod health;
pub mod metrics;
mod pages;
mod session_json;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, Semaphore};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::store::{IntakeQueue, Store};
use crate::webhook::signature::WebhookSecrets;
use crate::webhook::triggers::TriggerSettings;

pub use config::{LogFormat, ServerArgs, present};
pub use health::Features;
pub use webhook::VerifiedDelivery;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub intake: IntakeQueue,
    /// `None` disables the webhook route (it answers 503, never accepts unsigned input).
    pub webhook_secrets: Option<Arc<WebhookSecrets>>,
    /// The API token, browser sign-in, signed links and the event-stream cap.
    pub web: Arc<access::WebAccess>,
    pub triggers: Arc<TriggerSettings>,
    /// Wakes idle workers when a job is recorded (they also poll, for other replicas' jobs).
    pub worker_wakeup: Arc<Notify>,
    /// Base URL for links to session pages.
    pub public_url: Option<url::Url>,
    pub features: Arc<Features>,
    pub max_body_bytes: usize,
    pub limits: EdgeLimits,
}

/// Load and abuse limits at the edge, shared by every clone of the state.
#[derive(Clone, Debug)]
pub struct EdgeLimits {
    /// One permit per webhook body being read or recorded.
    pub webhook_permits: Arc<Semaphore>,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
}

impl EdgeLimits {
    pub fn from_args(args: &crate::server::ServerArgs) -> Self {
        Self {
            webhook_permits: Arc::new(Semaphore::new(args.max_inflight_webhooks as usize)),
            body_timeout: Duration::from_secs(args.body_timeout_secs),
            request_timeout: Duration::from_secs(args.request_timeout_secs),
        }
    }
}

/// Seconds a client is asked to wait after a 503 for load.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Answers 503 + `Retry-After` when the response has not started within the request timeout.
async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            ::metrics::counter!(metrics::REQUEST_TIMEOUTS).increment(1);
            tracing::warn!(path = %path, limit_secs = limit.as_secs(), "request timed out");
            (
                http::StatusCode::SERVICE_UNAVAILABLE,
                [(http::header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
                axum::Json(serde_json::json!({
                    "error": format!("the request did not complete within {} s; try again", limit.as_secs())
                })),
            )
                .into_response()
        }
    }
}

/// Builds the router with its middleware: request ids, tracing, panics caught.
pub fn router(state: AppState) -> Router {
    metrics::handle();
    let request_id = http::HeaderName::from_static("x-request-id");
    Router::new()
        .route(
            "/webhooks/github",
            post(webhook::receive).layer(DefaultBodyLimit::max(state.max_body_bytes)),
        )
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .route("/api/sessions", post(api::create_session).get(api::list_sessions))
        .route("/api/sessions/{id}", get(api::get_session))
        .route("/api/sessions/{id}/events", get(api::session_events))
        .route("/api/sessions/{id}/cancel", post(api::cancel_session))
        .route("/sessions", get(pages::session_list).post(pages::create_from_form))
        .route("/sessions/new", get(pages::new_session_form))
        .route("/sessions/{id}", get(pages::session_page))
        .route("/signin", get(pages::sign_in_form).post(pages::sign_in))
        .route("/signout", post(pages::sign_out))
        .route("/assets/style.css", get(assets::style))
        .route("/assets/session.js", get(assets::session_script))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.limits.request_timeout,
            request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([http::header::AUTHORIZATION]))
}

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_hung_handler_is_answered_503_with_retry_after() {
        let app = Router::new()
            .route(
                "/hang",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                }),
            )
            .route("/quick", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(50),
                request_timeout,
            ));
        let get = |path: &str| {
            http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let hung = app.clone().oneshot(get("/hang")).await.unwrap();
        assert_eq!(hung.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            hung.headers()[http::header::RETRY_AFTER],
            RETRY_AFTER_SECS.to_string()
        );
        let quick = app.oneshot(get("/quick")).await.unwrap();
        assert_eq!(quick.status(), http::StatusCode::OK);
    }
}
