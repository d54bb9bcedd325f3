//! Test support shared by integration tests: fresh databases on both backends, a stateful
//! fake GitHub, a scripted model server and a git smart-HTTP server, all on loopback.
#![allow(dead_code)]

pub mod db;
pub mod fake_github;
pub mod fake_model;
pub mod git_http;
