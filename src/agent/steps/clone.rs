//! Step 1: a fresh work tree from the cached mirror (git2; the token only through the
//! credential callback).

use crate::agent::pipeline::{Progress, Stop};
use crate::github::messages::PipelineStep;
use crate::store::SessionPatch;

use super::SessionContext;

pub async fn run(ctx: &mut SessionContext, progress: &mut Progress) -> Result<(), Stop> {
    progress.start(PipelineStep::Clone).await;
    let (cache, url, branch, auth, dir) =
        (ctx.deps.repo_cache.clone(), ctx.clone_url.clone(), ctx.base_branch.clone(), ctx.auth.clone(), ctx.work_dir.clone());
    let checkout = tokio::task::spawn_blocking(move || cache.checkout(&url, &branch, &auth, &dir))
        .await
        .map_err(|err| Stop::Transient(format!("clone task failed: {err}")))?
        .map_err(|err| Stop::failed(format!("could not clone `{}` at `{}`: {err}", ctx.clone_url, ctx.base_branch), "Check that the branch exists and the App can read the repository, then comment `/patchpilot retry`."))?;
    let patch = SessionPatch { base_sha: Some(checkout.base_sha.clone()), ..SessionPatch::default() };
    let _ = ctx.deps.store.update_session(&ctx.session.id, &patch).await;
    progress.done(PipelineStep::Clone, &format!("cloned `{}` at {}", ctx.base_branch, &checkout.base_sha[..checkout.base_sha.len().min(12)])).await;
    Ok(())
}
