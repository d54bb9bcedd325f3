//! Three real `patchpilot serve` processes on one PostgreSQL database, no load balancer:
//! deliveries go round-robin to all three, redeliveries of the same `X-GitHub-Delivery` go to
//! different replicas, and a cancel reaches a replica other than the one running the session.
//! The maintainer must see one session's worth of everything per issue.

mod support;

use std::time::Duration;

use patchpilot::store::SessionPatch;
use patchpilot::store::SessionStatus;
use support::e2e::{PYTHON_FIX, PYTHON_REPRO, REPO, python_project};
use support::fake_model::Reply;
use support::replicas::{Cluster, descendants};

const LEASE_SECS: u64 = 3;

fn issue_body(repro: &str) -> String {
    format!(
        "`average([])` crashes with ZeroDivisionError instead of returning 0.\n\nrepro: {repro}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_one_truth() {
    let Some(cluster) = Cluster::start(&python_project()).await else {
        return;
    };
    for _ in 0..6 {
        cluster.model.push_reply(Reply::text(PYTHON_FIX));
    }
    let mut replicas: Vec<_> = (0..3)
        .map(|n| cluster.spawn_replica(&format!("r{n}"), LEASE_SECS))
        .collect();

    // Issue 1 by label, issue 2 by `/patchpilot`, each delivered to one replica and then
    // redelivered (same delivery id) to the other two, all at once.
    let labelled = cluster.labeled_payload(
        1,
        "average() crashes on an empty list",
        &issue_body(PYTHON_REPRO),
    );
    let body2 = issue_body(PYTHON_REPRO);
    cluster
        .github
        .add_issue(REPO, 2, "average() again", &body2, "reporter");
    let commented = cluster.comment_payload(2, "/patchpilot", &body2);
    let mut answers = Vec::new();
    for (issue, event, payload) in [(1, "issues", &labelled), (2, "issue_comment", &commented)] {
        let delivery = uuid::Uuid::new_v4().to_string();
        let to = |k: usize| &replicas[(issue + k) % 3];
        let (a, b, c) = tokio::join!(
            cluster.deliver(to(0), event, &delivery, payload),
            cluster.deliver(to(1), event, &delivery, payload),
            cluster.deliver(to(2), event, &delivery, payload),
        );
        answers.extend([a, b, c]);
    }
    let accepted = answers
        .iter()
        .filter(|(s, a)| *s == 202 && a["status"] == "accepted")
        .count();
    let duplicates = answers
        .iter()
        .filter(|(s, a)| *s == 200 && a["status"] == "duplicate")
        .count();
    assert_eq!((accepted, duplicates), (2, 4), "{answers:#?}");

    // Issue 3 holds its session in the repro command, to be cancelled through another replica.
    let slow = cluster.labeled_payload(3, "hangs", &issue_body("sleep 47"));
    let (status, _) = cluster
        .deliver(&replicas[0], "issues", "delivery-3", &slow)
        .await;
    assert_eq!(status, 202);

    for issue in [1, 2] {
        cluster
            .wait_until(
                &format!("issue {issue}'s session to finish"),
                Duration::from_secs(120),
                || async {
                    cluster
                        .sessions_of(issue)
                        .await
                        .iter()
                        .all(|s| !s.status.is_active())
                        && !cluster.sessions_of(issue).await.is_empty()
                },
            )
            .await;
    }
    let mut running_on = None;
    cluster
        .wait_until(
            "issue 3's repro to run on some replica",
            Duration::from_secs(60),
            || {
                let found = replicas.iter().position(|r| {
                    descendants(r.pid())
                        .iter()
                        .any(|(_, cmd)| cmd.contains("sleep 47"))
                });
                running_on = found;
                async move { found.is_some() }
            },
        )
        .await;
    let runner = running_on.unwrap();
    let other = (runner + 1) % 3;
    let cancel = cluster.comment_payload(3, "/patchpilot cancel", &issue_body("sleep 47"));
    let (status, _) = cluster
        .deliver(
            &replicas[other],
            "issue_comment",
            "delivery-3-cancel",
            &cancel,
        )
        .await;
    assert_eq!(status, 202);
    let sent = std::time::Instant::now();
    cluster
        .wait_until(
            "the cancel to reach the running session",
            Duration::from_secs(30),
            || async {
                cluster
                    .sessions_of(3)
                    .await
                    .iter()
                    .all(|s| !s.status.is_active())
            },
        )
        .await;
    // A figure for the report, not an assertion on time.
    eprintln!(
        "replicas: session 3 ran on {}, the cancel went to {}, cancelled {} ms later",
        replicas[runner].name,
        replicas[other].name,
        sent.elapsed().as_millis()
    );

    for issue in [1u64, 2, 3] {
        let sessions = cluster.sessions_of(issue).await;
        assert_eq!(
            sessions.len(),
            1,
            "issue {issue}: exactly one session: {sessions:#?}"
        );
        let session = &sessions[0];
        let expected = if issue == 3 {
            SessionStatus::Cancelled
        } else {
            SessionStatus::Succeeded
        };
        assert_eq!(
            session.status, expected,
            "issue {issue}: {:?}",
            session.error_message
        );
        // One worker, one run: every step started once, and the job was claimed once.
        assert_eq!(
            cluster.step_starts(&session.id, "clone").await,
            1,
            "issue {issue} ran twice"
        );
        let view = cluster.github_view(issue);
        view.assert_no_duplicates(issue);
        if issue == 3 {
            assert_eq!(view.pulls, 0);
            assert!(
                view.progress_comments[0].to_lowercase().contains("cancel"),
                "{}",
                view.progress_comments[0]
            );
        } else {
            assert_eq!(view.pulls, 1, "issue {issue}: one pull request");
            assert!(
                view.branch_sha.is_some(),
                "issue {issue}: the branch was pushed"
            );
            let head = session.head_sha.clone().unwrap();
            assert_eq!(
                view.check_runs[&head][0].conclusion.as_deref(),
                Some("success")
            );
        }
    }
    // A session a crash left marked running with no job (here issue 3's, whose job is done):
    // the replicas' periodic reconciliation ends it visibly on the issue.
    let lost = cluster.sessions_of(3).await.remove(0);
    let running = SessionPatch {
        status: Some(SessionStatus::Running),
        ..SessionPatch::default()
    };
    cluster
        .store
        .update_session(&lost.id, &running)
        .await
        .unwrap();
    cluster
        .wait_until(
            "reconciliation to end the session",
            Duration::from_secs(30),
            || async {
                cluster
                    .sessions_of(3)
                    .await
                    .iter()
                    .all(|s| !s.status.is_active())
            },
        )
        .await;
    let settled = cluster.store.get_session(&lost.id).await.unwrap().unwrap();
    assert_eq!(settled.status, SessionStatus::Failed);
    let view = cluster.github_view(3);
    assert!(
        view.progress_comments.len() == 1 && view.progress_comments[0].contains("its job was lost"),
        "the reason is on the issue: {:#?}",
        view.progress_comments
    );

    for replica in &mut replicas {
        assert!(
            !replica.log().contains("lease lost"),
            "{}: a lease was lost:\n{}",
            replica.name,
            replica.log_tail(40)
        );
        assert!(
            !replica.exited(),
            "{} died:\n{}",
            replica.name,
            replica.log_tail(40)
        );
    }
    cluster.github.see_all_comments();
}
