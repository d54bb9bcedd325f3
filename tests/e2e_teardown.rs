//! The end-to-end world holds the line: a GitHub call the fake could not answer fails the
//! test when the world is torn down (stopped or only dropped), and a hung step ends its wait
//! with a report naming the session, its status and its last events.
//!
//! The fake is told to forget one route it normally serves ([`FakeGitHub::forget_route`], a
//! test-only hook), so the real pipeline makes a call the fake does not know.

mod support;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::http::Method;
use futures::FutureExt as _;
use patchpilot::store::SessionStatus;
use support::e2e::{MAINTAINER, World, python_project};

/// The text of a caught panic.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

const PASSING_REPRO: &str = "Totals look wrong.\n\nrepro: python3 -m pytest -q -p no:cacheprovider test_calc.py -k test_total\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_the_fake_cannot_answer_fails_the_test_when_the_world_stops() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world
        .github
        .forget_route(Method::POST, "/issues/41/reactions");
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(41, "total() is wrong", PASSING_REPRO, MAINTAINER),
        )
        .await;
    let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
    assert_eq!(session.status, SessionStatus::NotReproduced);

    let failure = AssertUnwindSafe(world.stop()).catch_unwind().await;

    let text = panic_text(failure.expect_err("the teardown check fails the test"));
    insta::assert_snapshot!(text, @"
    the fake GitHub could not answer 1 call(s); give each legitimate one a real route in tests/support/fake_github/, anything else is a bug:
    POST /repos/octo/calc/issues/41/reactions answered 404 (the fake has no route POST /repos/octo/calc/issues/41/reactions)
    ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_world_that_is_only_dropped_still_fails_on_a_call_the_fake_cannot_answer() {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world
        .github
        .forget_route(Method::GET, "/collaborators/maintainer/permission");
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(42, "total() is wrong", PASSING_REPRO, MAINTAINER),
        )
        .await;
    world.finished(answer["sessionId"].as_str().unwrap()).await;

    let failure = std::panic::catch_unwind(AssertUnwindSafe(move || drop(world)));

    let text = panic_text(failure.expect_err("dropping the world runs the teardown check"));
    assert!(
        text.contains(
            "GET /repos/octo/calc/collaborators/maintainer/permission answered 404 \
             (the fake has no route GET /repos/octo/calc/collaborators/maintainer/permission)"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_step_ends_the_wait_naming_the_session_its_status_and_last_events() {
    let mut world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    let body = "Hangs.\n\nrepro: sleep 600\n";
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(43, "hang", body, MAINTAINER),
        )
        .await;
    let session_id = answer["sessionId"].as_str().unwrap().to_owned();
    world.wait_for_event(&session_id, "$ sleep 600").await;

    world.set_wait_timeout(Duration::from_secs(1));
    let failure = AssertUnwindSafe(world.finished(&session_id))
        .catch_unwind()
        .await;

    let text = panic_text(failure.expect_err("the wait times out"));
    let first_lines: Vec<&str> = text.lines().take(2).collect();
    assert_eq!(
        first_lines,
        [
            format!("timed out after 1s waiting for session {session_id} to finish"),
            format!("session {session_id} (label on octo/calc#43): running"),
        ],
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().contains("$ sleep 600"),
        "the last event is the hung command: {text}"
    );

    world.set_wait_timeout(support::e2e::WAIT_TIMEOUT);
    let cancel = world.comment_payload(43, "/patchpilot cancel", body, MAINTAINER);
    world.deliver("issue_comment", &cancel).await;
    assert_eq!(
        world.finished(&session_id).await.status,
        SessionStatus::Cancelled
    );
    world.stop().await;
}
