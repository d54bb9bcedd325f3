//! Steps 5 and 6: ask the model for edits, apply them inside the work tree, verify with the
//! repro command (and the repository's test command). A failed verification, an edit that
//! does not apply, or a reply without edits goes back to the model, up to `max_attempts`.
//! Between attempts the edited files are restored, so each reply is applied to the original.

use crate::agent::edits::{EditPolicy, apply_edits, parse_edits};
use crate::agent::git;
use crate::agent::pipeline::{Progress, Stop};
use crate::agent::prompt::{
    AttemptFeedback, BYTES_PER_TOKEN, PatchPromptInput, PreviousAttempt, PromptFile, PromptFit,
    build_fitting_request, request_bytes,
};
use crate::llm::{BudgetedModel, Model};
use crate::report::PipelineStep;
use crate::store::EventLevel;
use crate::store::SessionPatch;

use super::SessionContext;

/// Bytes of a localised file read for the prompt (the prompt budget trims further).
const MAX_FILE_READ: u64 = 256 * 1024;

pub async fn run(ctx: &mut SessionContext, progress: &mut Progress) -> Result<(), Stop> {
    progress.start(PipelineStep::Patch).await;
    let Some(model) = ctx.deps.model.clone() else {
        return Err(Stop::failed(
            "no language model is configured on this PatchPilot server",
            "Ask the operator to set ANTHROPIC_API_KEY or OPENAI_API_KEY / OPENAI_BASE_URL (and PATCHPILOT_MODEL).",
        ));
    };
    // A repository may ask for another model of the operator's provider; the session budget
    // applies all the same.
    let model = match ctx.config.model.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => model.with_model(name),
        _ => model,
    };
    let model = BudgetedModel::new(model, ctx.deps.budget);
    ctx.model_name = model.name();
    let generation = model.generation();
    let fit = PromptFit::new(model.context_tokens().await, generation.max_output_tokens);
    log_fit(progress, &fit, generation.max_output_tokens).await;
    let mut input = PatchPromptInput {
        title: ctx.title.clone(),
        description: ctx.description.clone(),
        repro_command: ctx.repro.clone(),
        failing_output: ctx.failing_output.clone(),
        files: prompt_files(ctx),
        similar_fixes: ctx.similar.clone(),
        instructions: ctx.instructions.clone(),
        previous_attempts: Vec::new(),
    };
    let policy = EditPolicy {
        protected_paths: ctx.config.protected_paths.clone(),
        ..EditPolicy::default()
    };
    let attempts = ctx.config.max_attempts.max(1);
    let mut last_output = String::new();
    for attempt in 1..=attempts {
        ctx.check_cancel()?;
        let _ = ctx
            .deps
            .store
            .update_session(
                &ctx.session.id,
                &SessionPatch {
                    attempt_count: Some(i64::from(attempt)),
                    ..SessionPatch::default()
                },
            )
            .await;
        progress
            .log(
                "patch",
                EventLevel::Info,
                &format!("attempt {attempt} of {attempts}: asking {}", ctx.model_name),
            )
            .await;
        let request = build_fitting_request(&input, &fit, generation.temperature);
        if let Some(limit) = fit
            .max_prompt_bytes
            .filter(|&l| request_bytes(&request) > l)
        {
            progress
                .log(
                    "patch",
                    EventLevel::Warn,
                    &format!(
                        "even the smallest prompt ({} bytes) is larger than the {limit} bytes the model's context window leaves; raise PATCHPILOT_MODEL_CONTEXT_TOKENS or use a model with a larger window",
                        request_bytes(&request)
                    ),
                )
                .await;
        }
        let response = tokio::select! {
            response = model.complete(&request) => response,
            () = ctx.cancel.cancelled() => return Err(Stop::Cancelled),
        }
        .map_err(|err| Stop::failed(format!("the model call failed: {err}"), "Comment `/patchpilot retry` later; if it keeps failing, ask the operator to check the model settings."))?;
        record_usage(
            ctx,
            response.usage.input_tokens,
            response.usage.output_tokens,
        )
        .await;
        let reply = response.text;
        let feedback = match try_reply(ctx, progress, &reply, &policy).await? {
            Ok(()) => {
                ctx.summary = summary_of(&reply);
                progress
                    .done(
                        PipelineStep::Verify,
                        &format!("verified on attempt {attempt}"),
                    )
                    .await;
                return Ok(());
            }
            Err(feedback) => feedback,
        };
        if let AttemptFeedback::StillFailing { output, .. } = &feedback {
            last_output = output.clone();
            ctx.last_unverified_reply = Some(reply.clone());
        }
        progress
            .log("patch", EventLevel::Warn, &feedback_summary(&feedback))
            .await;
        restore(ctx).await?;
        input
            .previous_attempts
            .push(PreviousAttempt { reply, feedback });
    }
    let _ = ctx
        .deps
        .store
        .update_session(
            &ctx.session.id,
            &SessionPatch {
                patch_diff: Some(ctx.diff.clone()),
                ..SessionPatch::default()
            },
        )
        .await;
    progress.output_after = (!last_output.is_empty()).then_some(last_output.clone());
    Err(Stop::failed(
        format!(
            "no verified fix after {attempts} attempts; the last diff and output are on the session page"
        ),
        "Add detail to the issue (where it goes wrong, expected behaviour), then comment `/patchpilot retry`, or raise `max_attempts`.",
    ))
}

/// Says how the prompt is sized, when the model's context window shapes it.
async fn log_fit(progress: &mut Progress, fit: &PromptFit, configured_output: u32) {
    let Some(bytes) = fit.max_prompt_bytes else {
        return;
    };
    let mut line = format!(
        "prompt limited to {bytes} bytes (about {} tokens) to fit the model's context window",
        bytes / BYTES_PER_TOKEN
    );
    if fit.max_tokens < configured_output {
        line.push_str(&format!(
            "; replies limited to {} tokens (half the window) instead of {configured_output}",
            fit.max_tokens
        ));
    }
    progress.log("patch", EventLevel::Info, &line).await;
}

/// Applies one reply and verifies it. `Ok(Err(feedback))` means "tell the model and retry".
async fn try_reply(
    ctx: &mut SessionContext,
    progress: &mut Progress,
    reply: &str,
    policy: &EditPolicy,
) -> Result<Result<(), AttemptFeedback>, Stop> {
    let edits = match parse_edits(reply) {
        Ok(edits) if !edits.is_empty() => edits,
        Ok(_) => return Ok(Err(AttemptFeedback::NoEdits)),
        Err(err) => {
            return Ok(Err(AttemptFeedback::EditError {
                error: err.to_string(),
            }));
        }
    };
    let (dir, policy) = (ctx.work_dir.clone(), policy.clone());
    let applied = tokio::task::spawn_blocking(move || apply_edits(&dir, &edits, &policy))
        .await
        .map_err(|err| Stop::Transient(format!("edit task failed: {err}")))?;
    let applied = match applied {
        Ok(applied) => applied,
        Err(err) => {
            progress
                .log("patch", EventLevel::Warn, &format!("edit refused: {err}"))
                .await;
            return Ok(Err(AttemptFeedback::EditError {
                error: err.to_string(),
            }));
        }
    };
    ctx.changed_files = applied.changed_files;
    ctx.applied = applied.files;
    ctx.diff = diff_of(ctx).await;
    progress
        .done(
            PipelineStep::Patch,
            &format!("edited {}", ctx.changed_files.join(", ")),
        )
        .await;
    progress.start(PipelineStep::Verify).await;
    let mut commands = vec![ctx.repro.clone()];
    commands.extend(ctx.config.test_command.clone().filter(|t| *t != ctx.repro));
    let mut outputs = String::new();
    for command in commands {
        let outcome = ctx.sandboxed(progress, "verify", &command, false).await?;
        if let Some(failure) = crate::sandbox::environment::environment_failure(&outcome) {
            return Err(super::reproduce::could_not_run(
                &command, &failure, &outcome,
            ));
        }
        outputs.push_str(&outcome.output.text());
        if !outcome.success() {
            progress.output_after = Some(outputs.clone());
            return Ok(Err(AttemptFeedback::StillFailing {
                diff: ctx.diff.clone(),
                output: outputs,
            }));
        }
    }
    progress.output_after = Some(outputs.clone());
    ctx.passing_output = outputs;
    Ok(Ok(()))
}

/// Applies the last reply that applied but failed verification again (for a draft PR);
/// false when there is none or it no longer applies.
pub async fn reapply_last(ctx: &mut SessionContext) -> bool {
    let Some(reply) = ctx.last_unverified_reply.clone() else {
        return false;
    };
    let Ok(edits) = parse_edits(&reply) else {
        return false;
    };
    let policy = EditPolicy {
        protected_paths: ctx.config.protected_paths.clone(),
        ..EditPolicy::default()
    };
    let dir = ctx.work_dir.clone();
    let applied = tokio::task::spawn_blocking(move || apply_edits(&dir, &edits, &policy)).await;
    let Ok(Ok(applied)) = applied else {
        return false;
    };
    ctx.changed_files = applied.changed_files;
    ctx.applied = applied.files;
    ctx.diff = diff_of(ctx).await;
    ctx.summary = summary_of(&reply);
    true
}

/// The localised files with their content, for the prompt.
fn prompt_files(ctx: &SessionContext) -> Vec<PromptFile> {
    ctx.candidates
        .iter()
        .filter_map(|candidate| {
            let path = ctx.work_dir.join(&candidate.path);
            let meta = std::fs::symlink_metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > MAX_FILE_READ {
                return None;
            }
            let content = std::fs::read_to_string(&path).ok()?;
            Some(PromptFile {
                path: candidate.path.clone(),
                reason: candidate.reasons.join("; "),
                content,
                lines: candidate.lines.clone(),
            })
        })
        .collect()
}

/// The diff of what the edits wrote (PatchPilot's own bytes, not the work tree).
async fn diff_of(ctx: &SessionContext) -> String {
    let (git_dir, base, changes) = (ctx.git_dir.clone(), ctx.base_sha.clone(), changes(ctx));
    tokio::task::spawn_blocking(move || git::diff(&git_dir, &base, &changes))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// The applied edits as the content to commit.
pub fn changes(ctx: &SessionContext) -> Vec<git::FileChange> {
    ctx.applied
        .iter()
        .map(|file| git::FileChange {
            path: file.path.clone(),
            content: file.content.clone().into_bytes(),
        })
        .collect()
}

/// Puts the edited files back as they were at the base commit, never through a link: a
/// sandboxed command that swapped an edited path for one ends the session.
async fn restore(ctx: &mut SessionContext) -> Result<(), Stop> {
    ctx.applied.clear();
    let (git_dir, base, dir, files) = (
        ctx.git_dir.clone(),
        ctx.base_sha.clone(),
        ctx.work_dir.clone(),
        std::mem::take(&mut ctx.changed_files),
    );
    tokio::task::spawn_blocking(move || git::restore_paths(&git_dir, &base, &dir, &files))
        .await
        .map_err(|err| Stop::Transient(format!("restore task failed: {err}")))?
        .map_err(super::publish::git_stop)
}

async fn record_usage(ctx: &mut SessionContext, input: u64, output: u64) {
    ctx.input_tokens += input;
    ctx.output_tokens += output;
    let patch = SessionPatch {
        add_input_tokens: Some(i64::try_from(input).unwrap_or(i64::MAX)),
        add_output_tokens: Some(i64::try_from(output).unwrap_or(i64::MAX)),
        ..SessionPatch::default()
    };
    let _ = ctx.deps.store.update_session(&ctx.session.id, &patch).await;
}

fn feedback_summary(feedback: &AttemptFeedback) -> String {
    match feedback {
        AttemptFeedback::StillFailing { .. } => {
            "the reproduction command still fails with these edits".to_owned()
        }
        AttemptFeedback::EditError { error } => format!("the edits could not be applied: {error}"),
        AttemptFeedback::NoEdits => "the reply contained no edits".to_owned(),
    }
}

/// The model's explanation: its text before the first edit, trimmed.
fn summary_of(reply: &str) -> String {
    let cut = ["<<<<<<< SEARCH", "```"]
        .iter()
        .filter_map(|marker| reply.find(marker))
        .min()
        .unwrap_or(reply.len());
    let text = reply[..cut].trim();
    // Drop a trailing path line that introduces the first edit block.
    let text = text
        .rsplit_once('\n')
        .map_or(text, |(head, last)| {
            if last.contains('/') || last.contains('.') {
                head
            } else {
                text
            }
        })
        .trim();
    let text: String = text.chars().take(2_000).collect();
    if text.is_empty() {
        "PatchPilot's fix, verified by the reproduction command.".to_owned()
    } else {
        text
    }
}
