//! What a maintainer sees on GitHub at the end of a session, as snapshots: every comment on
//! the issue (the progress comment's final text), every check run (title, summary, text,
//! conclusion) and every pull request (title, body, branches, draft). Real router, worker,
//! pipeline, git, sandbox and octocrab against the fake GitHub and the scripted model.
//!
//! Volatile parts are replaced by stable placeholders before the comparison (see
//! [`normalise`]): session ids, loopback addresses with their ports, commit shas, temporary
//! paths and timings. The snapshots live in `tests/snapshots/`; a changed wording shows up as
//! a diff there, reviewed like code.

mod support;

use patchpilot::store::{Session, SessionStatus};
use regex::Regex;
use support::e2e::{MAINTAINER, Options, PYTHON_FIX, PYTHON_REPRO, REPO, World, python_project};
use support::fake_model::Reply;
use support::git_http::git;

fn issue_body() -> String {
    format!(
        "`average([])` crashes with ZeroDivisionError instead of returning 0.\n\nrepro: {PYTHON_REPRO}\n"
    )
}

/// Labels issue `number` as the maintainer (or `sender`) and waits for the session to end
/// and for what it posts to settle (every check run completed).
async fn run(world: &World, number: u64, body: &str, sender: &str) -> Session {
    let payload = world.labeled_payload(number, "average() crashes on an empty list", body, sender);
    let answer = world.deliver("issues", &payload).await;
    let session = world
        .finished(answer["sessionId"].as_str().expect("a session"))
        .await;
    world
        .wait_for("every check run to complete", |w| {
            w.github
                .check_runs(REPO)
                .iter()
                .all(|r| r.status == "completed")
        })
        .await;
    session
}

/// Everything on the fake GitHub a maintainer would read about issue `number`.
fn maintainer_view(world: &World, number: u64) -> String {
    let mut view = String::new();
    let reactions: Vec<String> = world
        .github
        .reactions(REPO)
        .iter()
        .map(|r| format!("{} on {} by {}", r.content, r.target, r.by))
        .collect();
    if !reactions.is_empty() {
        view += &format!("## reactions\n{}\n\n", reactions.join("\n"));
    }
    for (i, c) in world.github.comments(REPO, number).iter().enumerate() {
        view += &format!(
            "## comment {} on #{number} by {}{}\n{}\n\n",
            i + 1,
            c.author,
            if c.edits > 0 { " (edited)" } else { "" },
            c.body.trim_end()
        );
    }
    let refs = git(
        &world.bare_repo(),
        &["for-each-ref", "--format=%(objectname) %(refname:short)"],
    );
    let branch_of = |sha: &str| {
        refs.lines()
            .find_map(|l| l.strip_prefix(sha).map(|name| name.trim().to_owned()))
            .unwrap_or_else(|| "a commit on no branch".into())
    };
    for run in world.github.check_runs(REPO) {
        let text = |key: &str| run.output[key].as_str().unwrap_or("(none)").to_owned();
        view += &format!(
            "## check run {:?} on {} ({}, {})\nexternal id: {}\ndetails: {}\ntitle: {}\n### summary\n{}\n### text\n{}\n\n",
            run.name,
            branch_of(&run.head_sha),
            run.status,
            run.conclusion.as_deref().unwrap_or("no conclusion"),
            run.external_id.as_deref().unwrap_or("(none)"),
            run.details_url.as_deref().unwrap_or("(none)"),
            text("title"),
            text("summary").trim_end(),
            text("text").trim_end(),
        );
    }
    for pr in world.github.pulls(REPO) {
        view += &format!(
            "## pull request #{}{}: {}\n{} -> {}\n{}\n\n",
            pr.number,
            if pr.draft { " (draft)" } else { "" },
            pr.title,
            pr.head,
            pr.base,
            pr.body.trim_end()
        );
        for (i, c) in world.github.comments(REPO, pr.number).iter().enumerate() {
            view += &format!(
                "## comment {} on #{} by {}\n{}\n\n",
                i + 1,
                pr.number,
                c.author,
                c.body.trim_end()
            );
        }
    }
    if view.is_empty() {
        view = "(nothing on GitHub)\n".into();
    }
    view
}

/// Replaces what changes from run to run and machine to machine with placeholders: ids,
/// addresses, shas, times, this machine's sandbox set-up, and the output of the repository's
/// own commands (it depends on the installed Python and pytest, not on PatchPilot's wording;
/// the fence around it stays).
fn normalise(world: &World, sessions: &[&Session], text: &str) -> String {
    let mut text = text.to_owned();
    for (i, s) in sessions.iter().enumerate() {
        text = text.replace(&s.id, &format!("<session-{}>", i + 1));
    }
    text = text.replace(&world.git_base, "<git-server>");
    text = text.replace(&world.github.url, "<github>");
    text = text.replace(&world.data_dir.display().to_string(), "<data>");
    let rules = [
        (r"(?s)```text\n.*?\n```", "```text\n<command output>\n```"),
        (r"(?m) \(bwrap: .*$", " <bwrap path, uids and toolchains>"),
        (r"https?://127\.0\.0\.1:\d+", "<loopback>"),
        (r"\b[0-9a-f]{40}\b", "<sha>"),
        (r"\b[0-9a-f]{12}\b", "<short-sha>"),
        (
            r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z",
            "<timestamp>",
        ),
        (r"/tmp/[\w.-]+", "<tmp>"),
        (r"\b\d+(\.\d+)?\s?(ms|s)\b", "<time>"),
    ];
    for (pattern, placeholder) in rules {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, placeholder)
            .into_owned();
    }
    text
}

/// A world whose sandbox is bubblewrap on every machine (the tier is named in check runs).
async fn world() -> World {
    World::start_with(
        support::db::fresh_sqlite().await,
        &python_project(),
        Options::tier("bubblewrap"),
    )
    .await
}

macro_rules! snapshot {
    ($name:literal, $world:expr, $sessions:expr, $issue:expr) => {{
        let view = maintainer_view(&$world, $issue);
        insta::assert_snapshot!($name, normalise(&$world, $sessions, &view));
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verified_fix_opens_a_pull_request() {
    let world = world().await;
    world
        .model
        .push_reply(Reply::text(PYTHON_FIX).usage(1200, 150));

    let session = run(&world, 1, &issue_body(), MAINTAINER).await;

    assert_eq!(session.status, SessionStatus::Succeeded);
    snapshot!("verified_fix", world, &[&session], 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repro_that_passes_is_not_a_reproduction() {
    let world = world().await;
    let body = "Totals look wrong.\n\nrepro: python3 -m pytest -q -p no:cacheprovider test_calc.py -k test_total\n";

    let session = run(&world, 2, body, MAINTAINER).await;

    assert_eq!(session.status, SessionStatus::NotReproduced);
    snapshot!("repro_passes", world, &[&session], 2);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repro_that_cannot_start_says_what_to_change() {
    let world = world().await;
    let body = "Averages crash.\n\nrepro: some-tool-that-does-not-exist --check\n";

    let session = run(&world, 3, body, MAINTAINER).await;

    assert_eq!(session.status, SessionStatus::Failed);
    snapshot!("repro_cannot_start", world, &[&session], 3);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fix_that_never_verifies_stops_without_a_pull_request() {
    let world = world().await;
    let useless = "Try this.\n\nREADME.md\n<<<<<<< SEARCH\n# calc\n=======\n# calc (fixed?)\n>>>>>>> REPLACE\n";
    for _ in 0..3 {
        world.model.push_reply(Reply::text(useless));
    }

    let session = run(&world, 4, &issue_body(), MAINTAINER).await;

    assert_eq!(session.status, SessionStatus::Failed);
    snapshot!("fix_never_verifies", world, &[&session], 4);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_attempts_with_draft_configured_opens_an_unverified_draft() {
    let world = world().await;
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

    let session = run(&world, 5, &issue_body(), MAINTAINER).await;

    assert_eq!(session.status, SessionStatus::Failed);
    snapshot!("unverified_draft", world, &[&session], 5);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_label_from_someone_without_write_access_is_refused() {
    let world = world().await;
    world.github.set_role(REPO, "drive-by", "read");

    let session = run(&world, 6, &issue_body(), "drive-by").await;

    assert_eq!(session.status, SessionStatus::Rejected);
    snapshot!("refused_trigger", world, &[&session], 6);
    world.stop().await;
}
