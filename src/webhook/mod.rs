//! Webhook intake: signature check, typed events, event -> command.

pub mod command;
