//! The worker loop against a real store: runs, retries, cancellation, crash recovery,
//! shutdown hand-back. The handler here is a test double of the pipeline (the worker's own
//! seam), so what is under test is the claiming, leasing and cancelling.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use patchpilot::store::NewSession;
use patchpilot::store::{Job, JobKind, JobOutcome, ORPHANED_SESSION_REASON, Store};
use patchpilot::worker::{JobError, JobHandler, WorkerConfig, WorkerPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy)]
enum Behaviour {
    Succeed,
    FailOnceThenSucceed,
    WaitForCancel,
}

struct Recorder {
    behaviour: Behaviour,
    runs: Mutex<Vec<(i64, i64)>>,
    cancelled: Mutex<Vec<i64>>,
    given_up: Mutex<Vec<(i64, String)>>,
    started: Notify,
}

impl Recorder {
    fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            runs: Mutex::default(),
            cancelled: Mutex::default(),
            given_up: Mutex::default(),
            started: Notify::new(),
        })
    }
}

#[async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &Job, cancel: CancellationToken) -> Result<(), JobError> {
        self.runs.lock().unwrap().push((job.id, job.attempts));
        self.started.notify_one();
        match self.behaviour {
            Behaviour::Succeed => Ok(()),
            Behaviour::FailOnceThenSucceed if job.attempts == 1 => {
                Err(JobError::Transient("github 502".into()))
            }
            Behaviour::FailOnceThenSucceed => Ok(()),
            Behaviour::WaitForCancel => {
                cancel.cancelled().await;
                self.cancelled.lock().unwrap().push(job.id);
                Err(JobError::Permanent("cancelled".into()))
            }
        }
    }

    async fn give_up(&self, job: &Job, error: &str) {
        self.given_up
            .lock()
            .unwrap()
            .push((job.id, error.to_owned()));
    }
}

fn config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 2,
        lease: Duration::from_secs(2),
        heartbeat: Duration::from_millis(200),
        idle_poll: Duration::from_millis(50),
        cancel_poll: Duration::from_millis(50),
        max_attempts: 3,
        shutdown_grace: Duration::from_millis(200),
        retry_base: Duration::from_millis(100),
        ..WorkerConfig::default()
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn session() -> NewSession {
    NewSession {
        repo_url: "https://example.com/r.git".into(),
        bug_description: "bug".into(),
        ..Default::default()
    }
}

on_both_backends! {
    async fn runs_each_job_once(db) {
        let handler = Recorder::new(Behaviour::Succeed);
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config());
        for _ in 0..5 {
            db.store.create_session(session()).await.unwrap();
        }
        eventually("5 runs", || handler.runs.lock().unwrap().len() == 5).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(handler.runs.lock().unwrap().len(), 5, "no job ran twice");
        pool.shutdown().await;
    }

    async fn transient_failures_are_retried(db) {
        let handler = Recorder::new(Behaviour::FailOnceThenSucceed);
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config());
        db.store.create_session(session()).await.unwrap();
        eventually("a second attempt", || handler.runs.lock().unwrap().len() == 2).await;
        let attempts: Vec<i64> = handler.runs.lock().unwrap().iter().map(|r| r.1).collect();
        assert_eq!(attempts, vec![1, 2]);
        assert!(handler.given_up.lock().unwrap().is_empty());
        pool.shutdown().await;
    }

    async fn cancellation_reaches_the_running_job(db) {
        let handler = Recorder::new(Behaviour::WaitForCancel);
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config());
        let s = db.store.create_session(session()).await.unwrap();
        handler.started.notified().await;
        assert!(db.store.request_cancel(&s.id).await.unwrap());
        eventually("the job sees the cancellation", || handler.cancelled.lock().unwrap().len() == 1).await;
        pool.shutdown().await;
    }

    async fn a_crashed_workers_job_is_resumed_then_given_up(db) {
        // A worker claimed the job and died: its lease runs out.
        db.clock.set(Utc::now());
        let s = db.store.create_session(session()).await.unwrap();
        let dead = db.store.claim_job("dead-worker", Duration::from_millis(300)).await.unwrap().unwrap();
        assert_eq!(dead.session_id.as_deref(), Some(s.id.as_str()));
        db.clock.advance(Duration::from_millis(301));
        let handler = Recorder::new(Behaviour::Succeed);
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config());
        eventually("the job is resumed", || handler.runs.lock().unwrap().len() == 1).await;
        assert_eq!(handler.runs.lock().unwrap()[0], (dead.id, 2));
        pool.shutdown().await;

        // A job that keeps crashing its workers is failed visibly, not retried forever.
        let s2 = db.store.create_session(session()).await.unwrap();
        let mut crashy = 0;
        for _ in 1..=3 {
            // Each claim happens just after the previous 1 ms lease ran out.
            db.clock.advance(Duration::from_millis(10));
            crashy = db.store.claim_job("crashy", Duration::from_millis(1)).await.unwrap().unwrap().id;
        }
        db.clock.advance(Duration::from_millis(10));
        let handler = Recorder::new(Behaviour::Succeed);
        let store: Arc<dyn Store> = db.store.clone();
        let pool = WorkerPool::start(store, handler.clone(), Arc::new(Notify::new()), config());
        // (This handler never ends sessions, so reconciliation also settles the first one.)
        let given_up = || handler.given_up.lock().unwrap().iter().find(|(id, _)| *id == crashy).cloned();
        eventually("the job is given up", || given_up().is_some()).await;
        let (_, error) = given_up().unwrap();
        assert!(error.contains("gave up after 3 attempts"), "{error}");
        assert!(handler.runs.lock().unwrap().is_empty(), "it was not run a fourth time");
        let _ = s2;
        pool.shutdown().await;
    }

    async fn a_dead_workers_lease_expires_on_the_injected_clock(db) {
        let lease = Duration::from_secs(3600);
        let s = db.store.create_session(session()).await.unwrap();
        db.clock.set(Utc::now());
        let dead = db.store.claim_job("dead-worker", lease).await.unwrap().unwrap();
        let handler = Recorder::new(Behaviour::Succeed);
        let config = WorkerConfig { lease, ..config() };
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config);
        // The pool polls every 50 ms; a few polls later the hour-long lease still holds.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(handler.runs.lock().unwrap().is_empty(), "the lease is still held");
        db.clock.advance(lease + Duration::from_secs(1));
        eventually("the job is taken over", || handler.runs.lock().unwrap().len() == 1).await;
        assert_eq!(handler.runs.lock().unwrap()[0], (dead.id, 2));
        let _ = s;
        pool.shutdown().await;
    }

    async fn reconciliation_ends_a_session_that_lost_its_job(db) {
        // A session left active by a crash with no job to run it.
        let s = db.store.create_session(session()).await.unwrap();
        let job = db.store.claim_job("crashed", Duration::from_secs(60)).await.unwrap().unwrap();
        db.store.finish_job(job.id, "crashed", &JobOutcome::Done).await.unwrap();
        let handler = Recorder::new(Behaviour::Succeed);
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config());
        // Start-up reconciliation finds it; a worker ends it through `give_up`, without running it.
        eventually("the session is given up", || !handler.given_up.lock().unwrap().is_empty()).await;
        let (_, reason) = handler.given_up.lock().unwrap()[0].clone();
        assert_eq!(reason, ORPHANED_SESSION_REASON);
        assert!(handler.runs.lock().unwrap().is_empty(), "a settle job never runs the session");
        let _ = s;
        pool.shutdown().await;
    }

    async fn a_job_of_an_unknown_kind_fails_for_good_and_the_worker_goes_on(db) {
        // A newer version queued a kind this one cannot run, ahead of an ordinary session.
        let newer = db.store.enqueue_job(JobKind::Session, None, &serde_json::json!({})).await.unwrap();
        db.execute("UPDATE jobs SET kind = 'rebase' WHERE id = $1", newer).await;
        let s = db.store.create_session(session()).await.unwrap();
        let handler = Recorder::new(Behaviour::Succeed);
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config());
        eventually("the session after it runs", || handler.runs.lock().unwrap().len() == 1).await;
        let (ran, _) = handler.runs.lock().unwrap()[0];
        assert_ne!(ran, newer, "the unknown kind never reaches the handler");
        let (status, error) = db.job_status(newer).await;
        assert_eq!(status, "failed");
        assert!(error.as_deref().is_some_and(|e| e.starts_with("unknown job kind `rebase`")), "{error:?}");
        let _ = s;
        pool.shutdown().await;
    }

    async fn shutdown_hands_running_jobs_back(db) {
        let handler = Recorder::new(Behaviour::WaitForCancel);
        let pool = WorkerPool::start(db.store.clone(), handler.clone(), Arc::new(Notify::new()), config());
        db.store.create_session(session()).await.unwrap();
        handler.started.notified().await;
        pool.shutdown().await;
        assert_eq!(handler.cancelled.lock().unwrap().len(), 1, "cancelled after the grace period");
        let job = db.store.claim_job("next", Duration::from_secs(5)).await.unwrap();
        assert!(job.is_some(), "the interrupted job is queued again");
    }
}
