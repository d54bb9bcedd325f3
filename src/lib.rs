//! PatchPilot: a self-hostable GitHub App that turns bug reports into tested pull requests.
//!
//! Data flows one way: webhook -> store (durable) -> worker -> agent -> reporter.
//! `server` is the HTTP edge; `session`, `webhook` (triggers), `agent` and `worker` are the
//! core; `github`, `store`, `llm` and `sandbox` are boundaries, each behind a small trait.

pub mod agent;
pub mod app;
pub mod authorization;
pub mod config;
pub mod github;
pub mod llm;
pub mod local_run;
pub mod report;
pub mod sandbox;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod webhook;
pub mod worker;
