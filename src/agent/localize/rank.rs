//! Combines the evidence into one ranked list, with a human reason for each signal.
//!
//! Score = (BM25 / best BM25 + trace + module + definition + message + flag + name +
//! locale signals) × kind weight. BM25 is normalised to 0..=1 so that a precise signal
//! (a traceback frame scores 2–3) outranks any amount of keyword overlap, while BM25
//! still orders everything the traces do not mention. The kind weight puts
//! implementation files in the repository's main languages first; other kinds rank only
//! when the issue points at them. Weights were chosen on the *tuning* split of `eval/`
//! only (see eval/README.md) and are deliberately round numbers.

use std::collections::BTreeSet;

use super::Candidate;
use super::bm25::{Query, Scored};
use super::kinds::{self, FileKind};
use super::names::IssueNames;
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
/// A quoted message found in a file (divided by √ of the files that contain it).
const MESSAGE: f64 = 1.2;
const MAX_MESSAGE: f64 = 2.0;
/// A `--flag` from the issue written in a file (same rarity rule).
const FLAG: f64 = 0.8;
const MAX_FLAG: f64 = 1.2;
/// Probes found in more files than this say nothing about where the bug is.
const PROBE_MAX_FILES: usize = 8;
/// The file's own name (or its directory's, for `index.js`) is a word of the issue.
const NAMED: f64 = 0.8;
/// Files sharing a name this common are not pointed at by it.
const NAMED_MAX_FILES: usize = 6;
/// The file of a locale the issue names.
const LOCALE: f64 = 2.0;

/// Multipliers by kind. Implementation in a main language is the reference; a kind the
/// issue points at is lifted to [`POINTED`].
const IMPL_OTHER_LANGUAGE: f64 = 0.6;
const POINTED: f64 = 0.95;
fn kind_weight(kind: FileKind) -> f64 {
    match kind {
        FileKind::Implementation => 1.0,
        FileKind::Test => 0.4,
        FileKind::TypeDeclaration | FileKind::Script => 0.35,
        FileKind::BuildConfig | FileKind::Docs => 0.2,
        FileKind::Other => 0.15,
        FileKind::Generated | FileKind::Vendored => 0.1,
        FileKind::Changelog => 0.08,
        FileKind::Legal => 0.05,
    }
}
/// Stems that name nothing: `src/plugin/utc/index.js` is named by its directory.
const GENERIC_STEMS: &[&str] = &[
    "index", "mod", "main", "__init__", "lib", "init", "default", "__main__",
];

/// All evidence gathered for one request.
pub struct Evidence<'a> {
    pub files: &'a [FileStats],
    pub bm25: &'a [Scored],
    pub query: &'a Query,
    pub refs: &'a [TraceRef],
    pub modules: &'a [String],
    pub names: &'a IssueNames,
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
    let probe_counts = probe_counts(ev.files);
    let name_counts = name_counts(ev.files);
    let main = kinds::main_languages(ev.files.iter().map(|f| (f.path.as_str(), f.kind)));
    let best = ev.bm25.iter().map(|s| s.score).fold(0.0, f64::max);
    // Scores first, for every file; the BM25 and kind sentences are written only for the
    // files that make the list (a large repository has tens of thousands of matches).
    let mut scored: Vec<Ranked> = Vec::new();
    for (i, (file, a)) in ev.files.iter().zip(acc).enumerate() {
        let bm25 = if best > 0.0 {
            ev.bm25[i].score / best
        } else {
            0.0
        };
        let mut reasons = a.reasons;
        let mut lines = a.lines;
        let (defs, def_reason) = definition_signal(file, &def_counts);
        let names = name_signals(
            ev,
            file,
            &probe_counts,
            &name_counts,
            &mut reasons,
            &mut lines,
        );
        let signals = a.trace
            + REPEAT_BONUS * f64::from(a.trace_hits.saturating_sub(1)).min(4.0)
            + a.module
            + defs
            + names;
        let raw = bm25 + signals;
        if raw <= 0.0 {
            continue;
        }
        reasons.extend(def_reason);
        lines.extend(file.defs.iter().map(|d| d.1));
        let weight = weight_of(ev.names, file, &main);
        scored.push(Ranked {
            file: i,
            bm25,
            score: round3(raw * weight.0),
            kind_reason: weight.1,
            reasons,
            lines,
        });
    }
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| ev.files[a.file].path.cmp(&ev.files[b.file].path))
    });
    scored.truncate(limit);
    scored.into_iter().map(|s| s.into_candidate(ev)).collect()
}

/// A file's score and the reasons gathered while scoring it.
struct Ranked {
    file: usize,
    bm25: f64,
    score: f64,
    kind_reason: KindReason,
    reasons: Vec<String>,
    lines: BTreeSet<u32>,
}

impl Ranked {
    fn into_candidate(self, ev: &Evidence<'_>) -> Candidate {
        let file = &ev.files[self.file];
        let mut reasons = self.reasons;
        if self.bm25 > 0.0 {
            let terms: Vec<&str> = ev.bm25[self.file]
                .top_terms
                .iter()
                .map(|&t| ev.query.terms[t as usize].as_str())
                .collect();
            reasons.push(format!("BM25 match: {}", terms.join(", ")));
        }
        reasons.push(self.kind_reason.sentence(file));
        Candidate {
            path: file.path.clone(),
            kind: file.kind.label().to_owned(),
            score: self.score,
            reasons,
            lines: self.lines.into_iter().take(MAX_LINES).collect(),
        }
    }
}

/// Why a file got its kind multiplier (written out only for listed files).
enum KindReason {
    MainLanguage(&'static str),
    OtherLanguagePointed(&'static str, String),
    OtherLanguage(&'static str),
    Pointed(String),
    Kind,
}

impl KindReason {
    fn sentence(&self, file: &FileStats) -> String {
        let label = file.kind.label();
        match self {
            KindReason::MainLanguage(lang) => {
                format!("implementation in {lang}, a main language of this repository")
            }
            KindReason::OtherLanguagePointed(lang, why) => {
                format!("implementation in {lang}, not a main language, kept high because {why}")
            }
            KindReason::OtherLanguage(lang) => format!(
                "implementation in {lang}, not a main language of this repository: ranked lower"
            ),
            KindReason::Pointed(why) => format!("{label}, ranked as a candidate because {why}"),
            KindReason::Kind => {
                format!("{label}: ranked below implementation files unless the issue points at it")
            }
        }
    }
}

/// The kind multiplier and why.
fn weight_of(names: &IssueNames, file: &FileStats, main: &[&str]) -> (f64, KindReason) {
    if file.kind == FileKind::Implementation {
        let lang = kinds::language(&file.path).unwrap_or("unknown language");
        if main.is_empty() || main.contains(&lang) {
            return (1.0, KindReason::MainLanguage(lang));
        }
        if let Some(why) = names.pointer(&file.path, file.kind) {
            return (POINTED, KindReason::OtherLanguagePointed(lang, why));
        }
        return (IMPL_OTHER_LANGUAGE, KindReason::OtherLanguage(lang));
    }
    let base = kind_weight(file.kind);
    match names.pointer(&file.path, file.kind) {
        Some(why) if POINTED > base => (POINTED, KindReason::Pointed(why)),
        _ => (base, KindReason::Kind),
    }
}

/// Message, flag, file-name and locale evidence; adds reasons and lines as it goes.
fn name_signals(
    ev: &Evidence<'_>,
    file: &FileStats,
    probe_counts: &[usize],
    name_counts: &std::collections::HashMap<String, usize>,
    reasons: &mut Vec<String>,
    lines: &mut BTreeSet<u32>,
) -> f64 {
    let (mut message, mut flag) = (0.0f64, 0.0f64);
    // Man pages, scripts and changelogs *mention* a CLI's flags and messages; the code that
    // parses or emits them is implementation (or the test that pins it down).
    let emits = matches!(file.kind, FileKind::Implementation | FileKind::Test)
        || ev.names.pointer(&file.path, file.kind).is_some();
    let mut seen: Vec<String> = Vec::new();
    for &(probe, line) in file.probe_hits.iter().filter(|_| emits) {
        let n = probe_counts[probe as usize];
        if n > PROBE_MAX_FILES {
            continue;
        }
        let rarity = 1.0 / (n as f64).sqrt();
        let (is_flag, label) = ev.names.probe_label(probe as usize);
        // `--flag` and `"flag"` are two probes for one flag: count it once.
        if seen.contains(&label) {
            continue;
        }
        seen.push(label.clone());
        if is_flag {
            flag += FLAG * rarity;
            push_reason(
                reasons,
                format!("contains the flag `{label}` from the issue (line {line})"),
            );
        } else {
            message += MESSAGE * rarity;
            push_reason(
                reasons,
                format!("contains the text “{label}” quoted in the issue (line {line})"),
            );
        }
        lines.insert(line);
    }
    let mut total = message.min(MAX_MESSAGE) + flag.min(MAX_FLAG);
    if let Some(name) = file_name_key(&file.path)
        && ev.query.ids.contains_key(&name)
        && let Some(&n) = name_counts.get(&name)
        && n <= NAMED_MAX_FILES
    {
        total += NAMED / (n as f64).sqrt();
        push_reason(reasons, format!("its name `{name}` is a word of the issue"));
    }
    if let Some((code, why)) = ev.names.locale_of(&file.path) {
        total += LOCALE;
        push_reason(
            reasons,
            format!("locale file for `{code}`, named in the issue as {why}"),
        );
    }
    total
}

fn push_reason(reasons: &mut Vec<String>, r: String) {
    if !reasons.contains(&r) && reasons.len() < 8 {
        reasons.push(r);
    }
}

/// How many files contain each probe.
fn probe_counts(files: &[FileStats]) -> Vec<usize> {
    let mut counts: Vec<usize> = Vec::new();
    for f in files {
        for &(p, _) in &f.probe_hits {
            let p = p as usize;
            if counts.len() <= p {
                counts.resize(p + 1, 0);
            }
            counts[p] += 1;
        }
    }
    counts
}

/// The name a file is known by, lower-case and without separators: its stem without
/// test or declaration suffixes, or its directory's name when the stem is generic.
fn file_name_key(path: &str) -> Option<String> {
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let stem = file.split('.').next()?;
    let stem = if GENERIC_STEMS.contains(&stem.to_ascii_lowercase().as_str()) {
        parts.next()?
    } else {
        stem
    };
    let key: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let key = key
        .strip_suffix("test")
        .or_else(|| key.strip_suffix("spec"))
        .filter(|k| !k.is_empty())
        .map_or(key.clone(), str::to_owned);
    (key.len() >= 3).then_some(key)
}

fn name_counts(files: &[FileStats]) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for f in files {
        if let Some(k) = file_name_key(&f.path) {
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    counts
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
            r.kind == kind && hits.len() == 1 && files[hits[0].0].kind == FileKind::Implementation
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
