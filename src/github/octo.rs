//! [`GitHub`] over octocrab, pointed at `GITHUB_API_URL`.
//!
//! octocrab is the HTTP transport (hyper + rustls, base URI joining for GitHub Enterprise's
//! `/api/v3` prefix, connect/read/write timeouts). Its own retry layer is switched off: we
//! retry through [`super::retry::classify`] so the rules are ours and tested. Responses are
//! decoded into narrow structs of only the fields we read, so GitHub adding or omitting
//! unrelated fields cannot break us.
//!
//! Tokens travel only in the `Authorization` header (marked sensitive). Errors carry the
//! method, the path (which never contains a secret) and GitHub's `message`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method, header};
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::auth::{AppCredentials, CachedToken, GitHubConfigError, TokenCache};
use super::client::*;
use super::retry::{Attempt, RetryPolicy, Verdict, classify};
use super::types::{CheckRunId, CommentId, CommitSha, InstallationId, IssueNumber, RepoName};

/// The production GitHub client.
pub struct OctocrabGitHub {
    octo: Octocrab,
    app: AppCredentials,
    tokens: TokenCache,
    bot_login: OnceCell<String>,
    timeout: Duration,
    retry: RetryPolicy,
}

/// Which credential a request carries.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// The App JWT (App-level endpoints).
    App,
    /// An installation token scoped to one repository.
    Repo(InstallationId, &'a RepoName),
}

/// A response read to the end.
struct Answer {
    status: u16,
    body: String,
    route: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn message(&self) -> String {
        #[derive(Deserialize)]
        struct ErrorBody {
            message: Option<String>,
        }
        serde_json::from_str::<ErrorBody>(&self.body)
            .ok()
            .and_then(|b| b.message)
            .unwrap_or_else(|| self.body.chars().take(200).collect())
    }

    fn into_error(self) -> GitHubError {
        let message = self.message();
        GitHubError::Api {
            status: self.status,
            route: self.route,
            message,
        }
    }

    /// Decodes a 2xx body; any other status is an [`GitHubError::Api`].
    fn json<T: DeserializeOwned>(self) -> GitHubResult<T> {
        if !self.ok() {
            return Err(self.into_error());
        }
        serde_json::from_str(&self.body).map_err(|e| GitHubError::Decode {
            route: self.route,
            message: e.to_string(),
        })
    }

    fn empty(self) -> GitHubResult<()> {
        if self.ok() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

/// Percent-encodes a path segment (keeping `/` when `keep_slash`, for file paths).
fn encode(segment: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

fn repo_path(repo: &RepoName) -> String {
    format!(
        "/repos/{}/{}",
        encode(&repo.owner, false),
        encode(&repo.name, false)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OctocrabGitHub {
    /// A client for the API at `api_url` (e.g. `https://api.github.com`).
    pub fn new(
        api_url: &str,
        app: AppCredentials,
        bot_login: Option<String>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, GitHubConfigError> {
        let bad_url = || GitHubConfigError::BadApiUrl {
            url: api_url.to_owned(),
        };
        let parsed = url::Url::parse(api_url).map_err(|_| bad_url())?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(bad_url());
        }
        let octo = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|_| bad_url())?
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(timeout))
            .set_read_timeout(Some(timeout))
            .set_write_timeout(Some(timeout))
            .build()
            .map_err(|e| GitHubConfigError::Client(e.to_string()))?;
        Ok(Self {
            octo,
            app,
            tokens: TokenCache::default(),
            bot_login: OnceCell::new_with(bot_login),
            timeout,
            retry,
        })
    }

    /// Boxed: minting a token goes through `send`, which asks for an auth header, so the
    /// futures would otherwise contain themselves.
    fn auth_header<'a>(&'a self, auth: Auth<'a>) -> BoxFuture<'a, GitHubResult<HeaderValue>> {
        Box::pin(async move {
            let secret = match auth {
                Auth::App => self.app.jwt(Utc::now()).map_err(GitHubError::Auth)?,
                Auth::Repo(inst, repo) => self.token(inst, repo).await?,
            };
            let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret()))
                .map_err(|_| GitHubError::Auth("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            Ok(value)
        })
    }

    async fn token(&self, inst: InstallationId, repo: &RepoName) -> GitHubResult<SecretString> {
        self.tokens
            .get_or_mint(inst, Some(repo), Utc::now(), || self.mint(inst, repo))
            .await
    }

    /// `POST /app/installations/{id}/access_tokens`, scoped to one repository.
    async fn mint(&self, inst: InstallationId, repo: &RepoName) -> GitHubResult<CachedToken> {
        #[derive(Deserialize)]
        struct TokenBody {
            token: String,
            expires_at: DateTime<Utc>,
        }
        let path = format!("/app/installations/{inst}/access_tokens");
        let body = json!({ "repositories": [repo.name] });
        let answer: TokenBody = self
            .send(Auth::App, Method::POST, &path, Some(&body))
            .await?
            .json()?;
        Ok(CachedToken {
            token: answer.token.into(),
            expires_at: answer.expires_at,
        })
    }

    /// One logical call with classified retries. Returns any final answer (2xx or not);
    /// callers decide what a 404 or 422 means.
    async fn send(
        &self,
        auth: Auth<'_>,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> GitHubResult<Answer> {
        let route = format!(
            "{method} {}",
            path_and_query.split('?').next().unwrap_or_default()
        );
        let mut refreshed_after_401 = false;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(auth, &method, path_and_query, body).await;
            let (verdict, result) = match outcome {
                Ok((status, headers, text)) => {
                    let verdict = classify(
                        &self.retry,
                        attempt,
                        &Attempt::Answered {
                            status,
                            headers: &headers,
                            body: &text,
                        },
                        unix_now(),
                    );
                    (
                        verdict,
                        Ok(Answer {
                            status,
                            body: text,
                            route: route.clone(),
                        }),
                    )
                }
                Err(message) => (
                    classify(&self.retry, attempt, &Attempt::Transport, unix_now()),
                    Err(GitHubError::Transport {
                        route: route.clone(),
                        message,
                    }),
                ),
            };
            // A revoked or expired installation token: mint a new one once.
            if let (Ok(Answer { status: 401, .. }), Auth::Repo(inst, _)) = (&result, auth)
                && !refreshed_after_401
            {
                refreshed_after_401 = true;
                self.tokens.forget(inst).await;
                continue;
            }
            match verdict {
                Verdict::Stop => return result,
                Verdict::RateLimitExhausted => {
                    return Err(GitHubError::RateLimited {
                        route,
                        attempts: attempt,
                    });
                }
                Verdict::RetryAfter(wait) => {
                    let why = match &result {
                        Ok(answer) => format!("status {}", answer.status),
                        Err(err) => err.to_string(),
                    };
                    tracing::warn!(%route, attempt, wait_ms = wait.as_millis() as u64, %why, "retrying GitHub call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One HTTP exchange under the overall timeout. Errors are Display strings only
    /// (octocrab's Debug output is a backtrace, and nothing here may hold a token).
    async fn attempt(
        &self,
        auth: Auth<'_>,
        method: &Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(u16, HeaderMap, String), String> {
        let authorization = self.auth_header(auth).await.map_err(|e| e.to_string())?;
        let builder = http::Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header(header::AUTHORIZATION, authorization);
        let request = self
            .octo
            .build_request(builder, body)
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .octo
                .execute(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = self
                .octo
                .body_to_string(response)
                .await
                .map_err(|e| e.to_string())?;
            Ok((status, headers, text))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs_f32())),
        }
    }

    async fn repo_json<T: DeserializeOwned>(
        &self,
        inst: InstallationId,
        repo: &RepoName,
        method: Method,
        tail: &str,
        body: Option<&Value>,
    ) -> GitHubResult<T> {
        let path = format!("{}{tail}", repo_path(repo));
        self.send(Auth::Repo(inst, repo), method, &path, body)
            .await?
            .json()
    }
}

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("fix/a b#1", false), "fix%2Fa%20b%231");
        assert_eq!(
            encode(".github/patchpilot.yml", true),
            ".github/patchpilot.yml"
        );
        assert_eq!(query(&[("q", "repo:o/r is:pr")]), "q=repo%3Ao%2Fr+is%3Apr");
    }

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
