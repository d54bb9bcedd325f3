//! Per-command cgroups, where the machine lets the server create them (v1 or v2).
//!
//! rlimits bound each process; a cgroup bounds the command as a whole: resident memory
//! across all its processes (the kernel's OOM killer acts inside the group only) and the
//! number of tasks. The group is created under the server's own cgroup, the forked launcher
//! moves itself in (writing `0` to `tasks`, or to `cgroup.procs` in v2, through a descriptor
//! opened before the fork) so everything it starts is inside, and the group is removed after
//! the run. Every step is best effort: a machine without writable cgroups (most containers) still has the
//! rlimits, and the failure is logged once per run at debug level.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Limits;

/// Where this server may create cgroups.
#[derive(Debug, Clone, Default)]
pub struct Cgroups {
    /// (hierarchy directory, is v2, controller) for each usable hierarchy.
    roots: Vec<(PathBuf, Version)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1Memory,
    V1Pids,
    V2,
}

/// The cgroups of one run; removed on [`RunCgroup::remove`].
#[derive(Debug, Default)]
pub struct RunCgroup {
    dirs: Vec<PathBuf>,
    procs: Vec<OwnedFd>,
}

impl Cgroups {
    /// Finds the server's own cgroups from `/proc/self/cgroup`.
    pub fn detect() -> Self {
        let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
            return Self::default();
        };
        Self::from_proc(&own, Path::new("/sys/fs/cgroup"))
    }

    fn from_proc(own: &str, mount: &Path) -> Self {
        let mut roots = Vec::new();
        let unified = mount.join("cgroup.controllers").exists();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), Some(c)) => (a, b, c.trim_start_matches('/')),
                _ => continue,
            };
            if unified && controllers.is_empty() {
                roots.push((mount.join(path), Version::V2));
            } else if controllers.split(',').any(|c| c == "memory") {
                roots.push((mount.join("memory").join(path), Version::V1Memory));
            } else if controllers.split(',').any(|c| c == "pids") {
                roots.push((mount.join("pids").join(path), Version::V1Pids));
            }
        }
        Self { roots }
    }

    /// Creates the groups for one run, named `name`, with `limits` applied.
    pub fn create(&self, name: &str, limits: &Limits) -> RunCgroup {
        let mut run = RunCgroup::default();
        for (root, version) in &self.roots {
            let dir = root.join(name);
            match create_one(&dir, *version, limits) {
                Ok(fd) => {
                    run.dirs.push(dir);
                    run.procs.push(fd);
                }
                Err(err) => {
                    let _ = std::fs::remove_dir(&dir);
                    tracing::debug!(%err, dir = %dir.display(), "cgroup not used");
                }
            }
        }
        run
    }
}

fn create_one(dir: &Path, version: Version, limits: &Limits) -> std::io::Result<OwnedFd> {
    std::fs::create_dir(dir)?;
    let write = |file: &str, value: String| std::fs::write(dir.join(file), value);
    match version {
        Version::V1Memory => {
            write("memory.limit_in_bytes", limits.memory_bytes.to_string())?;
            // Swap must not become a way around the limit (absent when swap accounting is off).
            let _ = write(
                "memory.memsw.limit_in_bytes",
                limits.memory_bytes.to_string(),
            );
        }
        Version::V1Pids => write("pids.max", limits.max_processes.to_string())?,
        Version::V2 => {
            write("memory.max", limits.memory_bytes.to_string())?;
            let _ = write("memory.swap.max", "0".into());
            write("pids.max", limits.max_processes.to_string())?;
        }
    }
    // v1: `tasks` moves only the writing thread, and the forked launcher has only one. For a
    // single thread moving itself the kernel skips the global threadgroup lock, whose write
    // side waits for an RCU grace period: writing `cgroup.procs` instead cost 18 ms per
    // command on a loaded 2-core machine. v2 has no such shortcut for a new domain group.
    let file = match version {
        Version::V1Memory | Version::V1Pids => "tasks",
        Version::V2 => "cgroup.procs",
    };
    Ok(OpenOptions::new().write(true).open(dir.join(file))?.into())
}

impl RunCgroup {
    /// Whether any cgroup limits apply to this run.
    pub fn is_active(&self) -> bool {
        !self.dirs.is_empty()
    }

    /// In the forked child: moves the calling process into every group of the run. Only a
    /// `write` system call per group.
    pub(crate) fn enter(&self) -> std::io::Result<()> {
        for fd in &self.procs {
            nix::unistd::write(fd.as_fd(), b"0")?;
        }
        Ok(())
    }

    /// Removes the groups, waiting up to `patience` while exiting processes keep one busy
    /// (bubblewrap's init in the pid namespace is still being killed when bwrap itself has
    /// exited). Groups that stay busy are kept for a later call. Returns whether every group
    /// is gone: the kernel refuses to remove a group that holds a task, so `true` proves that
    /// no process of the run is left.
    pub fn remove(&mut self, patience: Duration) -> bool {
        self.procs.clear();
        let deadline = Instant::now() + patience;
        self.dirs.retain(|dir| {
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => return false,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
                    Err(_) if Instant::now() >= deadline => return true,
                    // Polled finely: the task is usually gone within a millisecond or two.
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        self.dirs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_memory_and_pids_hierarchies_are_found() {
        let own = "9:name=systemd:/\n8:pids:/\n4:memory:/svc/abc\n1:cpu:/\n0::/\n";
        let cg = Cgroups::from_proc(own, Path::new("/nonexistent"));
        let dirs: Vec<_> = cg.roots.iter().map(|(p, v)| (p.clone(), *v)).collect();
        assert_eq!(
            dirs,
            vec![
                (PathBuf::from("/nonexistent/pids"), Version::V1Pids),
                (
                    PathBuf::from("/nonexistent/memory/svc/abc"),
                    Version::V1Memory
                ),
            ]
        );
    }

    #[test]
    fn v2_is_used_when_the_unified_hierarchy_is_mounted() {
        let mount = tempfile::tempdir().unwrap();
        std::fs::write(mount.path().join("cgroup.controllers"), "memory pids").unwrap();
        let cg = Cgroups::from_proc("0::/service\n", mount.path());
        assert_eq!(cg.roots, vec![(mount.path().join("service"), Version::V2)]);
    }

    #[test]
    fn removal_reports_groups_that_stay_busy() {
        let root = tempfile::tempdir().unwrap();
        let (free, busy) = (root.path().join("free"), root.path().join("busy"));
        std::fs::create_dir(&free).unwrap();
        std::fs::create_dir(&busy).unwrap();
        // A non-empty directory stands for a group that still holds a task.
        std::fs::write(busy.join("task"), "").unwrap();
        let mut run = RunCgroup {
            dirs: vec![free.clone(), busy.clone()],
            procs: Vec::new(),
        };
        assert!(!run.remove(Duration::from_millis(5)));
        assert!(!free.exists());
        assert_eq!(run.dirs, vec![busy.clone()]);
        std::fs::remove_file(busy.join("task")).unwrap();
        assert!(run.remove(Duration::from_millis(5)));
        assert!(!busy.exists() && !run.is_active());
    }
}
