//! The real octocrab-backed GitHub client against the fake GitHub.

mod support;

use std::sync::Arc;

use axum::http::Method;
use patchpilot::authorization::{Sender, TriggerDecision, check_trigger};
use patchpilot::github::client::*;
use patchpilot::github::types::*;
use secrecy::ExposeSecret;
use support::fake_github::{BOT_LOGIN, FailureKind, FakeGitHub};

const INST: InstallationId = InstallationId(77);

fn repo() -> RepoName {
    RepoName::new("octo", "hello")
}

async fn world() -> FakeGitHub {
    let fake = FakeGitHub::start().await;
    fake.add_repo("octo/hello");
    fake.add_repo("octo/other");
    fake.add_installation(77, &["octo/hello", "octo/other"]);
    fake.add_issue(
        "octo/hello",
        7,
        "Crash on empty input",
        "It panics.\n",
        "alice",
    );
    fake
}

#[tokio::test]
async fn installation_tokens_are_scoped_to_the_repo_and_cached() {
    let fake = world().await;
    let gh = fake.client();

    let first = gh.installation_token(INST, &repo()).await.unwrap();
    let issue = gh.get_issue(INST, &repo(), IssueNumber(7)).await.unwrap();
    let again = gh.installation_token(INST, &repo()).await.unwrap();

    assert_eq!(fake.tokens_minted(), 1);
    assert_eq!(fake.last_token_repos(), ["octo/hello"]);
    assert_eq!(first.expose_secret(), again.expose_secret());
    assert_eq!(
        issue,
        Issue {
            title: "Crash on empty input".into(),
            body: "It panics.\n".into(),
            state: IssueState::Open,
            is_pull_request: false,
            author: "alice".into(),
        }
    );
    fake.finish();
}

#[tokio::test]
async fn tokens_close_to_expiry_are_replaced() {
    let fake = world().await;
    fake.set_token_lifetime(chrono::TimeDelta::minutes(5));
    let gh = fake.client();

    gh.installation_token(INST, &repo()).await.unwrap();
    gh.installation_token(INST, &repo()).await.unwrap();

    assert_eq!(fake.tokens_minted(), 2);
    fake.finish();
}

#[tokio::test]
async fn comment_is_created_then_edited_in_place() {
    let fake = world().await;
    let gh = fake.client();

    let id = gh
        .post_comment(INST, &repo(), IssueNumber(7), "working…")
        .await
        .unwrap();
    gh.update_comment(INST, &repo(), id, "done").await.unwrap();

    let comments = fake.comments("octo/hello", 7);
    assert_eq!(comments.len(), 1);
    assert_eq!((comments[0].body.as_str(), comments[0].edits), ("done", 1));
    let listed = gh
        .list_comments(INST, &repo(), IssueNumber(7))
        .await
        .unwrap();
    assert_eq!(
        listed,
        [Comment {
            id,
            author: BOT_LOGIN.into(),
            body: "done".into()
        }]
    );
    fake.finish();
}

#[tokio::test]
async fn reactions_on_comments_and_issues() {
    let fake = world().await;
    let trigger = fake.add_comment("octo/hello", 7, "alice", "/patchpilot");
    let gh = fake.client();

    gh.add_reaction(
        INST,
        &repo(),
        ReactionTarget::Comment(CommentId(trigger)),
        Reaction::Eyes,
    )
    .await
    .unwrap();
    gh.add_reaction(
        INST,
        &repo(),
        ReactionTarget::Comment(CommentId(trigger)),
        Reaction::Eyes,
    )
    .await
    .unwrap();
    gh.add_reaction(
        INST,
        &repo(),
        ReactionTarget::Issue(IssueNumber(7)),
        Reaction::Eyes,
    )
    .await
    .unwrap();

    let reactions: Vec<(String, String)> = fake
        .reactions("octo/hello")
        .into_iter()
        .map(|r| (r.target, r.content))
        .collect();
    assert_eq!(
        reactions,
        [
            (format!("comment:{trigger}"), "eyes".to_owned()),
            ("issue:7".to_owned(), "eyes".to_owned())
        ]
    );
    fake.finish();
}

#[tokio::test]
async fn check_run_lifecycle() {
    let fake = world().await;
    let gh = fake.client();
    let sha = CommitSha("a".repeat(40));
    let mut update = CheckRunUpdate {
        name: "PatchPilot".into(),
        status: CheckStatus::InProgress,
        details_url: Some("https://pp/s/1".into()),
        external_id: Some("s-1".into()),
        output: Some(CheckOutput {
            title: "Cloning…".into(),
            summary: "table".into(),
            text: None,
        }),
    };

    let id = gh
        .create_check_run(INST, &repo(), &sha, &update)
        .await
        .unwrap();
    update.status = CheckStatus::Completed(CheckConclusion::Neutral);
    update.output = Some(CheckOutput {
        title: "Stopped".into(),
        summary: "s".into(),
        text: Some("out".into()),
    });
    gh.update_check_run(INST, &repo(), id, &update)
        .await
        .unwrap();

    let runs = fake.check_runs("octo/hello");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run.id, run.name.as_str(), run.head_sha.as_str()),
        (id.0, "PatchPilot", sha.0.as_str())
    );
    assert_eq!(
        (run.status.as_str(), run.conclusion.as_deref()),
        ("completed", Some("neutral"))
    );
    assert_eq!(run.external_id.as_deref(), Some("s-1"));
    assert_eq!(
        run.output,
        serde_json::json!({ "title": "Stopped", "summary": "s", "text": "out" })
    );
    fake.finish();
}

#[tokio::test]
async fn pull_request_is_opened_once_and_updated_when_it_exists() {
    let fake = world().await;
    fake.set_branch("octo/hello", "patchpilot/issue-7", &"d".repeat(40));
    let gh = fake.client();
    let mut pr = NewPullRequest {
        title: "Fix #7: Crash on empty input".into(),
        head: "patchpilot/issue-7".into(),
        base: "main".into(),
        body: "Fixes #7".into(),
        draft: true,
    };

    let opened = gh.open_pull_request(INST, &repo(), &pr).await.unwrap();
    pr.body = "Fixes #7 (second attempt)".into();
    let again = gh.open_pull_request(INST, &repo(), &pr).await.unwrap();

    assert_eq!(opened, again);
    assert_eq!(
        opened.html_url,
        format!("{}/octo/hello/pull/{}", fake.url, opened.number)
    );
    let pulls = fake.pulls("octo/hello");
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].draft);
    assert_eq!(pulls[0].body, "Fixes #7 (second attempt)");
    let files = gh
        .pull_request_files(INST, &repo(), opened.number)
        .await
        .unwrap();
    assert_eq!(files[0].filename, "src/lib.rs");
    fake.finish();
}

#[tokio::test]
async fn validation_errors_are_never_retried() {
    let fake = world().await;
    let gh = fake.client();
    let pr = NewPullRequest {
        title: "t".into(),
        head: "no-such-branch".into(),
        base: "main".into(),
        body: String::new(),
        draft: false,
    };

    let err = gh.open_pull_request(INST, &repo(), &pr).await.unwrap_err();

    assert_eq!(err.status(), Some(422));
    assert_eq!(fake.count(Method::POST, "/pulls"), 1);
    assert!(
        !err.to_string().contains("ghs_"),
        "no token in errors: {err}"
    );
    fake.finish();
}

#[tokio::test]
async fn files_repositories_branches_and_search() {
    let fake = world().await;
    fake.set_file(
        "octo/hello",
        "main",
        ".github/patchpilot.yml",
        "draft: true\n",
    );
    fake.add_issue("octo/hello", 3, "Crash when input is empty", "", "bob");
    fake.add_pull_issue("octo/hello", 4, "Fix crash on empty input", "bob");
    let gh = fake.client();

    let config = gh
        .get_file(INST, &repo(), ".github/patchpilot.yml", "main")
        .await
        .unwrap();
    let missing = gh
        .get_file(INST, &repo(), "nope.txt", "main")
        .await
        .unwrap();
    let r = gh.repository(INST, &repo()).await.unwrap();
    let head = gh.branch_head(INST, &repo(), "main").await.unwrap();
    let hits = gh
        .search_issues(INST, &repo(), "crash is:closed", 5)
        .await
        .unwrap();

    assert_eq!(config.as_deref(), Some("draft: true\n"));
    assert_eq!(missing, None);
    assert_eq!(
        r,
        Repo {
            default_branch: "main".into(),
            clone_url: format!("{}/git/octo/hello.git", fake.url)
        }
    );
    assert_eq!(head, CommitSha("a".repeat(40)));
    let found: Vec<(u64, bool)> = hits.iter().map(|h| (h.number.0, h.is_pr)).collect();
    assert_eq!(found, [(3, false), (4, true), (7, false)]);
    fake.finish();
}

#[tokio::test]
async fn only_writers_may_trigger_and_bots_are_ignored_without_asking_github() {
    let fake = world().await;
    for (login, role) in [
        ("ada", "admin"),
        ("max", "maintain"),
        ("wes", "write"),
        ("tim", "triage"),
        ("rae", "read"),
    ] {
        fake.set_role("octo/hello", login, role);
    }
    let gh: Arc<dyn GitHub> = fake.client();
    let decide = |login: &'static str, kind: &'static str| {
        let gh = gh.clone();
        async move {
            let is_bot = kind == "Bot";
            check_trigger(gh.as_ref(), INST, &repo(), Sender { login, is_bot })
                .await
                .unwrap()
        }
    };

    assert_eq!(
        decide("ada", "User").await,
        TriggerDecision::Allowed(Permission::Admin)
    );
    assert_eq!(
        decide("max", "User").await,
        TriggerDecision::Allowed(Permission::Maintain)
    );
    assert_eq!(
        decide("wes", "User").await,
        TriggerDecision::Allowed(Permission::Write)
    );
    assert_eq!(
        decide("tim", "User").await,
        TriggerDecision::Denied(Permission::Triage)
    );
    assert_eq!(
        decide("rae", "User").await,
        TriggerDecision::Denied(Permission::Read)
    );
    assert_eq!(
        decide("stranger", "User").await,
        TriggerDecision::Denied(Permission::None)
    );
    let permission_calls = fake.count(Method::GET, "/permission");
    assert_eq!(decide("dependabot[bot]", "Bot").await, TriggerDecision::Bot);
    assert_eq!(decide(BOT_LOGIN, "Bot").await, TriggerDecision::OwnBot);
    assert_eq!(fake.count(Method::GET, "/permission"), permission_calls);
    fake.finish();
}

#[tokio::test]
async fn retries_survive_server_errors_and_rate_limits_without_duplicates() {
    let fake = world().await;
    let gh = fake.client();
    fake.fail_next(
        Method::POST,
        "/issues/7/comments",
        2,
        FailureKind::ServerError,
    );
    fake.fail_next(
        Method::PATCH,
        "/issues/comments/",
        1,
        FailureKind::TooManyRequests { retry_after: 1 },
    );
    fake.fail_next(
        Method::GET,
        "/issues/7",
        1,
        FailureKind::SecondaryRateLimit { retry_after: 1 },
    );
    fake.fail_next(Method::POST, "/access_tokens", 1, FailureKind::ServerError);

    let id = gh
        .post_comment(INST, &repo(), IssueNumber(7), "hello")
        .await
        .unwrap();
    gh.update_comment(INST, &repo(), id, "hello again")
        .await
        .unwrap();
    let issue = gh.get_issue(INST, &repo(), IssueNumber(7)).await.unwrap();

    assert_eq!(issue.title, "Crash on empty input");
    let comments = fake.comments("octo/hello", 7);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, "hello again");
    assert_eq!(fake.count(Method::POST, "/issues/7/comments"), 3);
    assert_eq!(fake.tokens_minted(), 1);
    fake.finish();
}

#[tokio::test]
async fn persistent_rate_limit_gives_up_with_a_clear_error() {
    let fake = world().await;
    let gh = fake.client();
    gh.installation_token(INST, &repo()).await.unwrap();
    fake.fail_next(
        Method::GET,
        "/issues/7",
        10,
        FailureKind::TooManyRequests { retry_after: 60 },
    );

    let err = gh
        .get_issue(INST, &repo(), IssueNumber(7))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "GitHub rate limit on GET /repos/octo/hello/issues/7 did not clear after 4 attempts"
    );
    fake.finish();
}

#[tokio::test]
async fn strict_teardown_fails_on_unseen_comments_and_unknown_routes() {
    let fake = world().await;
    let gh = fake.client();
    gh.post_comment(INST, &repo(), IssueNumber(7), "surprise")
        .await
        .unwrap();
    let unseen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.finish()));
    assert!(unseen.is_err());

    let fake = world().await;
    let status = reqwest::Client::new()
        .delete(format!("{}/repos/octo/hello/issues/7", fake.url))
        .header(
            "authorization",
            format!(
                "Bearer {}",
                fake.client()
                    .installation_token(INST, &repo())
                    .await
                    .unwrap()
                    .expose_secret()
            ),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let unknown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.finish()));
    assert!(unknown.is_err());
}

#[tokio::test]
async fn a_jwt_from_the_wrong_key_is_refused() {
    let fake = world().await;
    let other_key = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .unwrap()
        .stdout;
    let creds = patchpilot::github::auth::AppCredentials::from_pem(
        support::fake_github::TEST_APP_ID,
        &other_key,
    )
    .unwrap();
    let gh = patchpilot::github::octo::OctocrabGitHub::new(
        &fake.url,
        creds,
        None,
        std::time::Duration::from_secs(5),
        support::fake_github::fast_retry(),
    )
    .unwrap();

    let err = gh.installation_token(INST, &repo()).await.unwrap_err();

    assert_eq!(err.status(), Some(401));
    assert_eq!(fake.tokens_minted(), 0);
    assert_eq!(
        fake.count(Method::POST, "/access_tokens"),
        1,
        "401 is not retried"
    );
}
