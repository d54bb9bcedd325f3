//! The persistent, query-independent index of one repository tree: every file's kind and
//! token count, and an inverted list of every term (file, count), so that a repeat
//! localisation on an unchanged commit reads a few megabytes instead of every file.
//!
//! Terms are the scanner's tokens. Two kinds of entry share the sorted dictionary:
//! counted terms (what BM25 sees, exactly as `scan::file_stats` counts them) and
//! *occurrence* entries, spelled with a leading `!`, that only say "this file contains
//! this run of letters": stop-word parts and letter runs that span several parts
//! (`parseConfig`). Together they list every maximal run of 2–40 ASCII letters of every
//! file, which is what [`keys`] needs to find, for a quoted message or an identifier, a
//! superset of the files that contain it; only those files are read again.
//!
//! The file format is hand-written (no serialisation crate in the lock file fits: JSON
//! would be ten times larger and slower to parse for millions of postings): a fixed header
//! (magic, version, payload length, SHA-256 of the payload), then the payload, every
//! integer little-endian or LEB128. [`decode`] checks every length, offset, order and id
//! and returns an error, never panics, on anything else.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, bail, ensure};
use ignore::{WalkBuilder, WalkState};
use sha2::{Digest, Sha256};

use super::bm25::Query;
use super::kinds::{self, FileKind};
use super::scan::read_no_follow_into;
use super::tokenize::{TokenKind, for_each_index_token, token_hash};
use super::vocab::Vocab;

const MAGIC: &[u8; 8] = b"PPLOCIDX";
/// Bump when the payload layout or the tokenizer changes: an index of another version is
/// rebuilt.
pub const VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 32;
/// The index of a repository this large is not worth keeping (nor is its build memory):
/// beyond these the localiser answers from a direct scan.
pub const MAX_FILES: usize = 500_000;
pub const MAX_POSTINGS: usize = 40_000_000;
/// Larger index files are refused unread.
pub const MAX_INDEX_BYTES: u64 = 512 * 1024 * 1024;
/// Occurrence entries (stop-word parts, multi-part letter runs) start with this byte,
/// which no counted term contains.
const OCCURRENCE: u8 = b'!';
/// Longest key the index can answer (the tokenizer drops longer letter runs).
const MAX_KEY: usize = 40;

/// One file of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedFile {
    /// Repo-relative, `/`-separated; the index is sorted by it.
    pub path: String,
    /// Byte length when indexed: a work-tree file of another length is read afresh.
    pub size: u64,
    /// `None` for a binary file (recorded so that it is not read again).
    pub kind: Option<FileKind>,
    /// Counted content tokens (the content part of BM25's document length).
    pub content_len: u32,
}

/// The index in memory (built or loaded).
#[derive(Debug, Default, PartialEq)]
pub struct RepoIndex {
    pub files: Vec<IndexedFile>,
    term_blob: Vec<u8>,
    /// Term `i` is `term_blob[term_ends[i - 1]..term_ends[i]]` (sorted, distinct).
    term_ends: Vec<u32>,
    /// Postings of term `i` are `post_starts[i]..post_starts[i + 1]`, ascending file ids.
    post_starts: Vec<u32>,
    post_file: Vec<u32>,
    post_count: Vec<u32>,
}

impl RepoIndex {
    fn term(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.term_ends[i - 1] };
        &self.term_blob[start as usize..self.term_ends[i] as usize]
    }

    fn term_count(&self) -> usize {
        self.term_ends.len()
    }

    /// Position of `term` in the dictionary.
    pub fn find(&self, term: &[u8]) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.term_count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.term(mid).cmp(term) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// First dictionary position whose term is not below `term`.
    fn lower_bound(&self, term: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.term_count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.term(mid) < term {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// `(file id, count)` of term `i`.
    pub fn postings(&self, i: usize) -> impl Iterator<Item = (u32, u32)> + '_ {
        let range = self.post_starts[i] as usize..self.post_starts[i + 1] as usize;
        self.post_file[range.clone()]
            .iter()
            .copied()
            .zip(self.post_count[range].iter().copied())
    }

    /// Ids of the files that may contain `key` (a superset of those that do), ascending.
    pub fn files_with(&self, key: &Key) -> Vec<u32> {
        let mut terms: Vec<usize> = Vec::new();
        match key {
            Key::Exact(k) => {
                terms.extend(self.find(k.as_bytes()));
                terms.extend(self.find(&occurrence(k.as_bytes())));
            }
            Key::Prefix(k) => {
                for p in [k.as_bytes().to_vec(), occurrence(k.as_bytes())] {
                    let from = self.lower_bound(&p);
                    terms.extend(
                        (from..self.term_count()).take_while(|&i| self.term(i).starts_with(&p)),
                    );
                }
            }
            Key::Suffix(k) => terms
                .extend((0..self.term_count()).filter(|&i| self.term(i).ends_with(k.as_bytes()))),
            Key::Contains(k) => {
                let k = k.as_bytes();
                terms.extend(
                    (0..self.term_count())
                        .filter(|&i| self.term(i).windows(k.len()).any(|w| w == k)),
                );
            }
        }
        let mut files: Vec<u32> = terms
            .into_iter()
            .flat_map(|t| self.postings(t).map(|p| p.0))
            .collect();
        files.sort_unstable();
        files.dedup();
        files
    }
}

fn occurrence(term: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(term.len() + 1);
    v.push(OCCURRENCE);
    v.extend_from_slice(term);
    v
}

/// What a file containing a text is sure to have in the index: a run of letters exactly,
/// or a run that starts with, ends with or contains some letters (when the text cuts the
/// run at its edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

/// Keys that every file containing `text` (ASCII case-insensitively) satisfies. A run of
/// letters inside `text` is a whole letter run of the file; one at the edge of `text` may
/// continue there, unless the caller knows the edge is a boundary (`start_bounded`: the
/// text follows whitespace, as a defined name does; `end_bounded`: it ends a word). Empty
/// when no key is selective enough: the caller must then read every file.
pub fn keys(text: &str, start_bounded: bool, end_bounded: bool) -> Vec<Key> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let run = text[start..i].to_ascii_lowercase();
        let open_start = start == 0 && !start_bounded;
        let open_end = i == bytes.len() && !end_bounded;
        let key = match (open_start, open_end) {
            (false, false) if (2..=MAX_KEY).contains(&run.len()) => Key::Exact(run),
            (false, true) if (2..=MAX_KEY).contains(&run.len()) => Key::Prefix(run),
            (true, false) if (2..=MAX_KEY).contains(&run.len()) => Key::Suffix(run),
            (true, true) if (2..=MAX_KEY).contains(&run.len()) => Key::Contains(run),
            _ => continue,
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// Ids of the files that may contain `text`: the intersection over its keys; `None` when
/// it has no usable key (every file may).
pub fn candidates(
    index: &RepoIndex,
    text: &str,
    start_bounded: bool,
    end_bounded: bool,
) -> Option<Vec<u32>> {
    intersect(
        keys(text, start_bounded, end_bounded)
            .iter()
            .map(|k| index.files_with(k))
            .collect(),
    )
}

/// Ids of the files that may define `ident`. A definition names it case-sensitively as a
/// whole identifier, so such a file has every token the identifier itself tokenises to
/// (`load_config`: `load`, `config` and `loadconfig`), which is far more selective than
/// its words; other names fall back to [`candidates`].
pub fn definition_candidates(index: &RepoIndex, ident: &str) -> Option<Vec<u32>> {
    let plain = ident
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain {
        return candidates(index, ident, true, true);
    }
    let stop = Vocab::new(&Query::default());
    let mut terms: Vec<Vec<u8>> = Vec::new();
    for_each_index_token(ident.as_bytes(), |t, hash, kind| {
        let counted = kind == TokenKind::Whole
            || (kind == TokenKind::Part && !stop.get(hash, t).is_some_and(|e| e.stop));
        terms.push(if counted { t.to_vec() } else { occurrence(t) });
    });
    intersect(
        terms
            .iter()
            .map(|t| {
                index
                    .find(t)
                    .map(|i| index.postings(i).map(|p| p.0).collect())
                    .unwrap_or_default()
            })
            .collect(),
    )
}

/// The intersection of ascending id lists; `None` for no lists.
fn intersect(mut sets: Vec<Vec<u32>>) -> Option<Vec<u32>> {
    sets.sort_by_key(Vec::len);
    let mut sets = sets.into_iter();
    let mut acc = sets.next()?;
    for s in sets {
        acc.retain(|f| s.binary_search(f).is_ok());
        if acc.is_empty() {
            break;
        }
    }
    Some(acc)
}

// ---------------------------------------------------------------------------------------
// Building

/// A growable open-addressing table from token bytes to a dense id (the tokenizer's hash
/// is reused, as in `vocab`).
#[derive(Default)]
struct TermTable {
    slots: Vec<u32>,
    hashes: Vec<u64>,
    blob: Vec<u8>,
    ends: Vec<u32>,
}

const EMPTY: u32 = u32::MAX;

impl TermTable {
    fn bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.blob[start..self.ends[i] as usize]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn id(&mut self, hash: u64, key: &[u8]) -> u32 {
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (hash >> 32) as usize & mask;
        loop {
            let id = self.slots[i];
            if id == EMPTY {
                let new = self.len() as u32;
                self.slots[i] = new;
                self.hashes.push(hash);
                self.blob.extend_from_slice(key);
                self.ends.push(self.blob.len() as u32);
                return new;
            }
            if self.hashes[id as usize] == hash && self.bytes(id) == key {
                return id;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        self.slots = vec![EMPTY; size];
        let mask = size - 1;
        for (id, &h) in self.hashes.iter().enumerate() {
            let mut i = (h >> 32) as usize & mask;
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = id as u32;
        }
    }
}

struct BuiltFile {
    meta: IndexedFile,
    /// Range into the builder's postings.
    postings: std::ops::Range<usize>,
}

/// One walker thread's share of the index, with thread-local term ids.
struct LocalBuilder {
    stop: Vocab,
    table: TermTable,
    files: Vec<BuiltFile>,
    post_term: Vec<u32>,
    post_count: Vec<u32>,
    counts: Vec<u32>,
    touched: Vec<u32>,
}

impl Default for LocalBuilder {
    fn default() -> Self {
        LocalBuilder {
            stop: Vocab::new(&Query::default()),
            table: TermTable::default(),
            files: Vec::new(),
            post_term: Vec::new(),
            post_count: Vec::new(),
            counts: Vec::new(),
            touched: Vec::new(),
        }
    }
}

impl LocalBuilder {
    fn add_file(&mut self, path: String, content: &[u8]) {
        let start = self.post_term.len();
        let size = content.len() as u64;
        if content[..content.len().min(8192)].contains(&0) {
            self.files.push(BuiltFile {
                meta: IndexedFile {
                    path,
                    size,
                    kind: None,
                    content_len: 0,
                },
                postings: start..start,
            });
            return;
        }
        let mut kind = kinds::classify(&path);
        if kind == FileKind::Implementation && kinds::looks_minified(content) {
            kind = FileKind::Generated;
        }
        let mut len = 0u32;
        let mut key = [0u8; 65];
        for_each_index_token(content, |t, hash, tk| {
            let counted = tk == TokenKind::Whole
                || (tk == TokenKind::Part && !self.stop.get(hash, t).is_some_and(|e| e.stop));
            let id = if counted {
                len = len.saturating_add(1);
                self.table.id(hash, t)
            } else {
                key[0] = OCCURRENCE;
                key[1..=t.len()].copy_from_slice(t);
                let k = &key[..=t.len()];
                self.table.id(token_hash(k), k)
            };
            let slot = id as usize;
            if slot >= self.counts.len() {
                self.counts.resize(slot + 1, 0);
            }
            if self.counts[slot] == 0 {
                self.touched.push(id);
            }
            self.counts[slot] = self.counts[slot].saturating_add(1);
        });
        for &id in &self.touched {
            self.post_term.push(id);
            self.post_count
                .push(std::mem::take(&mut self.counts[id as usize]));
        }
        self.touched.clear();
        self.files.push(BuiltFile {
            meta: IndexedFile {
                path,
                size,
                kind: Some(kind),
                content_len: len,
            },
            postings: start..self.post_term.len(),
        });
    }
}

/// Hands a walker thread's builder back when the thread's visitor is dropped.
struct Sink<'a> {
    builder: LocalBuilder,
    out: &'a Mutex<Vec<LocalBuilder>>,
}

impl Drop for Sink<'_> {
    fn drop(&mut self) {
        let b = std::mem::take(&mut self.builder);
        if let Ok(mut out) = self.out.lock() {
            out.push(b);
        }
    }
}

/// Why no index was built.
#[derive(Debug)]
pub enum BuildError {
    TooLarge(String),
    Io(anyhow::Error),
}

/// Walks `root` like `scan::scan` (ignore rules, no symlinks, files up to 1 MiB) and
/// indexes every file.
pub fn build(root: &Path) -> Result<RepoIndex, BuildError> {
    let meta = std::fs::metadata(root)
        .with_context(|| format!("reading {}", root.display()))
        .map_err(BuildError::Io)?;
    if !meta.is_dir() {
        return Err(BuildError::Io(anyhow::anyhow!(
            "{} is not a directory",
            root.display()
        )));
    }
    let out: Mutex<Vec<LocalBuilder>> = Mutex::new(Vec::new());
    let postings = AtomicUsize::new(0);
    let files = AtomicUsize::new(0);
    let too_large = AtomicBool::new(false);
    WalkBuilder::new(root)
        .require_git(false)
        // No `max_filesize`: it costs a `stat` per file, and the read checks the size
        // on the open file instead (the same 1 MiB limit).
        .build_parallel()
        .run(|| {
            let mut content = Vec::new();
            let mut sink = Sink {
                builder: LocalBuilder::default(),
                out: &out,
            };
            let (postings, files, too_large) = (&postings, &files, &too_large);
            Box::new(move |entry| {
                let Ok(entry) = entry else {
                    return WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return WalkState::Continue;
                }
                let Some(rel) = super::scan::relative(root, entry.path()) else {
                    return WalkState::Continue;
                };
                if read_no_follow_into(entry.path(), &mut content).is_err() {
                    return WalkState::Continue;
                }
                let before = sink.builder.post_term.len();
                sink.builder.add_file(rel, &content);
                let added = sink.builder.post_term.len() - before;
                if postings.fetch_add(added, Ordering::Relaxed) + added > MAX_POSTINGS
                    || files.fetch_add(1, Ordering::Relaxed) + 1 > MAX_FILES
                {
                    too_large.store(true, Ordering::Relaxed);
                    return WalkState::Quit;
                }
                WalkState::Continue
            })
        });
    if too_large.load(Ordering::Relaxed) {
        return Err(BuildError::TooLarge(format!(
            "more than {MAX_FILES} files or {MAX_POSTINGS} postings"
        )));
    }
    let builders = out.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(merge(builders))
}

/// Merges the threads' builders: one sorted dictionary, files sorted by path, postings
/// grouped by term in file order (a counting sort: no comparison sort over postings).
fn merge(mut builders: Vec<LocalBuilder>) -> RepoIndex {
    let mut global = TermTable::default();
    let remap: Vec<Vec<u32>> = builders
        .iter()
        .map(|b| {
            (0..b.table.len() as u32)
                .map(|id| global.id(b.table.hashes[id as usize], b.table.bytes(id)))
                .collect()
        })
        .collect();
    let mut order: Vec<u32> = (0..global.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| global.bytes(a).cmp(global.bytes(b)));
    let mut rank = vec![0u32; order.len()];
    for (r, &id) in order.iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    let mut term_blob = Vec::with_capacity(global.blob.len());
    let mut term_ends = Vec::with_capacity(order.len());
    for &id in &order {
        term_blob.extend_from_slice(global.bytes(id));
        term_ends.push(term_blob.len() as u32);
    }
    let mut all: Vec<(usize, usize)> = builders
        .iter()
        .enumerate()
        .flat_map(|(b, lb)| (0..lb.files.len()).map(move |f| (b, f)))
        .collect();
    all.sort_unstable_by(|a, b| {
        builders[a.0].files[a.1]
            .meta
            .path
            .cmp(&builders[b.0].files[b.1].meta.path)
    });
    let mut per_term = vec![0u32; order.len() + 1];
    for (bi, b) in builders.iter().enumerate() {
        for &t in &b.post_term {
            per_term[rank[remap[bi][t as usize] as usize] as usize + 1] += 1;
        }
    }
    for i in 1..per_term.len() {
        per_term[i] += per_term[i - 1];
    }
    let total = per_term[order.len()] as usize;
    let (mut post_file, mut post_count) = (vec![0u32; total], vec![0u32; total]);
    let mut next = per_term.clone();
    let mut files = Vec::with_capacity(all.len());
    for (file_id, &(b, f)) in all.iter().enumerate() {
        let lb = &builders[b];
        let range = lb.files[f].postings.clone();
        for p in range {
            let t = rank[remap[b][lb.post_term[p] as usize] as usize] as usize;
            let at = next[t] as usize;
            post_file[at] = file_id as u32;
            post_count[at] = lb.post_count[p];
            next[t] += 1;
        }
    }
    for &(b, f) in &all {
        let meta = std::mem::replace(
            &mut builders[b].files[f].meta,
            IndexedFile {
                path: String::new(),
                size: 0,
                kind: None,
                content_len: 0,
            },
        );
        files.push(meta);
    }
    RepoIndex {
        files,
        term_blob,
        term_ends,
        post_starts: per_term,
        post_file,
        post_count,
    }
}

// ---------------------------------------------------------------------------------------
// Encoding

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The index as file bytes (header + payload).
pub fn encode(index: &RepoIndex) -> Vec<u8> {
    let mut p = Vec::with_capacity(index.post_file.len() * 3 + index.files.len() * 48);
    put_varint(&mut p, index.files.len() as u64);
    for f in &index.files {
        put_varint(&mut p, f.path.len() as u64);
        p.extend_from_slice(f.path.as_bytes());
        put_varint(&mut p, f.size);
        p.push(f.kind.map_or(u8::MAX, FileKind::code));
        put_varint(&mut p, u64::from(f.content_len));
    }
    put_varint(&mut p, index.term_count() as u64);
    for t in 0..index.term_count() {
        let term = index.term(t);
        p.push(term.len() as u8);
        p.extend_from_slice(term);
        let n = index.post_starts[t + 1] - index.post_starts[t];
        put_varint(&mut p, u64::from(n));
        let mut prev = 0u32;
        for (i, (file, count)) in index.postings(t).enumerate() {
            put_varint(&mut p, u64::from(if i == 0 { file } else { file - prev }));
            put_varint(&mut p, u64::from(count));
            prev = file;
        }
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + p.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(p.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&p));
    out.extend_from_slice(&p);
    out
}

/// A bounds-checked cursor: every read past the end is an error.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            bail!("truncated at byte {}", self.pos);
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> anyhow::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("overlong integer at byte {}", self.pos)
    }

    /// A count that must fit in what is left (each item takes at least `min_bytes`).
    fn count(&mut self, min_bytes: usize, max: usize) -> anyhow::Result<usize> {
        let n = self.varint()?;
        let left = (self.buf.len() - self.pos) as u64;
        ensure!(
            n <= max as u64 && n.saturating_mul(min_bytes as u64) <= left,
            "count {n} does not fit"
        );
        Ok(n as usize)
    }

    fn u32_value(&mut self) -> anyhow::Result<u32> {
        u32::try_from(self.varint()?).context("value out of range")
    }
}

/// Parses and validates file bytes; any inconsistency is an error naming it.
pub fn decode(bytes: &[u8]) -> anyhow::Result<RepoIndex> {
    ensure!(bytes.len() >= HEADER_BYTES, "shorter than the header");
    ensure!(&bytes[..8] == MAGIC, "not an index file");
    let version = u32::from_le_bytes(bytes[8..12].try_into()?);
    ensure!(
        version == VERSION,
        "index version {version}, expected {VERSION}"
    );
    let len = u64::from_le_bytes(bytes[16..24].try_into()?);
    let payload = &bytes[HEADER_BYTES..];
    ensure!(
        payload.len() as u64 == len,
        "payload is {} bytes, header says {len}",
        payload.len()
    );
    ensure!(
        Sha256::digest(payload).as_slice() == &bytes[24..56],
        "checksum mismatch"
    );
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let n_files = r.count(4, MAX_FILES)?;
    let mut files: Vec<IndexedFile> = Vec::with_capacity(n_files);
    for _ in 0..n_files {
        let plen = r.count(1, 4096)?;
        let path = std::str::from_utf8(r.take(plen)?)
            .context("path is not UTF-8")?
            .to_owned();
        ensure!(
            files.last().is_none_or(|p| p.path < path),
            "paths not sorted"
        );
        let size = r.varint()?;
        let code = r.byte()?;
        let kind = match code {
            u8::MAX => None,
            c => Some(FileKind::from_code(c).context("unknown file kind")?),
        };
        let content_len = r.u32_value()?;
        files.push(IndexedFile {
            path,
            size,
            kind,
            content_len,
        });
    }
    let n_terms = r.count(2, usize::MAX)?;
    let mut index = RepoIndex {
        files,
        ..RepoIndex::default()
    };
    index.post_starts.push(0);
    for _ in 0..n_terms {
        let tlen = usize::from(r.byte()?);
        let term = r.take(tlen)?;
        ensure!(!term.is_empty(), "empty term");
        let prev = index.term_count().checked_sub(1).map(|i| index.term(i));
        ensure!(prev.is_none_or(|p| p < term), "terms not sorted");
        index.term_blob.extend_from_slice(term);
        index.term_ends.push(u32::try_from(index.term_blob.len())?);
        let n = r.count(2, n_files)?;
        let mut file = 0u32;
        for i in 0..n {
            let delta = r.u32_value()?;
            ensure!(i == 0 || delta > 0, "postings not ascending");
            file = file.checked_add(delta).context("file id overflow")?;
            ensure!((file as usize) < n_files, "file id out of range");
            let count = r.u32_value()?;
            ensure!(count > 0, "zero count");
            index.post_file.push(file);
            index.post_count.push(count);
        }
        ensure!(index.post_file.len() <= MAX_POSTINGS, "too many postings");
        index
            .post_starts
            .push(u32::try_from(index.post_file.len())?);
    }
    ensure!(r.pos == payload.len(), "trailing bytes");
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let full = dir.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        dir
    }

    fn sample() -> RepoIndex {
        let dir = tree(&[
            (
                "src/config.rs",
                "fn parse_config() {}\n// the parseConfig is not defined for subcommand",
            ),
            ("src/other.rs", "fn unrelated() {}"),
            ("logo.png", "\u{0}\u{0}binary"),
        ]);
        build(dir.path()).unwrap()
    }

    #[test]
    fn counts_match_the_scanner_and_binaries_are_recorded() {
        let idx = sample();
        let paths: Vec<&str> = idx.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["logo.png", "src/config.rs", "src/other.rs"]);
        assert_eq!(idx.files[0].kind, None);
        let t = idx.find(b"config").unwrap();
        assert_eq!(idx.postings(t).collect::<Vec<_>>(), [(1, 2)]);
        // "the", "is", "not", "for" are stop words: not counted, but recorded.
        assert!(idx.find(b"!not").is_some() && idx.find(b"not").is_none());
        // parse, config, parseconfig, parse, config, parseconfig, defined, subcommand, fn
        // is a stop word; "unrelated" is in the other file.
        assert_eq!(idx.files[1].content_len, 8);
    }

    #[test]
    fn encoding_round_trips_and_damage_is_detected() {
        let idx = sample();
        let bytes = encode(&idx);
        assert_eq!(decode(&bytes).unwrap(), idx);
        for cut in [0, 10, HEADER_BYTES, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(
            decode(&flipped)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        let mut old = bytes.clone();
        old[8] = 0;
        assert!(decode(&old).unwrap_err().to_string().contains("version"));
    }

    #[test]
    fn keys_find_a_superset_of_files_containing_a_message() {
        let idx = sample();
        assert_eq!(
            keys("is not defined for subcommand", false, false),
            [
                Key::Suffix("is".into()),
                Key::Exact("not".into()),
                Key::Exact("defined".into()),
                Key::Exact("for".into()),
                Key::Prefix("subcommand".into()),
            ]
        );
        assert_eq!(
            keys("load_config", true, true),
            [Key::Exact("load".into()), Key::Exact("config".into())]
        );
        assert_eq!(
            candidates(&idx, "IS NOT DEFINED for sub", false, false),
            Some(vec![1])
        );
        // "parseconfig" is a multi-part letter run in the file: found case-insensitively.
        assert_eq!(
            candidates(&idx, "the PARSECONFIG is", false, false),
            Some(vec![1])
        );
        assert_eq!(candidates(&idx, "unrelat", false, false), Some(vec![2]));
        assert_eq!(
            candidates(&idx, "nowhere to be found", false, false),
            Some(vec![])
        );
        assert_eq!(definition_candidates(&idx, "parse_config"), Some(vec![1]));
        assert_eq!(definition_candidates(&idx, "parseConfig"), Some(vec![1]));
        assert_eq!(definition_candidates(&idx, "unrelated"), Some(vec![2]));
        assert_eq!(definition_candidates(&idx, "parse_unrelated"), Some(vec![]));
        assert_eq!(candidates(&idx, "--x", false, false), None);
        assert_eq!(definition_candidates(&idx, "parse_config"), Some(vec![1]));
        assert_eq!(definition_candidates(&idx, "parseConfig"), Some(vec![1]));
        assert_eq!(definition_candidates(&idx, "unrelated"), Some(vec![2]));
        assert_eq!(definition_candidates(&idx, "parse_unrelated"), Some(vec![]));
        assert_eq!(definition_candidates(&idx, "the"), Some(vec![1]));
        assert_eq!(candidates(&idx, "404", false, false), None);
    }
}
