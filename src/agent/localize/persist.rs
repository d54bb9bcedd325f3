//! Localisation backed by a persistent index per repository and commit.
//!
//! Layout: one directory per repository (the pipeline puts it next to the git mirror),
//! holding `<commit>.idx` files; the newest [`IndexCache::keep`] by modification time stay,
//! and a reuse refreshes the time. The index is built from repository files, which are
//! hostile input, so: it is bounded (`index::MAX_*`), written to a temporary file in the
//! same directory and renamed into place (a reader never sees half a file), checked on
//! load (magic, version, length, SHA-256, then every offset), rebuilt when anything is
//! wrong, and never read through a symlink: a symlinked directory disables the index, a
//! symlinked file is replaced.
//!
//! A session's work tree is not the bare commit: the reproduction step ran in it. So a
//! reuse still walks the tree (names and sizes only, no reads): a file the index does not
//! know, or knows with another size, is read and scored afresh, and an indexed file that
//! is gone is left out (an edit that keeps a file's size is not noticed: the price of not
//! reading every file). The ranking is the same as [`super::localize`]'s; only messages
//! and definitions are looked for in fewer files (those the index says contain their
//! words, see `index::keys`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use ignore::{WalkBuilder, WalkState};

use super::bm25::DocTerms;
use super::index::{self, BuildError, RepoIndex};
use super::scan::{self, FileStats, MAX_FILE_BYTES, read_no_follow};
use super::tokenize::{TokenKind, for_each_raw_token};
use super::{Candidate, LocalizeInput, Prepared};

/// Indexes kept per repository when none is given.
pub const DEFAULT_KEEP: usize = 4;
/// Temporary files older than this are leftovers of an interrupted write.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// Where one repository's indexes live.
#[derive(Debug, Clone)]
pub struct IndexCache {
    dir: PathBuf,
    keep: usize,
}

/// What happened to the index on one localisation (shown in the session's event log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexUse {
    /// A valid index of this commit was read; no unchanged file was read.
    Reused,
    /// There was none: one was built and saved.
    Built,
    /// The stored one was unusable (the reason), so it was rebuilt and replaced.
    Rebuilt(String),
    /// Built for this request but not kept (the reason).
    NotSaved(String),
    /// No index at all (the reason): every file was read, as by [`super::localize`].
    Unavailable(String),
    /// None yet: every file was read, and the index is left to a [`PendingIndex`].
    Deferred,
}

impl IndexUse {
    /// One sentence for the event log.
    pub fn describe(&self) -> String {
        match self {
            IndexUse::Reused => "reused the stored index of this commit".to_owned(),
            IndexUse::Built => "built and stored an index of this commit".to_owned(),
            IndexUse::Rebuilt(why) => format!("rebuilt the index of this commit ({why})"),
            IndexUse::NotSaved(why) => format!("indexed this commit without storing it ({why})"),
            IndexUse::Unavailable(why) => format!("read every file, no index ({why})"),
            IndexUse::Deferred => {
                "no index of this commit yet: read every file; the index is built in the background"
                    .to_owned()
            }
        }
    }
}

/// Ranked files and what happened to the index.
#[derive(Debug, Clone)]
pub struct Localized {
    pub candidates: Vec<Candidate>,
    pub index: IndexUse,
    /// Files whose content this request read (to build the index, because the index did
    /// not know them, or to look for a message or a definition).
    pub files_read: usize,
}

impl IndexCache {
    /// Indexes under `dir` (created on first use), keeping [`DEFAULT_KEEP`].
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            keep: DEFAULT_KEEP,
        }
    }

    /// Keeps the newest `keep` indexes (at least one).
    pub fn with_keep(mut self, keep: usize) -> Self {
        self.keep = keep.max(1);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index file of `commit`; refuses anything but a hex commit id.
    pub fn index_path(&self, commit: &str) -> Result<PathBuf, String> {
        let hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || !(7..=64).contains(&commit.len()) {
            return Err(format!("`{commit}` is not a commit id"));
        }
        Ok(self
            .dir
            .join(format!("{}.idx", commit.to_ascii_lowercase())))
    }

    /// Creates the directory if needed; refuses a symlink or a non-directory.
    fn ensure_dir(&self) -> Result<(), String> {
        let check = |m: std::fs::Metadata| {
            if m.file_type().is_symlink() {
                Err(format!("{} is a symlink", self.dir.display()))
            } else if !m.is_dir() {
                Err(format!("{} is not a directory", self.dir.display()))
            } else {
                Ok(())
            }
        };
        match std::fs::symlink_metadata(&self.dir) {
            Ok(m) => check(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.dir)
                    .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
                check(std::fs::symlink_metadata(&self.dir).map_err(|e| e.to_string())?)
            }
            Err(e) => Err(format!("{}: {e}", self.dir.display())),
        }
    }
}

/// [`super::localize`] for the work tree `repo_root` of `commit`, reusing the stored
/// index of that commit when there is a valid one and storing a new one otherwise.
pub fn localize_cached(
    repo_root: &Path,
    input: &LocalizeInput<'_>,
    cache: &IndexCache,
    commit: &str,
) -> anyhow::Result<Localized> {
    let prepared = Prepared::new(input);
    let path = match cache.ensure_dir().and_then(|()| cache.index_path(commit)) {
        Ok(p) => p,
        Err(why) => return direct(repo_root, input, &prepared, IndexUse::Unavailable(why)),
    };
    let stored = match load(&path) {
        Ok(index) => return reuse(repo_root, input, &prepared, &index),
        Err(stored) => stored,
    };
    let (index, used) = match build_and_save(repo_root, cache, &path, stored) {
        Ok(built) => built,
        Err(BuildError::TooLarge(why)) => {
            return direct(repo_root, input, &prepared, IndexUse::Unavailable(why));
        }
        Err(BuildError::Io(e)) => return Err(e),
    };
    let (files, reads) = stats_from_index(repo_root, &index, None, &prepared);
    Ok(Localized {
        candidates: prepared.rank(&files, input.limit),
        index: used,
        files_read: index.files.len() + reads,
    })
}

/// Like [`localize_cached`], but a missing or unusable index is not built on the caller's
/// time: the answer comes from a plain scan (as fast as [`super::localize`]) and the index is
/// handed back as a [`PendingIndex`], which the pipeline builds while it waits on the model.
/// Building it inline costs about 15 % more than the scan, on the first localisation of every
/// commit, where latency counts.
pub fn localize_deferring_index(
    repo_root: &Path,
    input: &LocalizeInput<'_>,
    cache: &IndexCache,
    commit: &str,
) -> anyhow::Result<(Localized, Option<PendingIndex>)> {
    let prepared = Prepared::new(input);
    let path = match cache.ensure_dir().and_then(|()| cache.index_path(commit)) {
        Ok(p) => p,
        Err(why) => {
            let localized = direct(repo_root, input, &prepared, IndexUse::Unavailable(why))?;
            return Ok((localized, None));
        }
    };
    match load(&path) {
        Ok(index) => Ok((reuse(repo_root, input, &prepared, &index)?, None)),
        Err(stored) => {
            let localized = direct(repo_root, input, &prepared, IndexUse::Deferred)?;
            let pending = PendingIndex {
                repo_root: repo_root.to_owned(),
                cache: cache.clone(),
                path,
                stored,
            };
            Ok((localized, Some(pending)))
        }
    }
}

/// An index still to be built and stored for one commit's work tree.
#[derive(Debug)]
pub struct PendingIndex {
    repo_root: PathBuf,
    cache: IndexCache,
    path: PathBuf,
    stored: Missing,
}

impl PendingIndex {
    /// Builds and stores the index (blocking); says what happened. A work tree that changes
    /// or vanishes meanwhile only costs reads later: a reuse reads afresh every file the
    /// index does not know, or knows with another size.
    pub fn build(self) -> IndexUse {
        match build_and_save(&self.repo_root, &self.cache, &self.path, self.stored) {
            Ok((_, used)) => used,
            Err(BuildError::TooLarge(why)) => IndexUse::Unavailable(why),
            Err(BuildError::Io(e)) => IndexUse::NotSaved(format!("{e:#}")),
        }
    }
}

/// Ranks from a valid stored index, reading only what it does not know.
fn reuse(
    repo_root: &Path,
    input: &LocalizeInput<'_>,
    prepared: &Prepared,
    index: &RepoIndex,
) -> anyhow::Result<Localized> {
    let present = walk_sizes(repo_root)?;
    let (files, reads) = stats_from_index(repo_root, index, Some(&present), prepared);
    Ok(Localized {
        candidates: prepared.rank(&files, input.limit),
        index: IndexUse::Reused,
        files_read: reads,
    })
}

fn build_and_save(
    repo_root: &Path,
    cache: &IndexCache,
    path: &Path,
    stored: Missing,
) -> Result<(RepoIndex, IndexUse), BuildError> {
    let index = index::build(repo_root)?;
    let used = match save(cache, path, &index) {
        Err(why) => IndexUse::NotSaved(why),
        Ok(()) => match stored {
            Missing::No => IndexUse::Built,
            Missing::Invalid(why) => IndexUse::Rebuilt(why),
        },
    };
    Ok((index, used))
}

fn direct(
    repo_root: &Path,
    input: &LocalizeInput<'_>,
    prepared: &Prepared,
    used: IndexUse,
) -> anyhow::Result<Localized> {
    let files = scan::scan(repo_root, &prepared.spec())?;
    Ok(Localized {
        candidates: prepared.rank(&files, input.limit),
        index: used,
        files_read: files.len(),
    })
}

/// Why no stored index was used.
#[derive(Debug)]
enum Missing {
    No,
    Invalid(String),
}

fn load(path: &Path) -> Result<RepoIndex, Missing> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Missing::No),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Missing::Invalid("the index path is a symlink".into()));
        }
        Err(e) => return Err(Missing::Invalid(format!("cannot open it: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| Missing::Invalid(e.to_string()))?;
    if !meta.is_file() {
        return Err(Missing::Invalid("not a regular file".into()));
    }
    if meta.len() > index::MAX_INDEX_BYTES {
        return Err(Missing::Invalid(format!(
            "{} bytes is too large",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| Missing::Invalid(format!("reading it: {e}")))?;
    let index = index::decode(&bytes).map_err(|e| Missing::Invalid(format!("{e:#}")))?;
    // The modification time orders eviction: a reused index is recent.
    let _ = file.set_modified(SystemTime::now());
    Ok(index)
}

/// Writes the index atomically (temporary file + rename), then evicts old ones.
fn save(cache: &IndexCache, path: &Path, index: &RepoIndex) -> Result<(), String> {
    let bytes = index::encode(index);
    if bytes.len() as u64 > index::MAX_INDEX_BYTES {
        return Err(format!("{} bytes is over the limit", bytes.len()));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".idx-part")
        .tempfile_in(&cache.dir)
        .map_err(|e| format!("creating a temporary file: {e}"))?;
    // No fsync: after a crash a short or empty file fails its checksum and is rebuilt.
    tmp.write_all(&bytes)
        .map_err(|e| format!("writing the index: {e}"))?;
    tmp.persist(path)
        .map_err(|e| format!("renaming the index into place: {e}"))?;
    evict(&cache.dir, cache.keep);
    Ok(())
}

/// Keeps the `keep` most recently used indexes and removes stale temporary files.
fn evict(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut indexes: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(meta) = entry.metadata() else { continue };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if name.ends_with(".idx-part") {
            if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                let _ = std::fs::remove_file(entry.path());
            }
        } else if name.ends_with(".idx") {
            indexes.push((modified, entry.path()));
        }
    }
    indexes.sort_by_key(|i| std::cmp::Reverse(i.0));
    for (_, path) in indexes.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

/// The work tree's files (ignore rules and limits as in `scan`) with their sizes, sorted.
fn walk_sizes(root: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let meta = std::fs::metadata(root)?;
    anyhow::ensure!(meta.is_dir(), "{} is not a directory", root.display());
    let (tx, rx) = mpsc::channel::<(String, u64)>();
    WalkBuilder::new(root)
        .require_git(false)
        .max_filesize(Some(MAX_FILE_BYTES))
        .build_parallel()
        .run(|| {
            let tx = tx.clone();
            Box::new(move |entry| {
                let Ok(entry) = entry else {
                    return WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return WalkState::Continue;
                }
                if let (Some(rel), Ok(meta)) =
                    (scan::relative(root, entry.path()), entry.metadata())
                {
                    let _ = tx.send((rel, meta.len()));
                }
                WalkState::Continue
            })
        });
    drop(tx);
    let mut files: Vec<(String, u64)> = rx.into_iter().collect();
    files.sort();
    Ok(files)
}

/// Where a file's statistics come from.
enum Source {
    Indexed(usize),
    Fresh,
}

/// The same statistics `scan::scan` computes, from the index where it is current.
/// `present`: the work tree's files and sizes (`None`: the index was just built from it).
/// Also returns how many files were read.
fn stats_from_index(
    root: &Path,
    index: &RepoIndex,
    present: Option<&[(String, u64)]>,
    prepared: &Prepared,
) -> (Vec<FileStats>, usize) {
    let spec = prepared.spec();
    let sources = match present {
        None => index
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), Source::Indexed(i)))
            .collect(),
        Some(present) => match_present(index, present),
    };
    let content_tf = query_term_counts(index, prepared);
    let must_read = files_to_read(index, prepared);
    let mut out = Vec::with_capacity(sources.len());
    let mut reads = 0;
    for (path, source) in sources {
        let stats = match source {
            Source::Indexed(i) => {
                let f = &index.files[i];
                let Some(kind) = f.kind else { continue };
                let mut stats = FileStats {
                    terms: with_path_terms(&path, f.content_len, &content_tf[i], &spec),
                    path,
                    kind,
                    defs: Vec::new(),
                    probe_hits: Vec::new(),
                };
                if must_read.as_ref().is_none_or(|m| m[i])
                    && let Ok(content) = read_no_follow(&root.join(&stats.path))
                {
                    reads += 1;
                    stats.defs = spec
                        .definitions
                        .map(|d| scan::find_definitions(d, &content))
                        .unwrap_or_default();
                    stats.probe_hits = spec.probes.map(|p| p.find(&content)).unwrap_or_default();
                }
                Some(stats)
            }
            Source::Fresh => {
                reads += 1;
                read_no_follow(&root.join(&path))
                    .ok()
                    .and_then(|content| scan::file_stats(path, &content, &spec))
            }
        };
        out.extend(stats);
    }
    (out, reads)
}

/// Pairs the work tree's files with the index's (both sorted by path).
fn match_present(index: &RepoIndex, present: &[(String, u64)]) -> Vec<(String, Source)> {
    let mut out = Vec::with_capacity(present.len());
    let mut i = 0;
    for (path, size) in present {
        while i < index.files.len() && index.files[i].path < *path {
            i += 1;
        }
        let source = match index.files.get(i) {
            Some(f) if f.path == *path && f.size == *size => Source::Indexed(i),
            _ => Source::Fresh,
        };
        out.push((path.clone(), source));
    }
    out
}

/// Per indexed file, its content counts of the query's terms, ascending term id.
fn query_term_counts(index: &RepoIndex, prepared: &Prepared) -> Vec<Vec<(u32, f64)>> {
    let mut tf: Vec<Vec<(u32, f64)>> = vec![Vec::new(); index.files.len()];
    for (id, term) in (0u32..).zip(&prepared.query.terms) {
        if let Some(t) = index.find(term.as_bytes()) {
            for (file, count) in index.postings(t) {
                tf[file as usize].push((id, f64::from(count)));
            }
        }
    }
    tf
}

/// Adds the path's tokens, as `scan::file_stats` counts them, to the content counts.
fn with_path_terms(
    path: &str,
    content_len: u32,
    content_tf: &[(u32, f64)],
    spec: &scan::ScanSpec<'_>,
) -> DocTerms {
    let mut tf = content_tf.to_vec();
    let mut len = f64::from(content_len);
    for_each_raw_token(path.as_bytes(), |t, hash, kind| {
        let entry = spec.vocab.get(hash, t);
        if kind == TokenKind::Part && entry.is_some_and(|e| e.stop) {
            return;
        }
        len += spec.path_weight;
        if let Some(id) = entry.and_then(|e| e.term) {
            match tf.binary_search_by_key(&id, |p| p.0) {
                Ok(at) => tf[at].1 += spec.path_weight,
                Err(at) => tf.insert(at, (id, spec.path_weight)),
            }
        }
    });
    DocTerms { len, tf }
}

/// Indexed files that may define an identifier or contain a probe; `None`: read every
/// file (a probe with no word the index can look up).
fn files_to_read(index: &RepoIndex, prepared: &Prepared) -> Option<Vec<bool>> {
    let mut read = vec![false; index.files.len()];
    let searches = prepared
        .definitions
        .as_ref()
        .map(|_| prepared.idents.iter().map(|i| (i, true)))
        .into_iter()
        .flatten()
        .chain(
            prepared
                .probes
                .as_ref()
                .map(|_| prepared.probe_texts.iter().map(|p| (p, false)))
                .into_iter()
                .flatten(),
        );
    for (text, is_ident) in searches {
        let found = if is_ident {
            index::definition_candidates(index, text)?
        } else {
            index::candidates(index, text, false, false)?
        };
        for f in found {
            read[f as usize] = true;
        }
    }
    Some(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_take_only_commit_ids() {
        let cache = IndexCache::new(PathBuf::from("/cache/x"));
        assert_eq!(
            cache.index_path("ABCDEF1").unwrap(),
            PathBuf::from("/cache/x/abcdef1.idx")
        );
        for bad in ["", "../../etc", "abc", "0123456789abcdef/x", "zzzzzzzz"] {
            assert!(cache.index_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn eviction_keeps_the_most_recent() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.idx", "b.idx", "c.idx"].iter().enumerate() {
            let p = dir.path().join(name);
            std::fs::write(&p, "x").unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i as u64))
                .unwrap();
        }
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        evict(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["b.idx", "c.idx", "other.txt"]);
    }
}
