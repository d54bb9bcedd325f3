//! Dependency caches, one directory per repository, kept across sessions.
//!
//! Real projects download their dependencies in `setup_command` (with network) and use them
//! offline in the repro, test and verify runs. Each repository gets its own directory under
//! the cache root (`<PATCHPILOT_DATA_DIR>/caches/<key>` unless `PATCHPILOT_CACHE_DIR` says
//! otherwise), holding a writable `CARGO_HOME` (registry and git checkouts; the toolchain's
//! own `bin` stays on `PATH` and `RUSTUP_HOME` stays read-only), the npm cache, the pip cache,
//! Go's module and build caches, Maven's local repository and Gradle's user home. The backend
//! binds it at the same absolute path: read-write for set-up, read-only for every other run.
//!
//! Repositories never share a directory (a hostile repository could otherwise poison another
//! one's dependencies). Each use touches `<key>/.last-used`; after a writable run the total size
//! is measured and whole repositories are removed, least recently used first, until the total
//! is under `PATCHPILOT_CACHE_MAX_BYTES`. A repository whose cache is in use is never evicted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::identity::{UidLease, with_dirs_lent};
use super::quota::DiskQuota;
pub use super::quota::tree_bytes;
use super::{RunOutcome, SandboxCommand, SandboxError};

/// The directory every repository's cache lives under, with its size cap.
#[derive(Debug, Clone)]
pub struct CacheStore {
    root: PathBuf,
    max_bytes: u64,
    /// Keys whose cache a run is using right now (count per key): never evicted.
    in_use: Arc<Mutex<BTreeMap<String, usize>>>,
    /// One writer per repository at a time (set-up runs chown and fill the directory).
    writers: Arc<Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// One repository's cache, held for the duration of one run.
#[derive(Debug)]
pub struct RepoCacheDir {
    pub key: String,
    pub dir: PathBuf,
    pub writable: bool,
    in_use: Arc<Mutex<BTreeMap<String, usize>>>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// The sub-directories, created up front so a read-only bind has something to show.
const SUBDIRS: &[&str] = &["cargo", "npm", "pip", "go/mod", "go/build", "m2", "gradle"];

impl CacheStore {
    /// A store under `root` (created, mode 0711: traversable, not listable, by sandbox uids).
    pub fn new(root: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711))?;
        Ok(Self {
            root,
            max_bytes,
            in_use: Arc::default(),
            writers: Arc::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes `repo`'s cache for one run; a writable one waits for other writers first.
    pub async fn open(&self, repo: &str, writable: bool) -> std::io::Result<RepoCacheDir> {
        let key = cache_key(repo);
        let writer = if writable {
            let lock = self
                .writers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.clone())
                .or_default()
                .clone();
            Some(lock.lock_owned().await)
        } else {
            None
        };
        *self
            .in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default() += 1;
        let cache = RepoCacheDir {
            dir: self.root.join(&key),
            key,
            writable,
            in_use: self.in_use.clone(),
            _writer: writer,
        };
        for sub in SUBDIRS {
            std::fs::create_dir_all(cache.dir.join(sub))?;
        }
        // Only the dates matter for eviction; a failure to touch is not worth failing a run.
        let _ = std::fs::File::create(cache.dir.join(".last-used"));
        Ok(cache)
    }

    /// Total bytes per repository key.
    pub fn usage(&self) -> BTreeMap<String, u64> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    tree_bytes(&e.path()),
                )
            })
            .collect()
    }

    /// Removes whole repositories, least recently used first, until the total fits the cap.
    /// Returns the keys removed.
    pub fn evict(&self) -> Vec<String> {
        let usage = self.usage();
        let mut total: u64 = usage.values().sum();
        if total <= self.max_bytes {
            return Vec::new();
        }
        let busy: BTreeSet<String> = self
            .in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        let mut by_age: Vec<(SystemTime, String, u64)> = usage
            .into_iter()
            .filter(|(key, _)| !busy.contains(key))
            .map(|(key, bytes)| (self.last_used(&key), key, bytes))
            .collect();
        by_age.sort();
        let mut removed = Vec::new();
        for (_, key, bytes) in by_age {
            if total <= self.max_bytes {
                break;
            }
            match std::fs::remove_dir_all(self.root.join(&key)) {
                Ok(()) => {
                    total = total.saturating_sub(bytes);
                    tracing::info!(repo_cache = %key, bytes, "dependency cache evicted (least recently used)");
                    removed.push(key);
                }
                Err(err) => {
                    tracing::warn!(repo_cache = %key, %err, "could not evict a dependency cache")
                }
            }
        }
        removed
    }

    fn last_used(&self, key: &str) -> SystemTime {
        std::fs::metadata(self.root.join(key).join(".last-used"))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

impl RepoCacheDir {
    /// The variables that point every package manager at this cache. `tmp` is the run's
    /// private tmp, for what must stay writable in a read-only run (npm logs, Go's build
    /// cache, which `go test` cannot run without).
    pub fn env(&self, tmp: &str) -> Vec<(String, String)> {
        let at = |sub: &str| self.dir.join(sub).to_string_lossy().into_owned();
        let mut env = vec![
            ("CARGO_HOME".to_owned(), at("cargo")),
            ("npm_config_cache".to_owned(), at("npm")),
            ("npm_config_logs_dir".to_owned(), format!("{tmp}/npm-logs")),
            ("npm_config_update_notifier".to_owned(), "false".to_owned()),
            ("npm_config_fund".to_owned(), "false".to_owned()),
            ("npm_config_audit".to_owned(), "false".to_owned()),
            ("PIP_CACHE_DIR".to_owned(), at("pip")),
            ("GOMODCACHE".to_owned(), at("go/mod")),
            (
                "MAVEN_OPTS".to_owned(),
                format!("-Dmaven.repo.local={}", at("m2")),
            ),
            ("GRADLE_USER_HOME".to_owned(), at("gradle")),
        ];
        if self.writable {
            env.push(("GOCACHE".to_owned(), at("go/build")));
        } else {
            env.push(("GOCACHE".to_owned(), format!("{tmp}/go-build")));
            env.push(("GOPROXY".to_owned(), "off".to_owned()));
            env.push(("npm_config_offline".to_owned(), "true".to_owned()));
        }
        env
    }
}

impl Drop for RepoCacheDir {
    fn drop(&mut self) {
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = in_use.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                in_use.remove(&self.key);
            }
        }
    }
}

/// Opens the cache `cmd` asks for, if the backend has a store: writable when the command has
/// network (set-up), read-only otherwise.
async fn open_cache(
    store: Option<&CacheStore>,
    cmd: &SandboxCommand,
) -> Result<Option<RepoCacheDir>, SandboxError> {
    let (Some(store), Some(repo)) = (store, cmd.cache.as_deref()) else {
        return Ok(None);
    };
    store
        .open(repo, cmd.network)
        .await
        .map(Some)
        .map_err(|e| SandboxError::Setup(format!("dependency cache: {e}")))
}

/// After a run: a writable cache may have grown, so evict other repositories above the cap
/// (while this one is still held, so it is never the one evicted).
async fn close_cache(store: Option<&CacheStore>, cache: Option<RepoCacheDir>) {
    if let (Some(store), Some(cache)) = (store, cache)
        && cache.writable
    {
        let store = store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            store.evict();
            drop(cache);
        })
        .await;
    }
}

/// The part of a run every backend shares: open the repository's cache, take a uid (when the
/// server is root), lend the work tree and a writable cache to it while `run` runs, take them
/// back, and account the cache — closing it on every path, a failed uid lease included.
pub(crate) async fn with_workspace(
    store: Option<&CacheStore>,
    cmd: &SandboxCommand,
    lease: impl FnOnce() -> Result<Option<UidLease>, SandboxError>,
    run: impl AsyncFnOnce(Option<&UidLease>, Option<&RepoCacheDir>) -> Result<RunOutcome, SandboxError>,
) -> Result<RunOutcome, SandboxError> {
    let cache = open_cache(store, cmd).await?;
    let result = match lease() {
        Err(err) => Err(err),
        Ok(None) => run(None, cache.as_ref()).await,
        Ok(Some(lease)) => {
            with_dirs_lent(&lent_dirs(cmd, cache.as_ref()), lease.uid, async {
                run(Some(&lease), cache.as_ref()).await
            })
            .await
        }
    };
    close_cache(store, cache).await;
    result
}

/// What the sandbox uid must own during the run: the work tree, and a writable cache.
fn lent_dirs(cmd: &SandboxCommand, cache: Option<&RepoCacheDir>) -> Vec<PathBuf> {
    let mut dirs = vec![cmd.work_dir.clone()];
    dirs.extend(cache.filter(|c| c.writable).map(|c| c.dir.clone()));
    dirs
}

/// The run's disk quota: what it may write, against [`crate::sandbox::Limits::disk_bytes`].
pub(crate) fn disk_quota(
    cmd: &SandboxCommand,
    cache: Option<&RepoCacheDir>,
    private_tmp: Option<&Path>,
) -> DiskQuota {
    let mut dirs = lent_dirs(cmd, cache);
    dirs.extend(private_tmp.map(Path::to_path_buf));
    DiskQuota {
        dirs,
        max_bytes: cmd.limits.disk_bytes,
    }
}

/// A directory name for a repository: readable (host and path, sanitised) and unique (a hash
/// of the whole identity, so `a/b-c` and `a-b/c` never share a cache).
pub fn cache_key(repo: &str) -> String {
    let identity = normalise(repo);
    let readable: String = identity
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let readable: String = readable
        .chars()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let hash = hex::encode(&Sha256::digest(identity.as_bytes())[..6]);
    format!("{}-{hash}", readable.trim_matches('-'))
}

/// The same repository however its URL is written: no scheme, credentials, `.git` or case.
fn normalise(repo: &str) -> String {
    let mut s = repo.trim().to_ascii_lowercase();
    if let Some((_, rest)) = s.split_once("://") {
        s = rest.to_owned();
    }
    if let Some((creds, rest)) = s.split_once('@')
        && !creds.contains('/')
    {
        s = rest.to_owned();
    }
    let s = s.trim_end_matches('/');
    s.strip_suffix(".git").unwrap_or(s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_repository_and_ignore_url_spelling() {
        let a = cache_key("https://github.com/Octo/Calc.git");
        assert_eq!(a, cache_key("https://x-access-token@github.com/octo/calc"));
        assert!(a.starts_with("github-com-octo-calc-"), "{a}");
        assert_ne!(a, cache_key("https://github.com/octo/calc2"));
        assert_ne!(cache_key("h/a/b-c"), cache_key("h/a-b/c"));
        assert!(!cache_key("../../etc").contains('/'));
        assert!(!cache_key("..").starts_with('.'));
        assert!(cache_key(&"x/".repeat(500)).len() < 80);
    }

    #[tokio::test]
    async fn eviction_removes_least_recently_used_repositories_but_not_busy_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = CacheStore::new(dir.path().join("caches"), 150_000).unwrap();
        let fill = |c: &RepoCacheDir, name: &str| {
            std::fs::write(c.dir.join("npm").join(name), vec![7u8; 100_000]).unwrap();
        };
        let old = store.open("h/old", true).await.unwrap();
        fill(&old, "a");
        let old_key = old.key.clone();
        drop(old);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let busy = store.open("h/busy", true).await.unwrap();
        fill(&busy, "b");
        // Over the cap: the old one goes; the busy one stays although it is over the cap too.
        assert_eq!(store.evict(), vec![old_key]);
        assert!(busy.dir.exists());
        assert!(store.evict().is_empty());
        let busy_key = busy.key.clone();
        drop(busy);
        let other = store.open("h/newer", true).await.unwrap();
        fill(&other, "c");
        assert_eq!(store.evict(), vec![busy_key]);
    }

    #[test]
    fn read_only_runs_get_offline_settings_and_a_private_go_build_cache() {
        let c = RepoCacheDir {
            key: "k".into(),
            dir: "/c/k".into(),
            writable: false,
            in_use: Arc::default(),
            _writer: None,
        };
        let env = c.env("/tmp");
        assert!(env.contains(&("CARGO_HOME".into(), "/c/k/cargo".into())));
        assert!(env.contains(&("GOCACHE".into(), "/tmp/go-build".into())));
        assert!(env.contains(&("GOPROXY".into(), "off".into())));
    }
}
