//! Step 1: a fresh session repository from the cached mirror (git2; the token only through
//! the credential callback): a bare git directory beside an untracked work tree.

use crate::agent::pipeline::progress::github_ref;
use crate::agent::pipeline::{Progress, Stop};
use crate::report::PipelineStep;
use crate::session::repo_config::{REPO_CONFIG_PATH, RepoConfig};
use crate::store::SessionPatch;

use super::SessionContext;

pub async fn run(ctx: &mut SessionContext, progress: &mut Progress) -> Result<(), Stop> {
    progress.start(PipelineStep::Clone).await;
    let (cache, url, branch, auth, git_dir, dir) = (
        ctx.deps.repo_cache.clone(),
        ctx.clone_url.clone(),
        ctx.base_branch.clone(),
        ctx.auth.clone(),
        ctx.git_dir.clone(),
        ctx.work_dir.clone(),
    );
    let checkout = tokio::task::spawn_blocking(move || cache.checkout(&url, &branch, &auth, &git_dir, &dir))
        .await
        .map_err(|err| Stop::Transient(format!("clone task failed: {err}")))?
        .map_err(|err| Stop::failed(format!("could not clone `{}` at `{}`: {err}", ctx.clone_url, ctx.base_branch), "Check that the branch exists and the App can read the repository, then comment `/patchpilot retry`."))?;
    if github_ref(&ctx.session).is_none() {
        // Sessions without GitHub read the repository's settings from the checkout itself.
        let text = std::fs::read_to_string(ctx.work_dir.join(REPO_CONFIG_PATH)).ok();
        ctx.config = RepoConfig::parse(text.as_deref()).map_err(|err| {
            Stop::failed(
                err.to_string(),
                format!("Fix `{REPO_CONFIG_PATH}` in the repository."),
            )
        })?;
    }
    ctx.base_sha = checkout.base_sha.clone();
    let patch = SessionPatch {
        base_sha: Some(checkout.base_sha.clone()),
        ..SessionPatch::default()
    };
    let _ = ctx.deps.store.update_session(&ctx.session.id, &patch).await;
    progress
        .done(
            PipelineStep::Clone,
            &format!(
                "cloned `{}` at {}",
                ctx.base_branch,
                &checkout.base_sha[..checkout.base_sha.len().min(12)]
            ),
        )
        .await;
    Ok(())
}
