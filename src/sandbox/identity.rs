//! The uids sandboxed commands run as, and what the server does with them around a run.
//!
//! When the server runs as root, every concurrent command gets its own uid from a configured
//! range ([`UidPool`]). That buys three things: `RLIMIT_NPROC` (counted per uid) bounds a fork
//! bomb without starving other sessions; nothing of the server's (its `/proc/<pid>/environ`,
//! its 0600 files) is readable by that uid; and after the command ends, *every* process of that
//! uid can be killed with `kill(-1, SIGKILL)` from a helper running as it ([`sweep`]), which
//! catches daemons that escaped the process group with `setsid` or a double fork.
//!
//! The work tree is handed to the uid with [`chown_tree`] before the run and handed back to the
//! server after it, so git on the host keeps working on a tree it owns. The walk never follows
//! symlinks and skips `.git` (left read-only to the sandbox) and multiply-linked files (a hard
//! link to a host file must never be chowned through the work tree).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, setgid, setgroups, setuid};

use super::SandboxError;

/// A range of uids, one per running command.
#[derive(Debug, Clone)]
pub struct UidPool {
    base: u32,
    slots: Arc<Mutex<Vec<Slot>>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    leased: bool,
    /// The last run of this uid proved that none of its processes was left. Unknown (false)
    /// at start-up: a previous server may have left some.
    clean: bool,
}

/// A uid held for one command; returned to the pool on drop.
#[derive(Debug)]
pub struct UidLease {
    pub uid: u32,
    slot: usize,
    was_clean: bool,
    /// Set by the run once nothing of it is left; a lease dropped early (a run future dropped
    /// mid-way, an error) leaves the uid marked unclean, so its next run sweeps first.
    clean: AtomicBool,
    slots: Arc<Mutex<Vec<Slot>>>,
}

impl UidPool {
    pub fn new(base: u32, count: u32) -> Self {
        Self {
            base,
            slots: Arc::new(Mutex::new(vec![Slot::default(); count.max(1) as usize])),
        }
    }

    /// Takes a free uid, or fails when all are in use.
    pub fn lease(&self) -> Result<UidLease, SandboxError> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots
            .iter()
            .position(|s| !s.leased)
            .ok_or(SandboxError::Busy(slots.len() as u32))?;
        slots[slot].leased = true;
        Ok(UidLease {
            uid: self.base + slot as u32,
            slot,
            was_clean: slots[slot].clean,
            clean: AtomicBool::new(false),
            slots: self.slots.clone(),
        })
    }
}

impl UidLease {
    /// Whether the previous run of this uid ended with none of its processes left, so a sweep
    /// before this run would find nothing.
    pub fn was_clean(&self) -> bool {
        self.was_clean
    }

    /// Records that no process of this run is left (after a sweep, or a cgroup removal that
    /// proves it).
    pub fn mark_clean(&self) {
        self.clean.store(true, Ordering::Relaxed);
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots[self.slot] = Slot {
            leased: false,
            clean: self.clean.load(Ordering::Relaxed),
        };
    }
}

/// Whether the server can switch to other uids (it runs as root).
pub fn server_is_root() -> bool {
    Uid::effective().is_root()
}

/// Gives `root` and everything under it (except `.git`) to `uid:gid`, without following
/// symlinks or touching multiply-linked files or other file systems.
pub fn chown_tree(root: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let dev = std::fs::symlink_metadata(root)?.dev();
    chown_walk(root, uid, gid, dev, true)
}

fn chown_walk(path: &Path, uid: u32, gid: u32, dev: u64, top: bool) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.dev() != dev || (meta.is_file() && meta.nlink() > 1) {
        return Ok(());
    }
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if top && entry.file_name() == ".git" {
                continue;
            }
            chown_walk(&entry.path(), uid, gid, dev, false)?;
        }
    }
    Ok(())
}

/// Kills every process running as `uid`, repeating until none is left (a fork bomb may fork
/// while being killed). Must only be called with a uid that is not the server's own.
pub async fn sweep(uid: u32) -> std::io::Result<()> {
    if uid == Uid::effective().as_raw() {
        return Err(std::io::Error::other(
            "refusing to sweep the server's own uid",
        ));
    }
    let mut cmd = std::process::Command::new("/bin/true");
    // SAFETY: the closure runs in the forked child and only makes system calls
    // (setgroups/setgid/setuid/kill); it allocates nothing and takes no lock.
    #[allow(unsafe_code)]
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            setgroups(&[]).map_err(std::io::Error::from)?;
            setgid(Gid::from_raw(uid)).map_err(std::io::Error::from)?;
            setuid(Uid::from_raw(uid)).map_err(std::io::Error::from)?;
            // kill(-1) reaches every process this uid may signal, except the caller itself;
            // ESRCH means nothing was left.
            for _ in 0..200 {
                if kill(Pid::from_raw(-1), Signal::SIGKILL).is_err() {
                    break;
                }
            }
            // Done: fail the exec on purpose so nothing else runs as this uid.
            Err(nix::errno::Errno::ECANCELED.into())
        });
    }
    let result = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .map_err(std::io::Error::other)?;
    match result {
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ECANCELED as i32) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Err(std::io::Error::other("sweep helper ran unexpectedly")),
    }
}

/// Lends each of `dirs` (the work tree, a set-up's writable cache) to `uid` for the duration
/// of `run`, then takes them back for the server.
pub(crate) async fn with_dirs_lent<T>(
    dirs: &[std::path::PathBuf],
    uid: u32,
    run: impl Future<Output = Result<T, SandboxError>>,
) -> Result<T, SandboxError> {
    let chown = |uid: u32, gid: u32| {
        let dirs = dirs.to_vec();
        async move {
            tokio::task::spawn_blocking(move || {
                dirs.iter().try_for_each(|dir| chown_tree(dir, uid, gid))
            })
            .await
            .map_err(|e| SandboxError::Setup(e.to_string()))?
            .map_err(|e| SandboxError::Setup(format!("changing owner of the work tree: {e}")))
        }
    };
    let start = std::time::Instant::now();
    chown(uid, uid).await?;
    let lent = start.elapsed();
    let result = run.await;
    let start = std::time::Instant::now();
    let back = chown(Uid::effective().as_raw(), Gid::effective().as_raw()).await;
    // Proportional to the number of files: the largest overhead for big trees.
    tracing::debug!(
        lend_ms = lent.as_secs_f64() * 1e3,
        give_back_ms = start.elapsed().as_secs_f64() * 1e3,
        "work tree handed over"
    );
    let out = result?;
    back?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_hands_out_distinct_uids_and_takes_them_back() {
        let pool = UidPool::new(1000, 2);
        let a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(matches!(pool.lease(), Err(SandboxError::Busy(2))));
        let freed = a.uid;
        drop(a);
        assert_eq!(pool.lease().unwrap().uid, freed);
    }

    #[test]
    fn a_uid_is_clean_only_after_a_run_that_said_so() {
        let pool = UidPool::new(1000, 1);
        let first = pool.lease().unwrap();
        assert!(!first.was_clean(), "unknown at start-up");
        first.mark_clean();
        drop(first);
        let second = pool.lease().unwrap();
        assert!(second.was_clean());
        // Dropped without marking: the next run must sweep.
        drop(second);
        assert!(!pool.lease().unwrap().was_clean());
    }

    #[test]
    fn chown_skips_git_symlink_targets_and_hard_links() {
        if !server_is_root() {
            return;
        }
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "s").unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join(".git")).unwrap();
        std::fs::create_dir_all(tree.path().join("src")).unwrap();
        std::fs::write(tree.path().join("src/a.rs"), "").unwrap();
        std::os::unix::fs::symlink(&secret, tree.path().join("link")).unwrap();
        std::fs::hard_link(&secret, tree.path().join("hard")).unwrap();

        chown_tree(tree.path(), 4242, 4242).unwrap();

        let uid = |p: &Path| std::fs::symlink_metadata(p).unwrap().uid();
        assert_eq!(uid(&tree.path().join("src/a.rs")), 4242);
        assert_eq!(uid(&tree.path().join("link")), 4242);
        assert_eq!(uid(&tree.path().join(".git")), 0);
        assert_eq!(uid(&secret), 0);
    }
}
