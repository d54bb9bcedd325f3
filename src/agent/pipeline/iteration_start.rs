//! Command jobs that start an iteration on a pull request PatchPilot opened: feedback
//! (`/patchpilot <text>`), a review, or CI that failed on its branch.
//!
//! Checked here, in the worker, because each needs GitHub: the pull request is open, was
//! opened by the App from a `patchpilot/issue-<n>` branch, and belongs to a session of ours
//! (the first one, which the iteration links to). The sender's permission was checked by the
//! caller (`commands.rs`) for feedback and reviews, as for every command; the iteration
//! session checks it again when it runs (`authorize.rs`), together with "one session at a
//! time per pull request", so a second request while one runs is answered, not raced.
//!
//! CI rounds are bounded three ways: one per head commit (the iteration key, unique in the
//! store), at most `max_ci_fixes` per pull request, and none while another round runs (that
//! round's push is tested by CI again).

use crate::authorization::is_our_pull_request;
use crate::github::client::{GitHub, PullRequestInfo};
use crate::github::markers::reply_marker;
use crate::github::types::{InstallationId, IssueNumber, RepoName};
use crate::report::iteration::ci_cap_reply;
use crate::session::iteration::{CI_KEY_PREFIX, IterationRequest, issue_of_branch};
use crate::session::repo_config::{REPO_CONFIG_PATH, RepoConfig};
use crate::store::SessionFilter;
use crate::store::{NewSession, Session, TriggerKind};
use crate::webhook::triggers::CommandJob;
use crate::worker::JobError;

use crate::agent::deps::PipelineDeps;

fn transient(err: impl std::fmt::Display) -> JobError {
    JobError::Transient(err.to_string())
}

/// The pull request and the session that opened it.
struct Target {
    pull: PullRequestInfo,
    first: Session,
}

/// Where a job is, on GitHub.
pub struct Place<'a> {
    pub inst: InstallationId,
    pub repo: &'a RepoName,
}

/// `/patchpilot <text>` on a pull request.
pub async fn feedback(
    deps: &PipelineDeps,
    github: &dyn GitHub,
    job: &CommandJob,
    at: Place<'_>,
) -> Result<(), JobError> {
    let pr = IssueNumber(job.issue_number as u64);
    let Some(target) = target(deps, github, &at, pr).await? else {
        return github
            .post_comment(
                at.inst,
                at.repo,
                pr,
                "PatchPilot only takes feedback on open pull requests it opened.",
            )
            .await
            .map(|_| ())
            .map_err(transient);
    };
    let request = IterationRequest::Feedback {
        comment_id: job.comment_id,
        text: job.text.clone(),
    };
    let new = iteration_session(job, &target, &request, Some(job.sender.clone()));
    create(deps, &target, new, &request).await.map(|_| ())
}

/// A review (changes requested, or line comments) on a pull request.
pub async fn review(
    deps: &PipelineDeps,
    github: &dyn GitHub,
    job: &CommandJob,
    at: Place<'_>,
) -> Result<(), JobError> {
    let pr = IssueNumber(job.issue_number as u64);
    let Some(review_id) = job.review_id else {
        return Err(JobError::Permanent("review job without a review id".into()));
    };
    let Some(target) = target(deps, github, &at, pr).await? else {
        tracing::info!(pr = %pr, "review ignored: not an open PatchPilot pull request");
        return Ok(());
    };
    let review = github
        .get_review(at.inst, at.repo, pr, review_id as u64)
        .await
        .map_err(transient)?;
    if matches!(review.state.as_str(), "APPROVED" | "DISMISSED" | "PENDING") {
        tracing::info!(pr = %pr, state = %review.state, "review ignored: nothing requested");
        return Ok(());
    }
    let request = IterationRequest::Review { review_id };
    let new = iteration_session(job, &target, &request, Some(job.sender.clone()));
    create(deps, &target, new, &request).await.map(|_| ())
}

/// CI failed on a PatchPilot branch: at most one bounded fix-up round.
pub async fn ci_failure(
    deps: &PipelineDeps,
    github: &dyn GitHub,
    job: &CommandJob,
    at: Place<'_>,
) -> Result<(), JobError> {
    let (Some(head_sha), Some(branch)) = (job.head_sha.clone(), job.head_branch.as_deref()) else {
        return Err(JobError::Permanent("CI job without a head commit".into()));
    };
    let Some(issue) = issue_of_branch(branch) else {
        return Ok(());
    };
    let Some(pr) = first_session_for_issue(deps, &job.repository, issue)
        .await?
        .and_then(|s| s.pr_number)
    else {
        tracing::info!(%branch, "CI failure ignored: no PatchPilot pull request for the branch");
        return Ok(());
    };
    let pr = IssueNumber(pr as u64);
    let Some(target) = target(deps, github, &at, pr).await? else {
        return Ok(());
    };
    if target.pull.head_sha.0 != head_sha {
        tracing::info!(pr = %pr, "CI failure ignored: the branch has a newer head");
        return Ok(());
    }
    let active = deps
        .store
        .active_session_for_issue(&job.repository, pr.0 as i64)
        .await
        .map_err(transient)?;
    if active.is_some() {
        tracing::info!(pr = %pr, "CI failure ignored: a round is running; CI tests its push");
        return Ok(());
    }
    let request = IterationRequest::CiFailure {
        head_sha,
        workflow_run_id: job.workflow_run_id,
        check_suite_id: job.check_suite_id,
    };
    let earlier = iterations(deps, &target).await?;
    let key = |s: &Session| s.iteration_key.clone().unwrap_or_default();
    if earlier.iter().any(|s| key(s) == request.key()) {
        tracing::info!(pr = %pr, "CI failure ignored: this head already had its round");
        return Ok(());
    }
    let rounds = earlier
        .iter()
        .filter(|s| key(s).starts_with(CI_KEY_PREFIX))
        .count() as u32;
    let config = repo_config(github, &at).await?;
    if rounds >= config.max_ci_fixes {
        return say_cap_reached(github, &at, pr, rounds).await;
    }
    let new = iteration_session(job, &target, &request, None);
    create(deps, &target, new, &request).await.map(|_| ())
}

/// The pull request when it is open, ours, and opened by one of our sessions.
async fn target(
    deps: &PipelineDeps,
    github: &dyn GitHub,
    at: &Place<'_>,
    pr: IssueNumber,
) -> Result<Option<Target>, JobError> {
    let pull = match github.get_pull_request(at.inst, at.repo, pr).await {
        Ok(pull) => pull,
        Err(err) if err.status() == Some(404) => return Ok(None),
        Err(err) => return Err(transient(err)),
    };
    let bot = github.bot_login().await.map_err(transient)?;
    let Some(issue) = issue_of_branch(&pull.head_branch) else {
        return Ok(None);
    };
    if !pull.open || !is_our_pull_request(&pull.head_branch, &pull.author, Some(&bot)) {
        return Ok(None);
    }
    let first = first_session_for_issue(deps, &at.repo.to_string(), issue)
        .await?
        .filter(|s| s.pr_number == Some(pr.0 as i64));
    Ok(first.map(|first| Target { pull, first }))
}

/// The newest first (non-iteration) session of an issue that opened a pull request.
async fn first_session_for_issue(
    deps: &PipelineDeps,
    repository: &str,
    issue: i64,
) -> Result<Option<Session>, JobError> {
    let filter = SessionFilter {
        repository: Some(repository.to_owned()),
        issue_number: Some(issue),
        status: None,
        limit: 200,
    };
    Ok(deps
        .store
        .list_sessions(&filter)
        .await
        .map_err(transient)?
        .into_iter()
        .find(|s| s.parent_session_id.is_none() && s.pr_number.is_some()))
}

/// The iterations linked to the pull request's first session.
async fn iterations(deps: &PipelineDeps, target: &Target) -> Result<Vec<Session>, JobError> {
    let filter = SessionFilter {
        repository: target.first.github.as_ref().map(|g| g.repository.clone()),
        issue_number: Some(target.pull.number.0 as i64),
        status: None,
        limit: 500,
    };
    let mut list = deps.store.list_sessions(&filter).await.map_err(transient)?;
    list.retain(|s| s.parent_session_id.as_deref() == Some(target.first.id.as_str()));
    Ok(list)
}

async fn repo_config(github: &dyn GitHub, at: &Place<'_>) -> Result<RepoConfig, JobError> {
    let repo = github
        .repository(at.inst, at.repo)
        .await
        .map_err(transient)?;
    let text = github
        .get_file(at.inst, at.repo, REPO_CONFIG_PATH, &repo.default_branch)
        .await
        .map_err(transient)?;
    // A broken file allows no automatic rounds; the next session reports the error.
    Ok(RepoConfig::parse(text.as_deref()).unwrap_or(RepoConfig {
        max_ci_fixes: 0,
        ..RepoConfig::default()
    }))
}

/// Says once per pull request that the CI cap is reached.
async fn say_cap_reached(
    github: &dyn GitHub,
    at: &Place<'_>,
    pr: IssueNumber,
    rounds: u32,
) -> Result<(), JobError> {
    tracing::info!(pr = %pr, rounds, "CI failure ignored: the per-PR cap is reached");
    let bot = github.bot_login().await.map_err(transient)?;
    let marker = reply_marker("ci-cap");
    let said = github
        .list_comments(at.inst, at.repo, pr)
        .await
        .map_err(transient)?
        .iter()
        .any(|c| c.author.eq_ignore_ascii_case(&bot) && c.body.contains(&marker));
    if said {
        return Ok(());
    }
    github
        .post_comment(at.inst, at.repo, pr, &ci_cap_reply(rounds))
        .await
        .map(|_| ())
        .map_err(transient)
}

fn iteration_session(
    job: &CommandJob,
    target: &Target,
    request: &IterationRequest,
    sender: Option<String>,
) -> NewSession {
    let first = &target.first;
    NewSession {
        repo_url: job.clone_url.clone(),
        branch: Some(target.pull.head_branch.clone()),
        bug_description: first.bug_description.clone(),
        repro_command: first.repro_command.clone(),
        installation_id: Some(job.installation_id),
        repository: Some(job.repository.clone()),
        issue_number: Some(target.pull.number.0 as i64),
        issue_title: first.issue_title.clone(),
        trigger_kind: Some(TriggerKind::PullRequestFeedback),
        triggered_by: sender,
        trigger_comment_id: match request {
            IterationRequest::Feedback { comment_id, .. } => Some(*comment_id),
            _ => None,
        },
        feedback: match request {
            IterationRequest::Feedback { text, .. } => Some(text.clone()),
            _ => None,
        },
        private: Some(first.private),
        parent_session_id: Some(first.id.clone()),
        iteration_key: Some(request.key()),
        iteration_request: Some(request.to_json()),
        pr_number: Some(target.pull.number.0 as i64),
        head_branch: Some(target.pull.head_branch.clone()),
    }
}

/// Creates the iteration unless one with the same key exists (a redelivered or duplicate
/// event); the store's unique index settles a race between two workers.
async fn create(
    deps: &PipelineDeps,
    target: &Target,
    new: NewSession,
    request: &IterationRequest,
) -> Result<Option<Session>, JobError> {
    let key = request.key();
    let exists = |list: &[Session]| {
        list.iter()
            .any(|s| s.iteration_key.as_deref() == Some(key.as_str()))
    };
    if exists(&iterations(deps, target).await?) {
        tracing::info!(%key, "iteration already started");
        return Ok(None);
    }
    match deps.store.create_session(new).await {
        Ok(session) => {
            tracing::info!(session = %session.id, %key, "iteration queued");
            Ok(Some(session))
        }
        Err(err) if exists(&iterations(deps, target).await?) => {
            tracing::info!(%key, error = %err, "iteration started by a concurrent job");
            Ok(None)
        }
        Err(err) => Err(transient(err)),
    }
}
