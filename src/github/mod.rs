//! The GitHub boundary: App authentication, one client trait with domain verbs and its
//! octocrab implementation, classified retries, the hidden markers, the reporter that keeps
//! one progress comment and one check run per session, trigger permissions, and the App
//! manifest flow.
//!
//! Nothing outside this module sees octocrab: the core uses [`client::GitHub`] and the
//! newtypes in [`types`].

pub mod auth;
pub mod client;
pub mod manifest;
pub mod markers;
pub mod octo;
pub mod permissions;
pub mod reporter;
pub mod retry;
pub mod types;

pub use auth::GitHubArgs;
pub use client::GitHub;
