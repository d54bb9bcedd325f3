//! Test support shared by integration tests: a stateful fake GitHub, a scripted model
//! server and a git smart-HTTP server, all served over real HTTP on loopback.
#![allow(dead_code)]

pub mod fake_github;
pub mod fake_model;
pub mod git_http;
