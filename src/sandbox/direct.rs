//! Tiers B and C: the command runs directly on the host, under a dedicated uid.
//!
//! Without user namespaces there is no private mount table or pid namespace, so isolation comes
//! from the kernel's other mechanisms: a leased uid (nothing of the server's is readable or
//! signalable by it, `RLIMIT_NPROC` counts per command, and [`sweep`] kills every process of
//! that uid at the end, daemons included), a new session, rlimits, `no_new_privs`, a cleared
//! environment, and — in Tier B — Landlock rules ([`super::landlock`]). `HOME` and `TMPDIR`
//! point at a private directory created per run and removed after it.
//!
//! Tier C is this same backend with Landlock off, built only when the operator allowed
//! unsandboxed runs; its description says so loudly. When the server is root, the child also
//! gets a private mount namespace ([`super::mounts`]): toolchains under a private home are
//! bound back read-only, that home's other contents hidden, `/proc` lists only the command's
//! own processes. Known gaps compared with Tier A: the private tmp has no size cap of its own
//! (the disk-quota watcher counts it with the work tree); without CAP_SYS_ADMIN (a container)
//! there are no private mounts and toolchains must be readable where they are; when the
//! server is not root, commands run as the server's uid and only the process group is killed.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::unistd::{Gid, Uid, setgid, setgroups, setsid, setuid};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::bwrap::cgroup_name;
use super::caches::{CacheStore, RepoCacheDir, disk_quota, with_workspace};
use super::cgroup::{Cgroups, RunCgroup};
use super::identity::{UidLease, UidPool, server_is_root, sweep};
use super::landlock::{Rules, allow_fresh_proc};
use super::mounts::{Need, PrivateMounts};
use super::toolchains::{self, ToolchainCheck};
use super::{
    RunOutcome, Sandbox, SandboxCommand, SandboxError, Tier, Toolchains, command_env, runner,
};

/// Runs commands as a dedicated uid, with Landlock (Tier B) or without (Tier C).
#[derive(Debug)]
pub struct DirectSandbox {
    toolchains: Toolchains,
    uids: Option<UidPool>,
    landlock: bool,
    tmp_root: tempfile::TempDir,
    cgroups: Cgroups,
    caches: Option<CacheStore>,
    checks: Vec<ToolchainCheck>,
    /// Root may make a private mount namespace here (false in a container without
    /// CAP_SYS_ADMIN: toolchains must then be readable where they are).
    private_mounts: bool,
}

impl DirectSandbox {
    /// Tier B: Landlock rules on top of the dedicated uid.
    pub fn landlock(toolchains: Toolchains, uids: UidPool) -> std::io::Result<Self> {
        Self::new(toolchains, uids, true)
    }

    /// Tier C: only the uid, session and rlimits. Build this only with the operator's consent.
    pub fn unsandboxed(toolchains: Toolchains, uids: UidPool) -> std::io::Result<Self> {
        Self::new(toolchains, uids, false)
    }

    fn new(toolchains: Toolchains, uids: UidPool, landlock: bool) -> std::io::Result<Self> {
        let tmp_root = tempfile::Builder::new()
            .prefix("patchpilot-sandbox-tmp-")
            .tempdir()?;
        std::fs::set_permissions(tmp_root.path(), std::fs::Permissions::from_mode(0o711))?;
        Ok(Self {
            toolchains,
            uids: server_is_root().then_some(uids),
            landlock,
            tmp_root,
            cgroups: Cgroups::detect(),
            caches: None,
            checks: Vec::new(),
            private_mounts: server_is_root() && private_mounts_work(),
        })
    }

    /// Gives commands that name a repository that repository's dependency caches.
    pub fn with_caches(mut self, caches: CacheStore) -> Self {
        self.caches = Some(caches);
        self
    }

    /// Records the start-up toolchain report shown by [`Sandbox::describe`].
    pub fn set_toolchain_checks(&mut self, checks: Vec<ToolchainCheck>) {
        self.checks = checks;
    }

    /// The private mounts a command needs as `uid` (see [`super::mounts`]).
    fn private_mounts(
        &self,
        cmd: &SandboxCommand,
        private_tmp: &Path,
        uid: u32,
        cache: Option<&RepoCacheDir>,
    ) -> Result<PrivateMounts, SandboxError> {
        let mut needs: Vec<Need> = self
            .toolchains
            .binds
            .iter()
            .map(|p| Need {
                path: p.clone(),
                writable: false,
            })
            .collect();
        needs.extend(cache.map(|c| Need {
            path: c.dir.clone(),
            writable: c.writable,
        }));
        needs.push(Need {
            path: cmd.work_dir.clone(),
            writable: true,
        });
        needs.push(Need {
            path: private_tmp.to_path_buf(),
            writable: true,
        });
        let stage = self.tmp_root.path().join(format!("stage-{uid}"));
        PrivateMounts::plan(&stage, &needs)
            .map_err(|e| SandboxError::Setup(format!("private mounts: {e}")))
    }

    /// Checks synchronously that the Landlock ruleset can be built and enforced here.
    pub fn self_test(&self) -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let rules = Rules::standard(&self.toolchains.binds, vec![dir.path().into()], false);
        let ruleset = rules.build().map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new("/bin/true");
        let mut ruleset = Some(ruleset);
        // SAFETY: runs in the forked child before exec and only applies the ruleset built
        // before the fork (prctl and landlock_restrict_self system calls).
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || match ruleset.take() {
                Some(r) => r.restrict_self().map(|_| ()).map_err(std::io::Error::other),
                None => Ok(()),
            });
        }
        let status = cmd.status().map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("a Landlock-restricted `true` failed: {status}"))
    }

    fn command(
        &self,
        cmd: &SandboxCommand,
        private_tmp: &Path,
        uid: Option<u32>,
        cgroup: Arc<RunCgroup>,
        cache: Option<&RepoCacheDir>,
    ) -> Result<std::process::Command, SandboxError> {
        let tmp = private_tmp.to_string_lossy().into_owned();
        let cache_env = cache.map(|c| c.env(&tmp)).unwrap_or_default();
        let mut env = command_env(cmd, &self.toolchains, &tmp, &cache_env)?;
        for (k, v) in &mut env {
            if k == "TMPDIR" {
                v.clone_from(&tmp);
            }
        }
        let mut ruleset = if self.landlock {
            let mut writable = vec![cmd.work_dir.clone(), private_tmp.to_path_buf()];
            let mut read_only = self.toolchains.binds.clone();
            if let Some(cache) = cache {
                if cache.writable {
                    writable.push(cache.dir.clone());
                } else {
                    read_only.push(cache.dir.clone());
                }
            }
            let rules = Rules::standard(&read_only, writable, cmd.network);
            Some(
                rules
                    .build()
                    .map_err(|e| SandboxError::Setup(format!("Landlock ruleset: {e}")))?,
            )
        } else {
            None
        };
        // Only root can make mounts; without it, toolchains must be readable where they are.
        let mounts = match uid {
            Some(uid) if self.private_mounts => {
                Some(self.private_mounts(cmd, private_tmp, uid, cache)?)
            }
            _ => None,
        };
        let limits = cmd.limits.clone();
        let mut command = std::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(&cmd.script)
            .current_dir(&cmd.work_dir)
            .env_clear()
            .envs(env);
        // SAFETY: runs in the forked child before exec; it only makes system calls (setsid,
        // write to the cgroup's tasks file, unshare, mount, mkdir, setrlimit, setgroups,
        // setgid, setuid, prctl, landlock) on data prepared before fork.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                setsid()?;
                cgroup.enter()?;
                let fresh_proc = match &mounts {
                    Some(mounts) => mounts.apply()?,
                    None => false,
                };
                limits.apply_rlimits()?;
                if let Some(uid) = uid {
                    setgroups(&[])?;
                    setgid(Gid::from_raw(uid))?;
                    setuid(Uid::from_raw(uid))?;
                }
                nix::sys::prctl::set_no_new_privs()?;
                match ruleset.take() {
                    Some(r) => {
                        let r = if fresh_proc { allow_fresh_proc(r)? } else { r };
                        r.restrict_self().map(|_| ()).map_err(std::io::Error::other)
                    }
                    None => Ok(()),
                }
            });
        }
        Ok(command)
    }

    async fn run_leased(
        &self,
        cmd: &SandboxCommand,
        lease: Option<&UidLease>,
        lines: Option<UnboundedSender<String>>,
        cancel: &CancellationToken,
        cache: Option<&RepoCacheDir>,
    ) -> Result<RunOutcome, SandboxError> {
        let uid = lease.map(|l| l.uid);
        if let Some(lease) = lease
            && !lease.was_clean()
        {
            // The uid's last run did not end cleanly (its future was dropped, or the server
            // restarted): start from a uid with no processes.
            let _ = sweep(lease.uid).await;
        }
        let private_tmp = self.private_tmp(uid)?;
        let cgroup = Arc::new(self.cgroups.create(&cgroup_name(), &cmd.limits));
        let spawned = self
            .command(cmd, &private_tmp, uid, cgroup.clone(), cache)
            .and_then(|command| runner::spawn(command, &cmd.limits, lines));
        let quota = disk_quota(cmd, cache, Some(&private_tmp));
        let result = match spawned {
            Ok(mut running) => {
                let ended = running.wait(cmd.limits.timeout, cancel, Some(quota)).await;
                // Daemons that left the process group die here, before the output is drained.
                runner::clear_run(cgroup, lease).await;
                Ok(running.finish(ended).await)
            }
            Err(err) => {
                runner::clear_run(cgroup, lease).await;
                Err(err)
            }
        };
        let _ = std::fs::remove_dir_all(&private_tmp);
        result
    }

    fn private_tmp(&self, uid: Option<u32>) -> Result<PathBuf, SandboxError> {
        let setup = |e: std::io::Error| SandboxError::Setup(format!("private tmp: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(self.tmp_root.path())
            .map_err(setup)?
            .keep();
        if let Some(uid) = uid {
            std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).map_err(setup)?;
        }
        Ok(dir)
    }
}

#[async_trait::async_trait]
impl Sandbox for DirectSandbox {
    fn tier(&self) -> Tier {
        if self.landlock {
            Tier::Landlock
        } else {
            Tier::Unsandboxed
        }
    }

    fn describe(&self) -> String {
        let who = match (&self.uids, self.private_mounts) {
            (Some(_), true) => "dedicated uids, private mounts",
            (Some(_), false) => {
                "dedicated uids, NO private mounts (no CAP_SYS_ADMIN): toolchains must be readable where they are"
            }
            (None, _) => "as the server's uid",
        };
        format!(
            "{} ({who}) {}",
            self.tier(),
            toolchains::summary(&self.checks)
        )
        .trim_end()
        .to_owned()
    }

    fn toolchains(&self) -> Vec<ToolchainCheck> {
        self.checks.clone()
    }

    async fn run(
        &self,
        cmd: SandboxCommand,
        lines: Option<UnboundedSender<String>>,
        cancel: CancellationToken,
    ) -> Result<RunOutcome, SandboxError> {
        command_env(&cmd, &self.toolchains, "/", &[])?;
        with_workspace(
            self.caches.as_ref(),
            &cmd,
            || self.uids.as_ref().map(UidPool::lease).transpose(),
            async |lease, cache| self.run_leased(&cmd, lease, lines, &cancel, cache).await,
        )
        .await
    }
}

/// Whether a forked child can enter a private mount namespace (root with CAP_SYS_ADMIN).
fn private_mounts_work() -> bool {
    let mut cmd = std::process::Command::new("/bin/true");
    // SAFETY: runs in the forked child before exec and only makes the unshare system call.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)
        });
    }
    let works = cmd.status().is_ok_and(|s| s.success());
    if !works {
        tracing::warn!(
            "Tier B cannot make a private mount namespace here: toolchains under private directories will not run"
        );
    }
    works
}

/// Tier C without consent: every run is refused with a message for maintainers.
#[derive(Debug, Default)]
pub struct RefusedSandbox;

#[async_trait::async_trait]
impl Sandbox for RefusedSandbox {
    fn tier(&self) -> Tier {
        Tier::Refused
    }

    fn describe(&self) -> String {
        self.tier().to_string()
    }

    async fn run(
        &self,
        _cmd: SandboxCommand,
        _lines: Option<UnboundedSender<String>>,
        _cancel: CancellationToken,
    ) -> Result<RunOutcome, SandboxError> {
        Err(SandboxError::Refused)
    }
}
