//! Durable storage: deliveries, installations, sessions, their events, and the job queue.
//!
//! `Store` is the one trait the core uses. Two implementations exist, chosen by the scheme of
//! `DATABASE_URL`: [`SqliteStore`] (the default, one file) and [`PostgresStore`] (several
//! replicas). Both run the same portable SQL (see `sql.rs`) and differ only in connection set-up,
//! migrations and the job-claim lock; one conformance suite (`tests/store_conformance.rs`)
//! runs every operation on both.
//!
//! Invariants:
//! - A delivery, and everything it causes (session, job, installation change), is committed in
//!   one transaction before the webhook is answered; a redelivered id changes nothing.
//! - A job is claimed under a lease; a worker that dies loses the lease and another worker
//!   claims the job again, so a crash resumes or fails a session visibly, never silently.
//! - One clock per store: leases, retry delays and timestamps are all measured on it, so a
//!   lease written by one call is compared with a "now" of the same clock by the next.

mod clock;
mod config;
mod intake;
mod model;
mod postgres;
mod sql;
mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use clock::{Clock, SystemClock};
pub use config::DatabaseArgs;
pub use intake::IntakeQueue;
pub use model::{
    EventLevel, GitHubIssue, NewSession, Session, SessionEvent, SessionStatus, TriggerKind,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Storage failures. The message never contains a secret (URLs are redacted before use).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported DATABASE_URL scheme `{0}`: use sqlite:// or postgres://")]
    UnsupportedScheme(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("the intake queue is shut down")]
    IntakeClosed,
    /// A claimed job this version cannot run (an unknown kind, a payload that is not JSON).
    /// The claim has already failed it for good with `reason`, so no worker claims it again.
    #[error("job {id} cannot be run and was failed for good: {reason}")]
    UnrunnableJob { id: i64, reason: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The facts of one webhook delivery that we keep.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryRecord {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A stored delivery with the outcome decided for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub record: DeliveryRecord,
    pub outcome: String,
    pub session_id: Option<String>,
}

/// A change to the installations table caused by `installation*` events.
#[derive(Clone, Debug, PartialEq)]
pub enum InstallationChange {
    Upsert {
        installation_id: i64,
        account: String,
        repositories: Vec<String>,
    },
    Delete {
        installation_id: i64,
    },
    Suspend {
        installation_id: i64,
        suspended: bool,
    },
    AddRepositories {
        installation_id: i64,
        repositories: Vec<String>,
    },
    RemoveRepositories {
        installation_id: i64,
        repositories: Vec<String>,
    },
}

/// What a delivery causes besides its own row.
// One effect is built per delivery and moved straight into its batch: boxing the session
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum IntakeEffect {
    /// Recorded only (ignored events, ping).
    None,
    /// A queued session and the job that will run it.
    StartSession(NewSession),
    /// A job for a command that needs the worker (cancel, status, help, ...).
    Job {
        kind: JobKind,
        payload: serde_json::Value,
    },
    Installation(InstallationChange),
}

/// One delivery to record, with its outcome and effect decided by the trigger rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Intake {
    pub delivery: DeliveryRecord,
    pub outcome: String,
    pub effect: IntakeEffect,
}

/// The answer to recording one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Newly stored (with the session it created, if any).
    Accepted { session_id: Option<String> },
    /// The delivery id was already stored: nothing was done.
    Duplicate,
}

/// A stored installation.
#[derive(Clone, Debug, PartialEq)]
pub struct Installation {
    pub installation_id: i64,
    pub account: String,
    pub repositories: Vec<String>,
    pub suspended: bool,
    pub updated_at: DateTime<Utc>,
}

/// Fields a worker changes as a session advances; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionPatch {
    pub status: Option<SessionStatus>,
    pub branch: Option<String>,
    pub repro_command: Option<String>,
    pub issue_title: Option<String>,
    pub bug_description: Option<String>,
    pub patch_diff: Option<String>,
    pub pr_url: Option<String>,
    pub error_message: Option<String>,
    pub base_sha: Option<String>,
    pub head_sha: Option<String>,
    pub head_branch: Option<String>,
    pub check_run_id: Option<i64>,
    pub progress_comment_id: Option<i64>,
    pub pr_number: Option<i64>,
    pub attempt_count: Option<i64>,
    /// Added to the stored totals.
    pub add_input_tokens: Option<i64>,
    pub add_output_tokens: Option<i64>,
}

/// Filter for listing sessions, newest first.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    pub repository: Option<String>,
    pub issue_number: Option<i64>,
    pub status: Option<SessionStatus>,
    pub limit: i64,
}

/// What a job does, stored as text in `jobs.kind`.
///
/// A row whose kind this version does not know (written by a newer version during a rolling
/// deploy, or by hand) is never run: claiming it fails it for good, naming the kind (see
/// [`StoreError::UnrunnableJob`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Runs one session's pipeline, or ends the session visibly when its payload says so
    /// (see [`Job::settle_reason`]).
    Session,
    /// Carries out a slash command that does not start a session by itself (cancel, status,
    /// help, ...); the payload is the webhook's `CommandJob`.
    Command,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [Self::Session, Self::Command];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Command => "command",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown job kind `{s}`"))
    }
}

/// A unit of work for the worker.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub session_id: Option<String>,
    pub payload: serde_json::Value,
    /// How many times it has been claimed, this claim included.
    pub attempts: i64,
}

impl Job {
    /// For a settle job (written by [`Store::reconcile`]): why its session ends without
    /// running. `None` for every other job.
    pub fn settle_reason(&self) -> Option<&str> {
        match self.kind {
            JobKind::Session => self.payload.get(SETTLE_KEY).and_then(|r| r.as_str()),
            JobKind::Command => None,
        }
    }
}

/// How a claimed job ended.
#[derive(Clone, Debug, PartialEq)]
pub enum JobOutcome {
    Done,
    /// Failed for good; the message is kept for operators.
    Failed(String),
    /// Try again later (a transient error).
    Retry {
        after: Duration,
        error: String,
    },
}

/// What one reconciliation pass settled (see [`Store::reconcile`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Active sessions that had no queued or running job: each got a settle job.
    pub orphaned_sessions: Vec<String>,
    /// Queued jobs, or running ones whose lease ran out, of sessions that had already ended.
    pub jobs_of_ended_sessions: u64,
}

/// The payload key of a job that ends its session visibly instead of running it (written by
/// reconciliation, read by the worker): `{"settle": "<reason for the maintainer>"}`.
pub const SETTLE_KEY: &str = "settle";

/// Why reconciliation ends a session that had lost its job.
pub const ORPHANED_SESSION_REASON: &str = "its job was lost (the server crashed or its queue entry was removed), so PatchPilot stopped it";

/// The storage the core uses. Every method is one transaction.
///
/// Time is the store's own: every timestamp it writes and every "now" it compares with
/// (claims, leases, heartbeats, retry delays, reconciliation, session and event times) is read
/// from the [`Clock`] the backend was built with, never from the caller or the wall clock
/// directly. Production runs on [`SystemClock`]; a test injects a clock it moves by hand
/// (`with_clock` on either backend), so lease and retry timing is exact without sleeping.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Cheap reachability check for `/healthz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Records many deliveries in ONE transaction (group commit); results are in order.
    /// On error nothing of the batch is stored.
    async fn record_deliveries(&self, batch: &[Intake]) -> StoreResult<Vec<Recorded>>;
    async fn get_delivery(&self, delivery_id: &str) -> StoreResult<Option<Delivery>>;
    /// Changes a delivery's outcome (e.g. after the worker rejects a sender).
    async fn set_delivery_outcome(&self, delivery_id: &str, outcome: &str) -> StoreResult<()>;

    async fn get_installation(&self, installation_id: i64) -> StoreResult<Option<Installation>>;

    /// Creates a queued session and its job (the API and CLI path).
    async fn create_session(&self, new: NewSession) -> StoreResult<Session>;
    async fn get_session(&self, id: &str) -> StoreResult<Option<Session>>;
    async fn list_sessions(&self, filter: &SessionFilter) -> StoreResult<Vec<Session>>;
    /// The queued or running session of an issue, if any (oldest first).
    async fn active_session_for_issue(
        &self,
        repository: &str,
        issue_number: i64,
    ) -> StoreResult<Option<Session>>;
    /// The oldest queued or running session that pushes to the issue's branch: one of the
    /// issue's own sessions, or a round on the pull request opened from it (a session whose
    /// parent is one of the issue's).
    async fn active_session_on_branch(
        &self,
        repository: &str,
        issue_number: i64,
    ) -> StoreResult<Option<Session>>;
    /// The reproduction command of the issue's latest session, other than `except_session`,
    /// that a writer approved: one that passed the permission check (not queued, not
    /// rejected) and settled a command. Retries, re-runs and feedback iterations reuse it, so
    /// an issue body edited later cannot change what runs.
    async fn approved_repro_command(
        &self,
        repository: &str,
        issue_number: i64,
        except_session: &str,
    ) -> StoreResult<Option<String>>;
    async fn update_session(&self, id: &str, patch: &SessionPatch) -> StoreResult<()>;
    /// Flags an active session for cancellation; false when it is not active.
    async fn request_cancel(&self, id: &str) -> StoreResult<bool>;

    async fn append_event(
        &self,
        session_id: &str,
        step: &str,
        level: EventLevel,
        message: &str,
    ) -> StoreResult<i64>;
    /// Events with an id greater than `after_id`, oldest first.
    async fn events_after(
        &self,
        session_id: &str,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<SessionEvent>>;

    async fn enqueue_job(
        &self,
        kind: JobKind,
        session_id: Option<&str>,
        payload: &serde_json::Value,
    ) -> StoreResult<i64>;
    /// Claims the oldest runnable job (queued and due, or running with an expired lease) for
    /// `lease` from the store's clock. A job this version cannot run is failed on the spot
    /// and answered with [`StoreError::UnrunnableJob`]; the next claim moves on.
    async fn claim_job(&self, owner: &str, lease: Duration) -> StoreResult<Option<Job>>;
    /// Claims the queued job of one session (the local `patchpilot run` path), if still queued.
    async fn claim_session_job(
        &self,
        session_id: &str,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<Option<Job>>;
    /// Extends a lease to the clock's now plus `lease`; false when the lease was lost to
    /// another worker.
    async fn heartbeat(&self, job_id: i64, owner: &str, lease: Duration) -> StoreResult<bool>;
    /// Records how a job ended (a retry runs once the clock reaches now plus `after`). Does
    /// nothing when `owner` no longer holds the job.
    async fn finish_job(&self, job_id: i64, owner: &str, outcome: &JobOutcome) -> StoreResult<()>;

    /// One reconciliation pass, as of the clock's now: jobs whose session already ended are
    /// failed (a live lease is left alone: its worker is finishing), and every active session
    /// without a queued or running job gets a settle job (see [`SETTLE_KEY`]), which a worker
    /// turns into a visible end on the issue and check run. Safe to run on several replicas at
    /// once: a second settle job for a session finds it ended and does nothing.
    async fn reconcile(&self) -> StoreResult<Reconciled>;
}

/// Opens the store named by `database_url` (`sqlite:` or `postgres:`/`postgresql:`).
pub async fn connect(database_url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    let scheme = database_url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(std::sync::Arc::new(
            SqliteStore::connect(database_url).await?,
        )),
        "postgres" | "postgresql" => Ok(std::sync::Arc::new(
            PostgresStore::connect(database_url).await?,
        )),
        other => Err(StoreError::UnsupportedScheme(other.to_owned())),
    }
}

/// `DATABASE_URL` without its password, for logs.
pub fn redact_url(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => database_url.to_owned(),
    }
}
