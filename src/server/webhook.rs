//! `POST /webhooks/github`: verify, decide, record, answer.
//!
//! The extractor reads the body under the size limit (413 above it), checks the signature in
//! constant time (401), requires the GitHub headers (400) and parses the event into narrow
//! typed structs (400 naming the JSON path). The handler then applies the trigger rules and
//! waits for the delivery's group commit before answering 202 (200 for a redelivery or a
//! ping). A store failure is a 503 so GitHub's redelivery can try again; nothing is
//! acknowledged that is not on disk.
//!
//! Before the body is read the request takes one of the bounded webhook permits (503 with
//! `Retry-After` when none is free: shed, never queued), and the body must arrive within the
//! body timeout (408). The permit is held until the answer, so recording counts too.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::{AppState, RETRY_AFTER_SECS, metrics};
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
    /// Holds the delivery's webhook permit until it is answered.
    _in_flight: InFlight,
}

/// A webhook permit, counted in the in-flight gauge while held.
struct InFlight(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl InFlight {
    fn acquire(state: &AppState) -> Result<Self, Rejection> {
        let permit = state
            .limits
            .webhook_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::Overloaded)?;
        ::metrics::gauge!(metrics::WEBHOOK_IN_FLIGHT).increment(1.0);
        Ok(Self(permit))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        ::metrics::gauge!(metrics::WEBHOOK_IN_FLIGHT).decrement(1.0);
    }
}

/// Why a delivery was refused, as the HTTP answer GitHub (or a caller) sees.
#[derive(Debug)]
pub enum Rejection {
    NotConfigured,
    TooLarge,
    Signature(SignatureError),
    BadRequest(String),
    Unavailable(String),
    /// Every webhook permit is taken.
    Overloaded,
    /// The body did not arrive within the body timeout.
    BodyTimeout {
        secs: u64,
    },
}

impl Rejection {
    /// The `reason` label of the rejections counter.
    fn reason(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::TooLarge => "too_large",
            Self::Signature(_) => "signature",
            Self::BadRequest(_) => "bad_request",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded => "overloaded",
            Self::BodyTimeout { .. } => "body_timeout",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        ::metrics::counter!(metrics::WEBHOOK_REJECTIONS, "reason" => self.reason()).increment(1);
        let (status, message) = match self {
            Self::NotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                "webhooks are disabled: GITHUB_WEBHOOK_SECRET is not set on this server, and unsigned deliveries are never accepted".to_owned(),
            ),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload is larger than the configured limit".to_owned()),
            Self::Signature(err) => (StatusCode::UNAUTHORIZED, err.to_string()),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            Self::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
            Self::BodyTimeout { secs } => (
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {secs} s"),
            ),
            Self::Overloaded => {
                tracing::warn!("webhook shed: every in-flight webhook permit is taken");
                let body = json!({ "error": "too many webhook deliveries are being received at once; retry later" });
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
                    Json(body),
                )
                    .into_response();
            }
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
        let in_flight = InFlight::acquire(state)?;
        // Moved out, not cloned: reading the body needs only the request's extensions.
        let mut req = req;
        let headers = std::mem::take(req.headers_mut());
        let limit = state.limits.body_timeout;
        let body = tokio::time::timeout(limit, Bytes::from_request(req, state))
            .await
            .map_err(|_| Rejection::BodyTimeout {
                secs: limit.as_secs(),
            })?
            .map_err(|err| {
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
            _in_flight: in_flight,
        })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The answer body for a delivery: borrowed fields, serialized once (no JSON tree built).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    status: &'static str,
    delivery_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a str>,
    /// `null` for an accepted delivery that started no session; absent for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<Option<&'a str>>,
}

/// The `event` label: a static string for the events we parse (no allocation per delivery).
fn event_label(event: &Event, event_name: &str) -> ::metrics::SharedString {
    let known = match event {
        Event::Ping => "ping",
        Event::Issues(_) => "issues",
        Event::IssueComment(_) => "issue_comment",
        Event::CheckRun(_) => "check_run",
        Event::Installation(_) => "installation",
        Event::InstallationRepositories(_) => "installation_repositories",
        // `Other` and any event added later: its own name.
        _ => return ::metrics::SharedString::from(event_name.to_owned()),
    };
    ::metrics::SharedString::from(known)
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
    let VerifiedDelivery {
        delivery_id,
        event_name,
        event,
        envelope,
        _in_flight,
    } = delivery;
    let label = event_label(&event, &event_name);
    let intake = Intake {
        delivery: DeliveryRecord {
            delivery_id: delivery_id.clone(),
            event: event_name,
            action: envelope.action,
            installation_id: envelope.installation.map(|i| i.id),
            repository: envelope.repository.map(|r| r.full_name),
            received_at: Utc::now(),
        },
        outcome: decision.outcome.clone(),
        effect: decision.effect,
    };
    let recorded = state.intake.record(intake).await.map_err(|err| {
        tracing::error!(delivery = %delivery_id, error = %err, "could not record delivery");
        Rejection::Unavailable("could not record the delivery; please redeliver".to_owned())
    })?;
    ::metrics::counter!(metrics::WEBHOOK_DELIVERIES, "event" => label.clone()).increment(1);
    let response = match &recorded {
        Recorded::Duplicate => {
            tracing::info!(delivery = %delivery_id, "redelivery ignored");
            let answer = Answer {
                status: "duplicate",
                delivery_id: &delivery_id,
                outcome: None,
                session_id: None,
            };
            (StatusCode::OK, Json(answer)).into_response()
        }
        Recorded::Accepted { session_id } => {
            tracing::info!(delivery = %delivery_id, event = %label, outcome = %decision.outcome, session = session_id.as_deref().unwrap_or("-"), "delivery recorded");
            if needs_worker {
                state.worker_wakeup.notify_one();
            }
            let status = if matches!(event, Event::Ping) {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            let answer = Answer {
                status: "accepted",
                delivery_id: &delivery_id,
                outcome: Some(&decision.outcome),
                session_id: Some(session_id.as_deref()),
            };
            (status, Json(answer)).into_response()
        }
    };
    Ok(response)
}
