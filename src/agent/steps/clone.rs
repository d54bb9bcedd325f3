//! Step 1: a fresh session repository from the cached mirror (git2; the token only through
//! the credential callback): a bare git directory beside an untracked work tree.

use crate::agent::progress::{Progress, github_ref};
use crate::report::PipelineStep;
use crate::report::messages::invalid_repo_config;
use crate::session::repo_config::{REPO_CONFIG_PATH, RepoConfig};
use crate::store::SessionPatch;

use super::{Prepared, StepEnv, Stop};

/// The work tree is checked out.
#[derive(Clone, Debug)]
pub struct Cloned {
    /// The commit the work tree was checked out at.
    pub base_sha: String,
    /// The repository's settings read from the checkout, for sessions without GitHub (which
    /// had no other way to read them before the clone).
    pub repo_config: Option<RepoConfig>,
}

pub async fn run(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
) -> Result<Cloned, Stop> {
    progress.start(PipelineStep::Clone).await;
    let (cache, url, branch, auth, git_dir, dir) = (
        env.deps.repo_cache.clone(),
        env.session.repo_url.clone(),
        prepared.base_branch.clone(),
        prepared.auth.clone(),
        env.git_dir.clone(),
        env.work_dir.clone(),
    );
    let checkout = tokio::task::spawn_blocking(move || cache.checkout(&url, &branch, &auth, &git_dir, &dir))
        .await
        .map_err(|err| Stop::Transient(format!("clone task failed: {err}")))?
        .map_err(|err| Stop::failed(format!("could not clone `{}` at `{}`: {err}", env.session.repo_url, prepared.base_branch), "Check that the branch exists and the App can read the repository, then comment `/patchpilot retry`."))?;
    let repo_config = match github_ref(&env.session) {
        Some(_) => None,
        None => {
            let text = std::fs::read_to_string(env.work_dir.join(REPO_CONFIG_PATH)).ok();
            Some(RepoConfig::parse(text.as_deref()).map_err(|err| {
                let fix = format!("Fix `{REPO_CONFIG_PATH}` in the repository.");
                Stop::from_outcome(invalid_repo_config(&err, &fix))
            })?)
        }
    };
    env.record(SessionPatch {
        base_sha: Some(checkout.base_sha.clone()),
        ..SessionPatch::default()
    })
    .await;
    progress
        .done(
            PipelineStep::Clone,
            &format!(
                "cloned `{}` at {}",
                prepared.base_branch,
                &checkout.base_sha[..checkout.base_sha.len().min(12)]
            ),
        )
        .await;
    Ok(Cloned {
        base_sha: checkout.base_sha,
        repo_config,
    })
}
