//! Webhook intake at the durability limit, measured the way an operator would: the server and
//! the load generator are separate processes, the server pinned to core 0 and the load to core
//! 1 (`taskset`), over loopback, with signed copies of GitHub's real ~12 KB `issues.labeled`
//! example, each with a unique delivery id.
//!
//! ```text
//! cargo bench --bench intake                       # every figure below, 2 rounds
//! cargo bench --bench intake -- --rounds 3 --requests 40000 --concurrency 64 --rate 1000 --seconds 10
//! cargo bench --bench intake -- --database-url postgres://postgres@127.0.0.1/pp_bench   # PatchPilot on PostgreSQL
//! ```
//!
//! Each round starts a fresh server per measurement and prints:
//! - **limit A**: the durability limit, a bare writer that only verifies the signature and
//!   appends the delivery id to SQLite (`journal_mode=WAL`, `synchronous=FULL`) with group
//!   commit on one dedicated thread (rusqlite, one prepared insert), answering each request
//!   after the commit that holds it;
//! - **limit B**: the same writer also storing each delivery's body, as a generic durable
//!   webhook receiver does (PatchPilot stores only the fields it uses, so it can beat B);
//! - PatchPilot **recorded only** (the label does not match: delivery row only) and
//!   **session-creating** (delivery + session + job), each as a ratio of the reference;
//! - the p99 acknowledgement latency at a steady 1,000 deliveries/s (measured from each
//!   request's scheduled send time, so a stall is not hidden), for the reference and for
//!   session-creating PatchPilot.
//!
//! The machine is shared, so `/proc/loadavg` is printed before and after; the ratios come from
//! the same run, which is what counts. Durability is the same everywhere: FULL sync, and no
//! answer before the commit. Internal roles: `--role server --kind reference|patchpilot` and
//! `--role load`, started by the default (orchestrating) role.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use patchpilot::server::{self, Features};
use patchpilot::store::IntakeQueue;

const SECRET: &str = "bench-secret";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match value("--role").as_deref() {
        Some("server") => runtime.block_on(serve(
            &value("--kind").expect("--kind"),
            &value("--database-url").expect("--database-url"),
        )),
        Some("load") => {
            let load = Load {
                port: value("--port").expect("--port").parse().expect("port"),
                requests: value("--requests").map_or(20_000, |v| v.parse().expect("requests")),
                concurrency: value("--concurrency").map_or(64, |v| v.parse().expect("concurrency")),
                rate: value("--rate").map(|v| v.parse().expect("rate")),
                trigger: flag("--trigger"),
                prefix: value("--prefix").unwrap_or_default(),
            };
            runtime.block_on(load.run());
        }
        _ => orchestrate(&Settings {
            rounds: value("--rounds").map_or(2, |v| v.parse().expect("rounds")),
            requests: value("--requests").map_or(30_000, |v| v.parse().expect("requests")),
            concurrency: value("--concurrency").map_or(64, |v| v.parse().expect("concurrency")),
            rate: value("--rate").map_or(1000.0, |v| v.parse().expect("rate")),
            seconds: value("--seconds").map_or(10.0, |v| v.parse().expect("seconds")),
            database_url: value("--database-url"),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Orchestration

struct Settings {
    rounds: usize,
    requests: usize,
    concurrency: usize,
    rate: f64,
    seconds: f64,
    database_url: Option<String>,
}

/// What one load run measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `taskset -c <core>` when it works here, else nothing (and a warning once).
fn pinned(core: &str) -> Vec<String> {
    let works = Command::new("taskset")
        .args(["-c", core, "true"])
        .status()
        .is_ok_and(|s| s.success());
    if works {
        vec!["taskset".into(), "-c".into(), core.into()]
    } else {
        eprintln!("warning: taskset is not available; processes are not pinned to cores");
        Vec::new()
    }
}

fn command(prefix: &[String], args: &[String]) -> Command {
    let exe = std::env::current_exe().expect("own path");
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    command.args(args);
    command
}

/// A server process, ready once it printed its port.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(kind: &str, database_url: &str) -> ServerProcess {
    let args = [
        "--role",
        "server",
        "--kind",
        kind,
        "--database-url",
        database_url,
    ]
    .map(String::from);
    let mut child = command(&pinned("0"), &args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server says ready");
    let port = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("server did not start: {line:?}"));
    ServerProcess { child, port }
}

fn run_load(server: &ServerProcess, extra: &[String]) -> Measured {
    let mut args = vec![
        "--role".to_owned(),
        "load".to_owned(),
        "--port".to_owned(),
        server.port.to_string(),
    ];
    args.extend_from_slice(extra);
    let output = command(&pinned("1"), &args)
        .stderr(Stdio::inherit())
        .output()
        .expect("load process");
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("result "))
        .unwrap_or_else(|| panic!("load generator failed: {text}"))
        .split_whitespace()
        .map(|n| n.parse().expect("number"))
        .collect();
    Measured {
        per_second: numbers[0],
        p50_ms: numbers[1],
        p99_ms: numbers[2],
    }
}

fn orchestrate(settings: &Settings) {
    println!("intake bench: server on core 0, load generator on core 1, SQLite synchronous=FULL");
    println!("load before: {}", loadavg());
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut serial = 0;
    let mut fresh_database = |kind: &str| {
        serial += 1;
        match (&settings.database_url, kind) {
            (Some(url), "patchpilot") => url.clone(),
            _ => format!("sqlite://{}/{kind}-{serial}.db", dir.path().display()),
        }
    };
    let throughput = |trigger: bool, prefix: &str| {
        let mut args = vec![
            "--requests".to_owned(),
            settings.requests.to_string(),
            "--concurrency".to_owned(),
            settings.concurrency.to_string(),
            "--prefix".to_owned(),
            prefix.to_owned(),
        ];
        if trigger {
            args.push("--trigger".to_owned());
        }
        args
    };
    let steady = |prefix: &str| {
        let requests = (settings.rate * settings.seconds) as usize;
        vec![
            "--requests".to_owned(),
            requests.to_string(),
            "--rate".to_owned(),
            settings.rate.to_string(),
            "--trigger".to_owned(),
            "--prefix".to_owned(),
            prefix.to_owned(),
        ]
    };
    let run_id = std::process::id();
    for round in 1..=settings.rounds {
        let tag = |what: &str| format!("{run_id}-{round}-{what}-");
        let reference = {
            let server = start_server("reference", &fresh_database("reference"));
            run_load(&server, &throughput(false, &tag("ref")))
        };
        let reference_payload = {
            let server = start_server("reference-payload", &fresh_database("reference"));
            run_load(&server, &throughput(false, &tag("refp")))
        };
        let recorded = {
            let server = start_server("patchpilot", &fresh_database("patchpilot"));
            run_load(&server, &throughput(false, &tag("rec")))
        };
        let sessions = {
            let server = start_server("patchpilot", &fresh_database("patchpilot"));
            run_load(&server, &throughput(true, &tag("ses")))
        };
        let reference_steady = {
            let server = start_server("reference", &fresh_database("reference"));
            run_load(&server, &steady(&tag("ref-steady")))
        };
        let sessions_steady = {
            let server = start_server("patchpilot", &fresh_database("patchpilot"));
            run_load(&server, &steady(&tag("ses-steady")))
        };
        println!(
            "round {round} (load {}):\n\
             \x20 limit A: bare SQLite FULL group-commit writer, delivery id only:     {:>8.0}/s\n\
             \x20 limit B: the same writer storing each delivery's body (~12 KB):     {:>8.0}/s\n\
             \x20 PatchPilot recorded only:            {:>8.0}/s  {:.2} x limit A, {:.2} x limit B\n\
             \x20 PatchPilot delivery + session + job: {:>8.0}/s  {:.2} x limit A, {:.2} x limit B\n\
             \x20 p99 at a steady {:.0}/s: PatchPilot (session-creating) {:.2} ms (p50 {:.2}), limit A writer {:.2} ms (p50 {:.2})",
            loadavg(),
            reference.per_second,
            reference_payload.per_second,
            recorded.per_second,
            recorded.per_second / reference.per_second,
            recorded.per_second / reference_payload.per_second,
            sessions.per_second,
            sessions.per_second / reference.per_second,
            sessions.per_second / reference_payload.per_second,
            settings.rate,
            sessions_steady.p99_ms,
            sessions_steady.p50_ms,
            reference_steady.p99_ms,
            reference_steady.p50_ms,
        );
        if let Some(url) = &settings.database_url {
            println!(
                "  (PatchPilot figures on {})",
                patchpilot::store::redact_url(url)
            );
        }
    }
    println!("load after: {}", loadavg());
}

// ---------------------------------------------------------------------------------------------
// Servers

async fn serve(kind: &str, database_url: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("address").port();
    let router = match kind {
        "reference" => reference_router(database_url, false),
        "reference-payload" => reference_router(database_url, true),
        "patchpilot" => patchpilot_router(database_url).await,
        other => panic!("unknown server kind {other}"),
    };
    println!("ready {port}");
    axum::serve(listener, router).await.expect("serve");
}

/// The real router, store and group commit, as `patchpilot serve` wires them.
async fn patchpilot_router(database_url: &str) -> axum::Router {
    let store = patchpilot::app::open_store(database_url)
        .await
        .expect("store");
    let (intake, _task) = IntakeQueue::start(store.clone(), 256);
    let args = {
        use clap::Parser;
        #[derive(Parser)]
        struct A {
            #[command(flatten)]
            serve: patchpilot::config::ServeArgs,
        }
        // Room for every request the load generator keeps in flight (the default of 32
        // would shed the rest with 503, which is the edge limit working, not intake).
        A::parse_from([
            "patchpilot",
            "--webhook-secret",
            SECRET,
            "--max-inflight-webhooks",
            "1024",
        ])
        .serve
    };
    let state = patchpilot::app::app_state(store, intake, &args, Features::default());
    server::router(state)
}

type Ack = tokio::sync::oneshot::Sender<()>;
/// A delivery for the reference writer: id, event, the body when it is stored too.
type Write = (String, String, Option<Bytes>, Ack);

/// The durability limit: verify the signature, append the delivery id with group commit on a
/// dedicated rusqlite thread, answer after the commit.
fn reference_router(database_url: &str, store_payload: bool) -> axum::Router {
    let path = database_url
        .strip_prefix("sqlite://")
        .expect("the reference writes a SQLite file")
        .to_owned();
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Write>(4096);
    std::thread::spawn(move || reference_writer(&path, &receiver));
    let secrets = Arc::new(
        patchpilot::webhook::signature::WebhookSecrets::parse(&SECRET.to_owned().into())
            .expect("secret"),
    );
    axum::Router::new().route(
        "/webhooks/github",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (secrets, sender) = (secrets.clone(), sender.clone());
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                if patchpilot::webhook::signature::verify(
                    &secrets,
                    &body,
                    header("x-hub-signature-256"),
                )
                .is_err()
                {
                    return StatusCode::UNAUTHORIZED;
                }
                let (Some(id), Some(event)) =
                    (header("x-github-delivery"), header("x-github-event"))
                else {
                    return StatusCode::BAD_REQUEST;
                };
                let (ack, committed) = tokio::sync::oneshot::channel();
                let payload = store_payload.then_some(body);
                if sender
                    .send((id.to_owned(), event.to_owned(), payload, ack))
                    .is_err()
                {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                match committed.await {
                    Ok(()) => StatusCode::ACCEPTED,
                    Err(_) => StatusCode::SERVICE_UNAVAILABLE,
                }
            }
        }),
    )
}

fn reference_writer(path: &str, receiver: &std::sync::mpsc::Receiver<Write>) {
    let db = rusqlite::Connection::open(path).expect("open");
    db.pragma_update(None, "journal_mode", "WAL").expect("WAL");
    db.pragma_update(None, "synchronous", "FULL").expect("FULL");
    db.execute(
        "CREATE TABLE IF NOT EXISTS deliveries (delivery_id TEXT PRIMARY KEY NOT NULL, event TEXT NOT NULL, received_at TEXT NOT NULL, payload BLOB)",
        [],
    )
    .expect("schema");
    let mut insert = db
        .prepare(
            "INSERT INTO deliveries (delivery_id, event, received_at, payload) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )
        .expect("prepare");
    let mut batch = Vec::with_capacity(256);
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < 256 {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        db.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let now = chrono::Utc::now().to_rfc3339();
        for (id, event, payload, _) in &batch {
            let payload = payload.as_deref();
            insert.execute((id, event, &now, payload)).expect("insert");
        }
        db.execute_batch("COMMIT").expect("commit");
        for (_, _, _, ack) in batch.drain(..) {
            let _ = ack.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Load generator

struct Load {
    port: u16,
    requests: usize,
    concurrency: usize,
    rate: Option<f64>,
    trigger: bool,
    prefix: String,
}

fn payload(trigger: bool) -> Vec<u8> {
    let examples: Vec<serde_json::Value> = serde_json::from_str(include_str!(
        "../tests/fixtures/webhooks/octokit-examples.json"
    ))
    .expect("examples");
    let issues = examples
        .iter()
        .find(|e| e["name"] == "issues")
        .expect("issues");
    let mut labeled = issues["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .filter(|e| e["action"] == "labeled")
        .max_by_key(|e| e.to_string().len())
        .expect("labeled")
        .clone();
    labeled["label"]["name"] = serde_json::json!(if trigger { "patchpilot" } else { "bug" });
    labeled["installation"] =
        serde_json::json!({ "id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==" });
    serde_json::to_vec(&labeled).expect("payload")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

impl Load {
    async fn run(self) {
        let body = Bytes::from(payload(self.trigger));
        let signature: Arc<str> = patchpilot::webhook::signature::sign(SECRET, &body).into();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(self.concurrency.max(256))
            .build()
            .expect("client");
        let endpoint: Arc<str> = format!("http://127.0.0.1:{}/webhooks/github", self.port).into();
        let prefix: Arc<str> = self.prefix.clone().into();
        let send = move |i: usize| {
            let (client, endpoint, body, signature, prefix) = (
                client.clone(),
                endpoint.clone(),
                body.clone(),
                signature.clone(),
                prefix.clone(),
            );
            async move {
                let response = client
                    .post(&*endpoint)
                    .header("X-GitHub-Event", "issues")
                    .header("X-GitHub-Delivery", format!("{prefix}{i}"))
                    .header("X-Hub-Signature-256", &*signature)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 202, "every delivery is accepted");
                let _ = response.bytes().await;
            }
        };
        let started = Instant::now();
        let mut latencies = match self.rate {
            None => {
                let next = Arc::new(AtomicUsize::new(0));
                let workers: Vec<_> = (0..self.concurrency)
                    .map(|_| {
                        let (next, send, requests) = (next.clone(), send.clone(), self.requests);
                        tokio::spawn(async move {
                            let mut latencies = Vec::new();
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= requests {
                                    return latencies;
                                }
                                let start = Instant::now();
                                send(i).await;
                                latencies.push(start.elapsed());
                            }
                        })
                    })
                    .collect();
                let mut all = Vec::with_capacity(self.requests);
                for worker in workers {
                    all.extend(worker.await.expect("load task"));
                }
                all
            }
            Some(rate) => {
                let interval = Duration::from_secs_f64(1.0 / rate);
                let handles: Vec<_> = (0..self.requests)
                    .map(|i| {
                        let scheduled = started + interval * i as u32;
                        let send = send.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep_until(scheduled.into()).await;
                            send(i).await;
                            // From the scheduled send time: a stall delays what follows.
                            scheduled.elapsed()
                        })
                    })
                    .collect();
                let mut all = Vec::with_capacity(self.requests);
                for handle in handles {
                    all.push(handle.await.expect("load task"));
                }
                all
            }
        };
        let elapsed = started.elapsed();
        latencies.sort();
        println!(
            "result {:.1} {:.3} {:.3}",
            self.requests as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
    }
}
