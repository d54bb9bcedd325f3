//! The reporter against the fake GitHub: one progress comment per session, edited in
//! place, found again after a restart, never duplicated by retries; the 👀 reaction; the
//! check run moving from the base commit to the PR head.

mod support;

use std::time::Duration;

use axum::http::Method;
use patchpilot::github::client::*;
use patchpilot::github::markers::session_marker;
use patchpilot::github::reporter::{Reporter, SessionRef, limited_reply_marker, reply_limited};
use patchpilot::github::types::*;
use patchpilot::report::messages::{progress_comment, superseded_check_output, unauthorised_reply};
use patchpilot::report::{Outcome, PipelineStep, ProgressView, SessionLink, StepState, StepView};
use support::fake_github::{BOT_LOGIN, FailureKind, FakeGitHub};

/// How the pipeline calls the reporter: with text `report::messages` rendered.
trait Shows {
    async fn show(&self, view: &ProgressView) -> GitHubResult<CommentId>;
    async fn show_check(
        &self,
        sha: &CommitSha,
        status: CheckStatus,
        link: Option<String>,
        output: CheckOutput,
    ) -> GitHubResult<CheckRunId>;
}

impl Shows for Reporter {
    async fn show(&self, view: &ProgressView) -> GitHubResult<CommentId> {
        self.progress(&progress_comment(view)).await
    }

    async fn show_check(
        &self,
        sha: &CommitSha,
        status: CheckStatus,
        link: Option<String>,
        output: CheckOutput,
    ) -> GitHubResult<CheckRunId> {
        let superseded = superseded_check_output(&output, &sha.0);
        self.check(sha, status, link, output, superseded).await
    }
}

fn session() -> SessionRef {
    SessionRef {
        installation: InstallationId(77),
        repo: RepoName::new("octo", "hello"),
        issue: IssueNumber(7),
        session_id: "s-1".into(),
    }
}

async fn world() -> FakeGitHub {
    let fake = FakeGitHub::start().await;
    fake.add_repo("octo/hello");
    fake.add_installation(77, &["octo/hello"]);
    fake.add_issue(
        "octo/hello",
        7,
        "Crash on empty input",
        "It panics.",
        "alice",
    );
    fake
}

fn view(running: PipelineStep, outcome: Outcome) -> ProgressView {
    let position = PipelineStep::ALL
        .iter()
        .position(|s| *s == running)
        .unwrap();
    let steps = PipelineStep::ALL
        .iter()
        .enumerate()
        .map(|(i, step)| StepView {
            step: *step,
            state: match i.cmp(&position) {
                std::cmp::Ordering::Less => StepState::Done,
                std::cmp::Ordering::Equal if outcome == Outcome::InProgress => StepState::Running,
                std::cmp::Ordering::Equal => StepState::Done,
                std::cmp::Ordering::Greater => StepState::Pending,
            },
            duration: (i <= position).then_some(Duration::from_secs(2)),
        })
        .collect();
    ProgressView {
        session: SessionLink {
            id: "s-1".into(),
            url: Some("https://pp/sessions/s-1".into()),
        },
        steps,
        outcome,
    }
}

#[tokio::test]
async fn a_session_acknowledges_then_edits_one_progress_comment() {
    let fake = world().await;
    let trigger = fake.add_comment("octo/hello", 7, "alice", "/patchpilot");
    let reporter = Reporter::new(fake.client(), session());

    reporter
        .acknowledge(ReactionTarget::Comment(CommentId(trigger)))
        .await
        .unwrap();
    let first = reporter
        .show(&view(PipelineStep::Clone, Outcome::InProgress))
        .await
        .unwrap();
    let second = reporter
        .show(&view(PipelineStep::Verify, Outcome::InProgress))
        .await
        .unwrap();
    let done = view(
        PipelineStep::Publish,
        Outcome::PullRequest {
            url: "https://gh/pr/8".into(),
        },
    );
    let last = reporter.show(&done).await.unwrap();

    assert_eq!((first, second), (last, last));
    assert_eq!(fake.reactions("octo/hello")[0].content, "eyes");
    let bot_comments: Vec<_> = fake
        .comments("octo/hello", 7)
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert_eq!(bot_comments.len(), 1);
    assert_eq!(bot_comments[0].body, progress_comment(&done));
    assert!(
        bot_comments[0]
            .body
            .contains("Proposed fix: https://gh/pr/8")
    );
    assert_eq!(bot_comments[0].edits, 2);
    fake.finish();
}

#[tokio::test]
async fn a_restarted_server_finds_its_comment_but_ignores_forged_markers() {
    let fake = world().await;
    fake.add_comment(
        "octo/hello",
        7,
        "mallory",
        &format!("{}\nforged", session_marker("s-1")),
    );
    let before = Reporter::new(fake.client(), session());
    let id = before
        .show(&view(PipelineStep::Clone, Outcome::InProgress))
        .await
        .unwrap();

    let after_restart = Reporter::new(fake.client(), session());
    let again = after_restart
        .show(&view(PipelineStep::Patch, Outcome::InProgress))
        .await
        .unwrap();

    assert_eq!(id, again);
    let comments = fake.comments("octo/hello", 7);
    assert_eq!(comments.len(), 2, "the forged comment and ours");
    assert!(
        comments[0].body.ends_with("forged"),
        "the forged comment is untouched"
    );
    assert!(comments[1].body.contains("**Write a patch** (running)"));
    fake.finish();
}

#[tokio::test]
async fn retried_updates_under_server_errors_never_duplicate_the_comment() {
    let fake = world().await;
    let reporter = Reporter::new(fake.client(), session());
    fake.fail_next(
        Method::GET,
        "/issues/7/comments",
        1,
        FailureKind::ServerError,
    );
    fake.fail_next(
        Method::POST,
        "/issues/7/comments",
        1,
        FailureKind::ServerError,
    );
    reporter
        .show(&view(PipelineStep::Clone, Outcome::InProgress))
        .await
        .unwrap();
    fake.fail_next(
        Method::PATCH,
        "/issues/comments/",
        3,
        FailureKind::ServerError,
    );
    fake.fail_next(
        Method::PATCH,
        "/issues/comments/",
        1,
        FailureKind::SecondaryRateLimit { retry_after: 1 },
    );

    let failed = reporter
        .show(&view(PipelineStep::Reproduce, Outcome::InProgress))
        .await;
    let retried = reporter
        .show(&view(PipelineStep::Reproduce, Outcome::InProgress))
        .await;

    assert!(failed.is_err(), "four failures exhaust one call's retries");
    assert!(retried.is_ok());
    let comments = fake.comments("octo/hello", 7);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("**Reproduce the bug** (running)"));
    fake.finish();
}

#[tokio::test]
async fn check_run_goes_from_base_commit_to_pr_head_and_both_end() {
    let fake = world().await;
    let reporter = Reporter::new(fake.client(), session());
    let base = CommitSha("a".repeat(40));
    let head = CommitSha("d".repeat(40));
    let out = |title: &str| CheckOutput {
        title: title.into(),
        summary: "table".into(),
        text: None,
    };

    let on_base = reporter
        .show_check(&base, CheckStatus::InProgress, None, out("Cloning…"))
        .await
        .unwrap();
    let same = reporter
        .show_check(&base, CheckStatus::InProgress, None, out("Patching…"))
        .await
        .unwrap();
    let conclusion = CheckStatus::Completed(CheckConclusion::Success);
    let on_head = reporter
        .show_check(&head, conclusion, None, out("Fixed"))
        .await
        .unwrap();

    assert_eq!(on_base, same);
    assert_ne!(on_base, on_head);
    let runs = fake.check_runs("octo/hello");
    let summary: Vec<(&str, &str, Option<&str>, &str)> = runs
        .iter()
        .map(|r| {
            (
                r.head_sha.as_str(),
                r.status.as_str(),
                r.conclusion.as_deref(),
                r.output["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (base.0.as_str(), "completed", Some("success"), "Fixed"),
            (head.0.as_str(), "completed", Some("success"), "Fixed")
        ],
        "the base commit's run ends with the session, not spinning forever"
    );
    let pointer = runs[0].output["summary"].as_str().unwrap();
    assert!(
        pointer.starts_with(&format!(
            "PatchPilot's result is on the pull request's head commit `{}`",
            &head.0[..12]
        )),
        "{pointer}"
    );
    assert!(
        runs.iter()
            .all(|r| r.name == "PatchPilot"
                && r.external_id.as_deref() == Some("patchpilot:issue=7")),
        "the external id ties a rerequested run back to its issue"
    );
    assert_eq!(reporter.check_run().await, Some((head, on_head)));
    fake.finish();
}

#[tokio::test]
async fn replies_to_people_without_write_access_are_rate_limited() {
    let fake = world().await;
    let gh = fake.client();
    let s = session();
    let now = chrono::Utc::now();
    let send = |user: &'static str, at: chrono::DateTime<chrono::Utc>| {
        let gh = gh.clone();
        let s = s.clone();
        async move {
            reply_limited(
                gh.as_ref(),
                s.installation,
                &s.repo,
                s.issue,
                "unauthorised",
                user,
                &unauthorised_reply(user),
                at,
            )
            .await
            .unwrap()
        }
    };

    assert!(send("mallory", now).await.is_some());
    assert_eq!(send("mallory", now).await, None, "same user, same hour");
    // Someone pasting our marker does not count: only the App's own comments do.
    fake.add_comment(
        "octo/hello",
        7,
        "trudy",
        &limited_reply_marker("unauthorised", "trudy", now),
    );
    assert!(send("trudy", now).await.is_some());
    for user in ["u1", "u2", "u3"] {
        assert!(send(user, now).await.is_some());
    }
    assert_eq!(
        send("u4", now).await,
        None,
        "five replies per issue per day"
    );
    let later = now + chrono::Duration::hours(2);
    assert_eq!(
        send("mallory", later).await,
        None,
        "the issue cap still holds"
    );

    let comments = fake.comments("octo/hello", 7);
    let ours: Vec<_> = comments.iter().filter(|c| c.author == BOT_LOGIN).collect();
    assert_eq!(ours.len(), 5, "{comments:#?}");
    assert_eq!(
        ours[0].body,
        format!(
            "{}\n{}",
            limited_reply_marker("unauthorised", "mallory", now),
            unauthorised_reply("mallory")
        )
    );
    fake.finish();
}

#[tokio::test]
async fn a_check_run_created_before_a_crash_is_found_again_not_duplicated() {
    let fake = world().await;
    let base = CommitSha("a".repeat(40));
    let head = CommitSha("d".repeat(40));
    let out = |title: &str| CheckOutput {
        title: title.into(),
        summary: "table".into(),
        text: None,
    };
    let link = Some("https://patchpilot.example/sessions/s-1".to_owned());
    // The first process created runs on both commits, then died before storing their ids.
    let crashed = Reporter::new(fake.client(), session());
    let on_base = crashed
        .show_check(
            &base,
            CheckStatus::InProgress,
            link.clone(),
            out("Cloning…"),
        )
        .await
        .unwrap();
    let on_head = crashed
        .show_check(
            &head,
            CheckStatus::InProgress,
            link.clone(),
            out("Publishing…"),
        )
        .await
        .unwrap();
    drop(crashed);

    // The process that resumes the session knows nothing but the commits it had used.
    let resumed = Reporter::new(fake.client(), session());
    resumed.remember_commits([base.clone()]).await;
    let again = resumed
        .show_check(
            &base,
            CheckStatus::InProgress,
            link.clone(),
            out("Cloning…"),
        )
        .await
        .unwrap();
    assert_eq!(again, on_base, "the run on the base commit is reused");
    let fresh = Reporter::new(fake.client(), session());
    fresh.remember_commits([base.clone()]).await;
    let done = CheckStatus::Completed(CheckConclusion::Success);
    let last = fresh
        .show_check(&head, done, link, out("Fixed"))
        .await
        .unwrap();
    assert_eq!(last, on_head, "the run on the head commit is reused");
    let runs = fake.check_runs("octo/hello");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(
        runs.iter().all(|r| r.status == "completed"),
        "the base commit's run, left in progress by the crash, ends too: {runs:#?}"
    );
    // Another session's completed run on the same commit is not taken over.
    let other = Reporter::new(
        fake.client(),
        SessionRef {
            session_id: "s-2".into(),
            ..session()
        },
    );
    let link2 = Some("https://patchpilot.example/sessions/s-2".to_owned());
    let own = other
        .show_check(&base, CheckStatus::InProgress, link2, out("Cloning…"))
        .await
        .unwrap();
    assert_ne!(own, on_base, "a retry's session gets its own run");
    fake.finish();
}

#[tokio::test]
async fn a_one_off_reply_is_posted_once_per_key_even_when_the_job_runs_again() {
    use patchpilot::github::reporter::{reply_once, reply_once_marker};
    let fake = world().await;
    let github = fake.client();
    let (inst, repo, issue) = (
        InstallationId(77),
        RepoName::new("octo", "hello"),
        IssueNumber(7),
    );
    // Someone pastes the marker: it is not the bot's reply.
    fake.add_comment(
        "octo/hello",
        7,
        "mallory",
        &format!("fake\n{}", reply_once_marker("comment-5")),
    );
    let first = reply_once(
        github.as_ref(),
        inst,
        &repo,
        issue,
        "comment-5",
        "No session to cancel.",
    )
    .await
    .unwrap();
    let again = reply_once(
        github.as_ref(),
        inst,
        &repo,
        issue,
        "comment-5",
        "No session to cancel.",
    )
    .await
    .unwrap();
    let other = reply_once(
        github.as_ref(),
        inst,
        &repo,
        issue,
        "comment-6",
        "No session to cancel.",
    )
    .await
    .unwrap();
    assert_eq!(
        first, again,
        "the job run again after a crash finds its reply"
    );
    assert_ne!(first, other);
    let bot: Vec<_> = fake
        .comments("octo/hello", 7)
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert_eq!(bot.len(), 2, "{bot:#?}");
    assert!(
        bot[0].body.starts_with(
            "No session to cancel.
"
        ),
        "{}",
        bot[0].body
    );
    fake.finish();
}
