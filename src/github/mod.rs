//! The GitHub boundary: App authentication, one client trait with domain verbs and its
//! octocrab implementation, classified retries, the hidden markers, the reporter that keeps
//! one progress comment and one check run per session, and the App manifest flow. Who may
//! trigger what is decided in `crate::authorization`.
//!
//! Nothing outside this module sees octocrab: the core uses [`client::GitHub`] and the
//! newtypes in [`types`].

pub mod auth;
pub mod client;
pub mod manifest;
pub mod markers;
pub mod octo;
pub mod reporter;
pub mod retry;
pub mod types;

pub use auth::GitHubArgs;
pub use client::GitHub;
