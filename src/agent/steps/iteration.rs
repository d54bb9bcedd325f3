//! An iteration: one more round on the branch of a pull request PatchPilot opened.
//!
//! The same steps and limits as the first session, with three differences. The checkout is
//! the pull request's branch head, and the prompt carries the request (feedback, a review's
//! comments, or the failed CI jobs), the pull request's changes so far and the latest repro
//! output. The repro command is expected to pass there already; it must still pass (with the
//! test command) after the change, verified before anything is pushed. And publishing adds
//! one commit on top of the head it started from, without force: if anyone pushed meanwhile,
//! the push is refused and nothing changes. A round that fails leaves the branch as it was.

use crate::agent::git::{self, Publication, Signature};
use crate::agent::localize::Candidate;
use crate::agent::progress::{Progress, github_ref};
use crate::report::PipelineStep;
use crate::report::iteration::{IterationAsk, iteration_commit_message};
use crate::sandbox::environment::environment_failure;
use crate::session::iteration::IterationRequest;
use crate::store::{EventLevel, SessionStatus};
use crate::store::{SessionFilter, SessionPatch};

use super::iteration_request::{GatheredRequest, NamedComment, gather};
use super::patch::{PatchInput, Patched};
use super::{
    Cloned, Localised, Prepared, Reproduced, SimilarFixes, StepEnv, Stop, clone, github_stop,
    patch, prepare,
};

/// The pull request's diff shown to the model is cut to this many bytes (its tail).
const MAX_DIFF_BYTES: usize = 6_000;

/// A round that was verified and pushed.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub previous_head: String,
    pub head_sha: String,
    pub pr_url: String,
    pub files_changed: Vec<String>,
    pub summary: String,
    pub repro_command: String,
    pub output_after: String,
}

/// What the round was about, for the reply (also when it fails half-way).
#[derive(Clone, Debug, Default)]
pub struct IterationState {
    pub request: Option<IterationRequest>,
    pub comments: Vec<NamedComment>,
    /// The branch head the round started from, once cloned.
    pub start_head: Option<String>,
    /// The pull request's branch, once prepared.
    pub branch: Option<String>,
}

pub fn request_of(env: &StepEnv) -> Result<IterationRequest, Stop> {
    let text = env.session.iteration_request.as_deref().unwrap_or_default();
    IterationRequest::from_json(text)
        .map_err(|err| Stop::failed(err, "This is a PatchPilot bug; please report it."))
}

/// Runs the round; `state` keeps what the reply needs even when it stops early.
pub async fn run(
    env: &StepEnv,
    progress: &mut Progress,
    state: &mut IterationState,
) -> Result<Pushed, Stop> {
    let request = request_of(env)?;
    state.request = Some(request.clone());
    let mut prepared = prepare::run(env, progress).await?;
    state.branch = Some(prepared.base_branch.clone());
    env.check_cancel()?;
    let cloned = clone::run(env, progress, &prepared).await?;
    if let Some(config) = cloned.repo_config.clone() {
        prepared.config = config;
    }
    state.start_head = Some(cloned.base_sha.clone());
    if let IterationRequest::CiFailure { head_sha, .. } = &request
        && *head_sha != cloned.base_sha
    {
        return Err(Stop::failed(
            format!(
                "CI failed on {}, but the branch has moved on to {}",
                &head_sha[..head_sha.len().min(12)],
                &cloned.base_sha[..cloned.base_sha.len().min(12)]
            ),
            "Nothing to do: CI on the new head decides whether another round is needed.",
        ));
    }
    env.check_cancel()?;
    let gathered = gather(env, &request).await?;
    state.comments = gathered.comments.clone();
    let reproduced = latest_repro(env, progress, &prepared).await?;
    env.check_cancel()?;
    let diff = pull_request_diff(env).await;
    let localised = localise(env, progress, &gathered, &diff).await;
    progress
        .skipped(
            PipelineStep::SimilarFixes,
            "not needed for a round on an open pull request",
        )
        .await;
    prepared.description = follow_up_description(env, &prepared, &gathered, &diff);
    let input = PatchInput {
        prepared: &prepared,
        cloned: &cloned,
        reproduced: &reproduced,
        localised: &localised,
        similar: &SimilarFixes::default(),
    };
    let patched = patch::run(env, progress, &input).await?;
    // A round pushes only a verified change (a draft's unverified attempt is for first PRs).
    if let Some(stop) = patched.unverified {
        return Err(stop);
    }
    env.check_cancel()?;
    let ask = ask_of(&request, env);
    publish(env, progress, &prepared, &cloned, &patched, &ask).await
}

/// The ask as the reply and commit message name it.
pub fn ask_of(request: &IterationRequest, env: &StepEnv) -> IterationAsk {
    let by = env.session.triggered_by.clone();
    match request {
        IterationRequest::Feedback { .. } => IterationAsk::Feedback { by },
        IterationRequest::Review { .. } => IterationAsk::Review {
            by,
            comments: Vec::new(),
        },
        IterationRequest::CiFailure { head_sha, .. } => IterationAsk::CiFailure {
            head_sha: head_sha.clone(),
        },
    }
}

/// Set-up (when configured), then the repro command on the branch head: its output is the
/// latest evidence the model sees. Passing is expected here; not being able to run is not.
async fn latest_repro(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
) -> Result<Reproduced, Stop> {
    progress.start(PipelineStep::Reproduce).await;
    let config = &prepared.config;
    if let Some(setup) = config.setup_command.clone() {
        let outcome = env
            .sandboxed(progress, config, "setup", &setup, true)
            .await?;
        if !outcome.success() {
            return Err(Stop::failed(
                format!("the set-up command `{setup}` failed on the branch"),
                "Fix `setup_command` in .github/patchpilot.yml, then ask again.",
            ));
        }
    }
    let repro = &prepared.repro;
    let outcome = env
        .sandboxed(progress, config, "reproduce", repro, false)
        .await?;
    if let Some(failure) = environment_failure(&outcome) {
        return Err(super::reproduce::could_not_run(repro, &failure, &outcome));
    }
    let failing_output = outcome.output.text();
    progress.output_before = Some(failing_output.clone());
    let verdict = if outcome.success() {
        "the reproduction command passes on the branch head"
    } else {
        "the reproduction command fails on the branch head"
    };
    progress.done(PipelineStep::Reproduce, verdict).await;
    Ok(Reproduced { failing_output })
}

/// The pull request's changes so far: the first session's diff, then each earlier round's.
async fn pull_request_diff(env: &StepEnv) -> String {
    let store = &env.deps.store;
    let Some(parent) = env.session.parent_session_id.clone() else {
        return String::new();
    };
    let mut diffs = Vec::new();
    if let Ok(Some(first)) = store.get_session(&parent).await {
        diffs.extend(first.patch_diff);
    }
    let filter = SessionFilter {
        repository: env.session.github.as_ref().map(|g| g.repository.clone()),
        issue_number: env.session.github.as_ref().map(|g| g.issue_number),
        status: Some(SessionStatus::Succeeded),
        limit: 500,
    };
    if let Ok(mut rounds) = store.list_sessions(&filter).await {
        rounds.retain(|s| s.parent_session_id.as_deref() == Some(parent.as_str()));
        rounds.sort_by_key(|s| s.created_at);
        diffs.extend(rounds.into_iter().filter_map(|s| s.patch_diff));
    }
    diffs.join("\n")
}

/// Paths a unified diff changes (`+++ b/<path>`).
fn diff_paths(diff: &str) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for path in diff.lines().filter_map(|l| l.strip_prefix("+++ b/")) {
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_owned());
        }
    }
    paths
}

/// The files the request names, then the files the pull request changed.
async fn localise(
    env: &StepEnv,
    progress: &mut Progress,
    gathered: &GatheredRequest,
    diff: &str,
) -> Localised {
    progress.start(PipelineStep::Localise).await;
    let mut candidates: Vec<Candidate> = Vec::new();
    let named = gathered
        .paths
        .iter()
        .map(|p| (p.clone(), "named by the request"));
    let changed = diff_paths(diff)
        .into_iter()
        .map(|p| (p, "changed by the pull request"));
    for (path, reason) in named.chain(changed) {
        let is_file = std::fs::symlink_metadata(env.work_dir.join(&path))
            .map(|m| m.is_file())
            .unwrap_or(false);
        if !is_file || candidates.iter().any(|c| c.path == path) {
            continue;
        }
        let lines = gathered
            .comments
            .iter()
            .filter(|c| c.path == path)
            .filter_map(|c| c.line.and_then(|l| u32::try_from(l).ok()))
            .collect();
        candidates.push(Candidate {
            path,
            kind: "implementation".into(),
            score: 1.0,
            reasons: vec![reason.to_owned()],
            lines,
        });
    }
    for c in &candidates {
        progress
            .log(
                "localise",
                EventLevel::Info,
                &format!("{}: {}", c.path, c.reasons.join("; ")),
            )
            .await;
    }
    let message = format!(
        "{} files from the request and the pull request",
        candidates.len()
    );
    progress.done(PipelineStep::Localise, &message).await;
    Localised { candidates }
}

fn follow_up_description(
    env: &StepEnv,
    prepared: &Prepared,
    gathered: &GatheredRequest,
    diff: &str,
) -> String {
    let pr = github_ref(&env.session)
        .map(|s| s.issue.0)
        .unwrap_or_default();
    let mut start = diff.len().saturating_sub(MAX_DIFF_BYTES);
    while !diff.is_char_boundary(start) {
        start += 1;
    }
    format!(
        "# Follow-up on pull request #{pr}\n\nPatchPilot opened pull request #{pr} for the bug report below. This is a new round on its branch `{}`: the reproduction command already passes there and must still pass after your change.\n\n{}\n\n## The pull request's changes so far\n\n```diff\n{}\n```\n\n# The original bug report\n\n{}",
        prepared.base_branch,
        gathered.text.trim(),
        diff[start..].trim_end(),
        env.session.bug_description.trim()
    )
}

/// One new commit on top of the head the round started from; never a force-push.
async fn publish(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
    cloned: &Cloned,
    patched: &Patched,
    ask: &IterationAsk,
) -> Result<Pushed, Stop> {
    progress.start(PipelineStep::Publish).await;
    let edited = &patched.edited;
    super::publish::check_work_tree(env, &cloned.base_sha, &edited.applied).await?;
    let (Some(github), Some(s)) = (env.deps.github.clone(), github_ref(&env.session)) else {
        return Err(Stop::failed(
            "an iteration needs the GitHub App",
            "Ask the operator to configure the GitHub App.",
        ));
    };
    let pull = github
        .get_pull_request(s.installation, &s.repo, s.issue)
        .await
        .map_err(|e| github_stop(e, "reading the pull request"))?;
    if !pull.open {
        return Err(Stop::failed(
            "the pull request was closed while PatchPilot worked",
            "Reopen it and ask again.",
        ));
    }
    let bot = github
        .bot_login()
        .await
        .map_err(|e| github_stop(e, "reading the App's identity"))?;
    let author = Signature {
        name: bot.clone(),
        email: format!("{bot}@users.noreply.github.com"),
    };
    let message = iteration_commit_message(s.issue.0, ask, &patched.summary);
    let (git_dir, base, changes, auth, branch, clone_url) = (
        env.git_dir.clone(),
        cloned.base_sha.clone(),
        edited.changes(),
        prepared.auth.clone(),
        prepared.base_branch.clone(),
        env.session.repo_url.clone(),
    );
    let push_branch = branch.clone();
    let head_sha = tokio::task::spawn_blocking(move || {
        let publication = Publication {
            clone_url: &clone_url,
            branch: &push_branch,
            message: &message,
            author: &author,
            force: false,
        };
        git::commit_and_push(&git_dir, &base, &changes, &publication, &auth)
    })
    .await
    .map_err(|err| Stop::Transient(format!("push task failed: {err}")))?
    .map_err(|err| {
        Stop::failed(
            format!("could not push a new commit to `{branch}`: {err}"),
            "If someone pushed to the branch meanwhile, ask again: the next round starts from the new head.",
        )
    })?;
    progress.set_check_commit(&head_sha);
    let patch = SessionPatch {
        patch_diff: Some(edited.diff.clone()),
        pr_url: Some(pull.html_url.clone()),
        pr_number: Some(s.issue.0 as i64),
        head_sha: Some(head_sha.clone()),
        head_branch: Some(branch.clone()),
        ..SessionPatch::default()
    };
    env.record(patch).await;
    progress
        .done(
            PipelineStep::Publish,
            &format!(
                "pushed {} on top of {}",
                &head_sha[..12.min(head_sha.len())],
                &cloned.base_sha[..12.min(cloned.base_sha.len())]
            ),
        )
        .await;
    Ok(Pushed {
        previous_head: cloned.base_sha.clone(),
        head_sha,
        pr_url: pull.html_url,
        files_changed: edited.changed_files.clone(),
        summary: patched.summary.clone(),
        repro_command: prepared.repro.clone(),
        output_after: patched.output_after.clone(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn diff_paths_are_listed_once_in_order() {
        let diff = "--- a/calc.py\n+++ b/calc.py\n@@\n+x\n--- a/b.py\n+++ b/b.py\n--- a/calc.py\n+++ b/calc.py\n";
        assert_eq!(super::diff_paths(diff), ["calc.py", "b.py"]);
    }
}
