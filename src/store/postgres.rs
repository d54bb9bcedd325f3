//! PostgreSQL backend: for several replicas sharing one queue.
//!
//! Replicas claim jobs concurrently; `FOR UPDATE SKIP LOCKED` lets each take a different
//! row without waiting on the others. A group commit is one statement, so one round trip.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::sql::{IntakePlan, impl_store};
use super::{Clock, Intake, IntakeEffect, Recorded, StoreResult, SystemClock};
use super::{JobKind, NewSession, TriggerKind};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The PostgreSQL `Store`.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// What every "now" of this store is read from.
    clock: Arc<dyn Clock>,
}

impl PostgresStore {
    /// Connects to `url`, e.g. `postgres://postgres@127.0.0.1:5432/test`, on the wall clock.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same store measuring time on `clock` (tests move it by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The largest batch that goes through the single-statement path (about 34 bound values per
/// delivery, well under PostgreSQL's 65,535); larger ones take the portable path.
const MAX_SINGLE_STATEMENT_BATCH: usize = 512;

impl PostgresStore {
    /// Group commit as ONE statement (one round trip, atomic on its own): data-modifying CTEs
    /// insert the deliveries with `ON CONFLICT DO NOTHING RETURNING`, and only the returned
    /// (new) ones get their session and job, so a delivery racing in on another replica
    /// changes nothing. Batches that change installations take the portable path.
    async fn record_batch(&self, batch: &[Intake]) -> StoreResult<Vec<Recorded>> {
        let single = !batch.is_empty()
            && batch.len() <= MAX_SINGLE_STATEMENT_BATCH
            && !batch
                .iter()
                .any(|intake| matches!(intake.effect, IntakeEffect::Installation(_)));
        // One reading of the clock per batch: every row of a group commit has the same time.
        let now = self.clock.now();
        if !single {
            return record_deliveries_portable(&self.pool, batch, now).await;
        }
        let plan = SingleStatement(IntakePlan::new(batch, now));
        let inserted: Vec<(String,)> = plan.query().build_query_as().fetch_all(&self.pool).await?;
        let inserted: HashSet<String> = inserted.into_iter().map(|(id,)| id).collect();
        Ok(plan.results(|id| inserted.contains(id)))
    }
}

/// One batch as a single `WITH ... INSERT` statement (planned by [`IntakePlan`]).
struct SingleStatement<'a>(IntakePlan<'a>);

impl<'a> std::ops::Deref for SingleStatement<'a> {
    type Target = IntakePlan<'a>;

    fn deref(&self) -> &IntakePlan<'a> {
        &self.0
    }
}

impl<'a> SingleStatement<'a> {
    fn query(&self) -> QueryBuilder<Postgres> {
        let now = self.now;
        let mut query = QueryBuilder::<Postgres>::new(
            "WITH v (delivery_id, event, action, installation_id, repository, received_at, outcome, session_id) AS (",
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
        query.push(
            "), d AS (INSERT INTO deliveries (delivery_id, event, action, installation_id, repository, \
             received_at, outcome, session_id) SELECT * FROM v ON CONFLICT (delivery_id) DO NOTHING \
             RETURNING delivery_id)",
        );
        let starts: Vec<(usize, &NewSession)> = self
            .candidates
            .iter()
            .filter_map(|&i| match &self.batch[i].effect {
                IntakeEffect::StartSession(new) => Some((i, new)),
                _ => None,
            })
            .collect();
        if !starts.is_empty() {
            query.push(
                ", s_in (id, repo_url, branch, bug_description, repro_command, status, created_at, \
                 updated_at, installation_id, repository, issue_number, issue_title, trigger_kind, \
                 triggered_by, trigger_comment_id, delivery_id, feedback, private) AS (",
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
                "), s AS (INSERT INTO sessions (id, repo_url, branch, bug_description, repro_command, \
                 status, created_at, updated_at, installation_id, repository, issue_number, issue_title, \
                 trigger_kind, triggered_by, trigger_comment_id, delivery_id, feedback, private) \
                 SELECT s_in.* FROM s_in JOIN d ON d.delivery_id = s_in.delivery_id)",
            );
        }
        let jobs: Vec<(usize, JobKind, String)> = self
            .candidates
            .iter()
            .filter_map(|&i| match &self.batch[i].effect {
                IntakeEffect::StartSession(_) => Some((i, JobKind::Session, String::from("{}"))),
                IntakeEffect::Job { kind, payload } => Some((i, *kind, payload.to_string())),
                _ => None,
            })
            .collect();
        if !jobs.is_empty() {
            query.push(
                ", j_in (kind, session_id, payload, status, attempts, run_after, created_at, delivery_id) AS (",
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
                "), j AS (INSERT INTO jobs (kind, session_id, payload, status, attempts, run_after, created_at) \
                 SELECT j_in.kind, j_in.session_id, j_in.payload, j_in.status, j_in.attempts, j_in.run_after, \
                 j_in.created_at FROM j_in JOIN d ON d.delivery_id = j_in.delivery_id)",
            );
        }
        query.push(" SELECT delivery_id FROM d");
        query
    }
}

impl_store!(
    PostgresStore,
    Postgres,
    backend = "postgres",
    lock = "FOR UPDATE SKIP LOCKED",
    migrator = MIGRATOR
);
