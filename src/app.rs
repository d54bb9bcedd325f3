//! `patchpilot serve`: wires the store, the intake queue, the HTTP server and the workers,
//! and shuts them down on SIGTERM/SIGINT: the signal fires [`crate::shutdown`], so the HTTP
//! server stops accepting and finishes in-flight requests, the workers stop claiming and wind
//! down their jobs, and retry back-offs end at once; then the intake queue is drained.
//!
//! With SQLite, one process serves one database file: a second `serve` on the same file
//! refuses to start (see [`store::SqliteStore::lock_for_serving`]).

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::agent::deps::PipelineDeps;
use crate::agent::git::RepoCache;
use crate::agent::pipeline::Pipeline;
use crate::config::ServeArgs;
use crate::server::{self, AppState, Features};
use crate::store::{self, IntakeQueue, Store};
use crate::webhook::signature::WebhookSecrets;
use crate::webhook::triggers::TriggerSettings;
use crate::worker::{WorkerConfig, WorkerPool};

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
        web: Arc::new(server::access::WebAccess::new(
            args.server.api_token.as_ref(),
            args.server
                .webhook_secret
                .as_ref()
                .and_then(WebhookSecrets::parse)
                .as_ref(),
            args.server.public_url.as_ref(),
        )),
        triggers: Arc::new(TriggerSettings {
            label: args.server.label.clone(),
            ..TriggerSettings::default()
        }),
        worker_wakeup: Arc::new(Notify::new()),
        public_url: args.server.public_url.clone(),
        features: Arc::new(features),
        max_body_bytes: args.server.max_body_bytes,
        limits: server::EdgeLimits::from_args(&args.server),
    }
}

fn features(args: &ServeArgs) -> Features {
    let webhooks = args
        .server
        .webhook_secret
        .as_ref()
        .and_then(WebhookSecrets::parse)
        .is_some();
    let api_writes = crate::server::present(args.server.api_token.as_ref()).is_some();
    Features {
        webhooks,
        api_writes,
        ..Features::default()
    }
}

/// Our bot's login, so its own comments never trigger anything (bots are ignored anyway).
async fn bot_login(github: Option<&dyn crate::github::client::GitHub>) -> Option<String> {
    match github?.bot_login().await {
        Ok(login) => Some(login),
        Err(err) => {
            tracing::warn!(error = %err, "could not read the App's bot login yet");
            None
        }
    }
}

fn absolute_dir(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(path.join("work"))
        .with_context(|| format!("could not create {} (PATCHPILOT_DATA_DIR)", path.display()))?;
    Ok(path.canonicalize()?)
}

fn log_features(features: &Features) {
    if !features.webhooks {
        tracing::warn!(
            "webhooks: off (GITHUB_WEBHOOK_SECRET is not set; /webhooks/github answers 503)"
        );
    }
    if !features.github_app {
        tracing::warn!(
            "GitHub App: off (GITHUB_APP_ID and GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH are not set)"
        );
    }
    match &features.model {
        Some(model) => tracing::info!(model = %model, "model configured"),
        None => tracing::warn!(
            "model: off (set ANTHROPIC_API_KEY, or OPENAI_API_KEY / OPENAI_BASE_URL, and PATCHPILOT_MODEL); sessions stop before the patch step"
        ),
    }
    if !features.api_writes {
        tracing::warn!("session API writes: off (PATCHPILOT_API_TOKEN is not set)");
    }
}

fn log_limits(args: &crate::server::ServerArgs) {
    tracing::info!(
        max_inflight_webhooks = args.max_inflight_webhooks,
        max_body_bytes = args.max_body_bytes,
        body_timeout_secs = args.body_timeout_secs,
        request_timeout_secs = args.request_timeout_secs,
        "edge limits"
    );
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // From the start, so a signal during start-up (waiting on GitHub, say) is honoured too.
    let signal = shutdown_signal();
    tokio::spawn(async {
        signal.await;
        crate::shutdown::begin();
    });
    // Settings first: an invalid one stops start-up with its own sentence.
    let github = args
        .github
        .build()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let model = crate::llm::from_args(&args.model).map_err(|err| anyhow::anyhow!("{err}"))?;
    // Held until the process exits (the kernel releases it even on kill -9).
    let _single_server = store::SqliteStore::lock_for_serving(&args.database.database_url)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let store = open_store(&args.database.database_url).await?;
    let (intake, intake_task) = IntakeQueue::start(store.clone(), 256);
    let data_dir = absolute_dir(&args.worker.data_dir)?;
    let mut sandbox_args = args.sandbox.clone();
    sandbox_args
        .cache_dir
        .get_or_insert_with(|| data_dir.join("caches"));
    let sandbox = tokio::task::spawn_blocking(move || crate::sandbox::probe(&sandbox_args))
        .await
        .context("sandbox probe failed")?;
    let mut features = features(&args);
    features.sandbox = sandbox.describe();
    features.toolchains = sandbox.toolchains();
    features.github_app = github.is_some();
    features.model = model.as_ref().map(|m| m.name());
    log_features(&features);
    log_limits(&args.server);
    if let Some(model) = &model {
        let g = model.generation();
        tracing::info!(
            max_output_tokens = g.max_output_tokens,
            temperature = ?g.temperature,
            context_tokens = ?g.context_tokens,
            "model settings (an unset context window is read from the server on first use, where it reports one)"
        );
    }
    let mut state = app_state(store.clone(), intake, &args, features);
    state.triggers = Arc::new(TriggerSettings {
        label: args.server.label.clone(),
        bot_login: bot_login(github.as_deref()).await,
        app_id: args
            .github
            .github_app_id
            .and_then(|id| i64::try_from(id).ok()),
    });
    let pipeline = Pipeline::new(PipelineDeps {
        store: store.clone(),
        github,
        model,
        exa: crate::agent::exa::ExaClient::from_args(&args.exa)
            .map_err(|err| anyhow::anyhow!("{err}"))?,
        limits: args.sandbox.limits(),
        sandbox,
        repo_cache: RepoCache::new(data_dir.join("repos")),
        work_root: data_dir.join("work"),
        public_url: args.server.public_url.clone(),
        link_signer: state.web.link_signer().cloned(),
        label: args.server.label.clone(),
        budget: args.model.budget(),
    });
    let listener = TcpListener::bind(args.server.addr)
        .await
        .with_context(|| format!("could not listen on {} (PATCHPILOT_ADDR)", args.server.addr))?;
    let lease = std::time::Duration::from_secs(args.worker.lease_secs);
    let workers = start_workers(args.worker.workers, lease, store, pipeline, &state);
    tracing::info!(addr = %listener.local_addr()?, "PatchPilot listening");
    let app = server::router(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(crate::shutdown::token().cancelled())
        .await
        .context("HTTP server failed");
    // Whatever stopped the server, stop the workers too (a no-op when a signal did).
    crate::shutdown::begin();
    tracing::info!("HTTP server stopped; draining the intake queue and the workers");
    intake_task.await.context("intake queue task failed")?;
    if let Some(workers) = workers {
        workers.await.context("worker shutdown failed")?;
    }
    served?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Starts `count` workers, or none: `PATCHPILOT_WORKERS=0` makes this replica intake only
/// (it records deliveries, sessions and jobs; other replicas run them). The returned task ends
/// once the workers have stopped after shutdown began, so they stop claiming at the signal,
/// while the HTTP server is still draining.
fn start_workers(
    count: usize,
    lease: std::time::Duration,
    store: Arc<dyn Store>,
    pipeline: Pipeline,
    state: &AppState,
) -> Option<tokio::task::JoinHandle<()>> {
    if count == 0 {
        tracing::info!(
            "workers: none (PATCHPILOT_WORKERS=0); this replica only records deliveries"
        );
        return None;
    }
    let workers = WorkerPool::start(
        store,
        Arc::new(pipeline),
        state.worker_wakeup.clone(),
        WorkerConfig {
            concurrency: count,
            ..WorkerConfig::with_lease(lease)
        },
    );
    tracing::info!(workers = count, "workers started");
    Some(tokio::spawn(async move {
        crate::shutdown::token().cancelled().await;
        workers.shutdown().await;
    }))
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so a signal sent right after start-up is not missed.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        let wait = |installed: std::io::Result<tokio::signal::unix::Signal>| async move {
            match installed {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {},
            () = wait(interrupt) => {},
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
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
