//! The worker: claims jobs from the store and runs them under a lease.
//!
//! - A job is claimed with a lease that a heartbeat extends. If this process dies, the lease
//!   runs out and a worker (here or on another replica) claims the job again: a session is
//!   resumed (its steps are idempotent) or, after `max_attempts` claims, failed visibly.
//! - Cancellation is a flag in the store (so any replica can cancel any session); a watcher
//!   polls it and cancels the running job's token, which kills its sandboxed processes.
//! - Losing the lease (another worker took the job) also cancels the token: two workers never
//!   keep running the same session.
//! - On shutdown the workers stop claiming, give running jobs a grace period, then cancel
//!   them and hand the jobs back to the queue.
//! - Reconciliation runs at start-up and then every `reconcile_every` on every replica (it is
//!   idempotent, see [`Store::reconcile`]): jobs of ended sessions are failed, and sessions
//!   that lost their job get a settle job, which a worker ends visibly through
//!   [`JobHandler::give_up`] like any other job it will not run again.
//! - Leases, heartbeats and retry delays are measured on the store's clock (see [`Store`]),
//!   so tests move time instead of sleeping through a lease. Timers that only pace the loop
//!   (idle poll, heartbeat interval) stay on tokio's time.

mod config;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::store::{Job, JobOutcome, Store, StoreError};

pub use config::WorkerArgs;

/// How a job handler failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (GitHub 5xx, network).
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help.
    #[error("{0}")]
    Permanent(String),
}

/// What runs a claimed job: implemented by the agent pipeline.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Runs `job` to completion; `cancel` fires on cancellation, lease loss or shutdown.
    async fn run(&self, job: &Job, cancel: CancellationToken) -> Result<(), JobError>;
    /// Called once a job will not be tried again, so its session can end visibly.
    async fn give_up(&self, job: &Job, error: &str);
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub idle_poll: Duration,
    pub cancel_poll: Duration,
    pub max_attempts: i64,
    pub shutdown_grace: Duration,
    /// First retry delay after a transient failure; it quadruples each attempt.
    pub retry_base: Duration,
    /// How often a reconciliation pass runs (one also runs at start-up).
    pub reconcile_every: Duration,
}

impl WorkerConfig {
    /// The defaults with a lease of `lease`: heartbeats four times per lease, and
    /// reconciliation once per lease (at least every 5 s, at most every minute).
    pub fn with_lease(lease: Duration) -> Self {
        let lease = lease.max(Duration::from_millis(200));
        Self {
            lease,
            heartbeat: lease / 4,
            reconcile_every: lease.clamp(Duration::from_secs(5), Duration::from_secs(60)),
            ..Self::default()
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(15),
            idle_poll: Duration::from_secs(1),
            cancel_poll: Duration::from_millis(250),
            max_attempts: 3,
            shutdown_grace: Duration::from_secs(30),
            retry_base: Duration::from_secs(5),
            reconcile_every: Duration::from_secs(60),
        }
    }
}

/// A pool of workers sharing one handler.
pub struct WorkerPool {
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `config.concurrency` workers. `wakeup` is notified when a job is recorded.
    pub fn start(
        store: Arc<dyn Store>,
        handler: Arc<dyn JobHandler>,
        wakeup: Arc<Notify>,
        config: WorkerConfig,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let reconciler = tokio::spawn(reconcile_loop(
            store.clone(),
            wakeup.clone(),
            config.clone(),
            shutdown.clone(),
        ));
        let tasks = (0..config.concurrency.max(1))
            .map(|n| {
                let worker = Worker {
                    id: format!("{}-{n}", &instance[..12]),
                    store: store.clone(),
                    handler: handler.clone(),
                    wakeup: wakeup.clone(),
                    config: config.clone(),
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(worker.run_loop())
            })
            .chain(std::iter::once(reconciler))
            .collect();
        Self { shutdown, tasks }
    }

    /// Stops claiming, waits for running jobs (up to the grace period), then returns.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

struct Worker {
    id: String,
    store: Arc<dyn Store>,
    handler: Arc<dyn JobHandler>,
    wakeup: Arc<Notify>,
    config: WorkerConfig,
    shutdown: CancellationToken,
}

impl Worker {
    async fn run_loop(self) {
        while !self.shutdown.is_cancelled() {
            match self.store.claim_job(&self.id, self.config.lease).await {
                Ok(Some(job)) => {
                    let span = tracing::info_span!(
                        "job",
                        id = job.id,
                        kind = job.kind.as_str(),
                        session = job.session_id.as_deref().unwrap_or("-"),
                        attempt = job.attempts
                    );
                    self.run_job(job).instrument(span).await;
                }
                Ok(None) => self.idle().await,
                // The store has already failed it for good; the next job may be due now.
                Err(err @ StoreError::UnrunnableJob { .. }) => {
                    tracing::error!(worker = %self.id, error = %err, "refused a job this version cannot run");
                }
                Err(err) => {
                    tracing::error!(worker = %self.id, error = %err, "could not claim a job");
                    self.idle().await;
                }
            }
        }
    }

    async fn idle(&self) {
        tokio::select! {
            () = self.wakeup.notified() => {},
            () = tokio::time::sleep(self.config.idle_poll) => {},
            () = self.shutdown.cancelled() => {},
        }
    }

    async fn run_job(&self, job: Job) {
        if let Some(reason) = job.settle_reason() {
            tracing::warn!(job = job.id, %reason, "settling a session reconciliation found");
            self.handler.give_up(&job, reason).await;
            self.finish(&job, JobOutcome::Failed(reason.to_owned()))
                .await;
            return;
        }
        if job.attempts > self.config.max_attempts {
            let error = format!(
                "gave up after {} attempts (the worker crashed or lost its lease each time)",
                job.attempts - 1
            );
            self.handler.give_up(&job, &error).await;
            self.finish(&job, JobOutcome::Failed(error)).await;
            return;
        }
        let cancel = CancellationToken::new();
        let watcher = tokio::spawn(watch(
            self.store.clone(),
            job.clone(),
            self.id.clone(),
            self.config.clone(),
            cancel.clone(),
            self.shutdown.clone(),
        ));
        let result = self.handler.run(&job, cancel.clone()).await;
        watcher.abort();
        let outcome = match result {
            Ok(()) => JobOutcome::Done,
            Err(JobError::Transient(error)) if job.attempts < self.config.max_attempts => {
                tracing::warn!(job = job.id, %error, "job failed; will retry");
                JobOutcome::Retry {
                    after: backoff(self.config.retry_base, job.attempts),
                    error,
                }
            }
            Err(err) => {
                let error = err.to_string();
                tracing::error!(job = job.id, %error, "job failed");
                self.handler.give_up(&job, &error).await;
                JobOutcome::Failed(error)
            }
        };
        let outcome =
            if self.shutdown.is_cancelled() && cancel.is_cancelled() && outcome != JobOutcome::Done
            {
                // Interrupted by shutdown: hand it back for another worker to resume.
                JobOutcome::Retry {
                    after: Duration::ZERO,
                    error: "interrupted by shutdown".to_owned(),
                }
            } else {
                outcome
            };
        self.finish(&job, outcome).await;
    }

    async fn finish(&self, job: &Job, outcome: JobOutcome) {
        if let Err(err) = self.store.finish_job(job.id, &self.id, &outcome).await {
            tracing::error!(job = job.id, error = %err, "could not record the job's end; its lease will expire and it will be retried");
        }
    }
}

/// Exponential backoff between job retries: base, 4×base, 16×base, ... capped at 10 minutes.
fn backoff(base: Duration, attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 6) - 1).unwrap_or(0);
    (base * 4u32.pow(exponent)).min(Duration::from_secs(600))
}

/// Keeps the lease alive and turns cancellation requests, lease loss and (after the grace
/// period) shutdown into the job's cancellation.
async fn watch(
    store: Arc<dyn Store>,
    job: Job,
    owner: String,
    config: WorkerConfig,
    cancel: CancellationToken,
    shutdown: CancellationToken,
) {
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    let mut poll = tokio::time::interval(config.cancel_poll);
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(config.shutdown_grace).await;
    };
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                match store.heartbeat(job.id, &owner, config.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = job.id, "lease lost to another worker; stopping");
                        cancel.cancel();
                        return;
                    }
                    Err(err) => tracing::warn!(job = job.id, error = %err, "heartbeat failed"),
                }
            }
            _ = poll.tick() => {
                let Some(session_id) = &job.session_id else { continue };
                if let Ok(Some(session)) = store.get_session(session_id).await
                    && session.cancel_requested
                {
                    tracing::info!(session = %session_id, "cancellation requested");
                    cancel.cancel();
                    return;
                }
            }
            () = &mut grace => {
                tracing::warn!(job = job.id, "shutdown grace period over; cancelling");
                cancel.cancel();
                return;
            }
        }
    }
}

/// Reconciles at start-up and then every `reconcile_every` until shutdown; wakes the workers
/// when it queued settle jobs.
async fn reconcile_loop(
    store: Arc<dyn Store>,
    wakeup: Arc<Notify>,
    config: WorkerConfig,
    shutdown: CancellationToken,
) {
    loop {
        match store.reconcile().await {
            Ok(done) => {
                if !done.orphaned_sessions.is_empty() || done.jobs_of_ended_sessions > 0 {
                    tracing::warn!(
                        orphaned_sessions = ?done.orphaned_sessions,
                        jobs_of_ended_sessions = done.jobs_of_ended_sessions,
                        "reconciliation settled work a crash left behind"
                    );
                }
                if !done.orphaned_sessions.is_empty() {
                    wakeup.notify_waiters();
                }
            }
            Err(err) => tracing::error!(error = %err, "reconciliation failed; will try again"),
        }
        tokio::select! {
            () = tokio::time::sleep(config.reconcile_every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_sets_the_heartbeat_and_the_reconciliation_period() {
        let short = WorkerConfig::with_lease(Duration::from_secs(3));
        assert_eq!(short.heartbeat, Duration::from_millis(750));
        assert_eq!(
            short.reconcile_every,
            Duration::from_secs(5),
            "at least 5 s apart"
        );
        let long = WorkerConfig::with_lease(Duration::from_secs(600));
        assert_eq!(
            long.reconcile_every,
            Duration::from_secs(60),
            "at most a minute apart"
        );
        assert_eq!(long.concurrency, WorkerConfig::default().concurrency);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 3), Duration::from_secs(80));
        assert_eq!(backoff(base, 50), Duration::from_secs(600));
    }
}
