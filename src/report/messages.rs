//! Every text PatchPilot shows on GitHub, one named function per situation; the GitHub
//! boundary posts what these render.
//!
//! Inputs are plain view structs so the wording can be tested without a session, a store
//! or HTTP, and so the lead's pipeline maps its own state onto them in one place.
//! Invariants:
//! - the progress comment starts with the hidden session marker (`github::markers`), so a restarted server
//!   finds its comment again (the reporter trusts it only in the App's own comments);
//! - text PatchPilot did not write itself (the model's summary, the issue title, commands,
//!   their output, error messages) goes through [`super::markdown`]: closing keywords for
//!   other issues and mentions are defused, HTML is escaped, code is fenced safely and
//!   operator addresses are hidden;
//! - every body is bounded below GitHub's limit with a note saying what was cut and where
//!   the full text is;
//! - session pages are linked only when there is a public URL (a relative link on GitHub
//!   points at github.com).

use std::fmt::Write as _;
use std::time::Duration;

pub use super::markdown::{BODY_LIMIT, fenced, tail};
use super::markdown::{
    FullTextAt, bound, inline_code, redact_operator_details, untrusted_markdown, untrusted_plain,
};
use super::model::{Outcome, ProgressView, SessionLink, StepState, StepView};

use crate::github::client::CheckOutput;
use crate::github::markers::session_marker;
use crate::github::types::IssueNumber;
use crate::session::repo_config::RepoConfigError;

/// GitHub's limit on check-run `summary` and `text`, and on comment and PR bodies, minus a
/// margin (see [`BODY_LIMIT`]).
pub const GITHUB_TEXT_LIMIT: usize = BODY_LIMIT;
/// How much of a command's output a comment or PR body shows (its tail).
pub const OUTPUT_TAIL: usize = 6_000;

/// An error or reason sentence, as the public may see it: operator addresses hidden and
/// untrusted parts (commands, output, the model's words) defused.
pub fn public_reason(text: &str) -> String {
    untrusted_markdown(&redact_operator_details(text), None)
}

/// Untrusted inline code (a command, a file name): unbreakable, closing keywords defused.
fn code(text: &str, own_issue: Option<u64>) -> String {
    untrusted_markdown(&inline_code(text), own_issue)
}

/// A command's output (its tail) in a fence it cannot break, closing keywords defused.
fn output_block(output: &str, max_bytes: usize, own_issue: Option<u64>) -> String {
    untrusted_markdown(&fenced(&tail(output, max_bytes)), own_issue)
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
    let mut text = session_marker(&view.session.id);
    text.push('\n');
    let heading = match &view.outcome {
        Outcome::Queued | Outcome::InProgress => "PatchPilot is working on this issue",
        Outcome::PullRequest { .. } => "PatchPilot opened a pull request",
        Outcome::Stopped { .. } => "PatchPilot stopped",
        Outcome::Cancelled { .. } => "PatchPilot was cancelled",
    };
    let _ = writeln!(text, "### {heading}\n");
    text.push_str(&step_table(&view.steps));
    text.push('\n');
    match &view.outcome {
        Outcome::Queued => text.push_str("Waiting for a worker.\n"),
        Outcome::InProgress => match view.current_step() {
            Some(step) => {
                let _ = writeln!(text, "Current step: **{}**.", step.label());
            }
            None => text.push_str("Preparing: reading the issue and the repository's settings.\n"),
        },
        Outcome::PullRequest { url } => {
            let _ = writeln!(
                text,
                "Proposed fix: {url}\nPlease review it before merging."
            );
        }
        Outcome::Stopped { reason, remedy } => {
            let _ = writeln!(
                text,
                "**Why:** {}\n\n**What you can do:** {}",
                public_reason(reason),
                public_reason(remedy)
            );
        }
        Outcome::Cancelled { by } => {
            if let Some(by) = by {
                let _ = writeln!(text, "Cancelled by @{by}.");
            }
            text.push_str("Comment `/patchpilot retry` to start again.\n");
        }
    }
    if let Some(link) = view.session.markdown("Follow this session live") {
        let _ = write!(text, "\n{link}");
    }
    bound(&text, BODY_LIMIT, view.session.full_text_at())
}

/// Reply to someone without write access who tried to start work (rate-limited by the
/// caller: see `reporter::reply_limited`).
pub fn unauthorised_reply(login: &str) -> String {
    format!(
        "Thanks @{login}! Only people with write access to this repository can start \
         PatchPilot, because it runs the reproduction command. A maintainer can label the \
         issue or comment `/patchpilot` to start it."
    )
}

/// Reply to a trigger while a session for the issue is still running.
pub fn already_running_reply(session: &SessionLink) -> String {
    let link = session
        .markdown("follow it here")
        .map(|link| format!(": {link}"))
        .unwrap_or_default();
    format!(
        "PatchPilot is already working on this issue{link}. Comment `/patchpilot cancel` to \
         stop it, then `/patchpilot retry` to start over."
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
         Adding the {} label also starts it. Settings live in `.github/patchpilot.yml`.",
        inline_code(label)
    )
}

/// Reply to `/patchpilot status`; `None` when no session exists for the issue.
pub fn status_reply(view: Option<&ProgressView>) -> String {
    let Some(view) = view else {
        return "PatchPilot has not worked on this issue yet. Comment `/patchpilot` to start."
            .into();
    };
    let state = match (&view.outcome, view.current_step()) {
        (Outcome::Queued, _) => "is waiting for a worker".to_owned(),
        (Outcome::InProgress, Some(step)) => format!("is running: **{}**", step.label()),
        (Outcome::InProgress, None) => {
            "is preparing (reading the issue and the repository's settings)".to_owned()
        }
        (Outcome::PullRequest { url }, _) => format!("opened a pull request: {url}"),
        (Outcome::Stopped { reason, .. }, _) => format!("stopped: {}", public_reason(reason)),
        (Outcome::Cancelled { .. }, _) => "was cancelled".to_owned(),
    };
    let details = view
        .session
        .markdown("details")
        .map(|link| format!(" ({link})"))
        .unwrap_or_default();
    bound(
        &format!("The latest PatchPilot session {state}{details}."),
        BODY_LIMIT,
        view.session.full_text_at(),
    )
}

/// The `Stopped` outcome for a repro command that passed before any change.
pub fn could_not_reproduce(repro_command: &str) -> Outcome {
    Outcome::Stopped {
        reason: format!(
            "{} succeeded before any change, so the bug did not reproduce.",
            inline_code(repro_command)
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
        "PatchPilot could not reproduce this bug: {} succeeded on the default \
         branch.\n\n{}\nComment `/patchpilot repro <command>` with a command that fails \
         because of this bug, then `/patchpilot retry`.",
        code(&tail(repro_command, 1_000), None),
        output_block(output, OUTPUT_TAIL, None)
    )
}

/// Why a session stopped on an invalid `.github/patchpilot.yml`: the field and the problem,
/// and the fields accepted there before `fix` (where to fix it, and what to do then).
pub fn invalid_repo_config(error: &RepoConfigError, fix: &str) -> Outcome {
    let accepted = error
        .accepted
        .iter()
        .map(|f| inline_code(f))
        .collect::<Vec<_>>()
        .join(", ");
    Outcome::Stopped {
        reason: error.to_string(),
        remedy: format!("Accepted fields there: {accepted}. {fix}"),
    }
}

/// What the check run shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRunView {
    pub session: SessionLink,
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
        Outcome::Queued => "Queued".to_owned(),
        Outcome::InProgress => match view.steps.iter().find(|s| s.state == StepState::Running) {
            Some(s) => format!("{}…", s.step.label()),
            None => "Preparing…".to_owned(),
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
                "\n**Why:** {}\n\n**What you can do:** {}\n",
                public_reason(reason),
                public_reason(remedy)
            );
        }
        Outcome::Queued | Outcome::InProgress | Outcome::Cancelled { .. } => {}
    }
    let mut text = String::new();
    if let Some(command) = &view.repro_command {
        let _ = writeln!(text, "Reproduction command: {}\n", code(command, None));
    }
    for (heading, output) in [
        ("Before the fix", &view.output_before),
        ("After the fix", &view.output_after),
    ] {
        if let Some(output) = output {
            let _ = writeln!(
                text,
                "#### {heading}\n{}",
                output_block(output, 30_000, None)
            );
        }
    }
    let full = view.session.full_text_at();
    CheckOutput {
        title,
        summary: bound(&summary, BODY_LIMIT, full),
        text: (!text.is_empty()).then(|| bound(&text, BODY_LIMIT, full)),
    }
}

/// What the base commit's check run says once the session moved to the pull request head:
/// the same result, pointing there.
pub fn superseded_check_output(head: &CheckOutput, head_sha: &str) -> CheckOutput {
    let short = &head_sha[..head_sha.len().min(12)];
    let summary = format!(
        "PatchPilot's result is on the pull request's head commit `{short}` (its PatchPilot \
         check run has the details).\n\n{}",
        head.summary
    );
    CheckOutput {
        title: head.title.clone(),
        summary: bound(&summary, BODY_LIMIT, FullTextAt::SessionRecord(short)),
        text: None,
    }
}

/// `Fix #<n>: <issue title>`.
pub fn pull_request_title(issue: IssueNumber, issue_title: &str) -> String {
    let title = untrusted_plain(issue_title.trim(), Some(issue.0));
    // GitHub caps titles at 256 characters.
    let title: String = title.chars().take(200).collect();
    format!("Fix #{issue}: {title}")
}

/// The commit message: the PR title, the closing line for the session's own issue, and the
/// command that verified it.
pub fn commit_message(issue: IssueNumber, issue_title: &str, repro_command: &str) -> String {
    format!(
        "{}\n\nFixes #{issue}\n\nVerified with: {}",
        pull_request_title(issue, issue_title),
        untrusted_plain(repro_command, Some(issue.0))
    )
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
    pub session: SessionLink,
}

pub fn pull_request_body(view: &PullRequestView) -> String {
    let mut body = format!(
        "{}\n\nFixes #{}\n\n### Files changed\n",
        untrusted_markdown(view.summary.trim(), Some(view.issue.0)),
        view.issue
    );
    for file in &view.files_changed {
        let _ = writeln!(body, "- {}", code(file, Some(view.issue.0)));
    }
    let _ = write!(
        body,
        "\n### Reproduction\n{}\n\n<details><summary>Before the fix</summary>\n\n{}\n</details>\n\n\
         <details><summary>After the fix</summary>\n\n{}\n</details>\n\n\
         ---\nGenerated by PatchPilot with {} ({} input / {} output tokens).",
        code(&view.repro_command, Some(view.issue.0)),
        output_block(&view.output_before, OUTPUT_TAIL, Some(view.issue.0)),
        output_block(&view.output_after, OUTPUT_TAIL, Some(view.issue.0)),
        code(&view.model, None),
        view.input_tokens,
        view.output_tokens,
    );
    if let Some(link) = view.session.markdown("Session") {
        let _ = write!(body, " {link}");
    }
    bound(&body, BODY_LIMIT, view.session.full_text_at())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::markers::parse_session_marker;
    use crate::report::PipelineStep;
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

    fn link() -> SessionLink {
        SessionLink {
            id: "1".into(),
            url: Some("https://pp/s/1".into()),
        }
    }

    fn view(outcome: Outcome, states: &[(StepState, Option<u64>)]) -> ProgressView {
        ProgressView {
            session: SessionLink {
                id: "0193-abc".into(),
                url: Some("https://pp.example.com/sessions/0193-abc".into()),
            },
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
            already_running_reply(&SessionLink {
                id: "1".into(),
                url: Some("https://pp/s/1".into())
            }),
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
        let error =
            crate::session::repo_config::RepoConfig::parse(Some("lable: bug\n")).unwrap_err();
        let Outcome::Stopped { reason, remedy } = invalid_repo_config(&error, "Fix it.") else {
            panic!("a stop");
        };
        assert_eq!(
            reason,
            ".github/patchpilot.yml: field `lable`: is not a known setting"
        );
        assert!(
            remedy.starts_with("Accepted fields there: `label`, `test_command`"),
            "{remedy}"
        );
        assert!(remedy.ends_with(". Fix it."), "{remedy}");
    }

    #[test]
    fn check_run_output_has_table_tier_and_outputs() {
        let v = CheckRunView {
            session: link(),
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
            session: link(),
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
        assert!(
            out.summary.len() <= GITHUB_TEXT_LIMIT,
            "{}",
            out.summary.len()
        );
        assert!(
            out.summary.ends_with(
                "bytes are not shown. The full text is on the [session page](https://pp/s/1)."
            ),
            "the cut is explained"
        );
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
            session: link(),
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
    /// `visible` shows the zero-width space that defuses keywords and mentions.
    fn visible(text: &str) -> String {
        text.replace('\u{200B}', "⁀")
    }

    fn hostile_pull_request(summary: &str, session: SessionLink) -> PullRequestView {
        PullRequestView {
            issue: IssueNumber(7),
            summary: summary.into(),
            files_changed: vec!["we`ird.py".into()],
            repro_command: "pytest -k 'x`y'".into(),
            output_before: "``` </details> @carol fixes #3".into(),
            output_after: "ok".into(),
            model: "m".into(),
            input_tokens: 1,
            output_tokens: 2,
            session,
        }
    }

    #[test]
    fn pull_request_body_neutralises_the_model_summary() {
        let body = pull_request_body(&hostile_pull_request(
            "Closes #7, resolves #1 and fixes: #2. Thanks @alice and @acme/core! \
             <img src=\"http://x/pixel.png\">",
            link(),
        ));
        assert_eq!(
            visible(&body),
            "Closes #7, r⁀esolves #1 and f⁀ixes: #2. Thanks @⁀alice and @⁀acme/core! \
             &lt;img src=\"http://x/pixel.png\">\n\nFixes #7\n\n### Files changed\n- ``we`ird.py``\n\n\
             ### Reproduction\n``pytest -k 'x`y'``\n\n<details><summary>Before the fix</summary>\n\n\
             ````text\n``` </details> @carol f⁀ixes #3\n````\n\n</details>\n\n\
             <details><summary>After the fix</summary>\n\n```text\nok\n```\n\n</details>\n\n\
             ---\nGenerated by PatchPilot with `m` (1 input / 2 output tokens). [Session](https://pp/s/1)"
        );
    }

    #[test]
    fn no_session_links_without_a_public_url() {
        let private = SessionLink {
            id: "s-9".into(),
            url: None,
        };
        let body = pull_request_body(&hostile_pull_request("Fix.", private.clone()));
        assert!(body.ends_with("(1 input / 2 output tokens)."), "{body}");
        let mut v = view(Outcome::InProgress, &[(StepState::Running, None)]);
        v.session = private.clone();
        let comment = progress_comment(&v);
        assert!(!comment.contains("]("), "{comment}");
        assert!(!comment.contains("/sessions/"), "{comment}");
        assert_eq!(
            status_reply(Some(&v)),
            "The latest PatchPilot session is running: **Clone the repository**."
        );
        assert_eq!(
            already_running_reply(&private),
            "PatchPilot is already working on this issue. Comment `/patchpilot cancel` to stop \
             it, then `/patchpilot retry` to start over."
        );
    }

    #[test]
    fn status_says_queued_preparing_or_the_step() {
        let queued = view(Outcome::Queued, &[]);
        assert!(status_reply(Some(&queued)).contains("is waiting for a worker"));
        let preparing = view(Outcome::InProgress, &[]);
        assert!(
            status_reply(Some(&preparing)).contains("is preparing"),
            "{}",
            status_reply(Some(&preparing))
        );
        let repro = view(
            Outcome::InProgress,
            &[(StepState::Done, None), (StepState::Running, None)],
        );
        assert!(status_reply(Some(&repro)).contains("is running: **Reproduce the bug**"));
        let stopped = view(
            Outcome::Stopped {
                reason: "the model call failed: error sending request for url \
                         (http://10.1.2.3:8000/v1/chat/completions)"
                    .into(),
                remedy: "retry".into(),
            },
            &[],
        );
        assert_eq!(
            status_reply(Some(&stopped)),
            "The latest PatchPilot session stopped: the model call failed: error sending request \
             for url ([address hidden]) ([details](https://pp.example.com/sessions/0193-abc))."
        );
    }

    #[test]
    fn stop_reasons_hide_addresses_and_defuse_text() {
        let comment = progress_comment(&view(
            Outcome::Stopped {
                reason:
                    "the model call failed: https://llm.corp.internal/v1/messages returned 500 \
                         <b>@ops</b> fixes #4"
                        .into(),
                remedy: "ask the operator".into(),
            },
            &[],
        ));
        assert!(
            visible(&comment).contains(
                "**Why:** the model call failed: [address hidden] returned 500 &lt;b>@⁀ops&lt;/b> f⁀ixes #4\n"
            ),
            "{comment}"
        );
        let check = check_run_output(&CheckRunView {
            session: link(),
            steps: vec![],
            outcome: Outcome::Stopped {
                reason: "see http://10.0.0.1:11434/api".into(),
                remedy: "x".into(),
            },
            sandbox_tier: "bubblewrap".into(),
            repro_command: Some("echo `hi`".into()),
            output_before: None,
            output_after: None,
        });
        assert!(
            check.summary.contains("**Why:** see [address hidden]\n"),
            "{}",
            check.summary
        );
        assert_eq!(
            check.text.as_deref(),
            Some("Reproduction command: `` echo `hi` ``\n\n")
        );
    }

    #[test]
    fn huge_output_is_bounded_everywhere_with_a_note() {
        let huge = format!("{}\nFAILED\n", "x".repeat(200_000));
        let body = pull_request_body(&PullRequestView {
            summary: "s".repeat(100_000),
            output_before: huge.clone(),
            ..hostile_pull_request("", link())
        });
        assert!(body.len() <= BODY_LIMIT, "{}", body.len());
        assert!(
            body.contains("✂️ Cut to fit GitHub's size limit"),
            "the cut is said"
        );
        let check = check_run_output(&CheckRunView {
            session: SessionLink {
                id: "s-2".into(),
                url: None,
            },
            steps: vec![],
            outcome: Outcome::Stopped {
                reason: huge.clone(),
                remedy: "x".into(),
            },
            sandbox_tier: "landlock".into(),
            repro_command: Some(huge.clone()),
            output_before: Some(huge.clone()),
            output_after: Some(huge),
        });
        assert!(check.summary.len() <= BODY_LIMIT);
        assert!(
            check
                .summary
                .ends_with("in session `s-2`'s log on the PatchPilot server (ask its operator).")
        );
        assert!(check.text.unwrap().len() <= BODY_LIMIT);
    }

    #[test]
    fn titles_and_commit_messages_defuse_but_keep_our_own_closing_line() {
        assert_eq!(
            visible(&pull_request_title(
                IssueNumber(7),
                "Crash; fixes #8 cc @bob <b>"
            )),
            "Fix #7: Crash; f⁀ixes #8 cc @⁀bob <b>"
        );
        assert_eq!(
            visible(&commit_message(
                IssueNumber(7),
                "Crash, closes #1",
                "pytest # fixes #2 @x"
            )),
            "Fix #7: Crash, c⁀loses #1\n\nFixes #7\n\nVerified with: pytest # f⁀ixes #2 @⁀x"
        );
        let superseded = superseded_check_output(
            &CheckOutput {
                title: "Fix verified, pull request opened".into(),
                summary: "table".into(),
                text: Some("out".into()),
            },
            "0123456789abcdef0123",
        );
        assert_eq!(superseded.title, "Fix verified, pull request opened");
        assert!(superseded.summary.starts_with(
            "PatchPilot's result is on the pull request's head commit `0123456789ab`"
        ));
        assert!(superseded.summary.ends_with("\n\ntable"));
    }
}
