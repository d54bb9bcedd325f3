//! The pipeline's report: its model (steps, states, outcomes) and the wording of everything
//! PatchPilot shows — progress comment, replies, check runs, pull requests, round replies.
//! Core code: it renders text; the GitHub boundary posts it, the session page shows it.
//! A new step or a new message is added here and nowhere in `github/`.

pub mod iteration;
pub mod markdown;
pub mod messages;
pub mod model;

pub use model::{
    Outcome, PipelineStep, ProgressView, SessionLink, StepState, StepView, start_message, step_name,
};
