//! The sandbox: runs untrusted repro, setup and test commands with no risk to the host.
//!
//! This is the security boundary of the product. The pipeline only sees the [`Sandbox`]
//! trait: run a shell script in a work tree under [`Limits`], stream its output, cancel it.
//! Backends are chosen once at start-up by [`probe`], strongest first:
//!
//! - **Tier A, bubblewrap** ([`bwrap`]): every namespace unshared, no network unless asked,
//!   cleared environment, read-only system, the work tree as the only writable bind, a
//!   size-capped private `/tmp`, its own pid namespace (so nothing outlives the command).
//! - **Tier B, Landlock** ([`direct`] + [`landlock`]): a dedicated uid, a new session, rlimits,
//!   `no_new_privs` and Landlock rules (read-only system, read-write work tree and private
//!   tmp, TCP bind/connect denied).
//! - **Tier C**: nothing isolates; commands are refused unless the operator set
//!   `PATCHPILOT_ALLOW_UNSANDBOXED=1`, and the tier's description says so everywhere.
//!
//! Invariants every backend keeps: the environment is an allow-list (`PATH`, `HOME`, `LANG`,
//! `CI=true`, toolchain locations, then the caller's `env`), so no secret of the server enters;
//! when the server is root the command runs as a uid of its own (one per concurrent command,
//! see [`identity`]) so `RLIMIT_NPROC` counts and leftovers can be swept; output memory is
//! bounded by [`Limits::output_bytes`]; a timeout or a cancellation kills everything the
//! command started, including double-forked daemons, within about a second.
//!
//! A remote backend (E2B, a Fly Machine per session) is another `impl Sandbox`: callers hold
//! an `Arc<dyn Sandbox>` and never see which one they got, except through [`Sandbox::tier`]
//! and [`Sandbox::describe`].

pub mod bwrap;
pub mod caches;
pub mod cgroup;
pub mod config;
pub mod direct;
pub mod environment;
pub mod identity;
pub mod landlock;
pub mod limits;
mod mounts;
pub mod output;
pub mod probe;
mod quota;
mod runner;
pub mod toolchains;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use caches::CacheStore;
pub use config::{SandboxArgs, TierChoice, Toolchains};
pub use limits::Limits;
pub use output::CapturedOutput;
pub use probe::probe;
pub use toolchains::{ToolchainCheck, ToolchainState};

/// How strongly commands are isolated on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Bubblewrap,
    Landlock,
    Unsandboxed,
    Refused,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Bubblewrap => {
                "Commands run in a bubblewrap sandbox (Tier A): separate namespaces, no network, \
                 read-only system, only the work tree writable."
            }
            Tier::Landlock => {
                "Commands run under a dedicated uid with Landlock rules (Tier B): read-only \
                 system, only the work tree and a private tmp writable, no TCP."
            }
            Tier::Unsandboxed => {
                "WARNING: commands run WITHOUT a sandbox (Tier C, allowed by the operator with \
                 PATCHPILOT_ALLOW_UNSANDBOXED=1): repository code can reach this machine."
            }
            Tier::Refused => {
                "No sandbox is available on this server (neither bubblewrap nor Landlock), so \
                 PatchPilot refuses to run repository commands."
            }
        })
    }
}

/// One command to run in the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxCommand {
    /// Run with `/bin/sh -c`.
    pub script: String,
    /// Absolute path of the work tree: the only writable bind, at the same path inside.
    pub work_dir: PathBuf,
    /// Network access (only for an optional setup phase; never for repro or tests).
    pub network: bool,
    /// Extra allow-listed variables (from the repository config). Never secrets.
    pub env: BTreeMap<String, String>,
    pub limits: Limits,
    /// The repository (clone URL or name) whose dependency caches the command gets:
    /// writable when `network` is on (set-up), read-only otherwise. `None`: no caches.
    pub cache: Option<String>,
}

impl SandboxCommand {
    /// A command with no network, no extra environment and default limits.
    pub fn new(script: impl Into<String>, work_dir: impl Into<PathBuf>) -> Self {
        Self {
            script: script.into(),
            work_dir: work_dir.into(),
            network: false,
            env: BTreeMap::new(),
            limits: Limits::default(),
            cache: None,
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    /// Stopped because the work tree (with its tmp and a writable cache) outgrew
    /// [`Limits::disk_bytes`].
    pub disk_quota_exceeded: bool,
    pub output: CapturedOutput,
    pub duration: Duration,
}

impl RunOutcome {
    /// Exited with status 0, on its own.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled && !self.disk_quota_exceeded
    }
}

/// Why a command could not be run (its own failure is a [`RunOutcome`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Tier C without the operator's consent. The message is meant for maintainers.
    #[error(
        "PatchPilot did not run this command: the server has no sandbox (neither bubblewrap nor \
         Landlock is available), and running repository code unsandboxed is disabled. The \
         operator can install bubblewrap, or set PATCHPILOT_ALLOW_UNSANDBOXED=1 to accept the risk."
    )]
    Refused,
    #[error("invalid sandbox command: {0}")]
    InvalidCommand(String),
    #[error("could not prepare the sandbox: {0}")]
    Setup(String),
    #[error("could not start the sandboxed command: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("no free sandbox uid: {0} commands are already running")]
    Busy(u32),
}

/// Runs commands in isolation. See the module docs for what each tier guarantees.
#[async_trait::async_trait]
pub trait Sandbox: Send + Sync {
    fn tier(&self) -> Tier;
    /// One line for `/healthz`, logs and check-run summaries.
    fn describe(&self) -> String;
    /// Which toolchains ran in this tier at start-up (empty when not checked).
    fn toolchains(&self) -> Vec<ToolchainCheck> {
        Vec::new()
    }
    /// Runs `cmd`, sending each output line to `lines` as it comes, until it exits, times out
    /// or `cancel` fires.
    async fn run(
        &self,
        cmd: SandboxCommand,
        lines: Option<tokio::sync::mpsc::UnboundedSender<String>>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<RunOutcome, SandboxError>;
}

/// Variables the sandbox sets itself; the repository config cannot override them.
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
];

/// Checks the command and builds its complete environment (an allow-list).
pub(crate) fn command_env(
    cmd: &SandboxCommand,
    toolchains: &Toolchains,
    home: &str,
    caches: &[(String, String)],
) -> Result<Vec<(String, String)>, SandboxError> {
    // Canonical, so the path bound inside is exactly the path the server lends and takes back.
    let canonical = std::fs::canonicalize(&cmd.work_dir).ok();
    if !cmd.work_dir.is_dir() || canonical.as_deref() != Some(cmd.work_dir.as_path()) {
        return Err(SandboxError::InvalidCommand(format!(
            "work dir {} must be an existing directory given by its canonical absolute path",
            cmd.work_dir.display()
        )));
    }
    let mut env = vec![
        ("PATH".to_string(), toolchains.path_var()),
        ("HOME".to_string(), home.to_string()),
        ("TMPDIR".to_string(), "/tmp".to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("CI".to_string(), "true".to_string()),
    ];
    env.extend(toolchains.env.iter().cloned());
    for (k, v) in caches {
        // The repository's writable CARGO_HOME replaces the toolchain's read-only one.
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    if !cmd.network {
        // Tools that would otherwise try the network and hang or fail slowly.
        env.push(("CARGO_NET_OFFLINE".into(), "true".into()));
        env.push(("PIP_NO_INDEX".into(), "1".into()));
    }
    for (k, v) in &cmd.env {
        let valid = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || RESERVED_ENV.contains(&k.as_str()) || v.contains('\0') {
            return Err(SandboxError::InvalidCommand(format!(
                "environment variable {k:?} is not allowed"
            )));
        }
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_an_allow_list_with_repo_extras() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = SandboxCommand::new("true", dir.path());
        cmd.env.insert("RUST_BACKTRACE".into(), "1".into());
        let env = command_env(&cmd, &Toolchains::default(), "/tmp", &[]).unwrap();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "HOME",
                "TMPDIR",
                "LANG",
                "CI",
                "CARGO_NET_OFFLINE",
                "PIP_NO_INDEX",
                "RUST_BACKTRACE"
            ]
        );
    }

    #[test]
    fn reserved_or_malformed_env_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["LD_PRELOAD", "PATH", "A=B", "", "1X"] {
            let mut cmd = SandboxCommand::new("true", dir.path());
            cmd.env.insert(bad.into(), "x".into());
            assert!(matches!(
                command_env(&cmd, &Toolchains::default(), "/tmp", &[]),
                Err(SandboxError::InvalidCommand(_))
            ));
        }
    }

    #[test]
    fn relative_or_symlinked_work_dirs_are_rejected() {
        let cmd = SandboxCommand::new("true", "relative/dir");
        assert!(command_env(&cmd, &Toolchains::default(), "/tmp", &[]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let cmd = SandboxCommand::new("true", &link);
        assert!(command_env(&cmd, &Toolchains::default(), "/tmp", &[]).is_err());
        let cmd = SandboxCommand::new("true", dir.path().join("sub/.."));
        assert!(command_env(&cmd, &Toolchains::default(), "/tmp", &[]).is_err());
    }

    #[test]
    fn success_requires_exit_zero_on_its_own() {
        let mut o = RunOutcome {
            exit_code: Some(0),
            signal: None,
            timed_out: false,
            cancelled: false,
            disk_quota_exceeded: false,
            output: CapturedOutput::default(),
            duration: Duration::ZERO,
        };
        assert!(o.success());
        o.timed_out = true;
        assert!(!o.success());
        o.timed_out = false;
        o.exit_code = Some(1);
        assert!(!o.success());
    }
}
