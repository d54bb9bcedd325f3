//! `patchpilot app create`: registers the GitHub App from `app-manifest.yml` with GitHub's
//! manifest flow (<https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest>).
//!
//! 1. A small page on loopback holds a form that POSTs the manifest to
//!    `{web}/settings/apps/new` (or `{web}/organizations/{org}/settings/apps/new`) with a
//!    random `state`.
//! 2. GitHub redirects back to `/callback?code=...&state=...`; a wrong state is refused.
//! 3. The code is exchanged at `POST {api}/app-manifests/{code}/conversions` (no auth).
//! 4. The App id, the key (to a 0600 PEM file) and the webhook secret are written to a
//!    `.env` file created with mode 0600. Secrets are never printed or logged.
//!
//! The web and API URLs are settings, so GitHub Enterprise Server and tests work.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot};

/// The manifest shipped with PatchPilot.
pub const APP_MANIFEST_YAML: &str = include_str!("../../app-manifest.yml");

#[derive(clap::Args, Debug, Clone)]
pub struct AppCreateArgs {
    /// Register the App under this organization instead of your user account.
    #[arg(long, env = "PATCHPILOT_APP_ORG")]
    pub org: Option<String>,
    /// Public URL of this PatchPilot server; webhooks go to `{url}/webhooks/github`.
    #[arg(long, env = "PATCHPILOT_PUBLIC_URL")]
    pub public_url: String,
    /// The App's name on GitHub (must be unique there).
    #[arg(long, env = "PATCHPILOT_APP_NAME", default_value = "PatchPilot")]
    pub name: String,
    /// GitHub's web URL (GitHub Enterprise Server: `https://HOST`).
    #[arg(long, env = "GITHUB_WEB_URL", default_value = "https://github.com")]
    pub github_web_url: String,
    /// GitHub's REST API URL.
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com")]
    pub github_api_url: String,
    /// Where the local helper page listens.
    #[arg(
        long,
        env = "PATCHPILOT_APP_CREATE_ADDR",
        default_value = "127.0.0.1:3999"
    )]
    pub listen: SocketAddr,
    /// The `.env` file to write (created with mode 0600).
    #[arg(long, default_value = ".env")]
    pub env_file: PathBuf,
}

/// The manifest as JSON with this deployment's URLs filled in.
pub fn manifest_json(
    args: &AppCreateArgs,
    redirect_url: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut manifest: serde_json::Value =
        serde_norway::from_str(APP_MANIFEST_YAML).context("app-manifest.yml is not valid YAML")?;
    let public = args.public_url.trim_end_matches('/');
    manifest["name"] = args.name.clone().into();
    manifest["url"] = public.into();
    manifest["hook_attributes"]["url"] = format!("{public}/webhooks/github").into();
    manifest["redirect_url"] = redirect_url.into();
    Ok(manifest)
}

/// Where the form posts the manifest.
pub fn new_app_url(web_url: &str, org: Option<&str>, state: &str) -> String {
    let web = web_url.trim_end_matches('/');
    match org {
        Some(org) => format!("{web}/organizations/{org}/settings/apps/new?state={state}"),
        None => format!("{web}/settings/apps/new?state={state}"),
    }
}

/// Serves the helper page on `args.listen` until the App is registered.
pub async fn run_app_create(args: AppCreateArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Open http://{addr}/ in your browser to register the GitHub App.");
    let created = serve_app_create(listener, args).await?;
    println!(
        "Registered GitHub App {} (id {}). Settings written to {}; install it from {}.",
        created.slug,
        created.app_id,
        created.env_file.display(),
        created.html_url
    );
    Ok(())
}

/// What was registered (no secrets).
#[derive(Clone, Debug)]
pub struct CreatedApp {
    pub app_id: u64,
    pub slug: String,
    pub html_url: String,
    pub env_file: PathBuf,
}

struct FlowState {
    args: AppCreateArgs,
    state: String,
    redirect_url: String,
    done: Mutex<Option<oneshot::Sender<anyhow::Result<CreatedApp>>>>,
}

/// Runs the flow on an already bound listener; returns once the callback has been handled.
pub async fn serve_app_create(
    listener: TcpListener,
    args: AppCreateArgs,
) -> anyhow::Result<CreatedApp> {
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let flow = Arc::new(FlowState {
        redirect_url: format!("http://{addr}/callback"),
        state: uuid::Uuid::new_v4().simple().to_string(),
        args,
        done: Mutex::new(Some(tx)),
    });
    let app = axum::Router::new()
        .route("/", get(page))
        .route("/callback", get(callback))
        .with_state(flow);
    let server = axum::serve(listener, app).into_future();
    tokio::select! {
        served = server => {
            served.context("the helper page server stopped")?;
            bail!("the helper page server stopped before GitHub called back")
        }
        result = rx => result.context("the flow ended without a result")?,
    }
}

async fn page(State(flow): State<Arc<FlowState>>) -> Result<Html<String>, String> {
    let manifest = manifest_json(&flow.args, &flow.redirect_url).map_err(|e| e.to_string())?;
    let action = new_app_url(
        &flow.args.github_web_url,
        flow.args.org.as_deref(),
        &flow.state,
    );
    Ok(Html(format!(
        "<!doctype html><title>Register PatchPilot</title>\
         <form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"manifest\" value=\"{}\">\
         <button type=\"submit\">Create the GitHub App</button></form>",
        html_escape(&action),
        html_escape(&manifest.to_string())
    )))
}

#[derive(Deserialize)]
struct Callback {
    code: String,
    state: String,
}

async fn callback(State(flow): State<Arc<FlowState>>, Query(cb): Query<Callback>) -> Html<String> {
    if cb.state != flow.state {
        return Html("This link does not belong to this registration; start again.".into());
    }
    let result = convert_and_save(&flow.args, &cb.code).await;
    let page = match &result {
        Ok(app) => format!(
            "Registered {}. You can close this tab.",
            html_escape(&app.slug)
        ),
        Err(err) => format!("Registration failed: {}", html_escape(&format!("{err:#}"))),
    };
    if let Some(done) = flow.done.lock().await.take() {
        let _ = done.send(result);
    }
    Html(page)
}

#[derive(Deserialize)]
struct Conversion {
    id: u64,
    slug: String,
    html_url: String,
    // Plain strings only for the moment of deserialising; wrapped right after.
    pem: String,
    webhook_secret: Option<String>,
}

/// Exchanges the code and writes the settings.
pub async fn convert_and_save(args: &AppCreateArgs, code: &str) -> anyhow::Result<CreatedApp> {
    let code: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let url = format!(
        "{}/app-manifests/{code}/conversions",
        args.github_api_url.trim_end_matches('/')
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "patchpilot")
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .context("cannot reach GitHub to finish the registration")?;
    let status = response.status();
    if !status.is_success() {
        bail!("GitHub refused the manifest code ({status})");
    }
    let conversion: Conversion = response
        .json()
        .await
        .context("unexpected answer from GitHub")?;
    let pem = SecretString::from(conversion.pem);
    let webhook_secret = conversion.webhook_secret.map(SecretString::from);
    let dir = args
        .env_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let key_path = dir.join(format!("{}.private-key.pem", conversion.slug));
    write_private(&key_path, pem.expose_secret())?;
    let mut values = BTreeMap::new();
    values.insert("GITHUB_APP_ID", conversion.id.to_string());
    values.insert("GITHUB_PRIVATE_KEY_PATH", key_path.display().to_string());
    if let Some(secret) = &webhook_secret {
        values.insert("GITHUB_WEBHOOK_SECRET", secret.expose_secret().to_owned());
    }
    values.insert("GITHUB_API_URL", args.github_api_url.clone());
    update_env_file(&args.env_file, &values)?;
    Ok(CreatedApp {
        app_id: conversion.id,
        slug: conversion.slug,
        html_url: conversion.html_url,
        env_file: args.env_file.clone(),
    })
}

/// Sets `values` in a dotenv file, keeping other lines; the file ends up mode 0600.
pub fn update_env_file(path: &Path, values: &BTreeMap<&str, String>) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut out: Vec<String> = existing
        .lines()
        .filter(|line| {
            let key = line
                .split_once('=')
                .map(|(k, _)| k.trim())
                .unwrap_or_default();
            !values.contains_key(key)
        })
        .map(str::to_owned)
        .collect();
    for (key, value) in values {
        out.push(format!("{key}={value}"));
    }
    write_private(path, &(out.join("\n") + "\n"))
}

/// Writes a file readable only by its owner (created 0600, and fixed if it existed).
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AppCreateArgs {
        AppCreateArgs {
            org: None,
            public_url: "https://pp.example.com/".into(),
            name: "PatchPilot Test".into(),
            github_web_url: "https://github.com".into(),
            github_api_url: "https://api.github.com".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            env_file: ".env".into(),
        }
    }

    #[test]
    fn manifest_asks_for_minimal_permissions_and_our_events() {
        let m = manifest_json(&args(), "http://127.0.0.1:1/callback").unwrap();
        assert_eq!(
            m["default_permissions"],
            serde_json::json!({"contents": "write", "issues": "write", "pull_requests": "write",
                               "checks": "write", "metadata": "read", "actions": "read"})
        );
        assert_eq!(
            m["default_events"],
            serde_json::json!([
                "issues",
                "issue_comment",
                "check_run",
                "pull_request_review",
                "pull_request_review_comment",
                "check_suite",
                "workflow_run"
            ])
        );
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://pp.example.com/webhooks/github"
        );
        assert_eq!(m["redirect_url"], "http://127.0.0.1:1/callback");
        assert_eq!(m["name"], "PatchPilot Test");
    }

    #[test]
    fn form_targets_user_or_org_settings() {
        assert_eq!(
            new_app_url("https://github.com/", None, "s"),
            "https://github.com/settings/apps/new?state=s"
        );
        assert_eq!(
            new_app_url("https://ghe.local", Some("acme"), "s"),
            "https://ghe.local/organizations/acme/settings/apps/new?state=s"
        );
    }

    #[test]
    fn env_file_keeps_other_lines_and_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "DATABASE_URL=sqlite://x\nGITHUB_APP_ID=1\n").unwrap();
        let values = BTreeMap::from([("GITHUB_APP_ID", "2".to_owned())]);
        update_env_file(&path, &values).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "DATABASE_URL=sqlite://x\nGITHUB_APP_ID=2\n"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
