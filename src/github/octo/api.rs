//! The REST routes behind each [`GitHub`] verb, with narrow response structs.

use async_trait::async_trait;
use chrono::Utc;
use http::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, OctocrabGitHub, encode, query, repo_path};
use crate::github::client::*;
use crate::github::types::{
    CheckRunId, CommentId, CommitSha, InstallationId, IssueNumber, RepoName,
};

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

#[derive(Deserialize)]
struct PullBody {
    number: u64,
    html_url: String,
}

impl From<PullBody> for PullRequest {
    fn from(p: PullBody) -> Self {
        PullRequest {
            number: IssueNumber(p.number),
            html_url: p.html_url,
        }
    }
}

fn check_run_json(update: &CheckRunUpdate, head_sha: Option<&CommitSha>) -> Value {
    let mut body = json!({ "name": update.name });
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match update.status {
        CheckStatus::Queued => body["status"] = "queued".into(),
        CheckStatus::InProgress => {
            body["status"] = "in_progress".into();
            body["started_at"] = now.into();
        }
        CheckStatus::Completed(conclusion) => {
            body["status"] = "completed".into();
            body["conclusion"] = conclusion.as_str().into();
            body["completed_at"] = now.into();
        }
    }
    if let Some(sha) = head_sha {
        body["head_sha"] = sha.0.clone().into();
    }
    if let Some(url) = &update.details_url {
        body["details_url"] = url.clone().into();
    }
    if let Some(id) = &update.external_id {
        body["external_id"] = id.clone().into();
    }
    if let Some(output) = &update.output {
        body["output"] = json!({ "title": output.title, "summary": output.summary });
        if let Some(text) = &output.text {
            body["output"]["text"] = text.clone().into();
        }
    }
    body
}

#[async_trait]
impl GitHub for OctocrabGitHub {
    async fn bot_login(&self) -> GitHubResult<String> {
        self.bot_login
            .get_or_try_init(|| async {
                #[derive(Deserialize)]
                struct App {
                    slug: String,
                }
                let app: App = self
                    .send(Auth::App, Method::GET, "/app", None)
                    .await?
                    .json()?;
                Ok(format!("{}[bot]", app.slug))
            })
            .await
            .cloned()
    }

    async fn installation_token(
        &self,
        inst: InstallationId,
        repo: &RepoName,
    ) -> GitHubResult<SecretString> {
        self.token(inst, repo).await
    }

    async fn repository(&self, inst: InstallationId, repo: &RepoName) -> GitHubResult<Repo> {
        #[derive(Deserialize)]
        struct RepoBody {
            default_branch: String,
            clone_url: String,
        }
        let r: RepoBody = self.repo_json(inst, repo, Method::GET, "", None).await?;
        Ok(Repo {
            default_branch: r.default_branch,
            clone_url: r.clone_url,
        })
    }

    async fn branch_head(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        branch: &str,
    ) -> GitHubResult<CommitSha> {
        #[derive(Deserialize)]
        struct Branch {
            commit: IdSha,
        }
        #[derive(Deserialize)]
        struct IdSha {
            sha: String,
        }
        let tail = format!("/branches/{}", encode(branch, true));
        let b: Branch = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(CommitSha(b.commit.sha))
    }

    async fn get_issue(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        issue: IssueNumber,
    ) -> GitHubResult<Issue> {
        #[derive(Deserialize)]
        struct IssueBody {
            title: String,
            body: Option<String>,
            state: IssueState,
            pull_request: Option<Value>,
            user: User,
        }
        let i: IssueBody = self
            .repo_json(inst, repo, Method::GET, &format!("/issues/{issue}"), None)
            .await?;
        Ok(Issue {
            title: i.title,
            body: i.body.unwrap_or_default(),
            state: i.state,
            is_pull_request: i.pull_request.is_some(),
            author: i.user.login,
        })
    }

    async fn post_comment(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        issue: IssueNumber,
        body: &str,
    ) -> GitHubResult<CommentId> {
        let tail = format!("/issues/{issue}/comments");
        let c: IdOnly = self
            .repo_json(
                inst,
                repo,
                Method::POST,
                &tail,
                Some(&json!({ "body": body })),
            )
            .await?;
        Ok(CommentId(c.id))
    }

    async fn update_comment(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        comment: CommentId,
        body: &str,
    ) -> GitHubResult<()> {
        let tail = format!("/issues/comments/{comment}");
        let _: IdOnly = self
            .repo_json(
                inst,
                repo,
                Method::PATCH,
                &tail,
                Some(&json!({ "body": body })),
            )
            .await?;
        Ok(())
    }

    async fn list_comments(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        issue: IssueNumber,
    ) -> GitHubResult<Vec<Comment>> {
        #[derive(Deserialize)]
        struct CommentBody {
            id: u64,
            body: Option<String>,
            user: User,
        }
        const PER_PAGE: usize = 100;
        let mut all = Vec::new();
        for page in 1.. {
            let tail = format!("/issues/{issue}/comments?per_page={PER_PAGE}&page={page}");
            let batch: Vec<CommentBody> =
                self.repo_json(inst, repo, Method::GET, &tail, None).await?;
            let last = batch.len() < PER_PAGE;
            all.extend(batch.into_iter().map(|c| Comment {
                id: CommentId(c.id),
                author: c.user.login,
                body: c.body.unwrap_or_default(),
            }));
            if last {
                break;
            }
        }
        Ok(all)
    }

    async fn add_reaction(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        target: ReactionTarget,
        reaction: Reaction,
    ) -> GitHubResult<()> {
        let tail = match target {
            ReactionTarget::Comment(id) => format!("/issues/comments/{id}/reactions"),
            ReactionTarget::Issue(n) => format!("/issues/{n}/reactions"),
        };
        let body = json!({ "content": reaction.content() });
        let path = format!("{}{tail}", repo_path(repo));
        self.send(Auth::Repo(inst, repo), Method::POST, &path, Some(&body))
            .await?
            .empty()
    }

    async fn permission(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        login: &str,
    ) -> GitHubResult<Permission> {
        #[derive(Deserialize)]
        struct PermissionBody {
            permission: String,
            role_name: Option<String>,
        }
        let path = format!(
            "{}/collaborators/{}/permission",
            repo_path(repo),
            encode(login, false)
        );
        let answer = self
            .send(Auth::Repo(inst, repo), Method::GET, &path, None)
            .await?;
        if answer.status == 404 {
            return Ok(Permission::None);
        }
        let p: PermissionBody = answer.json()?;
        // `role_name` distinguishes maintain/triage; `permission` is the legacy coarse value.
        Ok(Permission::from_github(
            p.role_name.as_deref().unwrap_or(&p.permission),
        ))
    }

    async fn create_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        head_sha: &CommitSha,
        update: &CheckRunUpdate,
    ) -> GitHubResult<CheckRunId> {
        let body = check_run_json(update, Some(head_sha));
        let c: IdOnly = self
            .repo_json(inst, repo, Method::POST, "/check-runs", Some(&body))
            .await?;
        Ok(CheckRunId(c.id))
    }

    async fn update_check_run(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        check_run: CheckRunId,
        update: &CheckRunUpdate,
    ) -> GitHubResult<()> {
        let body = check_run_json(update, None);
        let tail = format!("/check-runs/{check_run}");
        let _: IdOnly = self
            .repo_json(inst, repo, Method::PATCH, &tail, Some(&body))
            .await?;
        Ok(())
    }

    async fn list_check_runs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        head_sha: &CommitSha,
        name: &str,
    ) -> GitHubResult<Vec<CheckRun>> {
        #[derive(Deserialize)]
        struct Listing {
            check_runs: Vec<Run>,
        }
        #[derive(Deserialize)]
        struct Run {
            id: u64,
            status: String,
            external_id: Option<String>,
            details_url: Option<String>,
        }
        // `filter=all` includes runs superseded by a re-run; `app_id` keeps other Apps' runs
        // (which could carry a copied external id) out.
        let app_id = self.app.app_id().to_string();
        let tail = format!(
            "/commits/{}/check-runs?{}",
            encode(&head_sha.0, false),
            query(&[
                ("check_name", name),
                ("filter", "all"),
                ("app_id", &app_id),
                ("per_page", "100"),
            ])
        );
        let listing: Listing = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(listing
            .check_runs
            .into_iter()
            .map(|r| CheckRun {
                id: CheckRunId(r.id),
                completed: r.status == "completed",
                external_id: r.external_id,
                details_url: r.details_url,
            })
            .collect())
    }

    async fn open_pull_request(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: &NewPullRequest,
    ) -> GitHubResult<PullRequest> {
        let body = json!({
            "title": pr.title, "head": pr.head, "base": pr.base, "body": pr.body, "draft": pr.draft,
        });
        let path = format!("{}/pulls", repo_path(repo));
        let answer = self
            .send(Auth::Repo(inst, repo), Method::POST, &path, Some(&body))
            .await?;
        if answer.status != 422 {
            return answer.json::<PullBody>().map(Into::into);
        }
        // 422 "A pull request already exists": find it and refresh its text.
        let head = format!("{}:{}", repo.owner, pr.head);
        let tail = format!("/pulls?{}", query(&[("head", &head), ("state", "open")]));
        let open: Vec<PullBody> = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        let Some(existing) = open.into_iter().next() else {
            return Err(answer.into_error());
        };
        let tail = format!("/pulls/{}", existing.number);
        let patch = json!({ "title": pr.title, "body": pr.body });
        let updated: PullBody = self
            .repo_json(inst, repo, Method::PATCH, &tail, Some(&patch))
            .await?;
        Ok(updated.into())
    }

    async fn get_file(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        path: &str,
        git_ref: &str,
    ) -> GitHubResult<Option<String>> {
        #[derive(Deserialize)]
        struct Contents {
            #[serde(rename = "type")]
            kind: String,
            content: Option<String>,
        }
        let full = format!(
            "{}/contents/{}?{}",
            repo_path(repo),
            encode(path.trim_start_matches('/'), true),
            query(&[("ref", git_ref)])
        );
        let answer = self
            .send(Auth::Repo(inst, repo), Method::GET, &full, None)
            .await?;
        if answer.status == 404 {
            return Ok(None);
        }
        let route = answer.route.clone();
        let decode_err = |message: String| GitHubError::Decode {
            route: route.clone(),
            message,
        };
        let contents: Contents = answer.json()?;
        if contents.kind != "file" {
            return Err(decode_err(format!(
                "{path} is a {}, not a file",
                contents.kind
            )));
        }
        use base64::Engine as _;
        let b64: String = contents
            .content
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| decode_err(e.to_string()))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| decode_err(format!("{path} is not UTF-8 text")))
    }

    async fn search_issues(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        search: &str,
        limit: u8,
    ) -> GitHubResult<Vec<SearchHit>> {
        #[derive(Deserialize)]
        struct Results {
            items: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            number: u64,
            title: String,
            html_url: String,
            state: IssueState,
            pull_request: Option<Value>,
        }
        let q = format!("repo:{repo} {search}");
        let per_page = limit.clamp(1, 100).to_string();
        let path = format!(
            "/search/issues?{}",
            query(&[("q", &q), ("per_page", &per_page)])
        );
        let results: Results = self
            .send(Auth::Repo(inst, repo), Method::GET, &path, None)
            .await?
            .json()?;
        Ok(results
            .items
            .into_iter()
            .take(usize::from(limit))
            .map(|i| SearchHit {
                number: IssueNumber(i.number),
                title: i.title,
                html_url: i.html_url,
                is_pr: i.pull_request.is_some(),
                state: i.state,
            })
            .collect())
    }

    async fn pull_request_files(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
    ) -> GitHubResult<Vec<PullRequestFile>> {
        #[derive(Deserialize)]
        struct File {
            filename: String,
            status: String,
            additions: u64,
            deletions: u64,
        }
        let tail = format!("/pulls/{pr}/files?per_page=100");
        let files: Vec<File> = self.repo_json(inst, repo, Method::GET, &tail, None).await?;
        Ok(files
            .into_iter()
            .map(|f| PullRequestFile {
                filename: f.filename,
                status: f.status,
                additions: f.additions,
                deletions: f.deletions,
            })
            .collect())
    }

    async fn get_pull_request(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
    ) -> GitHubResult<PullRequestInfo> {
        self.fetch_pull_request(inst, repo, pr).await
    }

    async fn get_review(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
        review: u64,
    ) -> GitHubResult<Review> {
        self.fetch_review(inst, repo, pr, review).await
    }

    async fn review_comments(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        pr: IssueNumber,
        review: u64,
    ) -> GitHubResult<Vec<ReviewComment>> {
        self.fetch_review_comments(inst, repo, pr, review).await
    }

    async fn workflow_run_jobs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        run: u64,
    ) -> GitHubResult<Vec<CiJob>> {
        self.fetch_workflow_run_jobs(inst, repo, run).await
    }

    async fn check_suite_runs(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        suite: u64,
    ) -> GitHubResult<Vec<CiJob>> {
        self.fetch_check_suite_runs(inst, repo, suite).await
    }

    async fn check_run_annotations(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        check_run: u64,
    ) -> GitHubResult<Vec<Annotation>> {
        self.fetch_check_run_annotations(inst, repo, check_run)
            .await
    }

    async fn job_log(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        job: u64,
    ) -> GitHubResult<String> {
        self.fetch_job_log(inst, repo, job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_check_run_carries_conclusion_and_output() {
        let update = CheckRunUpdate {
            name: "PatchPilot".into(),
            status: CheckStatus::Completed(CheckConclusion::Neutral),
            details_url: Some("http://x/sessions/1".into()),
            external_id: Some("1".into()),
            output: Some(CheckOutput {
                title: "t".into(),
                summary: "s".into(),
                text: None,
            }),
        };
        let body = check_run_json(&update, Some(&CommitSha("abc".into())));
        assert_eq!(body["status"], "completed");
        assert_eq!(body["conclusion"], "neutral");
        assert_eq!(body["head_sha"], "abc");
        assert_eq!(body["output"], json!({ "title": "t", "summary": "s" }));
        assert!(body.get("started_at").is_none());
    }
}
