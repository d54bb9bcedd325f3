//! What the trigger rules decide, and the settings they read: shared by the issue rules
//! (`triggers.rs`) and the pull-request rules (`iteration_triggers.rs`).

use serde::{Deserialize, Serialize};

use super::events::Account;
use crate::authorization::{Sender, TriggerDecision, pre_check};
use crate::store::{IntakeEffect, JobKind};

/// Settings the rules depend on.
#[derive(Clone, Debug)]
pub struct TriggerSettings {
    /// The label that starts a session (compared case-insensitively, as GitHub does).
    pub label: String,
    /// Our own bot login (`<slug>[bot]`), whose comments never trigger anything.
    pub bot_login: Option<String>,
    /// Our App id; a rerequested check run of another App is ignored.
    pub app_id: Option<i64>,
}

impl Default for TriggerSettings {
    fn default() -> Self {
        Self {
            label: "patchpilot".to_owned(),
            bot_login: None,
            app_id: None,
        }
    }
}

/// What a delivery leads to: the outcome recorded with it and its effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub outcome: String,
    pub effect: IntakeEffect,
}

impl Decision {
    pub(crate) fn ignored(reason: impl std::fmt::Display) -> Self {
        Self {
            outcome: format!("ignored: {reason}"),
            effect: IntakeEffect::None,
        }
    }
}

/// Commands the worker carries out that do not start a session by themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Cancel,
    Status,
    Help,
    /// `/patchpilot <text>` on a pull request: feedback for a new iteration if the PR is ours.
    Feedback,
    /// A review on a PatchPilot pull request (changes requested, or line comments).
    Review,
    /// CI failed on a PatchPilot branch: one bounded fix-up round.
    CiFailure,
}

/// Payload of a `command` job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandJob {
    pub command: CommandKind,
    pub installation_id: i64,
    pub repository: String,
    pub clone_url: String,
    pub issue_number: i64,
    pub is_pull_request: bool,
    pub comment_id: i64,
    pub sender: String,
    /// The text after `/patchpilot` (feedback, or the unknown sub-command).
    pub text: String,
    /// The review of a `review` command.
    #[serde(default)]
    pub review_id: Option<i64>,
    /// The failed head commit and branch of a `ci_failure` command.
    #[serde(default)]
    pub head_sha: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub workflow_run_id: Option<i64>,
    #[serde(default)]
    pub check_suite_id: Option<i64>,
}

impl CommandJob {
    pub(crate) fn decision(&self) -> Decision {
        Decision {
            outcome: format!("command: {:?}", self.command).to_lowercase(),
            effect: IntakeEffect::Job {
                kind: JobKind::Command,
                payload: serde_json::to_value(self).unwrap_or_default(),
            },
        }
    }
}

/// The payload-only part of the rules (`crate::authorization::pre_check`): bots, Apps and
/// PatchPilot itself never start work.
pub(super) fn sender_refusal(sender: &Account, settings: &TriggerSettings) -> Option<&'static str> {
    let sender = Sender {
        login: &sender.login,
        is_bot: sender.is_bot(),
    };
    pre_check(sender, settings.bot_login.as_deref()).and_then(TriggerDecision::refusal)
}
