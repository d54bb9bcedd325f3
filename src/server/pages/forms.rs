//! The start form (`/sessions/new`, `POST /sessions`) and browser sign-in (`/signin`,
//! `/signout`).
//!
//! Posts authenticated by the sign-in cookie must come from this origin (see
//! `WebAccess::same_origin`); the cookie is SameSite=Strict as well.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use super::{escape, html, layout, message_page, to_sign_in};
use crate::server::AppState;
use crate::server::access::Denied;
use crate::server::api::{CreateSession, FieldError, start_session, validate};

/// The start form's fields, named as in the API's JSON.
#[derive(Debug, Default, Deserialize)]
pub struct StartForm {
    #[serde(default, rename = "repoUrl")]
    repo_url: String,
    #[serde(default)]
    branch: String,
    #[serde(default, rename = "bugDescription")]
    bug_description: String,
    #[serde(default, rename = "reproCommand")]
    repro_command: String,
}

fn field(
    form: &StartForm,
    error: Option<&FieldError>,
    name: &str,
    label: &str,
    hint: &str,
) -> String {
    let value = match name {
        "repoUrl" => &form.repo_url,
        "branch" => &form.branch,
        "bugDescription" => &form.bug_description,
        _ => &form.repro_command,
    };
    let invalid = error.filter(|e| e.field == name);
    let message = invalid
        .map(|e| {
            format!(
                r#"<span class="field-error" id="{name}-error">{}</span>"#,
                escape(&e.message)
            )
        })
        .unwrap_or_default();
    let aria = if invalid.is_some() {
        format!(r#" aria-invalid="true" aria-describedby="{name}-error""#)
    } else {
        String::new()
    };
    let input = if name == "bugDescription" {
        format!(
            r#"<textarea id="{name}" name="{name}" rows="6"{aria}>{}</textarea>"#,
            escape(value)
        )
    } else {
        format!(
            r#"<input id="{name}" name="{name}" value="{}"{aria}>"#,
            escape(value)
        )
    };
    format!(
        r#"<div class="field{cls}"><label for="{name}">{label}</label>{input}<small>{hint}</small>{message}</div>"#,
        cls = if invalid.is_some() { " invalid" } else { "" },
    )
}

fn start_page(form: &StartForm, error: Option<&FieldError>) -> String {
    let body = format!(
        r#"<h1>Start a session</h1>
<form method="post" action="/sessions" class="start" id="start-form" novalidate>
{repo}{branch}{description}{repro}
<button type="submit">Start</button>
</form>"#,
        repo = field(
            form,
            error,
            "repoUrl",
            "Repository URL",
            "An http(s) clone URL, e.g. https://github.com/owner/name.git"
        ),
        branch = field(
            form,
            error,
            "branch",
            "Branch",
            "Leave empty for the default branch."
        ),
        description = field(
            form,
            error,
            "bugDescription",
            "Bug description",
            "What goes wrong; stack traces help."
        ),
        repro = field(
            form,
            error,
            "reproCommand",
            "Reproduction command",
            "Must fail before the fix and pass after it, e.g. python -m pytest -x"
        ),
    );
    layout("Start a session", true, &body, false)
}

/// `GET /sessions/new`.
pub async fn new_session_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(why) = state.web.operator(&headers, Utc::now()) {
        return to_sign_in(why, "/sessions/new");
    }
    html(StatusCode::OK, start_page(&StartForm::default(), None))
}

/// `POST /sessions`: validates, records the session, and sends the browser to its page.
pub async fn create_from_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Response {
    let now = Utc::now();
    if state.web.bearer(&headers).is_err() {
        if let Err(why) = state.web.operator(&headers, now) {
            return to_sign_in(why, "/sessions/new");
        }
        if !state.web.same_origin(&headers) {
            return cross_site();
        }
    }
    let request = CreateSession {
        repo_url: form.repo_url.trim().to_owned(),
        branch: Some(form.branch.trim().to_owned()).filter(|b| !b.is_empty()),
        bug_description: form.bug_description.clone(),
        repro_command: form.repro_command.trim().to_owned(),
    };
    if let Err(error) = validate(&request) {
        return html(StatusCode::BAD_REQUEST, start_page(&form, Some(&error)));
    }
    match start_session(&state, request).await {
        Ok(session) => Redirect::to(&format!("/sessions/{}", session.id)).into_response(),
        Err(err) => err.into_response(),
    }
}

fn cross_site() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Refused",
        "This form was not sent from PatchPilot's own pages.",
        false,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// Only paths on this server, so the form cannot be used to send people elsewhere.
fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { "/sessions" }
}

fn sign_in_page(next: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| {
            format!(
                r#"<p class="field-error" id="token-error">{}</p>"#,
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in</h1>
<p>Sign in with the server's API token (<code>PATCHPILOT_API_TOKEN</code>). The browser keeps a signed cookie for 12 hours; it never stores the token.</p>
<form method="post" action="/signin" class="start" id="signin-form">
<div class="field"><label for="token">API token</label><input id="token" name="token" type="password" autocomplete="current-password">{error}</div>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form>"#,
        next = escape(local_path(next)),
    );
    layout("Sign in", false, &body, false)
}

/// `GET /signin`.
pub async fn sign_in_form(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    if !state.web.enabled() {
        return to_sign_in(Denied::Disabled, "/");
    }
    html(StatusCode::OK, sign_in_page(&q.next, None))
}

/// `POST /signin`: checks the token and sets the sign-in cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !state.web.same_origin(&headers) {
        return cross_site();
    }
    match state.web.token_is(&form.token) {
        Err(Denied::Disabled) => to_sign_in(Denied::Disabled, "/"),
        Err(Denied::Unauthorized) => html(
            StatusCode::UNAUTHORIZED,
            sign_in_page(&form.next, Some("That is not the API token.")),
        ),
        Ok(()) => {
            let mut response = Redirect::to(local_path(&form.next)).into_response();
            if let Some(cookie) = state
                .web
                .sign_in_cookie(Utc::now())
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
    }
}

/// `POST /signout`: clears the cookie.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.web.same_origin(&headers) {
        return cross_site();
    }
    let mut response = Redirect::to("/signin").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&state.web.sign_out_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_returns_to_local_paths() {
        assert_eq!(local_path("/sessions/abc"), "/sessions/abc");
        for bad in ["https://evil.example/", "//evil.example", "/\\evil", ""] {
            assert_eq!(local_path(bad), "/sessions", "{bad}");
        }
    }

    #[test]
    fn the_form_names_the_wrong_field_and_keeps_what_was_typed() {
        let form = StartForm {
            repo_url: "ftp://x".into(),
            bug_description: "<b>it breaks</b>".into(),
            ..StartForm::default()
        };
        let error = FieldError {
            field: "repoUrl",
            message: "repoUrl must be an http(s) URL".into(),
        };
        let page = start_page(&form, Some(&error));
        assert!(page.contains(r#"<div class="field invalid"><label for="repoUrl">"#));
        assert!(page.contains(r#"id="repoUrl-error">repoUrl must be an http(s) URL"#));
        assert!(page.contains("&lt;b&gt;it breaks&lt;/b&gt;</textarea>"));
        assert_eq!(page.matches("field invalid").count(), 1);
    }
}
