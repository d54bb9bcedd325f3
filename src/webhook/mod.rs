//! Webhook intake: signature check, typed events, event -> command.

pub mod command;
pub mod events;
pub mod signature;
pub mod triggers;
