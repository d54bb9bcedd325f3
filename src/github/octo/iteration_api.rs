//! The REST routes iterations read: a pull request, its reviews and their line comments, and
//! what CI left on a commit (workflow jobs, check runs, annotations, job logs). Narrow
//! response structs, like `api.rs`.

use http::Method;
use serde::Deserialize;

use super::{Auth, OctocrabGitHub};
use crate::github::client::*;
use crate::github::types::{CommitSha, InstallationId, IssueNumber, RepoName};

/// The tail of a job log that is kept (failures are at the end; logs run to megabytes).
pub const MAX_JOB_LOG_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

impl User {
    fn is_bot(&self) -> bool {
        self.kind == "Bot" || self.login.ends_with("[bot]")
    }
}

#[derive(Deserialize)]
struct CheckRunBody {
    id: u64,
    name: String,
    conclusion: Option<String>,
    #[serde(default)]
    output: Option<CheckRunOutput>,
}

#[derive(Deserialize)]
struct CheckRunOutput {
    summary: Option<String>,
    text: Option<String>,
}

impl From<CheckRunBody> for CiJob {
    fn from(run: CheckRunBody) -> Self {
        let summary = run
            .output
            .map(|o| {
                [o.summary, o.text]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .unwrap_or_default();
        CiJob {
            id: run.id,
            name: run.name,
            conclusion: run.conclusion,
            summary,
        }
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

impl OctocrabGitHub {
    pub(super) async fn fetch_pull_request(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
    ) -> GitHubResult<PullRequestInfo> {
        #[derive(Deserialize)]
        struct End {
            #[serde(rename = "ref")]
            branch: String,
            sha: String,
        }
        #[derive(Deserialize)]
        struct Pull {
            number: u64,
            title: String,
            html_url: String,
            state: String,
            user: User,
            head: End,
            base: End,
        }
        let p: Pull = self
            .repo_json(inst, repo, Method::GET, &format!("/pulls/{pr}"), None)
            .await?;
        Ok(PullRequestInfo {
            number: IssueNumber(p.number),
            title: p.title,
            author: p.user.login,
            head_branch: p.head.branch,
            head_sha: CommitSha(p.head.sha),
            base_branch: p.base.branch,
            html_url: p.html_url,
            open: p.state == "open",
        })
    }

    pub(super) async fn fetch_review(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
        review: u64,
    ) -> GitHubResult<Review> {
        #[derive(Deserialize)]
        struct Body {
            id: u64,
            state: String,
            user: User,
            body: Option<String>,
        }
        let tail = format!("/pulls/{pr}/reviews/{review}");
        let r: Body = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(Review {
            id: r.id,
            state: r.state,
            author_is_bot: r.user.is_bot(),
            author: r.user.login,
            body: r.body.unwrap_or_default(),
        })
    }

    pub(super) async fn fetch_review_comments(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
        review: u64,
    ) -> GitHubResult<Vec<ReviewComment>> {
        #[derive(Deserialize)]
        struct Body {
            id: u64,
            user: User,
            body: String,
            path: String,
            line: Option<u64>,
            #[serde(default)]
            original_line: Option<u64>,
            #[serde(default)]
            diff_hunk: String,
        }
        let tail = format!("/pulls/{pr}/reviews/{review}/comments?per_page=100");
        let list: Vec<Body> = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(list
            .into_iter()
            .map(|c| ReviewComment {
                id: c.id,
                author_is_bot: c.user.is_bot(),
                author: c.user.login,
                body: c.body,
                path: c.path,
                line: c.line.or(c.original_line),
                diff_hunk: c.diff_hunk,
            })
            .collect())
    }

    pub(super) async fn fetch_workflow_run_jobs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        run: u64,
    ) -> GitHubResult<Vec<CiJob>> {
        #[derive(Deserialize)]
        struct Jobs {
            jobs: Vec<CheckRunBody>,
        }
        let tail = format!("/actions/runs/{run}/jobs?per_page=100");
        let jobs: Jobs = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(jobs.jobs.into_iter().map(CiJob::from).collect())
    }

    pub(super) async fn fetch_check_suite_runs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        suite: u64,
    ) -> GitHubResult<Vec<CiJob>> {
        #[derive(Deserialize)]
        struct Runs {
            check_runs: Vec<CheckRunBody>,
        }
        let tail = format!("/check-suites/{suite}/check-runs?per_page=100");
        let runs: Runs = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(runs.check_runs.into_iter().map(CiJob::from).collect())
    }

    pub(super) async fn fetch_check_run_annotations(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        check_run: u64,
    ) -> GitHubResult<Vec<Annotation>> {
        #[derive(Deserialize)]
        struct Body {
            path: String,
            start_line: u64,
            annotation_level: Option<String>,
            title: Option<String>,
            message: String,
        }
        let tail = format!("/check-runs/{check_run}/annotations?per_page=100");
        let list: Vec<Body> = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(list
            .into_iter()
            .map(|a| Annotation {
                path: a.path,
                start_line: a.start_line,
                level: a.annotation_level.unwrap_or_default(),
                title: a.title.unwrap_or_default(),
                message: a.message,
            })
            .collect())
    }

    pub(super) async fn fetch_job_log(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        job: u64,
    ) -> GitHubResult<String> {
        let path = format!("{}/actions/jobs/{job}/logs", super::repo_path(repo));
        let answer = self
            .send(Auth::Repo(inst, repo), Method::GET, &path, None)
            .await?;
        if !answer.ok() {
            return Err(answer.into_error());
        }
        Ok(tail(&answer.body, MAX_JOB_LOG_BYTES).to_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_tails_keep_whole_characters() {
        assert_eq!(super::tail("ab€cd", 3), "cd");
        assert_eq!(super::tail("abc", 10), "abc");
    }
}
