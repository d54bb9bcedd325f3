//! Webhook intake: signature check, typed events, event -> command.

pub mod command;
pub mod decision;
pub mod events;
pub mod iteration_triggers;
pub mod signature;
pub mod triggers;
