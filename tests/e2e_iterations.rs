//! End to end: after the pull request. A maintainer's feedback, a review requesting changes
//! and CI failing on PatchPilot's branch each start one verified round that adds a commit on
//! top of the branch (never a force-push) and answers with one reply on the pull request.
//! Non-writers get no work, a failed round leaves the branch untouched and says why, and CI
//! never gets more than one round per head commit nor more than the per-PR cap.

mod support;

use std::time::Duration;

use patchpilot::store::SessionFilter;
use patchpilot::store::{Session, SessionStatus};
use serde_json::{Value, json};
use support::e2e::{
    INSTALLATION, MAINTAINER, Options, PYTHON_FIX, PYTHON_REPRO, REPO, World, python_project,
};
use support::fake_github::BOT_LOGIN;
use support::fake_github::iterations::CiJobSpec;
use support::fake_model::Reply;
use support::git_http::{file_at, git, ref_sha};

const BRANCH: &str = "patchpilot/issue-1";

/// The model's answer to "return 0.0 so the type stays float".
const FLOAT_FIX: &str = "Return a float for the empty list, as asked.\n\ncalc.py\n<<<<<<< SEARCH\n        return 0\n=======\n        return 0.0\n>>>>>>> REPLACE\n";

/// The pull request PatchPilot opened for issue 1.
struct Pr {
    first_session: String,
    number: u64,
    head: String,
}

async fn open_pull_request(world: &World) -> Pr {
    world.model.push_reply(Reply::text(PYTHON_FIX));
    let body = format!("`average([])` crashes with ZeroDivisionError.\n\nrepro: {PYTHON_REPRO}\n");
    let payload = world.labeled_payload(1, "average() crashes on an empty list", &body, MAINTAINER);
    let answer = world.deliver("issues", &payload).await;
    let first_session = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&first_session).await;
    assert_eq!(
        session.status,
        SessionStatus::Succeeded,
        "{:?}",
        session.error_message
    );
    world.github.comments(REPO, 1);
    let number = world.github.pulls(REPO)[0].number;
    let head = ref_sha(&world.bare_repo(), &format!("refs/heads/{BRANCH}")).unwrap();
    Pr {
        first_session,
        number,
        head,
    }
}

fn repository_json(world: &World) -> Value {
    json!({
        "full_name": REPO, "name": "calc", "owner": { "login": "octo" }, "private": false,
        "clone_url": format!("{}/{REPO}.git", world.git_base), "default_branch": "main",
    })
}

fn user(login: &str) -> Value {
    json!({ "login": login, "type": if login.ends_with("[bot]") { "Bot" } else { "User" } })
}

/// `/patchpilot <text>` on the pull request, as `issue_comment.created`.
fn pr_comment_payload(world: &World, pr: u64, text: &str, sender: &str) -> Value {
    let mut payload = world.comment_payload(pr, text, "", sender);
    payload["issue"]["pull_request"] = json!({ "url": "", "html_url": "" });
    payload
}

fn pull_request_json(pr: &Pr) -> Value {
    json!({ "number": pr.number, "user": user(BOT_LOGIN), "head": { "ref": BRANCH, "sha": pr.head } })
}

fn review_payload(world: &World, pr: &Pr, review_id: u64, by: &str) -> Value {
    let mut payload = support::example("pull_request_review", "submitted");
    payload["review"]["id"] = json!(review_id);
    payload["review"]["state"] = json!("changes_requested");
    payload["review"]["user"] = user(by);
    payload["sender"] = user(by);
    payload["pull_request"] = pull_request_json(pr);
    payload["repository"] = repository_json(world);
    payload["installation"] = json!({ "id": INSTALLATION });
    payload
}

fn review_comment_payload(
    world: &World,
    pr: &Pr,
    review_id: u64,
    comment_id: u64,
    by: &str,
) -> Value {
    let mut payload = support::example("pull_request_review_comment", "created");
    payload["comment"]["id"] = json!(comment_id);
    payload["comment"]["pull_request_review_id"] = json!(review_id);
    payload["comment"]["user"] = user(by);
    payload["sender"] = user(by);
    payload["pull_request"] = pull_request_json(pr);
    payload["repository"] = repository_json(world);
    payload["installation"] = json!({ "id": INSTALLATION });
    payload
}

fn workflow_run_payload(world: &World, run_id: u64, head: &str) -> Value {
    let mut payload = support::example("workflow_run", "completed");
    payload["workflow_run"]["id"] = json!(run_id);
    payload["workflow_run"]["head_branch"] = json!(BRANCH);
    payload["workflow_run"]["head_sha"] = json!(head);
    payload["workflow_run"]["conclusion"] = json!("failure");
    payload["workflow_run"]["status"] = json!("completed");
    payload["sender"] = user(BOT_LOGIN);
    payload["repository"] = repository_json(world);
    payload["installation"] = json!({ "id": INSTALLATION });
    payload
}

/// The iterations on the pull request, oldest first.
async fn iterations(world: &World, pr: u64) -> Vec<Session> {
    let filter = SessionFilter {
        repository: Some(REPO.into()),
        issue_number: Some(pr as i64),
        status: None,
        limit: 100,
    };
    let mut list = world.store.list_sessions(&filter).await.unwrap();
    list.retain(|s| s.parent_session_id.is_some());
    list.reverse();
    list
}

/// Waits for the `n`-th iteration on the pull request to exist and finish.
async fn nth_iteration(world: &World, pr: u64, n: usize) -> Session {
    let what = format!("iteration {n} on #{pr}");
    let session = world
        .within(&what, move || async move {
            iterations(world, pr).await.get(n - 1).cloned()
        })
        .await;
    world.finished(&session.id).await
}

/// Waits until every job (command jobs included) has been handled: none queued or running.
async fn settled(world: &World, db_url: &str) {
    let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
    let pool = &pool;
    world
        .within("every job to be handled", move || async move {
            let pending: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            (pending == 0).then_some(())
        })
        .await;
    pool.close().await;
}

/// A world on a fresh SQLite database, and the database's URL (to watch its job queue).
async fn start() -> (World, String) {
    let db = support::db::fresh_sqlite().await;
    let url = db.url.clone();
    (World::start(db, &python_project()).await, url)
}

fn branch_head(world: &World) -> String {
    ref_sha(&world.bare_repo(), &format!("refs/heads/{BRANCH}")).unwrap()
}

/// The parent of a commit in the fake git server.
fn parent_of(world: &World, sha: &str) -> String {
    git(&world.bare_repo(), &["rev-parse", &format!("{sha}^")])
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feedback_adds_a_verified_commit_on_the_branch_and_one_reply() {
    let (world, _db) = start().await;
    let pr = open_pull_request(&world).await;
    world.model.push_reply(Reply::text(FLOAT_FIX));

    let payload = pr_comment_payload(
        &world,
        pr.number,
        "/patchpilot please return 0.0 so the type stays float",
        MAINTAINER,
    );
    world.deliver("issue_comment", &payload).await;
    let round = nth_iteration(&world, pr.number, 1).await;
    assert_eq!(
        round.status,
        SessionStatus::Succeeded,
        "{}\n{:?}",
        world.events(&round.id).await,
        round.error_message
    );

    // A new commit on top of the reviewed head: nothing was force-pushed.
    let head = branch_head(&world);
    assert_ne!(head, pr.head);
    assert_eq!(parent_of(&world, &head), pr.head);
    let calc = file_at(&world.bare_repo(), &head, "calc.py").unwrap();
    assert!(calc.contains("        return 0.0\n"), "{calc}");
    let message = git(&world.bare_repo(), &["log", "-1", "--format=%s", &head]);
    assert_eq!(
        message.trim(),
        format!("Address feedback on #{}", pr.number)
    );

    // One reply on the pull request, edited in place, with the evidence.
    let comments: Vec<_> = world
        .github
        .comments(REPO, pr.number)
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let reply = &comments[0].body;
    assert!(
        reply.starts_with(&format!("<!-- patchpilot:session={} -->", round.id)),
        "{reply}"
    );
    assert!(
        reply.contains(&format!(
            "PatchPilot pushed `{}` to `{BRANCH}`",
            &head[..12]
        )),
        "{reply}"
    );
    assert!(reply.contains("nothing was force-pushed"), "{reply}");
    assert!(
        reply.contains("Return a float for the empty list"),
        "{reply}"
    );
    assert!(
        reply.contains(&format!("`{PYTHON_REPRO}` passes with this commit")),
        "{reply}"
    );
    assert!(reply.contains("2 passed"), "{reply}");
    assert!(comments[0].edits > 0, "edited in place");

    // The prompt carried the feedback, the pull request's diff and the latest repro output.
    let requests = world.model.requests();
    assert_eq!(requests.len(), 2);
    let prompt = requests[1].first_user_message();
    assert!(
        prompt.contains("please return 0.0 so the type stays float"),
        "{prompt}"
    );
    assert!(prompt.contains("+    if not values:"), "{prompt}");
    assert!(prompt.contains("2 passed"), "{prompt}");
    assert!(
        prompt.contains("average() crashes on an empty list"),
        "{prompt}"
    );

    // The round is a session linked to the first one, in the API; its check run is on the new head.
    let json: Value = world
        .client
        .get(format!("{}/api/sessions/{}", world.url, round.id))
        .bearer_auth(support::server::API_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["parentSessionId"], json!(pr.first_session), "{json}");
    assert_eq!(json["prNumber"], json!(pr.number), "{json}");
    assert_eq!(json["headSha"], json!(head), "{json}");
    let page = world
        .client
        .get(format!("{}/sessions/{}", world.url, round.id))
        .bearer_auth(support::server::API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("Round on pull request #{}", pr.number))
            && page.contains(&format!("href=\"/sessions/{}\"", pr.first_session)),
        "{page}"
    );
    let runs = world.github.check_runs(REPO);
    let on_head: Vec<_> = runs.iter().filter(|r| r.head_sha == head).collect();
    assert_eq!(on_head.len(), 1, "{runs:#?}");
    assert_eq!(on_head[0].conclusion.as_deref(), Some("success"));
    world.github.comments(REPO, 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_review_with_two_line_comments_is_one_round_with_both_in_the_prompt() {
    let (world, db) = start().await;
    let pr = open_pull_request(&world).await;
    let (review_id, comment_ids) = world.github.add_review(
        REPO,
        pr.number,
        MAINTAINER,
        "CHANGES_REQUESTED",
        "Two small things.",
        &[
            (
                "calc.py",
                2,
                "Spell the empty case out: `len(values) == 0`.",
            ),
            ("calc.py", 8, "total() is fine, leave it as it is."),
        ],
    );
    world.model.push_reply(Reply::text(
        "Spell the empty check out as asked.\n\ncalc.py\n<<<<<<< SEARCH\n    if not values:\n=======\n    if len(values) == 0:\n>>>>>>> REPLACE\n",
    ));

    // GitHub sends the review and one event per line comment: one round in all.
    world
        .deliver(
            "pull_request_review",
            &review_payload(&world, &pr, review_id, MAINTAINER),
        )
        .await;
    for id in &comment_ids {
        let payload = review_comment_payload(&world, &pr, review_id, *id, MAINTAINER);
        world.deliver("pull_request_review_comment", &payload).await;
    }
    let round = nth_iteration(&world, pr.number, 1).await;
    assert_eq!(
        round.status,
        SessionStatus::Succeeded,
        "{}\n{:?}",
        world.events(&round.id).await,
        round.error_message
    );
    settled(&world, &db).await;
    assert_eq!(
        iterations(&world, pr.number).await.len(),
        1,
        "one round for the review"
    );

    // Both comments, with file, line and the code around them, were in the prompt.
    let requests = world.model.requests();
    assert_eq!(requests.len(), 2, "one model call for the round");
    let prompt = requests[1].first_user_message();
    assert!(
        prompt.contains("Review comment 1 on `calc.py` line 2"),
        "{prompt}"
    );
    assert!(prompt.contains("Spell the empty case out"), "{prompt}");
    assert!(prompt.contains(">    2 |     if not values:"), "{prompt}");
    assert!(
        prompt.contains("Review comment 2 on `calc.py` line 8"),
        "{prompt}"
    );
    assert!(
        prompt.contains("total() is fine, leave it as it is."),
        "{prompt}"
    );
    assert!(
        prompt.contains(">    8 |     return sum(values)"),
        "{prompt}"
    );
    assert!(prompt.contains("Two small things."), "{prompt}");

    // One commit on top; the reply names the comments.
    let head = branch_head(&world);
    assert_eq!(parent_of(&world, &head), pr.head);
    let calc = file_at(&world.bare_repo(), &head, "calc.py").unwrap();
    assert!(calc.contains("    if len(values) == 0:\n"), "{calc}");
    let comments = world.github.comments(REPO, pr.number);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let reply = &comments[0].body;
    assert!(
        reply.contains("This round answers the review from @maintainer (2 comments)"),
        "{reply}"
    );
    assert!(
        reply.contains(
            "- `calc.py` line 2: “Spell the empty case out: `len(values) == 0`.” — addressed"
        ),
        "{reply}"
    );
    assert!(
        reply.contains("- `calc.py` line 8: “total() is fine, leave it as it is.” — addressed"),
        "{reply}"
    );
    world.github.comments(REPO, 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_ci_on_its_branch_gets_one_round_per_head_and_never_loops() {
    let (world, db) = start().await;
    world
        .github
        .set_file(REPO, "main", ".github/patchpilot.yml", "max_ci_fixes: 1\n");
    let pr = open_pull_request(&world).await;
    let run = world.github.add_workflow_run(
        REPO,
        &pr.head,
        &[
            CiJobSpec {
                name: "lint",
                conclusion: "failure",
                log: "2026-11-01T00:00:59Z calc.py:3:16: W291 trailing whitespace in the guard\n##[error]Process completed with exit code 1.\n",
                annotations: &[("calc.py", 3, "flake8: use `return 0.0` in the guard (E999 style)")],
            },
            CiJobSpec {
                name: "test",
                conclusion: "success",
                log: "all green",
                annotations: &[],
            },
        ],
    );
    world.model.push_reply(Reply::text(FLOAT_FIX));

    // The failure arrives twice (a redelivery, and a second workflow of the same push).
    world
        .deliver("workflow_run", &workflow_run_payload(&world, run, &pr.head))
        .await;
    world
        .deliver("workflow_run", &workflow_run_payload(&world, run, &pr.head))
        .await;
    let round = nth_iteration(&world, pr.number, 1).await;
    assert_eq!(
        round.status,
        SessionStatus::Succeeded,
        "{}\n{:?}",
        world.events(&round.id).await,
        round.error_message
    );
    settled(&world, &db).await;

    // The failed job's annotation and log were in the prompt; one commit was pushed.
    let requests = world.model.requests();
    assert_eq!(requests.len(), 2);
    let prompt = requests[1].first_user_message();
    assert!(prompt.contains("Failed CI job `lint`"), "{prompt}");
    assert!(
        prompt.contains("flake8: use `return 0.0` in the guard"),
        "{prompt}"
    );
    assert!(
        prompt.contains("W291 trailing whitespace in the guard"),
        "{prompt}"
    );
    assert!(!prompt.contains("all green"), "only failed jobs are read");
    let head = branch_head(&world);
    assert_eq!(parent_of(&world, &head), pr.head);
    let message = git(&world.bare_repo(), &["log", "-1", "--format=%s", &head]);
    assert_eq!(message.trim(), format!("Fix CI failure on #{}", pr.number));
    let comments = world.github.comments(REPO, pr.number);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(
        comments[0].body.contains("fixes the CI failure on"),
        "{}",
        comments[0].body
    );

    // The same head failing again is not a second round.
    world
        .deliver("workflow_run", &workflow_run_payload(&world, run, &pr.head))
        .await;
    settled(&world, &db).await;
    assert_eq!(iterations(&world, pr.number).await.len(), 1);

    // CI failing on PatchPilot's own push: the cap (1) is reached, said once, no loop.
    let second = world.github.add_workflow_run(
        REPO,
        &head,
        &[CiJobSpec {
            name: "lint",
            conclusion: "failure",
            log: "still unhappy",
            annotations: &[],
        }],
    );
    world
        .deliver("workflow_run", &workflow_run_payload(&world, second, &head))
        .await;
    settled(&world, &db).await;
    world
        .deliver("workflow_run", &workflow_run_payload(&world, second, &head))
        .await;
    settled(&world, &db).await;
    assert_eq!(
        iterations(&world, pr.number).await.len(),
        1,
        "no second round"
    );
    assert_eq!(world.model.requests().len(), 2, "no model call");
    assert_eq!(branch_head(&world), head, "nothing pushed");
    let comments = world.github.comments(REPO, pr.number);
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert!(
        comments[1]
            .body
            .contains("already made 1 fix-up round on this pull request"),
        "{}",
        comments[1].body
    );
    assert!(comments[1].body.contains("`max_ci_fixes`"));
    world.github.comments(REPO, 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feedback_or_a_review_by_a_non_writer_starts_no_work() {
    let (world, db) = start().await;
    let pr = open_pull_request(&world).await;
    world.github.set_role(REPO, "passer-by", "read");

    let payload = pr_comment_payload(
        &world,
        pr.number,
        "/patchpilot rewrite it in Rust",
        "passer-by",
    );
    world.deliver("issue_comment", &payload).await;
    let (review_id, _) = world.github.add_review(
        REPO,
        pr.number,
        "passer-by",
        "CHANGES_REQUESTED",
        "Please change everything.",
        &[("calc.py", 2, "No.")],
    );
    world
        .deliver(
            "pull_request_review",
            &review_payload(&world, &pr, review_id, "passer-by"),
        )
        .await;
    // A bot's review never gets as far as a job.
    world
        .deliver(
            "pull_request_review",
            &review_payload(&world, &pr, review_id, "dependabot[bot]"),
        )
        .await;
    world
        .wait_for("the permission checks", |w| {
            w.github
                .count(reqwest::Method::GET, "/collaborators/passer-by/permission")
                >= 2
        })
        .await;
    settled(&world, &db).await;

    assert!(iterations(&world, pr.number).await.is_empty());
    assert_eq!(
        world.model.requests().len(),
        1,
        "only the first session asked the model"
    );
    assert_eq!(branch_head(&world), pr.head);
    let ours: Vec<_> = world
        .github
        .comments(REPO, pr.number)
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert!(ours.is_empty(), "{ours:#?}");
    world.github.comments(REPO, 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_round_leaves_the_branch_untouched_and_says_why() {
    let (world, _db) = start().await;
    let pr = open_pull_request(&world).await;
    let breaks_it = "Return one instead.\n\ncalc.py\n<<<<<<< SEARCH\n        return 0\n=======\n        return 1\n>>>>>>> REPLACE\n";
    for _ in 0..3 {
        world.model.push_reply(Reply::text(breaks_it));
    }

    let payload = pr_comment_payload(
        &world,
        pr.number,
        "/patchpilot make the empty average 1",
        MAINTAINER,
    );
    world.deliver("issue_comment", &payload).await;
    let round = nth_iteration(&world, pr.number, 1).await;
    assert_eq!(round.status, SessionStatus::Failed);

    assert_eq!(branch_head(&world), pr.head, "the branch is untouched");
    let comments: Vec<_> = world
        .github
        .comments(REPO, pr.number)
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let reply = &comments[0].body;
    assert!(
        reply.contains("### PatchPilot did not push anything"),
        "{reply}"
    );
    assert!(
        reply.contains(&format!(
            "The branch `{BRANCH}` is as it was (still at `{}`)",
            &pr.head[..12]
        )),
        "{reply}"
    );
    assert!(reply.contains("**Why:** no verified fix after"), "{reply}");
    assert!(reply.contains("/patchpilot <what to change>"), "{reply}");
    let error = round.error_message.unwrap_or_default();
    assert!(error.contains("no verified fix after"), "{error}");
    // No check run was put on the unchanged head by the failed round.
    let runs = world.github.check_runs(REPO);
    assert!(
        runs.iter()
            .all(|r| r.conclusion.as_deref() != Some("failure")),
        "{runs:#?}"
    );
    world.github.comments(REPO, 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ci_round_that_failed_is_not_tried_again_for_the_same_head() {
    let (world, db) = start().await;
    let pr = open_pull_request(&world).await;
    let run = world.github.add_workflow_run(
        REPO,
        &pr.head,
        &[CiJobSpec {
            name: "test",
            conclusion: "failure",
            log: "FAILED test_calc.py::test_total",
            annotations: &[],
        }],
    );
    let breaks_it = "Return one.\n\ncalc.py\n<<<<<<< SEARCH\n        return 0\n=======\n        return 1\n>>>>>>> REPLACE\n";
    for _ in 0..3 {
        world.model.push_reply(Reply::text(breaks_it));
    }
    world
        .deliver("workflow_run", &workflow_run_payload(&world, run, &pr.head))
        .await;
    let round = nth_iteration(&world, pr.number, 1).await;
    assert_eq!(
        round.status,
        SessionStatus::Failed,
        "{:?}",
        round.error_message
    );
    let calls = world.model.requests().len();

    // The branch is still at the failed head; the same failure again is not a new round.
    world
        .deliver("workflow_run", &workflow_run_payload(&world, run, &pr.head))
        .await;
    settled(&world, &db).await;
    assert_eq!(iterations(&world, pr.number).await.len(), 1);
    assert_eq!(world.model.requests().len(), calls);
    assert_eq!(branch_head(&world), pr.head);
    let comments = world.github.comments(REPO, pr.number);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(
        comments[0].body.contains("did not push anything"),
        "{}",
        comments[0].body
    );
    world.github.comments(REPO, 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_request_while_a_round_runs_is_answered_not_raced() {
    let (world, db) = start().await;
    let pr = open_pull_request(&world).await;
    world
        .model
        .push_reply(Reply::text(FLOAT_FIX).delay(Duration::from_secs(2)));

    let first = pr_comment_payload(
        &world,
        pr.number,
        "/patchpilot please return 0.0",
        MAINTAINER,
    );
    world.deliver("issue_comment", &first).await;
    world
        .wait_for("the model call of the first round", |w| {
            w.model.requests().len() == 2
        })
        .await;
    let second = pr_comment_payload(
        &world,
        pr.number,
        "/patchpilot and add a docstring",
        MAINTAINER,
    );
    world.deliver("issue_comment", &second).await;
    settled(&world, &db).await;

    let rounds = iterations(&world, pr.number).await;
    assert_eq!(rounds.len(), 2, "{rounds:#?}");
    assert_eq!(
        rounds[0].status,
        SessionStatus::Succeeded,
        "{:?}",
        rounds[0].error_message
    );
    assert_eq!(
        rounds[1].status,
        SessionStatus::Rejected,
        "{:?}",
        rounds[1].error_message
    );
    assert_eq!(
        world.model.requests().len(),
        2,
        "the second request asked no model"
    );
    let head = branch_head(&world);
    assert_eq!(parent_of(&world, &head), pr.head, "one commit");
    let comments: Vec<_> = world
        .github
        .comments(REPO, pr.number)
        .into_iter()
        .filter(|c| c.author == BOT_LOGIN)
        .collect();
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert!(
        comments
            .iter()
            .any(|c| c.body.contains("PatchPilot pushed")),
        "{comments:#?}"
    );
    assert!(
        comments
            .iter()
            .any(|c| c.body.contains("PatchPilot is already working on this")
                && c.body.contains(&format!("/sessions/{}", rounds[0].id))),
        "{comments:#?}"
    );
    world.github.comments(REPO, 1);
    world.stop().await;
}

fn check_suite_payload(world: &World, suite_id: u64, head: &str, app_id: u64) -> Value {
    let mut payload = support::example("check_suite", "completed");
    payload["check_suite"]["id"] = json!(suite_id);
    payload["check_suite"]["head_branch"] = json!(BRANCH);
    payload["check_suite"]["head_sha"] = json!(head);
    payload["check_suite"]["conclusion"] = json!("failure");
    payload["check_suite"]["app"]["id"] = json!(app_id);
    payload["sender"] = user(BOT_LOGIN);
    payload["repository"] = repository_json(world);
    payload["installation"] = json!({ "id": INSTALLATION });
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_ci_apps_failed_check_suite_gets_a_round_and_ours_never_does() {
    let (world, db) = start().await;
    let pr = open_pull_request(&world).await;
    // PatchPilot's own check suite failing (say, after a failed round) asks for nothing.
    let ours = check_suite_payload(&world, 1, &pr.head, support::fake_github::TEST_APP_ID);
    let answer = world.deliver("check_suite", &ours).await;
    assert_eq!(
        answer["outcome"],
        json!("ignored: PatchPilot's own check suite"),
        "{answer}"
    );

    let suite = world.github.add_check_suite(
        REPO,
        &pr.head,
        &[CiJobSpec {
            name: "mypy",
            conclusion: "failure",
            log: "calc.py:3: error: Incompatible return value type (got \"int\", expected \"float\")",
            annotations: &[("calc.py", 3, "mypy: return a float here")],
        }],
    );
    world.model.push_reply(Reply::text(FLOAT_FIX));
    world
        .deliver(
            "check_suite",
            &check_suite_payload(&world, suite, &pr.head, 15368),
        )
        .await;
    let round = nth_iteration(&world, pr.number, 1).await;
    assert_eq!(
        round.status,
        SessionStatus::Succeeded,
        "{:?}",
        round.error_message
    );
    settled(&world, &db).await;
    let prompt = world.model.requests()[1].first_user_message();
    assert!(prompt.contains("Failed CI job `mypy`"), "{prompt}");
    assert!(prompt.contains("mypy: return a float here"), "{prompt}");
    assert!(
        prompt.contains("Incompatible return value type"),
        "{prompt}"
    );
    let head = branch_head(&world);
    assert_eq!(parent_of(&world, &head), pr.head);
    assert_eq!(world.github.comments(REPO, pr.number).len(), 1);
    world.github.comments(REPO, 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_on_the_issue_while_a_round_runs_on_its_pull_request_waits_its_turn() {
    let (world, db) = start().await;
    let pr = open_pull_request(&world).await;
    world
        .model
        .push_reply(Reply::text(FLOAT_FIX).delay(Duration::from_secs(2)));
    let round = pr_comment_payload(&world, pr.number, "/patchpilot return 0.0", MAINTAINER);
    world.deliver("issue_comment", &round).await;
    world
        .wait_for("the model call of the round", |w| {
            w.model.requests().len() == 2
        })
        .await;

    // The issue's own branch is the pull request's head: a retry there would push over the
    // round's commit.
    let body = format!("`average([])` crashes with ZeroDivisionError.\n\nrepro: {PYTHON_REPRO}\n");
    let retry = world.comment_payload(1, "/patchpilot retry", &body, MAINTAINER);
    world.deliver("issue_comment", &retry).await;
    settled(&world, &db).await;

    let rounds = iterations(&world, pr.number).await;
    assert_eq!(rounds.len(), 1, "{rounds:#?}");
    assert_eq!(
        rounds[0].status,
        SessionStatus::Succeeded,
        "{:?}",
        rounds[0].error_message
    );
    let filter = SessionFilter {
        repository: Some(REPO.into()),
        issue_number: Some(1),
        status: None,
        limit: 100,
    };
    let issue_sessions = world.store.list_sessions(&filter).await.unwrap();
    let retried: Vec<_> = issue_sessions
        .iter()
        .filter(|s| s.id != pr.first_session)
        .collect();
    assert_eq!(retried.len(), 1, "{issue_sessions:#?}");
    assert_eq!(
        retried[0].status,
        SessionStatus::Rejected,
        "{:?}",
        retried[0].error_message
    );
    assert_eq!(world.model.requests().len(), 2, "the retry asked no model");
    let head = branch_head(&world);
    assert_eq!(
        parent_of(&world, &head),
        pr.head,
        "the round's commit stands"
    );
    let answered =
        world.github.comments(REPO, 1).into_iter().any(|c| {
            c.author == BOT_LOGIN && c.body.contains("PatchPilot is already working on this")
        });
    assert!(answered, "the retry is answered on the issue");
    world.stop().await;
}

/// A round's verification runs a command the repository controls: if it swaps the edited file
/// for a link to a host file after passing, the round pushes nothing, in both sandbox tiers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_round_whose_repro_swaps_the_edited_file_for_a_host_link_pushes_nothing() {
    for tier in ["bubblewrap", "landlock"] {
        let host = tempfile::tempdir().unwrap();
        let secret = format!("host-secret-{}", std::process::id());
        let host_file = host.path().join("secret.txt");
        std::fs::write(&host_file, &secret).unwrap();
        // Harmless until the file holds the round's fix (`return 0.0`): then, after the tests
        // pass, it replaces calc.py with a link to the host file.
        let repro = format!(
            "{PYTHON_REPRO}; s=$?; if grep -q 'return 0.0' calc.py; then ln -sf {} calc.py; fi; exit $s",
            host_file.display()
        );
        let world = World::start_with(
            support::db::fresh_sqlite().await,
            &python_project(),
            Options::tier(tier),
        )
        .await;
        world.model.push_reply(Reply::text(PYTHON_FIX));
        let body = format!("`average([])` crashes with ZeroDivisionError.\n\nrepro: {repro}\n");
        let payload =
            world.labeled_payload(1, "average() crashes on an empty list", &body, MAINTAINER);
        let answer = world.deliver("issues", &payload).await;
        let first = world.finished(answer["sessionId"].as_str().unwrap()).await;
        assert_eq!(
            first.status,
            SessionStatus::Succeeded,
            "[{tier}] {:?}",
            first.error_message
        );
        let number = world.github.pulls(REPO)[0].number;
        let head = branch_head(&world);

        world.model.push_reply(Reply::text(FLOAT_FIX));
        let feedback = pr_comment_payload(&world, number, "/patchpilot return 0.0", MAINTAINER);
        world.deliver("issue_comment", &feedback).await;
        let round = nth_iteration(&world, number, 1).await;
        assert_eq!(
            round.status,
            SessionStatus::Failed,
            "[{tier}] {:?}",
            round.error_message
        );
        let error = round.error_message.clone().unwrap_or_default();
        assert!(error.contains("calc.py"), "[{tier}] {error}");
        assert_eq!(
            branch_head(&world),
            head,
            "[{tier}] the branch is as it was"
        );
        let objects = git(
            &world.bare_repo(),
            &["cat-file", "--batch-all-objects", "--batch"],
        );
        assert!(
            !objects.contains(&secret),
            "[{tier}] host content reached the repository"
        );
        let told = world
            .github
            .comments(REPO, number)
            .into_iter()
            .any(|c| c.author == BOT_LOGIN && c.body.contains("calc.py"));
        assert!(told, "[{tier}] the reply says why");
        world.stop().await;
    }
}
