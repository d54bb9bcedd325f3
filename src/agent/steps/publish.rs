//! Step 7: commit only the edited files as the App's bot, push `patchpilot/issue-<n>`, open (or
//! update) the pull request, move the check run to the PR head. The commit holds the bytes
//! PatchPilot's edits produced; before anything is published, the work tree is checked to
//! still hold exactly those bytes, each edited file applied to the base commit's content. A
//! sandboxed command that changed either (or swapped a directory on the path for a link)
//! ends the session with a clear reason and nothing published. Sessions without GitHub keep
//! the verified diff in `patchDiff`. With `Patched::unverified` set (out of attempts, `draft: true`),
//! the last attempt is opened as a draft whose body says it is not verified.

use crate::agent::deps::session_url;
use crate::agent::edits::AppliedFile;
use crate::agent::git::{self, GitError, Publication, Signature, TamperKind, Tampering};
use crate::agent::progress::{Progress, github_ref};
use crate::github::client::NewPullRequest;
use crate::report::PipelineStep;
use crate::report::messages::{
    PullRequestView, commit_message, pull_request_body, pull_request_title, work_tree_tampered,
};
use crate::store::SessionPatch;

use super::{Cloned, Patched, Prepared, StepEnv, Stop, github_stop};

/// Publishes `patched`; its URL is the pull request's (or, without GitHub, the session page).
pub async fn run(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
    cloned: &Cloned,
    patched: &Patched,
) -> Result<String, Stop> {
    progress.start(PipelineStep::Publish).await;
    let edited = &patched.edited;
    check_work_tree(env, &cloned.base_sha, &edited.applied).await?;
    env.record(SessionPatch {
        patch_diff: Some(edited.diff.clone()),
        ..SessionPatch::default()
    })
    .await;
    let (Some(github), Some(s)) = (env.deps.github.clone(), github_ref(&env.session)) else {
        progress
            .done(
                PipelineStep::Publish,
                "verified diff recorded (no GitHub repository to open a pull request on)",
            )
            .await;
        return Ok(session_url(&env.deps, &env.session.id));
    };
    let branch = format!("patchpilot/issue-{}", s.issue);
    let bot = github
        .bot_login()
        .await
        .map_err(|e| github_stop(e, "reading the App's identity"))?;
    let author = Signature {
        name: bot.clone(),
        email: format!("{bot}@users.noreply.github.com"),
    };
    let message = commit_message(s.issue, &prepared.title, &prepared.repro);
    let (git_dir, base, changes, auth, push_branch, clone_url) = (
        env.git_dir.clone(),
        cloned.base_sha.clone(),
        edited.changes(),
        prepared.auth.clone(),
        branch.clone(),
        env.session.repo_url.clone(),
    );
    let head_sha = tokio::task::spawn_blocking(move || {
        let publication = Publication {
            clone_url: &clone_url,
            branch: &push_branch,
            message: &message,
            author: &author,
            force: true,
        };
        git::commit_and_push(&git_dir, &base, &changes, &publication, &auth)
    })
        .await
        .map_err(|err| Stop::Transient(format!("push task failed: {err}")))?
        .map_err(|err| Stop::failed(format!("could not push `{branch}`: {err}"), "Check that the App has contents: write permission and the branch is not protected, then comment `/patchpilot retry`."))?;
    progress.set_check_commit(&head_sha);
    let summary = match &patched.unverified {
        Some(Stop::Failed { reason, .. }) => format!(
            "**Not verified:** {reason}. This draft holds PatchPilot's last attempt for a maintainer to pick up.\n\n{}",
            patched.summary
        ),
        _ => patched.summary.clone(),
    };
    let body = pull_request_body(&PullRequestView {
        issue: s.issue,
        summary,
        files_changed: edited.changed_files.clone(),
        repro_command: prepared.repro.clone(),
        output_before: progress.output_before.clone().unwrap_or_default(),
        output_after: match patched.unverified {
            Some(_) => progress.output_after.clone().unwrap_or_default(),
            None => patched.output_after.clone(),
        },
        model: patched.model_name.clone(),
        input_tokens: patched.input_tokens,
        output_tokens: patched.output_tokens,
        session: progress.session_link(),
    });
    let pr = github
        .open_pull_request(
            s.installation,
            &s.repo,
            &NewPullRequest {
                title: pull_request_title(s.issue, &prepared.title),
                head: branch.clone(),
                base: prepared.base_branch.clone(),
                body,
                draft: prepared.config.draft,
            },
        )
        .await
        .map_err(|e| github_stop(e, "opening the pull request"))?;
    let patch = SessionPatch {
        pr_url: Some(pr.html_url.clone()),
        pr_number: Some(pr.number.0 as i64),
        head_sha: Some(head_sha),
        head_branch: Some(branch),
        ..SessionPatch::default()
    };
    env.record(patch).await;
    progress
        .done(PipelineStep::Publish, &format!("opened {}", pr.html_url))
        .await;
    Ok(pr.html_url)
}

/// Whether the work tree still holds what the edits wrote, and the edits were applied to
/// the base commit's content; otherwise a sandboxed command changed one of them.
pub(super) async fn check_work_tree(
    env: &StepEnv,
    base_sha: &str,
    applied: &[AppliedFile],
) -> Result<(), Stop> {
    let (git_dir, base, dir, applied) = (
        env.git_dir.clone(),
        base_sha.to_owned(),
        env.work_dir.clone(),
        applied.to_vec(),
    );
    tokio::task::spawn_blocking(move || -> Result<(), GitError> {
        for file in &applied {
            let base_content = git::base_content(&git_dir, &base, &file.path)?;
            if base_content.as_deref() != file.original.as_ref().map(String::as_bytes) {
                return Err(GitError::Tampered(Tampering {
                    path: file.path.clone(),
                    kind: TamperKind::ChangedBeforeEdits,
                }));
            }
        }
        let written: Vec<(String, Vec<u8>)> = applied
            .into_iter()
            .map(|f| (f.path, f.content.into_bytes()))
            .collect();
        git::worktree::check_unchanged(&dir, &written).map_err(|err| match err {
            git::worktree::WorkTreeError::Tampered(t) => GitError::Tampered(t),
            other => GitError::io("checking the edited files", std::io::Error::other(other)),
        })
    })
    .await
    .map_err(|err| Stop::Transient(format!("work tree check failed: {err}")))?
    .map_err(git_stop)
}

/// A stop for a git failure outside the push: tampering is told as such.
pub(super) fn git_stop(err: GitError) -> Stop {
    let GitError::Tampered(what) = err else {
        return Stop::failed(
            format!("PatchPilot could not manage the edited files: {err}"),
            "Ask the PatchPilot operator to check the server logs, then comment `/patchpilot retry`.",
        );
    };
    Stop::from_outcome(work_tree_tampered(&what.to_string()))
}
