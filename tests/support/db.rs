//! Fresh databases for tests: a temp-file SQLite, or a new PostgreSQL database per test.
//!
//! PostgreSQL comes from `PATCHPILOT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable the Postgres half of a
//! test fails if `CI=true` (never a silent skip in CI) and is skipped with a loud note
//! elsewhere.
//!
//! Every test store measures time on the test's own [`ManualClock`] (`db.clock`): it reads
//! the wall clock until the test sets it, and from then on moves only when the test moves it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchpilot::store::{Clock, PostgresStore, SqliteStore, Store};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The store's clock in tests: the wall clock until [`ManualClock::set`] or
/// [`ManualClock::advance`] stops it; after that, time passes only when the test says so.
#[derive(Debug, Default)]
pub struct ManualClock(Mutex<Option<DateTime<Utc>>>);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Stops the clock at `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = Some(at);
    }

    /// Stops the clock `by` after its current time.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        let from = now.unwrap_or_else(Utc::now);
        *now = Some(from + chrono::Duration::from_std(by).expect("a test duration"));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().unwrap().unwrap_or_else(Utc::now)
    }
}

/// A store on a fresh database, kept alive with whatever it needs (the temp dir).
pub struct TestDb {
    pub store: Arc<dyn Store>,
    /// The clock `store` reads every "now" from.
    pub clock: Arc<ManualClock>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Runs `sql` with `$1` bound to `id` straight on the database, behind the store's back:
    /// what another version of PatchPilot, or an operator, may have written.
    pub async fn execute(&self, sql: &str, id: i64) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.url)
                .await
                .expect("open sqlite");
            sqlx::query(sql)
                .bind(id)
                .execute(&pool)
                .await
                .expect("raw statement");
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&self.url)
                .await
                .expect("connect to postgres");
            sqlx::query(sql)
                .bind(id)
                .execute(&pool)
                .await
                .expect("raw statement");
            pool.close().await;
        }
    }

    /// A job's stored `(status, last_error)`, read straight from the database.
    pub async fn job_status(&self, id: i64) -> (String, Option<String>) {
        let sql = "SELECT status, last_error FROM jobs WHERE id = $1";
        if self.url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.url)
                .await
                .expect("open sqlite");
            let row = sqlx::query_as(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("the job row");
            pool.close().await;
            row
        } else {
            let pool = sqlx::PgPool::connect(&self.url)
                .await
                .expect("connect to postgres");
            let row = sqlx::query_as(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("the job row");
            pool.close().await;
            row
        }
    }
}

pub async fn fresh_sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/patchpilot.db", dir.path().display());
    let clock = ManualClock::new();
    let store = SqliteStore::connect(&url)
        .await
        .expect("open sqlite")
        .with_clock(clock.clone());
    store.migrate().await.expect("migrate sqlite");
    TestDb {
        store: Arc::new(store),
        clock,
        url,
        _dir: Some(dir),
    }
}

/// A fresh, migrated PostgreSQL database, or `None` (outside CI) when none is reachable.
pub async fn fresh_postgres() -> Option<TestDb> {
    let admin_url = std::env::var("PATCHPILOT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let url = match create_database(&admin_url).await {
        Ok(url) => url,
        Err(err) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL is required in CI but unreachable at {admin_url}: {err}")
        }
        Err(err) => {
            eprintln!(
                "NOTE: skipping the PostgreSQL half of this test: {admin_url} unreachable ({err}). \
                 Set PATCHPILOT_TEST_POSTGRES_URL to run it."
            );
            return None;
        }
    };
    let clock = ManualClock::new();
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to fresh postgres database")
        .with_clock(clock.clone());
    store.migrate().await.expect("migrate postgres");
    Some(TestDb {
        store: Arc::new(store),
        clock,
        url,
        _dir: None,
    })
}

async fn create_database(admin_url: &str) -> Result<String, sqlx::Error> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    let name = format!("patchpilot_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let mut url =
        url::Url::parse(admin_url).map_err(|err| sqlx::Error::Configuration(err.into()))?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// Runs a test body once per backend, each on its own fresh database.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $db = $crate::support::db::fresh_sqlite().await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($db) = $crate::support::db::fresh_postgres().await else { return };
                    $body
                }
            )*
        }
    };
}
