//! Load and abuse limits at the HTTP edge, over real TCP: a burst of large webhook bodies
//! beyond the in-flight limit is shed with 503 + `Retry-After` before its bodies are read, the
//! accepted ones are recorded, and the server stays healthy; a body trickled slower than the
//! body timeout is cut off with 408. Also: `/metrics` describes everything, and blank
//! environment settings behave exactly as unset in the real binary.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::db::fresh_sqlite;
use support::server::{SECRET, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A real `issues.labeled` payload padded with trailing whitespace to `size` bytes (valid JSON).
fn large_payload(size: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(&support::example("issues", "labeled")).unwrap();
    body.resize(size.max(body.len()), b' ');
    body
}

/// The request head of a signed delivery of `body`.
fn head(addr: std::net::SocketAddr, delivery: &str, body: &[u8]) -> String {
    let signature = patchpilot::webhook::signature::sign(SECRET, body);
    format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: issues\r\n\
         X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
}

/// Reads one HTTP response (head and a bounded body) until the server closes or 5 s pass.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && buf.len() < 64 * 1024 {
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if response_complete(&buf) => break,
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn response_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| body.len() >= n)
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_beyond_the_inflight_limit_is_shed_with_retry_after() {
    let server = TestServer::start(
        fresh_sqlite().await,
        &["--max-inflight-webhooks", "4", "--body-timeout-secs", "20"],
    )
    .await;
    const BODY: usize = 2 * 1024 * 1024;

    // Four deliveries take every permit: their heads and the first KB of their bodies arrive,
    // the rest is held back.
    let mut held = Vec::new();
    for i in 0..4 {
        let body = large_payload(BODY);
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let delivery = format!("held-{i}");
        stream
            .write_all(head(server.addr, &delivery, &body).as_bytes())
            .await
            .unwrap();
        stream.write_all(&body[..1024]).await.unwrap();
        held.push((stream, body, delivery));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Twelve more send only their heads: each is answered 503 + Retry-After at once, without
    // its 2 MB body ever being sent, so nothing of it was buffered.
    let mut shed = Vec::new();
    for i in 0..12 {
        let body = large_payload(BODY);
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(head(server.addr, &format!("shed-{i}"), &body).as_bytes())
            .await
            .unwrap();
        shed.push(tokio::spawn(
            async move { read_response(&mut stream).await },
        ));
    }
    for answer in shed {
        let response = answer.await.unwrap();
        assert_eq!(status_of(&response), 503, "{response}");
        assert!(
            response.to_ascii_lowercase().contains("retry-after: 5"),
            "{response}"
        );
    }

    // The server stays healthy meanwhile.
    let health = server
        .client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The held deliveries complete and are recorded.
    for (mut stream, body, delivery) in held {
        stream.write_all(&body[1024..]).await.unwrap();
        let response = read_response(&mut stream).await;
        assert_eq!(status_of(&response), 202, "{delivery}: {response}");
        let recorded = server.store.get_delivery(&delivery).await.unwrap();
        assert!(
            recorded.is_some(),
            "{delivery} was acknowledged but not recorded"
        );
    }
    for i in 0..12 {
        let recorded = server
            .store
            .get_delivery(&format!("shed-{i}"))
            .await
            .unwrap();
        assert!(recorded.is_none(), "a shed delivery must not be recorded");
    }

    // Permits come back: a delivery after the burst is accepted.
    let body = large_payload(0);
    let after = server.deliver("issues", "after-burst", &body).await;
    assert_eq!(after.status(), 202);

    let metrics = server
        .client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shed_count: f64 = metrics
        .lines()
        .find(|l| l.starts_with("patchpilot_webhook_rejections_total{reason=\"overloaded\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(shed_count >= 12.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_slower_than_the_timeout_is_cut_off_with_408() {
    let server = TestServer::start(
        fresh_sqlite().await,
        &["--body-timeout-secs", "1", "--max-inflight-webhooks", "1"],
    )
    .await;
    let body = large_payload(64 * 1024);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(head(server.addr, "slow-loris", &body).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for byte in body.iter().take(40) {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    trickle.await;
    let response = read_response(&mut stream).await;
    assert_eq!(status_of(&response), 408, "{response}");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(
        server
            .store
            .get_delivery("slow-loris")
            .await
            .unwrap()
            .is_none()
    );

    // Its permit was released: the only one, so a normal delivery proves it.
    let ok = server
        .deliver("issues", "after-slow", &large_payload(0))
        .await;
    assert_eq!(ok.status(), 202);
}

#[tokio::test]
async fn metrics_describe_every_metric_and_the_build() {
    let server = TestServer::start(fresh_sqlite().await, &[]).await;
    let text = server
        .client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "patchpilot_webhook_deliveries_total",
        "patchpilot_webhook_rejections_total",
        "patchpilot_webhook_in_flight",
        "patchpilot_http_request_timeouts_total",
        "patchpilot_build_info",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
    }
    assert!(text.contains(&format!(
        "patchpilot_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
}

/// `patchpilot serve` with every secret and optional setting present but blank, as
/// docker-compose's `${VAR}` produces for unset variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_settings_behave_as_unset_and_the_log_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchpilot"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("RUST_LOG", "info")
        .env("PATCHPILOT_ADDR", &addr)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("pp.db").display()),
        )
        .env("PATCHPILOT_DATA_DIR", dir.path().join("data"))
        .env("PATCHPILOT_API_TOKEN", "")
        .env("GITHUB_WEBHOOK_SECRET", " , ")
        .env("PATCHPILOT_PUBLIC_URL", "")
        .env("PATCHPILOT_LABEL", " ")
        .env("GITHUB_APP_ID", "")
        .env("GITHUB_PRIVATE_KEY", "\n")
        .env("GITHUB_PRIVATE_KEY_PATH", "")
        .env("ANTHROPIC_API_KEY", "")
        .env("ANTHROPIC_BASE_URL", "")
        .env("OPENAI_API_KEY", " ")
        .env("OPENAI_BASE_URL", "")
        .env("PATCHPILOT_MODEL", "")
        .env("PATCHPILOT_MODEL_TEMPERATURE", "")
        .env("EXA_API_KEY", "")
        .env("PATCHPILOT_MAX_INFLIGHT_WEBHOOKS", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match lines_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains("PatchPilot listening");
                log.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let log_text = log.join("\n");
    let listening = log_text.contains("PatchPilot listening");
    let client = reqwest::Client::new();
    let webhook = if listening {
        Some(
            client
                .post(format!("http://{addr}/webhooks/github"))
                .body("{}")
                .send()
                .await
                .unwrap()
                .status(),
        )
    } else {
        None
    };
    let create = if listening {
        Some(
            client
                .post(format!("http://{addr}/api/sessions"))
                .json(&serde_json::json!({"repoUrl": "https://example.com/x.git", "bugDescription": "x", "reproCommand": "true"}))
                .send()
                .await
                .unwrap()
                .status(),
        )
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();

    assert!(listening, "serve did not start:\n{log_text}");
    for expected in [
        "session API writes: off (PATCHPILOT_API_TOKEN is not set)",
        "webhooks: off (GITHUB_WEBHOOK_SECRET is not set",
        "GitHub App: off",
        "model: off",
        "max_inflight_webhooks=32",
    ] {
        assert!(
            log_text.contains(expected),
            "missing {expected:?} in:\n{log_text}"
        );
    }
    assert_eq!(webhook.unwrap().as_u16(), 503);
    let create = create.unwrap().as_u16();
    assert!(
        create == 401 || create == 403 || create == 503,
        "an empty token must not open the API: POST /api/sessions answered {create}"
    );
}
