//! `GET /healthz`: is the store reachable, and which features are on.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::json;

use super::AppState;

/// What this replica can do, reported by `/healthz` and logged at start-up.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    pub webhooks: bool,
    pub github_app: bool,
    pub model: Option<String>,
    pub sandbox: String,
    /// The start-up toolchain report: each toolchain found, run inside the chosen tier.
    pub toolchains: Vec<crate::sandbox::ToolchainCheck>,
    pub api_writes: bool,
}

pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(
                json!({ "status": "ok", "store": state.store.backend(), "features": *state.features }),
            ),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "health check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "store": state.store.backend(), "error": "store unreachable" }),
                ),
            )
        }
    }
}
