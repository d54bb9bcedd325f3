//! Every text PatchPilot shows on GitHub, one named function per situation.
//!
//! Inputs are plain view structs so the wording can be tested without a session, a store
//! or HTTP, and so the lead's pipeline maps its own state onto them in one place.
//! Invariants:
//! - the progress comment starts with the hidden [`session_marker`], so a restarted server
//!   finds its comment again (the reporter trusts it only in the App's own comments);
//! - command output is fenced with a fence longer than any backtick run inside it, so a
//!   repro's output cannot break out of its block;
//! - check-run fields are trimmed to GitHub's 65,535-character limit on char boundaries.

use std::fmt::Write as _;
use std::time::Duration;

use super::client::CheckOutput;
use super::types::IssueNumber;

/// GitHub's limit on check-run `summary` and `text`, and (roughly) on comment bodies.
pub const GITHUB_TEXT_LIMIT: usize = 65_535;
/// How much of a command's output a comment or PR body shows (its tail).
pub const OUTPUT_TAIL: usize = 6_000;

/// The seven pipeline steps, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PipelineStep {
    Clone,
    Reproduce,
    Localise,
    SimilarFixes,
    Patch,
    Verify,
    Publish,
}

impl PipelineStep {
    pub const ALL: [PipelineStep; 7] = [
        PipelineStep::Clone,
        PipelineStep::Reproduce,
        PipelineStep::Localise,
        PipelineStep::SimilarFixes,
        PipelineStep::Patch,
        PipelineStep::Verify,
        PipelineStep::Publish,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PipelineStep::Clone => "Clone the repository",
            PipelineStep::Reproduce => "Reproduce the bug",
            PipelineStep::Localise => "Find the relevant code",
            PipelineStep::SimilarFixes => "Look for similar fixes",
            PipelineStep::Patch => "Write a patch",
            PipelineStep::Verify => "Verify the fix",
            PipelineStep::Publish => "Open a pull request",
        }
    }
}

/// Where one step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
}

impl StepState {
    pub fn icon(self) -> &'static str {
        match self {
            StepState::Pending | StepState::Running => "⏳",
            StepState::Done => "✅",
            StepState::Failed => "❌",
            StepState::Skipped => "⏭️",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepView {
    pub step: PipelineStep,
    pub state: StepState,
    /// How long the step took (or has been running); `None` before it starts.
    pub duration: Option<Duration>,
}

/// How a session ended, or that it has not yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    InProgress,
    PullRequest {
        url: String,
    },
    /// Stopped short: `reason` says exactly why, `remedy` what the maintainer can do.
    Stopped {
        reason: String,
        remedy: String,
    },
    Cancelled {
        by: Option<String>,
    },
}

/// Everything the progress comment and status reply show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressView {
    pub session_id: String,
    pub session_url: String,
    pub steps: Vec<StepView>,
    pub outcome: Outcome,
}

impl ProgressView {
    /// The step running now, if any.
    pub fn current_step(&self) -> Option<PipelineStep> {
        self.steps
            .iter()
            .find(|s| s.state == StepState::Running)
            .map(|s| s.step)
    }
}

/// The hidden marker tying a comment to its session.
pub fn session_marker(session_id: &str) -> String {
    format!("<!-- patchpilot:session={session_id} -->")
}

/// The hidden marker of a one-off reply of some kind (e.g. `unauthorised`), so it is
/// posted at most once per issue.
pub fn reply_marker(kind: &str) -> String {
    format!("<!-- patchpilot:reply={kind} -->")
}

/// The session id in a comment's marker, if the comment starts with one.
pub fn parse_session_marker(body: &str) -> Option<&str> {
    let rest = body.trim_start().strip_prefix("<!-- patchpilot:session=")?;
    let (id, _) = rest.split_once(" -->")?;
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then_some(id)
}

/// `850ms`, `4.2s`, `42s`, `3m 05s`, `1h 02m`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        1..=9 => format!("{:.1}s", d.as_secs_f64()),
        10..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

fn step_table(steps: &[StepView]) -> String {
    let mut table = String::from("| | Step | Time |\n|---|---|---|\n");
    for s in steps {
        let label = if s.state == StepState::Running {
            format!("**{}** (running)", s.step.label())
        } else {
            s.step.label().to_owned()
        };
        let time = s.duration.map(format_duration).unwrap_or_default();
        let _ = writeln!(table, "| {} | {label} | {time} |", s.state.icon());
    }
    table
}

/// The one progress comment, edited in place as the session advances.
pub fn progress_comment(view: &ProgressView) -> String {
    let mut text = session_marker(&view.session_id);
    text.push('\n');
    let heading = match &view.outcome {
        Outcome::InProgress => "PatchPilot is working on this issue",
        Outcome::PullRequest { .. } => "PatchPilot opened a pull request",
        Outcome::Stopped { .. } => "PatchPilot stopped",
        Outcome::Cancelled { .. } => "PatchPilot was cancelled",
    };
    let _ = writeln!(text, "### {heading}\n");
    text.push_str(&step_table(&view.steps));
    text.push('\n');
    match &view.outcome {
        Outcome::InProgress => match view.current_step() {
            Some(step) => {
                let _ = writeln!(text, "Current step: **{}**.", step.label());
            }
            None => text.push_str("Waiting for a worker.\n"),
        },
        Outcome::PullRequest { url } => {
            let _ = writeln!(
                text,
                "Proposed fix: {url}\nPlease review it before merging."
            );
        }
        Outcome::Stopped { reason, remedy } => {
            let _ = writeln!(text, "**Why:** {reason}\n\n**What you can do:** {remedy}");
        }
        Outcome::Cancelled { by } => {
            if let Some(by) = by {
                let _ = writeln!(text, "Cancelled by @{by}.");
            }
            text.push_str("Comment `/patchpilot retry` to start again.\n");
        }
    }
    let _ = write!(text, "\n[Follow this session live]({})", view.session_url);
    text
}

/// Reply to someone without write access who tried to start work (at most once per issue).
pub fn unauthorised_reply(login: &str) -> String {
    format!(
        "Thanks @{login}! Only people with write access to this repository can start \
         PatchPilot, because it runs the reproduction command. A maintainer can label the \
         issue or comment `/patchpilot` to start it."
    )
}

/// Reply to a trigger while a session for the issue is still running.
pub fn already_running_reply(session_url: &str) -> String {
    format!(
        "PatchPilot is already working on this issue: [follow it here]({session_url}). \
         Comment `/patchpilot cancel` to stop it, then `/patchpilot retry` to start over."
    )
}

/// Help text, also the answer to an unknown sub-command.
pub fn help_text(label: &str) -> String {
    format!(
        "PatchPilot turns this issue into a tested pull request. Commands (write access required):\n\n\
         | Command | What it does |\n|---|---|\n\
         | `/patchpilot` | start working on this issue |\n\
         | `/patchpilot repro <command>` | set the command that shows the bug, then start |\n\
         | `/patchpilot retry` | start again after a failure or cancellation |\n\
         | `/patchpilot cancel` | stop the running session |\n\
         | `/patchpilot status` | show where the session is |\n\
         | `/patchpilot help` | show this help |\n\n\
         Adding the `{label}` label also starts it. Settings live in `.github/patchpilot.yml`."
    )
}

/// Reply to `/patchpilot status`; `None` when no session exists for the issue.
pub fn status_reply(view: Option<&ProgressView>) -> String {
    let Some(view) = view else {
        return "PatchPilot has not worked on this issue yet. Comment `/patchpilot` to start."
            .into();
    };
    let state = match (&view.outcome, view.current_step()) {
        (Outcome::InProgress, Some(step)) => format!("is running: **{}**", step.label()),
        (Outcome::InProgress, None) => "is waiting for a worker".to_owned(),
        (Outcome::PullRequest { url }, _) => format!("opened a pull request: {url}"),
        (Outcome::Stopped { reason, .. }, _) => format!("stopped: {reason}"),
        (Outcome::Cancelled { .. }, _) => "was cancelled".to_owned(),
    };
    format!(
        "The latest PatchPilot session {state} ([details]({})).",
        view.session_url
    )
}

/// The `Stopped` outcome for a repro command that passed before any change.
pub fn could_not_reproduce(repro_command: &str) -> Outcome {
    Outcome::Stopped {
        reason: format!(
            "`{repro_command}` succeeded before any change, so the bug did not reproduce."
        ),
        remedy: "Comment `/patchpilot repro <command>` with a command that fails because of \
                 this bug (or add one under a \"Steps to reproduce\" heading), then \
                 `/patchpilot retry`."
            .into(),
    }
}

/// The `Stopped` outcome when a sandboxed command changed files PatchPilot wrote (or a
/// directory on their path); `what` says what, e.g. "`a.py` was changed after PatchPilot's
/// edits".
pub fn work_tree_tampered(what: &str) -> Outcome {
    Outcome::Stopped {
        reason: format!(
            "a sandboxed command changed files PatchPilot edits: {what}; nothing was \
             published"
        ),
        remedy: "PatchPilot publishes only content it wrote itself. Make the reproduction \
                 and test commands leave the repository's files and directories in place \
                 (write build output elsewhere), then comment `/patchpilot retry`."
            .into(),
    }
}

/// A comment for a reproduction that passed, with its output.
pub fn could_not_reproduce_comment(repro_command: &str, output: &str) -> String {
    format!(
        "PatchPilot could not reproduce this bug: `{repro_command}` succeeded on the default \
         branch.\n\n{}\nComment `/patchpilot repro <command>` with a command that fails \
         because of this bug, then `/patchpilot retry`.",
        fenced(&tail(output, OUTPUT_TAIL))
    )
}

/// The comment for an invalid `.github/patchpilot.yml`.
pub fn config_error_comment(field: Option<&str>, problem: &str, accepted: &[&str]) -> String {
    let location = match field {
        Some(field) => format!("the field `{field}`"),
        None => "the file".to_owned(),
    };
    let accepted = accepted
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "PatchPilot stopped: `.github/patchpilot.yml` is invalid ({location}: {problem}).\n\n\
         Accepted fields: {accepted}.\n\nFix the file on the default branch, then comment \
         `/patchpilot retry`."
    )
}

/// What the check run shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRunView {
    pub steps: Vec<StepView>,
    pub outcome: Outcome,
    /// The sandbox tier the commands ran in (e.g. `bubblewrap`).
    pub sandbox_tier: String,
    pub repro_command: Option<String>,
    pub output_before: Option<String>,
    pub output_after: Option<String>,
}

/// Title, summary (step table + sandbox tier) and text (before/after output) of the check run.
pub fn check_run_output(view: &CheckRunView) -> CheckOutput {
    let title = match &view.outcome {
        Outcome::InProgress => match view.steps.iter().find(|s| s.state == StepState::Running) {
            Some(s) => format!("{}…", s.step.label()),
            None => "Queued".to_owned(),
        },
        Outcome::PullRequest { .. } => "Fix verified, pull request opened".to_owned(),
        Outcome::Stopped { .. } => "Stopped".to_owned(),
        Outcome::Cancelled { .. } => "Cancelled".to_owned(),
    };
    let mut summary = step_table(&view.steps);
    let _ = write!(summary, "\nSandbox: {}\n", view.sandbox_tier);
    match &view.outcome {
        Outcome::PullRequest { url } => {
            let _ = write!(summary, "\nPull request: {url}\n");
        }
        Outcome::Stopped { reason, remedy } => {
            let _ = write!(
                summary,
                "\n**Why:** {reason}\n\n**What you can do:** {remedy}\n"
            );
        }
        Outcome::InProgress | Outcome::Cancelled { .. } => {}
    }
    let mut text = String::new();
    if let Some(command) = &view.repro_command {
        let _ = writeln!(text, "Reproduction command: `{command}`\n");
    }
    for (heading, output) in [
        ("Before the fix", &view.output_before),
        ("After the fix", &view.output_after),
    ] {
        if let Some(output) = output {
            let _ = writeln!(text, "#### {heading}\n{}", fenced(&tail(output, 30_000)));
        }
    }
    CheckOutput {
        title,
        summary: truncate(&summary, GITHUB_TEXT_LIMIT),
        text: (!text.is_empty()).then(|| truncate(&text, GITHUB_TEXT_LIMIT)),
    }
}

/// `Fix #<n>: <issue title>`.
pub fn pull_request_title(issue: IssueNumber, issue_title: &str) -> String {
    format!("Fix #{issue}: {}", issue_title.trim())
}

/// What the pull request body shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestView {
    pub issue: IssueNumber,
    /// What was wrong and what the change does (from the model, trimmed).
    pub summary: String,
    pub files_changed: Vec<String>,
    pub repro_command: String,
    pub output_before: String,
    pub output_after: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub session_url: String,
}

pub fn pull_request_body(view: &PullRequestView) -> String {
    let mut body = format!(
        "{}\n\nFixes #{}\n\n### Files changed\n",
        view.summary.trim(),
        view.issue
    );
    for file in &view.files_changed {
        let _ = writeln!(body, "- `{file}`");
    }
    let _ = write!(
        body,
        "\n### Reproduction\n`{}`\n\n<details><summary>Before the fix</summary>\n\n{}\n</details>\n\n\
         <details><summary>After the fix</summary>\n\n{}\n</details>\n\n\
         ---\nGenerated by PatchPilot with `{}` ({} input / {} output tokens). [Session]({})",
        view.repro_command,
        fenced(&tail(&view.output_before, OUTPUT_TAIL)),
        fenced(&tail(&view.output_after, OUTPUT_TAIL)),
        view.model,
        view.input_tokens,
        view.output_tokens,
        view.session_url,
    );
    truncate(&body, GITHUB_TEXT_LIMIT)
}

/// Wraps text in a code fence longer than any backtick run inside it.
pub fn fenced(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}\n", text.trim_end())
}

/// The last `max_bytes` of `text` (on a char boundary), marked when cut: the end of a
/// build's output is where the failure is.
pub fn tail(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut …]\n{}", &text[start..])
}

/// `text` cut to at most `max_bytes` bytes (so also at most that many characters), on a
/// char boundary, with a note when cut.
pub fn truncate(text: &str, max_bytes: usize) -> String {
    const NOTE: &str = "\n\n[… truncated]";
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes.saturating_sub(NOTE.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{NOTE}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn steps(states: &[(StepState, Option<u64>)]) -> Vec<StepView> {
        PipelineStep::ALL
            .iter()
            .zip(
                states
                    .iter()
                    .chain(std::iter::repeat(&(StepState::Pending, None))),
            )
            .map(|(step, (state, ms))| StepView {
                step: *step,
                state: *state,
                duration: ms.map(Duration::from_millis),
            })
            .collect()
    }

    fn view(outcome: Outcome, states: &[(StepState, Option<u64>)]) -> ProgressView {
        ProgressView {
            session_id: "0193-abc".into(),
            session_url: "https://pp.example.com/sessions/0193-abc".into(),
            steps: steps(states),
            outcome,
        }
    }

    #[test]
    fn progress_comment_in_progress() {
        let v = view(
            Outcome::InProgress,
            &[
                (StepState::Done, Some(1_200)),
                (StepState::Running, Some(65_000)),
            ],
        );
        assert_eq!(
            progress_comment(&v),
            "<!-- patchpilot:session=0193-abc -->\n\
             ### PatchPilot is working on this issue\n\n\
             | | Step | Time |\n|---|---|---|\n\
             | ✅ | Clone the repository | 1.2s |\n\
             | ⏳ | **Reproduce the bug** (running) | 1m 05s |\n\
             | ⏳ | Find the relevant code |  |\n\
             | ⏳ | Look for similar fixes |  |\n\
             | ⏳ | Write a patch |  |\n\
             | ⏳ | Verify the fix |  |\n\
             | ⏳ | Open a pull request |  |\n\n\
             Current step: **Reproduce the bug**.\n\n\
             [Follow this session live](https://pp.example.com/sessions/0193-abc)"
        );
    }

    #[test]
    fn progress_comment_outcomes() {
        let done = [(StepState::Done, Some(500)); 7];
        let pr = progress_comment(&view(
            Outcome::PullRequest {
                url: "https://gh/pr/8".into(),
            },
            &done,
        ));
        assert!(
            pr.contains("### PatchPilot opened a pull request\n"),
            "{pr}"
        );
        assert!(
            pr.contains("Proposed fix: https://gh/pr/8\nPlease review it before merging.\n"),
            "{pr}"
        );
        assert!(pr.contains("| ✅ | Open a pull request | 500ms |"), "{pr}");

        let stopped = progress_comment(&view(
            Outcome::Stopped {
                reason: "the fix failed 3 times".into(),
                remedy: "add detail".into(),
            },
            &[
                (StepState::Done, None),
                (StepState::Failed, Some(3_000)),
                (StepState::Skipped, None),
            ],
        ));
        assert!(
            stopped
                .contains("| ❌ | Reproduce the bug | 3.0s |\n| ⏭️ | Find the relevant code |  |"),
            "{stopped}"
        );
        assert!(
            stopped
                .contains("**Why:** the fix failed 3 times\n\n**What you can do:** add detail\n"),
            "{stopped}"
        );

        let cancelled = progress_comment(&view(
            Outcome::Cancelled {
                by: Some("alice".into()),
            },
            &[],
        ));
        assert!(
            cancelled
                .contains("Cancelled by @alice.\nComment `/patchpilot retry` to start again.\n")
        );
        assert_eq!(parse_session_marker(&cancelled), Some("0193-abc"));
    }

    #[test]
    fn marker_round_trips_and_rejects_forgeries() {
        assert_eq!(
            parse_session_marker(&format!("{}\nhi", session_marker("s-1"))),
            Some("s-1")
        );
        assert_eq!(
            parse_session_marker("hi <!-- patchpilot:session=s-1 -->"),
            None
        );
        assert_eq!(parse_session_marker("<!-- patchpilot:session= -->"), None);
        assert_eq!(
            parse_session_marker("<!-- patchpilot:session=a b -->"),
            None
        );
    }

    #[test]
    fn durations_are_short_and_readable() {
        let f = |ms| format_duration(Duration::from_millis(ms));
        assert_eq!(
            [f(850), f(4_200), f(42_000), f(185_000), f(3_720_000)],
            ["850ms", "4.2s", "42s", "3m 05s", "1h 02m"]
        );
    }

    #[test]
    fn replies() {
        assert_eq!(
            unauthorised_reply("mallory"),
            "Thanks @mallory! Only people with write access to this repository can start PatchPilot, \
             because it runs the reproduction command. A maintainer can label the issue or comment \
             `/patchpilot` to start it."
        );
        assert_eq!(
            already_running_reply("https://pp/s/1"),
            "PatchPilot is already working on this issue: [follow it here](https://pp/s/1). Comment \
             `/patchpilot cancel` to stop it, then `/patchpilot retry` to start over."
        );
        let help = help_text("bugfix");
        assert!(help.contains(
            "| `/patchpilot repro <command>` | set the command that shows the bug, then start |"
        ));
        assert!(help.ends_with(
            "Adding the `bugfix` label also starts it. Settings live in `.github/patchpilot.yml`."
        ));
        let running = view(Outcome::InProgress, &[(StepState::Running, None)]);
        assert_eq!(
            status_reply(Some(&running)),
            "The latest PatchPilot session is running: **Clone the repository** \
             ([details](https://pp.example.com/sessions/0193-abc))."
        );
        assert_eq!(
            status_reply(None),
            "PatchPilot has not worked on this issue yet. Comment `/patchpilot` to start."
        );
    }

    #[test]
    fn could_not_reproduce_and_config_error() {
        assert_eq!(
            could_not_reproduce_comment("cargo test", "ok\n"),
            "PatchPilot could not reproduce this bug: `cargo test` succeeded on the default branch.\n\n\
             ```text\nok\n```\n\nComment `/patchpilot repro <command>` with a command that fails because \
             of this bug, then `/patchpilot retry`."
        );
        assert!(
            matches!(could_not_reproduce("make"), Outcome::Stopped { reason, .. } if reason.starts_with("`make` succeeded"))
        );
        assert_eq!(
            config_error_comment(Some("lable"), "is not a known setting", &["label", "draft"]),
            "PatchPilot stopped: `.github/patchpilot.yml` is invalid (the field `lable`: is not a known \
             setting).\n\nAccepted fields: `label`, `draft`.\n\nFix the file on the default branch, then \
             comment `/patchpilot retry`."
        );
    }

    #[test]
    fn check_run_output_has_table_tier_and_outputs() {
        let v = CheckRunView {
            steps: steps(&[(StepState::Done, Some(2_000)), (StepState::Running, None)]),
            outcome: Outcome::InProgress,
            sandbox_tier: "bubblewrap".into(),
            repro_command: Some("pytest -x".into()),
            output_before: Some("FAILED test_x".into()),
            output_after: None,
        };
        let out = check_run_output(&v);
        assert_eq!(out.title, "Reproduce the bug…");
        assert!(out.summary.starts_with(
            "| | Step | Time |\n|---|---|---|\n| ✅ | Clone the repository | 2.0s |\n"
        ));
        assert!(
            out.summary.ends_with("\nSandbox: bubblewrap\n"),
            "{}",
            out.summary
        );
        assert_eq!(
            out.text.as_deref(),
            Some(
                "Reproduction command: `pytest -x`\n\n#### Before the fix\n```text\nFAILED test_x\n```\n\n"
            )
        );
    }

    #[test]
    fn check_run_output_is_trimmed_on_char_boundaries() {
        let huge = "é".repeat(GITHUB_TEXT_LIMIT);
        let v = CheckRunView {
            steps: vec![],
            outcome: Outcome::Stopped {
                reason: huge.clone(),
                remedy: "x".into(),
            },
            sandbox_tier: "landlock".into(),
            repro_command: None,
            output_before: Some(huge.clone()),
            output_after: Some(huge),
        };
        let out = check_run_output(&v);
        assert!(out.summary.len() <= GITHUB_TEXT_LIMIT && out.summary.ends_with("[… truncated]"));
        let text = out.text.unwrap();
        assert!(text.len() <= GITHUB_TEXT_LIMIT, "{}", text.len());
        assert!(text.contains("[… "), "the tails are marked as cut");
    }

    #[test]
    fn fences_outlast_backticks_in_output() {
        assert_eq!(fenced("a ```` b"), "`````text\na ```` b\n`````\n");
        assert_eq!(tail("abcdef", 3), "[… 3 bytes cut …]\ndef");
        assert_eq!(tail("ééé", 3), "[… 4 bytes cut …]\né");
    }

    #[test]
    fn pull_request_title_and_body() {
        assert_eq!(
            pull_request_title(IssueNumber(12), " Crash on empty input "),
            "Fix #12: Crash on empty input"
        );
        let body = pull_request_body(&PullRequestView {
            issue: IssueNumber(12),
            summary: "Handle empty input in `parse`.".into(),
            files_changed: vec!["src/parse.rs".into(), "tests/parse.rs".into()],
            repro_command: "cargo test parse".into(),
            output_before: "panicked at src/parse.rs:3".into(),
            output_after: "test result: ok".into(),
            model: "claude-sonnet-4".into(),
            input_tokens: 12_000,
            output_tokens: 800,
            session_url: "https://pp/s/1".into(),
        });
        assert_eq!(
            body,
            "Handle empty input in `parse`.\n\nFixes #12\n\n### Files changed\n- `src/parse.rs`\n- `tests/parse.rs`\n\n\
             ### Reproduction\n`cargo test parse`\n\n<details><summary>Before the fix</summary>\n\n\
             ```text\npanicked at src/parse.rs:3\n```\n\n</details>\n\n<details><summary>After the fix</summary>\n\n\
             ```text\ntest result: ok\n```\n\n</details>\n\n---\nGenerated by PatchPilot with `claude-sonnet-4` \
             (12000 input / 800 output tokens). [Session](https://pp/s/1)"
        );
    }
}
