//! Operator settings for the sandbox, and the toolchain binds derived from them.
//!
//! Toolchains (rustup, cargo, pyenv, …) often live in a private home directory such as
//! `/root` (mode 700). The sandbox runs as another uid, so each toolchain is bound read-only
//! at the same absolute path, and the variables that locate it (`RUSTUP_HOME`, `CARGO_HOME`,
//! `PYENV_ROOT`) are set explicitly, because the sandbox's `HOME` is not the server's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Limits;

/// Which tier to use: `auto` probes for the strongest one.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierChoice {
    #[default]
    Auto,
    Bubblewrap,
    Landlock,
}

/// Sandbox settings; the lead flattens this into the `serve` and `run` commands.
#[derive(clap::Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Sandbox tier: `auto` picks the strongest the machine supports.
    #[arg(
        long = "sandbox-tier",
        env = "PATCHPILOT_SANDBOX_TIER",
        value_enum,
        default_value_t
    )]
    pub tier: TierChoice,
    /// Run repro and test commands without any sandbox when neither bubblewrap nor Landlock
    /// works. Every comment and check run then says so.
    #[arg(long, env = "PATCHPILOT_ALLOW_UNSANDBOXED", default_value_t = false)]
    pub allow_unsandboxed: bool,
    /// The bubblewrap executable.
    #[arg(
        long = "sandbox-bwrap",
        env = "PATCHPILOT_SANDBOX_BWRAP",
        default_value = "bwrap"
    )]
    pub bwrap: PathBuf,
    /// First uid of the range the sandbox runs as (one uid per concurrent command) when the
    /// server runs as root.
    #[arg(
        long = "sandbox-uid-base",
        env = "PATCHPILOT_SANDBOX_UID_BASE",
        default_value_t = 200_000
    )]
    pub uid_base: u32,
    /// How many uids (so how many concurrent commands) the range holds.
    #[arg(
        long = "sandbox-uid-count",
        env = "PATCHPILOT_SANDBOX_UID_COUNT",
        default_value_t = 64
    )]
    pub uid_count: u32,
    /// Comma-separated toolchain directories bound read-only at the same path. Default: the
    /// server's `~/.rustup`, `~/.cargo`, `~/.pyenv`, `~/.nvm` and `/opt`, where they exist.
    #[arg(
        long = "sandbox-toolchains",
        env = "PATCHPILOT_SANDBOX_TOOLCHAINS",
        value_delimiter = ','
    )]
    pub toolchains: Option<Vec<PathBuf>>,
    /// Wall-clock limit per command, in seconds.
    #[arg(
        id = "sandbox_timeout_secs",
        long = "sandbox-timeout-secs",
        env = "PATCHPILOT_SANDBOX_TIMEOUT_SECS",
        default_value_t = 600
    )]
    pub timeout_secs: u64,
    /// Address-space limit per process, in MiB.
    #[arg(
        long = "sandbox-memory-mb",
        env = "PATCHPILOT_SANDBOX_MEMORY_MB",
        default_value_t = 16_384
    )]
    pub memory_mb: u64,
    /// Maximum processes and threads per command.
    #[arg(
        long = "sandbox-max-processes",
        env = "PATCHPILOT_SANDBOX_MAX_PROCESSES",
        default_value_t = 512
    )]
    pub max_processes: u64,
    /// Largest file a command may write, in MiB.
    #[arg(
        long = "sandbox-max-file-mb",
        env = "PATCHPILOT_SANDBOX_MAX_FILE_MB",
        default_value_t = 1024
    )]
    pub max_file_mb: u64,
    /// Open files per process.
    #[arg(
        long = "sandbox-max-open-files",
        env = "PATCHPILOT_SANDBOX_MAX_OPEN_FILES",
        default_value_t = 4096
    )]
    pub max_open_files: u64,
    /// CPU seconds per process.
    #[arg(
        long = "sandbox-cpu-secs",
        env = "PATCHPILOT_SANDBOX_CPU_SECS",
        default_value_t = 1800
    )]
    pub cpu_secs: u64,
    /// Size of the private `/tmp`, in MiB.
    #[arg(
        long = "sandbox-tmp-mb",
        env = "PATCHPILOT_SANDBOX_TMP_MB",
        default_value_t = 512
    )]
    pub tmp_mb: u64,
    /// Output kept per command (head and tail), in KiB.
    #[arg(
        long = "sandbox-output-kb",
        env = "PATCHPILOT_SANDBOX_OUTPUT_KB",
        default_value_t = 1024
    )]
    pub output_kb: usize,
    /// Disk a work tree may take in total while a command runs (with its private tmp and,
    /// during set-up, the repository's dependency cache), in MiB.
    #[arg(
        long = "sandbox-disk-mb",
        env = "PATCHPILOT_SANDBOX_DISK_MB",
        default_value_t = 20_480
    )]
    pub disk_mb: u64,
    /// Where per-repository dependency caches live. Default: `<PATCHPILOT_DATA_DIR>/caches`
    /// for `serve` and `run`; none for a sandbox built without a data directory.
    #[arg(long = "cache-dir", env = "PATCHPILOT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Total size of all dependency caches; above it, whole repositories are evicted, least
    /// recently used first.
    #[arg(
        long = "cache-max-bytes",
        env = "PATCHPILOT_CACHE_MAX_BYTES",
        default_value_t = 20 << 30
    )]
    pub cache_max_bytes: u64,
}

impl Default for SandboxArgs {
    fn default() -> Self {
        let d = Limits::default();
        Self {
            tier: TierChoice::Auto,
            allow_unsandboxed: false,
            bwrap: PathBuf::from("bwrap"),
            uid_base: 200_000,
            uid_count: 64,
            toolchains: None,
            timeout_secs: d.timeout.as_secs(),
            memory_mb: d.memory_bytes >> 20,
            max_processes: d.max_processes,
            max_file_mb: d.max_file_bytes >> 20,
            max_open_files: d.max_open_files,
            cpu_secs: d.cpu_seconds,
            tmp_mb: d.tmp_bytes >> 20,
            output_kb: d.output_bytes >> 10,
            disk_mb: d.disk_bytes >> 20,
            cache_dir: None,
            cache_max_bytes: 20 << 30,
        }
    }
}

impl SandboxArgs {
    /// The configured limits, for callers that build a [`super::SandboxCommand`].
    pub fn limits(&self) -> Limits {
        Limits {
            timeout: Duration::from_secs(self.timeout_secs),
            memory_bytes: self.memory_mb << 20,
            max_processes: self.max_processes,
            max_file_bytes: self.max_file_mb << 20,
            max_open_files: self.max_open_files,
            cpu_seconds: self.cpu_secs,
            tmp_bytes: self.tmp_mb << 20,
            output_bytes: self.output_kb << 10,
            disk_bytes: self.disk_mb << 20,
        }
    }

    /// The dependency-cache store, when a cache directory is configured. A directory that
    /// cannot be created is logged and leaves commands without caches (set-up then fails with
    /// its own message, which the session reports).
    pub fn caches(&self) -> Option<super::CacheStore> {
        let dir = self.cache_dir.clone()?;
        match super::CacheStore::new(dir.clone(), self.cache_max_bytes) {
            Ok(store) => Some(store),
            Err(err) => {
                tracing::error!(%err, dir = %dir.display(), "could not create the dependency cache directory (PATCHPILOT_CACHE_DIR)");
                None
            }
        }
    }

    /// The toolchains to bind: configured ones, or the defaults that exist on this machine.
    pub fn toolchains(&self) -> Toolchains {
        let paths = match &self.toolchains {
            Some(paths) => paths.clone(),
            None => default_toolchain_paths(std::env::var_os("HOME").map(PathBuf::from)),
        };
        Toolchains::from_paths(paths.into_iter().filter(|p| p.is_absolute() && p.exists()))
    }
}

fn default_toolchain_paths(home: Option<PathBuf>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = home
        .map(|h| {
            [".rustup", ".cargo", ".pyenv", ".nvm"]
                .map(|d| h.join(d))
                .to_vec()
        })
        .unwrap_or_default();
    paths.push(PathBuf::from("/opt"));
    paths
}

/// Toolchain directories plus the environment that makes them usable from another `HOME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toolchains {
    /// Directories bound read-only at the same path.
    pub binds: Vec<PathBuf>,
    /// Files inside those binds hidden from the sandbox (credentials).
    pub masked: Vec<PathBuf>,
    /// Variables such as `CARGO_HOME`.
    pub env: Vec<(String, String)>,
    /// Directories put in front of the system `PATH`.
    pub path: Vec<PathBuf>,
}

impl Toolchains {
    /// Recognises rustup, cargo and pyenv directories by name; others are bound as they are.
    pub fn from_paths(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut t = Self::default();
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            match name {
                ".rustup" | "rustup" => t.set_env("RUSTUP_HOME", &p),
                ".cargo" | "cargo" => {
                    t.set_env("CARGO_HOME", &p);
                    t.path.push(p.join("bin"));
                    // A crates.io token must not be readable by repository code.
                    for f in ["credentials.toml", "credentials"] {
                        if p.join(f).exists() {
                            t.masked.push(p.join(f));
                        }
                    }
                }
                ".pyenv" | "pyenv" => {
                    t.set_env("PYENV_ROOT", &p);
                    t.path.push(p.join("shims"));
                    t.path.push(p.join("bin"));
                }
                _ => {}
            }
            t.binds.push(p);
        }
        t
    }

    fn set_env(&mut self, name: &str, path: &Path) {
        self.env
            .push((name.to_string(), path.to_string_lossy().into_owned()));
    }

    /// `PATH` for the sandbox: toolchain directories, then the system ones.
    pub fn path_var(&self) -> String {
        let mut parts: Vec<String> = self
            .path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        parts.extend(
            [
                "/usr/local/bin",
                "/usr/bin",
                "/bin",
                "/usr/local/sbin",
                "/usr/sbin",
                "/sbin",
            ]
            .map(String::from),
        );
        parts.join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_toolchains_get_their_variables_and_path() {
        let t = Toolchains::from_paths([
            PathBuf::from("/h/.rustup"),
            PathBuf::from("/h/.cargo"),
            PathBuf::from("/h/.pyenv"),
            PathBuf::from("/opt/node"),
        ]);
        assert_eq!(t.binds.len(), 4);
        assert!(t.env.contains(&("RUSTUP_HOME".into(), "/h/.rustup".into())));
        assert!(t.env.contains(&("CARGO_HOME".into(), "/h/.cargo".into())));
        assert!(t.env.contains(&("PYENV_ROOT".into(), "/h/.pyenv".into())));
        assert!(
            t.path_var()
                .starts_with("/h/.cargo/bin:/h/.pyenv/shims:/h/.pyenv/bin:")
        );
        assert!(
            t.path_var()
                .ends_with("/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin")
        );
    }

    #[test]
    fn cargo_credentials_are_masked() {
        let dir = tempfile::tempdir().unwrap();
        let cargo = dir.path().join(".cargo");
        std::fs::create_dir(&cargo).unwrap();
        std::fs::write(cargo.join("credentials.toml"), "token").unwrap();
        let t = Toolchains::from_paths([cargo.clone()]);
        assert_eq!(t.masked, vec![cargo.join("credentials.toml")]);
    }

    #[test]
    fn limits_follow_the_arguments() {
        let args = SandboxArgs {
            timeout_secs: 5,
            tmp_mb: 1,
            ..SandboxArgs::default()
        };
        let l = args.limits();
        assert_eq!(l.timeout, Duration::from_secs(5));
        assert_eq!(l.tmp_bytes, 1 << 20);
        assert_eq!(SandboxArgs::default().limits(), Limits::default());
    }
}
