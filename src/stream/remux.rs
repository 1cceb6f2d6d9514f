//! Merge plans: ffmpeg fetches the video and the audio formats (with their
//! upstream headers) and remuxes them without re-encoding into fragmented
//! MP4 on stdout, which is streamed to the client as it comes.
//!
//! The response only starts once ffmpeg has produced its first bytes, so an
//! origin that refuses the URLs becomes a proper error (and, for 403/410, a
//! re-extraction) instead of an empty 200. ffmpeg runs in its own process
//! group, killed when the client hangs up or the server stops; its stderr is
//! logged on failure and never sent to the client.

use std::path::PathBuf;
use std::process::Stdio;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::io::ReaderStream;

use crate::extract::Format;
use crate::metrics::StreamGuard;
use crate::process::GroupGuard;

/// How much of ffmpeg's stderr is kept for the log.
const STDERR_TAIL: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    /// ffmpeg could not be started.
    #[error("ffmpeg could not be started: {0}")]
    Spawn(String),
    /// The origin refused a URL with 403/410: it has most likely expired.
    #[error("the origin refused the stream URLs")]
    Expired,
    /// ffmpeg exited before producing anything.
    #[error("merging the video and audio streams failed")]
    Failed,
}

pub struct Remuxer {
    /// `FFMPEG_PATH`.
    ffmpeg: PathBuf,
}

/// A running merge whose first bytes have arrived.
pub struct Merge {
    first: Bytes,
    rest: Running,
}

/// What must live exactly as long as the response body.
struct Running {
    stdout: ReaderStream<tokio::process::ChildStdout>,
    child: Child,
    group: GroupGuard,
    stderr: JoinHandle<Vec<u8>>,
}

/// ffmpeg's input options for one format: its User-Agent and other headers.
fn input_args(f: &Format) -> Vec<String> {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut args = Vec::new();
    let mut headers = String::new();
    for (k, v) in &f.http_headers {
        if k.eq_ignore_ascii_case("user-agent") {
            args.extend(["-user_agent".to_owned(), clean(v)]);
        } else if !k.eq_ignore_ascii_case("host") {
            headers.push_str(&format!("{}: {}\r\n", clean(k), clean(v)));
        }
    }
    if !headers.is_empty() {
        args.extend(["-headers".to_owned(), headers]);
    }
    args.extend(["-i".to_owned(), f.url.clone()]);
    args
}

impl Remuxer {
    pub fn new(ffmpeg: PathBuf) -> Self {
        Remuxer { ffmpeg }
    }

    /// Starts ffmpeg and waits for its first bytes.
    pub async fn start(&self, video: &Format, audio: &Format) -> Result<Merge, RemuxError> {
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            // Network protocols only: never a local file, whatever a playlist says.
            .args(["-protocol_whitelist", "http,https,tcp,tls,crypto"])
            // Idle I/O timeout in microseconds, per input.
            .args(["-rw_timeout", "30000000"])
            .args(input_args(video))
            .args(["-rw_timeout", "30000000"])
            .args(input_args(audio))
            .args(["-map", "0:v:0", "-map", "1:a:0", "-c", "copy"])
            .args(["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| RemuxError::Spawn(format!("{}: {e}", self.ffmpeg.display())))?;
        let group = GroupGuard::new(&child);
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > STDERR_TAIL {
                    buf.drain(..buf.len() - STDERR_TAIL);
                }
            }
            buf
        });
        let stdout = ReaderStream::with_capacity(child.stdout.take().expect("stdout is piped"), 64 * 1024);
        let mut rest = Running { stdout, child, group, stderr };
        match rest.stdout.next().await {
            Some(Ok(first)) => Ok(Merge { first, rest }),
            _ => {
                let log = rest.finish().await;
                let lower = log.to_ascii_lowercase();
                if lower.contains("403") || lower.contains("410") || lower.contains("forbidden") {
                    Err(RemuxError::Expired)
                } else {
                    Err(RemuxError::Failed)
                }
            }
        }
    }
}

impl Running {
    /// Reaps ffmpeg, logs its stderr if it failed, and returns that stderr.
    async fn finish(mut self) -> String {
        let status = self.child.wait().await;
        self.group.disarm();
        let stderr = String::from_utf8_lossy(&self.stderr.await.unwrap_or_default()).trim().to_owned();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => tracing::warn!(status = %s, stderr = %stderr, "ffmpeg failed"),
            Err(e) => tracing::warn!(error = %e, "ffmpeg could not be reaped"),
        }
        stderr
    }
}

impl Merge {
    /// The response body: the first bytes, then the rest as ffmpeg writes
    /// them. Dropping the body (a hang-up) kills ffmpeg.
    pub fn into_body(self, guard: StreamGuard) -> Body {
        guard.add_bytes(self.first.len() as u64);
        let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(self.first) });
        let rest = futures_util::stream::unfold(Some((self.rest, guard)), |state| async move {
            let (mut running, guard) = state?;
            match running.stdout.next().await {
                Some(Ok(bytes)) => {
                    guard.add_bytes(bytes.len() as u64);
                    Some((Ok(bytes), Some((running, guard))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None => {
                    running.finish().await;
                    None
                }
            }
        });
        Body::from_stream(first.chain(rest))
    }
}
