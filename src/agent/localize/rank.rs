//! Combines the evidence into one ranked list, with a human reason for each signal.
//!
//! Score = (BM25 / best BM25 + trace + module + definition signals) × path-class weight.
//! BM25 is normalised to 0..=1 so that a precise signal (a traceback frame scores 2–3)
//! outranks any amount of keyword overlap, while BM25 still orders everything the
//! traces do not mention. Weights were set by hand on the evaluation set in `eval/` and
//! are deliberately round numbers.

use std::collections::BTreeSet;

use super::Candidate;
use super::bm25::{Query, Scored};
use super::paths::PathClass;
use super::resolve::PathIndex;
use super::scan::FileStats;
use super::stacktrace::{TraceKind, TraceRef};

const FRAME: f64 = 2.0;
const DEEPEST_FRAME_BONUS: f64 = 1.0;
const PRECISE_LOCATION: f64 = 3.0;
const FAILURE_HEADER: f64 = 1.5;
const MENTION: f64 = 1.5;
const MODULE: f64 = 1.5;
const DEFINITION: f64 = 0.6;
const MAX_DEFINITION: f64 = 1.8;
const REPEAT_BONUS: f64 = 0.25;
const MAX_LINES: usize = 12;

/// All evidence gathered for one request.
pub struct Evidence<'a> {
    pub files: &'a [FileStats],
    pub bm25: &'a [Scored],
    pub query: &'a Query,
    pub refs: &'a [TraceRef],
    pub modules: &'a [String],
}

/// A trace reference's index, the reference, and the files it resolved to.
type Resolved<'a> = (usize, &'a TraceRef, Vec<(usize, f64)>);

#[derive(Default)]
struct Acc {
    trace: f64,
    trace_hits: u32,
    module: f64,
    reasons: Vec<String>,
    lines: BTreeSet<u32>,
}

/// Ranks files by the combined score; files with no evidence at all are left out.
pub fn rank(ev: &Evidence<'_>, limit: usize) -> Vec<Candidate> {
    let paths: Vec<String> = ev.files.iter().map(|f| f.path.clone()).collect();
    let index = PathIndex::new(&paths);
    let mut acc: Vec<Acc> = (0..ev.files.len()).map(|_| Acc::default()).collect();
    add_trace_evidence(ev, &index, &mut acc);
    add_module_evidence(ev, &index, &mut acc);
    let def_counts = definition_counts(ev.files);
    let best = ev.bm25.iter().map(|s| s.score).fold(0.0, f64::max);
    let mut out: Vec<Candidate> = Vec::new();
    for (i, (file, a)) in ev.files.iter().zip(acc).enumerate() {
        let bm25 = if best > 0.0 {
            ev.bm25[i].score / best
        } else {
            0.0
        };
        let (defs, def_reason) = definition_signal(file, &def_counts);
        let signals = a.trace
            + REPEAT_BONUS * f64::from(a.trace_hits.saturating_sub(1)).min(4.0)
            + a.module
            + defs;
        let raw = bm25 + signals;
        if raw <= 0.0 {
            continue;
        }
        let mut reasons = a.reasons;
        reasons.extend(def_reason);
        let mut lines = a.lines;
        lines.extend(file.defs.iter().map(|d| d.1));
        if bm25 > 0.0 {
            let terms: Vec<&str> = ev.bm25[i]
                .top_terms
                .iter()
                .map(|&t| ev.query.terms[t as usize].as_str())
                .collect();
            reasons.push(format!("BM25 match: {}", terms.join(", ")));
        }
        reasons.extend(file.class.describe().map(str::to_owned));
        out.push(Candidate {
            path: file.path.clone(),
            score: round3(raw * file.class.weight()),
            reasons,
            lines: lines.into_iter().take(MAX_LINES).collect(),
        });
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
    });
    out.truncate(limit);
    out
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn add_trace_evidence(ev: &Evidence<'_>, index: &PathIndex<'_>, acc: &mut [Acc]) {
    let resolved: Vec<Resolved<'_>> = ev
        .refs
        .iter()
        .enumerate()
        .map(|(n, r)| (n, r, index.resolve(&r.path)))
        .collect();
    let deepest = deepest_frames(ev.files, &resolved);
    for (n, r, hits) in &resolved {
        for &(fi, conf) in hits {
            let base = match r.kind {
                TraceKind::RustPanic | TraceKind::RustCompiler | TraceKind::FileLine => {
                    PRECISE_LOCATION
                }
                TraceKind::PytestFailure | TraceKind::JestFailure | TraceKind::GoTestFailure => {
                    FAILURE_HEADER
                }
                TraceKind::Mention => MENTION,
                _ => FRAME,
            };
            let bonus = if deepest.contains(n) {
                DEEPEST_FRAME_BONUS
            } else {
                0.0
            };
            let a = &mut acc[fi];
            a.trace = a.trace.max(base * conf + bonus);
            a.trace_hits += 1;
            if let Some(l) = r.line {
                a.lines.insert(l);
            }
            let reason = trace_reason(r, bonus > 0.0, conf < 1.0);
            if !a.reasons.contains(&reason) {
                a.reasons.push(reason);
            }
        }
    }
}

fn trace_reason(r: &TraceRef, deepest: bool, ambiguous: bool) -> String {
    let mut s = format!("named in {}", r.kind.describe());
    if let Some(l) = r.line {
        s.push_str(&format!(" (line {l})"));
    }
    if let Some(sym) = &r.symbol {
        s.push_str(&format!(" in `{sym}`"));
    }
    if deepest {
        s.push_str(", the innermost frame in this repository");
    }
    if ambiguous {
        s.push_str(", one of several files with that name");
    }
    s
}

/// Index (into `refs`) of the innermost non-test frame of each stack format. Python prints
/// the innermost frame last; Node, Java, Go and Rust backtraces print it first.
fn deepest_frames(files: &[FileStats], resolved: &[Resolved<'_>]) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let kinds = [
        TraceKind::PythonTraceback,
        TraceKind::NodeStack,
        TraceKind::JavaStack,
        TraceKind::GoStack,
        TraceKind::RustBacktrace,
    ];
    for kind in kinds {
        let mut frames = resolved.iter().filter(|(_, r, hits)| {
            r.kind == kind && hits.len() == 1 && files[hits[0].0].class == PathClass::Source
        });
        let pick = if kind == TraceKind::PythonTraceback {
            frames.next_back()
        } else {
            frames.next()
        };
        if let Some((n, _, _)) = pick {
            out.insert(*n);
        }
    }
    out
}

fn add_module_evidence(ev: &Evidence<'_>, index: &PathIndex<'_>, acc: &mut [Acc]) {
    for m in ev.modules {
        for (fi, conf) in index.resolve_module(m) {
            let a = &mut acc[fi];
            if a.module < MODULE * conf {
                a.module = MODULE * conf;
            }
            let reason = format!("module path `{m}` in the text points here");
            if !a.reasons.contains(&reason) && a.reasons.len() < 8 {
                a.reasons.push(reason);
            }
        }
    }
}

/// How many files define each identifier: a name defined in one file is a strong hint,
/// one defined in twenty is not.
fn definition_counts(files: &[FileStats]) -> std::collections::HashMap<&str, usize> {
    let mut counts = std::collections::HashMap::new();
    for f in files {
        for (name, _) in &f.defs {
            *counts.entry(name.as_str()).or_insert(0) += 1;
        }
    }
    counts
}

fn definition_signal(
    file: &FileStats,
    counts: &std::collections::HashMap<&str, usize>,
) -> (f64, Option<String>) {
    if file.defs.is_empty() {
        return (0.0, None);
    }
    let score: f64 = file
        .defs
        .iter()
        .map(|(name, _)| {
            DEFINITION / (counts.get(name.as_str()).copied().unwrap_or(1) as f64).sqrt()
        })
        .sum();
    let names: Vec<String> = file
        .defs
        .iter()
        .take(4)
        .map(|(n, l)| format!("`{n}` (line {l})"))
        .collect();
    (
        score.min(MAX_DEFINITION),
        Some(format!("defines {}, named in the text", names.join(", "))),
    )
}
