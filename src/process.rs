//! Child processes (yt-dlp, ffmpeg) run in their own process group, so that
//! a timeout, a client hanging up or shutdown kills them together with
//! anything they started.

use std::process::{Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

/// Why [`output`] has no output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("{0}")]
    Spawn(std::io::Error),
    /// Reading its output or waiting for it failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// It ran past its limit; its group was killed.
    #[error("took longer than {} s", .0.as_secs())]
    TimedOut(Duration),
}

/// Runs `cmd` to its end in a process group of its own, collecting stdout
/// and stderr; past `limit`, or on any failure, the whole group is killed.
pub async fn output(mut cmd: Command, limit: Duration) -> Result<Output, RunError> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
    let child = cmd.spawn().map_err(RunError::Spawn)?;
    let mut guard = GroupGuard::new(&child);
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            // Reaped: the pid may be reused from now on, so the guard must
            // not fire. Anything the child left behind closed its pipes, or
            // the reads would not have finished.
            guard.disarm();
            Ok(out)
        }
        Ok(Err(e)) => Err(RunError::Io(e)),
        Err(_) => Err(RunError::TimedOut(limit)),
    }
}

/// Kills a child's process group when dropped, unless disarmed after the
/// child was reaped (from then on its pid may belong to someone else).
pub struct GroupGuard(Option<Pid>);

impl GroupGuard {
    /// Guards the group led by `child` (spawned with `process_group(0)`).
    pub fn new(child: &tokio::process::Child) -> Self {
        GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw))
    }

    /// The child has been reaped: nothing to kill any more.
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}
