//! End to end, what a maintainer reads on GitHub: hostile text from the model and the repro
//! is neutralised, every check run ends, `/patchpilot status` tells the truth, the approved
//! repro command is the one that runs, bodies fit GitHub's limits, and public text carries no
//! operator addresses or relative links.

mod support;

use patchpilot::store::SessionStatus;
use regex::Regex;
use support::e2e::{MAINTAINER, Options, PYTHON_FIX, PYTHON_REPRO, REPO, World, python_project};
use support::fake_model::Reply;

/// Issue numbers GitHub would close on merge: a closing keyword, an optional colon, a
/// reference (`#N`, `owner/repo#N`, an issue URL).
fn closed_by(text: &str) -> Vec<String> {
    let keyword = Regex::new(
        r"(?i)\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s*(#\d+|[\w.-]+/[\w.-]+#\d+|https?://\S+/issues/\d+)",
    )
    .unwrap();
    keyword
        .captures_iter(text)
        .map(|c| c[1].to_owned())
        .collect()
}

/// `@login` or `@org/team` as GitHub would link (and notify) them.
fn mentions(text: &str) -> Vec<String> {
    let mention = Regex::new(r"(?:^|[^\w`])(@[A-Za-z0-9][\w-]*(?:/[\w-]+)?)").unwrap();
    mention
        .captures_iter(text)
        .map(|c| c[1].to_owned())
        .collect()
}

fn issue_body() -> String {
    format!("`average([])` crashes.\n\nrepro: {PYTHON_REPRO}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_model_summary_closes_only_its_issue_pings_nobody_and_every_check_run_ends() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let edits = PYTHON_FIX.split_once("\n\n").unwrap().1;
    let hostile = format!(
        "Closes #7, resolves #1 and fixes: #2. Thanks @alice and @acme/core! \
         <img src=\"http://x/pixel.png\">\n\n{edits}"
    );
    world.model.push_reply(Reply::text(hostile));
    let payload = world.labeled_payload(
        7,
        "average() crashes; fixes #3 @bob",
        &issue_body(),
        MAINTAINER,
    );
    let answer = world.deliver("issues", &payload).await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&session_id).await;
    let log = world.events(&session_id).await;
    assert_eq!(session.status, SessionStatus::Succeeded, "{log}");

    let pulls = world.github.pulls(REPO);
    assert_eq!(pulls.len(), 1);
    let body = &pulls[0].body;
    assert_eq!(closed_by(body), ["#7", "#7"], "{body}");
    assert!(body.contains("\n\nFixes #7\n\n"), "{body}");
    assert_eq!(mentions(body), Vec::<String>::new(), "{body}");
    assert!(!body.contains("<img"), "{body}");
    assert!(
        body.contains("&lt;img src="),
        "the HTML shows as text: {body}"
    );
    let title = &pulls[0].title;
    assert!(title.starts_with("Fix #7: average() crashes;"), "{title}");
    assert_eq!(closed_by(title), ["#7"], "only our own prefix: {title}");
    assert!(mentions(title).is_empty(), "{title}");
    // The commit on the branch closes only issue 7 too.
    let bare = world.bare_repo();
    let message =
        support::git_http::git(&bare, &["log", "-1", "--format=%B", "patchpilot/issue-7"]);
    assert_eq!(closed_by(&message), ["#7", "#7"], "{message}");
    assert!(mentions(&message).is_empty(), "{message}");
    // Nothing PatchPilot wrote on the issue pings anyone either.
    for comment in world.github.comments(REPO, 7) {
        assert!(mentions(&comment.body).is_empty(), "{}", comment.body);
    }

    // Every check run the fake saw is completed: the base commit's one too.
    let head = support::git_http::ref_sha(&bare, "refs/heads/patchpilot/issue-7").unwrap();
    let runs = world.github.check_runs(REPO);
    assert_eq!(
        runs.len(),
        2,
        "one on the base commit, one on the PR head: {runs:#?}"
    );
    for run in &runs {
        assert_eq!(
            (run.status.as_str(), run.conclusion.as_deref()),
            ("completed", Some("success")),
            "{run:#?}"
        );
    }
    let base_run = runs.iter().find(|r| r.head_sha != head).unwrap();
    let pointer = base_run.output["summary"].as_str().unwrap();
    assert!(
        pointer.starts_with(&format!(
            "PatchPilot's result is on the pull request's head commit `{}`",
            &head[..12]
        )),
        "{pointer}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_while_the_repro_runs_names_the_step() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let body = "Hangs.\n\nrepro: sleep 60\n";
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(11, "hang", body, MAINTAINER),
        )
        .await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    // Wait until the repro command is running in the sandbox.
    world.wait_for_event(&session_id, "$ sleep 60").await;
    let status = world.comment_payload(11, "/patchpilot status", body, MAINTAINER);
    world.deliver("issue_comment", &status).await;
    world
        .wait_for("the status reply", |w| {
            w.github
                .comments(REPO, 11)
                .iter()
                .any(|c| c.body.starts_with("The latest PatchPilot session"))
        })
        .await;
    let reply = world
        .github
        .comments(REPO, 11)
        .into_iter()
        .find(|c| c.body.starts_with("The latest PatchPilot session"))
        .unwrap();
    // The reply ends with its hidden idempotency marker (see `reporter::reply_once`).
    let (text, marker) = reply
        .body
        .split_once("\n\n<!-- patchpilot:reply-to=")
        .unwrap();
    assert!(marker.starts_with("comment-"), "{marker}");
    insta::assert_snapshot!(
        text.replace(&session_id, "<id>"),
        @"The latest PatchPilot session is running: **Reproduce the bug** ([details](https://patchpilot.example/sessions/<id>))."
    );
    let cancel = world.comment_payload(11, "/patchpilot cancel", body, MAINTAINER);
    world.deliver("issue_comment", &cancel).await;
    assert_eq!(
        world.finished(&session_id).await.status,
        SessionStatus::Cancelled
    );
    for run in world.github.check_runs(REPO) {
        assert_eq!(run.status, "completed", "{run:#?}");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_or_rerun_after_a_non_writer_edits_the_issue_runs_the_approved_command() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let approved = "python3 -m pytest -q -p no:cacheprovider test_calc.py -k test_total";
    let original = format!("Totals look wrong.\n\nrepro: {approved}\n");
    let first = world
        .deliver(
            "issues",
            &world.labeled_payload(12, "total() is wrong", &original, MAINTAINER),
        )
        .await;
    let first = world.finished(first["sessionId"].as_str().unwrap()).await;
    assert_eq!(
        first.status,
        SessionStatus::NotReproduced,
        "{:?}",
        first.error_message
    );

    // The issue's author (read access) rewrites the command, then a maintainer retries.
    let evil = "Totals look wrong.\n\nrepro: touch /tmp/h5-pwned-by-the-issue-author; false\n";
    world
        .github
        .add_issue(REPO, 12, "total() is wrong", evil, "reporter");
    let retry = world.comment_payload(12, "/patchpilot retry", evil, MAINTAINER);
    let second = world.deliver("issue_comment", &retry).await;
    let second_id = second["sessionId"].as_str().unwrap().to_owned();
    let second = world.finished(&second_id).await;
    assert_eq!(second.repro_command.as_deref(), Some(approved));
    let log = world.events(&second_id).await;
    assert!(log.contains(&format!("$ {approved}")), "{log}");
    assert!(!log.contains("h5-pwned"), "{log}");

    // "Re-run" on the check run: the same approved command.
    let rerun = world
        .deliver("check_run", &world.rerequested_payload(12, MAINTAINER))
        .await;
    let rerun_id = rerun["sessionId"].as_str().unwrap().to_owned();
    let rerun = world.finished(&rerun_id).await;
    assert_eq!(rerun.repro_command.as_deref(), Some(approved));
    assert!(!world.events(&rerun_id).await.contains("h5-pwned"));
    assert!(!std::path::Path::new("/tmp/h5-pwned-by-the-issue-author").exists());

    // A maintainer's `/patchpilot repro` takes the new command.
    let repro = world.comment_payload(12, "/patchpilot repro true", evil, MAINTAINER);
    let third = world.deliver("issue_comment", &repro).await;
    let third_id = third["sessionId"].as_str().unwrap().to_owned();
    let third = world.finished(&third_id).await;
    assert_eq!(third.repro_command.as_deref(), Some("true"));
    assert!(world.events(&third_id).await.contains("$ true"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn huge_hostile_repro_output_keeps_every_body_under_githubs_limit() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world
        .github
        .set_file(REPO, "main", ".github/patchpilot.yml", "max_attempts: 1\n");
    world.model.push_reply(Reply::text(PYTHON_FIX));
    // 600 kB of closing keywords: each defused one grows by a zero-width space, so the
    // tails PatchPilot shows outgrow GitHub's limit unless the bodies are bounded.
    let repro = "python3 -c \"print('closes #1 @x <b> ' * 40000); raise SystemExit(1)\"";
    let body = format!("Loud.\n\nrepro: {repro}\n");
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(13, "loud", &body, MAINTAINER),
        )
        .await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&session_id).await;
    assert_eq!(
        session.status,
        SessionStatus::Failed,
        "{:?}",
        session.error_message
    );

    let error = session.error_message.clone().unwrap_or_default();
    assert!(
        error.contains("no verified fix after 1 attempts"),
        "the model was asked and the fix verified (so both outputs are shown): {error}\n{}",
        world.events(&session_id).await
    );
    let runs = world.github.check_runs(REPO);
    let last = runs.last().unwrap();
    assert_eq!(last.conclusion.as_deref(), Some("failure"));
    let text = last.output["text"].as_str().unwrap();
    assert!(text.chars().count() <= 65_536, "{}", text.len());
    assert!(
        text.contains("✂️ Cut to fit GitHub's size limit")
            && text.ends_with(&format!(
                "The full text is on the [session page](https://patchpilot.example/sessions/{session_id})."
            )),
        "{:?} / after the fix shown: {}\n{}",
        session.error_message,
        text.contains("#### After the fix"),
        &text[text.len() - 400..]
    );
    assert_eq!(
        closed_by(text),
        Vec::<String>::new(),
        "keywords in the command and its output are defused too"
    );
    for comment in world.github.comments(REPO, 13) {
        assert!(comment.body.chars().count() <= 65_536);
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_public_url_and_with_the_model_down_public_text_has_no_links_or_addresses() {
    let options = Options {
        public_url: None,
        // Nothing listens there: the model client fails with its endpoint in the error.
        model_base_url: Some("http://127.0.0.1:9".into()),
        ..Options::default()
    };
    let world = World::start_with(
        support::db::fresh_sqlite().await,
        &python_project(),
        options,
    )
    .await;
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(14, "average() crashes", &issue_body(), MAINTAINER),
        )
        .await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&session_id).await;
    assert_eq!(session.status, SessionStatus::Failed);
    let error = session.error_message.unwrap();
    assert!(error.contains("model call failed"), "{error}");
    assert!(
        error.contains("127.0.0.1:9"),
        "the private record keeps the endpoint for the operator: {error}"
    );

    let comments = world.github.comments(REPO, 14);
    let progress = &comments[0].body;
    assert!(progress.contains("model call failed"), "{progress}");
    let runs = world.github.check_runs(REPO);
    let summaries: Vec<&str> = runs
        .iter()
        .map(|r| r.output["summary"].as_str().unwrap_or_default())
        .collect();
    for text in std::iter::once(progress.as_str()).chain(summaries) {
        assert!(!text.contains("127.0.0.1"), "{text}");
        assert!(!text.contains("http://"), "{text}");
        assert!(
            !text.contains("/sessions/"),
            "no relative session link: {text}"
        );
    }
    for run in &runs {
        assert_eq!(run.details_url, None, "{run:#?}");
        assert_eq!(run.status, "completed", "{run:#?}");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_repositorys_progress_comment_links_a_signed_page_that_works_without_the_token() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world.model.push_reply(Reply::text(PYTHON_FIX));
    let mut payload = world.labeled_payload(15, "average() crashes", &issue_body(), MAINTAINER);
    payload["repository"]["private"] = serde_json::json!(true);
    let answer = world.deliver("issues", &payload).await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&session_id).await;
    assert_eq!(session.status, SessionStatus::Succeeded);

    let progress = world.github.comments(REPO, 15)[0].body.clone();
    let link =
        Regex::new(r"https://patchpilot\.example(/sessions/[0-9a-f]+\?expires=\d+&sig=[0-9a-f]+)")
            .unwrap()
            .captures(&progress)
            .unwrap_or_else(|| panic!("a signed session link: {progress}"))[1]
            .to_owned();
    assert!(link.contains(&session_id), "{link}");
    let client = reqwest::Client::new();
    let signed = client
        .get(format!("{}{link}", world.url))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200, "the signed link opens the page");
    let bare = format!("{}/sessions/{session_id}", world.url);
    let unsigned = client.get(bare).send().await.unwrap();
    assert_eq!(
        unsigned.status(),
        401,
        "without the signature the page needs the token"
    );
    world.stop().await;
}
