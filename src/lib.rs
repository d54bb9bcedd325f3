//! PatchPilot: a self-hostable GitHub App that turns bug reports into tested pull requests.
//!
//! Data flows one way: webhook -> store (durable) -> worker -> agent -> reporter.
//!
//! Imports run one way too (`tests/architecture.rs` checks it): the edge (`main`, `app`,
//! `config`, `local_run`, `server`) uses the core (`webhook`, `authorization`, `session`,
//! `report`, `agent`, `worker`), which uses the boundaries (`github`, `store`, `llm`,
//! `sandbox`), each behind a small trait; `shutdown` serves every layer. No boundary imports
//! the core, and no two modules or folders import each other.

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
