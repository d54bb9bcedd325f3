//! Step 7: commit only the edited files as the App's bot, push `patchpilot/issue-<n>`, open (or
//! update) the pull request, move the check run to the PR head. Sessions without GitHub keep
//! the verified diff in `patchDiff`. With `unverified` set (out of attempts, `draft: true`),
//! the last attempt is opened as a draft whose body says it is not verified.

use crate::agent::git::{self, Signature};
use crate::agent::pipeline::progress::github_ref;
use crate::agent::pipeline::{Progress, Stop};
use crate::github::client::NewPullRequest;
use crate::github::messages::{
    PipelineStep, PullRequestView, commit_message, pull_request_body, pull_request_title,
};
use crate::store::SessionPatch;

use super::{SessionContext, github_stop};

pub async fn run(
    ctx: &mut SessionContext,
    progress: &mut Progress,
    unverified: Option<&str>,
) -> Result<String, Stop> {
    progress.start(PipelineStep::Publish).await;
    let store = ctx.deps.store.clone();
    let _ = store
        .update_session(
            &ctx.session.id,
            &SessionPatch {
                patch_diff: Some(ctx.diff.clone()),
                ..SessionPatch::default()
            },
        )
        .await;
    let (Some(github), Some(s)) = (ctx.deps.github.clone(), github_ref(&ctx.session)) else {
        progress
            .done(
                PipelineStep::Publish,
                "verified diff recorded (no GitHub repository to open a pull request on)",
            )
            .await;
        return Ok(crate::agent::pipeline::session_url(
            &ctx.deps,
            &ctx.session.id,
        ));
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
    let message = commit_message(s.issue, &ctx.title, &ctx.repro);
    let (dir, files, auth, push_branch) = (
        ctx.work_dir.clone(),
        ctx.changed_files.clone(),
        ctx.auth.clone(),
        branch.clone(),
    );
    let head_sha = tokio::task::spawn_blocking(move || git::commit_and_push(&dir, &files, &message, &author, &push_branch, &auth, true))
        .await
        .map_err(|err| Stop::Transient(format!("push task failed: {err}")))?
        .map_err(|err| Stop::failed(format!("could not push `{branch}`: {err}"), "Check that the App has contents: write permission and the branch is not protected, then comment `/patchpilot retry`."))?;
    progress.set_check_commit(&head_sha);
    let summary = match unverified {
        Some(why) => format!(
            "**Not verified:** {why}. This draft holds PatchPilot's last attempt for a maintainer to pick up.\n\n{}",
            ctx.summary
        ),
        None => ctx.summary.clone(),
    };
    let body = pull_request_body(&PullRequestView {
        issue: s.issue,
        summary,
        files_changed: ctx.changed_files.clone(),
        repro_command: ctx.repro.clone(),
        output_before: progress.output_before.clone().unwrap_or_default(),
        output_after: match unverified {
            Some(_) => progress.output_after.clone().unwrap_or_default(),
            None => ctx.passing_output.clone(),
        },
        model: ctx.model_name.clone(),
        input_tokens: ctx.input_tokens,
        output_tokens: ctx.output_tokens,
        session: progress.session_link(),
    });
    let pr = github
        .open_pull_request(
            s.installation,
            &s.repo,
            &NewPullRequest {
                title: pull_request_title(s.issue, &ctx.title),
                head: branch.clone(),
                base: ctx.base_branch.clone(),
                body,
                draft: ctx.config.draft,
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
    let _ = store.update_session(&ctx.session.id, &patch).await;
    progress
        .done(PipelineStep::Publish, &format!("opened {}", pr.html_url))
        .await;
    Ok(pr.html_url)
}
