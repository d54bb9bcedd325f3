//! The pipeline's report model: its steps, where each stands, and how a session ended. The
//! pipeline fills it; [`super::messages`] renders it for GitHub and the session page shows it.

use std::time::Duration;

use super::markdown::FullTextAt;

/// The seven pipeline steps, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PipelineStep {
    Clone,
    Reproduce,
    Localise,
    SimilarFixes,
    Patch,
    Verify,
    Publish,
}

impl PipelineStep {
    pub const ALL: [PipelineStep; 7] = [
        PipelineStep::Clone,
        PipelineStep::Reproduce,
        PipelineStep::Localise,
        PipelineStep::SimilarFixes,
        PipelineStep::Patch,
        PipelineStep::Verify,
        PipelineStep::Publish,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PipelineStep::Clone => "Clone the repository",
            PipelineStep::Reproduce => "Reproduce the bug",
            PipelineStep::Localise => "Find the relevant code",
            PipelineStep::SimilarFixes => "Look for similar fixes",
            PipelineStep::Patch => "Write a patch",
            PipelineStep::Verify => "Verify the fix",
            PipelineStep::Publish => "Open a pull request",
        }
    }
}

/// Where one step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
}

impl StepState {
    pub fn icon(self) -> &'static str {
        match self {
            StepState::Pending | StepState::Running => "⏳",
            StepState::Done => "✅",
            StepState::Failed => "❌",
            StepState::Skipped => "⏭️",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepView {
    pub step: PipelineStep,
    pub state: StepState,
    /// How long the step took (or has been running); `None` before it starts.
    pub duration: Option<Duration>,
}

/// How a session ended, or that it has not yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded, waiting for a worker to claim it.
    Queued,
    /// A worker is on it (the running step, if any, is in the step list).
    InProgress,
    PullRequest {
        url: String,
    },
    /// Stopped short: `reason` says exactly why, `remedy` what the maintainer can do.
    Stopped {
        reason: String,
        remedy: String,
    },
    Cancelled {
        by: Option<String>,
    },
}

/// A session's identity in public text: its id, and its page when it has a public URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLink {
    pub id: String,
    /// Absolute URL of the session page; `None` without `PATCHPILOT_PUBLIC_URL`.
    pub url: Option<String>,
}

impl SessionLink {
    pub(crate) fn full_text_at(&self) -> FullTextAt<'_> {
        match &self.url {
            Some(url) => FullTextAt::SessionPage(url),
            None => FullTextAt::SessionRecord(&self.id),
        }
    }

    /// `[label](url)`, or nothing without a public URL.
    pub(crate) fn markdown(&self, label: &str) -> Option<String> {
        self.url.as_ref().map(|url| format!("[{label}]({url})"))
    }
}

/// Everything the progress comment and status reply show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressView {
    pub session: SessionLink,
    pub steps: Vec<StepView>,
    pub outcome: Outcome,
}

impl ProgressView {
    /// The step running now, if any.
    pub fn current_step(&self) -> Option<PipelineStep> {
        self.steps
            .iter()
            .find(|s| s.state == StepState::Running)
            .map(|s| s.step)
    }
}

/// The event message that marks a step as started (`/patchpilot status` looks for it).
pub fn start_message(step: PipelineStep) -> String {
    format!("{} …", step.label())
}

/// Short machine name of a step, used in session events.
pub fn step_name(step: PipelineStep) -> &'static str {
    match step {
        PipelineStep::Clone => "clone",
        PipelineStep::Reproduce => "reproduce",
        PipelineStep::Localise => "localise",
        PipelineStep::SimilarFixes => "similar_fixes",
        PipelineStep::Patch => "patch",
        PipelineStep::Verify => "verify",
        PipelineStep::Publish => "publish",
    }
}
