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

use std::sync::Arc;

use tokio::sync::Mutex;

use super::client::{
    CheckOutput, CheckRunUpdate, CheckStatus, GitHub, GitHubResult, Reaction, ReactionTarget,
};
use super::messages::{ProgressView, parse_session_marker, progress_comment, reply_marker};
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

    /// Creates or edits the single progress comment to show `view`.
    pub async fn progress(&self, view: &ProgressView) -> GitHubResult<CommentId> {
        let s = &self.session;
        let body = progress_comment(view);
        let mut known = self.comment.lock().await;
        if known.is_none() {
            *known = self.find_progress_comment().await?;
        }
        if let Some(id) = *known {
            match self
                .github
                .update_comment(s.installation, &s.repo, id, &body)
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
            .post_comment(s.installation, &s.repo, s.issue, &body)
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
    /// working, the PR head once pushed).
    pub async fn check(
        &self,
        head_sha: &CommitSha,
        status: CheckStatus,
        details_url: Option<String>,
        output: CheckOutput,
    ) -> GitHubResult<CheckRunId> {
        let s = &self.session;
        let update = CheckRunUpdate {
            name: CHECK_RUN_NAME.to_owned(),
            status,
            details_url,
            // Ties a rerequested check run back to its issue (see `webhook::triggers`).
            external_id: Some(crate::webhook::triggers::check_run_external_id(
                s.issue.0 as i64,
            )),
            output: Some(output),
        };
        let mut current = self.check_run.lock().await;
        if let Some((sha, id)) = current.as_ref()
            && sha == head_sha
        {
            self.github
                .update_check_run(s.installation, &s.repo, *id, &update)
                .await?;
            return Ok(*id);
        }
        let id = self
            .github
            .create_check_run(s.installation, &s.repo, head_sha, &update)
            .await?;
        *current = Some((head_sha.clone(), id));
        Ok(id)
    }
}

/// Posts `body` on an issue unless the App already posted a reply of this `kind` there
/// (e.g. `unauthorised`: at most one polite reply per issue, however often someone tries).
/// Returns the new comment, or `None` when one already existed.
pub async fn reply_once(
    github: &dyn GitHub,
    installation: InstallationId,
    repo: &RepoName,
    issue: IssueNumber,
    kind: &str,
    body: &str,
) -> GitHubResult<Option<CommentId>> {
    let marker = reply_marker(kind);
    let bot = github.bot_login().await?;
    let comments = github.list_comments(installation, repo, issue).await?;
    let already = comments
        .iter()
        .any(|c| c.author.eq_ignore_ascii_case(&bot) && c.body.starts_with(&marker));
    if already {
        return Ok(None);
    }
    let id = github
        .post_comment(installation, repo, issue, &format!("{marker}\n{body}"))
        .await?;
    Ok(Some(id))
}
