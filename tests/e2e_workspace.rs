//! Issue 8, failures 1 and 2, end to end: a signed `issues.labeled` webhook drives the real
//! server, worker and sandbox (each tier) against the fake GitHub and the scripted model.
//!
//! 1. A Rust crate with a crates.io dependency, fetched by `setup_command`, becomes a verified
//!    pull request; a second session on the same repository downloads nothing.
//! 2. A repro that cannot start ends with "could not run in the sandbox", the command's own
//!    output, no model call and a check run that is not a success.

mod support;

use patchpilot::store::SessionStatus;
use support::e2e::{MAINTAINER, Options, REPO, World, python_project};
use support::fake_model::Reply;

const TIERS: [&str; 2] = ["bubblewrap", "landlock"];

fn rust_project() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "Cargo.toml",
            include_str!("fixtures/projects/rust-cfg-if/Cargo.toml"),
        ),
        (
            "Cargo.lock",
            include_str!("fixtures/projects/rust-cfg-if/Cargo.lock"),
        ),
        (
            "src/lib.rs",
            include_str!("fixtures/projects/rust-cfg-if/src/lib.rs"),
        ),
        (".gitignore", "/target\n"),
    ]
}

const RUST_FIX: &str = "Values above `high` are returned unchanged; return `high` instead.\n\nsrc/lib.rs\n<<<<<<< SEARCH\n            } else if value > high {\n                value\n=======\n            } else if value > high {\n                high\n>>>>>>> REPLACE\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rust_crate_with_a_crates_io_dependency_becomes_a_pull_request_in_both_tiers() {
    for tier in TIERS {
        let world = World::start_with(
            support::db::fresh_sqlite().await,
            &rust_project(),
            Options::tier(tier),
        )
        .await;
        world.github.set_file(
            REPO,
            "main",
            ".github/patchpilot.yml",
            "setup_command: cargo fetch --locked\n",
        );
        let body = "clamp(15, 0, 10) returns 15.\n\n### Steps to reproduce\n\n```sh\ncargo test --offline\n```\n";
        let mut setup_logs = Vec::new();
        for issue in [21, 22] {
            world.model.push_reply(Reply::text(RUST_FIX));
            let answer = world
                .deliver(
                    "issues",
                    &world.labeled_payload(
                        issue,
                        "clamp ignores the upper bound",
                        body,
                        MAINTAINER,
                    ),
                )
                .await;
            let session_id = answer["sessionId"].as_str().unwrap().to_owned();
            let session = world.finished(&session_id).await;
            let log = world.events(&session_id).await;
            assert_eq!(session.status, SessionStatus::Succeeded, "{tier}: {log}");
            let branch = format!("refs/heads/patchpilot/issue-{issue}");
            let fixed =
                support::git_http::file_at(&world.bare_repo(), &branch, "src/lib.rs").unwrap();
            assert!(
                fixed.contains("} else if value > high {\n                high"),
                "{fixed}"
            );
            let runs = world.github.check_runs(REPO);
            assert_eq!(runs.last().unwrap().conclusion.as_deref(), Some("success"));
            let summary = runs.last().unwrap().output["summary"].to_string();
            assert!(
                summary.contains("Toolchains that run in the sandbox: cargo"),
                "{summary}"
            );
            setup_logs.push(
                log.lines()
                    .filter(|l| l.starts_with("[setup]"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        // The first session downloaded the crate into the repository's cache; the second
        // found it there.
        assert!(
            setup_logs[0].contains("Downloaded cfg-if v1.0.0"),
            "{tier}: {}",
            setup_logs[0]
        );
        assert!(
            !setup_logs[1].contains("Downloaded"),
            "{tier}: {}",
            setup_logs[1]
        );
        let caches = std::fs::read_dir(world.data_dir.join("caches"))
            .unwrap()
            .count();
        assert_eq!(caches, 1, "one cache for the one repository");
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repro_that_cannot_start_is_reported_without_a_model_call_in_both_tiers() {
    for tier in TIERS {
        let world = World::start_with(
            support::db::fresh_sqlite().await,
            &python_project(),
            Options::tier(tier),
        )
        .await;
        let body = "Averages crash.\n\nrepro: some-tool-that-does-not-exist --check\n";
        let answer = world
            .deliver(
                "issues",
                &world.labeled_payload(31, "average() crashes", body, MAINTAINER),
            )
            .await;
        let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
        assert_eq!(session.status, SessionStatus::Failed, "{tier}");
        assert!(world.model.requests().is_empty(), "{tier}: no model call");
        // The progress comment is edited in place; its final text follows the status.
        world
            .wait_for("the final progress comment", |w| {
                w.github
                    .comments(REPO, 31)
                    .last()
                    .is_some_and(|c| c.body.contains("stopped"))
                    && w.github
                        .check_runs(REPO)
                        .last()
                        .is_some_and(|r| r.status == "completed")
            })
            .await;
        let comments = world.github.comments(REPO, 31);
        let last = &comments.last().unwrap().body;
        assert!(
            last.contains("could not run in the sandbox"),
            "{tier}: {last}"
        );
        assert!(
            last.contains("some-tool-that-does-not-exist: not found"),
            "{tier}: the command's own output: {last}"
        );
        assert!(last.contains("```"), "fenced: {last}");
        assert!(
            last.contains("setup_command"),
            "says what to change: {last}"
        );
        assert!(!last.contains("reproduced: the command fails"), "{last}");
        let run = world.github.check_runs(REPO).last().cloned().unwrap();
        assert_eq!(run.status, "completed");
        assert_ne!(run.conclusion.as_deref(), Some("success"));
        assert!(world.github.pulls(REPO).is_empty());
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_test_runner_is_not_a_reproduction() {
    let world = World::start_with(
        support::db::fresh_sqlite().await,
        &python_project(),
        Options::tier("landlock"),
    )
    .await;
    // A venv without pytest: the runner is missing, the bug is not shown.
    world.github.set_file(
        REPO,
        "main",
        ".github/patchpilot.yml",
        "setup_command: python3 -m venv --without-pip .venv\n",
    );
    let body = "Averages crash.\n\nrepro: .venv/bin/python -m pytest -q test_calc.py\n";
    let answer = world
        .deliver(
            "issues",
            &world.labeled_payload(32, "average() crashes", body, MAINTAINER),
        )
        .await;
    let session = world.finished(answer["sessionId"].as_str().unwrap()).await;
    assert_eq!(session.status, SessionStatus::Failed);
    assert!(world.model.requests().is_empty(), "no model call");
    let error = session.error_message.unwrap_or_default();
    assert!(error.contains("could not run in the sandbox"), "{error}");
    assert!(error.contains("No module named pytest"), "{error}");
    world.stop().await;
}
