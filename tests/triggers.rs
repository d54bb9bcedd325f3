//! The trigger rules on GitHub's real example payloads (edited where a case needs it).

mod support;

use patchpilot::github::markers::check_run_external_id;
use patchpilot::store::TriggerKind;
use patchpilot::store::{InstallationChange, IntakeEffect, JobKind};
use patchpilot::webhook::events::{self, Event};
use patchpilot::webhook::triggers::{self, CommandJob, CommandKind, TriggerSettings};
use serde_json::{Value, json};

fn settings() -> TriggerSettings {
    TriggerSettings {
        label: "patchpilot".into(),
        bot_login: Some("patchpilot[bot]".into()),
        app_id: Some(99),
    }
}

fn decide(event: &str, payload: &Value) -> triggers::Decision {
    let (event, _) =
        events::parse(event, &serde_json::to_vec(payload).unwrap()).expect("payload parses");
    triggers::decide(&event, &settings())
}

fn comment(body: &str) -> Value {
    let mut payload = support::example("issue_comment", "created");
    payload["comment"]["body"] = json!(body);
    payload["installation"] = json!({ "id": 5 });
    payload["issue"]
        .as_object_mut()
        .unwrap()
        .remove("pull_request");
    payload["comment"]["user"]["login"] = json!("maintainer");
    payload["comment"]["user"]["type"] = json!("User");
    payload["sender"] = payload["comment"]["user"].clone();
    payload
}

fn command_of(decision: &triggers::Decision) -> CommandJob {
    match &decision.effect {
        IntakeEffect::Job {
            kind: JobKind::Command,
            payload,
        } => serde_json::from_value(payload.clone()).unwrap(),
        other => panic!("expected a command job, got {other:?}"),
    }
}

fn session_of(decision: &triggers::Decision) -> patchpilot::store::NewSession {
    match &decision.effect {
        IntakeEffect::StartSession(new) => new.clone(),
        other => panic!("expected a session, got {other:?} ({})", decision.outcome),
    }
}

#[test]
fn label_must_match_case_insensitively() {
    let mut payload = support::example("issues", "labeled");
    payload["installation"] = json!({ "id": 5 });
    assert_eq!(
        decide("issues", &payload).effect,
        IntakeEffect::None,
        "label `bug` is not ours"
    );
    payload["label"]["name"] = json!("PatchPilot");
    let new = session_of(&decide("issues", &payload));
    assert_eq!(new.trigger_kind, Some(TriggerKind::Label));
    assert_eq!(new.issue_number, payload["issue"]["number"].as_i64());
    assert_eq!(new.installation_id, Some(5));
    assert_eq!(
        new.repo_url,
        payload["repository"]["clone_url"].as_str().unwrap()
    );
}

#[test]
fn other_issue_actions_are_ignored() {
    for action in ["opened", "edited", "unlabeled", "closed"] {
        if let Some((_, payload)) = support::octokit_examples()
            .into_iter()
            .find(|(n, p)| n == "issues" && p["action"] == action)
        {
            let decision = decide("issues", &payload);
            assert_eq!(decision.effect, IntakeEffect::None, "{action}");
            assert_eq!(decision.outcome, format!("ignored: issues.{action}"));
        }
    }
}

#[test]
fn slash_commands_on_issues() {
    let new = session_of(&decide("issue_comment", &comment("/patchpilot")));
    assert_eq!(new.trigger_kind, Some(TriggerKind::Comment));
    assert!(new.trigger_comment_id.is_some());
    assert_eq!(
        session_of(&decide("issue_comment", &comment("/patchpilot retry"))).trigger_kind,
        Some(TriggerKind::Retry)
    );
    let repro = session_of(&decide(
        "issue_comment",
        &comment("/patchpilot repro pytest -k empty"),
    ));
    assert_eq!(repro.repro_command.as_deref(), Some("pytest -k empty"));

    assert_eq!(
        command_of(&decide("issue_comment", &comment("/patchpilot cancel"))).command,
        CommandKind::Cancel
    );
    assert_eq!(
        command_of(&decide("issue_comment", &comment("/patchpilot status"))).command,
        CommandKind::Status
    );
    assert_eq!(
        command_of(&decide("issue_comment", &comment("/patchpilot help"))).command,
        CommandKind::Help
    );
    let unknown = command_of(&decide("issue_comment", &comment("/patchpilot frobnicate")));
    assert_eq!(
        (unknown.command, unknown.text.as_str()),
        (CommandKind::Help, "frobnicate")
    );
}

#[test]
fn comments_without_a_command_or_from_bots_do_nothing() {
    for body in ["thanks!", "please run /patchpilot later", "/patchpilotx"] {
        assert_eq!(
            decide("issue_comment", &comment(body)).effect,
            IntakeEffect::None,
            "{body}"
        );
    }
    let mut own = comment("/patchpilot");
    own["comment"]["user"]["login"] = json!("patchpilot[bot]");
    own["comment"]["user"]["type"] = json!("Bot");
    assert_eq!(
        decide("issue_comment", &own).outcome,
        "ignored: our own comment"
    );
    let mut bot = comment("/patchpilot");
    bot["comment"]["user"]["login"] = json!("github-actions[bot]");
    assert_eq!(
        decide("issue_comment", &bot).outcome,
        "ignored: sender is a bot"
    );
    let mut edited = comment("/patchpilot");
    edited["action"] = json!("edited");
    assert_eq!(decide("issue_comment", &edited).effect, IntakeEffect::None);
}

#[test]
fn comments_on_pull_requests_are_feedback() {
    let mut payload = comment("/patchpilot please also handle None");
    payload["issue"]["pull_request"] = json!({ "url": "https://api.github.com/repos/o/r/pulls/1" });
    let job = command_of(&decide("issue_comment", &payload));
    assert_eq!(
        (job.command, job.is_pull_request),
        (CommandKind::Feedback, true)
    );
    assert_eq!(job.text, "please also handle None");
}

#[test]
fn rerequested_check_run_restarts_its_issue() {
    let mut payload = support::example("check_run", "rerequested");
    payload["check_run"]["name"] = json!("PatchPilot");
    payload["check_run"]["external_id"] = json!(check_run_external_id(12));
    payload["check_run"]["app"]["id"] = json!(99);
    let new = session_of(&decide("check_run", &payload));
    assert_eq!(
        (new.trigger_kind, new.issue_number),
        (Some(TriggerKind::CheckRun), Some(12))
    );

    payload["check_run"]["app"]["id"] = json!(1);
    assert_eq!(
        decide("check_run", &payload).effect,
        IntakeEffect::None,
        "another App's check run"
    );
    payload["check_run"]["app"]["id"] = json!(99);
    payload["check_run"]["name"] = json!("CI");
    assert_eq!(
        decide("check_run", &payload).effect,
        IntakeEffect::None,
        "not our check run name"
    );
}

#[test]
fn installation_events_update_the_table() {
    let created = support::example("installation", "created");
    match decide("installation", &created).effect {
        IntakeEffect::Installation(InstallationChange::Upsert {
            installation_id,
            repositories,
            ..
        }) => {
            assert_eq!(
                installation_id,
                created["installation"]["id"].as_i64().unwrap()
            );
            assert!(!repositories.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let deleted = support::example("installation", "deleted");
    assert!(matches!(
        decide("installation", &deleted).effect,
        IntakeEffect::Installation(InstallationChange::Delete { .. })
    ));
    let added = support::example("installation_repositories", "added");
    assert!(matches!(
        decide("installation_repositories", &added).effect,
        IntakeEffect::Installation(InstallationChange::AddRepositories { .. })
    ));
}

#[test]
fn every_example_decides_without_panicking() {
    for (event, payload) in support::octokit_examples() {
        let (parsed, _) = events::parse(&event, &serde_json::to_vec(&payload).unwrap()).unwrap();
        let decision = triggers::decide(&parsed, &settings());
        assert!(!decision.outcome.is_empty());
        if let Event::Other { name } = parsed {
            assert_eq!(decision.outcome, format!("ignored: event {name}"));
        }
    }
}
