//! Before cloning: refresh the issue, read the repository's `.github/patchpilot.yml` from the
//! default branch, settle the base branch and the reproduction command.
//!
//! The command that runs is one a writer approved. A label, `/patchpilot` or
//! `/patchpilot repro <cmd>` from a writer takes the command from that event (its argument,
//! or the issue body the event carried). Retries, check-run re-runs and feedback iterations
//! reuse the command of the issue's last approved session. The issue text refreshed here
//! feeds the prompt only: it is never parsed for a command, because its author (or anyone
//! who can edit it) may not have write access.

use crate::agent::git::GitAuth;
use crate::agent::progress::{Progress, github_ref};
use crate::agent::prompt::RepoInstructions;
use crate::report::messages::invalid_repo_config;
use crate::session::issue_body::{Repro, parse_issue_body};
use crate::session::repo_config::{REPO_CONFIG_PATH, RepoConfig};
use crate::store::SessionPatch;
use crate::store::{EventLevel, TriggerKind};

use super::{StepEnv, Stop, github_stop};

/// What the session is to fix, and how: settled before anything is cloned.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub title: String,
    /// The issue's title and body as GitHub has them now (for the prompt only).
    pub description: String,
    pub repro: String,
    pub base_branch: String,
    /// The repository's settings (read from the checkout instead for sessions without
    /// GitHub; see [`super::Cloned::repo_config`]).
    pub config: RepoConfig,
    pub auth: GitAuth,
    pub instructions: Option<RepoInstructions>,
}

impl Prepared {
    /// What the session record says before GitHub was asked.
    fn from_session(env: &StepEnv) -> Self {
        let session = &env.session;
        Self {
            title: session.issue_title.clone().unwrap_or_default(),
            description: session.bug_description.clone(),
            repro: session.repro_command.clone().unwrap_or_default(),
            base_branch: session.branch.clone().unwrap_or_else(|| "main".to_owned()),
            config: RepoConfig::default(),
            auth: GitAuth::anonymous(),
            instructions: None,
        }
    }
}

pub async fn run(env: &StepEnv, progress: &mut Progress) -> Result<Prepared, Stop> {
    let mut ctx = Prepared::from_session(env);
    if let (Some(github), Some(s)) = (env.deps.github.clone(), github_ref(&env.session)) {
        let issue = github
            .get_issue(s.installation, &s.repo, s.issue)
            .await
            .map_err(|e| github_stop(e, "reading the issue"))?;
        // An iteration's "issue" is its pull request: it keeps the first session's report.
        if env.session.parent_session_id.is_none() {
            ctx.title = issue.title.clone();
            ctx.description = format!("{}\n\n{}", issue.title, issue.body)
                .trim_end()
                .to_owned();
        }
        let repo = github
            .repository(s.installation, &s.repo)
            .await
            .map_err(|e| github_stop(e, "reading the repository"))?;
        let config_text = github
            .get_file(
                s.installation,
                &s.repo,
                REPO_CONFIG_PATH,
                &repo.default_branch,
            )
            .await
            .map_err(|e| github_stop(e, "reading .github/patchpilot.yml"))?;
        ctx.config = RepoConfig::parse(config_text.as_deref()).map_err(|err| {
            let fix = format!(
                "Fix `{REPO_CONFIG_PATH}` on the default branch, then comment `/patchpilot retry`."
            );
            Stop::from_outcome(invalid_repo_config(&err, &fix))
        })?;
        ctx.base_branch = env
            .session
            .branch
            .clone()
            .unwrap_or(repo.default_branch.clone());
        let token = github
            .installation_token(s.installation, &s.repo)
            .await
            .map_err(|e| github_stop(e, "getting an installation token"))?;
        ctx.auth = GitAuth::with_token(token);
        let path = ctx
            .config
            .instructions_file
            .clone()
            .unwrap_or_else(|| "AGENTS.md".to_owned());
        let content = github
            .get_file(s.installation, &s.repo, &path, &ctx.base_branch)
            .await
            .ok()
            .flatten();
        ctx.instructions = content.map(|content| RepoInstructions { path, content });
        let base = github
            .branch_head(s.installation, &s.repo, &ctx.base_branch)
            .await
            .map_err(|e| github_stop(e, "reading the base branch"))?;
        // An iteration's check run goes on the commit it pushes, never on the head it found.
        if env.session.parent_session_id.is_none() {
            progress.set_check_commit(&base.0);
        }
    }
    ctx.repro = settle_repro(env, &ctx.config).await?;
    progress.repro_command = Some(ctx.repro.clone());
    let patch = SessionPatch {
        repro_command: Some(ctx.repro.clone()),
        branch: Some(ctx.base_branch.clone()),
        issue_title: (!ctx.title.is_empty()).then(|| ctx.title.clone()),
        bug_description: Some(ctx.description.clone()),
        ..SessionPatch::default()
    };
    env.record(patch).await;
    progress
        .log(
            "prepare",
            EventLevel::Info,
            &format!(
                "base branch `{}`, reproduction command `{}`",
                ctx.base_branch, ctx.repro
            ),
        )
        .await;
    Ok(ctx)
}

/// A follow-up's pinned command wins, then the command recorded with the trigger, then the
/// issue body as the trigger carried it, then the repository's test command.
async fn settle_repro(env: &StepEnv, config: &RepoConfig) -> Result<String, Stop> {
    if let Some(command) = pinned_repro(env).await? {
        return Ok(command);
    }
    if let Some(command) = env
        .session
        .repro_command
        .clone()
        .filter(|c| !c.trim().is_empty())
    {
        return Ok(command);
    }
    // The body as the triggering event carried it, not the description refreshed above.
    match parse_issue_body(&env.session.bug_description).repro {
        Repro::Found { command, .. } => Ok(command),
        Repro::Ambiguous(candidates) => Err(Stop::failed(
            format!(
                "the issue has {} different candidate reproduction commands ({}), so PatchPilot cannot tell which one shows the bug",
                candidates.len(),
                candidates
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "Comment `/patchpilot repro <command>` with the one command that fails because of this bug.",
        )),
        Repro::Missing => match config.test_command.clone() {
            Some(command) => Ok(command),
            None => Err(Stop::failed(
                "the issue does not say how to reproduce the bug",
                "Comment `/patchpilot repro <command>` with a command that fails because of this bug (for example `pytest tests/test_x.py -k name`), or add a `repro: <command>` line or a fenced block under a \"Steps to reproduce\" heading to the issue, or set `test_command` in .github/patchpilot.yml.",
            )),
        },
    }
}

/// The command of the issue's last approved session, for sessions that follow one up.
async fn pinned_repro(env: &StepEnv) -> Result<Option<String>, Stop> {
    let follow_up = matches!(
        env.session.trigger_kind,
        TriggerKind::Retry | TriggerKind::CheckRun | TriggerKind::PullRequestFeedback
    );
    let (true, Some(github)) = (follow_up, &env.session.github) else {
        return Ok(None);
    };
    env.deps
        .store
        .approved_repro_command(&github.repository, github.issue_number, &env.session.id)
        .await
        .map_err(|err| Stop::Transient(format!("reading the approved command: {err}")))
}
