//! Trigger rules for what happens on a pull request PatchPilot opened: reviews, review
//! comments, and CI that failed on its branch. Pure, like `triggers.rs`: each rule either
//! ignores the event (with the reason recorded on the delivery) or records a command job; the
//! worker then checks the sender's permission, that the pull request is really ours, the
//! per-PR CI cap and "one round per head commit" before it starts an iteration.
//!
//! Loops are cut here first: events sent by bots (PatchPilot included) never start work, and
//! the check suite of PatchPilot's own check run (its App id) is ignored, so a failed
//! PatchPilot check never asks PatchPilot to fix itself.

use super::decision::{CommandJob, CommandKind, Decision, TriggerSettings, sender_refusal};
use super::events::{
    Account, CheckSuiteEvent, InstallationRef, PullRequestRef, PullRequestReviewCommentEvent,
    PullRequestReviewEvent, Repository, WorkflowRunEvent,
};
use crate::authorization::is_our_pull_request;
use crate::session::iteration::issue_of_branch;

/// CI conclusions that ask for a fix-up round (`cancelled`, `skipped`, `neutral`, ... do not).
fn is_ci_failure(conclusion: Option<&str>) -> bool {
    matches!(conclusion, Some("failure" | "timed_out"))
}

/// Whether the pull request is one PatchPilot opened: its branch, and its bot as the author
/// when the bot's login is known.
fn ours(pull: &PullRequestRef, settings: &TriggerSettings) -> bool {
    is_our_pull_request(
        &pull.head.branch,
        &pull.user.login,
        settings.bot_login.as_deref(),
    )
}

fn job(
    command: CommandKind,
    repository: &Repository,
    installation: &InstallationRef,
    issue_number: i64,
    sender: &Account,
) -> CommandJob {
    CommandJob {
        command,
        installation_id: installation.id,
        repository: repository.full_name.clone(),
        clone_url: repository.clone_url.clone(),
        issue_number,
        is_pull_request: true,
        comment_id: 0,
        sender: sender.login.clone(),
        text: String::new(),
        review_id: None,
        head_sha: None,
        head_branch: None,
        workflow_run_id: None,
        check_suite_id: None,
    }
}

/// A submitted review that requests changes starts one iteration with all its comments.
pub fn review_decision(e: &PullRequestReviewEvent, settings: &TriggerSettings) -> Decision {
    if e.action != "submitted" {
        return Decision::ignored(format!("pull_request_review.{}", e.action));
    }
    if !e.review.state.eq_ignore_ascii_case("changes_requested") {
        // Line comments of a plain review arrive as `pull_request_review_comment` events.
        return Decision::ignored(format!("review state `{}`", e.review.state));
    }
    review_job(
        e.review.id,
        &e.review.user,
        &e.pull_request,
        &e.repository,
        e.installation.as_ref(),
        settings,
    )
}

/// A line comment starts (at most) one iteration for its whole review: GitHub sends one
/// event per comment of a review, and the worker keys iterations by review.
pub fn review_comment_decision(
    e: &PullRequestReviewCommentEvent,
    settings: &TriggerSettings,
) -> Decision {
    if e.action != "created" {
        return Decision::ignored(format!("pull_request_review_comment.{}", e.action));
    }
    let Some(review_id) = e.comment.pull_request_review_id else {
        return Decision::ignored("review comment without a review");
    };
    review_job(
        review_id,
        &e.comment.user,
        &e.pull_request,
        &e.repository,
        e.installation.as_ref(),
        settings,
    )
}

fn review_job(
    review_id: i64,
    author: &Account,
    pull: &PullRequestRef,
    repository: &Repository,
    installation: Option<&InstallationRef>,
    settings: &TriggerSettings,
) -> Decision {
    if let Some(reason) = sender_refusal(author, settings) {
        return Decision::ignored(reason);
    }
    if !ours(pull, settings) {
        return Decision::ignored("not a PatchPilot pull request");
    }
    let Some(installation) = installation else {
        return Decision::ignored("no installation in payload");
    };
    let mut job = job(
        CommandKind::Review,
        repository,
        installation,
        pull.number,
        author,
    );
    job.review_id = Some(review_id);
    job.decision()
}

/// A workflow run that failed on a PatchPilot branch.
pub fn workflow_run_decision(e: &WorkflowRunEvent, _settings: &TriggerSettings) -> Decision {
    let run = &e.workflow_run;
    if e.action != "completed" {
        return Decision::ignored(format!("workflow_run.{}", e.action));
    }
    ci_job(
        run.conclusion.as_deref(),
        run.head_branch.as_deref(),
        &run.head_sha,
        &e.repository,
        e.installation.as_ref(),
        &e.sender,
    )
    .map_or_else(Decision::ignored, |mut job| {
        job.workflow_run_id = Some(run.id);
        job.decision()
    })
}

/// A check suite that failed on a PatchPilot branch (CI that is not GitHub Actions).
pub fn check_suite_decision(e: &CheckSuiteEvent, settings: &TriggerSettings) -> Decision {
    let suite = &e.check_suite;
    if e.action != "completed" {
        return Decision::ignored(format!("check_suite.{}", e.action));
    }
    if let (Some(ours), Some(app)) = (settings.app_id, &suite.app)
        && app.id == ours
    {
        return Decision::ignored("PatchPilot's own check suite");
    }
    ci_job(
        suite.conclusion.as_deref(),
        suite.head_branch.as_deref(),
        &suite.head_sha,
        &e.repository,
        e.installation.as_ref(),
        &e.sender,
    )
    .map_or_else(Decision::ignored, |mut job| {
        job.check_suite_id = Some(suite.id);
        job.decision()
    })
}

/// The common CI rule; `Err` is the reason the event is ignored. The sender is not checked:
/// CI runs as whoever pushed (usually PatchPilot), and the round only runs the command a
/// writer approved for the first session.
fn ci_job(
    conclusion: Option<&str>,
    head_branch: Option<&str>,
    head_sha: &str,
    repository: &Repository,
    installation: Option<&InstallationRef>,
    sender: &Account,
) -> Result<CommandJob, String> {
    if !is_ci_failure(conclusion) {
        return Err(format!("CI conclusion `{}`", conclusion.unwrap_or("none")));
    }
    let branch = head_branch.unwrap_or_default();
    let Some(issue) = issue_of_branch(branch) else {
        return Err(format!("branch `{branch}` is not PatchPilot's"));
    };
    let Some(installation) = installation else {
        return Err("no installation in payload".to_owned());
    };
    // The pull request number is found by the worker; the issue stands in until then.
    let mut job = job(
        CommandKind::CiFailure,
        repository,
        installation,
        issue,
        sender,
    );
    job.head_sha = Some(head_sha.to_owned());
    job.head_branch = Some(branch.to_owned());
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IntakeEffect;
    use crate::webhook::events::{CheckSuite, PullRequestEnd, Review, WorkflowRun};

    fn settings() -> TriggerSettings {
        TriggerSettings {
            label: "patchpilot".into(),
            bot_login: Some("patchpilot[bot]".into()),
            app_id: Some(42),
        }
    }

    fn account(login: &str) -> Account {
        Account {
            login: login.into(),
            kind: if login.ends_with("[bot]") {
                "Bot"
            } else {
                "User"
            }
            .into(),
        }
    }

    fn repository() -> Repository {
        Repository {
            full_name: "o/r".into(),
            clone_url: "http://git/o/r.git".into(),
            default_branch: Some("main".into()),
            html_url: None,
            private: Some(false),
        }
    }

    fn pull(author: &str, branch: &str) -> PullRequestRef {
        PullRequestRef {
            number: 8,
            user: account(author),
            head: PullRequestEnd {
                branch: branch.into(),
                sha: "h".repeat(40),
            },
        }
    }

    fn review(state: &str, by: &str, pr: PullRequestRef) -> PullRequestReviewEvent {
        PullRequestReviewEvent {
            action: "submitted".into(),
            review: Review {
                id: 5,
                state: state.into(),
                user: account(by),
            },
            pull_request: pr,
            repository: repository(),
            installation: Some(InstallationRef { id: 1 }),
            sender: account(by),
        }
    }

    fn payload(decision: &Decision) -> CommandJob {
        match &decision.effect {
            IntakeEffect::Job { payload, .. } => serde_json::from_value(payload.clone()).unwrap(),
            other => panic!("no job: {other:?} ({})", decision.outcome),
        }
    }

    #[test]
    fn a_changes_requested_review_on_our_pull_request_is_a_review_job() {
        let pr = pull("patchpilot[bot]", "patchpilot/issue-3");
        let job = payload(&review_decision(
            &review("changes_requested", "alice", pr),
            &settings(),
        ));
        assert_eq!(job.command, CommandKind::Review);
        assert_eq!((job.issue_number, job.review_id), (8, Some(5)));
        assert_eq!(job.sender, "alice");
    }

    #[test]
    fn other_reviews_bots_and_foreign_pull_requests_are_ignored() {
        let ours = || pull("patchpilot[bot]", "patchpilot/issue-3");
        let cases = [
            review("approved", "alice", ours()),
            review("changes_requested", "dependabot[bot]", ours()),
            review("changes_requested", "patchpilot[bot]", ours()),
            review(
                "changes_requested",
                "alice",
                pull("bob", "patchpilot/issue-3"),
            ),
            review(
                "changes_requested",
                "alice",
                pull("patchpilot[bot]", "feature"),
            ),
        ];
        for case in cases {
            let decision = review_decision(&case, &settings());
            assert!(decision.outcome.starts_with("ignored"), "{case:?}");
        }
    }

    fn workflow_run(conclusion: &str, branch: &str) -> WorkflowRunEvent {
        WorkflowRunEvent {
            action: "completed".into(),
            workflow_run: WorkflowRun {
                id: 77,
                head_branch: Some(branch.into()),
                head_sha: "c".repeat(40),
                conclusion: Some(conclusion.into()),
            },
            repository: repository(),
            installation: Some(InstallationRef { id: 1 }),
            sender: account("patchpilot[bot]"),
        }
    }

    #[test]
    fn a_failed_workflow_run_on_our_branch_is_a_ci_job_even_when_we_pushed() {
        let job = payload(&workflow_run_decision(
            &workflow_run("failure", "patchpilot/issue-3"),
            &settings(),
        ));
        assert_eq!(job.command, CommandKind::CiFailure);
        assert_eq!(job.workflow_run_id, Some(77));
        assert_eq!(job.head_branch.as_deref(), Some("patchpilot/issue-3"));
        assert_eq!(job.head_sha.as_deref(), Some("c".repeat(40).as_str()));
        for ignored in [
            workflow_run("success", "patchpilot/issue-3"),
            workflow_run("cancelled", "patchpilot/issue-3"),
            workflow_run("failure", "main"),
        ] {
            let decision = workflow_run_decision(&ignored, &settings());
            assert!(decision.outcome.starts_with("ignored"), "{ignored:?}");
        }
    }

    #[test]
    fn our_own_check_suite_never_asks_for_a_fix() {
        let suite = |app: i64| CheckSuiteEvent {
            action: "completed".into(),
            check_suite: CheckSuite {
                id: 9,
                head_branch: Some("patchpilot/issue-3".into()),
                head_sha: "c".repeat(40),
                conclusion: Some("failure".into()),
                app: Some(crate::webhook::events::AppRef { id: app }),
            },
            repository: repository(),
            installation: Some(InstallationRef { id: 1 }),
            sender: account("patchpilot[bot]"),
        };
        let decision = check_suite_decision(&suite(42), &settings());
        assert_eq!(decision.outcome, "ignored: PatchPilot's own check suite");
        let job = payload(&check_suite_decision(&suite(15368), &settings()));
        assert_eq!(job.check_suite_id, Some(9));
    }
}
