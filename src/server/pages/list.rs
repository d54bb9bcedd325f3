//! `GET /sessions`: the session list, newest first, filtered by repository, status and issue.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::session::badge;
use super::{escape, html, layout, message_page, to_sign_in};
use crate::server::AppState;
use crate::store::SessionFilter;
use crate::store::{Session, SessionStatus};

/// The filter form's fields; empty fields mean "any".
#[derive(Debug, Default, Deserialize)]
pub struct ListFilter {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    issue: String,
}

const PAGE_SIZE: i64 = 200;

pub async fn session_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<ListFilter>,
) -> Response {
    if let Err(why) = state.web.operator(&headers, Utc::now()) {
        return to_sign_in(why, "/sessions");
    }
    let status = match filter.status.trim() {
        "" => None,
        s => match s.parse::<SessionStatus>() {
            Ok(status) => Some(status),
            Err(message) => return bad_filter(&message),
        },
    };
    let issue = match filter.issue.trim().trim_start_matches('#') {
        "" => None,
        n => match n.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return bad_filter("issue must be an issue number"),
        },
    };
    let repository = Some(filter.repository.trim().to_owned()).filter(|r| !r.is_empty());
    let query = SessionFilter {
        repository,
        issue_number: issue,
        status,
        limit: PAGE_SIZE,
    };
    match state.store.list_sessions(&query).await {
        Ok(sessions) => html(StatusCode::OK, render(&filter, &sessions)),
        Err(err) => {
            tracing::error!(error = %err, "session list: store error");
            message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                "The database cannot be reached right now; try again shortly.",
                true,
            )
        }
    }
}

fn bad_filter(message: &str) -> Response {
    message_page(StatusCode::BAD_REQUEST, "Bad filter", message, true)
}

fn row(session: &Session) -> String {
    let target = match &session.github {
        Some(g) => format!("{}#{}", g.repository, g.issue_number),
        None => session.repo_url.clone(),
    };
    let title = session.issue_title.clone().unwrap_or_else(|| {
        session
            .bug_description
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    });
    format!(
        r#"<tr class="session-row" data-status="{status}"><td><a href="/sessions/{id}">{created}</a></td><td>{target}</td><td>{title}</td><td>{badge}</td></tr>"#,
        status = session.status.as_str(),
        id = escape(&session.id),
        created = session.created_at.format("%Y-%m-%d %H:%M:%S"),
        target = escape(&target),
        title = escape(&title),
        badge = badge(session.status),
    )
}

fn render(filter: &ListFilter, sessions: &[Session]) -> String {
    let options: String = std::iter::once(("", "any status"))
        .chain(SessionStatus::ALL.iter().map(|s| (s.as_str(), s.as_str())))
        .map(|(value, label)| {
            let selected = if filter.status.trim() == value {
                " selected"
            } else {
                ""
            };
            format!(r#"<option value="{value}"{selected}>{label}</option>"#)
        })
        .collect();
    let rows: String = sessions.iter().map(row).collect();
    let table = if sessions.is_empty() {
        r#"<p class="muted" id="empty">No sessions match.</p>"#.to_owned()
    } else {
        format!(
            r#"<table class="sessions" id="sessions"><thead><tr><th>Started (UTC)</th><th>Repository</th><th>Title</th><th>Status</th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    let body = format!(
        r#"<h1>Sessions</h1>
<form method="get" action="/sessions" class="filters" id="filters">
<label>Repository <input name="repository" placeholder="owner/name" value="{repository}"></label>
<label>Status <select name="status">{options}</select></label>
<label>Issue <input name="issue" inputmode="numeric" placeholder="42" value="{issue}"></label>
<button type="submit">Filter</button> <a href="/sessions">Clear</a>
</form>
{table}"#,
        repository = escape(&filter.repository),
        issue = escape(&filter.issue),
    );
    layout("Sessions", true, &body, false)
}
