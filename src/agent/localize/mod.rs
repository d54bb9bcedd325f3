//! Localisation: which files of the repository a bug most likely lives in, and why.
//! Pure Rust, no model; it is both a pipeline step and a stand-alone triage tool
//! (`patchpilot localize`).
//!
//! Signals, strongest first:
//! 1. **Traces** (`stacktrace`): Python tracebacks, Rust panics/backtraces/compiler
//!    errors, Node, Java/Kotlin and Go stacks, pytest/Jest/Go-test failure headers and bare
//!    `file:line` references, in the issue text and the failing output, mapped onto the
//!    repository's files by path suffix (`resolve`).
//! 2. **Module paths and definitions** (`signals`): `pkg.mod.Class` / `a::b` paths that
//!    name a file, and files that *define* a code-shaped identifier from the text.
//! 3. **Names** (`names`): quoted error messages and `--flags` found in the files that
//!    emit or parse them, the locale a report names, and files whose own name is a word
//!    of the report.
//! 4. **BM25** (`bm25`) over file content plus path tokens, with identifiers split on
//!    camelCase and snake_case (`tokenize`).
//!
//! Every file gets a kind (`kinds`): implementation in the repository's main languages
//! ranks first; tests, type declarations, build and CI config, scripts, docs, changelogs,
//! licences and man pages, generated and vendored files are down-weighted unless the
//! issue points at them. The repository is read once (`scan`), honouring `.gitignore`,
//! never following symlinks, skipping binaries and files over 1 MiB. Each candidate
//! carries its kind, human-readable reasons and relevant line numbers.
//!
//! The pipeline step calls [`localize_cached`]: the repository's files are indexed once
//! per commit (`index`, stored by `persist` next to the git mirror), and a repeat on the
//! same commit reads the index plus only the files that may hold a quoted message or a
//! named definition. Both paths compute the same statistics and rank identically.

mod bm25;
mod cli;
mod index;
mod kinds;
mod names;
mod persist;
mod rank;
mod resolve;
mod scan;
mod signals;
mod stacktrace;
mod tokenize;
mod vocab;

use std::path::Path;

use serde::Serialize;

pub use cli::{LocalizeArgs, run_cli};
pub use persist::{
    IndexCache, IndexUse, Localized, PendingIndex, localize_cached, localize_deferring_index,
};
pub use stacktrace::{TraceKind, TraceRef, parse_trace_refs};

/// Only the tail of a long failing output is used for the keyword query: builds print
/// hundreds of progress lines before the failure, which sits at the end.
const FAILURE_TAIL_BYTES: usize = 16 * 1024;
/// Distinct query terms kept; long issues have a long tail of rare, useless words.
const MAX_QUERY_TERMS: usize = 400;
/// Path tokens count this many times in the ranked localiser (a cheap BM25F).
const PATH_WEIGHT: f64 = 4.0;
/// BM25 length normalisation of the ranked localiser: stronger than the textbook 0.75 so
/// that a 5,000-line file that mentions every word does not soak up every query.
const LENGTH_NORM: f64 = 0.9;

/// What to localise.
#[derive(Debug, Clone, Copy)]
pub struct LocalizeInput<'a> {
    /// Title and body of the bug report.
    pub issue_text: &'a str,
    /// Output of the failing reproduction command, when there is one.
    pub failure_output: Option<&'a str>,
    /// Maximum number of candidates returned.
    pub limit: usize,
}

/// One ranked file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Repo-relative, `/`-separated.
    pub path: String,
    /// What kind of file it is: "implementation", "test", "licence or man page", …
    pub kind: String,
    pub score: f64,
    /// Human sentences, e.g. "named in the Python traceback (line 42)".
    pub reasons: Vec<String>,
    /// 1-based lines worth showing (trace locations, definitions), ascending.
    pub lines: Vec<u32>,
}

/// Ranks the repository's files for a bug report (see the module docs for the signals).
/// Reads every file; [`localize_cached`] answers repeats from a persistent index.
pub fn localize(repo_root: &Path, input: &LocalizeInput<'_>) -> anyhow::Result<Vec<Candidate>> {
    let prepared = Prepared::new(input);
    let files = scan::scan(repo_root, &prepared.spec())?;
    Ok(prepared.rank(&files, input.limit))
}

/// Everything taken from the issue text and the failing output, before any file is read.
pub(crate) struct Prepared {
    refs: Vec<TraceRef>,
    /// Code identifiers whose definitions are looked for.
    idents: Vec<String>,
    modules: Vec<String>,
    names: names::IssueNames,
    /// The literals `probes` searches for, in probe order.
    probe_texts: Vec<String>,
    query: bm25::Query,
    definitions: Option<scan::DefinitionSearch>,
    probes: Option<scan::ProbeSearch>,
    vocab: vocab::Vocab,
}

impl Prepared {
    pub(crate) fn new(input: &LocalizeInput<'_>) -> Self {
        let failure_tail = input.failure_output.map(tail);
        let issue = names::without_unchecked_boxes(input.issue_text);
        let mut text = issue.clone();
        if let Some(f) = failure_tail {
            text.push('\n');
            text.push_str(f);
        }
        let mut refs = parse_trace_refs(&issue);
        if let Some(f) = input.failure_output {
            refs.extend(parse_trace_refs(f));
        }
        let mut idents = signals::code_identifiers(&text);
        for r in &refs {
            if let Some(sym) = &r.symbol
                && let Some(last) = sym.rsplit(['.', ':']).find(|s| !s.is_empty())
            {
                let last = last.trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
                if last.len() >= 3
                    && !idents.iter().any(|i| i == last)
                    && idents.len() < signals::MAX_IDENTIFIERS
                {
                    idents.push(last.to_owned());
                }
            }
        }
        let modules = signals::module_paths(&text);
        let names = names::IssueNames::from_text(&text);
        let query = bm25::Query::from_tokens(tokenize::tokens(&text), MAX_QUERY_TERMS);
        let definitions = scan::definition_regex(&idents);
        let probe_texts = names.probes();
        let probes = scan::ProbeSearch::new(&probe_texts);
        let vocab = vocab::Vocab::new(&query);
        Prepared {
            refs,
            idents,
            modules,
            names,
            probe_texts,
            query,
            definitions,
            probes,
            vocab,
        }
    }

    pub(crate) fn spec(&self) -> scan::ScanSpec<'_> {
        scan::ScanSpec {
            vocab: &self.vocab,
            path_weight: PATH_WEIGHT,
            definitions: self.definitions.as_ref(),
            probes: self.probes.as_ref(),
        }
    }

    pub(crate) fn rank(&self, files: &[scan::FileStats], limit: usize) -> Vec<Candidate> {
        let docs: Vec<&bm25::DocTerms> = files.iter().map(|f| &f.terms).collect();
        let scored = bm25::score_all(&self.query, &docs, LENGTH_NORM);
        let evidence = rank::Evidence {
            files,
            bm25: &scored,
            query: &self.query,
            refs: &self.refs,
            modules: &self.modules,
            names: &self.names,
        };
        rank::rank(&evidence, limit)
    }
}

/// Plain BM25 over path + content (path tokens counted once, no traces, no weights): the
/// baseline the evaluation compares against.
pub fn bm25_baseline(
    repo_root: &Path,
    query: &str,
    limit: usize,
) -> anyhow::Result<Vec<Candidate>> {
    let q = bm25::Query::from_tokens(tokenize::tokens(query), MAX_QUERY_TERMS);
    let vocab = vocab::Vocab::new(&q);
    let spec = scan::ScanSpec {
        vocab: &vocab,
        path_weight: 1.0,
        definitions: None,
        probes: None,
    };
    let files = scan::scan(repo_root, &spec)?;
    let docs: Vec<&bm25::DocTerms> = files.iter().map(|f| &f.terms).collect();
    let scored = bm25::score_all(&q, &docs, bm25::B_STANDARD);
    let mut out: Vec<Candidate> = files
        .iter()
        .zip(&scored)
        .filter(|(_, s)| s.score > 0.0)
        .map(|(f, s)| Candidate {
            path: f.path.clone(),
            kind: f.kind.label().to_owned(),
            score: s.score,
            reasons: vec![format!(
                "BM25 match: {}",
                s.top_terms
                    .iter()
                    .map(|&t| q.terms[t as usize].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            lines: Vec::new(),
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
    });
    out.truncate(limit);
    Ok(out)
}

fn tail(s: &str) -> &str {
    if s.len() <= FAILURE_TAIL_BYTES {
        return s;
    }
    let mut start = s.len() - FAILURE_TAIL_BYTES;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
