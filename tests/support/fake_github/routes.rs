//! The fake's request handling: authentication, failure injection, call recording and
//! GitHub's REST routes with realistic JSON.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use octocrab::jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::{Value, json};

use super::*;

pub(super) fn user_json(base: &str, login: &str) -> Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({
        "login": login, "id": login.len() as u64 * 1000 + 7, "node_id": "U_kgDO",
        "avatar_url": format!("{base}/avatars/{login}"), "gravatar_id": "",
        "url": format!("{base}/users/{login}"), "html_url": format!("{base}/{login}"),
        "followers_url": "", "following_url": "", "gists_url": "", "starred_url": "",
        "subscriptions_url": "", "organizations_url": "", "repos_url": "", "events_url": "",
        "received_events_url": "", "type": kind, "site_admin": false,
    })
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string() });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .extensions_mut()
        .insert(Refusal(message.to_owned()));
    response
}

/// Why the fake answered an error (kept on the response, never sent).
#[derive(Clone)]
struct Refusal(String);

/// Marks a 404 that GitHub itself answers for something absent and that PatchPilot branches
/// on (a missing `.github/patchpilot.yml`, a branch that does not exist yet). Every other
/// 404 means the fake had nothing that matched, and the strict teardown reports it.
#[derive(Clone)]
struct Absent;

pub(super) fn absent(message: &str) -> Response {
    let mut response = error(StatusCode::NOT_FOUND, message);
    response.extensions_mut().insert(Absent);
    response
}

/// Why a call was not answered meaningfully: the fake did not know the route, authenticated
/// nobody, or had nothing that matched (a 404 not marked [`Absent`]).
fn unanswered(response: &Response) -> Option<String> {
    let status = response.status();
    let refused = status == StatusCode::UNAUTHORIZED
        || status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && response.extensions().get::<Absent>().is_none());
    if !refused {
        return None;
    }
    let why = response
        .extensions()
        .get::<Refusal>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    Some(format!("{} ({why})", status.as_u16()))
}

pub(super) fn ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Who the request authenticated as.
enum Caller {
    App,
    Installation { repos: Vec<String> },
    Anonymous,
}

fn authenticate(w: &World, headers: &HeaderMap) -> Result<Caller, String> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Ok(Caller::Anonymous);
    };
    let bearer = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))
        .ok_or("bad scheme")?;
    if bearer.matches('.').count() == 2 {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["iat", "exp", "iss"]);
        validation.leeway = 0;
        let key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes()).unwrap();
        let data =
            decode::<Value>(bearer, &key, &validation).map_err(|e| format!("bad JWT: {e}"))?;
        let (iat, exp) = (
            data.claims["iat"].as_i64().unwrap_or(0),
            data.claims["exp"].as_i64().unwrap_or(0),
        );
        if exp - iat > 600 {
            return Err("JWT lives longer than 10 minutes".into());
        }
        if data.claims["iss"] != json!(TEST_APP_ID.to_string())
            && data.claims["iss"] != json!(TEST_APP_ID)
        {
            return Err("JWT issuer is not the test App".into());
        }
        return Ok(Caller::App);
    }
    let token = w
        .tokens
        .iter()
        .find(|t| t.value == bearer)
        .ok_or("unknown token")?;
    if token.expires_at <= Utc::now() {
        return Err("expired token".into());
    }
    Ok(Caller::Installation {
        repos: token.repos.clone(),
    })
}

pub(super) async fn handle(
    State(world): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (injected, delay, forgotten) = {
        let mut w = world.lock().unwrap();
        let forgotten = w
            .forgotten_routes
            .iter()
            .any(|(m, part)| *m == method && path.contains(part.as_str()));
        let mut injected = None;
        let mut delay = None;
        if let Some(f) = w
            .failures
            .iter_mut()
            .find(|f| f.remaining > 0 && f.method == method && path.contains(&f.path_contains))
        {
            f.remaining -= 1;
            match f.kind.clone() {
                FailureKind::Slow(d) => delay = Some(d),
                other => injected = Some(other),
            }
        }
        (injected, delay, forgotten)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let response = match injected {
        Some(FailureKind::ServerError) => error(StatusCode::BAD_GATEWAY, "Server Error"),
        Some(FailureKind::TooManyRequests { retry_after }) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded");
            r.headers_mut().insert("retry-after", retry_after.into());
            r
        }
        Some(FailureKind::SecondaryRateLimit { retry_after }) => {
            let mut r = error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            r.headers_mut().insert("retry-after", retry_after.into());
            r
        }
        _ if forgotten => unknown(&method, &path),
        _ => {
            let mut w = world.lock().unwrap();
            route(&mut w, &method, &path, &query, &headers, &json_body)
        }
    };
    let mut w = world.lock().unwrap();
    let status = response.status().as_u16();
    if response.status().is_success() {
        w.fire_kill_switches(&method, &path, &json_body);
    }
    if let Some(why) = unanswered(&response) {
        let shown = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        w.problems.push(format!("{method} {shown} answered {why}"));
    }
    w.calls.push(Call {
        method,
        path,
        status,
        body: json_body,
    });
    response
}

fn route(
    w: &mut World,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &Value,
) -> Response {
    let caller = match authenticate(w, headers) {
        Ok(caller) => caller,
        Err(why) => return error(StatusCode::UNAUTHORIZED, &why),
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let Some(response) = super::iterations::download(w, &segments) {
        return response;
    }
    match (&caller, segments.as_slice()) {
        (_, ["app-manifests", code, "conversions"]) if *method == Method::POST => {
            manifest_conversion(w, code)
        }
        (Caller::App, ["app"]) => ok(
            StatusCode::OK,
            json!({
                "id": TEST_APP_ID, "slug": TEST_APP_SLUG, "name": "PatchPilot", "node_id": "A_kw",
                "owner": user_json(&w.base_url, "octo-org"), "html_url": format!("{}/apps/{TEST_APP_SLUG}", w.base_url),
                "permissions": {}, "events": [],
            }),
        ),
        (Caller::App, ["app", "installations", id, "access_tokens"]) if *method == Method::POST => {
            mint_token(w, id.parse().unwrap_or(0), body)
        }
        (Caller::Installation { repos }, ["repos", owner, name, rest @ ..]) => {
            let full = format!("{owner}/{name}");
            if !repos.contains(&full) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            repo_route(w, method, &full, rest, query, body)
        }
        (Caller::Installation { .. }, ["search", "issues"]) if *method == Method::GET => {
            search(w, query)
        }
        (Caller::Anonymous, _) => error(StatusCode::UNAUTHORIZED, "Requires authentication"),
        _ => unknown(method, path),
    }
}

fn unknown(method: &Method, path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("the fake has no route {method} {path}"),
    )
}

fn mint_token(w: &mut World, installation: u64, body: &Value) -> Response {
    let Some(installed) = w.installations.get(&installation).cloned() else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let owner = installed
        .first()
        .and_then(|r| r.split_once('/'))
        .map(|(o, _)| o.to_owned())
        .unwrap_or_default();
    let repos: Vec<String> = match body["repositories"].as_array() {
        Some(names) => names
            .iter()
            .filter_map(|n| n.as_str())
            .map(|n| format!("{owner}/{n}"))
            .collect(),
        None => installed.clone(),
    };
    if repos.iter().any(|r| !installed.contains(r)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
        );
    }
    let n = w.id();
    let value = format!("ghs_fake{n:0>32}");
    let expires_at = Utc::now() + w.token_lifetime;
    w.tokens.push(Token {
        value: value.clone(),
        installation,
        repos: repos.clone(),
        expires_at,
    });
    let repositories: Vec<Value> = repos
        .iter()
        .map(|r| json!({ "full_name": r, "name": r.split('/').nth(1) }))
        .collect();
    ok(
        StatusCode::CREATED,
        json!({
            "token": value,
            "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": { "contents": "write", "issues": "write", "pull_requests": "write", "checks": "write", "metadata": "read" },
            "repository_selection": "selected",
            "repositories": repositories,
        }),
    )
}

fn manifest_conversion(w: &mut World, code: &str) -> Response {
    if !w.manifest_codes.remove(code) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    ok(
        StatusCode::CREATED,
        json!({
            "id": TEST_APP_ID, "slug": TEST_APP_SLUG, "node_id": "A_kw", "name": "PatchPilot",
            "owner": user_json(&w.base_url, "octo-org"), "html_url": format!("{}/apps/{TEST_APP_SLUG}", w.base_url),
            "client_id": "Iv1.fake", "client_secret": "fake-client-secret", "webhook_secret": "fake-webhook-secret",
            "pem": PRIVATE_KEY_PEM, "permissions": {}, "events": [],
        }),
    )
}

fn search(w: &World, query: &BTreeMap<String, String>) -> Response {
    let q = query.get("q").cloned().unwrap_or_default();
    let mut repo_name = None;
    let mut words = Vec::new();
    for part in q.split_whitespace() {
        match part.strip_prefix("repo:") {
            Some(r) => repo_name = Some(r.to_owned()),
            None => words.push(part.to_lowercase()),
        }
    }
    let limit: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30);
    let items: Vec<Value> = repo_name
        .and_then(|r| w.repos.get(&r))
        .map(|repo| {
            repo.issues
                .values()
                .filter(|i| {
                    words
                        .iter()
                        .all(|word| word.contains(':') || i.title.to_lowercase().contains(word))
                })
                .take(limit)
                .map(|i| issue_json(w, repo, i))
                .collect()
        })
        .unwrap_or_default();
    ok(
        StatusCode::OK,
        json!({ "total_count": items.len(), "incomplete_results": false, "items": items }),
    )
}

fn issue_json(w: &World, repo: &FakeRepo, i: &FakeIssue) -> Value {
    let html = format!(
        "{}/{}/{}/{}/{}",
        w.base_url,
        repo.owner,
        repo.name,
        if i.is_pr { "pull" } else { "issues" },
        i.number
    );
    let mut v = json!({
        "id": i.number + 9000, "node_id": "I_kw", "number": i.number, "title": i.title, "body": i.body,
        "state": i.state, "user": user_json(&w.base_url, &i.author), "labels": [], "assignees": [],
        "comments": 0, "html_url": html, "url": "", "repository_url": "", "labels_url": "",
        "comments_url": "", "events_url": "", "author_association": "MEMBER", "locked": false,
        "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
    });
    if i.is_pr {
        v["pull_request"] = json!({ "url": "", "html_url": html, "diff_url": "", "patch_url": "" });
    }
    v
}

fn comment_json(w: &World, c: &FakeComment) -> Value {
    json!({
        "id": c.id, "node_id": "IC_kw", "body": c.body, "user": user_json(&w.base_url, &c.author),
        "html_url": format!("{}/comments/{}", w.base_url, c.id), "url": "", "issue_url": "",
        "author_association": if c.author.ends_with("[bot]") { "NONE" } else { "MEMBER" },
        "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
    })
}

fn check_run_json(c: &FakeCheckRun) -> Value {
    json!({
        "id": c.id, "head_sha": c.head_sha, "name": c.name, "status": c.status, "conclusion": c.conclusion,
        "external_id": c.external_id, "details_url": c.details_url, "node_id": "CR_kw", "url": "", "html_url": "",
        "output": c.output, "started_at": null, "completed_at": null, "pull_requests": [],
        "app": { "id": TEST_APP_ID, "slug": TEST_APP_SLUG, "name": "PatchPilot" },
    })
}

fn pull_json(w: &World, repo: &str, p: &FakePull) -> Value {
    json!({
        "id": p.number + 7000, "number": p.number, "title": p.title, "body": p.body, "draft": p.draft, "state": "open",
        "html_url": format!("{}/{repo}/pull/{}", w.base_url, p.number), "url": "",
        "head": { "ref": p.head, "label": p.head }, "base": { "ref": p.base, "label": p.base },
    })
}

/// The first text field of a write that GitHub would refuse for its length.
fn over_github_limit(body: &Value) -> Option<&'static str> {
    let too_long = |v: &Value| v.as_str().is_some_and(|t| t.chars().count() > 65_536);
    if too_long(&body["body"]) {
        return Some("body");
    }
    let output = &body["output"];
    [("summary", "output.summary"), ("text", "output.text")]
        .into_iter()
        .find(|(key, _)| too_long(&output[*key]))
        .map(|(_, name)| name)
}

fn repo_route(
    w: &mut World,
    method: &Method,
    full: &str,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &Value,
) -> Response {
    let base = w.base_url.clone();
    let bot = BOT_LOGIN.to_owned();
    if let Some(field) = over_github_limit(body) {
        // What GitHub answers for bodies and check-run output over 65,536 characters.
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Validation Failed: {field} is too long (maximum is 65536 characters)"),
        );
    }
    match (method.as_str(), rest) {
        ("GET", []) => {
            let r = &w.repos[full];
            ok(
                StatusCode::OK,
                json!({
                    "id": 1, "node_id": "R_kg", "name": r.name, "full_name": full, "private": false,
                    "owner": user_json(&base, &r.owner), "default_branch": r.default_branch,
                    "html_url": format!("{base}/{full}"), "clone_url": format!("{}/{full}.git", w.git_base_url),
                    "url": format!("{base}/repos/{full}"),
                }),
            )
        }
        ("GET", ["branches", branch @ ..]) => {
            let name = branch.join("/");
            match branch_sha(w, full, &name) {
                Some(sha) => ok(
                    StatusCode::OK,
                    json!({ "name": name, "commit": { "sha": sha, "url": "" }, "protected": false }),
                ),
                None => absent("Branch not found"),
            }
        }
        ("GET", ["contents", file @ ..]) => {
            let path = file.join("/");
            let r = &w.repos[full];
            let git_ref = query
                .get("ref")
                .cloned()
                .unwrap_or_else(|| r.default_branch.clone());
            match r.files.get(&(git_ref, path.clone())) {
                Some(text) => {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                    // GitHub wraps base64 content at 60 columns.
                    let wrapped: Vec<String> = encoded
                        .as_bytes()
                        .chunks(60)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect();
                    ok(
                        StatusCode::OK,
                        json!({
                            "type": "file", "encoding": "base64", "size": text.len(), "name": path.rsplit('/').next(),
                            "path": path, "content": wrapped.join("\n") + "\n", "sha": "b".repeat(40),
                        }),
                    )
                }
                None => absent("Not Found"),
            }
        }
        ("GET", ["issues", n]) => {
            let r = &w.repos[full];
            match n.parse().ok().and_then(|n: u64| r.issues.get(&n)) {
                Some(i) => ok(StatusCode::OK, issue_json(w, r, i)),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("GET", ["issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let per_page: usize = query
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30);
            let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let list: Vec<Value> = w.repos[full]
                .comments
                .iter()
                .filter(|c| c.issue == n)
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| comment_json(w, c))
                .collect();
            ok(StatusCode::OK, Value::Array(list))
        }
        ("POST", ["issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            if !w.repos[full].issues.contains_key(&n) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            let Some(text) = body["body"].as_str() else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
            };
            let id = w.id();
            let c = FakeComment {
                id,
                issue: n,
                author: bot,
                body: text.into(),
                edits: 0,
            };
            let json = comment_json(w, &c);
            w.repos.get_mut(full).unwrap().comments.push(c);
            ok(StatusCode::CREATED, json)
        }
        // GitHub documents PATCH; octocrab's update_comment sends POST.
        ("PATCH" | "POST", ["issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(text) = body["body"].as_str() else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
            };
            let repo = w.repos.get_mut(full).unwrap();
            let Some(c) = repo.comments.iter_mut().find(|c| c.id == id) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            if c.author != bot {
                return error(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by integration",
                );
            }
            c.body = text.into();
            c.edits += 1;
            let c = c.clone();
            ok(StatusCode::OK, comment_json(w, &c))
        }
        ("POST", ["issues", "comments", id, "reactions"]) => {
            react(w, full, format!("comment:{id}"), body)
        }
        ("POST", ["issues", n, "reactions"]) => react(w, full, format!("issue:{n}"), body),
        ("GET", ["collaborators", login, "permission"]) => {
            let role = w.repos[full]
                .roles
                .get(*login)
                .cloned()
                .unwrap_or_else(|| "none".into());
            let legacy = match role.as_str() {
                "maintain" => "write",
                "triage" => "read",
                other => other,
            };
            ok(
                StatusCode::OK,
                json!({ "permission": legacy, "role_name": role, "user": user_json(&base, login) }),
            )
        }
        ("POST", ["check-runs"]) => {
            let id = w.id();
            let run = FakeCheckRun {
                id,
                head_sha: body["head_sha"].as_str().unwrap_or_default().into(),
                name: body["name"].as_str().unwrap_or_default().into(),
                status: body["status"].as_str().unwrap_or("queued").into(),
                conclusion: body["conclusion"].as_str().map(Into::into),
                external_id: body["external_id"].as_str().map(Into::into),
                details_url: body["details_url"].as_str().map(Into::into),
                output: body
                    .get("output")
                    .cloned()
                    .unwrap_or(json!({ "title": null, "summary": null, "text": null })),
            };
            let json = check_run_json(&run);
            w.repos.get_mut(full).unwrap().check_runs.push(run);
            ok(StatusCode::CREATED, json)
        }
        ("GET", ["commits", sha, "check-runs"]) => {
            let name = query.get("check_name");
            let app = query.get("app_id");
            // Every run here is the test App's; a filter for another App finds none.
            let ours = app.is_none_or(|id| *id == TEST_APP_ID.to_string());
            let runs: Vec<Value> = w.repos[full]
                .check_runs
                .iter()
                .rev()
                .filter(|r| ours && r.head_sha == *sha && name.is_none_or(|n| &r.name == n))
                .map(check_run_json)
                .collect();
            ok(
                StatusCode::OK,
                json!({ "total_count": runs.len(), "check_runs": runs }),
            )
        }
        ("PATCH", ["check-runs", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let repo = w.repos.get_mut(full).unwrap();
            let Some(run) = repo.check_runs.iter_mut().find(|r| r.id == id) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            if let Some(s) = body["status"].as_str() {
                run.status = s.into();
            }
            if let Some(c) = body["conclusion"].as_str() {
                run.conclusion = Some(c.into());
                run.status = "completed".into();
            }
            if let Some(o) = body.get("output") {
                run.output = o.clone();
            }
            if let Some(d) = body["details_url"].as_str() {
                run.details_url = Some(d.into());
            }
            ok(StatusCode::OK, check_run_json(&run.clone()))
        }
        ("POST", ["pulls"]) => {
            let head = body["head"].as_str().unwrap_or_default().to_owned();
            let repo = &w.repos[full];
            if branch_sha(w, full, &head).is_none() {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
            }
            if repo.pulls.iter().any(|p| p.head == head) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("A pull request already exists for {}:{head}.", repo.owner),
                );
            }
            let number = repo
                .issues
                .keys()
                .chain(repo.pulls.iter().map(|p| &p.number))
                .max()
                .copied()
                .unwrap_or(0)
                + 1;
            let pull = FakePull {
                number,
                title: body["title"].as_str().unwrap_or_default().into(),
                body: body["body"].as_str().unwrap_or_default().into(),
                head,
                base: body["base"].as_str().unwrap_or_default().into(),
                draft: body["draft"].as_bool().unwrap_or(false),
            };
            let json = pull_json(w, full, &pull);
            // On GitHub every pull request is also an issue (comments go through it).
            let as_issue = FakeIssue {
                number,
                title: pull.title.clone(),
                body: Some(pull.body.clone()),
                author: bot.clone(),
                is_pr: true,
                state: "open".into(),
            };
            let repo = w.repos.get_mut(full).unwrap();
            repo.issues.insert(number, as_issue);
            repo.pulls.push(pull);
            ok(StatusCode::CREATED, json)
        }
        ("GET", ["pulls"]) => {
            let head = query
                .get("head")
                .and_then(|h| h.split_once(':'))
                .map(|(_, b)| b.to_owned());
            let list: Vec<Value> = w.repos[full]
                .pulls
                .iter()
                .filter(|p| head.as_ref().is_none_or(|h| &p.head == h))
                .map(|p| pull_json(w, full, p))
                .collect();
            ok(StatusCode::OK, Value::Array(list))
        }
        ("PATCH", ["pulls", n]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let repo = w.repos.get_mut(full).unwrap();
            let Some(p) = repo.pulls.iter_mut().find(|p| p.number == n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            if let Some(t) = body["title"].as_str() {
                p.title = t.into();
            }
            if let Some(b) = body["body"].as_str() {
                p.body = b.into();
            }
            let p = p.clone();
            ok(StatusCode::OK, pull_json(w, full, &p))
        }
        ("GET", ["pulls", n, "files"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            if !w.repos[full].pulls.iter().any(|p| p.number == n) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            ok(
                StatusCode::OK,
                json!([{ "sha": "c".repeat(40), "filename": "src/lib.rs", "status": "modified", "additions": 3, "deletions": 1, "changes": 4 }]),
            )
        }
        _ => super::iterations::repo_route(w, method, full, rest, query)
            .unwrap_or_else(|| unknown(method, &format!("/repos/{full}/{}", rest.join("/")))),
    }
}

fn react(w: &mut World, full: &str, target: String, body: &Value) -> Response {
    let content = body["content"].as_str().unwrap_or_default().to_owned();
    let repo = w.repos.get_mut(full).unwrap();
    let exists = repo
        .reactions
        .iter()
        .any(|r| r.target == target && r.content == content);
    if !exists {
        repo.reactions.push(FakeReaction {
            target,
            content: content.clone(),
            by: BOT_LOGIN.into(),
        });
    }
    let status = if exists {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let base = w.base_url.clone();
    ok(
        status,
        json!({ "id": 1, "node_id": "REA_kw", "content": content, "user": user_json(&base, BOT_LOGIN), "created_at": "2026-11-01T00:00:00Z" }),
    )
}

/// A branch's head: from the backing bare repository when there is one, else the fixture map.
pub(super) fn branch_sha(w: &World, full: &str, branch: &str) -> Option<String> {
    if let Some(root) = &w.git_repo_root {
        let bare = root.join(format!("{full}.git"));
        if bare.exists() {
            return crate::support::git_http::ref_sha(&bare, &format!("refs/heads/{branch}"));
        }
    }
    w.repos.get(full)?.branches.get(branch).cloned()
}
