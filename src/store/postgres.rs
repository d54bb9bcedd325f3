//! PostgreSQL backend: for several replicas sharing one queue.
//!
//! Replicas claim jobs concurrently; `FOR UPDATE SKIP LOCKED` lets each take a different
//! row without waiting on the others.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use super::StoreResult;
use super::sql::impl_store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The PostgreSQL `Store`.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url`, e.g. `postgres://postgres@127.0.0.1:5432/test`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }
}

impl PostgresStore {
    /// Group commit on any pooled connection (replicas share the table, so the delivery
    /// insert's unique key decides which deliveries are new).
    async fn record_batch(&self, batch: &[super::Intake]) -> StoreResult<Vec<super::Recorded>> {
        record_deliveries_portable(&self.pool, batch).await
    }
}

impl_store!(
    PostgresStore,
    Postgres,
    backend = "postgres",
    lock = "FOR UPDATE SKIP LOCKED",
    migrator = MIGRATOR
);
