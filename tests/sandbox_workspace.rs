//! What real projects need from the sandbox, in both tiers: toolchains under root's 0700
//! home that run, per-repository dependency caches (writable for set-up with network,
//! read-only and offline afterwards, reused by the next session), a disk quota on the work
//! tree, and nothing of the server's data directory, config or processes in sight.
//!
//! The fixtures under `tests/fixtures/projects/` have real dependencies fetched from the real
//! registries (crates.io, npm, PyPI) by their set-up commands.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use patchpilot::sandbox::bwrap::BubblewrapSandbox;
use patchpilot::sandbox::direct::DirectSandbox;
use patchpilot::sandbox::environment::{
    EnvironmentFailure, environment_failure, missing_python_dependency,
};
use patchpilot::sandbox::identity::UidPool;
use patchpilot::sandbox::{
    CacheStore, RunOutcome, Sandbox, SandboxArgs, SandboxCommand, Tier, TierChoice, ToolchainState,
    probe,
};
use tokio_util::sync::CancellationToken;

static NEXT_UID_BASE: AtomicU32 = AtomicU32::new(350_000);

fn uids() -> UidPool {
    UidPool::new(NEXT_UID_BASE.fetch_add(16, Ordering::SeqCst), 4)
}

/// Both tiers, with the machine's real toolchains (under /root, mode 700) and `caches`.
fn tiers(caches: &CacheStore) -> Vec<Arc<dyn Sandbox>> {
    let toolchains = SandboxArgs::default().toolchains();
    let bwrap = BubblewrapSandbox::new("bwrap".into(), toolchains.clone(), uids()).unwrap();
    bwrap.self_test().expect("bubblewrap must work here");
    let landlock = DirectSandbox::landlock(toolchains, uids()).unwrap();
    landlock.self_test().expect("Landlock must work here");
    vec![
        Arc::new(bwrap.with_caches(caches.clone())),
        Arc::new(landlock.with_caches(caches.clone())),
    ]
}

/// A data directory shaped like the server's: `caches/`, `work/<session>/`, `repos/`.
struct DataDir {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl DataDir {
    /// `mode` 0700 (a private data dir) or 0755 (one only the sandbox protects).
    fn new(mode: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::create_dir_all(root.join("work")).unwrap();
        Self { _dir: dir, root }
    }

    fn caches(&self) -> CacheStore {
        CacheStore::new(self.root.join("caches"), u64::MAX).unwrap()
    }

    /// A work tree holding a copy of fixture `project`.
    fn work_tree(&self, session: &str, project: &str) -> PathBuf {
        let dir = self.root.join("work").join(session);
        std::fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/projects")
            .join(project);
        copy_dir(&src, &dir);
        dir.canonicalize().unwrap()
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

async fn run(
    sb: &Arc<dyn Sandbox>,
    work: &Path,
    script: &str,
    network: bool,
    repo: &str,
) -> RunOutcome {
    let mut cmd = SandboxCommand::new(script, work);
    cmd.network = network;
    cmd.cache = Some(repo.to_owned());
    tokio::time::timeout(
        Duration::from_secs(300),
        sb.run(cmd, None, CancellationToken::new()),
    )
    .await
    .expect("the run must end")
    .expect("the run must start")
}

fn name(sb: &Arc<dyn Sandbox>) -> &'static str {
    match sb.tier() {
        Tier::Bubblewrap => "Tier A",
        _ => "Tier B",
    }
}

fn find(dir: &Path, file_name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name() == file_name {
            return Some(path);
        }
        if entry.file_type().ok()?.is_dir()
            && let Some(found) = find(&path, file_name)
        {
            return Some(found);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn toolchains_under_a_private_home_run_in_every_tier() {
    let data = DataDir::new(0o700);
    let caches = data.caches();
    for sb in tiers(&caches) {
        let work = data.work_tree(&format!("tools-{}", sb.tier() as u8), "python-six");
        let out = run(
            &sb,
            &work,
            "cargo --version && rustc --version && python3 -m venv --without-pip \"$TMPDIR/v\" && echo VENV-OK && node --version && npm --version",
            false,
            "https://example.test/octo/tools.git",
        )
        .await;
        assert!(out.success(), "{}: {}", name(&sb), out.output.text());
        assert!(out.output.text().contains("VENV-OK"));
    }
}

#[test]
fn the_start_up_report_runs_each_toolchain_in_the_chosen_tier() {
    for tier in [TierChoice::Bubblewrap, TierChoice::Landlock] {
        let sb = probe(&SandboxArgs {
            tier,
            uid_base: NEXT_UID_BASE.fetch_add(64, Ordering::SeqCst),
            ..SandboxArgs::default()
        });
        let checks = sb.toolchains();
        eprintln!("{tier:?}: {}", sb.describe());
        for expected in [
            "cargo", "rustc", "python3", "node", "npm", "npx", "java", "mvn",
        ] {
            let check = checks
                .iter()
                .find(|c| c.name == expected)
                .unwrap_or_else(|| panic!("{tier:?}: {expected} not checked: {checks:?}"));
            assert!(
                matches!(check.state, ToolchainState::Works { .. }),
                "{tier:?}: {check:?}"
            );
        }
        assert!(
            sb.describe()
                .contains("Toolchains that run in the sandbox: cargo, rustc")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rust_dependency_is_fetched_once_per_repository_and_used_offline() {
    for i in 0..2 {
        // Each tier gets its own data dir (one private, one not), so each downloads for real.
        let data = DataDir::new(if i == 0 { 0o755 } else { 0o700 });
        let caches = data.caches();
        let sb = &tiers(&caches)[i];
        let repo = "https://example.test/octo/clampfx.git";
        let first = data.work_tree("s1", "rust-cfg-if");
        let started = Instant::now();
        let setup = run(sb, &first, "cargo fetch --locked", true, repo).await;
        let first_secs = started.elapsed().as_secs_f64();
        assert!(setup.success(), "{}: {}", name(sb), setup.output.text());
        let cache_dir = caches
            .root()
            .join(patchpilot::sandbox::caches::cache_key(repo));
        let krate = find(&cache_dir.join("cargo/registry"), "cfg-if-1.0.0.crate")
            .unwrap_or_else(|| panic!("{}: the crate is not in the repository's cache", name(sb)));
        let fetched_bytes = patchpilot::sandbox::caches::tree_bytes(&cache_dir);
        // The repro runs offline against the read-only cache and fails *by running*.
        let repro = run(sb, &first, "cargo test --offline", false, repo).await;
        let text = repro.output.text();
        assert_eq!(repro.exit_code, Some(101), "{}: {text}", name(sb));
        assert!(text.contains("clamps_high_values ... FAILED"), "{text}");
        assert_eq!(environment_failure(&repro), None);
        // It cannot change the cache.
        let planted = run(
            sb,
            &first,
            "touch \"$CARGO_HOME/planted\"; echo ATTEMPT-RAN",
            false,
            repo,
        )
        .await;
        assert!(planted.output.text().contains("ATTEMPT-RAN"));
        assert!(
            !cache_dir.join("cargo/planted").exists(),
            "{}: read-only cache was written",
            name(sb)
        );

        // A second session of the same repository downloads nothing.
        let mtime = std::fs::metadata(&krate).unwrap().modified().unwrap();
        let second = data.work_tree("s2", "rust-cfg-if");
        let started = Instant::now();
        let again = run(sb, &second, "cargo fetch --locked --verbose", true, repo).await;
        let second_secs = started.elapsed().as_secs_f64();
        assert!(again.success(), "{}", again.output.text());
        assert!(
            !again.output.text().contains("Downloaded"),
            "{}",
            again.output.text()
        );
        assert_eq!(
            std::fs::metadata(&krate).unwrap().modified().unwrap(),
            mtime
        );
        let offline = run(sb, &second, "cargo fetch --locked --offline", false, repo).await;
        assert!(offline.success(), "{}", offline.output.text());
        eprintln!(
            "{}: cargo fetch first {first_secs:.2}s, second {second_secs:.2}s; cache {fetched_bytes} bytes after the first, {} after the second",
            name(sb),
            patchpilot::sandbox::caches::tree_bytes(&cache_dir)
        );
        // Another repository does not see this one's cache.
        let other = data.work_tree("s3", "rust-cfg-if");
        let peek = run(
            sb,
            &other,
            &format!("ls {}; echo ATTEMPT-RAN", cache_dir.display()),
            false,
            "https://example.test/evil/other.git",
        )
        .await;
        assert!(peek.output.text().contains("ATTEMPT-RAN"));
        assert!(
            !peek.output.text().contains("cargo"),
            "{}: {}",
            name(sb),
            peek.output.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_and_python_dependencies_are_installed_by_set_up_and_used_offline() {
    let data = DataDir::new(0o700);
    let caches = data.caches();
    for sb in tiers(&caches) {
        let tag = sb.tier() as u8;
        let repo = format!("https://example.test/octo/between-{tag}.git");
        let node = data.work_tree(&format!("node-{tag}"), "node-is-number");
        let setup = run(&sb, &node, "npm ci", true, &repo).await;
        assert!(setup.success(), "{}: {}", name(&sb), setup.output.text());
        assert!(node.join("node_modules/is-number/index.js").exists());
        let cache = caches
            .root()
            .join(patchpilot::sandbox::caches::cache_key(&repo));
        assert!(
            cache.join("npm/_cacache").is_dir(),
            "{}: npm cache not in the repository's cache",
            name(&sb)
        );
        let test = run(&sb, &node, "npm test", false, &repo).await;
        assert_eq!(
            test.exit_code,
            Some(1),
            "{}: {}",
            name(&sb),
            test.output.text()
        );
        assert!(
            test.output.text().contains("the upper bound is inclusive"),
            "{}",
            test.output.text()
        );
        assert_eq!(environment_failure(&test), None, "{}", test.output.text());

        let repo = format!("https://example.test/octo/shout-{tag}.git");
        let py = data.work_tree(&format!("py-{tag}"), "python-six");
        let setup = run(
            &sb,
            &py,
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
            true,
            &repo,
        )
        .await;
        assert!(setup.success(), "{}: {}", name(&sb), setup.output.text());
        let test = run(&sb, &py, ".venv/bin/python test_shout.py", false, &repo).await;
        assert_eq!(
            test.exit_code,
            Some(1),
            "{}: {}",
            name(&sb),
            test.output.text()
        );
        assert!(
            test.output
                .text()
                .contains("shouting adds an exclamation mark")
        );
        assert_eq!(environment_failure(&test), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_that_cannot_start_are_environment_failures_in_every_tier() {
    let data = DataDir::new(0o700);
    let caches = data.caches();
    for sb in tiers(&caches) {
        let work = data.work_tree(&format!("missing-{}", sb.tier() as u8), "python-six");
        let out = run(
            &sb,
            &work,
            "some-tool-that-does-not-exist --run",
            false,
            "r",
        )
        .await;
        assert_eq!(out.exit_code, Some(127));
        assert_eq!(
            environment_failure(&out),
            Some(EnvironmentFailure::Missing {
                what: "some-tool-that-does-not-exist".into()
            }),
            "{}: {}",
            name(&sb),
            out.output.text()
        );
        // A dependency set-up never installed (not in the tree) is not a reproduction; the
        // project's own module failing to import is.
        let out = run(
            &sb,
            &work,
            "python3 -c 'import zz_never_installed.sub'",
            false,
            "r",
        )
        .await;
        assert_eq!(
            missing_python_dependency(&out, &work),
            Some(EnvironmentFailure::NotInstalled {
                what: "the Python package `zz_never_installed` (a dependency, not part of the repository)".into()
            }),
            "{}: {}",
            name(&sb),
            out.output.text()
        );
        let out = run(&sb, &work, "python3 -c 'import shout.missing'", false, "r").await;
        assert_eq!(
            missing_python_dependency(&out, &work),
            None,
            "{}",
            out.output.text()
        );
        let out = run(
            &sb,
            &work,
            "cargo test --offline --manifest-path /nonexistent/Cargo.toml",
            false,
            "r",
        )
        .await;
        assert_eq!(
            environment_failure(&out),
            None,
            "a real cargo error is not 'cannot start'"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sandbox_sees_neither_the_data_directory_nor_the_servers_files_or_processes() {
    // World-readable on purpose: only the sandbox stands between the command and these.
    let data = DataDir::new(0o755);
    let caches = data.caches();
    let plant = |rel: &str, text: &str| {
        let path = data.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    };
    let secrets = [
        plant("work/other-session/src/secret.rs", "SECRET-OTHER-SESSION"),
        plant("repos/octo-calc.git/config", "SECRET-MIRROR"),
        plant("patchpilot.db", "SECRET-DATABASE"),
        plant("../server.env", "GITHUB_WEBHOOK_SECRET=SECRET-DOTENV"),
        plant("../app-key.pem", "SECRET-PRIVATE-KEY"),
    ];
    let server_pid = std::process::id();
    for sb in tiers(&caches) {
        let work = data.work_tree(&format!("mine-{}", sb.tier() as u8), "python-six");
        let mut script = String::new();
        for s in &secrets {
            script.push_str(&format!("cat {} 2>&1; ", s.display()));
        }
        script.push_str(&format!(
            "echo LISTED: $(ls {0}/work {0}/repos {0} 2>/dev/null | grep -v '^mine-'); ",
            data.root.display()
        ));
        script.push_str(&format!("cat /proc/{server_pid}/cmdline /proc/{server_pid}/environ 2>&1; ls /proc/{server_pid}/ 2>&1; "));
        // Its own /proc works, so hiding the server's is not a broken /proc.
        script.push_str("grep -q '^Uid:' /proc/self/status && echo PROC-SELF-OK; ");
        script.push_str("echo ATTEMPT-RAN");
        let out = run(
            &sb,
            &work,
            &script,
            false,
            "https://example.test/octo/mine.git",
        )
        .await;
        let text = out.output.text();
        assert!(text.contains("ATTEMPT-RAN"), "{text}");
        assert!(text.contains("PROC-SELF-OK"), "{}: {text}", name(&sb));
        for marker in ["SECRET-", "sandbox_workspace"] {
            assert!(
                !text.contains(marker),
                "{}: {marker} is visible: {text}",
                name(&sb)
            );
        }
        // Tier A shows the empty directories bwrap made as mount points, nothing else.
        let listed = text.lines().find(|l| l.starts_with("LISTED:")).unwrap();
        for name_of_host_file in ["other-session", "repos", "patchpilot.db"] {
            assert!(
                !listed.contains(name_of_host_file),
                "{}: {listed}",
                name(&sb)
            );
        }
    }
    let _ = std::fs::remove_file(data.root.join("../server.env"));
    let _ = std::fs::remove_file(data.root.join("../app-key.pem"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_work_tree_that_outgrows_its_disk_quota_is_stopped_clearly() {
    let data = DataDir::new(0o700);
    let caches = data.caches();
    for sb in tiers(&caches) {
        let work = data.work_tree(&format!("quota-{}", sb.tier() as u8), "python-six");
        let mut cmd = SandboxCommand::new(
            "for i in 1 2 3 4 5 6 7 8; do head -c 3000000 /dev/zero > blob$i; sleep 0.3; done; sleep 30; echo NOT-STOPPED",
            &work,
        );
        cmd.limits.disk_bytes = 8 << 20;
        let started = Instant::now();
        let out = sb.run(cmd, None, CancellationToken::new()).await.unwrap();
        assert!(
            out.disk_quota_exceeded,
            "{}: {}",
            name(&sb),
            out.output.text()
        );
        assert!(!out.success());
        assert!(started.elapsed() < Duration::from_secs(20));
        let text = out.output.text();
        assert!(text.contains("disk quota of 8 MiB"), "{text}");
        assert!(!text.contains("NOT-STOPPED"));
    }
}
