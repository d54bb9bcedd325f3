//! What the fake serves for iterations on a pull request: single pull requests, reviews and
//! their line comments, GitHub Actions workflow runs with their jobs, job logs (through the
//! redirect to a download URL that GitHub answers with) and check-run annotations, in the
//! JSON shapes of GitHub's REST docs.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::{branch_sha, error, ok, user_json};
use super::*;

#[derive(Clone, Debug)]
pub struct FakeReviewComment {
    pub id: u64,
    pub author: String,
    pub path: String,
    pub line: u64,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct FakeReview {
    pub id: u64,
    pub pr: u64,
    pub author: String,
    /// As the REST API spells it: `CHANGES_REQUESTED`, `COMMENTED`, `APPROVED`.
    pub state: String,
    pub body: String,
    pub comments: Vec<FakeReviewComment>,
}

/// One job of a workflow run (its id is also its check run's id).
#[derive(Clone, Debug)]
pub struct FakeCiJob {
    pub id: u64,
    pub run_id: u64,
    pub name: String,
    pub conclusion: String,
    pub head_sha: String,
    pub log: String,
    /// `(path, line, message)`.
    pub annotations: Vec<(String, u64, String)>,
    /// A check run of another CI App's check suite (`run_id` is the suite id), not an
    /// Actions job.
    pub in_suite: bool,
}

/// A job to put in a workflow run.
pub struct CiJobSpec<'a> {
    pub name: &'a str,
    pub conclusion: &'a str,
    pub log: &'a str,
    pub annotations: &'a [(&'a str, u64, &'a str)],
}

impl FakeGitHub {
    /// A submitted review with line comments `(path, line, body)`; returns the review id and
    /// the comment ids.
    pub fn add_review(
        &self,
        repo: &str,
        pr: u64,
        author: &str,
        state: &str,
        body: &str,
        comments: &[(&str, u64, &str)],
    ) -> (u64, Vec<u64>) {
        let mut w = self.w();
        let id = w.id();
        let comments: Vec<FakeReviewComment> = comments
            .iter()
            .map(|(path, line, text)| FakeReviewComment {
                id: w.id(),
                author: author.into(),
                path: (*path).into(),
                line: *line,
                body: (*text).into(),
            })
            .collect();
        let ids = comments.iter().map(|c| c.id).collect();
        w.repos.get_mut(repo).unwrap().reviews.push(FakeReview {
            id,
            pr,
            author: author.into(),
            state: state.into(),
            body: body.into(),
            comments,
        });
        (id, ids)
    }

    /// A completed workflow run on `head_sha` with these jobs; returns the run id.
    pub fn add_workflow_run(&self, repo: &str, head_sha: &str, jobs: &[CiJobSpec<'_>]) -> u64 {
        let mut w = self.w();
        let run_id = w.id();
        let jobs: Vec<FakeCiJob> = jobs
            .iter()
            .map(|spec| FakeCiJob {
                id: w.id(),
                run_id,
                name: spec.name.into(),
                conclusion: spec.conclusion.into(),
                head_sha: head_sha.into(),
                log: spec.log.into(),
                annotations: spec
                    .annotations
                    .iter()
                    .map(|(p, l, m)| ((*p).into(), *l, (*m).into()))
                    .collect(),
                in_suite: false,
            })
            .collect();
        w.repos.get_mut(repo).unwrap().ci_jobs.extend(jobs);
        run_id
    }
}

impl FakeGitHub {
    /// A completed check suite of another CI App on `head_sha`, with these check runs (their
    /// logs are their output text); returns the suite id.
    pub fn add_check_suite(&self, repo: &str, head_sha: &str, runs: &[CiJobSpec<'_>]) -> u64 {
        let id = self.add_workflow_run(repo, head_sha, runs);
        let mut w = self.w();
        let r = w.repos.get_mut(repo).unwrap();
        for job in r.ci_jobs.iter_mut().filter(|j| j.run_id == id) {
            job.in_suite = true;
        }
        id
    }
}

fn check_run_json(w: &World, full: &str, j: &FakeCiJob) -> Value {
    let base = &w.base_url;
    json!({
        "id": j.id, "head_sha": j.head_sha, "node_id": "CR_kw", "external_id": "", "name": j.name,
        "url": format!("{base}/repos/{full}/check-runs/{}", j.id), "html_url": "", "details_url": "",
        "status": "completed", "conclusion": j.conclusion, "started_at": "2026-11-01T00:00:00Z",
        "completed_at": "2026-11-01T00:01:00Z",
        "output": { "title": format!("{} {}", j.name, j.conclusion), "summary": j.log, "text": null,
                    "annotations_count": j.annotations.len(), "annotations_url": "" },
        "check_suite": { "id": j.run_id }, "app": { "id": 15368, "slug": "other-ci", "name": "Other CI" },
        "pull_requests": [],
    })
}

fn pull_detail_json(w: &World, full: &str, p: &FakePull) -> Value {
    let base = &w.base_url;
    let head_sha = branch_sha(w, full, &p.head).unwrap_or_default();
    let base_sha = branch_sha(w, full, &p.base).unwrap_or_default();
    let state = w.repos[full]
        .issues
        .get(&p.number)
        .map(|i| i.state.clone())
        .unwrap_or_else(|| "open".into());
    json!({
        "url": format!("{base}/repos/{full}/pulls/{}", p.number), "id": p.number + 7000, "node_id": "PR_kw",
        "html_url": format!("{base}/{full}/pull/{}", p.number), "diff_url": "", "patch_url": "", "issue_url": "",
        "number": p.number, "state": state, "locked": false, "title": p.title, "body": p.body,
        "user": user_json(base, BOT_LOGIN), "draft": p.draft, "author_association": "NONE",
        "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
        "closed_at": null, "merged_at": null, "merge_commit_sha": null,
        "head": { "label": format!("octo:{}", p.head), "ref": p.head, "sha": head_sha, "user": user_json(base, "octo") },
        "base": { "label": format!("octo:{}", p.base), "ref": p.base, "sha": base_sha, "user": user_json(base, "octo") },
    })
}

fn review_json(w: &World, full: &str, r: &FakeReview) -> Value {
    let base = &w.base_url;
    json!({
        "id": r.id, "node_id": "PRR_kw", "user": user_json(base, &r.author), "body": r.body, "state": r.state,
        "html_url": format!("{base}/{full}/pull/{}#pullrequestreview-{}", r.pr, r.id),
        "pull_request_url": format!("{base}/repos/{full}/pulls/{}", r.pr), "author_association": "MEMBER",
        "submitted_at": "2026-11-01T00:00:00Z", "commit_id": "c".repeat(40),
    })
}

fn review_comment_json(w: &World, full: &str, r: &FakeReview, c: &FakeReviewComment) -> Value {
    let base = &w.base_url;
    json!({
        "url": format!("{base}/repos/{full}/pulls/comments/{}", c.id), "pull_request_review_id": r.id,
        "id": c.id, "node_id": "PRRC_kw", "diff_hunk": format!("@@ -1,3 +1,5 @@ {}", c.path), "path": c.path,
        "position": 1, "original_position": 1, "commit_id": "c".repeat(40), "original_commit_id": "c".repeat(40),
        "user": user_json(base, &c.author), "body": c.body, "created_at": "2026-11-01T00:00:00Z",
        "updated_at": "2026-11-01T00:00:00Z", "html_url": format!("{base}/{full}/pull/{}#discussion_r{}", r.pr, c.id),
        "pull_request_url": format!("{base}/repos/{full}/pulls/{}", r.pr), "author_association": "MEMBER",
        "start_line": null, "original_start_line": null, "start_side": null,
        "line": c.line, "original_line": c.line, "side": "RIGHT", "subject_type": "line",
    })
}

fn job_json(w: &World, full: &str, j: &FakeCiJob) -> Value {
    let base = &w.base_url;
    json!({
        "id": j.id, "run_id": j.run_id, "workflow_name": "CI", "head_branch": "", "run_attempt": 1,
        "run_url": format!("{base}/repos/{full}/actions/runs/{}", j.run_id), "node_id": "CR_kw",
        "head_sha": j.head_sha, "url": format!("{base}/repos/{full}/actions/jobs/{}", j.id),
        "html_url": format!("{base}/{full}/actions/runs/{}/job/{}", j.run_id, j.id),
        "status": "completed", "conclusion": j.conclusion, "created_at": "2026-11-01T00:00:00Z",
        "started_at": "2026-11-01T00:00:00Z", "completed_at": "2026-11-01T00:01:00Z", "name": j.name,
        "steps": [{ "name": "Run tests", "status": "completed", "conclusion": j.conclusion, "number": 1,
                    "started_at": "2026-11-01T00:00:00Z", "completed_at": "2026-11-01T00:01:00Z" }],
        "check_run_url": format!("{base}/repos/{full}/check-runs/{}", j.id),
        "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "GitHub Actions 1",
        "runner_group_id": 1, "runner_group_name": "GitHub Actions",
    })
}

/// The iteration routes under `/repos/{owner}/{name}/`; `None` when the route is not one.
pub(super) fn repo_route(
    w: &mut World,
    method: &Method,
    full: &str,
    rest: &[&str],
    query: &BTreeMap<String, String>,
) -> Option<Response> {
    let _ = query;
    let repo = &w.repos[full];
    let number = |n: &str| n.parse::<u64>().unwrap_or(0);
    let response = match (method.as_str(), rest) {
        ("GET", ["pulls", n]) => match repo.pulls.iter().find(|p| p.number == number(n)) {
            Some(p) => ok(StatusCode::OK, pull_detail_json(w, full, p)),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        ("GET", ["pulls", n, "reviews", id]) => {
            match repo
                .reviews
                .iter()
                .find(|r| r.pr == number(n) && r.id == number(id))
            {
                Some(r) => ok(StatusCode::OK, review_json(w, full, r)),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("GET", ["pulls", n, "reviews", id, "comments"]) => {
            match repo
                .reviews
                .iter()
                .find(|r| r.pr == number(n) && r.id == number(id))
            {
                Some(r) => ok(
                    StatusCode::OK,
                    Value::Array(
                        r.comments
                            .iter()
                            .map(|c| review_comment_json(w, full, r, c))
                            .collect(),
                    ),
                ),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("GET", ["check-suites", id, "check-runs"]) => {
            let runs: Vec<Value> = repo
                .ci_jobs
                .iter()
                .filter(|j| j.in_suite && j.run_id == number(id))
                .map(|j| check_run_json(w, full, j))
                .collect();
            ok(
                StatusCode::OK,
                json!({ "total_count": runs.len(), "check_runs": runs }),
            )
        }
        ("GET", ["actions", "runs", id, "jobs"]) => {
            let jobs: Vec<Value> = repo
                .ci_jobs
                .iter()
                .filter(|j| !j.in_suite && j.run_id == number(id))
                .map(|j| job_json(w, full, j))
                .collect();
            if jobs.is_empty() {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            }
            ok(
                StatusCode::OK,
                json!({ "total_count": jobs.len(), "jobs": jobs }),
            )
        }
        // GitHub answers with a redirect to a short-lived download URL.
        ("GET", ["actions", "jobs", id, "logs"]) => {
            if !repo
                .ci_jobs
                .iter()
                .any(|j| !j.in_suite && j.id == number(id))
            {
                return Some(error(StatusCode::NOT_FOUND, "Not Found"));
            }
            let location = format!("{}/_downloads/job-logs/{id}", w.base_url);
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        ("GET", ["check-runs", id, "annotations"]) => {
            let list: Vec<Value> = repo
                .ci_jobs
                .iter()
                .filter(|j| j.id == number(id))
                .flat_map(|j| j.annotations.iter())
                .map(|(path, line, message)| {
                    json!({
                        "path": path, "start_line": line, "end_line": line, "start_column": null,
                        "end_column": null, "annotation_level": "failure", "title": "Test failure",
                        "message": message, "raw_details": "", "blob_href": "",
                    })
                })
                .collect();
            ok(StatusCode::OK, Value::Array(list))
        }
        _ => return None,
    };
    Some(response)
}

/// The download URL a job-log redirect points at (no authentication, like GitHub's).
pub(super) fn download(w: &World, segments: &[&str]) -> Option<Response> {
    let ["_downloads", "job-logs", id] = segments else {
        return None;
    };
    let id: u64 = id.parse().ok()?;
    let log = w
        .repos
        .values()
        .flat_map(|r| r.ci_jobs.iter())
        .find(|j| j.id == id)?
        .log
        .clone();
    Some((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], log).into_response())
}
