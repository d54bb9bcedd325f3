//! Webhook intake benchmark: the real router on loopback, SQLite with `synchronous = FULL`
//! (every acknowledged delivery is fsync'd through group commit), driven with signed copies of
//! GitHub's real ~12 KB `issues.labeled` example, each with a unique delivery id.
//!
//! ```text
//! cargo bench --bench intake -- [--requests N] [--concurrency C] [--rate R] [--no-trigger] [--database-url URL]
//! ```
//! Without `--rate` it measures throughput (C deliveries in flight); with `--rate R` it sends
//! at a fixed R deliveries/s and reports the acknowledgement latency at that load. By default
//! the label matches, so every delivery also creates a queued session and a job (the worst
//! case); `--no-trigger` relabels the payload so deliveries are only recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use patchpilot::server::{self, Features};
use patchpilot::store::IntakeQueue;

const SECRET: &str = "bench-secret";

struct Options {
    requests: usize,
    concurrency: usize,
    rate: Option<f64>,
    trigger: bool,
    database_url: Option<String>,
}

fn options() -> Options {
    let mut opts = Options {
        requests: 20_000,
        concurrency: 64,
        rate: None,
        trigger: true,
        database_url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--requests" => opts.requests = value().parse().expect("--requests N"),
            "--concurrency" => opts.concurrency = value().parse().expect("--concurrency C"),
            "--rate" => opts.rate = Some(value().parse().expect("--rate R")),
            "--no-trigger" => opts.trigger = false,
            "--database-url" => opts.database_url = Some(value()),
            _ => {} // cargo bench passes --bench
        }
    }
    opts
}

fn payload(trigger: bool) -> Vec<u8> {
    let examples: Vec<serde_json::Value> = serde_json::from_str(include_str!(
        "../tests/fixtures/webhooks/octokit-examples.json"
    ))
    .unwrap();
    let issues = examples.iter().find(|e| e["name"] == "issues").unwrap();
    let mut labeled = issues["examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "labeled")
        .max_by_key(|e| e.to_string().len())
        .unwrap()
        .clone();
    labeled["label"]["name"] = serde_json::json!(if trigger { "patchpilot" } else { "bug" });
    labeled["installation"] =
        serde_json::json!({ "id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==" });
    serde_json::to_vec(&labeled).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let opts = options();
    let dir = tempfile::tempdir().unwrap();
    let url = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
    let store = patchpilot::app::open_store(&url).await.expect("store");
    let (intake, _task) = IntakeQueue::start(store.clone(), 256);
    let args = {
        use clap::Parser;
        #[derive(Parser)]
        struct A {
            #[command(flatten)]
            serve: patchpilot::config::ServeArgs,
        }
        A::parse_from(["patchpilot", "--webhook-secret", SECRET]).serve
    };
    let state = patchpilot::app::app_state(store.clone(), intake, &args, Features::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server::router(state)).await.unwrap() });

    let body = Arc::new(payload(opts.trigger));
    let signature = Arc::new(patchpilot::webhook::signature::sign(SECRET, &body));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .build()
        .unwrap();
    let endpoint = Arc::new(format!("http://{addr}/webhooks/github"));
    println!(
        "intake bench: {} deliveries of {} bytes, {}, backend {}, {}",
        opts.requests,
        body.len(),
        if opts.trigger {
            "each starting a session"
        } else {
            "recorded only"
        },
        store.backend(),
        match opts.rate {
            Some(rate) => format!("fixed rate {rate}/s"),
            None => format!("concurrency {}", opts.concurrency),
        }
    );

    let send = move |i: usize| {
        let (client, endpoint, body, signature) = (
            client.clone(),
            endpoint.clone(),
            body.clone(),
            signature.clone(),
        );
        async move {
            let start = Instant::now();
            let response = client
                .post(endpoint.as_str())
                .header("X-GitHub-Event", "issues")
                .header("X-GitHub-Delivery", format!("bench-{i}"))
                .header("X-Hub-Signature-256", signature.as_str())
                .header("Content-Type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 202, "every delivery is accepted");
            start.elapsed()
        }
    };

    let started = Instant::now();
    let mut latencies = Vec::with_capacity(opts.requests);
    match opts.rate {
        None => {
            use futures::StreamExt;
            let mut stream = futures::stream::iter(0..opts.requests)
                .map(&send)
                .buffer_unordered(opts.concurrency);
            while let Some(latency) = stream.next().await {
                latencies.push(latency);
            }
        }
        Some(rate) => {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut handles = Vec::with_capacity(opts.requests);
            for i in 0..opts.requests {
                ticker.tick().await;
                handles.push(tokio::spawn(send(i)));
            }
            for handle in handles {
                latencies.push(handle.await.unwrap());
            }
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "deliveries/s: {:.0}",
        opts.requests as f64 / elapsed.as_secs_f64()
    );
    println!(
        "ack latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    let stored = store
        .get_delivery(&format!("bench-{}", opts.requests - 1))
        .await
        .unwrap();
    assert!(stored.is_some(), "the last delivery is durable");
}
