//! The store's side of iterations (migration 0003), on SQLite and PostgreSQL: an iteration
//! keeps its link to the first session and what started it, and the same key cannot start
//! two iterations of one pull request, however the inserts race.

mod support;

use patchpilot::session::iteration::IterationRequest;
use patchpilot::store::{NewSession, TriggerKind};

fn first_session() -> NewSession {
    NewSession {
        repo_url: "https://github.com/octo/hello.git".to_owned(),
        bug_description: "Crash on empty input".to_owned(),
        repository: Some("octo/hello".to_owned()),
        issue_number: Some(1),
        trigger_kind: Some(TriggerKind::Label),
        ..NewSession::default()
    }
}

fn iteration(parent: &str, request: &IterationRequest) -> NewSession {
    NewSession {
        repo_url: "https://github.com/octo/hello.git".to_owned(),
        branch: Some("patchpilot/issue-1".to_owned()),
        repository: Some("octo/hello".to_owned()),
        issue_number: Some(2),
        trigger_kind: Some(TriggerKind::PullRequestFeedback),
        parent_session_id: Some(parent.to_owned()),
        iteration_key: Some(request.key()),
        iteration_request: Some(request.to_json()),
        pr_number: Some(2),
        head_branch: Some("patchpilot/issue-1".to_owned()),
        ..NewSession::default()
    }
}

on_both_backends! {
    async fn an_iteration_keeps_its_link_and_its_request(db) {
        let first = db.store.create_session(first_session()).await.unwrap();
        assert_eq!(first.parent_session_id, None);
        let request = IterationRequest::Review { review_id: 7 };
        let round = db.store.create_session(iteration(&first.id, &request)).await.unwrap();
        let stored = db.store.get_session(&round.id).await.unwrap().unwrap();
        assert_eq!(stored.parent_session_id.as_deref(), Some(first.id.as_str()));
        assert_eq!(stored.iteration_key.as_deref(), Some("review:7"));
        assert_eq!(stored.pr_number, Some(2));
        assert_eq!(stored.head_branch.as_deref(), Some("patchpilot/issue-1"));
        let text = stored.iteration_request.unwrap();
        assert_eq!(IterationRequest::from_json(&text).unwrap(), request);
    }

    async fn one_key_starts_one_iteration_per_first_session(db) {
        let first = db.store.create_session(first_session()).await.unwrap();
        let other = db.store.create_session(first_session()).await.unwrap();
        let ci = IterationRequest::CiFailure {
            head_sha: "c".repeat(40),
            workflow_run_id: Some(1),
            check_suite_id: None,
        };
        db.store.create_session(iteration(&first.id, &ci)).await.unwrap();
        // The same head reported by a check suite is the same round.
        let suite = IterationRequest::CiFailure {
            head_sha: "c".repeat(40),
            workflow_run_id: None,
            check_suite_id: Some(9),
        };
        assert!(db.store.create_session(iteration(&first.id, &suite)).await.is_err());
        // Another pull request's rounds and first sessions (no key) are not affected.
        db.store.create_session(iteration(&other.id, &suite)).await.unwrap();
        db.store.create_session(first_session()).await.unwrap();
    }
    async fn an_issue_and_the_rounds_on_its_pull_request_share_one_branch(db) {
        use patchpilot::store::SessionStatus;
        use patchpilot::store::SessionPatch;
        let done = SessionPatch { status: Some(SessionStatus::Succeeded), ..SessionPatch::default() };
        let first = db.store.create_session(first_session()).await.unwrap();
        db.store.update_session(&first.id, &done).await.unwrap();
        assert!(db.store.active_session_on_branch("octo/hello", 1).await.unwrap().is_none());

        let request = IterationRequest::Review { review_id: 7 };
        let round = db.store.create_session(iteration(&first.id, &request)).await.unwrap();
        let retry = db.store.create_session(first_session()).await.unwrap();
        // The round (on pull request #2) is older than the retry on issue #1: it goes first.
        let active = db.store.active_session_on_branch("octo/hello", 1).await.unwrap().unwrap();
        assert_eq!(active.id, round.id);
        assert!(db.store.active_session_on_branch("octo/other", 1).await.unwrap().is_none());
        assert!(db.store.active_session_on_branch("octo/hello", 2).await.unwrap().is_none(), "#2 is the PR, not an issue with a branch");

        db.store.update_session(&round.id, &done).await.unwrap();
        let active = db.store.active_session_on_branch("octo/hello", 1).await.unwrap().unwrap();
        assert_eq!(active.id, retry.id);
    }
}
