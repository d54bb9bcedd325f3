//! `patchpilot serve` as a real process: what its settings and signals do.
//!
//! - `PATCHPILOT_WORKERS=0` records sessions and their jobs but never runs them.
//! - SIGTERM ends the process promptly even while a worker waits out GitHub's back-off.
//! - A second server on the same SQLite file refuses to start; `kill -9` frees the file.
//!
//! Every check is bounded by a generous timeout (a hung process fails the test); none asserts
//! how fast something was.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

const SECRET: &str = "lifecycle-secret";

/// One `patchpilot serve` child with its log lines.
struct Served {
    child: Child,
    addr: String,
    lines: Receiver<String>,
    log: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("pp.db").display())
}

/// Starts `patchpilot serve` on `database` with `extra` settings (nothing inherited but PATH).
fn spawn_serve(dir: &Path, database: &str, extra: &[(&str, String)]) -> Served {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_patchpilot"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("RUST_LOG", "info")
        .env("PATCHPILOT_ADDR", &addr)
        .env("DATABASE_URL", database)
        .env(
            "PATCHPILOT_DATA_DIR",
            dir.join(format!("data-{}", free_port())),
        )
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Served {
        child,
        addr,
        lines,
        log: Vec::new(),
    }
}

impl Served {
    /// Reads log lines until one contains `needle` (true) or the process exits (false).
    fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.log.push(line);
                    if found {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        false
    }

    fn log_text(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    fn started(mut self) -> Self {
        let listening = self.wait_for_log("PatchPilot listening", Duration::from_secs(90));
        assert!(listening, "the server did not start:\n{}", self.log_text());
        self
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit on its own; `None` if it is still running at the timeout.
    /// After an exit, the whole log has been read.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.wait_for_log("\u{0}never printed", Duration::from_secs(5));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    async fn deliver(
        &self,
        delivery_id: &str,
        event: &str,
        payload: &Value,
    ) -> (StatusCode, Value) {
        let body = serde_json::to_vec(payload).unwrap();
        let response = reqwest::Client::new()
            .post(format!("http://{}/webhooks/github", self.addr))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery_id)
            .header(
                "X-Hub-Signature-256",
                patchpilot::webhook::signature::sign(SECRET, &body),
            )
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GitHub's real `issues.labeled` example, labelled for PatchPilot, on installation 1.
fn labelled_issue() -> Value {
    let mut payload = support::example("issues", "labeled");
    payload["label"]["name"] = json!("patchpilot");
    payload["installation"] = json!({ "id": 1 });
    payload
}

async fn jobs_and_sessions(database: &str) -> (Vec<(String, i64)>, Vec<(String, String)>) {
    let pool = sqlx::SqlitePool::connect(database).await.unwrap();
    let jobs = sqlx::query_as("SELECT status, attempts FROM jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    let sessions = sqlx::query_as("SELECT id, status FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    (jobs, sessions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_zero_records_the_session_and_its_job_but_never_claims_it() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path());
    let mut served = spawn_serve(
        dir.path(),
        &database,
        &[("PATCHPILOT_WORKERS", "0".to_owned())],
    )
    .started();
    assert!(
        served.log_text().contains("workers: none"),
        "the log says this replica runs no workers:\n{}",
        served.log_text()
    );

    let (status, answer) = served.deliver("d-1", "issues", &labelled_issue()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let session_id = answer["sessionId"]
        .as_str()
        .expect("a session id")
        .to_owned();

    // A worker would claim a queued job within its 1 s idle poll; give it several.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (jobs, sessions) = jobs_and_sessions(&database).await;
    assert_eq!(sessions, vec![(session_id, "queued".to_owned())]);
    assert_eq!(
        jobs,
        vec![("queued".to_owned(), 0)],
        "the job was never claimed"
    );

    served.terminate();
    let exit = served.wait_exit(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}\n{}",
        served.log_text()
    );
}

/// A GitHub that answers `GET /app` and rate-limits everything else, asking for a minute's
/// wait each time (the longest back-off GitHub can ask of us). Counts the limited requests.
async fn rate_limiting_github() -> (String, Arc<Mutex<usize>>) {
    let limited = Arc::new(Mutex::new(0_usize));
    let counter = limited.clone();
    let app = axum::Router::new()
        .route(
            "/app",
            axum::routing::get(|| async {
                axum::Json(json!({ "id": 1, "slug": "patchpilot-test", "name": "PatchPilot test" }))
            }),
        )
        .fallback(move || {
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "60")],
                    axum::Json(json!({ "message": "API rate limit exceeded" })),
                )
                    .into_response()
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, limited)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_while_a_worker_waits_out_githubs_back_off() {
    let (github, limited) = rate_limiting_github().await;
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path());
    let mut served = spawn_serve(
        dir.path(),
        &database,
        &[
            ("PATCHPILOT_WORKERS", "1".to_owned()),
            ("GITHUB_API_URL", github),
            ("GITHUB_APP_ID", "1".to_owned()),
            (
                "GITHUB_PRIVATE_KEY_PATH",
                fixture("test-app-key.pem").display().to_string(),
            ),
        ],
    )
    .started();
    let (status, answer) = served.deliver("d-1", "issues", &labelled_issue()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    // Wait until the worker has been told to back off (its first GitHub call was limited).
    let deadline = Instant::now() + Duration::from_secs(60);
    while *limited.lock().unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the worker never called GitHub:\n{}",
            served.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served.wait_for_log("retrying GitHub call", Duration::from_secs(30)),
        "the worker is in back-off:\n{}",
        served.log_text()
    );

    served.terminate();
    // The back-off asked for 60 s per attempt; the process must not sit it out.
    let exit = served.wait_exit(Duration::from_secs(25));
    let log = served.log_text();
    assert!(
        exit.is_some(),
        "still running 25 s after SIGTERM while GitHub asked for 60 s waits:\n{log}"
    );
    assert!(exit.unwrap().success(), "{exit:?}\n{log}");
    assert!(log.contains("shutdown complete"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_sqlite_file_refuses_to_start_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path());
    let intake_only = [("PATCHPILOT_WORKERS", "0".to_owned())];
    let mut first = spawn_serve(dir.path(), &database, &intake_only).started();

    let mut second = spawn_serve(dir.path(), &database, &intake_only);
    let exit = second.wait_exit(Duration::from_secs(60));
    let log = second.log_text();
    assert!(
        exit.is_some_and(|s| !s.success()),
        "the second server must exit with an error: {exit:?}\n{log}"
    );
    assert!(
        log.contains("another PatchPilot server is already using the SQLite database")
            && log.contains("use PostgreSQL"),
        "{log}"
    );
    // The first one is unaffected.
    let (status, _) = first.deliver("d-1", "ping", &json!({ "zen": "hi" })).await;
    assert_eq!(status, StatusCode::OK, "{}", first.log_text());

    // kill -9: the kernel releases the lock, so a new server starts on the same file and
    // still knows the delivery.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let third = spawn_serve(dir.path(), &database, &intake_only).started();
    let (status, answer) = third.deliver("d-1", "ping", &json!({ "zen": "hi" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "duplicate", "{answer}");
}
