//! The part of running a command that every local backend shares: one pipe for stdout and
//! stderr, bounded capture and line streaming, the wall-clock limit, cancellation, and killing
//! the whole process group.
//!
//! Order of events, which the backends rely on:
//! 1. [`spawn`]: the child (already configured by the backend, whose `pre_exec` calls
//!    `setsid`) starts; the parent's copy of the pipe's write end is closed at once.
//! 2. [`Running::wait`]: the child exits, or the timeout or cancellation fires, in which case
//!    the group gets SIGTERM, then SIGKILL after a one-second grace. Either way the group is
//!    SIGKILLed at the end, so background jobs do not outlive the command.
//! 3. [`clear_run`]: the run's cgroups are removed, which proves that no process of the run is
//!    left; without that proof (no cgroups, or one stays busy) the uid is swept with
//!    [`super::identity::sweep`] and the removal retried.
//! 4. [`Running::finish`]: the reader drains what is left; if something still holds the
//!    pipe open it is abandoned after a short wait, so a run always ends.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cgroup::RunCgroup;
use super::identity::{UidLease, sweep};
use super::output::LineSplitter;
use super::quota::{DiskQuota, exceeded_message};
use super::{CapturedOutput, Limits, RunOutcome, SandboxError};

/// Time between SIGTERM and SIGKILL. Kept short so cancellation ends within 2 seconds.
const KILL_GRACE: Duration = Duration::from_millis(1000);
/// How long to wait for the output pipe to close after the command's processes are gone.
const DRAIN_WAIT: Duration = Duration::from_millis(500);
/// How long the first cgroup removal waits for exiting processes before the uid is swept.
const CGROUP_FIRST_PATIENCE: Duration = Duration::from_millis(50);
/// How long removal waits after the sweep.
const CGROUP_PATIENCE: Duration = Duration::from_millis(500);
/// Longest line streamed to the session's events.
const MAX_LINE: usize = 4096;
/// Lines are streamed until this many times the capture cap has been sent: the receiver may
/// be slower than the command, and the channel must not become an unbounded buffer.
const STREAM_BUDGET_FACTOR: usize = 8;

/// A started command.
pub(crate) struct Running {
    child: tokio::process::Child,
    pgid: Pid,
    reader: JoinHandle<()>,
    captured: Arc<Mutex<CapturedOutput>>,
    started: Instant,
}

/// How the process itself ended.
pub(crate) struct Ended {
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    cancelled: bool,
    over_quota: Option<u64>,
}

/// Starts `cmd` with stdin from `/dev/null` and stdout and stderr into one capture.
pub(crate) fn spawn(
    mut cmd: std::process::Command,
    limits: &Limits,
    lines: Option<UnboundedSender<String>>,
) -> Result<Running, SandboxError> {
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::Spawn(e.into()))?;
    let write_err = write.try_clone().map_err(SandboxError::Spawn)?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(write)
        .stderr(write_err);
    let child = {
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd.spawn().map_err(SandboxError::Spawn)?
        // `cmd` (holding the parent's write ends) is dropped here, so EOF can arrive.
    };
    let pid = child.id().ok_or_else(|| {
        SandboxError::Spawn(std::io::Error::other("child exited before it was tracked"))
    })?;
    let captured = Arc::new(Mutex::new(CapturedOutput::with_cap(limits.output_bytes)));
    let budget = limits.output_bytes.saturating_mul(STREAM_BUDGET_FACTOR);
    let reader = tokio::spawn(read_output(read, captured.clone(), lines, budget));
    Ok(Running {
        child,
        pgid: Pid::from_raw(pid as i32),
        reader,
        captured,
        started: Instant::now(),
    })
}

async fn read_output(
    read: OwnedFd,
    captured: Arc<Mutex<CapturedOutput>>,
    mut lines: Option<UnboundedSender<String>>,
    budget: usize,
) {
    let mut streamed = 0usize;
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(read) else {
        return;
    };
    let mut splitter = LineSplitter::new(MAX_LINE);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(&buf[..n]);
        if let Some(tx) = &lines {
            for line in splitter.feed(&buf[..n]) {
                streamed += line.len() + 1;
                let _ = tx.send(line);
            }
            if streamed > budget {
                let _ = tx.send(format!(
                    "[… live output stopped after {streamed} bytes; the end is in the final log …]"
                ));
                lines = None;
            }
        }
    }
    if let (Some(tx), Some(last)) = (&lines, splitter.finish()) {
        let _ = tx.send(last);
    }
}

impl Running {
    /// Waits for the command to exit, enforcing the timeout and cancellation, then kills
    /// whatever is left in its process group.
    pub(crate) async fn wait(
        &mut self,
        timeout: Duration,
        cancel: &CancellationToken,
        quota: Option<DiskQuota>,
    ) -> Ended {
        let (mut timed_out, mut cancelled, mut over_quota) = (false, false, None);
        let max_disk = quota.as_ref().map(|q| q.max_bytes);
        let quota = async move {
            match quota {
                Some(q) => q.exceeded().await,
                None => std::future::pending().await,
            }
        };
        let status = tokio::select! {
            status = self.child.wait() => status.ok(),
            _ = tokio::time::sleep(timeout) => { timed_out = true; None }
            _ = cancel.cancelled() => { cancelled = true; None }
            () = quota => { over_quota = max_disk; None }
        };
        let status = match status {
            Some(status) => Some(status),
            None => self.terminate().await,
        };
        // Background jobs left in the group: the group id stays reserved while they exist.
        let _ = killpg(self.pgid, Signal::SIGKILL);
        Ended {
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            timed_out,
            cancelled,
            over_quota,
        }
    }

    async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(KILL_GRACE, self.child.wait()).await {
            return status.ok();
        }
        let _ = killpg(self.pgid, Signal::SIGKILL);
        self.child.wait().await.ok()
    }

    /// Collects the output once every process of the command is gone.
    pub(crate) async fn finish(self, ended: Ended) -> RunOutcome {
        let mut reader = self.reader;
        if tokio::time::timeout(DRAIN_WAIT, &mut reader).await.is_err() {
            reader.abort();
        }
        let mut output = self
            .captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(max) = ended.over_quota {
            output.push(exceeded_message(max).as_bytes());
        }
        RunOutcome {
            exit_code: ended.exit_code,
            signal: ended.signal,
            timed_out: ended.timed_out,
            cancelled: ended.cancelled,
            disk_quota_exceeded: ended.over_quota.is_some(),
            output,
            duration: self.started.elapsed(),
        }
    }
}

/// After a run: removes its cgroups and makes sure no process of its uid is left, then marks
/// the lease clean. The kernel only removes a group that holds no task, so a removal is that
/// proof and saves the sweep (a fork and a `kill(-1)` pass, about 6 ms on the hot path);
/// without it (no usable cgroups, or a group still busy) the uid is swept and the removal
/// retried.
pub(crate) async fn clear_run(cgroup: Arc<RunCgroup>, lease: Option<&UidLease>) {
    let Some(left) = remove_cgroup(cgroup, CGROUP_FIRST_PATIENCE).await else {
        lease.inspect(|l| l.mark_clean());
        return;
    };
    let swept = match lease {
        Some(lease) => sweep(lease.uid).await.is_ok(),
        None => false,
    };
    // A sweep gives up on a fork bomb that outlasts it: the uid counts as clean only if the
    // groups (where there are any) then empty out.
    let emptied = !left.is_active()
        || remove_cgroup(Arc::new(left), CGROUP_PATIENCE)
            .await
            .is_none();
    if let Some(lease) = lease
        && swept
        && emptied
    {
        lease.mark_clean();
    }
}

/// Removes a run's cgroups once the spawned command (which held a reference) is gone.
/// Returns `None` when cgroups were in use and are all removed; otherwise what is left.
async fn remove_cgroup(cgroup: Arc<RunCgroup>, patience: Duration) -> Option<RunCgroup> {
    match Arc::try_unwrap(cgroup) {
        Ok(mut cgroup) if cgroup.is_active() => {
            let removed = move || (!cgroup.remove(patience)).then_some(cgroup);
            tokio::task::spawn_blocking(removed)
                .await
                .unwrap_or_else(|_| Some(RunCgroup::default()))
        }
        Ok(cgroup) => Some(cgroup),
        Err(_) => {
            tracing::warn!("sandbox cgroup still referenced; not removed");
            Some(RunCgroup::default())
        }
    }
}
