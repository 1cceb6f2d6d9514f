//! Child processes (yt-dlp, ffmpeg) run in their own process group, so that
//! a timeout, a client hanging up or shutdown kills them together with
//! anything they started.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

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
