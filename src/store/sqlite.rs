//! SQLite backend: the zero-configuration default (one file in the working directory).
//!
//! WAL journal with `synchronous = FULL`, so a delivery is on disk before its 202; throughput
//! comes from group commit (`IntakeQueue`), not from weaker durability. SQLite serialises
//! writers, so the job claim needs no row lock: the single `UPDATE ... RETURNING` is atomic.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use super::StoreResult;
use super::sql::impl_store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQLite `Store`.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, e.g. `sqlite://patchpilot.db`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

impl_store!(
    SqliteStore,
    Sqlite,
    backend = "sqlite",
    lock = "",
    migrator = MIGRATOR
);
