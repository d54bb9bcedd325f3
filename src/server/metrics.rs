//! `GET /metrics` in the Prometheus text format.
//!
//! The `metrics` facade is process-global, so the recorder is installed once and shared by
//! every router built in this process (tests build many).
//!
//! Every metric is described (HELP/TYPE) when the recorder is installed, and its known series
//! start at zero, so a scrape before the first event already shows what will be counted:
//! Prometheus `rate()` and absent-series alerts need the zero, and an operator reading the
//! page learns what exists. The exporter renders only series that have a value, hence the
//! zeroes.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Webhook deliveries recorded, by `event`.
pub const WEBHOOK_DELIVERIES: &str = "patchpilot_webhook_deliveries_total";
/// Webhook requests refused before recording, by `reason`.
pub const WEBHOOK_REJECTIONS: &str = "patchpilot_webhook_rejections_total";
/// Webhook bodies being read or recorded right now.
pub const WEBHOOK_IN_FLIGHT: &str = "patchpilot_webhook_in_flight";
/// Requests cut off by the request timeout.
pub const REQUEST_TIMEOUTS: &str = "patchpilot_http_request_timeouts_total";
/// Always 1, labelled with the running version.
pub const BUILD_INFO: &str = "patchpilot_build_info";

/// The events PatchPilot acts on or acknowledges (the `event` label's usual values).
const KNOWN_EVENTS: &[&str] = &[
    "issues",
    "issue_comment",
    "check_run",
    "installation",
    "installation_repositories",
    "ping",
];

/// Why a webhook request was refused (the `reason` label's values).
pub const REJECTION_REASONS: &[&str] = &[
    "not_configured",
    "too_large",
    "signature",
    "bad_request",
    "overloaded",
    "body_timeout",
    "unavailable",
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder and describes every metric on first use; `None` if another recorder
/// was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            describe_all();
            Some(handle)
        })
        .as_ref()
}

/// HELP/TYPE for every metric, the known series at zero, and the build-info gauge.
pub fn describe_all() {
    metrics::describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook deliveries verified and recorded, by GitHub event."
    );
    metrics::describe_counter!(
        WEBHOOK_REJECTIONS,
        "Webhook requests refused before recording, by reason (signature, too_large, overloaded, body_timeout, ...)."
    );
    metrics::describe_gauge!(
        WEBHOOK_IN_FLIGHT,
        "Webhook bodies being read or recorded right now (bounded by PATCHPILOT_MAX_INFLIGHT_WEBHOOKS)."
    );
    metrics::describe_counter!(
        REQUEST_TIMEOUTS,
        "HTTP requests answered 503 because the handler exceeded PATCHPILOT_REQUEST_TIMEOUT_SECS."
    );
    metrics::describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label is the running PatchPilot version."
    );
    for event in KNOWN_EVENTS {
        metrics::counter!(WEBHOOK_DELIVERIES, "event" => *event).absolute(0);
    }
    for reason in REJECTION_REASONS {
        metrics::counter!(WEBHOOK_REJECTIONS, "reason" => *reason).absolute(0);
    }
    metrics::gauge!(WEBHOOK_IN_FLIGHT).set(0.0);
    metrics::counter!(REQUEST_TIMEOUTS).absolute(0);
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

pub async fn render() -> impl IntoResponse {
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private recorder, so the test sees exactly what start-up registers.
    fn rendered_at_start_up() -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, describe_all);
        handle.render()
    }

    #[test]
    fn every_metric_is_described_before_any_event() {
        let text = rendered_at_start_up();
        for (name, kind) in [
            (WEBHOOK_DELIVERIES, "counter"),
            (WEBHOOK_REJECTIONS, "counter"),
            (WEBHOOK_IN_FLIGHT, "gauge"),
            (REQUEST_TIMEOUTS, "counter"),
            (BUILD_INFO, "gauge"),
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}:\n{text}"
            );
        }
        assert!(text.contains(&format!(
            "{BUILD_INFO}{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(text.contains(&format!("{WEBHOOK_DELIVERIES}{{event=\"issues\"}} 0\n")));
        assert!(text.contains(&format!(
            "{WEBHOOK_REJECTIONS}{{reason=\"overloaded\"}} 0\n"
        )));
    }
}
