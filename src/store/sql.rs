//! The portable SQL shared by both backends.
//!
//! sqlx's runtime queries are typed by database (`Sqlite`, `Postgres`), and writing the
//! same method bodies generic over `sqlx::Database` needs a wall of higher-ranked bounds.
//! Instead `impl_store!` expands the one body below for each backend; the only differences
//! (migrations, the job-claim lock clause) are macro arguments. Placeholders are `$n`,
//! which both SQLite and PostgreSQL accept. The expanded body expects `pool` and `clock`
//! fields on the store: every time it binds is `self.clock.now()`, read once per operation.

use chrono::{DateTime, Utc};

use super::{EventLevel, GitHubIssue, Session, SessionEvent};
use super::{Installation, Job, JobKind, StoreError, StoreResult};

pub(super) const SESSION_COLUMNS: &str = "id, repo_url, branch, bug_description, repro_command, \
    status, patch_diff, pr_url, error_message, created_at, updated_at, installation_id, \
    repository, issue_number, issue_title, trigger_kind, triggered_by, trigger_comment_id, \
    delivery_id, feedback, attempt_count, input_tokens, output_tokens, base_sha, head_sha, \
    head_branch, check_run_id, progress_comment_id, pr_number, cancel_requested, private, \
    parent_session_id, iteration_key, iteration_request";

/// Picks the oldest runnable job; `{lock}` is the backend's row-lock clause.
pub(super) const CLAIM_JOB: &str = "UPDATE jobs SET status = 'running', lease_owner = $1, \
    lease_expires_at = $2, attempts = attempts + 1 WHERE id = (SELECT id FROM jobs \
    WHERE (status = 'queued' AND run_after <= $3) OR (status = 'running' AND lease_expires_at < $3) \
    ORDER BY id LIMIT 1 {lock}) RETURNING id, kind, session_id, payload, attempts";

/// Reconciliation: a queued job, or a running one whose lease ran out, of a session that has
/// ended will never do anything useful; it is failed so it stops being claimed.
pub(super) const FAIL_JOBS_OF_ENDED_SESSIONS: &str = "UPDATE jobs SET status = 'failed', \
    last_error = 'its session had already ended', lease_owner = NULL, lease_expires_at = NULL \
    WHERE (status = 'queued' OR (status = 'running' AND lease_expires_at < $1)) \
    AND session_id IN (SELECT id FROM sessions WHERE status NOT IN ('queued', 'running'))";

/// Reconciliation: an active session with no queued or running job would stay "running"
/// forever; it gets a settle job (kind `$3`, [`JobKind::Session`]) that ends it visibly. An uncorrelated `NOT IN` (jobs have no
/// index on `session_id`, and intake should not pay for one) is evaluated once, not per
/// session; `IS NOT NULL` matters, as one NULL would make `NOT IN` match nothing.
pub(super) const SETTLE_ORPHANED_SESSIONS: &str = "INSERT INTO jobs \
    (kind, session_id, payload, status, attempts, run_after, created_at) \
    SELECT $3, s.id, $1, 'queued', 0, $2, $2 FROM sessions s \
    WHERE s.status IN ('queued', 'running') AND s.id NOT IN (SELECT j.session_id FROM jobs j \
    WHERE j.status IN ('queued', 'running') AND j.session_id IS NOT NULL) RETURNING session_id";

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id: String,
    repo_url: String,
    branch: Option<String>,
    bug_description: String,
    repro_command: Option<String>,
    status: String,
    patch_diff: Option<String>,
    pr_url: Option<String>,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    installation_id: Option<i64>,
    repository: Option<String>,
    issue_number: Option<i64>,
    issue_title: Option<String>,
    trigger_kind: String,
    triggered_by: Option<String>,
    trigger_comment_id: Option<i64>,
    delivery_id: Option<String>,
    feedback: Option<String>,
    attempt_count: i64,
    input_tokens: i64,
    output_tokens: i64,
    base_sha: Option<String>,
    head_sha: Option<String>,
    head_branch: Option<String>,
    check_run_id: Option<i64>,
    progress_comment_id: Option<i64>,
    pr_number: Option<i64>,
    cancel_requested: bool,
    private: bool,
    parent_session_id: Option<String>,
    iteration_key: Option<String>,
    iteration_request: Option<String>,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> StoreResult<Self> {
        Ok(Session {
            status: row.status.parse().map_err(StoreError::Corrupt)?,
            trigger_kind: row.trigger_kind.parse().map_err(StoreError::Corrupt)?,
            id: row.id,
            repo_url: row.repo_url,
            branch: row.branch,
            bug_description: row.bug_description,
            repro_command: row.repro_command,
            patch_diff: row.patch_diff,
            pr_url: row.pr_url,
            error_message: row.error_message,
            created_at: row.created_at,
            updated_at: row.updated_at,
            github: GitHubIssue::from_parts(row.installation_id, row.repository, row.issue_number),
            issue_title: row.issue_title,
            triggered_by: row.triggered_by,
            trigger_comment_id: row.trigger_comment_id,
            delivery_id: row.delivery_id,
            feedback: row.feedback,
            attempt_count: row.attempt_count,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            base_sha: row.base_sha,
            head_sha: row.head_sha,
            head_branch: row.head_branch,
            check_run_id: row.check_run_id,
            progress_comment_id: row.progress_comment_id,
            pr_number: row.pr_number,
            cancel_requested: row.cancel_requested,
            private: row.private,
            parent_session_id: row.parent_session_id,
            iteration_key: row.iteration_key,
            iteration_request: row.iteration_request,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: i64,
    session_id: String,
    at: DateTime<Utc>,
    step: String,
    level: String,
    message: String,
}

impl TryFrom<EventRow> for SessionEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> StoreResult<Self> {
        Ok(SessionEvent {
            level: row
                .level
                .parse::<EventLevel>()
                .map_err(StoreError::Corrupt)?,
            id: row.id,
            session_id: row.session_id,
            at: row.at,
            step: row.step,
            message: row.message,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    id: i64,
    kind: String,
    session_id: Option<String>,
    payload: String,
    attempts: i64,
}

/// Refuses a row this version cannot run with [`StoreError::UnrunnableJob`], naming why; the
/// claim that read it fails it for good (see `claimed` in [`impl_store`]).
impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> StoreResult<Self> {
        let unrunnable = |reason: String| StoreError::UnrunnableJob { id: row.id, reason };
        Ok(Job {
            kind: row.kind.parse::<JobKind>().map_err(|err| {
                unrunnable(format!(
                    "{err}: this version of PatchPilot runs {}; a newer version probably wrote it",
                    JobKind::ALL.map(JobKind::as_str).join(" and ")
                ))
            })?,
            payload: serde_json::from_str(&row.payload)
                .map_err(|err| unrunnable(format!("its payload is not JSON: {err}")))?,
            id: row.id,
            session_id: row.session_id,
            attempts: row.attempts,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct InstallationRow {
    installation_id: i64,
    account: String,
    repositories: String,
    suspended: bool,
    updated_at: DateTime<Utc>,
}

impl TryFrom<InstallationRow> for Installation {
    type Error = StoreError;

    fn try_from(row: InstallationRow) -> StoreResult<Self> {
        Ok(Installation {
            repositories: parse_repositories(&row.repositories)?,
            installation_id: row.installation_id,
            account: row.account,
            suspended: row.suspended,
            updated_at: row.updated_at,
        })
    }
}

pub(super) fn parse_repositories(json: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(json).map_err(|err| StoreError::Corrupt(format!("repositories: {err}")))
}

pub(super) fn repositories_json(repositories: &[String]) -> String {
    serde_json::to_string(repositories).unwrap_or_else(|_| "[]".to_owned())
}

/// Sorted, deduplicated union or difference of repository lists.
pub(super) fn merge_repositories(
    current: Vec<String>,
    add: &[String],
    remove: &[String],
) -> Vec<String> {
    let mut merged: Vec<String> = current
        .into_iter()
        .chain(add.iter().cloned())
        .filter(|repo| !remove.contains(repo))
        .collect();
    merged.sort();
    merged.dedup();
    merged
}

/// When a lease (or retry delay) taken at `from` runs out.
pub(super) fn lease_deadline(from: DateTime<Utc>, lease: std::time::Duration) -> DateTime<Utc> {
    from + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1))
}

/// A fresh session id: 128 bits from the thread-local CSPRNG, hex-encoded.
///
/// Session ids appear in links, so they must not be guessable: UUIDv7 leaks the creation time
/// and carries only 74 random bits, UUIDv4 122. Ordering never relies on ids (lists sort by
/// `created_at`, then id as a tie-breaker).
/// One intake batch as both backends' single-statement paths write it: its candidates (the
/// first of each delivery id; later copies are duplicates), the session id each
/// session-starting delivery gets up front, and the time its rows get.
pub(super) struct IntakePlan<'a> {
    pub batch: &'a [super::Intake],
    pub candidates: Vec<usize>,
    pub session_ids: Vec<Option<String>>,
    pub now: DateTime<Utc>,
}

impl<'a> IntakePlan<'a> {
    pub fn new(batch: &'a [super::Intake], now: DateTime<Utc>) -> Self {
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        let candidates = (0..batch.len())
            .filter(|&i| seen.insert(batch[i].delivery.delivery_id.as_str()))
            .collect();
        let session_ids = batch
            .iter()
            .map(|intake| {
                matches!(intake.effect, super::IntakeEffect::StartSession(_)).then(new_session_id)
            })
            .collect();
        Self {
            batch,
            candidates,
            session_ids,
            now,
        }
    }

    /// One answer per delivery, in order: accepted when it is a candidate that `written`
    /// says the statement stored (not a delivery known before).
    pub fn results(&self, written: impl Fn(&str) -> bool) -> Vec<super::Recorded> {
        let mut accepted = vec![false; self.batch.len()];
        for &i in &self.candidates {
            accepted[i] = written(&self.batch[i].delivery.delivery_id);
        }
        accepted
            .into_iter()
            .zip(&self.session_ids)
            .map(|(accepted, session_id)| {
                if accepted {
                    super::Recorded::Accepted {
                        session_id: session_id.clone(),
                    }
                } else {
                    super::Recorded::Duplicate
                }
            })
            .collect()
    }
}

pub(super) fn new_session_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Expands the shared `Store` implementation for one backend.
macro_rules! impl_store {
    ($store:ty, $db:ty, backend = $backend:literal, lock = $lock:literal, migrator = $migrator:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn record_deliveries(
                &self,
                batch: &[$crate::store::Intake],
            ) -> $crate::store::StoreResult<Vec<$crate::store::Recorded>> {
                // Each backend picks its fastest durable path (see `record_batch`).
                self.record_batch(batch).await
            }

            async fn get_delivery(
                &self,
                delivery_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::Delivery>> {
                type Row = (String, String, Option<String>, Option<i64>, Option<String>,
                    chrono::DateTime<chrono::Utc>, String, Option<String>);
                let row: Option<Row> = sqlx::query_as(
                    "SELECT delivery_id, event, action, installation_id, repository, received_at, \
                     outcome, session_id FROM deliveries WHERE delivery_id = $1",
                )
                .bind(delivery_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(delivery_id, event, action, installation_id, repository, received_at, outcome, session_id)| {
                    $crate::store::Delivery {
                        record: $crate::store::DeliveryRecord {
                            delivery_id, event, action, installation_id, repository, received_at,
                        },
                        outcome,
                        session_id,
                    }
                }))
            }

            async fn set_delivery_outcome(
                &self,
                delivery_id: &str,
                outcome: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE deliveries SET outcome = $1 WHERE delivery_id = $2")
                    .bind(outcome)
                    .bind(delivery_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get_installation(
                &self,
                installation_id: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::Installation>> {
                let row: Option<$crate::store::sql::InstallationRow> = sqlx::query_as(
                    "SELECT installation_id, account, repositories, suspended, updated_at \
                     FROM installations WHERE installation_id = $1",
                )
                .bind(installation_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn create_session(
                &self,
                new: $crate::store::NewSession,
            ) -> $crate::store::StoreResult<$crate::store::Session> {
                let id = $crate::store::sql::new_session_id();
                let now = self.clock.now();
                let mut tx = self.pool.begin().await?;
                insert_sessions(&mut tx, &[(id.as_str(), &new, None)], now).await?;
                insert_jobs(&mut tx, &[($crate::store::JobKind::Session, Some(id.clone()), "{}".to_owned())], now).await?;
                tx.commit().await?;
                self.get_session(&id)
                    .await?
                    .ok_or_else(|| $crate::store::StoreError::Corrupt(format!("session {id} vanished")))
            }

            async fn get_session(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::Session>> {
                let sql = format!(
                    "SELECT {} FROM sessions WHERE id = $1",
                    $crate::store::sql::SESSION_COLUMNS
                );
                let row: Option<$crate::store::sql::SessionRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_sessions(
                &self,
                filter: &$crate::store::SessionFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::Session>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM sessions WHERE 1 = 1",
                    $crate::store::sql::SESSION_COLUMNS
                ));
                if let Some(repository) = &filter.repository {
                    query.push(" AND repository = ").push_bind(repository.clone());
                }
                if let Some(issue) = filter.issue_number {
                    query.push(" AND issue_number = ").push_bind(issue);
                }
                if let Some(status) = filter.status {
                    query.push(" AND status = ").push_bind(status.as_str());
                }
                let limit = if filter.limit <= 0 { 50 } else { filter.limit.min(500) };
                query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(limit);
                let rows: Vec<$crate::store::sql::SessionRow> =
                    query.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn approved_repro_command(
                &self,
                repository: &str,
                issue_number: i64,
                except_session: &str,
            ) -> $crate::store::StoreResult<Option<String>> {
                let row: Option<(Option<String>,)> = sqlx::query_as(
                    "SELECT repro_command FROM sessions WHERE repository = $1 AND issue_number = $2 \
                     AND id <> $3 AND repro_command IS NOT NULL AND repro_command <> '' \
                     AND status NOT IN ('queued', 'rejected') \
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(repository)
                .bind(issue_number)
                .bind(except_session)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(command,)| command))
            }

            async fn active_session_for_issue(
                &self,
                repository: &str,
                issue_number: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::Session>> {
                let sql = format!(
                    "SELECT {} FROM sessions WHERE repository = $1 AND issue_number = $2 \
                     AND status IN ('queued', 'running') ORDER BY created_at, id LIMIT 1",
                    $crate::store::sql::SESSION_COLUMNS
                );
                let row: Option<$crate::store::sql::SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(repository)
                    .bind(issue_number)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn active_session_on_branch(
                &self,
                repository: &str,
                issue_number: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::Session>> {
                let sql = format!(
                    "SELECT {} FROM sessions WHERE repository = $1 AND status IN ('queued', 'running') \
                     AND ((issue_number = $2 AND parent_session_id IS NULL) OR parent_session_id IN \
                     (SELECT id FROM sessions WHERE repository = $1 AND issue_number = $2)) \
                     ORDER BY created_at, id LIMIT 1",
                    $crate::store::sql::SESSION_COLUMNS
                );
                let row: Option<$crate::store::sql::SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(repository)
                    .bind(issue_number)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn update_session(
                &self,
                id: &str,
                patch: &$crate::store::SessionPatch,
            ) -> $crate::store::StoreResult<()> {
                let mut query = sqlx::QueryBuilder::<$db>::new("UPDATE sessions SET updated_at = ");
                query.push_bind(self.clock.now());
                macro_rules! set {
                    ($field:ident, $column:literal) => {
                        if let Some(value) = patch.$field.clone() {
                            query.push(concat!(", ", $column, " = ")).push_bind(value);
                        }
                    };
                }
                if let Some(status) = patch.status {
                    query.push(", status = ").push_bind(status.as_str());
                }
                set!(branch, "branch");
                set!(repro_command, "repro_command");
                set!(issue_title, "issue_title");
                set!(bug_description, "bug_description");
                set!(patch_diff, "patch_diff");
                set!(pr_url, "pr_url");
                set!(error_message, "error_message");
                set!(base_sha, "base_sha");
                set!(head_sha, "head_sha");
                set!(head_branch, "head_branch");
                set!(check_run_id, "check_run_id");
                set!(progress_comment_id, "progress_comment_id");
                set!(pr_number, "pr_number");
                set!(attempt_count, "attempt_count");
                if let Some(tokens) = patch.add_input_tokens {
                    query.push(", input_tokens = input_tokens + ").push_bind(tokens);
                }
                if let Some(tokens) = patch.add_output_tokens {
                    query.push(", output_tokens = output_tokens + ").push_bind(tokens);
                }
                query.push(" WHERE id = ").push_bind(id.to_owned());
                query.build().execute(&self.pool).await?;
                Ok(())
            }

            async fn request_cancel(&self, id: &str) -> $crate::store::StoreResult<bool> {
                let changed = sqlx::query(
                    "UPDATE sessions SET cancel_requested = TRUE, updated_at = $1 \
                     WHERE id = $2 AND status IN ('queued', 'running')",
                )
                .bind(self.clock.now())
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(changed > 0)
            }

            async fn append_event(
                &self,
                session_id: &str,
                step: &str,
                level: $crate::store::EventLevel,
                message: &str,
            ) -> $crate::store::StoreResult<i64> {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO session_events (session_id, at, step, level, message) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(session_id)
                .bind(self.clock.now())
                .bind(step)
                .bind(level.as_str())
                .bind(message)
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn events_after(
                &self,
                session_id: &str,
                after_id: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::SessionEvent>> {
                let rows: Vec<$crate::store::sql::EventRow> = sqlx::query_as(
                    "SELECT id, session_id, at, step, level, message FROM session_events \
                     WHERE session_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(session_id)
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn enqueue_job(
                &self,
                kind: $crate::store::JobKind,
                session_id: Option<&str>,
                payload: &serde_json::Value,
            ) -> $crate::store::StoreResult<i64> {
                let now = self.clock.now();
                let mut tx = self.pool.begin().await?;
                let ids = insert_jobs(&mut tx, &[(kind, session_id.map(str::to_owned), payload.to_string())], now).await?;
                let id = ids.first().copied().ok_or_else(|| $crate::store::StoreError::Corrupt("job insert returned no id".to_owned()))?;
                tx.commit().await?;
                Ok(id)
            }

            async fn claim_job(
                &self,
                owner: &str,
                lease: std::time::Duration,
            ) -> $crate::store::StoreResult<Option<$crate::store::Job>> {
                let now = self.clock.now();
                let sql = $crate::store::sql::CLAIM_JOB.replace("{lock}", $lock);
                let expires = $crate::store::sql::lease_deadline(now, lease);
                let row: Option<$crate::store::sql::JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(owner)
                    .bind(expires)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                claimed(self, row, owner).await
            }

            async fn claim_session_job(
                &self,
                session_id: &str,
                owner: &str,
                lease: std::time::Duration,
            ) -> $crate::store::StoreResult<Option<$crate::store::Job>> {
                let now = self.clock.now();
                let row: Option<$crate::store::sql::JobRow> = sqlx::query_as(
                    "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
                     attempts = attempts + 1 WHERE id = (SELECT id FROM jobs WHERE session_id = $3 \
                     AND status = 'queued' ORDER BY id LIMIT 1) AND status = 'queued' \
                     RETURNING id, kind, session_id, payload, attempts",
                )
                .bind(owner)
                .bind($crate::store::sql::lease_deadline(now, lease))
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?;
                claimed(self, row, owner).await
            }

            async fn heartbeat(
                &self,
                job_id: i64,
                owner: &str,
                lease: std::time::Duration,
            ) -> $crate::store::StoreResult<bool> {
                let now = self.clock.now();
                let changed = sqlx::query(
                    "UPDATE jobs SET lease_expires_at = $1 \
                     WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
                )
                .bind($crate::store::sql::lease_deadline(now, lease))
                .bind(job_id)
                .bind(owner)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(changed > 0)
            }

            async fn finish_job(
                &self,
                job_id: i64,
                owner: &str,
                outcome: &$crate::store::JobOutcome,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::JobOutcome;
                let now = self.clock.now();
                let (status, error, run_after) = match outcome {
                    JobOutcome::Done => ("done", None, now),
                    JobOutcome::Failed(error) => ("failed", Some(error.clone()), now),
                    JobOutcome::Retry { after, error } => (
                        "queued",
                        Some(error.clone()),
                        $crate::store::sql::lease_deadline(now, *after),
                    ),
                };
                sqlx::query(
                    "UPDATE jobs SET status = $1, last_error = $2, run_after = $3, \
                     lease_owner = NULL, lease_expires_at = NULL WHERE id = $4 AND lease_owner = $5",
                )
                .bind(status)
                .bind(error)
                .bind(run_after)
                .bind(job_id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn reconcile(&self) -> $crate::store::StoreResult<$crate::store::Reconciled> {
                let now = self.clock.now();
                let mut tx = self.pool.begin().await?;
                let ended = sqlx::query($crate::store::sql::FAIL_JOBS_OF_ENDED_SESSIONS)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let payload = serde_json::json!({
                    $crate::store::SETTLE_KEY: $crate::store::ORPHANED_SESSION_REASON,
                })
                .to_string();
                let orphans: Vec<(String,)> = sqlx::query_as($crate::store::sql::SETTLE_ORPHANED_SESSIONS)
                    .bind(payload)
                    .bind(now)
                    .bind($crate::store::JobKind::Session.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::store::Reconciled {
                    orphaned_sessions: orphans.into_iter().map(|(id,)| id).collect(),
                    jobs_of_ended_sessions: ended,
                })
            }
        }

        /// The job a claim returned. A row this version cannot run (see `TryFrom<JobRow>`) is
        /// failed for good under the claim's lease before the refusal is returned, so no
        /// worker, here or on another replica, claims it again.
        async fn claimed(
            store: &$store,
            row: Option<$crate::store::sql::JobRow>,
            owner: &str,
        ) -> $crate::store::StoreResult<Option<$crate::store::Job>> {
            use $crate::store::{JobOutcome, Store, StoreError};
            match row.map($crate::store::Job::try_from).transpose() {
                Err(StoreError::UnrunnableJob { id, reason }) => {
                    store.finish_job(id, owner, &JobOutcome::Failed(reason.clone())).await?;
                    Err(StoreError::UnrunnableJob { id, reason })
                }
                claimed => claimed,
            }
        }

        /// Records a batch of deliveries in one transaction on any connection of `pool`, with one
        /// multi-row statement per table (per-row round trips, not fsync, are what limit intake
        /// once commits are grouped). Safe with several replicas: the delivery insert decides,
        /// under its unique key, which deliveries are new, and only those get sessions and jobs.
        /// Everything the batch writes gets the time `now` (one reading of the store's clock).
        async fn record_deliveries_portable(
            pool: &sqlx::Pool<$db>,
            batch: &[$crate::store::Intake],
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::store::StoreResult<Vec<$crate::store::Recorded>> {
            use $crate::store::{IntakeEffect, Recorded};
            let mut seen = std::collections::HashSet::new();
            let candidates: Vec<usize> = (0..batch.len())
                .filter(|&i| seen.insert(batch[i].delivery.delivery_id.as_str()))
                .collect();
            let session_ids: Vec<Option<String>> = batch
                .iter()
                .map(|intake| matches!(intake.effect, IntakeEffect::StartSession(_)).then($crate::store::sql::new_session_id))
                .collect();
            let mut tx = pool.begin().await?;
            let mut inserted = std::collections::HashSet::new();
            for chunk in candidates.chunks(500) {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO deliveries (delivery_id, event, action, installation_id, repository, received_at, outcome, session_id) ",
                );
                query.push_values(chunk, |mut row, &i| {
                    let d = &batch[i].delivery;
                    row.push_bind(d.delivery_id.clone())
                        .push_bind(d.event.clone())
                        .push_bind(d.action.clone())
                        .push_bind(d.installation_id)
                        .push_bind(d.repository.clone())
                        .push_bind(d.received_at)
                        .push_bind(batch[i].outcome.clone())
                        .push_bind(session_ids[i].clone());
                });
                query.push(" ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id");
                let rows: Vec<(String,)> = query.build_query_as().fetch_all(&mut *tx).await?;
                inserted.extend(rows.into_iter().map(|(id,)| id));
            }
            let accepted: Vec<usize> = candidates
                .into_iter()
                .filter(|&i| inserted.contains(&batch[i].delivery.delivery_id))
                .collect();
            let starts: Vec<(usize, &$crate::store::NewSession)> = accepted
                .iter()
                .filter_map(|&i| match &batch[i].effect {
                    IntakeEffect::StartSession(new) => Some((i, new)),
                    _ => None,
                })
                .collect();
            let sessions: Vec<(&str, &$crate::store::NewSession, Option<&str>)> = starts
                .iter()
                .map(|&(i, new)| (session_ids[i].as_deref().unwrap_or_default(), new, Some(batch[i].delivery.delivery_id.as_str())))
                .collect();
            insert_sessions(&mut tx, &sessions, now).await?;
            let jobs: Vec<($crate::store::JobKind, Option<String>, String)> = accepted
                .iter()
                .filter_map(|&i| match &batch[i].effect {
                    IntakeEffect::StartSession(_) => Some(($crate::store::JobKind::Session, session_ids[i].clone(), "{}".to_owned())),
                    IntakeEffect::Job { kind, payload } => Some((*kind, None, payload.to_string())),
                    _ => None,
                })
                .collect();
            insert_jobs(&mut tx, &jobs, now).await?;
            for &i in &accepted {
                if let IntakeEffect::Installation(change) = &batch[i].effect {
                    apply_installation_change(&mut tx, change, now).await?;
                }
            }
            tx.commit().await?;
            let accepted: std::collections::HashSet<usize> = accepted.into_iter().collect();
            Ok((0..batch.len())
                .map(|i| {
                    if accepted.contains(&i) {
                        Recorded::Accepted { session_id: session_ids[i].clone() }
                    } else {
                        Recorded::Duplicate
                    }
                })
                .collect())
        }

        /// Inserts queued sessions created at `now`: `(id, what is known, delivery id)`, one
        /// statement per 200.
        async fn insert_sessions(
            tx: &mut sqlx::Transaction<'_, $db>,
            sessions: &[(&str, &$crate::store::NewSession, Option<&str>)],
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::store::StoreResult<()> {
            for chunk in sessions.chunks(200) {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO sessions (id, repo_url, branch, bug_description, repro_command, status, \
                     created_at, updated_at, installation_id, repository, issue_number, issue_title, \
                     trigger_kind, triggered_by, trigger_comment_id, delivery_id, feedback, private, \
                     parent_session_id, iteration_key, iteration_request, pr_number, head_branch) ",
                );
                query.push_values(chunk, |mut row, &(id, new, delivery_id)| {
                    let kind = new.trigger_kind.unwrap_or($crate::store::TriggerKind::Api);
                    row.push_bind(id.to_owned())
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
                        .push_bind(delivery_id.map(str::to_owned))
                        .push_bind(new.feedback.clone())
                        // Unknown visibility counts as private.
                        .push_bind(new.private.unwrap_or(true))
                        .push_bind(new.parent_session_id.clone())
                        .push_bind(new.iteration_key.clone())
                        .push_bind(new.iteration_request.clone())
                        .push_bind(new.pr_number)
                        .push_bind(new.head_branch.clone());
                });
                query.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Inserts queued jobs, due and created at `now`: `(kind, session id, JSON payload)`;
        /// returns their ids (callers rely on the order only for a single job).
        async fn insert_jobs(
            tx: &mut sqlx::Transaction<'_, $db>,
            jobs: &[($crate::store::JobKind, Option<String>, String)],
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::store::StoreResult<Vec<i64>> {
            let mut ids = Vec::with_capacity(jobs.len());
            for chunk in jobs.chunks(500) {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO jobs (kind, session_id, payload, status, attempts, run_after, created_at) ",
                );
                query.push_values(chunk, |mut row, (kind, session_id, payload)| {
                    row.push_bind(kind.as_str())
                        .push_bind(session_id.clone())
                        .push_bind(payload.clone())
                        .push_bind("queued")
                        .push_bind(0_i64)
                        .push_bind(now)
                        .push_bind(now);
                });
                query.push(" RETURNING id");
                let rows: Vec<(i64,)> = query.build_query_as().fetch_all(&mut **tx).await?;
                ids.extend(rows.into_iter().map(|(id,)| id));
            }
            Ok(ids)
        }

        async fn apply_installation_change(
            tx: &mut sqlx::Transaction<'_, $db>,
            change: &$crate::store::InstallationChange,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::store::StoreResult<()> {
            use $crate::store::InstallationChange;
            use $crate::store::sql::{merge_repositories, parse_repositories, repositories_json};
            match change {
                InstallationChange::Upsert { installation_id, account, repositories } => {
                    sqlx::query(
                        "INSERT INTO installations (installation_id, account, repositories, suspended, updated_at) \
                         VALUES ($1, $2, $3, FALSE, $4) ON CONFLICT (installation_id) DO UPDATE SET \
                         account = excluded.account, repositories = excluded.repositories, updated_at = excluded.updated_at",
                    )
                    .bind(installation_id)
                    .bind(account)
                    .bind(repositories_json(&merge_repositories(repositories.clone(), &[], &[])))
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
                InstallationChange::Delete { installation_id } => {
                    sqlx::query("DELETE FROM installations WHERE installation_id = $1")
                        .bind(installation_id)
                        .execute(&mut **tx)
                        .await?;
                }
                InstallationChange::Suspend { installation_id, suspended } => {
                    sqlx::query("UPDATE installations SET suspended = $1, updated_at = $2 WHERE installation_id = $3")
                        .bind(suspended)
                        .bind(now)
                        .bind(installation_id)
                        .execute(&mut **tx)
                        .await?;
                }
                InstallationChange::AddRepositories { installation_id, repositories: add }
                | InstallationChange::RemoveRepositories { installation_id, repositories: add } => {
                    let removing = matches!(change, InstallationChange::RemoveRepositories { .. });
                    let current: Option<(String,)> = sqlx::query_as(
                        "SELECT repositories FROM installations WHERE installation_id = $1",
                    )
                    .bind(installation_id)
                    .fetch_optional(&mut **tx)
                    .await?;
                    let current = match current {
                        Some((json,)) => parse_repositories(&json)?,
                        None => Vec::new(),
                    };
                    let merged = if removing {
                        merge_repositories(current, &[], add)
                    } else {
                        merge_repositories(current, add, &[])
                    };
                    sqlx::query(
                        "INSERT INTO installations (installation_id, account, repositories, suspended, updated_at) \
                         VALUES ($1, '', $2, FALSE, $3) ON CONFLICT (installation_id) DO UPDATE SET \
                         repositories = excluded.repositories, updated_at = excluded.updated_at",
                    )
                    .bind(installation_id)
                    .bind(repositories_json(&merged))
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Ok(())
        }
    };
}

pub(super) use impl_store;
