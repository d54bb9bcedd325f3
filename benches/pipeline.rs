//! Pipeline overhead: signed `issues.labeled` delivery → pull request opened, on the Python
//! fixture of the end-to-end tests (fake GitHub, scripted model, real git, real sandbox),
//! broken down per step. Overhead is the total minus the time inside sandboxed commands and
//! model calls — what PatchPilot itself costs.
//!
//! ```text
//! cargo bench --bench pipeline -- [--runs N]
//! ```

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports, unused_macros)]
mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use patchpilot::store::{EventLevel, SessionEvent, SessionStatus};
use support::e2e::{MAINTAINER, PYTHON_FIX, PYTHON_REPRO, World, python_project};
use support::fake_model::Reply;

const STEPS: [&str; 7] = [
    "clone",
    "reproduce",
    "localise",
    "similar_fixes",
    "patch",
    "verify",
    "publish",
];

struct Run {
    total: Duration,
    steps: Vec<(String, Duration)>,
    sandbox: Duration,
    model: Duration,
}

fn between(a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
    (b - a).to_std().unwrap_or_default()
}

/// Step durations, time in sandboxed commands (`$ cmd` to its exit line) and model calls
/// (`asking` to the next event), from the session's event log.
fn analyse(events: &[SessionEvent]) -> (Vec<(String, Duration)>, Duration, Duration) {
    let mut steps = Vec::new();
    for step in STEPS {
        let mine: Vec<&SessionEvent> = events
            .iter()
            .filter(|e| e.step == step && e.level != EventLevel::Output)
            .collect();
        if let (Some(first), Some(last)) = (mine.first(), mine.last()) {
            steps.push((step.to_owned(), between(first.at, last.at)));
        }
    }
    let (mut sandbox, mut model) = (Duration::ZERO, Duration::ZERO);
    for (i, event) in events.iter().enumerate() {
        let next_non_output = events[i + 1..]
            .iter()
            .find(|e| e.level != EventLevel::Output);
        if event.message.starts_with("$ ") {
            if let Some(end) = events[i + 1..].iter().find(|e| {
                e.step == event.step
                    && (e.message.starts_with("exit code")
                        || e.message.starts_with("timed out")
                        || e.message.starts_with("killed"))
            }) {
                sandbox += between(event.at, end.at);
            }
        } else if event.message.contains(": asking ")
            && let Some(end) = next_non_output
        {
            model += between(event.at, end.at);
        }
    }
    (steps, sandbox, model)
}

async fn one_run(n: u64) -> Run {
    let world = World::start(support::db::fresh_sqlite().await, &python_project()).await;
    world.model.push_reply(Reply::text(PYTHON_FIX));
    let body = format!("average([]) crashes.\n\nrepro: {PYTHON_REPRO}\n");
    let payload = world.labeled_payload(n, "average() crashes on an empty list", &body, MAINTAINER);
    let started = Instant::now();
    let answer = world.deliver("issues", &payload).await;
    let id = answer["sessionId"].as_str().unwrap().to_owned();
    let session = world.finished(&id).await;
    let total = started.elapsed();
    assert_eq!(
        session.status,
        SessionStatus::Succeeded,
        "{}",
        world.events(&id).await
    );
    let events = world.store.events_after(&id, 0, 10_000).await.unwrap();
    let (steps, sandbox, model) = analyse(&events);
    world.stop().await;
    Run {
        total,
        steps,
        sandbox,
        model,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let mut runs_wanted = 5;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            runs_wanted = args.next().and_then(|v| v.parse().ok()).expect("--runs N");
        }
    }
    let mut runs = Vec::new();
    for n in 0..runs_wanted {
        runs.push(one_run(n + 1).await);
    }
    println!("pipeline bench: delivery → PR opened, {runs_wanted} runs, medians");
    for step in STEPS {
        let durations: Vec<Duration> = runs
            .iter()
            .filter_map(|r| r.steps.iter().find(|(s, _)| s == step).map(|(_, d)| *d))
            .collect();
        if !durations.is_empty() {
            println!("  {step:<14} {}", ms(median(durations)));
        }
    }
    let total = median(runs.iter().map(|r| r.total).collect());
    let sandbox = median(runs.iter().map(|r| r.sandbox).collect());
    let model = median(runs.iter().map(|r| r.model).collect());
    let overhead = median(
        runs.iter()
            .map(|r| r.total.saturating_sub(r.sandbox + r.model))
            .collect(),
    );
    println!("  total          {}", ms(total));
    println!("  in sandbox     {}", ms(sandbox));
    println!("  in model calls {}", ms(model));
    println!(
        "  overhead       {}  (total − sandbox − model, median of runs)",
        ms(overhead)
    );
}
