//! `patchpilot serve`: wires the store, the intake queue, the HTTP server and the workers,
//! and shuts them down in order on SIGTERM/SIGINT (stop accepting, finish in-flight requests,
//! drain the intake queue).

use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::{ServeArgs, WebhookSecrets};
use crate::server::{self, AppState, Features};
use crate::store::{self, IntakeQueue, Store};
use crate::webhook::triggers::TriggerSettings;

/// Opens and migrates the store named by `database_url`.
pub async fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let redacted = store::redact_url(database_url);
    let store = store::connect(database_url)
        .await
        .with_context(|| format!("could not open the database at {redacted}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("could not migrate the database at {redacted}"))?;
    tracing::info!(backend = store.backend(), url = %redacted, "store ready");
    Ok(store)
}

/// Builds the shared HTTP state from settings (also used by tests and the benchmark).
pub fn app_state(
    store: Arc<dyn Store>,
    intake: IntakeQueue,
    args: &ServeArgs,
    features: Features,
) -> AppState {
    AppState {
        store,
        intake,
        webhook_secrets: args
            .server
            .webhook_secret
            .as_ref()
            .and_then(WebhookSecrets::parse)
            .map(Arc::new),
        api_token: args.server.api_token.clone().map(Arc::new),
        triggers: Arc::new(TriggerSettings {
            label: args.server.label.clone(),
            ..TriggerSettings::default()
        }),
        worker_wakeup: Arc::new(Notify::new()),
        public_url: args.server.public_url.clone(),
        features: Arc::new(features),
        max_body_bytes: args.server.max_body_bytes,
    }
}

fn features(args: &ServeArgs) -> Features {
    let webhooks = args
        .server
        .webhook_secret
        .as_ref()
        .and_then(WebhookSecrets::parse)
        .is_some();
    let api_writes = args
        .server
        .api_token
        .as_ref()
        .is_some_and(|t: &SecretString| {
            use secrecy::ExposeSecret;
            !t.expose_secret().is_empty()
        });
    Features {
        webhooks,
        api_writes,
        ..Features::default()
    }
}

fn log_features(features: &Features) {
    if !features.webhooks {
        tracing::warn!(
            "webhooks: off (GITHUB_WEBHOOK_SECRET is not set; /webhooks/github answers 503)"
        );
    }
    if !features.api_writes {
        tracing::warn!("session API writes: off (PATCHPILOT_API_TOKEN is not set)");
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(&args.database.database_url).await?;
    let (intake, intake_task) = IntakeQueue::start(store.clone(), 256);
    let sandbox_args = args.sandbox.clone();
    let sandbox = tokio::task::spawn_blocking(move || crate::sandbox::probe(&sandbox_args))
        .await
        .context("sandbox probe failed")?;
    let mut features = features(&args);
    features.sandbox = sandbox.describe();
    log_features(&features);
    let state = app_state(store, intake, &args, features);
    let listener = TcpListener::bind(args.server.addr)
        .await
        .with_context(|| format!("could not listen on {} (PATCHPILOT_ADDR)", args.server.addr))?;
    tracing::info!(addr = %listener.local_addr()?, "PatchPilot listening");
    let app = server::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("HTTP server stopped; draining the intake queue");
    intake_task.await.context("intake queue task failed")?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Sets up `tracing` output: human-readable or JSON lines.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
