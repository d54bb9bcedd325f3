//! SQLite backend: the zero-configuration default (one file in the working directory).
//!
//! WAL journal with `synchronous = FULL`, so a delivery is on disk before its 202; throughput
//! comes from group commit (`IntakeQueue`), not from weaker durability. SQLite serialises
//! writers, so the job claim needs no row lock: the single `UPDATE ... RETURNING` is atomic.
//!
//! Intake at the durability limit: sqlx runs every SQLite statement on a worker thread, so
//! each statement costs a thread hand-off and every returned row another. Group commits
//! therefore go to ONE pinned connection (its page cache stays warm instead of being
//! invalidated by other connections' commits) as ONE multi-statement query per batch —
//! `BEGIN IMMEDIATE`, a look-up of already-known delivery ids (no rows in the common case), the
//! session, job and delivery inserts, `COMMIT` — one hand-off per batch. The session and job
//! inserts are guarded by "this delivery id is not stored yet", evaluated inside the write
//! transaction, so a redelivery changes nothing, exactly as on the portable path.
//!
//! One process per database file: SQLite's locking keeps the file consistent with several
//! writers, but two servers would each run workers and each trust their own leases and
//! caches. [`SqliteStore::lock_for_serving`] takes an exclusive advisory lock on a file beside
//! the database; the kernel drops it when the process exits, even on `kill -9`. Several
//! replicas need PostgreSQL.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::Mutex;

use super::sql::{IntakePlan, impl_store};
use super::{Clock, Intake, IntakeEffect, Recorded, StoreResult, SystemClock};
use super::{JobKind, NewSession, TriggerKind};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The largest batch that goes through the pinned single-statement path (about 35 bound
/// values per delivery, well under SQLite's 32,766); larger ones take the portable path.
const MAX_PINNED_BATCH: usize = 512;

/// The SQLite `Store`.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    options: SqliteConnectOptions,
    /// The connection group commits run on; `None` until first use or after an error.
    intake: Arc<Mutex<Option<SqliteConnection>>>,
    /// What every "now" of this store is read from.
    clock: Arc<dyn Clock>,
}

/// Proof that this process is the only server of a SQLite database; dropping it (or exiting)
/// releases the lock.
#[derive(Debug)]
pub struct ServerLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl ServerLock {
    /// The lock file beside the database.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why `serve` may not use a SQLite database.
#[derive(Debug, thiserror::Error)]
pub enum ServerLockError {
    #[error(
        "another PatchPilot server is already using the SQLite database {database} (it holds the lock on {lock}); \
         SQLite supports one server process per database file: stop the other server, or use PostgreSQL \
         (DATABASE_URL=postgres://...) to run several replicas"
    )]
    Held { database: String, lock: String },
    #[error("could not lock the SQLite database {database} through {lock}: {source}")]
    Io {
        database: String,
        lock: String,
        source: std::io::Error,
    },
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, e.g. `sqlite://patchpilot.db`, on the
    /// wall clock.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Statement journals of multi-row inserts stay in memory instead of temp files
            // (they only roll back a failed statement; durability is the WAL's).
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            pool,
            options,
            intake: Arc::new(Mutex::new(None)),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same store measuring time on `clock` (tests move it by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Takes the one-server lock for the SQLite database named by `database_url`: `Ok(None)`
    /// for other backends and in-memory databases, an error naming the remedy when another
    /// process holds it.
    pub fn lock_for_serving(database_url: &str) -> Result<Option<ServerLock>, ServerLockError> {
        if !database_url.starts_with("sqlite:") {
            return Ok(None);
        }
        let Ok(options) = SqliteConnectOptions::from_str(database_url) else {
            // Opening the store reports the bad URL with its own message.
            return Ok(None);
        };
        let database = options.get_filename();
        let name = database.to_string_lossy();
        if name.is_empty() || name.starts_with("file:sqlx-in-memory") || name == ":memory:" {
            return Ok(None);
        }
        let mut lock_name = database.as_os_str().to_owned();
        lock_name.push(".lock");
        let path = PathBuf::from(lock_name);
        let describe = |path: &Path| path.display().to_string();
        let io_error = |source| ServerLockError::Io {
            database: describe(database),
            lock: describe(&path),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ServerLock { _file: file, path })),
            Err(std::fs::TryLockError::WouldBlock) => Err(ServerLockError::Held {
                database: describe(database),
                lock: describe(&path),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(io_error(source)),
        }
    }

    /// Group commit: the pinned single-statement path, or the portable one for batches that
    /// change installations (rare) or are too large for one statement.
    async fn record_batch(&self, batch: &[Intake]) -> StoreResult<Vec<Recorded>> {
        let pinned_fits = batch.len() <= MAX_PINNED_BATCH
            && !batch
                .iter()
                .any(|intake| matches!(intake.effect, IntakeEffect::Installation(_)));
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // One reading of the clock per batch: every row of a group commit has the same time.
        let now = self.clock.now();
        if !pinned_fits {
            return record_deliveries_portable(&self.pool, batch, now).await;
        }
        let mut slot = self.intake.lock().await;
        let connection = match slot.as_mut() {
            Some(connection) => connection,
            None => {
                // A larger page cache for the one connection that takes every group commit:
                // the indexes it inserts into stay in memory instead of being read back.
                let options = self.options.clone().pragma("cache_size", "-16384");
                slot.insert(SqliteConnection::connect_with(&options).await?)
            }
        };
        let plan = BatchPlan(IntakePlan::new(batch, now));
        match plan.run(connection).await {
            Ok(known) => Ok(plan.results(|id| !known.contains(id))),
            Err(err) => {
                // The failed statement may have left the transaction open: closing the
                // connection rolls it back, and the next batch opens a fresh one.
                if let Some(connection) = slot.take() {
                    let _ = connection.close().await;
                }
                Err(err)
            }
        }
    }
}

/// One batch as SQLite's statements write it (planned by [`IntakePlan`]).
struct BatchPlan<'a>(IntakePlan<'a>);

impl<'a> std::ops::Deref for BatchPlan<'a> {
    type Target = IntakePlan<'a>;

    fn deref(&self) -> &IntakePlan<'a> {
        &self.0
    }
}

impl<'a> BatchPlan<'a> {
    /// Runs the batch as one multi-statement query; returns the delivery ids that were
    /// already stored (redeliveries), which it left untouched.
    async fn run(&self, connection: &mut SqliteConnection) -> StoreResult<HashSet<String>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "BEGIN IMMEDIATE; SELECT delivery_id FROM deliveries WHERE delivery_id IN (",
        );
        let mut ids = query.separated(", ");
        for &i in &self.candidates {
            ids.push_bind(self.batch[i].delivery.delivery_id.clone());
        }
        query.push(");");
        self.push_sessions(&mut query);
        self.push_jobs(&mut query);
        self.push_deliveries(&mut query);
        query.push(" COMMIT;");
        let known: Vec<(String,)> = query.build_query_as().fetch_all(&mut *connection).await?;
        Ok(known.into_iter().map(|(id,)| id).collect())
    }

    /// Sessions of deliveries not stored yet (mirrors `insert_sessions`).
    fn push_sessions(&self, query: &mut QueryBuilder<Sqlite>) {
        let starts: Vec<(usize, &NewSession)> = self
            .candidates
            .iter()
            .filter_map(|&i| match &self.batch[i].effect {
                IntakeEffect::StartSession(new) => Some((i, new)),
                _ => None,
            })
            .collect();
        if starts.is_empty() {
            return;
        }
        let now = self.now;
        query.push(
            " INSERT INTO sessions (id, repo_url, branch, bug_description, repro_command, status, \
             created_at, updated_at, installation_id, repository, issue_number, issue_title, \
             trigger_kind, triggered_by, trigger_comment_id, delivery_id, feedback, private) \
             SELECT * FROM (",
        );
        query.push_values(starts, |mut row, (i, new)| {
            let kind = new.trigger_kind.unwrap_or(TriggerKind::Api);
            row.push_bind(self.session_ids[i].clone())
                .push_bind(new.repo_url.clone())
                .push_bind(new.branch.clone())
                .push_bind(new.bug_description.clone())
                .push_bind(new.repro_command.clone())
                .push_bind("queued")
                .push_bind(now)
                .push_bind(now)
                .push_bind(new.installation_id)
                .push_bind(new.repository.clone())
                .push_bind(new.issue_number)
                .push_bind(new.issue_title.clone())
                .push_bind(kind.as_str())
                .push_bind(new.triggered_by.clone())
                .push_bind(new.trigger_comment_id)
                .push_bind(self.batch[i].delivery.delivery_id.clone())
                .push_bind(new.feedback.clone())
                // Unknown visibility counts as private.
                .push_bind(new.private.unwrap_or(true));
        });
        query.push(
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.delivery_id = v.column16);",
        );
    }

    /// Jobs of deliveries not stored yet; the eighth column is only the guard's delivery id.
    fn push_jobs(&self, query: &mut QueryBuilder<Sqlite>) {
        let jobs: Vec<(usize, JobKind, String)> = self
            .candidates
            .iter()
            .filter_map(|&i| match &self.batch[i].effect {
                IntakeEffect::StartSession(_) => Some((i, JobKind::Session, String::from("{}"))),
                IntakeEffect::Job { kind, payload } => Some((i, *kind, payload.to_string())),
                _ => None,
            })
            .collect();
        if jobs.is_empty() {
            return;
        }
        let now = self.now;
        query.push(
            " INSERT INTO jobs (kind, session_id, payload, status, attempts, run_after, created_at) \
             SELECT column1, column2, column3, column4, column5, column6, column7 FROM (",
        );
        query.push_values(jobs, |mut row, (i, kind, payload)| {
            row.push_bind(kind.as_str())
                .push_bind(self.session_ids[i].clone())
                .push_bind(payload)
                .push_bind("queued")
                .push_bind(0_i64)
                .push_bind(now)
                .push_bind(now)
                .push_bind(self.batch[i].delivery.delivery_id.clone());
        });
        query.push(
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.delivery_id = v.column8);",
        );
    }

    /// The delivery rows last, so the guards above still see only earlier deliveries.
    fn push_deliveries(&self, query: &mut QueryBuilder<Sqlite>) {
        query.push(
            " INSERT INTO deliveries (delivery_id, event, action, installation_id, repository, \
             received_at, outcome, session_id) ",
        );
        query.push_values(&self.candidates, |mut row, &i| {
            let intake = &self.batch[i];
            let d = &intake.delivery;
            row.push_bind(d.delivery_id.clone())
                .push_bind(d.event.clone())
                .push_bind(d.action.clone())
                .push_bind(d.installation_id)
                .push_bind(d.repository.clone())
                .push_bind(d.received_at)
                .push_bind(intake.outcome.clone())
                .push_bind(self.session_ids[i].clone());
        });
        query.push(" ON CONFLICT (delivery_id) DO NOTHING;");
    }
}

impl_store!(
    SqliteStore,
    Sqlite,
    backend = "sqlite",
    lock = "",
    migrator = MIGRATOR
);
