//! Sessions: the record of one attempt to fix one issue, and the parsers that fill it.

pub mod issue_body;
pub mod iteration;
pub mod links;
mod model;
pub mod repo_config;

pub use model::{EventLevel, NewSession, Session, SessionEvent, SessionStatus, TriggerKind};
