//! Evaluation driver: `cargo run --release --example localize_eval -- eval/cases.json eval/cache/trees`
//! (normally through `eval/run.sh`, which prepares the trees).
//!
//! For each case it localises with the issue text only (title + body, no failing output:
//! the harder, triage-time setting) and with the plain BM25 baseline, and reports
//! hit@k: the share of cases where at least one gold file (a non-test file the real fix
//! changed) is in the top k. Figures are reported per split — `tuning` (repositories the
//! weights were chosen on) and `held-out` (never looked at while tuning) — overall and per
//! language. `--verbose` prints each case's rank for both rankers and the top three files;
//! `--split NAME` restricts the run to one split. `--check-index` also localises each case
//! through the persistent index (`localize_cached`, built then reused, in a temporary
//! directory) and reports any case where either ranking differs from `localize`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use patchpilot::agent::localize::{
    Candidate, IndexCache, IndexUse, LocalizeInput, bm25_baseline, localize, localize_cached,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    id: String,
    language: String,
    split: String,
    gold_files: Vec<String>,
    title: String,
    body: String,
}

const KS: [usize; 4] = [1, 3, 5, 10];

/// Ranks (1-based, `None` = not in the top 10) of both rankers for one case.
struct Outcome<'a> {
    case: &'a Case,
    ours: Option<usize>,
    base: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: localize_eval <cases.json> <trees dir> [--verbose] [--split tuning|held-out]"
    );
    let cases: Vec<Case> = serde_json::from_slice(&std::fs::read(&args[1])?)?;
    let trees = PathBuf::from(&args[2]);
    let verbose = args.iter().any(|a| a == "--verbose");
    let only = args
        .iter()
        .position(|a| a == "--split")
        .and_then(|i| args.get(i + 1));
    let check_index = args.iter().any(|a| a == "--check-index");
    let index_dir = tempfile::tempdir()?;
    let mut index_mismatches: Vec<String> = Vec::new();
    let mut index_checked = 0;
    let mut outcomes = Vec::new();
    let mut elapsed = Vec::new();
    for case in cases.iter().filter(|c| only.is_none_or(|s| &c.split == s)) {
        let root = trees.join(&case.id);
        let text = format!("{}\n\n{}", case.title, case.body);
        let input = LocalizeInput {
            issue_text: &text,
            failure_output: None,
            limit: 10,
        };
        let started = Instant::now();
        let found = localize(&root, &input)?;
        elapsed.push(started.elapsed().as_secs_f64());
        if check_index {
            let cache = IndexCache::new(index_dir.path().join(&case.id));
            const COMMIT: &str = "0000000000000000000000000000000000000000";
            for expected in [IndexUse::Built, IndexUse::Reused] {
                let run = localize_cached(&root, &input, &cache, COMMIT)?;
                if run.index != expected || run.candidates != found {
                    index_mismatches.push(format!("{} ({:?})", case.id, run.index));
                }
            }
            index_checked += 1;
        }
        let baseline = bm25_baseline(&root, &text, 10)?;
        let outcome = Outcome {
            case,
            ours: rank_of(&found, &case.gold_files),
            base: rank_of(&baseline, &case.gold_files),
        };
        if verbose {
            print_case(&outcome, &found);
        }
        outcomes.push(outcome);
    }
    for split in ["tuning", "held-out"] {
        let part: Vec<&Outcome<'_>> = outcomes.iter().filter(|o| o.case.split == split).collect();
        if part.is_empty() {
            continue;
        }
        print_table(&format!("{split} — all languages"), &part);
        let mut by_lang: BTreeMap<&str, Vec<&Outcome<'_>>> = BTreeMap::new();
        for o in &part {
            by_lang.entry(o.case.language.as_str()).or_default().push(o);
        }
        for (lang, list) in by_lang {
            print_table(&format!("{split} — {lang}"), &list);
        }
    }
    if check_index {
        println!(
            "\nindex check: {} of {index_checked} cases ranked identically built and reused{}",
            index_checked - index_mismatches.len().min(index_checked),
            if index_mismatches.is_empty() {
                String::new()
            } else {
                format!("; differing: {}", index_mismatches.join(", "))
            }
        );
    }
    let mean = elapsed.iter().sum::<f64>() / elapsed.len().max(1) as f64;
    println!("mean localise time per case: {:.0} ms", mean * 1000.0);
    Ok(())
}

fn print_case(o: &Outcome<'_>, found: &[Candidate]) {
    let top: Vec<String> = found
        .iter()
        .take(3)
        .map(|c| format!("{} [{}]", c.path, c.kind))
        .collect();
    println!(
        "{:<16} {:<8} patchpilot {:>3}  bm25 {:>3}  gold {:?}\n                 top: {}",
        o.case.id,
        o.case.split,
        show(o.ours),
        show(o.base),
        o.case.gold_files,
        top.join(" | ")
    );
}

fn print_table(title: &str, part: &[&Outcome<'_>]) {
    println!("\n{title} ({} cases)", part.len());
    println!(
        "  {:<12} {:>7} {:>7} {:>7} {:>7}",
        "ranker", "hit@1", "hit@3", "hit@5", "hit@10"
    );
    let ours: Vec<Option<usize>> = part.iter().map(|o| o.ours).collect();
    let base: Vec<Option<usize>> = part.iter().map(|o| o.base).collect();
    for (name, ranks) in [("patchpilot", &ours), ("plain BM25", &base)] {
        let cells: Vec<String> = KS
            .iter()
            .map(|&k| format!("{:>7.2}", hit_at(ranks, k)))
            .collect();
        println!("  {:<12} {}", name, cells.join(" "));
    }
}

/// 1-based rank of the first gold file, if in the list.
fn rank_of(found: &[Candidate], gold: &[String]) -> Option<usize> {
    found
        .iter()
        .position(|c| gold.contains(&c.path))
        .map(|p| p + 1)
}

/// Share (0..=1) of cases with a gold file in the top `k`.
fn hit_at(ranks: &[Option<usize>], k: usize) -> f64 {
    let hits = ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count();
    hits as f64 / ranks.len().max(1) as f64
}

fn show(r: Option<usize>) -> String {
    r.map_or("-".to_owned(), |r| r.to_string())
}
