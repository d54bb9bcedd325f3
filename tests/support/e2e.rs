//! The end-to-end world: the real router and worker pool running the real pipeline, against
//! the fake GitHub (through the real octocrab client and App JWT), the scripted model, a real
//! git smart-HTTP server and the real sandbox. Tests send signed webhooks and look at what a
//! maintainer would see.
//!
//! Teardown is strict and cannot be forgotten: when a `World` goes away (through
//! [`World::stop`] or simply dropped), a GitHub call the fake could not answer meaningfully
//! fails the test, listing each call (see [`FakeGitHub::unanswered`]). Every wait is bounded
//! by [`WAIT_TIMEOUT`] and ends with a report of each session's status, step and last
//! events, so a hung step fails its test instead of hanging CI.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use patchpilot::agent::deps::DataDir;
use patchpilot::agent::pipeline::Pipeline;
use patchpilot::server::{self, AppState, Features};
use patchpilot::store::{IntakeQueue, Session, SessionFilter, Store};
use patchpilot::webhook::triggers::TriggerSettings;
use patchpilot::worker::{WorkerConfig, WorkerPool};
use serde_json::{Value, json};

use super::db::TestDb;
use super::fake_github::{BOT_LOGIN, FakeGitHub, TEST_APP_ID};
use super::fake_model::FakeModel;
use super::server::SECRET;

pub const REPO: &str = "octo/calc";
pub const INSTALLATION: u64 = 77;
pub const MAINTAINER: &str = "maintainer";

/// The longest any wait of the world may take (a session to finish, a comment, a pull
/// request, the workers to stop). Longer than any step of a healthy run on a loaded machine,
/// short enough that a hung step fails its test well inside CI's job limit.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);
/// How many of a session's last events a timeout report shows.
const REPORTED_EVENTS: usize = 12;

static NEXT_UID_BASE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(400_000);

pub struct World {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    pub github: FakeGitHub,
    pub model: FakeModel,
    pub git_root: PathBuf,
    /// Clone URLs are `{git_base}/{owner}/{name}.git`, as the fake GitHub reports them.
    pub git_base: String,
    /// The server's data directory (work trees, mirrors, dependency caches).
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
    workers: Option<WorkerPool>,
    /// [`WAIT_TIMEOUT`], unless a test about timeouts shortened it.
    wait_timeout: Duration,
    /// Set once the teardown check ran, so [`Drop`] does not run it a second time.
    checked: bool,
    _dirs: Vec<tempfile::TempDir>,
    _db: TestDb,
}

/// A small Python project whose test fails on an empty list.
pub fn python_project() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "calc.py",
            "def average(values):\n    return sum(values) / len(values)\n\n\ndef total(values):\n    return sum(values)\n",
        ),
        (
            "test_calc.py",
            "from calc import average, total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n\n\ndef test_average_of_empty_list_is_zero():\n    assert average([]) == 0\n",
        ),
        ("README.md", "# calc\nTiny statistics helpers.\n"),
    ]
}

/// The model's correct fix for [`python_project`].
pub const PYTHON_FIX: &str = "The average divides by the length, which is zero for an empty list. Return 0 for empty input.\n\ncalc.py\n<<<<<<< SEARCH\n    return sum(values) / len(values)\n=======\n    if not values:\n        return 0\n    return sum(values) / len(values)\n>>>>>>> REPLACE\n";

pub const PYTHON_REPRO: &str = "python3 -m pytest -q -p no:cacheprovider test_calc.py";

/// What a test may change about the server it starts.
pub struct Options {
    /// `PATCHPILOT_PUBLIC_URL`; `None` runs without one.
    pub public_url: Option<String>,
    /// The Anthropic base URL (default: the fake model).
    pub model_base_url: Option<String>,
    /// Extra `serve` arguments, e.g. `["--sandbox-tier", "landlock"]`.
    pub extra_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            public_url: Some("https://patchpilot.example".into()),
            model_base_url: None,
            extra_args: Vec::new(),
        }
    }
}

impl Options {
    /// The defaults, with the sandbox tier forced (`bubblewrap` or `landlock`).
    pub fn tier(tier: &str) -> Self {
        Self {
            extra_args: vec!["--sandbox-tier".into(), tier.into()],
            ..Self::default()
        }
    }
}

impl World {
    pub async fn start(db: TestDb, files: &[(&str, &str)]) -> Self {
        Self::start_with(db, files, Options::default()).await
    }

    pub async fn start_with(db: TestDb, files: &[(&str, &str)], options: Options) -> Self {
        let github = FakeGitHub::start().await;
        let model = FakeModel::start().await;
        let git_dir = tempfile::tempdir().unwrap();
        let git_root = git_dir.path().to_owned();
        let bare = super::git_http::init_bare_repo(&git_root, &format!("{REPO}.git"), files);
        let (git_addr, _) = super::git_http::serve_git(git_root.clone(), None).await;
        let git_base = format!("http://{git_addr}");
        github.set_git_base_url(&git_base);
        github.set_git_repo_root(&git_root);
        github.add_repo(REPO);
        github.add_installation(INSTALLATION, &[REPO]);
        github.set_role(REPO, MAINTAINER, "write");
        assert!(super::git_http::ref_sha(&bare, "refs/heads/main").is_some());

        let data = tempfile::tempdir().unwrap();
        let data_dir = DataDir::create(data.path()).unwrap();
        let model_url = options
            .model_base_url
            .clone()
            .unwrap_or_else(|| model.anthropic_base_url());
        // Worlds in one test binary run in parallel: each gets its own sandbox uids, so one
        // world's sweep never kills another's commands.
        let uid_base = NEXT_UID_BASE
            .fetch_add(64, std::sync::atomic::Ordering::SeqCst)
            .to_string();
        let mut argv = vec![
            "--sandbox-uid-base",
            uid_base.as_str(),
            "--sandbox-uid-count",
            "16",
        ];
        argv.extend(options.extra_args.iter().map(String::as_str));
        argv.extend_from_slice(&[
            "--webhook-secret",
            SECRET,
            "--api-token",
            super::server::API_TOKEN,
            "--model-provider",
            "anthropic",
            "--anthropic-api-key",
            super::fake_model::FAKE_MODEL_KEY,
            "--anthropic-base-url",
            &model_url,
            "--model",
            "claude-test",
            "--model-max-attempts",
            "2",
            "--sandbox-timeout-secs",
            "120",
        ]);
        let args = super::server::serve_args(&argv);
        let store = db.store.clone();
        let (intake, _task) = IntakeQueue::start(store.clone(), 64);
        let mut state =
            patchpilot::app::app_state(store.clone(), intake, &args, Features::default());
        state.triggers = Arc::new(TriggerSettings {
            label: "patchpilot".into(),
            bot_login: Some(BOT_LOGIN.into()),
            app_id: Some(TEST_APP_ID as i64),
        });
        // `serve`'s own wiring (data directory layout, limits, budget, model, link signing),
        // but the fake GitHub's client, whose retries are quick, and the test's public URL.
        let sandbox = patchpilot::app::probe_sandbox(&args.sandbox, &data_dir)
            .await
            .unwrap();
        let clients = patchpilot::app::Clients::from_args(&args).unwrap();
        let deps =
            patchpilot::app::pipeline_deps(&args, clients, store.clone(), sandbox, &data_dir)
                .github(Some(github.client()))
                .public_url(options.public_url.as_deref().map(|u| u.parse().unwrap()))
                .build();
        let pipeline = Pipeline::new(deps);
        let config = WorkerConfig {
            concurrency: 2,
            idle_poll: Duration::from_millis(100),
            cancel_poll: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(5),
            ..WorkerConfig::default()
        };
        let workers = WorkerPool::start(
            store.clone(),
            Arc::new(pipeline),
            state.worker_wakeup.clone(),
            config,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = server::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            store,
            state,
            github,
            model,
            git_root,
            git_base,
            data_dir: data_dir.root().to_owned(),
            client: reqwest::Client::builder()
                .timeout(WAIT_TIMEOUT)
                .build()
                .unwrap(),
            workers: Some(workers),
            wait_timeout: WAIT_TIMEOUT,
            checked: false,
            _dirs: vec![git_dir, data],
            _db: db,
        }
    }

    /// Where sessions' work trees live (`<data>/work`).
    pub fn work_root(&self) -> PathBuf {
        self._dirs[1].path().canonicalize().unwrap().join("work")
    }

    pub fn bare_repo(&self) -> PathBuf {
        self.git_root.join(format!("{REPO}.git"))
    }

    /// An issue on the fake, and the real-shaped `issues.labeled` delivery for it.
    pub fn labeled_payload(&self, number: u64, title: &str, body: &str, sender: &str) -> Value {
        self.github.add_issue(REPO, number, title, body, "reporter");
        let mut payload = super::example("issues", "labeled");
        payload["label"]["name"] = json!("patchpilot");
        payload["installation"] = json!({ "id": INSTALLATION, "node_id": "x" });
        payload["issue"]["number"] = json!(number);
        payload["issue"]["title"] = json!(title);
        payload["issue"]["body"] = json!(body);
        payload["repository"]["full_name"] = json!(REPO);
        payload["repository"]["name"] = json!("calc");
        payload["repository"]["owner"]["login"] = json!("octo");
        payload["repository"]["clone_url"] = json!(format!("{}/{REPO}.git", self.git_base));
        payload["sender"]["login"] = json!(sender);
        payload["sender"]["type"] = json!("User");
        payload
    }

    /// A real-shaped `issue_comment.created` delivery on issue `number`.
    pub fn comment_payload(
        &self,
        number: u64,
        body: &str,
        issue_body: &str,
        sender: &str,
    ) -> Value {
        let mut comment = super::example("issue_comment", "created");
        comment["comment"]["body"] = json!(body);
        comment["comment"]["id"] = json!(self.github.add_comment(REPO, number, sender, body));
        comment["comment"]["user"]["login"] = json!(sender);
        comment["comment"]["user"]["type"] = json!("User");
        comment["sender"] = comment["comment"]["user"].clone();
        comment["installation"] = json!({ "id": INSTALLATION, "node_id": "x" });
        comment["issue"]["number"] = json!(number);
        comment["issue"]["body"] = json!(issue_body);
        comment["issue"]
            .as_object_mut()
            .unwrap()
            .remove("pull_request");
        comment["repository"]["full_name"] = json!(REPO);
        comment["repository"]["name"] = json!("calc");
        comment["repository"]["owner"]["login"] = json!("octo");
        comment["repository"]["clone_url"] = json!(format!("{}/{REPO}.git", self.git_base));
        comment
    }

    /// A real-shaped `check_run.rerequested` delivery for PatchPilot's run on issue `number`.
    pub fn rerequested_payload(&self, number: u64, sender: &str) -> Value {
        let mut payload = super::example("check_run", "rerequested");
        payload["check_run"]["name"] = json!("PatchPilot");
        payload["check_run"]["external_id"] = json!(format!("patchpilot:issue={number}"));
        payload["check_run"]["app"]["id"] = json!(TEST_APP_ID);
        payload["installation"] = json!({ "id": INSTALLATION, "node_id": "x" });
        payload["repository"]["full_name"] = json!(REPO);
        payload["repository"]["name"] = json!("calc");
        payload["repository"]["owner"]["login"] = json!("octo");
        payload["repository"]["clone_url"] = json!(format!("{}/{REPO}.git", self.git_base));
        payload["sender"]["login"] = json!(sender);
        payload["sender"]["type"] = json!("User");
        payload
    }

    pub async fn deliver(&self, event: &str, payload: &Value) -> Value {
        let body = serde_json::to_vec(payload).unwrap();
        let response = self
            .client
            .post(format!("{}/webhooks/github", self.url))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
            .header(
                "X-Hub-Signature-256",
                patchpilot::webhook::signature::sign(SECRET, &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "delivery refused: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Shortens every later wait (only for tests that prove a hung step fails them).
    pub fn set_wait_timeout(&mut self, timeout: Duration) {
        self.wait_timeout = timeout;
    }

    /// Polls until `poll` yields a value; after [`WAIT_TIMEOUT`] the test fails, naming
    /// `what` and reporting every session's status and last events.
    pub async fn within<T, F>(&self, what: &str, mut poll: impl FnMut() -> F) -> T
    where
        F: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.wait_timeout;
        loop {
            if let Some(value) = poll().await {
                return value;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {:?} waiting for {what}\n{}",
                    self.wait_timeout,
                    self.sessions_report().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the session is no longer queued or running.
    pub async fn finished(&self, session_id: &str) -> Session {
        let what = format!("session {session_id} to finish");
        self.within(&what, move || async move {
            let session = self.store.get_session(session_id).await.unwrap();
            let session = session.unwrap_or_else(|| panic!("no session {session_id}"));
            (!session.status.is_active()).then_some(session)
        })
        .await
    }

    pub async fn wait_for(&self, what: &str, mut check: impl FnMut(&Self) -> bool) {
        self.within(what, || std::future::ready(check(self).then_some(())))
            .await
    }

    /// Waits until one of the session's events contains `text` (e.g. `$ sleep 60`: the
    /// command is running in the sandbox).
    pub async fn wait_for_event(&self, session_id: &str, text: &str) {
        let what = format!("an event of session {session_id} containing {text:?}");
        self.within(&what, move || async move {
            self.events(session_id).await.contains(text).then_some(())
        })
        .await
    }

    /// Every session in the store, newest first, with its status and last events: what a
    /// timeout shows so that the hung step can be read off the failure.
    pub async fn sessions_report(&self) -> String {
        let filter = SessionFilter {
            limit: 100,
            ..SessionFilter::default()
        };
        let sessions = match self.store.list_sessions(&filter).await {
            Ok(sessions) => sessions,
            Err(e) => return format!("(could not list sessions: {e})"),
        };
        if sessions.is_empty() {
            return "no sessions in the store".into();
        }
        let mut report = String::new();
        for s in sessions {
            report += &format!(
                "session {} ({} on {}#{}): {}{}\n",
                s.id,
                s.trigger_kind.as_str(),
                s.github.as_ref().map_or("-", |g| g.repository.as_str()),
                s.github.as_ref().map_or(0, |g| g.issue_number),
                s.status,
                s.error_message
                    .map(|e| format!(", error: {e}"))
                    .unwrap_or_default(),
            );
            let events = self
                .store
                .events_after(&s.id, 0, 10_000)
                .await
                .unwrap_or_default();
            let skip = events.len().saturating_sub(REPORTED_EVENTS);
            if skip > 0 {
                report += &format!("  ({skip} earlier events)\n");
            }
            for e in &events[skip..] {
                report += &format!("  [{}] {}\n", e.step, e.message);
            }
        }
        report
    }

    pub async fn events(&self, session_id: &str) -> String {
        let events = self
            .store
            .events_after(session_id, 0, 10_000)
            .await
            .unwrap();
        events
            .iter()
            .map(|e| format!("[{}] {}\n", e.step, e.message))
            .collect()
    }

    /// Stops the workers (bounded by [`WAIT_TIMEOUT`]), then runs the strict teardown check.
    pub async fn stop(mut self) {
        if let Some(workers) = self.workers.take()
            && tokio::time::timeout(WAIT_TIMEOUT, workers.shutdown())
                .await
                .is_err()
        {
            self.checked = true;
            panic!(
                "the workers did not stop within {WAIT_TIMEOUT:?}\n{}",
                self.sessions_report().await
            );
        }
        self.check_github_calls();
    }

    /// Fails the test if the fake GitHub saw a call it could not answer meaningfully.
    fn check_github_calls(&mut self) {
        self.checked = true;
        let unanswered = self.github.unanswered();
        assert!(
            unanswered.is_empty(),
            "the fake GitHub could not answer {} call(s); give each legitimate one a real route \
             in tests/support/fake_github/, anything else is a bug:\n{}",
            unanswered.len(),
            unanswered.join("\n")
        );
    }
}

/// A world dropped without [`World::stop`] still gets the teardown check (unless the test is
/// already failing, so its own panic is the one reported).
impl Drop for World {
    fn drop(&mut self) {
        if !self.checked && !std::thread::panicking() {
            self.check_github_calls();
        }
    }
}

/// Whether a path exists under `root` (for "nothing outside the tree changed" checks).
pub fn exists(root: &Path, relative: &str) -> bool {
    root.join(relative).symlink_metadata().is_ok()
}
