//! The HTTP edge: webhooks, the session API, live pages, health and metrics.
//!
//! Handlers stay thin: they validate, call the store, and answer. Nothing here talks to
//! GitHub or runs a pipeline; the worker does, woken through `worker_wakeup`.

pub mod access;
mod api;
mod assets;
mod health;
pub mod metrics;
mod pages;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::Notify;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::config::WebhookSecrets;
use crate::store::{IntakeQueue, Store};
use crate::webhook::triggers::TriggerSettings;

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
        .with_state(state)
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

/// Link to a session's live page.
pub fn session_url(public_url: Option<&url::Url>, id: &str) -> String {
    match public_url {
        Some(base) => format!("{}/sessions/{id}", base.as_str().trim_end_matches('/')),
        None => format!("/sessions/{id}"),
    }
}

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
