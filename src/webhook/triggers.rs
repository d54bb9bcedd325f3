//! Event -> command: the trigger rules, pure and unit-tested.
//!
//! The webhook handler only verifies, decides and records; everything that needs GitHub
//! (permission checks, replies, reactions) happens in the worker, driven by the job recorded
//! here in the same transaction as the delivery.

use super::command::{SlashCommand, parse_comment};
use super::decision::sender_refusal;
use super::events::{
    Account, Event, InstallationEvent, InstallationRepositoriesEvent, Issue, Repository,
};
use crate::github::markers::issue_from_external_id;
use crate::github::reporter::CHECK_RUN_NAME;
use crate::session::issue_body::{Repro, parse_issue_body};
use crate::store::{InstallationChange, IntakeEffect};
use crate::store::{NewSession, TriggerKind};

pub use super::decision::{CommandJob, CommandKind, Decision, TriggerSettings};

/// Applies the trigger rules to one verified event.
pub fn decide(event: &Event, settings: &TriggerSettings) -> Decision {
    match event {
        Event::Ping => Decision {
            outcome: "ping".to_owned(),
            effect: IntakeEffect::None,
        },
        Event::Issues(e) if e.action != "labeled" => {
            Decision::ignored(format!("issues.{}", e.action))
        }
        Event::Issues(e) => {
            let label = e
                .label
                .as_ref()
                .map(|l| l.name.as_str())
                .unwrap_or_default();
            if !label.eq_ignore_ascii_case(&settings.label) {
                return Decision::ignored(format!("label `{label}` is not `{}`", settings.label));
            }
            let Some(installation) = &e.installation else {
                return Decision::ignored("no installation in payload");
            };
            if let Some(reason) = sender_refusal(&e.sender, settings) {
                return Decision::ignored(reason);
            }
            start(
                &e.repository,
                installation.id,
                &e.issue,
                &e.sender,
                TriggerKind::Label,
                None,
                None,
            )
        }
        Event::IssueComment(e) if e.action != "created" => {
            Decision::ignored(format!("issue_comment.{}", e.action))
        }
        Event::IssueComment(e) => {
            if let Some(reason) = sender_refusal(&e.comment.user, settings) {
                return Decision::ignored(reason);
            }
            let Some(command) = parse_comment(&e.comment.body) else {
                return Decision::ignored("no /patchpilot command");
            };
            let Some(installation) = &e.installation else {
                return Decision::ignored("no installation in payload");
            };
            let is_pr = e.issue.pull_request.is_some();
            let job = |command, text: &str| {
                let payload = CommandJob {
                    command,
                    installation_id: installation.id,
                    repository: e.repository.full_name.clone(),
                    clone_url: e.repository.clone_url.clone(),
                    issue_number: e.issue.number,
                    is_pull_request: is_pr,
                    comment_id: e.comment.id,
                    sender: e.sender.login.clone(),
                    text: text.to_owned(),
                    review_id: None,
                    head_sha: None,
                    head_branch: None,
                    workflow_run_id: None,
                    check_suite_id: None,
                };
                payload.decision()
            };
            let comment = Some(e.comment.id);
            match command {
                SlashCommand::Cancel => job(CommandKind::Cancel, ""),
                SlashCommand::Status => job(CommandKind::Status, ""),
                SlashCommand::Help => job(CommandKind::Help, ""),
                SlashCommand::Other(text) if is_pr => job(CommandKind::Feedback, &text),
                SlashCommand::Other(text) => job(CommandKind::Help, &text),
                SlashCommand::Start | SlashCommand::Retry | SlashCommand::Repro(_) if is_pr => {
                    job(CommandKind::Feedback, "")
                }
                SlashCommand::Start => start(
                    &e.repository,
                    installation.id,
                    &e.issue,
                    &e.sender,
                    TriggerKind::Comment,
                    comment,
                    None,
                ),
                SlashCommand::Retry => start(
                    &e.repository,
                    installation.id,
                    &e.issue,
                    &e.sender,
                    TriggerKind::Retry,
                    comment,
                    None,
                ),
                SlashCommand::Repro(cmd) => start(
                    &e.repository,
                    installation.id,
                    &e.issue,
                    &e.sender,
                    TriggerKind::Comment,
                    comment,
                    Some(cmd),
                ),
            }
        }
        Event::CheckRun(e) if e.action != "rerequested" => {
            Decision::ignored(format!("check_run.{}", e.action))
        }
        Event::CheckRun(e) => {
            let ours = e.check_run.name == CHECK_RUN_NAME
                && match (settings.app_id, &e.check_run.app) {
                    (Some(ours), Some(app)) => app.id == ours,
                    _ => true,
                };
            let issue = e
                .check_run
                .external_id
                .as_deref()
                .and_then(issue_from_external_id);
            let (true, Some(issue_number), Some(installation)) = (ours, issue, &e.installation)
            else {
                return Decision::ignored("check run is not PatchPilot's");
            };
            if let Some(reason) = sender_refusal(&e.sender, settings) {
                return Decision::ignored(reason);
            }
            let new = NewSession {
                repo_url: e.repository.clone_url.clone(),
                branch: None,
                installation_id: Some(installation.id),
                repository: Some(e.repository.full_name.clone()),
                issue_number: Some(issue_number),
                trigger_kind: Some(TriggerKind::CheckRun),
                triggered_by: Some(e.sender.login.clone()),
                private: e.repository.private,
                ..NewSession::default()
            };
            Decision {
                outcome: "session".to_owned(),
                effect: IntakeEffect::StartSession(new),
            }
        }
        Event::PullRequestReview(e) => super::iteration_triggers::review_decision(e, settings),
        Event::PullRequestReviewComment(e) => {
            super::iteration_triggers::review_comment_decision(e, settings)
        }
        Event::CheckSuite(e) => super::iteration_triggers::check_suite_decision(e, settings),
        Event::WorkflowRun(e) => super::iteration_triggers::workflow_run_decision(e, settings),
        Event::Installation(e) => installation_decision(e),
        Event::InstallationRepositories(e) => installation_repositories_decision(e),
        Event::Other { name } => Decision::ignored(format!("event {name}")),
    }
}

fn start(
    repository: &Repository,
    installation_id: i64,
    issue: &Issue,
    sender: &Account,
    kind: TriggerKind,
    comment_id: Option<i64>,
    repro_override: Option<String>,
) -> Decision {
    let body = issue.body.as_deref().unwrap_or_default();
    let parsed = parse_issue_body(body);
    let repro_from_body = match parsed.repro {
        Repro::Found { command, .. } => Some(command),
        Repro::Missing | Repro::Ambiguous(_) => None,
    };
    let new = NewSession {
        repo_url: repository.clone_url.clone(),
        branch: parsed.branch,
        bug_description: format!("{}\n\n{}", issue.title, body).trim_end().to_owned(),
        repro_command: repro_override.or(repro_from_body),
        installation_id: Some(installation_id),
        repository: Some(repository.full_name.clone()),
        issue_number: Some(issue.number),
        issue_title: Some(issue.title.clone()),
        trigger_kind: Some(kind),
        triggered_by: Some(sender.login.clone()),
        trigger_comment_id: comment_id,
        feedback: None,
        private: repository.private,
        ..NewSession::default()
    };
    Decision {
        outcome: "session".to_owned(),
        effect: IntakeEffect::StartSession(new),
    }
}

fn installation_decision(e: &InstallationEvent) -> Decision {
    let id = e.installation.id;
    let change = match e.action.as_str() {
        "created" => InstallationChange::Upsert {
            installation_id: id,
            account: e.installation.account.login.clone(),
            repositories: e
                .repositories
                .iter()
                .flatten()
                .map(|r| r.full_name.clone())
                .collect(),
        },
        "deleted" => InstallationChange::Delete {
            installation_id: id,
        },
        "suspend" => InstallationChange::Suspend {
            installation_id: id,
            suspended: true,
        },
        "unsuspend" => InstallationChange::Suspend {
            installation_id: id,
            suspended: false,
        },
        other => return Decision::ignored(format!("installation.{other}")),
    };
    Decision {
        outcome: format!("installation.{}", e.action),
        effect: IntakeEffect::Installation(change),
    }
}

fn installation_repositories_decision(e: &InstallationRepositoriesEvent) -> Decision {
    let id = e.installation.id;
    let names =
        |repos: &[super::events::RepoRef]| repos.iter().map(|r| r.full_name.clone()).collect();
    let change = match e.action.as_str() {
        "added" => InstallationChange::AddRepositories {
            installation_id: id,
            repositories: names(&e.repositories_added),
        },
        "removed" => InstallationChange::RemoveRepositories {
            installation_id: id,
            repositories: names(&e.repositories_removed),
        },
        other => return Decision::ignored(format!("installation_repositories.{other}")),
    };
    Decision {
        outcome: format!("installation_repositories.{}", e.action),
        effect: IntakeEffect::Installation(change),
    }
}
