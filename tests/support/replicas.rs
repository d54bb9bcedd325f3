//! Several real `patchpilot serve` processes on one PostgreSQL database, for the multi-process
//! and kill -9 tests: each replica is the real binary (`CARGO_BIN_EXE_patchpilot`) pointed at
//! the test's fake GitHub (real App JWT and installation tokens through `GITHUB_API_URL`), the
//! scripted model and a git smart-HTTP server. Tests talk to replicas only over HTTP and look
//! at what a maintainer would see (the fake GitHub) and at the shared database.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchpilot::store::Session;
use patchpilot::store::{SessionFilter, Store};
use serde_json::{Value, json};

use super::db::TestDb;
use super::e2e::{INSTALLATION, MAINTAINER, REPO};
use super::fake_github::{BOT_LOGIN, FakeCheckRun, FakeGitHub, PRIVATE_KEY_PEM, TEST_APP_ID};
use super::fake_model::{FAKE_MODEL_KEY, FakeModel};
use super::server::SECRET;

pub const PUBLIC_URL: &str = "https://patchpilot.example";

/// Sandbox uid ranges must not overlap between processes (each sweeps its own).
static NEXT_UID_BASE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(500_000);

/// The shared world: database, fake GitHub, model and git server.
pub struct Cluster {
    pub store: Arc<dyn Store>,
    pub db_url: String,
    pub github: FakeGitHub,
    pub model: FakeModel,
    pub git_root: PathBuf,
    pub git_base: String,
    pub client: reqwest::Client,
    key_path: PathBuf,
    root: tempfile::TempDir,
    _git: tempfile::TempDir,
    _db: TestDb,
}

/// One running `patchpilot serve`.
pub struct Replica {
    pub name: String,
    pub url: String,
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Runs `command` (a `patchpilot serve`), collecting its log, until it listens.
    pub fn start(name: &str, url: &str, mut command: Command) -> Self {
        let mut child = command
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start patchpilot serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut replica = Replica {
            name: name.to_owned(),
            url: url.to_owned(),
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !replica.log().contains("PatchPilot listening") {
            assert!(
                !replica.exited() && Instant::now() < deadline,
                "replica {name} did not start:\n{}",
                replica.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The log's last lines, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(lines)..].join("\n")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Cluster {
    /// A fresh PostgreSQL database and the fakes; `None` outside CI when PostgreSQL is absent.
    pub async fn start(files: &[(&str, &str)]) -> Option<Self> {
        let db = super::db::fresh_postgres().await?;
        let github = FakeGitHub::start().await;
        let model = FakeModel::start().await;
        let git = tempfile::tempdir().unwrap();
        let git_root = git.path().to_owned();
        super::git_http::init_bare_repo(&git_root, &format!("{REPO}.git"), files);
        let (git_addr, _) = super::git_http::serve_git(git_root.clone(), None).await;
        let git_base = format!("http://{git_addr}");
        github.set_git_base_url(&git_base);
        github.set_git_repo_root(&git_root);
        github.add_repo(REPO);
        github.add_installation(INSTALLATION, &[REPO]);
        github.set_role(REPO, MAINTAINER, "write");
        let root = tempfile::tempdir().unwrap();
        let key_path = root.path().join("app-key.pem");
        std::fs::write(&key_path, PRIVATE_KEY_PEM).unwrap();
        Some(Self {
            store: db.store.clone(),
            db_url: db.url.clone(),
            github,
            model,
            git_root,
            git_base,
            client: reqwest::Client::new(),
            key_path,
            root,
            _git: git,
            _db: db,
        })
    }

    pub fn bare_repo(&self) -> PathBuf {
        self.git_root.join(format!("{REPO}.git"))
    }

    /// A directory under the test's temp root.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts a replica with a `lease_secs` lease and waits until it listens.
    pub fn spawn_replica(&self, name: &str, lease_secs: u64) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let data = self.dir(&format!("data-{name}"));
        let uid_base = NEXT_UID_BASE
            .fetch_add(64, std::sync::atomic::Ordering::SeqCst)
            .to_string();
        let args: Vec<String> = [
            "serve",
            "--addr",
            &addr,
            "--database-url",
            &self.db_url,
            "--data-dir",
            &data.display().to_string(),
            "--cache-dir",
            &data.join("caches").display().to_string(),
            "--lease-secs",
            &lease_secs.to_string(),
            "--workers",
            "2",
            "--webhook-secret",
            SECRET,
            "--public-url",
            PUBLIC_URL,
            "--github-app-id",
            &TEST_APP_ID.to_string(),
            "--github-private-key-path",
            &self.key_path.display().to_string(),
            "--github-api-url",
            &self.github.url,
            "--bot-login",
            BOT_LOGIN,
            "--model-provider",
            "anthropic",
            "--anthropic-api-key",
            FAKE_MODEL_KEY,
            "--anthropic-base-url",
            &self.model.anthropic_base_url(),
            "--model",
            "claude-test",
            "--model-max-attempts",
            "2",
            "--sandbox-timeout-secs",
            "120",
            "--sandbox-uid-base",
            &uid_base,
            "--sandbox-uid-count",
            "16",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_patchpilot"));
        command.args(&args).env("RUST_LOG", "info,sqlx=warn");
        Replica::start(name, &format!("http://{addr}"), command)
    }

    /// A labelled-issue delivery for a new issue `number` (created on the fake).
    pub fn labeled_payload(&self, number: u64, title: &str, body: &str) -> Value {
        self.github.add_issue(REPO, number, title, body, "reporter");
        let mut payload = super::example("issues", "labeled");
        payload["label"]["name"] = json!("patchpilot");
        payload["issue"]["number"] = json!(number);
        payload["issue"]["title"] = json!(title);
        payload["issue"]["body"] = json!(body);
        payload["sender"]["login"] = json!(MAINTAINER);
        payload["sender"]["type"] = json!("User");
        self.on_our_repo(payload)
    }

    /// A `/patchpilot ...` comment delivery on issue `number` by the maintainer.
    pub fn comment_payload(&self, number: u64, body: &str, issue_body: &str) -> Value {
        let mut comment = super::example("issue_comment", "created");
        comment["comment"]["body"] = json!(body);
        comment["comment"]["id"] = json!(self.github.add_comment(REPO, number, MAINTAINER, body));
        comment["comment"]["user"]["login"] = json!(MAINTAINER);
        comment["comment"]["user"]["type"] = json!("User");
        comment["sender"] = comment["comment"]["user"].clone();
        comment["issue"]["number"] = json!(number);
        comment["issue"]["body"] = json!(issue_body);
        comment["issue"]
            .as_object_mut()
            .unwrap()
            .remove("pull_request");
        self.on_our_repo(comment)
    }

    fn on_our_repo(&self, mut payload: Value) -> Value {
        payload["installation"] = json!({ "id": INSTALLATION, "node_id": "x" });
        payload["repository"]["full_name"] = json!(REPO);
        payload["repository"]["name"] = json!("calc");
        payload["repository"]["owner"]["login"] = json!("octo");
        payload["repository"]["private"] = json!(false);
        payload["repository"]["clone_url"] = json!(format!("{}/{REPO}.git", self.git_base));
        payload
    }

    /// Sends a signed delivery to one replica; returns the status and JSON answer.
    pub async fn deliver(
        &self,
        replica: &Replica,
        event: &str,
        delivery: &str,
        payload: &Value,
    ) -> (u16, Value) {
        let body = serde_json::to_vec(payload).unwrap();
        let response = self
            .client
            .post(format!("{}/webhooks/github", replica.url))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header(
                "X-Hub-Signature-256",
                patchpilot::webhook::signature::sign(SECRET, &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every session of an issue, newest first.
    pub async fn sessions_of(&self, issue: u64) -> Vec<Session> {
        self.store
            .list_sessions(&SessionFilter {
                repository: Some(REPO.to_owned()),
                issue_number: Some(issue as i64),
                limit: 50,
                ..SessionFilter::default()
            })
            .await
            .unwrap()
    }

    /// Waits until `check` holds, polling the store; panics with `what` after `limit`.
    pub async fn wait_until<F, Fut>(&self, what: &str, limit: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many times a step of a session was started (one per run of the session).
    pub async fn step_starts(&self, session_id: &str, step: &str) -> usize {
        self.store
            .events_after(session_id, 0, 10_000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.step == step && e.message.ends_with('…'))
            .count()
    }

    /// What a maintainer sees of one issue, checked for duplicates: the bot's progress
    /// comments (with the session marker), PatchPilot check runs per commit, pull requests and
    /// pushed branches for the issue.
    pub fn github_view(&self, issue: u64) -> IssueView {
        let marker = "<!-- patchpilot:session=";
        let comments = self.github.comments(REPO, issue);
        let progress = comments
            .iter()
            .filter(|c| c.author == BOT_LOGIN && c.body.contains(marker))
            .map(|c| c.body.clone())
            .collect();
        let external_id = format!("patchpilot:issue={issue}");
        let mut runs: HashMap<String, Vec<FakeCheckRun>> = HashMap::new();
        for run in self.github.check_runs(REPO) {
            if run.name == "PatchPilot" && run.external_id.as_deref() == Some(&external_id) {
                runs.entry(run.head_sha.clone()).or_default().push(run);
            }
        }
        let branch = format!("patchpilot/issue-{issue}");
        let pulls = self
            .github
            .pulls(REPO)
            .into_iter()
            .filter(|p| p.head == branch)
            .count();
        let branch_sha =
            super::git_http::ref_sha(&self.bare_repo(), &format!("refs/heads/{branch}"));
        IssueView {
            progress_comments: progress,
            check_runs: runs,
            pulls,
            branch_sha,
        }
    }
}

/// See [`Cluster::github_view`].
#[derive(Debug)]
pub struct IssueView {
    pub progress_comments: Vec<String>,
    pub check_runs: HashMap<String, Vec<FakeCheckRun>>,
    pub pulls: usize,
    pub branch_sha: Option<String>,
}

impl IssueView {
    /// No duplicates anywhere, and nothing left spinning.
    pub fn assert_no_duplicates(&self, issue: u64) {
        assert_eq!(
            self.progress_comments.len(),
            1,
            "issue {issue}: one progress comment: {:#?}",
            self.progress_comments
        );
        for (sha, runs) in &self.check_runs {
            assert_eq!(
                runs.len(),
                1,
                "issue {issue}: one check run on {sha}: {runs:#?}"
            );
            assert_eq!(
                runs[0].status, "completed",
                "issue {issue}: the check run on {sha} was left {}",
                runs[0].status
            );
        }
        assert!(
            self.pulls <= 1,
            "issue {issue}: {} pull requests",
            self.pulls
        );
    }
}

/// Processes below `pid` (children, grandchildren, ...) with their command lines.
pub fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut parents: HashMap<u32, u32> = HashMap::new();
    let mut cmdlines: HashMap<u32, String> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces, so split after the last ')'.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        parents.insert(child, ppid);
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        cmdlines.insert(child, String::from_utf8_lossy(&cmdline).replace('\0', " "));
    }
    let below = |mut p: u32| {
        while let Some(&parent) = parents.get(&p) {
            if parent == pid {
                return true;
            }
            if parent <= 1 {
                return false;
            }
            p = parent;
        }
        false
    };
    cmdlines.into_iter().filter(|(p, _)| below(*p)).collect()
}

/// Writes `script` as an executable git hook of the bare repository.
pub fn install_hook(bare: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = bare.join("hooks").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
