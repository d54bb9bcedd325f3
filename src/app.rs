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

use crate::agent::deps::{DataDir, PipelineDeps, PipelineDepsBuilder};
use crate::agent::exa::ExaClient;
use crate::agent::pipeline::Pipeline;
use crate::config::ServeArgs;
use crate::github::client::GitHub;
use crate::llm::Model;
use crate::sandbox::{Sandbox, SandboxArgs};
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

/// The outside services `serve`'s settings name, built before anything is opened, so that an
/// invalid setting stops start-up with its own sentence before the database or the sandbox is
/// touched. Each is `None` when its settings are absent.
pub struct Clients {
    pub github: Option<Arc<dyn GitHub>>,
    pub model: Option<Arc<dyn Model>>,
    pub exa: Option<ExaClient>,
}

impl Clients {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Self> {
        Ok(Self {
            github: args
                .github
                .build()
                .map_err(|err| anyhow::anyhow!("{err}"))?,
            model: crate::llm::from_args(&args.model).map_err(|err| anyhow::anyhow!("{err}"))?,
            exa: ExaClient::from_args(&args.exa).map_err(|err| anyhow::anyhow!("{err}"))?,
        })
    }
}

/// The pipeline's dependencies exactly as `serve` wires them from its settings: the builder
/// brings the rules (where the repository cache and work trees live, how links are signed),
/// this sets what the settings name. Tests start from here and override only what they must.
pub fn pipeline_deps(
    args: &ServeArgs,
    clients: Clients,
    store: Arc<dyn Store>,
    sandbox: Arc<dyn Sandbox>,
    data_dir: &DataDir,
) -> PipelineDepsBuilder {
    let secrets = args
        .server
        .webhook_secret
        .as_ref()
        .and_then(WebhookSecrets::parse);
    PipelineDeps::builder(store, sandbox, data_dir)
        .github(clients.github)
        .model(clients.model)
        .exa(clients.exa)
        .public_url(args.server.public_url.clone())
        .webhook_secrets(secrets.as_ref())
        .label(args.server.label.clone())
        .limits(args.sandbox.limits())
        .budget(args.model.budget())
}

/// Probes the sandbox tiers (off the async threads: it runs commands), with the dependency
/// caches under the data directory unless `PATCHPILOT_CACHE_DIR` is set.
pub async fn probe_sandbox(
    args: &SandboxArgs,
    data_dir: &DataDir,
) -> anyhow::Result<Arc<dyn Sandbox>> {
    let args = data_dir.sandbox_args(args);
    tokio::task::spawn_blocking(move || crate::sandbox::probe(&args))
        .await
        .context("sandbox probe failed")
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
    let clients = Clients::from_args(&args)?;
    // Held until the process exits (the kernel releases it even on kill -9).
    let _single_server = store::SqliteStore::lock_for_serving(&args.database.database_url)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let store = open_store(&args.database.database_url).await?;
    let (intake, intake_task) = IntakeQueue::start(store.clone(), 256);
    let data_dir = DataDir::create(&args.worker.data_dir)?;
    let sandbox = probe_sandbox(&args.sandbox, &data_dir).await?;
    let deps = pipeline_deps(&args, clients, store.clone(), sandbox, &data_dir).build();
    let mut features = features(&args);
    features.sandbox = deps.sandbox.describe();
    features.toolchains = deps.sandbox.toolchains();
    features.github_app = deps.github.is_some();
    features.model = deps.model.as_ref().map(|m| m.name());
    log_features(&features);
    log_limits(&args.server);
    if let Some(model) = &deps.model {
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
        bot_login: bot_login(deps.github.as_deref()).await,
        app_id: args
            .github
            .github_app_id
            .and_then(|id| i64::try_from(id).ok()),
    });
    let pipeline = Pipeline::new(deps);
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::llm::SessionBudget;
    use crate::sandbox::Limits;
    use crate::sandbox::direct::RefusedSandbox;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn serve_args(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("patchpilot").chain(args.iter().copied()))
            .unwrap()
            .serve
    }

    /// What `serve` would run its pipeline with on `args` (a refusing sandbox stands in for the
    /// probed one, which this wiring does not look at).
    async fn serve_deps(args: &ServeArgs) -> (PipelineDeps, DataDir) {
        let store = store::connect("sqlite::memory:").await.unwrap();
        let data_dir = DataDir::create(&args.worker.data_dir).unwrap();
        let clients = Clients::from_args(args).unwrap();
        let deps = pipeline_deps(args, clients, store, Arc::new(RefusedSandbox), &data_dir).build();
        (deps, data_dir)
    }

    #[tokio::test]
    async fn serve_on_default_settings_is_the_builders_default_with_the_readmes_layout() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let args = serve_args(&["--data-dir", data.to_str().unwrap()]);
        let (deps, data_dir) = serve_deps(&args).await;

        // README: `PATCHPILOT_DATA_DIR` holds the repository cache and the work trees, and
        // the dependency caches default to `<PATCHPILOT_DATA_DIR>/caches`.
        let root = data.canonicalize().unwrap();
        assert_eq!(data_dir.root(), root);
        assert_eq!(deps.work_root, root.join("work"));
        assert!(
            deps.work_root.is_dir(),
            "the work root is created at start-up"
        );
        let mirror = deps
            .repo_cache
            .mirror_path("https://github.com/octo/calc.git");
        assert_eq!(mirror.parent(), Some(root.join("repos").as_path()));
        let sandbox = data_dir.sandbox_args(&args.sandbox);
        assert_eq!(sandbox.cache_dir, Some(root.join("caches")));
        let elsewhere = serve_args(&["--cache-dir", "/var/cache/pp"]).sandbox;
        assert_eq!(
            data_dir.sandbox_args(&elsewhere).cache_dir,
            Some("/var/cache/pp".into())
        );

        // A caller that sets nothing on the builder gets exactly this.
        let store = store::connect("sqlite::memory:").await.unwrap();
        let built = PipelineDeps::builder(store, Arc::new(RefusedSandbox), &data_dir).build();
        assert_eq!(built.work_root, deps.work_root);
        assert_eq!(
            built
                .repo_cache
                .mirror_path("https://github.com/octo/calc.git"),
            mirror
        );
        for deps in [&deps, &built] {
            assert!(deps.github.is_none());
            assert!(deps.model.is_none());
            assert!(deps.exa.is_none());
            assert_eq!(deps.public_url, None);
            assert!(deps.link_signer.is_none());
            assert_eq!(deps.label, "patchpilot");
            assert_eq!(deps.limits, Limits::default());
            assert_eq!(deps.budget, SessionBudget::default());
        }
    }

    #[tokio::test]
    async fn serve_settings_reach_the_pipeline_and_its_links_open_on_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let args = serve_args(&[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--webhook-secret",
            "new-secret,old-secret",
            "--public-url",
            "https://pp.example",
            "--label",
            "autofix",
            "--sandbox-timeout-secs",
            "42",
            "--model-max-turns",
            "3",
            "--exa-api-key",
            "exa-key",
        ]);
        let (deps, _) = serve_deps(&args).await;
        assert_eq!(deps.label, "autofix");
        assert_eq!(deps.public_url, Some("https://pp.example".parse().unwrap()));
        assert_eq!(deps.limits.timeout, std::time::Duration::from_secs(42));
        assert_eq!(deps.budget.max_turns, 3);
        assert!(deps.exa.is_some());

        // A private session's link in a comment is signed with the key the server checks.
        let (intake, _task) = IntakeQueue::start(deps.store.clone(), 1);
        let state = app_state(deps.store.clone(), intake, &args, Features::default());
        let now = chrono::Utc::now();
        let link = |signer| {
            crate::session::links::session_link(deps.public_url.as_ref(), "s1", true, signer, now)
                .unwrap()
        };
        let signed = link(deps.link_signer.as_ref());
        assert!(signed.starts_with("https://pp.example/sessions/s1?expires="));
        assert_eq!(signed, link(state.web.link_signer()));
    }
}
