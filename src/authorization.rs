//! Who may make PatchPilot do what. The one home of these rules: the webhook's pre-check
//! (before a job is queued) and the worker (when the job runs) both ask this module.
//!
//! The repro command runs in a sandbox but still runs code, so this is the security boundary:
//! - PatchPilot never reacts to itself, and other bots and Apps never start work. This is
//!   decided from the payload before any API call, so bot loops cost nothing.
//! - Starting a session (label, `/patchpilot`, `repro`, `retry`), `cancel`, `status`, feedback
//!   and reviews on PatchPilot's pull requests need write, maintain or admin on the
//!   repository, read through `GET /repos/{owner}/{repo}/collaborators/{username}/permission`
//!   when the job runs (`author_association` alone is not enough: it says nothing about the
//!   current role). Anyone may ask for `help`; people without write access get it
//!   rate-limited.
//! - Rounds happen only on pull requests PatchPilot opened: from a `patchpilot/issue-<n>`
//!   branch, with the App's bot as the author. A CI round has no sender to check: it runs the
//!   command a writer approved for the first session.

use crate::github::client::{GitHub, GitHubResult, Permission};
use crate::github::types::{InstallationId, RepoName};
use crate::session::iteration::issue_of_branch;

/// The user who sent the event, as the webhook payload describes them.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    pub login: &'a str,
    /// Whether the payload marks the account as a bot or App (`sender.type` is `Bot`, or the
    /// login ends in `[bot]`).
    pub is_bot: bool,
}

/// The verdict on a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerDecision {
    Allowed(Permission),
    /// PatchPilot's own comment or label: never act on it.
    OwnBot,
    /// Another bot or App: ignored.
    Bot,
    /// A person without write access: at most one polite, rate-limited reply.
    Denied(Permission),
}

impl TriggerDecision {
    /// Why an event is ignored, for the delivery log; `None` when it is not refused.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            TriggerDecision::OwnBot => Some("our own comment"),
            TriggerDecision::Bot => Some("sender is a bot"),
            TriggerDecision::Denied(_) => Some("sender may not run code"),
            TriggerDecision::Allowed(_) => None,
        }
    }
}

/// What a sender asks PatchPilot to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start or retry a session (label, `/patchpilot`, `repro`, `retry`, a check-run re-run).
    Start,
    Cancel,
    Status,
    Help,
    /// Feedback or a review on PatchPilot's pull request: a new round.
    Round,
}

/// What the worker does with an action from a person with `permission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Answered, but rate-limited per user and issue (help for people without write access).
    Limited,
    Refused,
}

/// Decisions that need no API call: `None` means "ask GitHub for the permission". Logins
/// compare case-insensitively, as GitHub does.
pub fn pre_check(sender: Sender<'_>, own_bot_login: Option<&str>) -> Option<TriggerDecision> {
    if own_bot_login.is_some_and(|own| sender.login.eq_ignore_ascii_case(own)) {
        return Some(TriggerDecision::OwnBot);
    }
    if sender.is_bot || sender.login.ends_with("[bot]") {
        return Some(TriggerDecision::Bot);
    }
    None
}

/// Whether this role may make PatchPilot run code: write, maintain or admin.
pub fn may_run_code(permission: Permission) -> bool {
    matches!(
        permission,
        Permission::Admin | Permission::Maintain | Permission::Write
    )
}

/// The verdict for a human with a known permission.
pub fn decide(permission: Permission) -> TriggerDecision {
    if may_run_code(permission) {
        TriggerDecision::Allowed(permission)
    } else {
        TriggerDecision::Denied(permission)
    }
}

/// Whether a person with `permission` may have PatchPilot do `action`.
pub fn verdict(action: Action, permission: Permission) -> Verdict {
    match (action, may_run_code(permission)) {
        (_, true) => Verdict::Allowed,
        (Action::Help, false) => Verdict::Limited,
        (Action::Start | Action::Cancel | Action::Status | Action::Round, false) => {
            Verdict::Refused
        }
    }
}

/// Checks a trigger: the pre-check first, then the collaborator permission endpoint.
pub async fn check_trigger(
    github: &dyn GitHub,
    inst: InstallationId,
    repo: &RepoName,
    sender: Sender<'_>,
) -> GitHubResult<TriggerDecision> {
    let own = github.bot_login().await?;
    if let Some(decision) = pre_check(sender, Some(&own)) {
        return Ok(decision);
    }
    Ok(decide(github.permission(inst, repo, sender.login).await?))
}

/// Whether a pull request is one PatchPilot opened: its `patchpilot/issue-<n>` branch and the
/// App's bot as its author (when the bot's login is known).
pub fn is_our_pull_request(head_branch: &str, author: &str, bot_login: Option<&str>) -> bool {
    issue_of_branch(head_branch).is_some()
        && bot_login.is_none_or(|bot| author.eq_ignore_ascii_case(bot))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "patchpilot[bot]";

    fn user(login: &str) -> Sender<'_> {
        Sender {
            login,
            is_bot: false,
        }
    }

    #[test]
    fn own_bot_is_never_a_trigger_whatever_its_type() {
        assert_eq!(
            pre_check(
                Sender {
                    login: OWN,
                    is_bot: true
                },
                Some(OWN)
            ),
            Some(TriggerDecision::OwnBot)
        );
        assert_eq!(
            pre_check(user("PatchPilot[bot]"), Some(OWN)),
            Some(TriggerDecision::OwnBot)
        );
    }

    #[test]
    fn other_bots_and_apps_are_ignored() {
        assert_eq!(
            pre_check(
                Sender {
                    login: "renovate",
                    is_bot: true
                },
                Some(OWN)
            ),
            Some(TriggerDecision::Bot)
        );
        assert_eq!(
            pre_check(user("dependabot[bot]"), Some(OWN)),
            Some(TriggerDecision::Bot)
        );
    }

    #[test]
    fn humans_need_an_api_check() {
        assert_eq!(pre_check(user("octocat"), Some(OWN)), None);
        assert_eq!(pre_check(user("botany"), Some(OWN)), None);
    }

    #[test]
    fn only_write_maintain_and_admin_may_trigger() {
        for p in [Permission::Admin, Permission::Maintain, Permission::Write] {
            assert_eq!(decide(p), TriggerDecision::Allowed(p));
        }
        for p in [Permission::Triage, Permission::Read, Permission::None] {
            assert_eq!(decide(p), TriggerDecision::Denied(p));
        }
    }

    #[test]
    fn help_is_open_to_all_and_everything_else_needs_write() {
        for action in [Action::Start, Action::Cancel, Action::Status, Action::Round] {
            assert_eq!(verdict(action, Permission::Write), Verdict::Allowed);
            assert_eq!(verdict(action, Permission::Triage), Verdict::Refused);
        }
        assert_eq!(verdict(Action::Help, Permission::Admin), Verdict::Allowed);
        assert_eq!(verdict(Action::Help, Permission::None), Verdict::Limited);
    }

    #[test]
    fn rounds_only_on_our_branch_and_bot() {
        let ours = "patchpilot/issue-12";
        assert!(is_our_pull_request(ours, "PatchPilot[bot]", Some(OWN)));
        assert!(is_our_pull_request(ours, "anyone", None));
        assert!(!is_our_pull_request(ours, "mallory", Some(OWN)));
        assert!(!is_our_pull_request("feature/x", OWN, Some(OWN)));
    }

    #[test]
    fn without_a_known_bot_login_only_bots_are_refused_up_front() {
        assert_eq!(
            pre_check(user("patchpilot[bot]"), None),
            Some(TriggerDecision::Bot)
        );
        assert_eq!(pre_check(user("octocat"), None), None);
    }

    #[test]
    fn unknown_roles_are_treated_as_no_access() {
        assert_eq!(Permission::from_github("custom-role"), Permission::None);
        assert_eq!(Permission::from_github("maintain"), Permission::Maintain);
        assert_eq!(Permission::from_github("triage"), Permission::Triage);
    }
}
