//! What every session job does as it ends, first session or round: its status is stored and
//! its directories are removed.

use std::path::Path;

use crate::agent::deps::PipelineDeps;
use crate::store::{SessionPatch, SessionStatus};

pub async fn set_status(deps: &PipelineDeps, id: &str, status: SessionStatus, error: Option<&str>) {
    let patch = SessionPatch {
        status: Some(status),
        error_message: error.map(str::to_owned),
        ..SessionPatch::default()
    };
    deps.record(id, &patch).await;
}

/// Removes a work tree; files the sandbox created belong to other uids, which root can remove.
pub async fn remove_work_tree(path: &Path) {
    let path = path.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        if path.exists()
            && let Err(err) = std::fs::remove_dir_all(&path)
        {
            tracing::warn!(path = %path.display(), error = %err, "could not remove a work tree");
        }
    })
    .await;
}
