//! Tier B's private mount namespace: toolchains under a private home become reachable, and
//! what else that home holds disappears.
//!
//! Without bubblewrap the command runs on the host's file system as a dedicated uid, which
//! cannot traverse a 0700 directory such as `/root`, where rustup, cargo and pyenv usually
//! live (FIELD-NOTES). The server is root, so in the forked child, before it drops to that
//! uid, it enters a private mount namespace (`unshare(CLONE_NEWNS)` needs no user namespace)
//! and, for each path the command needs below such a directory: binds the path onto a
//! staging directory, mounts a fresh tmpfs over the private directory (hiding `.ssh`, `.npmrc`
//! and everything else in it), recreates the path inside and binds it back, read-only unless
//! the command may write there. `/proc` is remounted with `hidepid=invisible`, so the
//! server's processes are not even listed. The host's mount table never changes: all of it
//! vanishes with the child's namespace. Landlock still applies on top (rules attach to the
//! same inodes, whichever mount shows them).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;

/// One path the command needs, and whether it may write there.
#[derive(Debug, Clone)]
pub(crate) struct Need {
    pub path: PathBuf,
    pub writable: bool,
}

#[derive(Debug, Clone)]
enum Step {
    Bind { src: PathBuf, dst: PathBuf },
    ReadOnly(PathBuf),
    Tmpfs(PathBuf),
    Mkdir(PathBuf),
}

/// The mounts to make in the child, computed before the fork.
#[derive(Debug, Clone, Default)]
pub(crate) struct PrivateMounts {
    steps: Vec<Step>,
    /// Directories the plan had to cover with a tmpfs (for the start-up report).
    pub hidden: Vec<PathBuf>,
}

impl PrivateMounts {
    /// Plans the mounts for `needs`, staging under `stage` (a directory only root can list).
    pub(crate) fn plan(stage: &Path, needs: &[Need]) -> std::io::Result<Self> {
        let mut plan = Self::default();
        let covered: Vec<(PathBuf, &Need)> = needs
            .iter()
            .filter_map(|n| private_ancestor(&n.path).map(|h| (h, n)))
            .collect();
        let mut roots: Vec<PathBuf> = covered.iter().map(|(h, _)| h.clone()).collect();
        roots.sort();
        roots.dedup();
        let outer: Vec<PathBuf> = roots
            .iter()
            .filter(|r| !roots.iter().any(|o| o != *r && r.starts_with(o)))
            .cloned()
            .collect();
        let mut back = Vec::new();
        for (i, (_, need)) in covered.iter().enumerate() {
            let staged = stage.join(format!("m{i}"));
            std::fs::create_dir_all(&staged)?;
            plan.steps.push(Step::Bind {
                src: need.path.clone(),
                dst: staged.clone(),
            });
            back.push((staged, *need));
        }
        for root in &outer {
            plan.steps.push(Step::Tmpfs(root.clone()));
        }
        for (staged, need) in back {
            let Some(root) = outer.iter().find(|r| need.path.starts_with(r)) else {
                continue;
            };
            let mut dir = root.clone();
            for part in need.path.strip_prefix(root).unwrap_or(Path::new("")) {
                dir.push(part);
                plan.steps.push(Step::Mkdir(dir.clone()));
            }
            plan.steps.push(Step::Bind {
                src: staged,
                dst: need.path.clone(),
            });
            if !need.writable {
                plan.steps.push(Step::ReadOnly(need.path.clone()));
            }
        }
        plan.hidden = outer;
        Ok(plan)
    }

    /// In the forked child, as root: a private mount namespace with the planned mounts and a
    /// `/proc` that lists only the command's own processes. Returns whether `/proc` is that
    /// fresh instance (a new superblock, which Landlock rules built before the fork do not
    /// cover: see [`super::landlock::allow_fresh_proc`]).
    pub(crate) fn apply(&self) -> std::io::Result<bool> {
        let none: Option<&str> = None;
        unshare(CloneFlags::CLONE_NEWNS)?;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
        for step in &self.steps {
            match step {
                Step::Bind { src, dst } => mount(
                    Some(src.as_path()),
                    dst.as_path(),
                    none,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    none,
                )?,
                Step::ReadOnly(path) => mount(
                    none,
                    path.as_path(),
                    none,
                    MsFlags::MS_BIND
                        | MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV,
                    none,
                )?,
                Step::Tmpfs(path) => mount(
                    Some("tmpfs"),
                    path.as_path(),
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some("mode=0755,size=1m"),
                )?,
                Step::Mkdir(path) => {
                    match nix::unistd::mkdir(path.as_path(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        // Best effort: an older kernel without per-instance proc options keeps the host's
        // /proc, where the dedicated uid still cannot read the server's environ or fds.
        let fresh_proc = mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("hidepid=invisible"),
        )
        .is_ok();
        Ok(fresh_proc)
    }
}

/// The outermost strict ancestor of `path` that other users cannot traverse, if any.
fn private_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|dir| std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o001 == 0))
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn paths_below_a_private_directory_are_staged_covered_and_bound_back() {
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = base.path().join("home");
        std::fs::create_dir_all(home.join(".cargo/bin")).unwrap();
        std::fs::create_dir_all(home.join("deep/.rustup")).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        let open = base.path().join("open");
        std::fs::create_dir_all(&open).unwrap();
        let stage = base.path().join("stage");
        let needs = [
            Need {
                path: home.join(".cargo"),
                writable: false,
            },
            Need {
                path: home.join("deep/.rustup"),
                writable: true,
            },
            Need {
                path: open.clone(),
                writable: false,
            },
        ];
        let plan = PrivateMounts::plan(&stage, &needs).unwrap();
        assert_eq!(plan.hidden, vec![home.clone()]);
        let tmpfs = plan
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Tmpfs(_)))
            .count();
        assert_eq!(tmpfs, 1);
        let read_only: Vec<&PathBuf> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::ReadOnly(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(read_only, vec![&home.join(".cargo")]);
        assert!(
            plan.steps
                .iter()
                .any(|s| matches!(s, Step::Mkdir(p) if p == &home.join("deep")))
        );
    }
}
