//! `POST /webhooks/github`: verify, decide, record, answer.
//!
//! The extractor reads the body under the size limit (413 above it), checks the signature in
//! constant time (401), requires the GitHub headers (400) and parses the event into narrow
//! typed structs (400 naming the JSON path). The handler then applies the trigger rules and
//! waits for the delivery's group commit before answering 202 (200 for a redelivery or a
//! ping). A store failure is a 503 so GitHub's redelivery can try again; nothing is
//! acknowledged that is not on disk.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::AppState;
use crate::store::{DeliveryRecord, Intake, IntakeEffect, Recorded};
use crate::webhook::events::{self, Envelope, Event};
use crate::webhook::signature::{self, SignatureError};
use crate::webhook::triggers;

/// A delivery whose signature checked out, with its typed event.
pub struct VerifiedDelivery {
    pub delivery_id: String,
    pub event_name: String,
    pub event: Event,
    pub envelope: Envelope,
}

/// Why a delivery was refused, as the HTTP answer GitHub (or a caller) sees.
#[derive(Debug)]
pub enum Rejection {
    NotConfigured,
    TooLarge,
    Signature(SignatureError),
    BadRequest(String),
    Unavailable(String),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::NotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                "webhooks are disabled: GITHUB_WEBHOOK_SECRET is not set on this server, and unsigned deliveries are never accepted".to_owned(),
            ),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload is larger than the configured limit".to_owned()),
            Self::Signature(err) => (StatusCode::UNAUTHORIZED, err.to_string()),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            Self::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl FromRequest<AppState> for VerifiedDelivery {
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(secrets) = state.webhook_secrets.as_ref() else {
            return Err(Rejection::NotConfigured);
        };
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(|err| {
            if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Rejection::TooLarge
            } else {
                Rejection::BadRequest(format!("could not read body: {err}"))
            }
        })?;
        let signature = header(&headers, "x-hub-signature-256");
        signature::verify(secrets, &body, signature).map_err(Rejection::Signature)?;
        let event_name = header(&headers, "x-github-event")
            .ok_or_else(|| Rejection::BadRequest("missing X-GitHub-Event header".to_owned()))?
            .to_owned();
        let delivery_id = header(&headers, "x-github-delivery")
            .filter(|id| !id.is_empty() && id.len() <= 200)
            .ok_or_else(|| {
                Rejection::BadRequest("missing or invalid X-GitHub-Delivery header".to_owned())
            })?
            .to_owned();
        let (event, envelope) = events::parse(&event_name, &body)
            .map_err(|err| Rejection::BadRequest(err.to_string()))?;
        Ok(Self {
            delivery_id,
            event_name,
            event,
            envelope,
        })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The webhook route.
pub async fn receive(
    State(state): State<AppState>,
    delivery: VerifiedDelivery,
) -> Result<Response, Rejection> {
    let decision = triggers::decide(&delivery.event, &state.triggers);
    // Sessions and commands need a worker; ignored events and installation changes do not.
    let needs_worker = matches!(
        decision.effect,
        IntakeEffect::StartSession(_) | IntakeEffect::Job { .. }
    );
    let intake = Intake {
        delivery: DeliveryRecord {
            delivery_id: delivery.delivery_id.clone(),
            event: delivery.event_name.clone(),
            action: delivery.envelope.action.clone(),
            installation_id: delivery.envelope.installation.as_ref().map(|i| i.id),
            repository: delivery
                .envelope
                .repository
                .as_ref()
                .map(|r| r.full_name.clone()),
            received_at: Utc::now(),
        },
        outcome: decision.outcome.clone(),
        effect: decision.effect,
    };
    let recorded = state.intake.record(intake).await.map_err(|err| {
        tracing::error!(delivery = %delivery.delivery_id, error = %err, "could not record delivery");
        Rejection::Unavailable("could not record the delivery; please redeliver".to_owned())
    })?;
    metrics::counter!("patchpilot_webhook_deliveries_total", "event" => delivery.event_name.clone()).increment(1);
    let response = match recorded {
        Recorded::Duplicate => {
            tracing::info!(delivery = %delivery.delivery_id, "redelivery ignored");
            (
                StatusCode::OK,
                Json(json!({ "status": "duplicate", "deliveryId": delivery.delivery_id })),
            )
        }
        Recorded::Accepted { session_id } => {
            tracing::info!(delivery = %delivery.delivery_id, event = %delivery.event_name, outcome = %decision.outcome, session = session_id.as_deref().unwrap_or("-"), "delivery recorded");
            if needs_worker {
                state.worker_wakeup.notify_one();
            }
            let status = if matches!(delivery.event, Event::Ping) {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            (
                status,
                Json(json!({
                    "status": "accepted",
                    "deliveryId": delivery.delivery_id,
                    "outcome": decision.outcome,
                    "sessionId": session_id,
                })),
            )
        }
    };
    Ok(response.into_response())
}
