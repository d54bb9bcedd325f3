//! End to end: a signed webhook in, a pull request (or an honest report) out.
//! Real router, worker, pipeline, git, sandbox and octocrab; fake GitHub and scripted model.

mod support;

use patchpilot::store::SessionStatus;
use support::e2e::{MAINTAINER, PYTHON_FIX, PYTHON_REPRO, REPO, World, python_project};
use support::fake_model::Reply;

fn issue_body() -> String {
    format!(
        "`average([])` crashes with ZeroDivisionError instead of returning 0.\n\nrepro: {PYTHON_REPRO}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labelled_python_issue_becomes_a_verified_pull_request() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world
        .model
        .push_reply(Reply::text(PYTHON_FIX).usage(1200, 150));
    let payload = world.labeled_payload(
        1,
        "average() crashes on an empty list",
        &issue_body(),
        MAINTAINER,
    );
    let answer = world.deliver("issues", &payload).await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();

    let session = world.finished(&session_id).await;
    let log = world.events(&session_id).await;
    assert_eq!(
        session.status,
        SessionStatus::Succeeded,
        "{log}\n{:?}",
        session.error_message
    );

    // The maintainer sees 👀 on the issue ...
    let reactions = world.github.reactions(REPO);
    assert!(
        reactions
            .iter()
            .any(|r| r.target == "issue:1" && r.content == "eyes"),
        "{reactions:?}"
    );
    // ... one progress comment, edited in place, ending with the PR link ...
    let comments = world.github.comments(REPO, 1);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let progress = &comments[0];
    assert!(progress.edits > 0);
    assert!(
        progress
            .body
            .contains(&format!("patchpilot:session={session_id}")),
        "{}",
        progress.body
    );
    assert!(progress.body.contains("/pull/"), "{}", progress.body);
    // ... a pull request from patchpilot/issue-1 ...
    let pulls = world.github.pulls(REPO);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].title, "Fix #1: average() crashes on an empty list");
    assert_eq!(
        (pulls[0].head.as_str(), pulls[0].base.as_str()),
        ("patchpilot/issue-1", "main")
    );
    assert!(pulls[0].body.contains("Fixes #1"));
    assert!(pulls[0].body.contains("calc.py"));
    // ... whose branch holds the fix and only the fix ...
    let bare = world.bare_repo();
    let fixed =
        support::git_http::file_at(&bare, "refs/heads/patchpilot/issue-1", "calc.py").unwrap();
    assert!(
        fixed.contains("if not values:\n        return 0"),
        "{fixed}"
    );
    let head = support::git_http::ref_sha(&bare, "refs/heads/patchpilot/issue-1").unwrap();
    let files = support::git_http::git(&bare, &["diff", "--name-only", "main", &head]);
    assert_eq!(files.trim(), "calc.py", "only the edited file is committed");
    // ... and a successful check run on the PR head.
    let runs = world.github.check_runs(REPO);
    let on_head: Vec<_> = runs.iter().filter(|r| r.head_sha == head).collect();
    assert_eq!(on_head.len(), 1, "{runs:#?}");
    assert_eq!(
        (on_head[0].status.as_str(), on_head[0].conclusion.as_deref()),
        ("completed", Some("success"))
    );
    assert_eq!(on_head[0].name, "PatchPilot");

    // The model saw the failing output and the right file.
    let requests = world.model.requests();
    assert_eq!(requests.len(), 1);
    let prompt = requests[0].first_user_message();
    assert!(prompt.contains("ZeroDivisionError"), "{prompt}");
    assert!(prompt.contains("calc.py"), "{prompt}");
    assert!(prompt.contains("return sum(values) / len(values)"));
    assert!(world.model.unexpected().is_empty());

    let stored = world.store.get_session(&session_id).await.unwrap().unwrap();
    assert_eq!((stored.input_tokens, stored.output_tokens), (1200, 150));
    assert!(stored.patch_diff.unwrap().contains("+    if not values:"));
    assert!(stored.pr_url.is_some());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_passing_repro_is_reported_as_not_reproduced_without_a_model_call() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let body = "Totals look wrong.\n\nrepro: python3 -m pytest -q -p no:cacheprovider test_calc.py -k test_total\n";
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(2, "total() is wrong", body, MAINTAINER),
        )
        .await;
    let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
    assert_eq!(
        session.status,
        SessionStatus::NotReproduced,
        "{:?}",
        session.error_message
    );
    assert!(world.model.requests().is_empty(), "no model call");
    let comments = world.github.comments(REPO, 2);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("did not reproduce"),
        "{}",
        comments[0].body
    );
    let runs = world.github.check_runs(REPO);
    assert_eq!(runs.last().unwrap().conclusion.as_deref(), Some("neutral"));
    assert!(world.github.pulls(REPO).is_empty());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_that_never_fixes_it_fails_without_a_pull_request() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let useless = "Try this.\n\nREADME.md\n<<<<<<< SEARCH\n# calc\n=======\n# calc (fixed?)\n>>>>>>> REPLACE\n";
    for _ in 0..3 {
        world.model.push_reply(Reply::text(useless));
    }
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(3, "average() crashes", &issue_body(), MAINTAINER),
        )
        .await;
    let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
    assert_eq!(session.status, SessionStatus::Failed);
    assert!(
        session
            .error_message
            .as_deref()
            .unwrap()
            .contains("no verified fix after 3 attempts"),
        "{:?}",
        session.error_message
    );
    assert_eq!(
        world.model.requests().len(),
        3,
        "max_attempts defaults to 3"
    );
    let second = world.model.requests()[1].messages();
    assert!(
        second
            .iter()
            .any(|(_, text)| text.contains("ZeroDivisionError")),
        "the new failing output goes back to the model"
    );
    assert!(world.github.pulls(REPO).is_empty());
    let runs = world.github.check_runs(REPO);
    assert_eq!(runs.last().unwrap().conclusion.as_deref(), Some("failure"));
    assert!(
        support::git_http::ref_sha(&world.bare_repo(), "refs/heads/patchpilot/issue-3").is_none(),
        "nothing pushed"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsafe_edits_are_refused_and_nothing_outside_the_tree_changes() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let escapes = [
        "../escaped.py\n<<<<<<< SEARCH\n=======\nprint('pwned')\n>>>>>>> REPLACE\n",
        ".git/config\n<<<<<<< SEARCH\n[core]\n=======\n[core]\n\tfsmonitor = evil\n>>>>>>> REPLACE\n",
        "/tmp/patchpilot-e2e-abs.py\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n",
    ];
    for reply in escapes {
        world.model.push_reply(Reply::text(reply));
    }
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(4, "average() crashes", &issue_body(), MAINTAINER),
        )
        .await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&session_id).await;
    assert_eq!(session.status, SessionStatus::Failed);
    let log = world.events(&session_id).await;
    assert!(log.contains("refused"), "{log}");
    assert!(!std::path::Path::new("/tmp/patchpilot-e2e-abs.py").exists());
    let work_parent = std::env::temp_dir();
    assert!(!support::e2e::exists(&work_parent, "escaped.py"));
    // The model was told precisely why.
    let third = world.model.requests()[2].messages();
    assert!(
        third.iter().any(|(_, text)| text.contains(".git")),
        "{third:?}"
    );
    assert!(world.github.pulls(REPO).is_empty());
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_endpoint_that_stays_down_fails_clearly_after_retries() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    for _ in 0..2 {
        world.model.push_reply(Reply::overloaded());
    }
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(5, "average() crashes", &issue_body(), MAINTAINER),
        )
        .await;
    let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
    assert_eq!(session.status, SessionStatus::Failed);
    let error = session.error_message.unwrap();
    assert!(error.contains("model call failed"), "{error}");
    assert_eq!(world.model.requests().len(), 2, "retried, then gave up");
    let comment = &world.github.comments(REPO, 5)[0];
    assert!(
        comment.body.contains("model call failed"),
        "{}",
        comment.body
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthorised_senders_and_bots_start_nothing() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world.github.set_role(REPO, "drive-by", "read");
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(6, "average() crashes", &issue_body(), "drive-by"),
        )
        .await;
    let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
    assert_eq!(session.status, SessionStatus::Rejected);
    // A second attempt by the same person gets no second reply.
    let again = world
        .deliver(
            "issues",
            &world.labeled_payload(6, "average() crashes", &issue_body(), "drive-by"),
        )
        .await;
    world.finished(again["sessionId"].as_str().unwrap()).await;
    let comments = world.github.comments(REPO, 6);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(
        comments[0].body.contains("write access"),
        "{}",
        comments[0].body
    );
    assert!(world.github.check_runs(REPO).is_empty());
    assert!(world.github.reactions(REPO).is_empty());
    assert!(world.model.requests().is_empty());

    let mut bot = world.labeled_payload(7, "x", &issue_body(), "renovate[bot]");
    bot["sender"]["type"] = serde_json::json!("Bot");
    let answer = world.deliver("issues", &bot).await;
    assert!(answer["sessionId"].is_null(), "{answer}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_mid_run_kills_the_sandbox_and_cancels_the_session() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let body = "Hangs forever.\n\nrepro: sleep 600\n";
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(8, "hang", body, MAINTAINER),
        )
        .await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    // Wait until the repro command is running in the sandbox.
    world.wait_for_event(&session_id, "$ sleep 600").await;
    let mut comment = support::example("issue_comment", "created");
    comment["comment"]["body"] = serde_json::json!("/patchpilot cancel");
    comment["comment"]["user"]["login"] = serde_json::json!(MAINTAINER);
    comment["comment"]["user"]["type"] = serde_json::json!("User");
    comment["sender"] = comment["comment"]["user"].clone();
    comment["installation"] = serde_json::json!({ "id": support::e2e::INSTALLATION });
    comment["issue"]["number"] = serde_json::json!(8);
    comment["issue"]
        .as_object_mut()
        .unwrap()
        .remove("pull_request");
    comment["repository"]["full_name"] = serde_json::json!(REPO);
    let started = std::time::Instant::now();
    world.deliver("issue_comment", &comment).await;
    let session = world.finished(&session_id).await;
    assert_eq!(session.status, SessionStatus::Cancelled);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "cancelled long before the command's end"
    );
    let progress = &world.github.comments(REPO, 8)[0];
    assert!(
        progress.body.to_lowercase().contains("cancel"),
        "{}",
        progress.body
    );
    let runs = world.github.check_runs(REPO);
    assert_eq!(
        runs.last().unwrap().conclusion.as_deref(),
        Some("cancelled")
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rust_issue_with_a_failing_cargo_test_becomes_a_pull_request() {
    let files = [
        (
            "Cargo.toml",
            "[package]\nname = \"clamp\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
        ),
        (
            "src/lib.rs",
            "/// Clamps `value` into `low..=high`.\npub fn clamp(value: i32, low: i32, high: i32) -> i32 {\n    if value < low {\n        low\n    } else if value > high {\n        value\n    } else {\n        value\n    }\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn clamps_high_values() {\n        assert_eq!(super::clamp(15, 0, 10), 10);\n    }\n}\n",
        ),
        (".gitignore", "/target\n"),
    ];
    let world = World::start(support::db::fresh_sqlite().await, &files).await;
    let fix = "Values above `high` are returned unchanged; return `high` instead.\n\nsrc/lib.rs\n<<<<<<< SEARCH\n    } else if value > high {\n        value\n=======\n    } else if value > high {\n        high\n>>>>>>> REPLACE\n";
    world.model.push_reply(Reply::text(fix));
    let body = "clamp(15, 0, 10) returns 15.\n\n### Steps to reproduce\n\n```sh\ncargo test --offline\n```\n";
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(9, "clamp ignores the upper bound", body, MAINTAINER),
        )
        .await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&session_id).await;
    let log = world.events(&session_id).await;
    assert_eq!(session.status, SessionStatus::Succeeded, "{log}");
    let prompt = world.model.requests()[0].first_user_message();
    assert!(prompt.contains("src/lib.rs"), "{prompt}");
    assert!(
        prompt.contains("assertion `left == right` failed"),
        "the failing cargo output: {prompt}"
    );
    let fixed = support::git_http::file_at(
        &world.bare_repo(),
        "refs/heads/patchpilot/issue-9",
        "src/lib.rs",
    )
    .unwrap();
    assert!(
        fixed.contains("} else if value > high {\n        high"),
        "{fixed}"
    );
    let head =
        support::git_http::ref_sha(&world.bare_repo(), "refs/heads/patchpilot/issue-9").unwrap();
    let files = support::git_http::git(&world.bare_repo(), &["diff", "--name-only", "main", &head]);
    assert_eq!(
        files.trim(),
        "src/lib.rs",
        "build output (target/) is never committed"
    );
    assert_eq!(
        world.github.pulls(REPO)[0].title,
        "Fix #9: clamp ignores the upper bound"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_attempts_with_draft_configured_opens_an_unverified_draft() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world.github.set_file(
        REPO,
        "main",
        ".github/patchpilot.yml",
        "draft: true\nmax_attempts: 2\n",
    );
    let wrong = "Guard the division.\n\ncalc.py\n<<<<<<< SEARCH\n    return sum(values) / len(values)\n=======\n    return sum(values) / max(len(values), 1) + 1\n>>>>>>> REPLACE\n";
    for _ in 0..2 {
        world.model.push_reply(Reply::text(wrong));
    }
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(10, "average() crashes", &issue_body(), MAINTAINER),
        )
        .await;
    let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
    assert_eq!(session.status, SessionStatus::Failed);
    assert!(
        session
            .error_message
            .as_deref()
            .unwrap()
            .contains("draft pull request"),
        "{:?}",
        session.error_message
    );
    assert_eq!(
        world.model.requests().len(),
        2,
        "max_attempts from the repository config"
    );
    let pulls = world.github.pulls(REPO);
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].draft);
    assert!(pulls[0].body.contains("Not verified"), "{}", pulls[0].body);
    let runs = world.github.check_runs(REPO);
    assert_eq!(runs.last().unwrap().conclusion.as_deref(), Some("failure"));
    world.stop().await;
}
