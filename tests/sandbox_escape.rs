//! The escape suite: each case tries to get out of the sandbox and asserts it was contained,
//! on every tier this machine supports — bubblewrap for real, Landlock constructed directly —
//! and the Tier C refusal.
//!
//! Each test builds its own backend with its own uid range, so tests running in parallel
//! never sweep each other's processes.

mod support;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use patchpilot::sandbox::bwrap::BubblewrapSandbox;
use patchpilot::sandbox::direct::{DirectSandbox, RefusedSandbox};
use patchpilot::sandbox::identity::UidPool;
use patchpilot::sandbox::{
    RunOutcome, Sandbox, SandboxArgs, SandboxCommand, SandboxError, Tier, Toolchains,
};
use tokio_util::sync::CancellationToken;

static NEXT_UID_BASE: AtomicU32 = AtomicU32::new(310_000);

fn uids() -> UidPool {
    UidPool::new(NEXT_UID_BASE.fetch_add(16, Ordering::SeqCst), 4)
}

fn bubblewrap() -> Arc<dyn Sandbox> {
    let toolchains = SandboxArgs::default().toolchains();
    let sb = BubblewrapSandbox::new("bwrap".into(), toolchains, uids()).unwrap();
    sb.self_test()
        .expect("bubblewrap must work on this machine");
    Arc::new(sb)
}

fn landlock() -> Arc<dyn Sandbox> {
    let sb = DirectSandbox::landlock(Toolchains::default(), uids()).unwrap();
    sb.self_test().expect("Landlock must work on this machine");
    Arc::new(sb)
}

/// Every tier this machine supports (a missing one fails the suite, never skips it).
fn tiers() -> Vec<Arc<dyn Sandbox>> {
    vec![bubblewrap(), landlock()]
}

/// A work tree readable only by root, as the server's clones are.
fn work_tree() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A directory outside the work tree that anyone could read and write on the host, so only
/// the sandbox stands between the command and it.
fn outside_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // Its parent (/tmp) is world-traversable, so file permissions would allow access.
    dir
}

async fn run(sb: &Arc<dyn Sandbox>, cmd: SandboxCommand) -> RunOutcome {
    tokio::time::timeout(
        Duration::from_secs(120),
        sb.run(cmd, None, CancellationToken::new()),
    )
    .await
    .expect("the run must end")
    .expect("the run must start")
}

async fn run_script(sb: &Arc<dyn Sandbox>, work: &Path, script: &str) -> RunOutcome {
    run(sb, SandboxCommand::new(script, work)).await
}

/// Runs an escape attempt followed by a marker, and checks the attempt really ran (so a
/// sandbox that fails to start cannot pass the suite).
async fn attempt(sb: &Arc<dyn Sandbox>, work: &Path, script: &str) -> RunOutcome {
    let out = run_script(sb, work, &format!("{script}\necho ATTEMPT-RAN")).await;
    assert!(
        out.output.text().contains("ATTEMPT-RAN"),
        "{}: the attempt did not run: {}",
        sb.describe(),
        out.output.text()
    );
    out
}

/// Host processes whose command line contains `marker`.
fn host_processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(cmdline);
            }
        }
    }
    found
}

#[tokio::test]
async fn commands_run_and_report_their_exit_status() {
    for sb in tiers() {
        let work = work_tree();
        let out = run_script(&sb, work.path(), "echo hello; pwd; exit 3").await;
        assert_eq!(out.exit_code, Some(3), "{}", sb.describe());
        assert!(!out.success());
        let text = out.output.text();
        assert!(text.contains("hello"), "{text}");
        assert!(
            text.contains(&work.path().display().to_string()),
            "same path inside: {text}"
        );
        let ok = run_script(&sb, work.path(), "echo made > file.txt").await;
        assert!(ok.success(), "{}: {}", sb.describe(), ok.output.text());
        assert_eq!(
            std::fs::read_to_string(work.path().join("file.txt")).unwrap(),
            "made\n"
        );
        // The server owns its work tree again after the run.
        let meta = std::fs::metadata(work.path().join("file.txt")).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            nix::unistd::getuid().as_raw()
        );
    }
}

#[tokio::test]
async fn output_is_streamed_line_by_line() {
    for sb in tiers() {
        let work = work_tree();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cmd = SandboxCommand::new("echo one; echo two >&2; printf three", work.path());
        let out = sb
            .run(cmd, Some(tx), CancellationToken::new())
            .await
            .unwrap();
        assert!(out.success());
        let mut lines = Vec::new();
        while let Ok(line) = rx.try_recv() {
            lines.push(line);
        }
        assert_eq!(lines, ["one", "two", "three"], "{}", sb.describe());
    }
}

#[tokio::test]
async fn a_planted_secret_outside_the_work_tree_is_unreadable() {
    for sb in tiers() {
        let outside = outside_dir();
        let secret = outside.path().join("secret.txt");
        std::fs::write(&secret, "TOP-SECRET-VALUE").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let work = work_tree();
        let script = format!("cat {} /root/.npmrc /etc/shadow", secret.display());
        let out = attempt(&sb, work.path(), &script).await;
        assert!(
            !out.output.text().contains("TOP-SECRET-VALUE"),
            "{}",
            sb.describe()
        );
    }
}

#[tokio::test]
async fn the_servers_environment_is_unreachable_even_through_proc() {
    // cargo sets CARGO_PKG_NAME in this test process's environment: it stands for a secret.
    let marker = "CARGO_PKG_NAME=patchpilot";
    let own = std::fs::read_to_string("/proc/self/environ").unwrap();
    assert!(
        own.contains(marker),
        "the marker must be in the server's environment"
    );
    for sb in tiers() {
        let work = work_tree();
        let script = format!(
            "env; cat /proc/{pid}/environ /proc/1/environ; for f in /proc/[0-9]*/environ; do cat $f; done",
            pid = std::process::id()
        );
        let out = attempt(&sb, work.path(), &script).await;
        let text = out.output.text();
        assert!(!text.contains(marker), "{}: {text}", sb.describe());
        assert!(text.contains("CI=true"), "{text}");
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .filter(|k| k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        for name in names {
            assert!(
                [
                    "PATH",
                    "HOME",
                    "TMPDIR",
                    "LANG",
                    "CI",
                    "CARGO_NET_OFFLINE",
                    "PIP_NO_INDEX",
                    "RUSTUP_HOME",
                    "CARGO_HOME",
                    "PYENV_ROOT",
                    "PWD",
                    "SHLVL",
                    "OLDPWD",
                    "_"
                ]
                .contains(&name),
                "{}: unexpected variable {name}",
                sb.describe()
            );
        }
    }
}

#[tokio::test]
async fn a_listener_on_the_hosts_loopback_cannot_be_reached() {
    for sb in tiers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let work = work_tree();
        let script = format!("bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo CONNECTED");
        let out = attempt(&sb, work.path(), &script).await;
        assert!(
            !out.output.text().contains("CONNECTED"),
            "{}",
            sb.describe()
        );
        let accepted = listener.accept();
        assert!(
            matches!(&accepted, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "{}: the listener got a connection",
            sb.describe()
        );
    }
}

#[tokio::test]
async fn writes_outside_the_work_tree_do_not_reach_the_host() {
    for sb in tiers() {
        let outside = outside_dir();
        let target = outside.path().join("pwned");
        let work = work_tree();
        let script = format!(
            "echo x > {}; echo x > /etc/pwned; echo x > /usr/pwned; echo x > /dev/shm/pwned-{}",
            target.display(),
            std::process::id()
        );
        attempt(&sb, work.path(), &script).await;
        assert!(!target.exists(), "{}", sb.describe());
        assert!(!Path::new("/etc/pwned").exists());
        assert!(!Path::new("/usr/pwned").exists());
        let shm = format!("/dev/shm/pwned-{}", std::process::id());
        assert!(!Path::new(&shm).exists(), "{}", sb.describe());
    }
}

#[tokio::test]
async fn a_symlink_in_the_work_tree_pointing_outside_is_not_followed_out() {
    for sb in tiers() {
        let outside = outside_dir();
        let secret = outside.path().join("secret.txt");
        std::fs::write(&secret, "LINKED-SECRET").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
        let work = work_tree();
        std::os::unix::fs::symlink(&secret, work.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), work.path().join("dirlink")).unwrap();
        let script = "cat link; echo overwritten > link; echo new > dirlink/new";
        let out = attempt(&sb, work.path(), script).await;
        assert!(
            !out.output.text().contains("LINKED-SECRET"),
            "{}",
            sb.describe()
        );
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "LINKED-SECRET");
        assert!(!outside.path().join("new").exists(), "{}", sb.describe());
    }
}

#[tokio::test]
async fn repository_metadata_is_read_only() {
    for sb in tiers() {
        let work = work_tree();
        std::fs::create_dir_all(work.path().join(".git/hooks")).unwrap();
        std::fs::write(work.path().join(".git/config"), "[core]\n").unwrap();
        let script = "echo evil >> .git/config; echo hook > .git/hooks/post-checkout";
        attempt(&sb, work.path(), script).await;
        assert_eq!(
            std::fs::read_to_string(work.path().join(".git/config")).unwrap(),
            "[core]\n"
        );
        assert!(
            !work.path().join(".git/hooks/post-checkout").exists(),
            "{}",
            sb.describe()
        );
    }
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_cleaned_up() {
    for sb in tiers() {
        let work = work_tree();
        let mut cmd =
            SandboxCommand::new("bomb() { bomb | bomb & }; bomb; sleep 4242", work.path());
        cmd.limits.max_processes = 64;
        cmd.limits.timeout = Duration::from_secs(3);
        let out = run(&sb, cmd).await;
        assert!(!out.success(), "{}", sb.describe());
        assert!(
            host_processes_with("sleep 4242").is_empty(),
            "{}",
            sb.describe()
        );
        // The host can still start processes.
        assert!(
            std::process::Command::new("true")
                .status()
                .unwrap()
                .success()
        );
    }
}

#[tokio::test]
async fn five_gigabytes_of_output_keep_server_memory_bounded() {
    for sb in tiers() {
        let work = work_tree();
        let out = run_script(
            &sb,
            work.path(),
            "head -c 5000000000 /dev/zero; echo; echo THE-END",
        )
        .await;
        assert!(out.success(), "{}", sb.describe());
        assert_eq!(out.output.total_bytes(), 5_000_000_000 + 9);
        assert!(out.output.dropped_bytes() > 4_990_000_000);
        assert!(out.output.text().len() <= (1 << 20) + 100);
        assert!(out.output.tail(20).ends_with("THE-END\n"));
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert!(rss_kb < 1_000_000, "server RSS grew to {rss_kb} kB");
    }
}

#[tokio::test]
async fn sleep_1000_is_killed_at_the_timeout() {
    for sb in tiers() {
        let work = work_tree();
        let mut cmd = SandboxCommand::new("sleep 1000", work.path());
        cmd.limits.timeout = Duration::from_secs(1);
        let out = run(&sb, cmd).await;
        assert!(out.timed_out, "{}", sb.describe());
        assert!(!out.success());
        assert!(
            host_processes_with("sleep 1000").is_empty(),
            "{}",
            sb.describe()
        );
    }
}

#[tokio::test]
async fn cancellation_kills_the_command() {
    for sb in tiers() {
        let work = work_tree();
        let cancel = CancellationToken::new();
        let cmd = SandboxCommand::new("sleep 1717 & sleep 1717", work.path());
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            trigger.cancel();
        });
        // The guard is generous; the runner's own budget is SIGTERM + 1 s + SIGKILL.
        let out = tokio::time::timeout(Duration::from_secs(10), sb.run(cmd, None, cancel))
            .await
            .expect("cancellation must end the run")
            .unwrap();
        assert!(out.cancelled, "{}", sb.describe());
        assert!(
            host_processes_with("sleep 1717").is_empty(),
            "{}",
            sb.describe()
        );
    }
}

#[tokio::test]
async fn filling_tmp_stops_at_the_cap() {
    let work = work_tree();
    let bwrap = bubblewrap();
    let mut cmd = SandboxCommand::new(
        "head -c 50000000 /dev/zero > /tmp/fill; wc -c < /tmp/fill",
        work.path(),
    );
    cmd.limits.tmp_bytes = 4 << 20;
    let out = run(&bwrap, cmd).await;
    let text = out.output.text();
    let size: u64 = text.lines().last().unwrap().trim().parse().unwrap();
    assert!(size <= 4 << 20, "{text}");
    assert!(text.contains("No space left"), "{text}");

    // Tier B has no private /tmp mount: /tmp is not writable at all, and files in its
    // private TMPDIR stop at the file-size limit.
    let ll = landlock();
    let mut cmd = SandboxCommand::new(
        "echo x > /tmp/pp-escape-$$ && echo WROTE-TMP; head -c 50000000 /dev/zero > \"$TMPDIR/fill\"; wc -c < \"$TMPDIR/fill\"",
        work.path(),
    );
    cmd.limits.max_file_bytes = 4 << 20;
    let out = run(&ll, cmd).await;
    let text = out.output.text();
    assert!(!text.contains("WROTE-TMP"), "{text}");
    let size: u64 = text.lines().last().unwrap().trim().parse().unwrap();
    assert!(size <= 4 << 20, "{text}");
}

#[tokio::test]
async fn a_daemonised_grandchild_is_killed_at_the_end() {
    for sb in tiers() {
        let work = work_tree();
        let script = "setsid sh -c 'sleep 2929 & exit 0' & sleep 0.3; (nohup sleep 2929 >/dev/null 2>&1 &); exit 0";
        let out = run_script(&sb, work.path(), script).await;
        assert!(out.success(), "{}: {}", sb.describe(), out.output.text());
        assert!(
            host_processes_with("sleep 2929").is_empty(),
            "{}",
            sb.describe()
        );
    }
}

#[tokio::test]
async fn network_is_available_only_when_asked() {
    let sb = bubblewrap();
    let work = work_tree();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cmd = SandboxCommand::new(
        format!("bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo CONNECTED"),
        work.path(),
    );
    cmd.network = true;
    let out = run(&sb, cmd).await;
    assert!(
        out.output.text().contains("CONNECTED"),
        "{}",
        out.output.text()
    );
}

#[tokio::test]
async fn tier_c_refuses_without_the_operators_consent() {
    let sb: Arc<dyn Sandbox> = Arc::new(RefusedSandbox);
    assert_eq!(sb.tier(), Tier::Refused);
    let work = work_tree();
    let err = sb
        .run(
            SandboxCommand::new("true", work.path()),
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Refused));
    assert!(err.to_string().contains("PATCHPILOT_ALLOW_UNSANDBOXED=1"));
}

#[tokio::test]
async fn commands_run_in_a_cgroup_of_their_own_that_is_removed_after() {
    // Tier B shares the host's cgroup view, so the group is visible from inside.
    let sb = landlock();
    let work = work_tree();
    let mut cmd = SandboxCommand::new(
        "g=$(grep ':memory:' /proc/self/cgroup | cut -d: -f3); echo \"GROUP=$g\"; cat /sys/fs/cgroup/memory$g/memory.limit_in_bytes",
        work.path(),
    );
    cmd.limits.memory_bytes = 256 << 20;
    let out = run(&sb, cmd).await;
    let text = out.output.text();
    let group = text
        .lines()
        .find_map(|l| l.strip_prefix("GROUP="))
        .expect("the command reports its cgroup");
    assert!(group.contains("/patchpilot-"), "{text}");
    assert!(text.contains(&(256u64 << 20).to_string()), "{text}");
    let dir = format!("/sys/fs/cgroup/memory{group}");
    assert!(
        !Path::new(&dir).exists(),
        "{dir} must be removed after the run"
    );
}

#[tokio::test]
async fn bubblewrap_commands_and_their_children_are_in_the_runs_cgroups() {
    // Inside bwrap the cgroup namespace hides the path, so look from the host at a process
    // the command forked (after bwrap's own forks).
    let sb = bubblewrap();
    let work = work_tree();
    let marker = "sleep 31.4159";
    let cmd = SandboxCommand::new(format!("{marker} & wait"), work.path());
    let run = tokio::spawn(async move { run(&sb, cmd).await });
    let mut groups = String::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let pids: Vec<_> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == marker)
                    .unwrap_or(false)
            })
            .collect();
        if let Some(entry) = pids.first() {
            groups = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(entry.file_name().to_string_lossy().parse().unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            );
            break;
        }
    }
    run.await.unwrap();
    let in_run_group = |controller: &str| {
        groups
            .lines()
            .any(|l| l.split(':').nth(1) == Some(controller) && l.contains("/patchpilot-"))
    };
    assert!(in_run_group("memory"), "{groups}");
    assert!(in_run_group("pids"), "{groups}");
}

#[tokio::test]
async fn a_flood_of_lines_does_not_pile_up_in_the_stream() {
    let sb = bubblewrap();
    let work = work_tree();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut cmd = SandboxCommand::new("yes | head -c 100000000", work.path());
    cmd.limits.output_bytes = 64 << 10;
    // Nobody reads the stream while the command runs.
    let out = sb
        .run(cmd, Some(tx), CancellationToken::new())
        .await
        .unwrap();
    assert!(out.success());
    assert_eq!(out.output.total_bytes(), 100_000_000);
    let mut streamed = 0;
    let mut last = String::new();
    while let Ok(line) = rx.try_recv() {
        streamed += line.len() + 1;
        last = line;
    }
    assert!(streamed < 1 << 20, "{streamed} bytes were queued");
    assert!(last.contains("live output stopped"), "{last}");
}
