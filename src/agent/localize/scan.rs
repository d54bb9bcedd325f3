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
use super::kinds::{self, FileKind};
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
    /// Messages and flags from the issue to find in file contents (`None`: skip).
    pub probes: Option<&'a ProbeSearch>,
}

/// What ranking needs to know about one file.
#[derive(Debug, Clone)]
pub struct FileStats {
    /// Repo-relative, `/`-separated.
    pub path: String,
    pub kind: FileKind,
    pub terms: DocTerms,
    /// Identifiers defined in this file, with their 1-based line.
    pub defs: Vec<(String, u32)>,
    /// Probes (index into the probe list) found in this file, with the first line.
    pub probe_hits: Vec<(u16, u32)>,
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

/// Reads a regular file without following a symlink at its own name (the work tree is
/// written by sandboxed commands); a file over [`MAX_FILE_BYTES`] is an error.
pub fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    read_no_follow_into(path, &mut out)?;
    Ok(out)
}

/// [`read_no_follow`] into a reused buffer (cleared first).
pub fn read_no_follow_into(path: &Path, out: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    out.clear();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::other("larger than the size limit"));
    }
    out.reserve(meta.len() as usize);
    // `take`: the file may grow between `fstat` and the read.
    file.take(MAX_FILE_BYTES).read_to_end(out)?;
    Ok(())
}

pub fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Reduces one file's bytes to statistics; `None` for binary files.
pub fn file_stats(path: String, content: &[u8], spec: &ScanSpec<'_>) -> Option<FileStats> {
    if content[..content.len().min(8192)].contains(&0) {
        return None;
    }
    let mut kind = kinds::classify(&path);
    if kind == FileKind::Implementation && kinds::looks_minified(content) {
        kind = FileKind::Generated;
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
    let probe_hits = spec.probes.map(|p| p.find(content)).unwrap_or_default();
    Some(FileStats {
        path,
        kind,
        terms: DocTerms { len, tf },
        defs,
        probe_hits,
    })
}

/// Case-insensitive search for the issue's message fragments and flags (literals only,
/// so the regex engine runs a multi-literal search rather than walking every byte).
pub struct ProbeSearch {
    re: Regex,
    index: std::collections::HashMap<Vec<u8>, u16>,
}

impl ProbeSearch {
    /// `None` when there is nothing to search for.
    pub fn new(probes: &[String]) -> Option<Self> {
        if probes.is_empty() {
            return None;
        }
        let alts: Vec<String> = probes.iter().map(|p| regex::escape(p)).collect();
        let re = Regex::new(&format!("(?i-u){}", alts.join("|"))).ok()?;
        let index = probes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_ascii_lowercase().into_bytes(), i as u16))
            .collect();
        Some(ProbeSearch { re, index })
    }

    /// Distinct probes found in `content`, each with the 1-based line of its first match.
    pub fn find(&self, content: &[u8]) -> Vec<(u16, u32)> {
        let mut out: Vec<(u16, u32)> = Vec::new();
        let (mut line, mut counted_to) = (1u32, 0usize);
        for m in self.re.find_iter(content) {
            let Some(&id) = self.index.get(&m.as_bytes().to_ascii_lowercase()) else {
                continue;
            };
            if out.iter().any(|h| h.0 == id) {
                continue;
            }
            line += content[counted_to..m.start()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u32;
            counted_to = m.start();
            out.push((id, line));
        }
        out
    }
}

/// The definition regex plus a literal-only prefilter: the full pattern starts with a
/// line anchor and a repetition, so the regex engine cannot skip ahead and walks every
/// byte, while the plain alternation of names runs on a SIMD literal search. A definition
/// match always contains one of the names, so skipping files without any changes nothing.
pub struct DefinitionSearch {
    names: Regex,
    full: Regex,
}

pub fn find_definitions(search: &DefinitionSearch, content: &[u8]) -> Vec<(String, u32)> {
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
            probes: None,
        };
        let s = file_stats("src/config.rs".into(), b"fn parse() {}\n// parse it", &spec).unwrap();
        assert_eq!(s.terms.tf, [(0, 3.0), (1, 2.0)]);
        assert_eq!(s.kind, FileKind::Implementation);
    }

    #[test]
    fn binary_files_are_skipped() {
        let q = spec_query(&["x"]);
        let vocab = Vocab::new(&q);
        let spec = ScanSpec {
            vocab: &vocab,
            path_weight: 1.0,
            definitions: None,
            probes: None,
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
            probes: None,
        };
        let files = scan(dir.path(), &spec).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/config.rs"]);
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn probes_match_case_insensitively_with_first_line() {
        let p = ProbeSearch::new(&[
            "is not defined for subcommand".into(),
            "--accept-nth".into(),
        ])
        .unwrap();
        let text = b"package cobra\n\nfunc x() {\n\tpanic(\"group id '%s' IS NOT DEFINED for subcommand\")\n}\ncase \"--accept-nth\":\n// --accept-nth again\n";
        assert_eq!(p.find(text), [(0, 4), (1, 6)]);
        assert!(p.find(b"nothing here").is_empty());
    }
}
