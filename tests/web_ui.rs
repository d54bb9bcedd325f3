//! The web UI in a real browser: Debian's chromium driven by playwright-core
//! (`tests/browser/run.mjs`) against the real router and worker, the fake GitHub, the scripted
//! model and a real git server. Screenshots land in `target/browser-artifacts/`.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`), `node`, and `npm ci` in `tests/browser/`
//! (`scripts/test.sh` does both). Without them the test is skipped with a note, except in CI
//! (`CI=true`), where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use patchpilot::store::SessionStatus;
use serde_json::json;
use support::e2e::{MAINTAINER, PYTHON_FIX, PYTHON_REPRO, REPO, World, python_project};
use support::fake_model::Reply;
use support::server::API_TOKEN;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.exists().then_some(path)
}

fn missing(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("browser tests cannot run in CI: {what}");
    }
    eprintln!("skipping the browser tests: {what} (CI=true makes this a failure)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_ui_starts_follows_and_finds_sessions_in_a_real_browser() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let Some(chromium) = chromium() else {
        return missing("no chromium at /usr/bin/chromium (apt-get install chromium)");
    };
    if !browser_dir.join("node_modules/playwright-core").exists() {
        return missing("tests/browser/node_modules is missing (run `npm ci` there)");
    }

    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    // One fix for the GitHub session below, one for the session started in the form.
    world
        .model
        .push_reply(Reply::text(PYTHON_FIX).usage(1200, 150));
    world
        .model
        .push_reply(Reply::text(PYTHON_FIX).usage(900, 120));

    // A public repository's labelled issue: the session ends with a pull request.
    let mut payload = world.labeled_payload(
        3,
        "average() crashes on an empty list",
        &format!("`average([])` raises.\n\nrepro: {PYTHON_REPRO}\n"),
        MAINTAINER,
    );
    payload["repository"]["private"] = json!(false);
    let answer = world.deliver("issues", &payload).await;
    let pr_session = answer["sessionId"].as_str().unwrap().to_owned();
    let finished = world.finished(&pr_session).await;
    assert_eq!(
        finished.status,
        SessionStatus::Succeeded,
        "{}",
        world.events(&pr_session).await
    );

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    let run = tokio::process::Command::new("node")
        .arg("run.mjs")
        .current_dir(&browser_dir)
        .env("PATCHPILOT_URL", &world.url)
        .env("PATCHPILOT_API_TOKEN", API_TOKEN)
        .env("REPO_URL", format!("{}/{REPO}.git", world.git_base))
        .env(
            "MISSING_REPO_URL",
            format!("{}/octo/missing.git", world.git_base),
        )
        // A repro that takes a moment, so the page has steps to watch after the dropped stream.
        .env("REPRO", format!("sleep 2 && {PYTHON_REPRO}"))
        .env("PR_SESSION", &pr_session)
        .env("PR_REPOSITORY", REPO)
        .env("PR_ISSUE", "3")
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the browser tests finish within ten minutes")
        .expect("node runs (install nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser tests failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );
    for name in [
        "the start form names the wrong field",
        "moves through its steps live",
        "shows its pull request",
        "shows why it stopped",
        "filters by status, repository and issue",
        "a private session needs sign-in",
    ] {
        assert!(stdout.contains(name), "{name} ran:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    world.stop().await;
}
