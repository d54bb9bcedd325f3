//! A real PatchPilot HTTP server on a loopback port, on a fresh database.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use patchpilot::config::ServeArgs;
use patchpilot::server::{self, AppState, Features};
use patchpilot::store::{IntakeQueue, Store};

use super::db::TestDb;

pub const SECRET: &str = "test-webhook-secret";
pub const API_TOKEN: &str = "test-api-token";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Serve settings as the CLI would parse them from `args` (no environment involved).
pub fn serve_args(args: &[&str]) -> ServeArgs {
    let mut argv = vec!["patchpilot"];
    argv.extend_from_slice(args);
    Args::try_parse_from(argv)
        .expect("valid test arguments")
        .serve
}

pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    pub client: reqwest::Client,
    _db: TestDb,
}

impl TestServer {
    /// Starts a server with the test secret and API token (plus `extra` CLI arguments).
    pub async fn start(db: TestDb, extra: &[&str]) -> Self {
        let mut args = vec!["--webhook-secret", SECRET, "--api-token", API_TOKEN];
        args.extend_from_slice(extra);
        Self::start_with(db, &args).await
    }

    pub async fn start_with(db: TestDb, args: &[&str]) -> Self {
        Self::start_with_args(db, serve_args(args)).await
    }

    /// Starts a server on already parsed settings (for values the CLI itself would refuse).
    pub async fn start_with_args(db: TestDb, args: ServeArgs) -> Self {
        let store = db.store.clone();
        let (intake, _task) = IntakeQueue::start(store.clone(), 256);
        let state = patchpilot::app::app_state(store.clone(), intake, &args, Features::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = server::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            addr,
            store,
            state,
            client: reqwest::Client::new(),
            _db: db,
        }
    }

    /// Sends a webhook signed with the test secret.
    pub async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> reqwest::Response {
        let signature = patchpilot::webhook::signature::sign(SECRET, body);
        self.client
            .post(format!("{}/webhooks/github", self.url))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", signature)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }
}
