//! Step 2: optional set-up (with network, still no secrets), then the repro command without
//! network, before any change. It must fail: a pass means "could not reproduce".

use crate::agent::pipeline::{Progress, Stop};
use crate::github::messages::{Outcome, PipelineStep, could_not_reproduce};

use super::SessionContext;

pub async fn run(ctx: &mut SessionContext, progress: &mut Progress) -> Result<(), Stop> {
    progress.start(PipelineStep::Reproduce).await;
    if let Some(setup) = ctx.config.setup_command.clone() {
        let outcome = ctx.sandboxed(progress, "setup", &setup, true).await?;
        if !outcome.success() {
            return Err(Stop::failed(
                format!(
                    "the set-up command `{setup}` failed:\n\n{}",
                    outcome.output.tail(3_000)
                ),
                "Fix `setup_command` in .github/patchpilot.yml, then comment `/patchpilot retry`.",
            ));
        }
    }
    let outcome = ctx
        .sandboxed(progress, "reproduce", &ctx.repro.clone(), false)
        .await?;
    let output = outcome.output.text();
    progress.output_before = Some(output.clone());
    if outcome.success() {
        progress
            .done(
                PipelineStep::Reproduce,
                "the reproduction command passed before any change",
            )
            .await;
        let (reason, remedy) = match could_not_reproduce(&ctx.repro) {
            Outcome::Stopped { reason, remedy } => (reason, remedy),
            _ => (
                format!("`{}` passed before any change", ctx.repro),
                String::new(),
            ),
        };
        let shown = crate::github::messages::fenced(&outcome.output.tail(3_000));
        return Err(Stop::NotReproduced {
            reason: format!("{reason}\n\n{shown}"),
            remedy,
        });
    }
    if outcome.timed_out {
        return Err(Stop::failed(
            format!(
                "`{}` did not finish within the time limit, so PatchPilot cannot tell a failure from a hang",
                ctx.repro
            ),
            "Use a faster reproduction command (`/patchpilot repro <command>`), or raise `limits.timeout_seconds`.",
        ));
    }
    ctx.failing_output = output;
    progress
        .done(
            PipelineStep::Reproduce,
            "reproduced: the command fails before any change",
        )
        .await;
    Ok(())
}
