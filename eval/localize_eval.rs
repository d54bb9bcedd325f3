//! Evaluation driver: `cargo run --release --example localize_eval -- eval/cases.json eval/cache/trees`
//! (normally through `eval/run.sh`, which prepares the trees).
//!
//! For each case it localises with the issue text only (title + body, no failing output:
//! the harder, triage-time setting) and with the plain BM25 baseline, and reports
//! hit@k: the share of cases where at least one file the real fix changed is in the top k.
//! `--verbose` prints each case's rank for both rankers.

use std::path::PathBuf;
use std::time::Instant;

use patchpilot::agent::localize::{Candidate, LocalizeInput, bm25_baseline, localize};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    id: String,
    gold_files: Vec<String>,
    title: String,
    body: String,
}

const KS: [usize; 4] = [1, 3, 5, 10];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: localize_eval <cases.json> <trees dir> [--verbose]"
    );
    let cases: Vec<Case> = serde_json::from_slice(&std::fs::read(&args[1])?)?;
    let trees = PathBuf::from(&args[2]);
    let verbose = args.iter().any(|a| a == "--verbose");
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let mut elapsed = Vec::new();
    for case in &cases {
        let root = trees.join(&case.id);
        let text = format!("{}\n\n{}", case.title, case.body);
        let started = Instant::now();
        let found = localize(
            &root,
            &LocalizeInput {
                issue_text: &text,
                failure_output: None,
                limit: 10,
            },
        )?;
        elapsed.push(started.elapsed().as_secs_f64());
        let baseline = bm25_baseline(&root, &text, 10)?;
        let (r1, r2) = (
            rank_of(&found, &case.gold_files),
            rank_of(&baseline, &case.gold_files),
        );
        if verbose {
            println!(
                "{:<20} patchpilot {:>4}  bm25 {:>4}  gold {:?}",
                case.id,
                show(r1),
                show(r2),
                case.gold_files
            );
        }
        ours.push(r1);
        base.push(r2);
    }
    println!("cases: {}", cases.len());
    println!(
        "{:<12} {:>7} {:>7} {:>7} {:>7}",
        "ranker", "hit@1", "hit@3", "hit@5", "hit@10"
    );
    for (name, ranks) in [("patchpilot", &ours), ("bm25", &base)] {
        let cells: Vec<String> = KS
            .iter()
            .map(|&k| format!("{:>6.1}%", hit_at(ranks, k)))
            .collect();
        println!("{:<12} {}", name, cells.join(" "));
    }
    let mean = elapsed.iter().sum::<f64>() / elapsed.len().max(1) as f64;
    println!("mean localise time per case: {:.0} ms", mean * 1000.0);
    Ok(())
}

/// 1-based rank of the first gold file, if in the list.
fn rank_of(found: &[Candidate], gold: &[String]) -> Option<usize> {
    found
        .iter()
        .position(|c| gold.contains(&c.path))
        .map(|p| p + 1)
}

fn hit_at(ranks: &[Option<usize>], k: usize) -> f64 {
    let hits = ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count();
    100.0 * hits as f64 / ranks.len().max(1) as f64
}

fn show(r: Option<usize>) -> String {
    r.map_or("-".to_owned(), |r| r.to_string())
}
