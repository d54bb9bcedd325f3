//! One session's page: where it is (the seven steps), what it changed, why it stopped.

use chrono::{DateTime, Utc};

use super::steps::{self, StepRow, Steps, state_name};
use super::{diff, escape, layout};
use crate::server::access::LinkQuery;
use crate::store::{Session, SessionEvent, SessionStatus};

/// A short human duration: "0.4 s", "12 s", "2 min 05 s".
pub fn duration_text(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let ms = (to - from).num_milliseconds().max(0);
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 60_000 {
        format!("{} s", ms / 1000)
    } else {
        format!("{} min {:02} s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// What a status means, in a few words, for the badge's tooltip and the outcome heading.
pub fn status_label(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Queued => "Waiting for a worker",
        SessionStatus::Running => "Running",
        SessionStatus::Succeeded => "Fixed and verified",
        SessionStatus::Failed => "Stopped: failed",
        SessionStatus::NotReproduced => "Stopped: the bug did not reproduce",
        SessionStatus::Cancelled => "Cancelled",
        SessionStatus::Rejected => "Not started",
    }
}

/// What the reader can do next when a session stopped.
fn remedy(session: &Session) -> &'static str {
    let github = session.github.is_some();
    match (session.status, github) {
        (SessionStatus::NotReproduced, true) => {
            "Check the reproduction command: it must fail before the fix. Correct it with `/patchpilot repro <command>` on the issue."
        }
        (SessionStatus::NotReproduced, false) => {
            "Check the reproduction command: it must fail before the fix. Start a new session with a command that shows the bug."
        }
        (SessionStatus::Rejected, _) => {
            "Ask someone with write access to the repository to start PatchPilot."
        }
        (_, true) => {
            "Fix what the reason above names, then comment `/patchpilot retry` on the issue."
        }
        (_, false) => "Fix what the reason above names, then start a new session.",
    }
}

pub fn badge(status: SessionStatus) -> String {
    format!(
        r#"<span class="badge status-{0}" title="{1}">{0}</span>"#,
        status.as_str(),
        status_label(status)
    )
}

fn lines(events: &[&SessionEvent]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                r#"<span class="line level-{}" data-id="{}">{}</span>"#,
                e.level.as_str(),
                e.id,
                escape(&e.message)
            )
        })
        .collect()
}

fn step_item(row: &StepRow<'_>, now: DateTime<Utc>) -> String {
    let duration = match (row.first, row.last, row.state) {
        (Some(first), _, crate::report::StepState::Running) => duration_text(first, now),
        (Some(first), Some(last), _) => duration_text(first, last),
        _ => String::new(),
    };
    let open = matches!(
        row.state,
        crate::report::StepState::Running | crate::report::StepState::Failed
    );
    format!(
        r#"<li class="step state-{state}" data-step="{name}" data-first="{first}" data-last="{last}">
<details{open}><summary><span class="step-icon" aria-hidden="true"></span><span class="step-label">{label}</span> <span class="step-state">{state}</span> <span class="step-duration">{duration}</span></summary>
<pre class="lines">{lines}</pre></details></li>
"#,
        state = state_name(row.state),
        name = row.name,
        first = row.first.map(|t| t.timestamp_millis()).unwrap_or_default(),
        last = row.last.map(|t| t.timestamp_millis()).unwrap_or_default(),
        open = if open { " open" } else { "" },
        label = escape(row.label),
        lines = lines(&row.events),
    )
}

fn outcome(session: &Session, steps: &Steps<'_>) -> String {
    let mut out = format!(
        r#"<h2 class="outcome-title">{}</h2>"#,
        status_label(session.status)
    );
    match session.status {
        SessionStatus::Queued | SessionStatus::Running => {
            let current = steps
                .rows
                .iter()
                .find(|r| r.state == crate::report::StepState::Running)
                .map(|r| r.label)
                .unwrap_or("Waiting to start");
            out.push_str(&format!(
                r#"<p>Now: <strong id="current-step">{}</strong>. This page updates live.</p>"#,
                escape(current)
            ));
        }
        SessionStatus::Succeeded => match &session.pr_url {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                out.push_str(&format!(
                    r#"<p class="pr">Pull request: <a id="pr-link" href="{0}">{0}</a></p>"#,
                    escape(url)
                ));
            }
            _ => out.push_str(
                r#"<p class="pr" id="no-pr">No pull request: this session did not come from a GitHub issue, so the verified diff below is the result.</p>"#,
            ),
        },
        _ => {
            let reason = session
                .error_message
                .as_deref()
                .unwrap_or("No reason was recorded.");
            out.push_str(&format!(
                r#"<p class="reason" id="reason"><strong>Why it stopped:</strong> {}</p><p class="remedy"><strong>What to do:</strong> {}</p>"#,
                escape(reason),
                escape(remedy(session))
            ));
        }
    }
    let model = steps::model_used(steps);
    out.push_str(&format!(
        r#"<p class="usage">Model: <span id="model">{}</span> · tokens: <span id="tokens">{} in, {} out</span> · attempts: <span id="attempts">{}</span></p>"#,
        escape(model.as_deref().unwrap_or("not used")),
        session.input_tokens,
        session.output_tokens,
        session.attempt_count
    ));
    out
}

/// The whole page for `session` with its `events` (oldest first).
/// For a round on a pull request: which pull request, what started it, and the first session.
fn iteration_line(session: &Session) -> String {
    let Some(parent) = &session.parent_session_id else {
        return String::new();
    };
    format!(
        "\n<p class=\"meta\" id=\"iteration\">Round on pull request #{pr} ({key}), following session <a href=\"/sessions/{parent}\">{parent}</a></p>",
        pr = session.pr_number.unwrap_or_default(),
        key = escape(session.iteration_key.as_deref().unwrap_or_default()),
        parent = escape(parent),
    )
}

pub fn render(
    session: &Session,
    events: &[SessionEvent],
    link: &LinkQuery,
    signed_in: bool,
) -> String {
    let now = Utc::now();
    let steps = steps::derive(events, session.status);
    let title = session
        .issue_title
        .as_deref()
        .unwrap_or("PatchPilot session");
    let target = match &session.github {
        Some(g) => format!("{}#{}", g.repository, g.issue_number),
        None => session.repo_url.clone(),
    };
    let after = events.last().map(|e| e.id).unwrap_or(0);
    // The stream starts after what is rendered here; on a reconnect the browser's
    // `Last-Event-ID` takes over.
    let query = link.to_query();
    let events_url = format!(
        "/api/sessions/{}/events?after={after}{}",
        session.id,
        if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        }
    );
    let step_items: String = steps.rows.iter().map(|r| step_item(r, now)).collect();
    let before = lines(&steps::output_of(&steps, "reproduce"));
    let after_fix = lines(&steps::output_of(&steps, "verify"));
    let diff_html = match session
        .patch_diff
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        Some(d) => diff::render(d),
        None => "<p class=\"muted\">No changes yet.</p>".to_owned(),
    };
    let body = format!(
        r#"<article id="session" data-id="{id}" data-events="{events_url}" data-after="{after}" data-status="{status}">
<h1>{title}</h1>
<p class="meta">{target} · {badge} · branch <code>{branch}</code> · started {created} UTC · via {trigger}</p>{iteration}
<section id="outcome" class="outcome status-{status}">{outcome}</section>
<section><h2>Steps</h2><ol id="steps" class="steps">{step_items}</ol></section>
<section><h2>Reproduction</h2><p>Command: <code id="repro">{repro}</code></p>
<h3>Before the fix</h3><pre id="before" class="lines">{before}</pre>
<h3>After the fix</h3><pre id="after-fix" class="lines">{after_fix}</pre></section>
<section id="diff"><h2>Changes</h2>{diff_html}</section>
<section><details><summary>Other events</summary><pre id="other" class="lines">{other}</pre></details></section>
<details class="description"><summary>Bug description</summary><pre>{description}</pre></details>
</article>"#,
        id = escape(&session.id),
        events_url = escape(&events_url),
        status = session.status.as_str(),
        title = escape(title),
        target = escape(&target),
        badge = badge(session.status).replacen("<span", r#"<span id="status""#, 1),
        branch = escape(session.branch.as_deref().unwrap_or("default")),
        created = session.created_at.format("%Y-%m-%d %H:%M:%S"),
        trigger = session.trigger_kind.as_str(),
        outcome = outcome(session, &steps),
        repro = escape(session.repro_command.as_deref().unwrap_or("(not set yet)")),
        other = lines(&steps.other),
        description = escape(&session.bug_description),
        iteration = iteration_line(session),
    );
    layout(title, signed_in, &body, session.status.is_active())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            duration_text(t, t + chrono::Duration::milliseconds(420)),
            "0.4 s"
        );
        assert_eq!(duration_text(t, t + chrono::Duration::seconds(12)), "12 s");
        assert_eq!(
            duration_text(t, t + chrono::Duration::seconds(125)),
            "2 min 05 s"
        );
    }
}
