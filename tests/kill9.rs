//! kill -9 anywhere. Real `patchpilot serve` processes are SIGKILLed while a session is in a
//! step, and right after GitHub carried out one of its writes but before the replica could
//! record it (the fake GitHub and a git `post-receive` hook do the killing, so no product hook
//! is needed). Another replica takes the session over once the lease runs out. Every session
//! must end visibly, with no duplicate comment, check run, branch or pull request.
//!
//! And the single SQLite server, SIGKILLed under webhook load and restarted: every delivery it
//! answered 2xx is still known, and its redelivery is recognised as a duplicate.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use patchpilot::store::SessionStatus;
use support::e2e::{PYTHON_FIX, PYTHON_REPRO, REPO, python_project};
use support::fake_github::KillSwitch;
use support::fake_model::Reply;
use support::replicas::{Cluster, Replica, install_hook};

const LEASE_SECS: u64 = 3;

/// Where a replica dies.
#[derive(Clone, Copy, Debug)]
enum KillPoint {
    /// SIGKILL once the session's events show the step started.
    InStep(&'static str),
    /// Right after GitHub created the progress comment.
    AfterCommentPost,
    /// Right after GitHub created the first check run.
    AfterCheckRunPost,
    /// Right after the branch was pushed (a `post-receive` hook).
    AfterPush,
    /// Right after GitHub opened the pull request.
    AfterPullRequestPost,
}

const SCENARIOS: [KillPoint; 7] = [
    KillPoint::InStep("clone"),
    KillPoint::InStep("reproduce"),
    KillPoint::InStep("patch"),
    KillPoint::AfterCommentPost,
    KillPoint::AfterCheckRunPost,
    KillPoint::AfterPush,
    KillPoint::AfterPullRequestPost,
];

fn issue_body(repro: &str) -> String {
    format!(
        "`average([])` crashes with ZeroDivisionError instead of returning 0.\n\nrepro: {repro}\n"
    )
}

/// Arms the kill point for `issue` against `victim`.
fn arm(
    cluster: &Cluster,
    point: KillPoint,
    issue: u64,
    victim: &Replica,
    kill_dir: &std::path::Path,
) {
    let pid = victim.pid();
    let switch = |method: Method, path: String, body: String| KillSwitch {
        method,
        path_contains: path,
        body_contains: body,
        pid,
    };
    match point {
        KillPoint::InStep(_) => {}
        KillPoint::AfterCommentPost => cluster.github.kill_after(switch(
            Method::POST,
            format!("/repos/{REPO}/issues/{issue}/comments"),
            "patchpilot:session=".into(),
        )),
        KillPoint::AfterCheckRunPost => cluster.github.kill_after(switch(
            Method::POST,
            format!("/repos/{REPO}/check-runs"),
            format!("patchpilot:issue={issue}\""),
        )),
        KillPoint::AfterPullRequestPost => cluster.github.kill_after(switch(
            Method::POST,
            format!("/repos/{REPO}/pulls"),
            format!("patchpilot/issue-{issue}\""),
        )),
        KillPoint::AfterPush => {
            std::fs::write(kill_dir.join(format!("issue-{issue}")), pid.to_string()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_anywhere_leaves_no_duplicates_and_no_silent_session() {
    let Some(cluster) = Cluster::start(&python_project()).await else {
        return;
    };
    // Every model answer takes a moment, so the patch step can be caught in the act.
    for _ in 0..40 {
        cluster
            .model
            .push_reply(Reply::text(PYTHON_FIX).delay(Duration::from_millis(1500)));
    }
    let kill_dir = cluster.dir("kill-on-push");
    install_hook(
        &cluster.bare_repo(),
        "post-receive",
        &format!(
            "#!/bin/sh\nwhile read old new ref; do\n  f=\"{}/${{ref##*/}}\"\n  if [ -f \"$f\" ]; then pid=$(cat \"$f\"); rm -f \"$f\"; kill -9 \"$pid\"; fi\ndone\n",
            kill_dir.display()
        ),
    );

    // Replica n is the victim of scenario n; it also takes over scenario n-1's session once
    // that lease runs out, and is only given its own issue after that session ended.
    let mut replica = cluster.spawn_replica("victim-0", LEASE_SECS);
    let mut dead: Vec<Replica> = Vec::new();
    let mut issues = Vec::new();
    let mut seen_in = BTreeMap::new();
    for (n, point) in SCENARIOS.iter().enumerate() {
        let issue = 10 + n as u64;
        issues.push(issue);
        let repro = match point {
            KillPoint::InStep("reproduce") => format!("sleep 2 && {PYTHON_REPRO}"),
            _ => PYTHON_REPRO.to_owned(),
        };
        arm(&cluster, *point, issue, &replica, &kill_dir);
        let payload =
            cluster.labeled_payload(issue, &format!("scenario {point:?}"), &issue_body(&repro));
        let (status, answer) = cluster
            .deliver(&replica, "issues", &format!("kill9-{issue}"), &payload)
            .await;
        assert_eq!(status, 202, "{answer}");
        let session_id = answer["sessionId"].as_str().unwrap().to_owned();
        if let KillPoint::InStep(step) = point {
            cluster
                .wait_until(
                    &format!("issue {issue} to reach {step}"),
                    Duration::from_secs(60),
                    || async { cluster.step_starts(&session_id, step).await > 0 },
                )
                .await;
            replica.kill();
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        while !replica.exited() {
            assert!(
                Instant::now() < deadline,
                "scenario {point:?}: the victim was never killed:\n{}",
                replica.log_tail(60)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let events = cluster
            .store
            .events_after(&session_id, 0, 1000)
            .await
            .unwrap();
        seen_in.insert(
            issue,
            (
                format!("{point:?}"),
                events.last().map(|e| e.step.clone()).unwrap_or_default(),
            ),
        );
        dead.push(replica);
        // The next replica resumes this session (after the lease), then becomes the next victim.
        replica = cluster.spawn_replica(&format!("victim-{}", n + 1), LEASE_SECS);
        cluster
            .wait_until(
                &format!("issue {issue}'s session to end after the kill"),
                Duration::from_secs(120),
                || async {
                    cluster
                        .sessions_of(issue)
                        .await
                        .iter()
                        .all(|s| !s.status.is_active())
                },
            )
            .await;
    }
    assert_eq!(
        cluster.github.armed_kill_switches(),
        0,
        "every kill switch fired"
    );

    let attempts = job_attempts(&cluster.db_url).await;
    let mut resumed = 0;
    for &issue in &issues {
        let sessions = cluster.sessions_of(issue).await;
        assert_eq!(sessions.len(), 1, "issue {issue}: {sessions:#?}");
        let session = &sessions[0];
        let view = cluster.github_view(issue);
        view.assert_no_duplicates(issue);
        let progress = &view.progress_comments[0];
        match session.status {
            SessionStatus::Succeeded => {
                resumed += 1;
                assert_eq!(view.pulls, 1, "issue {issue}: one pull request");
                assert!(view.branch_sha.is_some());
                assert!(progress.contains("/pull/"), "issue {issue}: {progress}");
            }
            SessionStatus::Failed => {
                let reason = session.error_message.clone().unwrap_or_default();
                assert!(!reason.is_empty(), "issue {issue}: failed without a reason");
                assert!(
                    progress.contains("could not finish"),
                    "issue {issue}: the reason is on the issue: {progress}"
                );
            }
            other => panic!("issue {issue} ended {other:?}: {:?}", session.error_message),
        }
        eprintln!(
            "kill9: issue {issue} killed at {:?} (last event in `{}`) -> {:?} after {} claim(s)",
            seen_in[&issue].0,
            seen_in[&issue].1,
            session.status,
            attempts.get(&session.id).copied().unwrap_or_default()
        );
    }
    eprintln!(
        "kill9: {resumed} of {} killed sessions resumed to a pull request; the rest failed visibly",
        issues.len()
    );
    assert!(
        resumed >= issues.len() - 1,
        "a kill should normally be survived, not just reported"
    );
    cluster.github.see_all_comments();
    drop(dead);
}

/// Claims per session, read straight from the jobs table.
async fn job_attempts(db_url: &str) -> BTreeMap<String, i64> {
    let pool = sqlx::PgPool::connect(db_url).await.unwrap();
    let rows: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT session_id, attempts FROM jobs WHERE kind = 'session'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut out = BTreeMap::new();
    for (session, attempts) in rows {
        if let Some(session) = session {
            *out.entry(session).or_default() += attempts;
        }
    }
    out
}

/// The single SQLite server under webhook load, SIGKILLed and restarted, twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_server_killed_under_load_keeps_every_acknowledged_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/pp.db", dir.path().display());
    let mut acknowledged = Vec::new();
    for round in 0..2 {
        let server = SqliteServer::spawn(&db_url, dir.path(), round);
        let acked: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load: Vec<_> = (0..16)
            .map(|lane| {
                let (url, acked, stop) = (server.url.clone(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let id = format!("r{round}-l{lane}-{n}");
                        n += 1;
                        if send_delivery(&client, &url, &id, n)
                            .await
                            .is_some_and(|(status, _)| status == 202)
                        {
                            acked.lock().unwrap().push((id, n));
                        }
                    }
                })
            })
            .collect();
        // Kill once a good number of deliveries were acknowledged (no fixed sleep).
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < 300 {
            assert!(
                Instant::now() < deadline,
                "the server acknowledged too little"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut server = server;
        server.replica.kill();
        // Let the load notice the dead server for a moment: failures, never acknowledgements.
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
        acknowledged.extend(acked.lock().unwrap().drain(..));
    }

    let server = SqliteServer::spawn(&db_url, dir.path(), 9);
    let client = reqwest::Client::new();
    let mut lost = Vec::new();
    for (id, n) in &acknowledged {
        let answer = send_delivery(&client, &server.url, id, *n).await;
        if answer != Some((200, "duplicate".to_owned())) {
            lost.push(id.clone());
        }
    }
    eprintln!(
        "kill9 sqlite: {} deliveries answered 2xx over 2 kill -9 rounds; {} lost",
        acknowledged.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged but not known after the restart, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}

struct SqliteServer {
    url: String,
    replica: Replica,
}

impl SqliteServer {
    /// `patchpilot serve` on the SQLite file, webhooks only (no App, no model).
    fn spawn(db_url: &str, dir: &std::path::Path, round: usize) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let data = dir.join(format!("data-{round}"));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_patchpilot"));
        command
            .args([
                "serve",
                "--addr",
                &addr,
                "--database-url",
                db_url,
                "--webhook-secret",
                support::server::SECRET,
            ])
            .arg("--data-dir")
            .arg(&data)
            .env("RUST_LOG", "warn,patchpilot::app=info");
        let replica = Replica::start("sqlite", &format!("http://{addr}"), command);
        Self {
            url: replica.url.clone(),
            replica,
        }
    }
}

/// Real-shaped bodies: an `issues.opened` (recorded and ignored) and an `issues.labeled` that
/// creates a session and its job (every fourth delivery), the expensive case.
fn load_bodies() -> [(Vec<u8>, &'static str); 2] {
    let opened = support::example("issues", "opened");
    let mut labeled = support::example("issues", "labeled");
    labeled["label"]["name"] = serde_json::json!("patchpilot");
    labeled["sender"]["type"] = serde_json::json!("User");
    [
        (serde_json::to_vec(&opened).unwrap(), "issues"),
        (serde_json::to_vec(&labeled).unwrap(), "issues"),
    ]
}

/// Sends delivery `id` (`n` picks its kind); the status and the answer's `status` field, or
/// `None` if unanswered.
async fn send_delivery(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    n: usize,
) -> Option<(u16, String)> {
    static BODIES: std::sync::OnceLock<[(Vec<u8>, &'static str); 2]> = std::sync::OnceLock::new();
    let (body, event) = &BODIES.get_or_init(load_bodies)[usize::from(n.is_multiple_of(4))];
    let response = client
        .post(format!("{url}/webhooks/github"))
        .header("X-GitHub-Event", *event)
        .header("X-GitHub-Delivery", id)
        .header(
            "X-Hub-Signature-256",
            patchpilot::webhook::signature::sign(support::server::SECRET, body),
        )
        .body(body.clone())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let answer: serde_json::Value = response.json().await.ok()?;
    Some((
        status,
        answer["status"].as_str().unwrap_or_default().to_owned(),
    ))
}
