//! The agent pipeline: clone, reproduce, localise, similar fixes, patch, verify, publish.

pub mod deps;
pub mod edits;
pub mod exa;
pub mod git;
pub mod localize;
pub mod pipeline;
pub mod progress;
pub mod prompt;
pub mod steps;
