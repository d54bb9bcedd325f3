//! `GET /sessions/{id}`: the live session page.
//!
//! Server-rendered with what is known now, then kept current by the browser following
//! `/api/sessions/{id}/events`. Everything interpolated is HTML-escaped: issue text and
//! command output are untrusted.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use crate::session::Session;

pub async fn session_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.store.get_session(&id).await {
        Ok(Some(session)) => Html(render(&session)).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(format!("<h1>No session {}</h1>", escape(&id))),
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "session page: store error");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Html("<h1>Storage unavailable</h1>".to_owned()),
            )
                .into_response()
        }
    }
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

fn render(session: &Session) -> String {
    let title = session
        .issue_title
        .as_deref()
        .unwrap_or("PatchPilot session");
    let target = match (&session.repository, session.issue_number) {
        (Some(repo), Some(n)) => format!("{repo}#{n}"),
        _ => session.repo_url.clone(),
    };
    let pr = session
        .pr_url
        .as_deref()
        .map(|url| format!(r#"<p>Pull request: <a href="{0}">{0}</a></p>"#, escape(url)))
        .unwrap_or_default();
    let error = session
        .error_message
        .as_deref()
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · PatchPilot</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }}
.status {{ display: inline-block; padding: .1rem .6rem; border-radius: 1rem; background: #ddf4ff; font-weight: 600; }}
.error {{ color: #cf222e; }}
pre {{ background: #0d1117; color: #e6edf3; padding: 1rem; border-radius: 6px; overflow-x: auto; max-height: 70vh; font-size: 13px; }}
.step {{ color: #7ee787; }} .warn {{ color: #d29922; }} .err {{ color: #ff7b72; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{target} · status <span class="status" id="status">{status}</span> · attempts <span id="attempts">{attempts}</span> · tokens <span id="tokens">{tokens}</span></p>
<p>Reproduction command: <code>{repro}</code></p>
<div id="outcome">{pr}{error}</div>
<pre id="log"></pre>
<script>
const log = document.getElementById('log');
const source = new EventSource('/api/sessions/{id}/events');
source.addEventListener('log', (e) => {{
  const ev = JSON.parse(e.data);
  const line = document.createElement('span');
  line.className = ev.level === 'error' ? 'err' : ev.level === 'warn' ? 'warn' : ev.level === 'output' ? '' : 'step';
  line.textContent = `[${{ev.at.slice(11, 19)}}] ${{ev.step}}: ${{ev.message}}\n`;
  log.appendChild(line);
  log.scrollTop = log.scrollHeight;
}});
source.addEventListener('session', (e) => {{
  const s = JSON.parse(e.data);
  document.getElementById('status').textContent = s.status;
  document.getElementById('attempts').textContent = s.attemptCount;
  document.getElementById('tokens').textContent = s.inputTokens + s.outputTokens;
  const out = document.getElementById('outcome');
  out.textContent = '';
  if (s.prUrl) {{ const a = document.createElement('a'); a.href = s.prUrl; a.textContent = 'Pull request: ' + s.prUrl; out.appendChild(a); }}
  if (s.errorMessage) {{ const p = document.createElement('p'); p.className = 'error'; p.textContent = s.errorMessage; out.appendChild(p); }}
  if (!['queued', 'running'].includes(s.status)) source.close();
}});
</script>
</body></html>"#,
        title = escape(title),
        target = escape(&target),
        status = escape(session.status.as_str()),
        attempts = session.attempt_count,
        tokens = session.input_tokens + session.output_tokens,
        repro = escape(session.repro_command.as_deref().unwrap_or("(not set yet)")),
        id = escape(&session.id),
    )
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
