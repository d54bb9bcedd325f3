//! The reporter: what one session shows on GitHub.
//!
//! Per session there is exactly one progress comment and one check run per head commit.
//! Invariants and races handled:
//! - The progress comment is found again after a restart by its hidden marker, but only in
//!   comments written by the App's own bot login — anyone can paste a marker into a comment.
//! - Updates are serialised by an async mutex, so two concurrent updates cannot both decide
//!   "no comment yet" and post two.
//! - Before posting, the issue's comments are listed, so a retried call (after a crash, or
//!   after GitHub created the comment but the answer was lost) edits instead of duplicating.
//! - A progress comment deleted by a human is re-posted rather than failing the session.
//! - Every check run ends: when the run moves to another commit (the base commit while
//!   working, the PR head once pushed), the earlier run is remembered and completed with the
//!   same conclusion, pointing to the new one, as soon as that one completes.
//! - Check runs are created idempotently. A process can die after GitHub created a run and
//!   before its id was stored; so before creating one on a commit, this App's runs there are
//!   listed and one of this session's is reused: the one whose details link names the
//!   session, else one still in progress with the issue's external id (only one session per
//!   issue is active at a time). The commits a resumed session had used are swept the same
//!   way when it completes, so no run is left spinning by a crash.
//! - Replies to people without write access are rate-limited per user and per issue
//!   ([`reply_limited`]), counted from the App's own earlier replies on the issue, so the
//!   limit holds across restarts and replicas without a table.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Mutex;

use super::client::{
    CheckOutput, CheckRunUpdate, CheckStatus, GitHub, GitHubResult, Reaction, ReactionTarget,
};
use super::markers::{check_run_external_id, parse_session_marker, reply_marker};
use super::types::{CheckRunId, CommentId, CommitSha, InstallationId, IssueNumber, RepoName};

/// The name of PatchPilot's check run.
pub const CHECK_RUN_NAME: &str = "PatchPilot";

/// The GitHub coordinates of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub installation: InstallationId,
    pub repo: RepoName,
    pub issue: IssueNumber,
    pub session_id: String,
}

/// Reports one session's progress on its issue and check run.
pub struct Reporter {
    github: Arc<dyn GitHub>,
    session: SessionRef,
    comment: Mutex<Option<CommentId>>,
    check_run: Mutex<Option<(CommitSha, CheckRunId)>>,
    /// Earlier runs on other commits, completed when the current one completes.
    superseded: Mutex<Vec<(CommitSha, CheckRunId)>>,
    /// Commits an earlier attempt of this session may have left a run on (see the module doc).
    earlier_commits: Mutex<Vec<CommitSha>>,
}

impl Reporter {
    pub fn new(github: Arc<dyn GitHub>, session: SessionRef) -> Self {
        Self::resume(github, session, None, None)
    }

    /// A reporter that already knows its comment / check run (ids persisted by the store).
    pub fn resume(
        github: Arc<dyn GitHub>,
        session: SessionRef,
        comment: Option<CommentId>,
        check_run: Option<(CommitSha, CheckRunId)>,
    ) -> Self {
        Self {
            github,
            session,
            comment: Mutex::new(comment),
            check_run: Mutex::new(check_run),
            superseded: Mutex::new(Vec::new()),
            earlier_commits: Mutex::new(Vec::new()),
        }
    }

    /// Remembers commits an earlier (crashed) attempt of this session used, so their runs
    /// still in progress are completed with this one.
    pub async fn remember_commits(&self, commits: impl IntoIterator<Item = CommitSha>) {
        let mut known = self.earlier_commits.lock().await;
        for sha in commits {
            if !known.contains(&sha) {
                known.push(sha);
            }
        }
    }

    pub fn session(&self) -> &SessionRef {
        &self.session
    }

    /// The progress comment's id once known (worth persisting).
    pub async fn comment_id(&self) -> Option<CommentId> {
        *self.comment.lock().await
    }

    /// The current check run and the commit it is on, once created.
    pub async fn check_run(&self) -> Option<(CommitSha, CheckRunId)> {
        self.check_run.lock().await.clone()
    }

    /// 👀 on the triggering comment, or on the issue for label triggers.
    pub async fn acknowledge(&self, target: ReactionTarget) -> GitHubResult<()> {
        let s = &self.session;
        self.github
            .add_reaction(s.installation, &s.repo, target, Reaction::Eyes)
            .await
    }

    /// A one-off reply on the issue (unauthorised, already running, help, status...).
    pub async fn reply(&self, body: &str) -> GitHubResult<CommentId> {
        let s = &self.session;
        self.github
            .post_comment(s.installation, &s.repo, s.issue, body)
            .await
    }

    /// Creates or edits the single progress comment to read `body`, which starts with the
    /// session's marker (`markers::session_marker`).
    pub async fn progress(&self, body: &str) -> GitHubResult<CommentId> {
        let s = &self.session;
        let mut known = self.comment.lock().await;
        if known.is_none() {
            *known = self.find_progress_comment().await?;
        }
        if let Some(id) = *known {
            match self
                .github
                .update_comment(s.installation, &s.repo, id, body)
                .await
            {
                Ok(()) => return Ok(id),
                // Deleted by someone: post a fresh one below.
                Err(err) if err.status() == Some(404) => {
                    tracing::info!(session = %s.session_id, comment = %id, "progress comment gone; posting a new one");
                }
                Err(err) => return Err(err),
            }
        }
        let id = self
            .github
            .post_comment(s.installation, &s.repo, s.issue, body)
            .await?;
        *known = Some(id);
        Ok(id)
    }

    /// The App's own comment carrying this session's marker, if any.
    pub async fn find_progress_comment(&self) -> GitHubResult<Option<CommentId>> {
        let s = &self.session;
        let bot = self.github.bot_login().await?;
        let comments = self
            .github
            .list_comments(s.installation, &s.repo, s.issue)
            .await?;
        Ok(comments
            .iter()
            .filter(|c| c.author.eq_ignore_ascii_case(&bot))
            .find(|c| parse_session_marker(&c.body) == Some(s.session_id.as_str()))
            .map(|c| c.id))
    }

    /// Shows `status` and `output` on the check run for `head_sha`: updates the current run
    /// when it is on that commit, otherwise creates a new run there (the base commit while
    /// working, the PR head once pushed). On completion, runs left on earlier commits are
    /// completed the same way and show `superseded` (which points to this one).
    pub async fn check(
        &self,
        head_sha: &CommitSha,
        status: CheckStatus,
        details_url: Option<String>,
        output: CheckOutput,
        superseded: CheckOutput,
    ) -> GitHubResult<CheckRunId> {
        let s = &self.session;
        let update = CheckRunUpdate {
            name: CHECK_RUN_NAME.to_owned(),
            status,
            details_url,
            // Ties a rerequested check run back to its issue (see `webhook::triggers`).
            external_id: Some(check_run_external_id(s.issue.0 as i64)),
            output: Some(output.clone()),
        };
        let mut current = self.check_run.lock().await;
        let id = match current.as_ref() {
            Some((sha, id)) if sha == head_sha => {
                self.github
                    .update_check_run(s.installation, &s.repo, *id, &update)
                    .await?;
                *id
            }
            previous => {
                let id = match self.find_check_run(head_sha).await? {
                    Some(id) => {
                        self.github
                            .update_check_run(s.installation, &s.repo, id, &update)
                            .await?;
                        id
                    }
                    None => {
                        self.github
                            .create_check_run(s.installation, &s.repo, head_sha, &update)
                            .await?
                    }
                };
                if let Some(previous) = previous.cloned() {
                    self.superseded.lock().await.push(previous);
                }
                *current = Some((head_sha.clone(), id));
                id
            }
        };
        if matches!(status, CheckStatus::Completed(_)) {
            self.complete_superseded(head_sha, status, &superseded)
                .await;
        }
        Ok(id)
    }

    /// This session's run on `head_sha` if one exists already (see the module doc).
    pub async fn find_check_run(&self, head_sha: &CommitSha) -> GitHubResult<Option<CheckRunId>> {
        let s = &self.session;
        let external_id = check_run_external_id(s.issue.0 as i64);
        let runs = self
            .github
            .list_check_runs(s.installation, &s.repo, head_sha, CHECK_RUN_NAME)
            .await?;
        let ours: Vec<_> = runs
            .into_iter()
            .filter(|r| r.external_id.as_deref() == Some(external_id.as_str()))
            .collect();
        let named = ours.iter().find(|r| {
            r.details_url
                .as_deref()
                .is_some_and(|url| url.contains(&s.session_id))
        });
        let running = ours.iter().find(|r| !r.completed);
        Ok(named.or(running).map(|r| r.id))
    }

    /// Runs still in progress on the remembered earlier commits (other than `head_sha`).
    async fn leftover_runs(&self, head_sha: &CommitSha) -> Vec<(CommitSha, CheckRunId)> {
        let s = &self.session;
        let external_id = check_run_external_id(s.issue.0 as i64);
        let commits = self.earlier_commits.lock().await.clone();
        let tracked: Vec<CheckRunId> = self
            .superseded
            .lock()
            .await
            .iter()
            .map(|(_, id)| *id)
            .collect();
        let mut found = Vec::new();
        for sha in commits.into_iter().filter(|sha| sha != head_sha) {
            match self
                .github
                .list_check_runs(s.installation, &s.repo, &sha, CHECK_RUN_NAME)
                .await
            {
                Ok(runs) => found.extend(
                    runs.into_iter()
                        .filter(|r| !r.completed && !tracked.contains(&r.id))
                        .filter(|r| r.external_id.as_deref() == Some(external_id.as_str()))
                        .map(|r| (sha.clone(), r.id)),
                ),
                Err(err) => {
                    tracing::warn!(session = %s.session_id, commit = %sha.0, error = %err, "could not list earlier check runs")
                }
            }
        }
        found
    }

    /// Completes the runs left on earlier commits like the current one, pointing to it. A
    /// failure is logged and retried with the next completed update.
    async fn complete_superseded(
        &self,
        head_sha: &CommitSha,
        status: CheckStatus,
        output: &CheckOutput,
    ) {
        let s = &self.session;
        let leftovers = self.leftover_runs(head_sha).await;
        self.earlier_commits.lock().await.clear();
        let mut superseded = self.superseded.lock().await;
        superseded.extend(leftovers);
        let mut left = Vec::new();
        for (sha, id) in superseded.drain(..) {
            let update = CheckRunUpdate {
                name: CHECK_RUN_NAME.to_owned(),
                status,
                details_url: None,
                external_id: Some(check_run_external_id(s.issue.0 as i64)),
                output: Some(output.clone()),
            };
            if let Err(err) = self
                .github
                .update_check_run(s.installation, &s.repo, id, &update)
                .await
            {
                tracing::warn!(session = %s.session_id, check_run = %id, error = %err, "could not complete the earlier check run");
                left.push((sha, id));
            }
        }
        *superseded = left;
    }
}

/// The hidden marker, at the end of a one-off reply, that makes it idempotent:
/// `<!-- patchpilot:reply-to=<key> -->`.
pub fn reply_once_marker(key: &str) -> String {
    format!("<!-- patchpilot:reply-to={key} -->")
}

/// Posts `body` on an issue once per `key` (the triggering comment, the session): a job that
/// is run again after its replica died between posting and recording finds its earlier reply
/// (only among the bot's own comments) and does not post a second one.
pub async fn reply_once(
    github: &dyn GitHub,
    installation: InstallationId,
    repo: &RepoName,
    issue: IssueNumber,
    key: &str,
    body: &str,
) -> GitHubResult<CommentId> {
    let marker = reply_once_marker(key);
    let bot = github.bot_login().await?;
    let comments = github.list_comments(installation, repo, issue).await?;
    if let Some(earlier) = comments
        .iter()
        .find(|c| c.author.eq_ignore_ascii_case(&bot) && c.body.trim_end().ends_with(&marker))
    {
        return Ok(earlier.id);
    }
    github
        .post_comment(installation, repo, issue, &format!("{body}\n\n{marker}"))
        .await
}

/// How often PatchPilot answers people without write access (help, unauthorised) on one issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLimit {
    /// At most one reply of a kind per user per issue within this window.
    pub per_user: Duration,
    /// At most this many replies of a kind per issue within `issue_window`, whoever asks.
    pub per_issue: usize,
    pub issue_window: Duration,
}

impl Default for ReplyLimit {
    fn default() -> Self {
        Self {
            per_user: Duration::hours(1),
            per_issue: 5,
            issue_window: Duration::hours(24),
        }
    }
}

/// One earlier limited reply, read back from its hidden marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastReply {
    pub kind: String,
    /// `None` for replies written before markers named the user.
    pub user: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

/// The hidden marker of a limited reply: `<!-- patchpilot:reply=<kind> user=<login> at=<time> -->`.
pub fn limited_reply_marker(kind: &str, user: &str, at: DateTime<Utc>) -> String {
    let marker = reply_marker(kind);
    let head = marker.trim_end_matches(" -->");
    format!(
        "{head} user={user} at={} -->",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Reads a limited reply's marker from the start of a comment.
pub fn parse_reply_marker(body: &str) -> Option<PastReply> {
    let rest = body.trim_start().strip_prefix("<!-- patchpilot:reply=")?;
    let (fields, _) = rest.split_once("-->")?;
    let mut words = fields.split_whitespace();
    let kind = words.next()?.to_owned();
    let (mut user, mut at) = (None, None);
    for word in words {
        if let Some(login) = word.strip_prefix("user=") {
            user = Some(login.to_owned());
        } else if let Some(time) = word.strip_prefix("at=") {
            at = DateTime::parse_from_rfc3339(time)
                .ok()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    Some(PastReply { kind, user, at })
}

/// Whether `user` may get another reply of `kind` now, given the App's earlier replies on the
/// issue. Replies of unknown time count as recent (a safe default for old markers).
pub fn reply_allowed(
    past: &[PastReply],
    kind: &str,
    user: &str,
    now: DateTime<Utc>,
    limit: &ReplyLimit,
) -> bool {
    let within = |reply: &PastReply, window: Duration| reply.at.is_none_or(|at| now - at < window);
    let same_kind: Vec<&PastReply> = past.iter().filter(|r| r.kind == kind).collect();
    let for_user = same_kind.iter().any(|r| {
        r.user
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(user))
            && within(r, limit.per_user)
    });
    let on_issue = same_kind
        .iter()
        .filter(|r| within(r, limit.issue_window))
        .count();
    !for_user && on_issue < limit.per_issue
}

/// Posts `body` for `user` on an issue unless [`reply_allowed`] says they (or the issue) had
/// enough replies of this `kind` (`unauthorised`, `help`) already. Returns the new comment, or
/// `None` when the reply was held back.
#[allow(clippy::too_many_arguments)]
pub async fn reply_limited(
    github: &dyn GitHub,
    installation: InstallationId,
    repo: &RepoName,
    issue: IssueNumber,
    kind: &str,
    user: &str,
    body: &str,
    now: DateTime<Utc>,
) -> GitHubResult<Option<CommentId>> {
    let bot = github.bot_login().await?;
    let comments = github.list_comments(installation, repo, issue).await?;
    let past: Vec<PastReply> = comments
        .iter()
        .filter(|c| c.author.eq_ignore_ascii_case(&bot))
        .filter_map(|c| parse_reply_marker(&c.body))
        .collect();
    if !reply_allowed(&past, kind, user, now, &ReplyLimit::default()) {
        tracing::info!(kind, user, issue = %issue, "reply held back by the rate limit");
        return Ok(None);
    }
    let marker = limited_reply_marker(kind, user, now);
    let id = github
        .post_comment(installation, repo, issue, &format!("{marker}\n{body}"))
        .await?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(minutes)
    }

    fn reply(kind: &str, user: &str, minutes: i64) -> PastReply {
        parse_reply_marker(&format!(
            "{}\nThanks",
            limited_reply_marker(kind, user, at(minutes))
        ))
        .unwrap()
    }

    #[test]
    fn markers_round_trip_and_old_markers_still_count() {
        assert_eq!(
            limited_reply_marker("help", "mallory", at(0)),
            "<!-- patchpilot:reply=help user=mallory at=2026-12-01T09:00:00Z -->"
        );
        assert_eq!(
            reply("help", "mallory", 5),
            PastReply {
                kind: "help".into(),
                user: Some("mallory".into()),
                at: Some(at(5))
            }
        );
        let old = parse_reply_marker("<!-- patchpilot:reply=unauthorised -->\nThanks").unwrap();
        assert_eq!((old.user, old.at), (None, None));
        assert_eq!(
            parse_reply_marker("hi <!-- patchpilot:reply=help -->"),
            None
        );
        let limit = ReplyLimit::default();
        let old = parse_reply_marker("<!-- patchpilot:reply=unauthorised -->").unwrap();
        assert!(!reply_allowed(
            &[old],
            "unauthorised",
            "anyone",
            at(0),
            &limit
        ));
    }

    #[test]
    fn one_reply_per_user_per_hour_and_a_cap_per_issue() {
        let limit = ReplyLimit::default();
        let past = vec![reply("unauthorised", "mallory", 0)];
        assert!(!reply_allowed(
            &past,
            "unauthorised",
            "mallory",
            at(59),
            &limit
        ));
        assert!(!reply_allowed(
            &past,
            "unauthorised",
            "MALLORY",
            at(30),
            &limit
        ));
        assert!(reply_allowed(
            &past,
            "unauthorised",
            "mallory",
            at(61),
            &limit
        ));
        assert!(reply_allowed(&past, "unauthorised", "trudy", at(1), &limit));
        assert!(
            reply_allowed(&past, "help", "mallory", at(1), &limit),
            "kinds are separate"
        );
        let crowd: Vec<PastReply> = (0..5)
            .map(|i| reply("unauthorised", &format!("user{i}"), i * 10))
            .collect();
        assert!(!reply_allowed(
            &crowd,
            "unauthorised",
            "newcomer",
            at(100),
            &limit
        ));
        assert!(
            reply_allowed(&crowd, "unauthorised", "newcomer", at(24 * 60 + 41), &limit),
            "the issue window slides"
        );
    }
}
