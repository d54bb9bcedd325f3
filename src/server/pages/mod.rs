//! The web UI: session pages, the session list, the start form and browser sign-in.
//!
//! Server-rendered HTML with one small script (`assets/session.js`) that follows a running
//! session over `/api/sessions/{id}/events`. No front-end build: assets are embedded in the
//! binary. Everything interpolated is HTML-escaped (issue text, command output, diffs and the
//! model's words are untrusted), and a Content-Security-Policy allows only our own script and
//! stylesheet, so markup that slipped through could not run anyway.
//!
//! Access follows `access`: the list and the form need a signed-in operator; a session page
//! is open for public repositories and needs an operator or a signed link otherwise.

mod diff;
mod forms;
mod list;
mod session;
mod steps;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;

use super::AppState;
use super::access::{Denied, LinkQuery};

pub use forms::{create_from_form, new_session_form, sign_in, sign_in_form, sign_out};
pub use list::session_list;

/// Our own script and stylesheet only; no inline code, no third-party origins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML answer with the security headers every page carries.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        // `no-referrer` would make browsers send `Origin: null` on our own form posts (CSRF check).
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Escapes text for HTML element and attribute content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The shell around every page: title, navigation, stylesheet, optional script.
pub fn layout(title: &str, signed_in: bool, body: &str, script: bool) -> String {
    let account = if signed_in {
        r#"<form method="post" action="/signout" class="inline"><button type="submit" class="link">Sign out</button></form>"#
    } else {
        r#"<a href="/signin">Sign in</a>"#
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · PatchPilot</title>
<link rel="stylesheet" href="/assets/style.css">
{script}</head>
<body>
<header class="top"><a href="/sessions" class="brand">PatchPilot</a><nav><a href="/sessions">Sessions</a><a href="/sessions/new">Start a session</a>{account}</nav></header>
<main>
{body}
</main>
</body></html>"#,
        title = escape(title),
        script = if script {
            r#"<script src="/assets/session.js" defer></script>"#
        } else {
            ""
        },
    )
}

/// A page that says why, with a way on.
pub fn message_page(status: StatusCode, title: &str, text: &str, signed_in: bool) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"notice\">{}</p>",
        escape(title),
        escape(text)
    );
    html(status, layout(title, signed_in, &body, false))
}

fn storage_unavailable() -> Response {
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Storage unavailable",
        "The database cannot be reached right now; try again shortly.",
        false,
    )
}

/// Where a browser that is not signed in goes: the sign-in form, then back to `next`.
pub fn to_sign_in(why: Denied, next: &str) -> Response {
    match why {
        Denied::Disabled => message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is disabled",
            "Set PATCHPILOT_API_TOKEN on the server to enable the session list, the start form and access to private sessions.",
            false,
        ),
        Denied::Unauthorized => {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            Redirect::to(&format!("/signin?next={next}")).into_response()
        }
    }
}

/// `GET /sessions/{id}`: the live session page.
pub async fn session_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(link): Query<LinkQuery>,
) -> Response {
    let now = Utc::now();
    let signed_in = state.web.operator(&headers, now).is_ok();
    let session = match state.store.get_session(&id).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return message_page(
                StatusCode::NOT_FOUND,
                "No such session",
                &format!("There is no session `{id}`."),
                signed_in,
            );
        }
        Err(err) => {
            tracing::error!(error = %err, "session page: store error");
            return storage_unavailable();
        }
    };
    if !state.web.may_read(&session, &headers, &link, now) {
        return match state.web.operator(&headers, now) {
            Err(Denied::Unauthorized) if state.web.enabled() => message_page(
                StatusCode::UNAUTHORIZED,
                "Private session",
                "This session belongs to a private repository. Open it from the link in the issue's progress comment (links expire), or sign in with the API token.",
                false,
            ),
            _ => message_page(
                StatusCode::UNAUTHORIZED,
                "Private session",
                "This session belongs to a private repository. Open it from the link in the issue's progress comment (links expire).",
                false,
            ),
        };
    }
    match state.store.events_after(&id, 0, 5_000).await {
        Ok(events) => html(
            StatusCode::OK,
            session::render(&session, &events, &link, signed_in),
        ),
        Err(err) => {
            tracing::error!(error = %err, "session page: store error");
            storage_unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
