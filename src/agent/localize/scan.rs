//! Walks the repository once and reduces every file to the statistics ranking needs.
//!
//! The walk uses the `ignore` crate (the engine behind ripgrep): `.gitignore`,
//! `.ignore` and `.git/info/exclude` are honoured even outside a git checkout, hidden
//! files and `.git` are skipped, and files over [`MAX_FILE_BYTES`] are never read. Binary
//! files (a NUL byte in the first 8 KiB) are skipped. Files are read and tokenised on the
//! walker's own threads, and only counts of *query* terms are kept, never the text, so
//! memory stays proportional to the number of files rather than the repository's size.

use std::path::Path;
use std::sync::mpsc;

use anyhow::Context;
use ignore::{WalkBuilder, WalkState};
use regex::bytes::Regex;

use super::bm25::DocTerms;
use super::paths::{self, PathClass};
use super::tokenize::{TokenKind, for_each_raw_token};
use super::vocab::Vocab;

/// Larger files are almost never hand-written source worth ranking.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How the scanner weighs path tokens and which definitions it looks for.
pub struct ScanSpec<'a> {
    /// Stop words and the query's terms (build with `Vocab::new(query)`).
    pub vocab: &'a Vocab,
    /// Each path token counts as this many content occurrences.
    pub path_weight: f64,
    /// Matches a definition keyword line naming one of the wanted identifiers; capture
    /// group `name` is the identifier. `None` disables definition search.
    pub definitions: Option<&'a DefinitionSearch>,
}

/// What ranking needs to know about one file.
#[derive(Debug, Clone)]
pub struct FileStats {
    /// Repo-relative, `/`-separated.
    pub path: String,
    pub class: PathClass,
    pub terms: DocTerms,
    /// Identifiers defined in this file, with their 1-based line.
    pub defs: Vec<(String, u32)>,
}

/// Scans `root`; the result is sorted by path so ranking is deterministic.
pub fn scan(root: &Path, spec: &ScanSpec<'_>) -> anyhow::Result<Vec<FileStats>> {
    let meta = std::fs::metadata(root).with_context(|| format!("reading {}", root.display()))?;
    anyhow::ensure!(meta.is_dir(), "{} is not a directory", root.display());
    let walker = WalkBuilder::new(root)
        .require_git(false)
        .max_filesize(Some(MAX_FILE_BYTES))
        .build_parallel();
    let (tx, rx) = mpsc::channel::<FileStats>();
    walker.run(|| {
        let tx = tx.clone();
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let Some(rel) = relative(root, entry.path()) else {
                return WalkState::Continue;
            };
            if let Ok(content) = std::fs::read(entry.path())
                && let Some(stats) = file_stats(rel, &content, spec)
            {
                // The receiver lives until the walk ends, so send cannot fail.
                let _ = tx.send(stats);
            }
            WalkState::Continue
        })
    });
    drop(tx);
    let mut files: Vec<FileStats> = rx.into_iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Reduces one file's bytes to statistics; `None` for binary files.
pub fn file_stats(path: String, content: &[u8], spec: &ScanSpec<'_>) -> Option<FileStats> {
    if content[..content.len().min(8192)].contains(&0) {
        return None;
    }
    let mut class = paths::classify(&path);
    if class == PathClass::Source && paths::looks_minified(content) {
        class = PathClass::Generated;
    }
    // Dense per-term counts: an index per hit is cheaper than hashing the term id, and
    // the query has at most a few hundred terms.
    let mut counts = vec![0.0f64; spec.vocab.term_count()];
    let mut len = 0.0;
    let mut count = |text: &[u8], weight: f64| {
        for_each_raw_token(text, |t, hash, kind| {
            let entry = spec.vocab.get(hash, t);
            if kind == TokenKind::Part && entry.is_some_and(|e| e.stop) {
                return;
            }
            len += weight;
            if let Some(id) = entry.and_then(|e| e.term) {
                counts[id as usize] += weight;
            }
        });
    };
    count(content, 1.0);
    count(path.as_bytes(), spec.path_weight);
    let tf: Vec<(u32, f64)> = (0u32..).zip(counts).filter(|&(_, c)| c > 0.0).collect();
    let defs = spec
        .definitions
        .map(|re| find_definitions(re, content))
        .unwrap_or_default();
    Some(FileStats {
        path,
        class,
        terms: DocTerms { len, tf },
        defs,
    })
}

/// The definition regex plus a literal-only prefilter: the full pattern starts with a
/// line anchor and a repetition, so the regex engine cannot skip ahead and walks every
/// byte, while the plain alternation of names runs on a SIMD literal search. A definition
/// match always contains one of the names, so skipping files without any changes nothing.
pub struct DefinitionSearch {
    names: Regex,
    full: Regex,
}

fn find_definitions(search: &DefinitionSearch, content: &[u8]) -> Vec<(String, u32)> {
    let mut defs: Vec<(String, u32)> = Vec::new();
    if !search.names.is_match(content) {
        return defs;
    }
    let re = &search.full;
    let mut line = 1u32;
    let mut counted_to = 0usize;
    for c in re.captures_iter(content) {
        let (Some(all), Some(name)) = (c.get(0), c.name("name")) else {
            continue;
        };
        line += content[counted_to..all.start()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u32;
        counted_to = all.start();
        let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
        if !defs.iter().any(|d| d.0 == name) {
            // The match may begin at the newline that ends the previous line.
            let at_newline = content.get(all.start()) == Some(&b'\n');
            defs.push((name, line + u32::from(at_newline)));
        }
    }
    defs
}

/// Builds the definition regex for `idents`: a line that starts (after modifiers) with a
/// definition keyword followed by the identifier, e.g. `pub fn load(`, `def load(`,
/// `class Loader`, `export function load`, `func (s *S) Load(`.
pub fn definition_regex(idents: &[String]) -> Option<DefinitionSearch> {
    if idents.is_empty() {
        return None;
    }
    let alts: Vec<String> = idents.iter().map(|i| regex::escape(i)).collect();
    let pattern = format!(
        r"(?m-u)^[ \t]*(?:(?:pub(?:\([\w:]+\))?|export|default|async|static|public|private|protected|internal|abstract|final|override|open|unsafe|const|extern|inline|virtual|data|sealed)\s+)*(?:def|class|fn|struct|enum|trait|union|type|mod|impl|function\*?|func(?:\s*\([^)]*\))?|interface|let|var|const|val|fun|object|macro_rules!)\s+(?P<name>{})\b",
        alts.join("|")
    );
    Some(DefinitionSearch {
        names: Regex::new(&format!("(?-u){}", alts.join("|"))).ok()?,
        full: Regex::new(&pattern).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::bm25::Query;
    use super::*;

    fn spec_query(words: &[&str]) -> Query {
        Query::from_tokens(words.iter().map(|w| w.to_string()), 100)
    }

    #[test]
    fn counts_query_terms_in_content_and_path() {
        let q = spec_query(&["config", "parse"]);
        let vocab = Vocab::new(&q);
        let spec = ScanSpec {
            vocab: &vocab,
            path_weight: 3.0,
            definitions: None,
        };
        let s = file_stats("src/config.rs".into(), b"fn parse() {}\n// parse it", &spec).unwrap();
        assert_eq!(s.terms.tf, [(0, 3.0), (1, 2.0)]);
        assert_eq!(s.class, PathClass::Source);
    }

    #[test]
    fn binary_files_are_skipped() {
        let q = spec_query(&["x"]);
        let vocab = Vocab::new(&q);
        let spec = ScanSpec {
            vocab: &vocab,
            path_weight: 1.0,
            definitions: None,
        };
        assert!(file_stats("a.bin".into(), b"\x7fELF\0\0x", &spec).is_none());
    }

    #[test]
    fn finds_definitions_across_languages_with_lines() {
        let idents = vec![
            "load_config".to_string(),
            "Loader".to_string(),
            "Get".to_string(),
        ];
        let re = definition_regex(&idents).unwrap();
        let text = b"import os\n\ndef load_config(path):\n    pass\nclass Loader:\n    x = load_config(1)\n";
        assert_eq!(
            find_definitions(&re, text),
            [("load_config".to_string(), 3), ("Loader".to_string(), 5)]
        );
        let go = b"package store\n\nfunc (d *DB) Get(k string) {}\n";
        assert_eq!(find_definitions(&re, go), [("Get".to_string(), 3)]);
        let rs = b"pub(crate) async fn load_config() {}\n";
        assert_eq!(find_definitions(&re, rs), [("load_config".to_string(), 1)]);
        assert!(find_definitions(&re, b"x = load_config()\n").is_empty());
        assert!(find_definitions(&re, b"def other_name():\n    pass\n").is_empty());
    }

    #[test]
    fn walk_respects_gitignore_and_skips_binaries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join(".gitignore"), "ignored/\n").unwrap();
        std::fs::create_dir_all(dir.path().join("ignored")).unwrap();
        std::fs::write(dir.path().join("ignored/config.rs"), "config").unwrap();
        std::fs::write(dir.path().join("src/config.rs"), "config").unwrap();
        std::fs::write(dir.path().join("src/logo.png"), b"\x89PNG\0\0config").unwrap();
        let q = spec_query(&["config"]);
        let vocab = Vocab::new(&q);
        let spec = ScanSpec {
            vocab: &vocab,
            path_weight: 1.0,
            definitions: None,
        };
        let files = scan(dir.path(), &spec).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/config.rs"]);
    }
}
