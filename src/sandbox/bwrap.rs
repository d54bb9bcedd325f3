//! Tier A: bubblewrap.
//!
//! Each command runs as `bwrap --unshare-all --die-with-parent --new-session --clearenv …
//! /bin/sh -c <script>`, with `/usr` and `/etc` read-only, fresh `/proc` and `/dev`, a
//! size-capped private `/tmp`, the toolchains read-only and the work tree as the only writable
//! bind, at the same absolute path. The pid namespace is the kill switch: when bwrap dies (it
//! is the process-group leader we signal), its init dies, and the kernel kills everything
//! left in the namespace, daemons included.
//!
//! When the server is root, bwrap is launched as a leased uid (see [`super::identity`]), so
//! `RLIMIT_NPROC` is enforced and the inner root maps to a nobody on the host. That uid cannot
//! traverse private directories such as `/root` (mode 700) where toolchains live, nor a work
//! tree under a 0700 temp dir. So, before dropping privileges, the launcher enters a private
//! mount namespace and bind-mounts each source onto a staging directory that is only
//! traversable, then bwrap binds from the staging directory. The host's mount table never
//! changes: those binds vanish with the launcher's namespace.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid, setgid, setgroups, setsid, setuid};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::caches::{CacheStore, RepoCacheDir, disk_quota, with_workspace};
use super::cgroup::{Cgroups, RunCgroup};
use super::identity::{UidLease, UidPool, chown_tree, server_is_root};
use super::toolchains::{self, ToolchainCheck};
use super::{
    Limits, RunOutcome, Sandbox, SandboxCommand, SandboxError, Tier, Toolchains, command_env,
    runner,
};

/// The uid and gid the command has inside the sandbox.
const INNER_ID: &str = "65534";

/// The bubblewrap backend.
#[derive(Debug)]
pub struct BubblewrapSandbox {
    bwrap: PathBuf,
    toolchains: Toolchains,
    /// `Some` when the server is root: commands run as leased uids.
    uids: Option<UidPool>,
    stage: tempfile::TempDir,
    cgroups: Cgroups,
    caches: Option<CacheStore>,
    checks: Vec<ToolchainCheck>,
}

/// Where a path is visible to bwrap: itself, or its staging copy.
struct Plan {
    /// (source, staging target) binds made in the launcher's private mount namespace.
    stage_binds: Vec<(PathBuf, PathBuf)>,
    args: Vec<OsString>,
}

impl BubblewrapSandbox {
    /// A backend using `bwrap`; uids come from `uids` when the server is root.
    pub fn new(bwrap: PathBuf, toolchains: Toolchains, uids: UidPool) -> std::io::Result<Self> {
        let stage = tempfile::Builder::new()
            .prefix("patchpilot-sandbox-")
            .tempdir()?;
        // Traversable (not listable) by the sandbox uids.
        std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o711))?;
        Ok(Self {
            bwrap,
            toolchains,
            uids: server_is_root().then_some(uids),
            stage,
            cgroups: Cgroups::detect(),
            caches: None,
            checks: Vec::new(),
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

    /// Runs `true` in the sandbox, synchronously: the start-up probe's check that bubblewrap
    /// works here with every option we use.
    pub fn self_test(&self) -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let cmd = SandboxCommand::new("true", dir.path());
        let lease = self.lease().map_err(|e| e.to_string())?;
        if let Some(lease) = &lease {
            chown_tree(dir.path(), lease.uid, lease.uid).map_err(|e| e.to_string())?;
        }
        let mut command = self
            .command(&cmd, lease.as_ref(), Arc::default(), None)
            .map_err(|e| e.to_string())?;
        let out = command.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn lease(&self) -> Result<Option<UidLease>, SandboxError> {
        self.uids.as_ref().map(UidPool::lease).transpose()
    }

    /// The launcher command: bwrap with its arguments and the privilege-dropping `pre_exec`.
    fn command(
        &self,
        cmd: &SandboxCommand,
        lease: Option<&UidLease>,
        cgroup: Arc<RunCgroup>,
        cache: Option<&RepoCacheDir>,
    ) -> Result<std::process::Command, SandboxError> {
        let cache_env = cache.map(|c| c.env("/tmp")).unwrap_or_default();
        let env = command_env(cmd, &self.toolchains, "/tmp", &cache_env)?;
        let plan = self.plan(cmd, &env, lease, cache)?;
        let mut command = std::process::Command::new(&self.bwrap);
        command.args(&plan.args).env_clear();
        let uid = lease.map(|l| l.uid);
        let limits = cmd.limits.clone();
        let stage_binds = plan.stage_binds;
        // SAFETY: runs in the forked child before exec. It only makes system calls (setsid,
        // write to the cgroup's tasks file, unshare, mount, setrlimit, setgroups, setgid,
        // setuid, prctl) on data prepared before the fork; nix passes short paths through
        // stack buffers.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || launcher_setup(&stage_binds, uid, &limits, &cgroup));
        }
        Ok(command)
    }

    fn plan(
        &self,
        cmd: &SandboxCommand,
        env: &[(String, String)],
        lease: Option<&UidLease>,
        cache: Option<&RepoCacheDir>,
    ) -> Result<Plan, SandboxError> {
        let mut stage_binds = Vec::new();
        let mut staged = |src: &Path, name: String| -> Result<PathBuf, SandboxError> {
            let Some(lease) = lease else {
                return Ok(src.to_path_buf());
            };
            let target = self.stage.path().join(lease.uid.to_string()).join(name);
            std::fs::create_dir_all(&target).map_err(|e| {
                SandboxError::Setup(format!("staging dir {}: {e}", target.display()))
            })?;
            stage_binds.push((src.to_path_buf(), target.clone()));
            Ok(target)
        };
        let mut a = Args::default();
        a.add(["--unshare-all", "--die-with-parent", "--new-session"]);
        if cmd.network {
            a.add(["--share-net"]);
        }
        a.add([
            "--uid",
            INNER_ID,
            "--gid",
            INNER_ID,
            "--hostname",
            "sandbox",
        ]);
        a.add(["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]);
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64"] {
            system_dir(&mut a, Path::new(dir));
        }
        a.add(["--proc", "/proc", "--dev", "/dev"]);
        a.add(["--size".to_string(), cmd.limits.tmp_bytes.to_string()]);
        a.add(["--tmpfs", "/tmp"]);
        for (i, tool) in self.toolchains.binds.iter().enumerate() {
            let src = staged(tool, format!("t{i}"))?;
            a.add_paths("--ro-bind", &src, tool);
        }
        for masked in &self.toolchains.masked {
            a.add_paths("--ro-bind", Path::new("/dev/null"), masked);
        }
        if let Some(cache) = cache {
            let src = staged(&cache.dir, "cache".into())?;
            let opt = if cache.writable {
                "--bind"
            } else {
                "--ro-bind"
            };
            a.add_paths(opt, &src, &cache.dir);
        }
        let work = staged(&cmd.work_dir, "work".into())?;
        a.add_paths("--bind", &work, &cmd.work_dir);
        // Only a real directory: a symlink planted in its place is not followed.
        if std::fs::symlink_metadata(cmd.work_dir.join(".git")).is_ok_and(|m| m.is_dir()) {
            // Repository metadata stays read-only: hooks and config are not the command's.
            a.add_paths("--ro-bind", &work.join(".git"), &cmd.work_dir.join(".git"));
        }
        a.add_paths("--chdir", &cmd.work_dir, Path::new(""));
        a.add(["--clearenv"]);
        for (k, v) in env {
            a.add(["--setenv", k, v]);
        }
        a.add(["--cap-drop", "ALL", "--", "/bin/sh", "-c", &cmd.script]);
        Ok(Plan {
            stage_binds,
            args: a.0,
        })
    }

    async fn run_leased(
        &self,
        cmd: &SandboxCommand,
        lease: Option<&UidLease>,
        lines: Option<UnboundedSender<String>>,
        cancel: &CancellationToken,
        cache: Option<&RepoCacheDir>,
    ) -> Result<RunOutcome, SandboxError> {
        let start = Instant::now();
        let cgroup = Arc::new(self.cgroups.create(&cgroup_name(), &cmd.limits));
        let spawned = self
            .command(cmd, lease, cgroup.clone(), cache)
            .and_then(|command| runner::spawn(command, &cmd.limits, lines));
        let mut running = match spawned {
            Ok(running) => running,
            Err(err) => {
                runner::clear_run(cgroup, lease).await;
                return Err(err);
            }
        };
        let spawned_at = Instant::now();
        let ended = running
            .wait(
                cmd.limits.timeout,
                cancel,
                Some(disk_quota(cmd, cache, None)),
            )
            .await;
        let ended_at = Instant::now();
        // The pid namespace died with bwrap; this proves it, or sweeps the uid.
        runner::clear_run(cgroup, lease).await;
        // Where a run's overhead goes (see the README, "Sandbox / Overhead").
        tracing::debug!(
            setup_and_spawn_ms = ms(spawned_at - start),
            bwrap_ms = ms(ended_at - spawned_at),
            clean_up_ms = ms(ended_at.elapsed()),
            "sandbox run phases"
        );
        Ok(running.finish(ended).await)
    }
}

#[async_trait::async_trait]
impl Sandbox for BubblewrapSandbox {
    fn tier(&self) -> Tier {
        Tier::Bubblewrap
    }

    fn describe(&self) -> String {
        let who = match &self.uids {
            Some(_) => "dedicated uids",
            None => "the server's uid",
        };
        format!(
            "{} (bwrap: {}, as {who}) {}",
            self.tier(),
            self.bwrap.display(),
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
        command_env(&cmd, &self.toolchains, "/tmp", &[])?;
        with_workspace(
            self.caches.as_ref(),
            &cmd,
            || self.lease(),
            async |lease, cache| self.run_leased(&cmd, lease, lines, &cancel, cache).await,
        )
        .await
    }
}

/// In the forked launcher: new session, staging binds in a private mount namespace, rlimits,
/// then the switch to the leased uid.
fn launcher_setup(
    stage_binds: &[(PathBuf, PathBuf)],
    uid: Option<u32>,
    limits: &Limits,
    cgroup: &RunCgroup,
) -> std::io::Result<()> {
    setsid()?;
    cgroup.enter()?;
    if !stage_binds.is_empty() {
        unshare(CloneFlags::CLONE_NEWNS)?;
        let none: Option<&str> = None;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
        for (src, dst) in stage_binds {
            mount(
                Some(src),
                dst,
                none,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                none,
            )?;
        }
    }
    limits.apply_rlimits()?;
    if let Some(uid) = uid {
        setgroups(&[])?;
        setgid(Gid::from_raw(uid))?;
        setuid(Uid::from_raw(uid))?;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A unique cgroup name for one run.
pub(crate) fn cgroup_name() -> String {
    format!("patchpilot-{}", uuid::Uuid::new_v4().simple())
}

/// `/bin` and friends: a symlink on merged-/usr systems, a directory elsewhere.
fn system_dir(a: &mut Args, dir: &Path) {
    match std::fs::read_link(dir) {
        Ok(target) => a.add_paths("--symlink", &target, dir),
        Err(_) if dir.is_dir() => a.add_paths("--ro-bind", dir, dir),
        Err(_) => {}
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn add<S: Into<OsString>>(&mut self, items: impl IntoIterator<Item = S>) {
        self.0.extend(items.into_iter().map(Into::into));
    }

    /// An option with one or two path operands (an empty second path is left out).
    fn add_paths(&mut self, opt: &str, first: &Path, second: &Path) {
        self.0.push(opt.into());
        self.0.push(first.into());
        if !second.as_os_str().is_empty() {
            self.0.push(second.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(sb: &BubblewrapSandbox, cmd: &SandboxCommand) -> Vec<String> {
        let env = command_env(cmd, &sb.toolchains, "/tmp", &[]).unwrap();
        let plan = sb.plan(cmd, &env, None, None).unwrap();
        plan.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn window(args: &[String], needle: &[&str]) -> bool {
        args.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn arguments_isolate_by_default_and_bind_the_work_tree_at_its_path() {
        let sb = BubblewrapSandbox::new("bwrap".into(), Toolchains::default(), UidPool::new(1, 1))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().to_string_lossy().into_owned();
        let args = args_of(&sb, &SandboxCommand::new("echo hi", dir.path()));
        assert!(window(
            &args,
            &["--unshare-all", "--die-with-parent", "--new-session"]
        ));
        assert!(!args.contains(&"--share-net".to_string()));
        assert!(window(&args, &["--bind", &wd, &wd]));
        assert!(window(&args, &["--chdir", &wd]));
        assert!(window(
            &args,
            &["--size", &(512u64 << 20).to_string(), "--tmpfs", "/tmp"]
        ));
        assert!(window(&args, &["--setenv", "CI", "true"]));
        assert!(window(&args, &["--", "/bin/sh", "-c", "echo hi"]));
    }

    #[test]
    fn network_is_shared_only_when_asked() {
        let sb = BubblewrapSandbox::new("bwrap".into(), Toolchains::default(), UidPool::new(1, 1))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = SandboxCommand::new("true", dir.path());
        cmd.network = true;
        assert!(args_of(&sb, &cmd).contains(&"--share-net".to_string()));
    }
}
