//! Typed webhook events: only the fields PatchPilot uses, parsed into narrow structs.
//!
//! Parsing a whole payload into `serde_json::Value` costs tens of microseconds for a 12 KB
//! body; narrow structs skip everything else. Shape errors name the JSON path
//! (`serde_path_to_error`, run only once a fast parse has failed) so a 400 says exactly what is
//! wrong. Each body is parsed once: a typed event yields the envelope (action, installation,
//! repository) for the delivery record; events we do not act on are parsed as the envelope
//! alone, which still checks that they are JSON.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Why a body could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(String);

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Account {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl Account {
    /// GitHub Apps and bots act as `Bot` users whose login ends in `[bot]`.
    pub fn is_bot(&self) -> bool {
        self.kind == "Bot" || self.login.ends_with("[bot]")
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct InstallationRef {
    pub id: i64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Repository {
    pub full_name: String,
    pub clone_url: String,
    #[serde(default)]
    pub default_branch: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// `None` when the payload does not say; sessions then count as private.
    #[serde(default)]
    pub private: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Issue {
    pub number: i64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    /// Present when the "issue" is a pull request.
    #[serde(default)]
    pub pull_request: Option<PullRequestMarker>,
}

/// The `pull_request` object GitHub puts on issues that are pull requests; only its
/// presence matters.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PullRequestMarker {}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Label {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Comment {
    pub id: i64,
    pub body: String,
    pub user: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct AppRef {
    pub id: i64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CheckRun {
    pub id: i64,
    pub name: String,
    pub head_sha: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub app: Option<AppRef>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct RepoRef {
    pub full_name: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct InstallationInfo {
    pub id: i64,
    pub account: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct IssuesEvent {
    pub action: String,
    pub issue: Issue,
    #[serde(default)]
    pub label: Option<Label>,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct IssueCommentEvent {
    pub action: String,
    pub issue: Issue,
    pub comment: Comment,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CheckRunEvent {
    pub action: String,
    pub check_run: CheckRun,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: InstallationInfo,
    #[serde(default)]
    pub repositories: Option<Vec<RepoRef>>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct InstallationRepositoriesEvent {
    pub action: String,
    pub installation: InstallationInfo,
    #[serde(default)]
    pub repositories_added: Vec<RepoRef>,
    #[serde(default)]
    pub repositories_removed: Vec<RepoRef>,
}

/// The head or base of a pull request in a webhook payload.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PullRequestEnd {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// The `pull_request` object of review events (only what the trigger rules read).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PullRequestRef {
    pub number: i64,
    pub user: Account,
    pub head: PullRequestEnd,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Review {
    pub id: i64,
    /// `changes_requested`, `commented`, `approved`, `dismissed` (lowercase in webhooks).
    pub state: String,
    pub user: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PullRequestReviewEvent {
    pub action: String,
    pub review: Review,
    pub pull_request: PullRequestRef,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ReviewComment {
    pub id: i64,
    /// The review the comment belongs to (every line comment belongs to one).
    #[serde(default)]
    pub pull_request_review_id: Option<i64>,
    pub user: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PullRequestReviewCommentEvent {
    pub action: String,
    pub comment: ReviewComment,
    pub pull_request: PullRequestRef,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CheckSuite {
    pub id: i64,
    #[serde(default)]
    pub head_branch: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub app: Option<AppRef>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CheckSuiteEvent {
    pub action: String,
    pub check_suite: CheckSuite,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct WorkflowRun {
    pub id: i64,
    #[serde(default)]
    pub head_branch: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub conclusion: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct WorkflowRunEvent {
    pub action: String,
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub sender: Account,
}

/// The envelope every event may carry, for the delivery record.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Envelope {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    #[serde(default)]
    pub repository: Option<RepoRef>,
}

/// A verified delivery's event, typed as far as PatchPilot cares.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Ping,
    Issues(IssuesEvent),
    IssueComment(IssueCommentEvent),
    CheckRun(CheckRunEvent),
    PullRequestReview(PullRequestReviewEvent),
    PullRequestReviewComment(PullRequestReviewCommentEvent),
    CheckSuite(CheckSuiteEvent),
    WorkflowRun(WorkflowRunEvent),
    Installation(InstallationEvent),
    InstallationRepositories(InstallationRepositoriesEvent),
    /// Any other event type: acknowledged and ignored.
    Other {
        name: String,
    },
}

/// Parses `body` as the event named by `X-GitHub-Event`, plus its envelope.
///
/// The body is read once: a known event is parsed into its struct and the envelope is taken
/// from it; any other event is parsed as the envelope alone. Only when that fast parse fails is
/// the body parsed again, through `serde_path_to_error`, to say where the shape is wrong.
pub fn parse(event_name: &str, body: &[u8]) -> Result<(Event, Envelope), PayloadError> {
    let event = match event_name {
        "ping" => return Ok((Event::Ping, from_json(body)?)),
        "issues" => Event::Issues(from_json(body)?),
        "issue_comment" => Event::IssueComment(from_json(body)?),
        "check_run" => Event::CheckRun(from_json(body)?),
        "pull_request_review" => Event::PullRequestReview(from_json(body)?),
        "pull_request_review_comment" => Event::PullRequestReviewComment(from_json(body)?),
        "check_suite" => Event::CheckSuite(from_json(body)?),
        "workflow_run" => Event::WorkflowRun(from_json(body)?),
        "installation" => Event::Installation(from_json(body)?),
        "installation_repositories" => Event::InstallationRepositories(from_json(body)?),
        other => {
            let envelope = from_json(body)?;
            return Ok((
                Event::Other {
                    name: other.to_owned(),
                },
                envelope,
            ));
        }
    };
    let envelope = envelope_of(&event);
    Ok((event, envelope))
}

/// The envelope of a typed event, from the fields its struct already holds.
fn envelope_of(event: &Event) -> Envelope {
    let typed =
        |action: &str, installation: &Option<InstallationRef>, repository: &Repository| Envelope {
            action: Some(action.to_owned()),
            installation: installation.clone(),
            repository: Some(RepoRef {
                full_name: repository.full_name.clone(),
            }),
        };
    match event {
        Event::Issues(e) => typed(&e.action, &e.installation, &e.repository),
        Event::IssueComment(e) => typed(&e.action, &e.installation, &e.repository),
        Event::CheckRun(e) => typed(&e.action, &e.installation, &e.repository),
        Event::PullRequestReview(e) => typed(&e.action, &e.installation, &e.repository),
        Event::PullRequestReviewComment(e) => typed(&e.action, &e.installation, &e.repository),
        Event::CheckSuite(e) => typed(&e.action, &e.installation, &e.repository),
        Event::WorkflowRun(e) => typed(&e.action, &e.installation, &e.repository),
        Event::Installation(e) => Envelope {
            action: Some(e.action.clone()),
            installation: Some(InstallationRef {
                id: e.installation.id,
            }),
            repository: None,
        },
        Event::InstallationRepositories(e) => Envelope {
            action: Some(e.action.clone()),
            installation: Some(InstallationRef {
                id: e.installation.id,
            }),
            repository: None,
        },
        Event::Ping | Event::Other { .. } => Envelope::default(),
    }
}

/// Parses with plain serde (fast); on failure parses again with `serde_path_to_error` for a
/// message that names the JSON path.
fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(body).map_err(|_| explain::<T>(body))
}

fn explain<T: DeserializeOwned>(body: &[u8]) -> PayloadError {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let Err(err) = serde_path_to_error::deserialize::<_, T>(deserializer) else {
        // Both parsers read the same JSON; they cannot disagree, but say something useful.
        return PayloadError("unexpected payload shape".to_owned());
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        PayloadError(format!("body is not valid JSON: {inner}"))
    } else if path == "." {
        PayloadError(format!("unexpected payload shape: {inner}"))
    } else {
        PayloadError(format!("unexpected payload shape at `{path}`: {inner}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_errors_name_the_json_path() {
        let body = br#"{"action":"labeled","issue":{"number":"seven","title":"t"}}"#;
        let err = parse("issues", body).unwrap_err().to_string();
        assert!(err.contains("issue.number"), "{err}");
    }

    #[test]
    fn syntax_errors_say_json() {
        let err = parse("star", b"{not json").unwrap_err().to_string();
        assert!(err.starts_with("body is not valid JSON"), "{err}");
    }

    #[test]
    fn unknown_events_keep_their_envelope() {
        let body = br#"{"action":"created","installation":{"id":3},"repository":{"full_name":"o/r"},"x":[1,2]}"#;
        let (event, envelope) = parse("star", body).unwrap();
        assert_eq!(
            event,
            Event::Other {
                name: "star".into()
            }
        );
        assert_eq!(envelope.action.as_deref(), Some("created"));
        assert_eq!(envelope.installation.map(|i| i.id), Some(3));
        assert_eq!(
            envelope.repository.map(|r| r.full_name).as_deref(),
            Some("o/r")
        );
    }

    #[test]
    fn typed_events_give_the_same_envelope_as_parsing_it() {
        let body = br#"{"action":"labeled","issue":{"number":7,"title":"t"},"label":{"name":"patchpilot"},
            "repository":{"full_name":"o/r","clone_url":"https://x/o/r.git"},"installation":{"id":3},
            "sender":{"login":"u","type":"User"}}"#;
        let (event, envelope) = parse("issues", body).unwrap();
        assert!(matches!(event, Event::Issues(_)));
        let parsed: Envelope = serde_json::from_slice(body).unwrap();
        assert_eq!(envelope, parsed);
        let body = br#"{"action":"created","installation":{"id":9,"account":{"login":"o"}},"repositories":[]}"#;
        let (_, envelope) = parse("installation", body).unwrap();
        assert_eq!(envelope, serde_json::from_slice::<Envelope>(body).unwrap());
    }

    /// Every real example payload GitHub documents (octokit's webhook examples): where the
    /// typed parse succeeds, its envelope is exactly what parsing the envelope alone gives.
    #[test]
    fn every_real_example_gives_the_same_envelope_both_ways() {
        let raw = include_str!("../../tests/fixtures/webhooks/octokit-examples.json");
        let events: Vec<serde_json::Value> = serde_json::from_str(raw).unwrap();
        let mut typed = 0;
        for event in &events {
            let name = event["name"].as_str().unwrap();
            for example in event["examples"].as_array().into_iter().flatten() {
                let body = serde_json::to_vec(example).unwrap();
                let Ok((parsed, envelope)) = parse(name, &body) else {
                    continue;
                };
                if !matches!(parsed, Event::Other { .. } | Event::Ping) {
                    typed += 1;
                }
                let alone: Envelope = serde_json::from_slice(&body).unwrap();
                assert_eq!(envelope, alone, "{name}.{}", example["action"]);
            }
        }
        assert!(typed >= 20, "only {typed} typed examples");
    }

    #[test]
    fn ping_and_syntax_errors_in_known_events() {
        let (event, envelope) = parse("ping", br#"{"zen":"x","hook_id":1}"#).unwrap();
        assert_eq!((event, envelope), (Event::Ping, Envelope::default()));
        let err = parse("issues", b"{\"action\":").unwrap_err().to_string();
        assert!(err.starts_with("body is not valid JSON"), "{err}");
    }

    #[test]
    fn bots_are_recognised_by_type_or_login() {
        let bot = Account {
            login: "dependabot[bot]".into(),
            kind: "Bot".into(),
        };
        let app = Account {
            login: "some-app[bot]".into(),
            kind: String::new(),
        };
        let human = Account {
            login: "octocat".into(),
            kind: "User".into(),
        };
        assert!(bot.is_bot() && app.is_bot() && !human.is_bot());
    }
}
