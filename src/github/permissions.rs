//! Who may make PatchPilot run code.
//!
//! The repro command runs in a sandbox but still runs code, so this is the security
//! boundary: the sender needs write, maintain or admin on the repository, checked with
//! `GET /repos/{owner}/{repo}/collaborators/{username}/permission` at event time
//! (`author_association` alone is not enough: it says nothing about the current role).
//! Bots and Apps are ignored, and PatchPilot never reacts to itself — checked before any
//! API call, so bot loops cost nothing.

use super::client::{GitHub, GitHubResult, Permission};
use super::types::{InstallationId, RepoName};

/// The user who sent the event, as the webhook payload describes them.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    pub login: &'a str,
    /// The payload's `sender.type`: `User`, `Bot` or `Organization`.
    pub kind: &'a str,
}

/// The verdict on a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerDecision {
    Allowed(Permission),
    /// PatchPilot's own comment or label: never act on it.
    OwnBot,
    /// Another bot or App: ignored by default.
    Bot,
    /// A person without write access: at most one polite reply per issue.
    Denied(Permission),
}

/// Decisions that need no API call: `None` means "ask GitHub for the permission".
pub fn pre_check(sender: Sender<'_>, own_bot_login: &str) -> Option<TriggerDecision> {
    if sender.login.eq_ignore_ascii_case(own_bot_login) {
        return Some(TriggerDecision::OwnBot);
    }
    if sender.kind.eq_ignore_ascii_case("Bot") || sender.login.ends_with("[bot]") {
        return Some(TriggerDecision::Bot);
    }
    None
}

/// The verdict for a human with a known permission.
pub fn decide(permission: Permission) -> TriggerDecision {
    if permission.can_trigger() {
        TriggerDecision::Allowed(permission)
    } else {
        TriggerDecision::Denied(permission)
    }
}

/// Checks a trigger: pure pre-checks first, then the collaborator permission endpoint.
pub async fn check_trigger(
    github: &dyn GitHub,
    inst: InstallationId,
    repo: &RepoName,
    sender: Sender<'_>,
) -> GitHubResult<TriggerDecision> {
    let own = github.bot_login().await?;
    if let Some(decision) = pre_check(sender, &own) {
        return Ok(decision);
    }
    Ok(decide(github.permission(inst, repo, sender.login).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "patchpilot[bot]";

    fn user(login: &str) -> Sender<'_> {
        Sender {
            login,
            kind: "User",
        }
    }

    #[test]
    fn own_bot_is_never_a_trigger_whatever_its_type() {
        assert_eq!(
            pre_check(
                Sender {
                    login: OWN,
                    kind: "Bot"
                },
                OWN
            ),
            Some(TriggerDecision::OwnBot)
        );
        assert_eq!(
            pre_check(user("PatchPilot[bot]"), OWN),
            Some(TriggerDecision::OwnBot)
        );
    }

    #[test]
    fn other_bots_and_apps_are_ignored() {
        assert_eq!(
            pre_check(
                Sender {
                    login: "renovate",
                    kind: "Bot"
                },
                OWN
            ),
            Some(TriggerDecision::Bot)
        );
        assert_eq!(
            pre_check(user("dependabot[bot]"), OWN),
            Some(TriggerDecision::Bot)
        );
    }

    #[test]
    fn humans_need_an_api_check() {
        assert_eq!(pre_check(user("octocat"), OWN), None);
        assert_eq!(pre_check(user("botany"), OWN), None);
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
    fn unknown_roles_are_treated_as_no_access() {
        assert_eq!(Permission::from_github("custom-role"), Permission::None);
        assert_eq!(Permission::from_github("maintain"), Permission::Maintain);
        assert_eq!(Permission::from_github("triage"), Permission::Triage);
    }
}
