//! The agent pipeline: clone, reproduce, localise, similar fixes, patch, verify, publish.

pub mod edits;
pub mod exa;
pub mod git;
pub mod localize;
pub mod pipeline;
pub mod prompt;
mod steps;
