//! Median overhead of a sandboxed `true` over a plain `true`.
//!
//! Run: `cargo bench --bench sandbox_overhead` (or, without a release build,
//! `cargo test --bench sandbox_overhead`; the time is spent in the kernel and bwrap, not in
//! our code). Set `PATCHPILOT_SANDBOX_TIER` to measure another tier, `BENCH_RUNS` for more
//! samples, and `RUST_LOG=patchpilot::sandbox=debug` to print each run's phases.

use std::time::{Duration, Instant};

use clap::Parser;
use patchpilot::sandbox::{SandboxArgs, SandboxCommand, probe};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sandbox: SandboxArgs,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() {
    // Ignore cargo's own bench arguments; read settings from the environment only.
    let cli = Cli::parse_from(["sandbox_overhead"]);
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let sandbox = probe(&cli.sandbox);
    let work = tempfile::tempdir().expect("temp dir");

    let mut plain = Vec::with_capacity(runs);
    let mut sandboxed = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let status = tokio::process::Command::new("/bin/sh")
            .args(["-c", "true"])
            .status()
            .await
            .expect("plain true");
        assert!(status.success());
        plain.push(start.elapsed());

        let start = Instant::now();
        let out = sandbox
            .run(
                SandboxCommand::new("true", work.path()),
                None,
                CancellationToken::new(),
            )
            .await
            .expect("sandboxed true");
        assert!(out.success(), "{}", out.output.text());
        sandboxed.push(start.elapsed());
    }
    let (p, s) = (median(plain), median(sandboxed));
    println!("tier: {}", sandbox.describe());
    println!("runs: {runs}");
    println!("plain `true`:     median {:.2} ms", p.as_secs_f64() * 1e3);
    println!("sandboxed `true`: median {:.2} ms", s.as_secs_f64() * 1e3);
    println!(
        "overhead:         median {:.2} ms",
        s.saturating_sub(p).as_secs_f64() * 1e3
    );
}
