//! Test support shared by integration tests: fresh databases on both backends, a real server,
//! a stateful fake GitHub, a scripted model server and a git smart-HTTP server, all on loopback.
#![allow(dead_code)]

pub mod db;
pub mod e2e;
pub mod fake_github;
pub mod fake_model;
pub mod git_http;
pub mod replicas;
pub mod server;

/// The real example payloads GitHub publishes (through Octokit), as (event, payload) pairs.
pub fn octokit_examples() -> Vec<(String, serde_json::Value)> {
    static EXAMPLES: std::sync::OnceLock<Vec<(String, serde_json::Value)>> =
        std::sync::OnceLock::new();
    EXAMPLES.get_or_init(load_examples).clone()
}

fn load_examples() -> Vec<(String, serde_json::Value)> {
    let raw = include_str!("../fixtures/webhooks/octokit-examples.json");
    let events: Vec<serde_json::Value> = serde_json::from_str(raw).expect("examples parse");
    events
        .into_iter()
        .flat_map(|event| {
            let name = event["name"].as_str().unwrap_or_default().to_owned();
            let examples = event["examples"].as_array().cloned().unwrap_or_default();
            examples
                .into_iter()
                .map(move |example| (name.clone(), example))
        })
        .collect()
}

/// The first real example of `event` with `action`.
pub fn example(event: &str, action: &str) -> serde_json::Value {
    octokit_examples()
        .into_iter()
        .find(|(name, payload)| name == event && payload["action"] == action)
        .map(|(_, payload)| payload)
        .unwrap_or_else(|| panic!("no example for {event}.{action}"))
}
