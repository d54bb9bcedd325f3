//! The seven pipeline steps of a session, derived from its events.
//!
//! The store keeps an append-only event log, not step states, so the page folds the log the
//! way the pipeline writes it (`agent::progress`, with the names in `report::model`): a step's first event means it is
//! running and any other running step has finished (then); an `error` event means it failed; an event
//! starting with `skipped:` means it was skipped. When the session ends, a step still running
//! is done (success, not reproduced) or failed (anything else). `assets/session.js` applies
//! the same rules to events that arrive live; keep the two in step.

use chrono::{DateTime, Utc};

use crate::report::step_name;
use crate::report::{PipelineStep, StepState};
use crate::store::{EventLevel, SessionEvent, SessionStatus};

/// One step as the page shows it.
#[derive(Debug)]
pub struct StepRow<'a> {
    pub name: &'static str,
    pub label: &'static str,
    pub state: StepState,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub events: Vec<&'a SessionEvent>,
}

/// The steps, in pipeline order, plus the events of no step (preparation, worker notes).
pub struct Steps<'a> {
    pub rows: Vec<StepRow<'a>>,
    pub other: Vec<&'a SessionEvent>,
}

pub fn state_name(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Done => "done",
        StepState::Failed => "failed",
        StepState::Skipped => "skipped",
    }
}

/// Folds `events` (oldest first) into step rows.
pub fn derive(events: &[SessionEvent], status: SessionStatus) -> Steps<'_> {
    let mut rows: Vec<StepRow> = PipelineStep::ALL
        .iter()
        .map(|&step| StepRow {
            name: step_name(step),
            label: step.label(),
            state: StepState::Pending,
            first: None,
            last: None,
            events: Vec::new(),
        })
        .collect();
    let mut other = Vec::new();
    for event in events {
        let Some(index) = rows.iter().position(|r| r.name == event.step) else {
            other.push(event);
            continue;
        };
        for (i, row) in rows.iter_mut().enumerate() {
            if i != index && row.state == StepState::Running {
                // It ended when the next step began.
                row.state = StepState::Done;
                row.last = Some(event.at);
            }
        }
        let row = &mut rows[index];
        row.first.get_or_insert(event.at);
        row.last = Some(event.at);
        row.events.push(event);
        row.state = if event.level == EventLevel::Error {
            StepState::Failed
        } else if event.message.starts_with("skipped:") {
            StepState::Skipped
        } else if row.state == StepState::Failed {
            StepState::Failed
        } else {
            StepState::Running
        };
    }
    if !status.is_active() {
        let ended_well = matches!(
            status,
            SessionStatus::Succeeded | SessionStatus::NotReproduced
        );
        for row in rows.iter_mut().filter(|r| r.state == StepState::Running) {
            row.state = if ended_well {
                StepState::Done
            } else {
                StepState::Failed
            };
        }
    }
    Steps { rows, other }
}

/// Output lines of one step (what the sandboxed command printed).
pub fn output_of<'a>(steps: &Steps<'a>, name: &str) -> Vec<&'a SessionEvent> {
    steps
        .rows
        .iter()
        .filter(|r| r.name == name)
        .flat_map(|r| r.events.iter().copied())
        .filter(|e| e.level == EventLevel::Output)
        .collect()
}

/// The model named by the patch step ("attempt 1 of 3: asking <model>").
pub fn model_used(steps: &Steps<'_>) -> Option<String> {
    steps
        .rows
        .iter()
        .filter(|r| r.name == "patch")
        .flat_map(|r| r.events.iter().rev())
        .find_map(|e| e.message.split_once(": asking ").map(|(_, m)| m.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, step: &str, level: EventLevel, message: &str) -> SessionEvent {
        SessionEvent {
            id,
            session_id: "s".into(),
            at: DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap(),
            step: step.into(),
            level,
            message: message.into(),
        }
    }

    fn states(steps: &Steps<'_>) -> Vec<&'static str> {
        steps.rows.iter().map(|r| state_name(r.state)).collect()
    }

    #[test]
    fn steps_follow_the_log() {
        let events = vec![
            event(1, "prepare", EventLevel::Info, "base branch `main`"),
            event(2, "clone", EventLevel::Info, "Clone the repository …"),
            event(3, "clone", EventLevel::Info, "cloned `main` at abc"),
            event(4, "reproduce", EventLevel::Info, "Reproduce the bug …"),
            event(5, "reproduce", EventLevel::Output, "FAILED test_x"),
        ];
        let steps = derive(&events, SessionStatus::Running);
        assert_eq!(
            states(&steps),
            [
                "done", "running", "pending", "pending", "pending", "pending", "pending"
            ]
        );
        assert_eq!(steps.other.len(), 1);
        assert_eq!(output_of(&steps, "reproduce").len(), 1);
        let clone = &steps.rows[0];
        assert_eq!(
            (clone.last.unwrap() - clone.first.unwrap()).num_seconds(),
            2,
            "a step lasts until the next one starts"
        );
    }

    #[test]
    fn failures_skips_and_the_end_are_shown() {
        let events = vec![
            event(1, "clone", EventLevel::Info, "Clone the repository …"),
            event(2, "reproduce", EventLevel::Info, "Reproduce the bug …"),
            event(3, "localise", EventLevel::Info, "Find …"),
            event(4, "similar_fixes", EventLevel::Info, "skipped: no search"),
            event(
                5,
                "patch",
                EventLevel::Info,
                "attempt 1 of 2: asking claude-x",
            ),
            event(6, "patch", EventLevel::Error, "the model call failed"),
        ];
        let steps = derive(&events, SessionStatus::Failed);
        assert_eq!(
            states(&steps),
            [
                "done", "done", "done", "skipped", "failed", "pending", "pending"
            ]
        );
        assert_eq!(model_used(&steps).as_deref(), Some("claude-x"));
        let running = derive(&events[..5], SessionStatus::Succeeded);
        assert_eq!(state_name(running.rows[4].state), "done");
        let cancelled = derive(&events[..5], SessionStatus::Cancelled);
        assert_eq!(state_name(cancelled.rows[4].state), "failed");
    }
}
