//! Step 2: optional set-up (with network, still no secrets), then the repro command without
//! network, before any change. It must fail *by running*: a pass means "could not reproduce",
//! and a command that could not run (not found, not executable, runner or dependencies not
//! installed, a failed set-up) is an environment failure, reported as such without a model call.

use crate::agent::progress::Progress;
use crate::report::messages::{could_not_reproduce, fenced};
use crate::report::{Outcome, PipelineStep};
use crate::sandbox::RunOutcome;
use crate::sandbox::environment::{
    EnvironmentFailure, environment_failure, missing_python_dependency,
};
use crate::store::EventLevel;

use super::{Prepared, StepEnv, Stop};

/// The bug shows: the repro command fails, by running, before any change.
#[derive(Clone, Debug)]
pub struct Reproduced {
    pub failing_output: String,
}

/// How much of a failed command's output is quoted on the issue.
const QUOTED_TAIL: usize = 3_000;

pub async fn run(
    env: &StepEnv,
    progress: &mut Progress,
    prepared: &Prepared,
) -> Result<Reproduced, Stop> {
    progress.start(PipelineStep::Reproduce).await;
    let ctx = prepared;
    if let Some(setup) = ctx.config.setup_command.clone() {
        let outcome = env
            .sandboxed(progress, &ctx.config, "setup", &setup, true)
            .await?;
        if !outcome.success() {
            return Err(told(progress, setup_failed(&setup, &outcome)).await);
        }
    }
    let outcome = env
        .sandboxed(progress, &ctx.config, "reproduce", &ctx.repro, false)
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
        let shown = fenced(&outcome.output.tail(QUOTED_TAIL));
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
    if outcome.disk_quota_exceeded {
        return Err(Stop::failed(
            format!(
                "`{}` was stopped because the work tree outgrew its disk quota:\n\n{}",
                ctx.repro,
                fenced(&outcome.output.tail(QUOTED_TAIL))
            ),
            "Use a reproduction command that writes less, or ask the operator to raise PATCHPILOT_SANDBOX_DISK_MB.",
        ));
    }
    let failure = environment_failure(&outcome)
        .or_else(|| missing_python_dependency(&outcome, &env.work_dir));
    if let Some(failure) = failure {
        return Err(told(progress, could_not_run(&ctx.repro, &failure, &outcome)).await);
    }
    progress
        .done(
            PipelineStep::Reproduce,
            "reproduced: the command fails before any change",
        )
        .await;
    Ok(Reproduced {
        failing_output: output,
    })
}

/// "The reproduction command could not run in the sandbox": why, the command's own output
/// (tail, fenced) and what to change. Also used by the verify runs.
pub fn could_not_run(command: &str, failure: &EnvironmentFailure, outcome: &RunOutcome) -> Stop {
    Stop::failed(
        format!(
            "the reproduction command could not run in the sandbox: {} (`{command}`, {}). This is not a reproduction of the bug, so no fix was attempted.\n\n{}",
            failure.explain(),
            exit_text(outcome),
            fenced(&outcome.output.tail(QUOTED_TAIL))
        ),
        failure.remedy(),
    )
}

/// A set-up that did not succeed: the repro cannot run in an environment that is not ready.
fn setup_failed(setup: &str, outcome: &RunOutcome) -> Stop {
    let why = match environment_failure(outcome) {
        Some(failure) => format!("{}; ", failure.explain()),
        None if outcome.timed_out => "it did not finish within the time limit; ".to_owned(),
        None if outcome.disk_quota_exceeded => "it outgrew the disk quota; ".to_owned(),
        None => String::new(),
    };
    Stop::failed(
        format!(
            "the reproduction command could not run in the sandbox: the set-up command `{setup}` failed ({why}{}), so the environment is not ready. No fix was attempted.\n\n{}",
            exit_text(outcome),
            fenced(&outcome.output.tail(QUOTED_TAIL))
        ),
        "Fix `setup_command` in .github/patchpilot.yml (it runs with network, before the reproduction command), then comment `/patchpilot retry`.",
    )
}

/// Records what to change as an event too, so `patchpilot run` and the live page show it
/// (the issue comment and check run get it from the stop itself).
async fn told(progress: &Progress, stop: Stop) -> Stop {
    if let Stop::Failed { remedy, .. } = &stop {
        progress
            .log(
                "reproduce",
                EventLevel::Warn,
                &format!("what to change: {remedy}"),
            )
            .await;
    }
    stop
}

fn exit_text(outcome: &RunOutcome) -> String {
    match (outcome.exit_code, outcome.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "stopped".to_owned(),
    }
}
