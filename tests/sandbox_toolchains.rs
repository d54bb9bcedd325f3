//! The default toolchain binds make Python, Rust/cargo and Node projects work in the
//! bubblewrap sandbox, although the toolchains live in the server's private home directory.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use patchpilot::sandbox::bwrap::BubblewrapSandbox;
use patchpilot::sandbox::identity::UidPool;
use patchpilot::sandbox::{RunOutcome, Sandbox, SandboxArgs, SandboxCommand};
use tokio_util::sync::CancellationToken;

static NEXT_UID_BASE: AtomicU32 = AtomicU32::new(330_000);

fn sandbox() -> Arc<dyn Sandbox> {
    let uids = UidPool::new(NEXT_UID_BASE.fetch_add(16, Ordering::SeqCst), 4);
    let sb =
        BubblewrapSandbox::new("bwrap".into(), SandboxArgs::default().toolchains(), uids).unwrap();
    sb.self_test()
        .expect("bubblewrap must work on this machine");
    Arc::new(sb)
}

async fn run(script: &str, work: &std::path::Path) -> RunOutcome {
    let mut cmd = SandboxCommand::new(script, work);
    cmd.limits.timeout = Duration::from_secs(300);
    sandbox()
        .run(cmd, None, CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn python_and_node_run() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("test_x.py"),
        "import sys\nprint('py', sys.version_info[0])\n",
    )
    .unwrap();
    let out = run(
        "python3 test_x.py && node -e 'console.log(\"node\", 1 + 1)'",
        work.path(),
    )
    .await;
    assert!(out.success(), "{}", out.output.text());
    assert!(out.output.text().contains("py 3"));
    assert!(out.output.text().contains("node 2"));
}

#[tokio::test]
async fn cargo_test_runs_offline_with_the_hosts_toolchain_and_registry() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nhex = \"0.4\"\n",
    )
    .unwrap();
    std::fs::create_dir(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 { let _ = hex::encode([1u8]); a - b }\n#[test]\nfn adds() { assert_eq!(add(2, 2), 4); }\n",
    )
    .unwrap();
    let out = run("cargo test --offline 2>&1", root).await;
    let text = out.output.text();
    // The bug is reproduced: the build works and the test fails for the right reason.
    assert_eq!(out.exit_code, Some(101), "{text}");
    assert!(text.contains("test adds ... FAILED"), "{text}");
}
