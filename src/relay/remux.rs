//! One segment of a muxed HLS. H.264 with AAC from DASH files with their
//! index is written in process ([`compose::Muxed`]); anything else (VP9,
//! AV1, Opus, a file the writer cannot read) is a time range of a video
//! file and of an audio file joined by ffmpeg into MPEG-TS without
//! re-encoding, as below. ffmpeg reads
//! both from the relay's loopback listener (so their bytes come from the
//! store, fetched once for every segment and viewer), seeks to the range
//! itself, and keeps the files' own timestamps (`-copyts`, moved by the
//! in-process writer's offset), so segments made one by one, in any order,
//! by either writer, line up on one timeline: a player that seeks to the
//! last minute gets that minute's segment and nothing before.
//! The audio is cut to the range too, or segments would overlap (audio
//! fragments straddle the video's).

use std::process::Stdio;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::compose::{self, ComposeError};
use super::{Relay, RelayError, Spec};
use crate::process::GroupGuard;

/// The largest segment kept: a minute of 4K is well under it.
const MAX_SEGMENT_BYTES: usize = 256 * 1024 * 1024;

impl Relay {
    /// Subsegment `n` of a video with its audio, as one MPEG-TS segment:
    /// written in process when it can be, else by ffmpeg.
    pub async fn muxed_segment(&self, muxed: compose::Muxed) -> Result<Bytes, RelayError> {
        match self.ts_segment(&muxed).await {
            Ok(bytes) => {
                self.0.metrics.relay.muxed.inc();
                Ok(bytes)
            }
            Err(ComposeError::Relay(e)) => Err(e),
            Err(ComposeError::Layout(why)) => {
                tracing::debug!(%why, "a muxed segment goes to ffmpeg");
                let (vspec, vindex) = muxed.video;
                let (from, to) = compose::span_seconds(&vindex, muxed.n).ok_or(RelayError::MergeFailed)?;
                self.remux_segment(vspec, muxed.audio.0, from, to).await
            }
        }
    }

    /// Seconds `from..to` of `video` and `audio` as one MPEG-TS segment.
    pub async fn remux_segment(&self, video: Spec, audio: Spec, from: f64, to: f64) -> Result<Bytes, RelayError> {
        let shared = &self.0;
        let video = shared.internal.route(video, "video.mp4");
        let audio = shared.internal.route(audio, "audio.m4a");
        let range = |cmd: &mut Command| {
            cmd.args(["-ss", &format!("{from:.3}"), "-to", &format!("{to:.3}")]);
        };
        let mut cmd = Command::new(&shared.settings.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            // The relay's loopback listener only: never a file, never another host.
            .args(["-protocol_whitelist", "http,tcp", "-copyts"]);
        range(&mut cmd);
        cmd.args(["-rw_timeout", "60000000", "-i", &video.url]);
        range(&mut cmd);
        cmd.args(["-rw_timeout", "60000000", "-i", &audio.url])
            .args(["-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-muxdelay", "0"])
            // On the in-process writer's timeline (the film's, plus its
            // offset), so a segment ffmpeg makes in a stream of segments
            // written in process (one the writer could not read) lines up.
            .args(["-output_ts_offset", &format!("{:.3}", compose::OFFSET as f64 / 90_000.0)])
            .args(["-f", "mpegts", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let program = shared.settings.ffmpeg.display().to_string();
        let mut child = cmd.spawn().map_err(|e| RelayError::Spawn(format!("{program}: {e}")))?;
        let mut group = GroupGuard::new(&child);
        shared.metrics.relay.remuxes.inc();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let errors = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(8 * 1024).read_to_end(&mut buf).await;
            buf
        });
        let mut out = Vec::with_capacity(2 * 1024 * 1024);
        let read = (&mut stdout).take(MAX_SEGMENT_BYTES as u64).read_to_end(&mut out).await;
        let status = child.wait().await;
        group.disarm();
        let errors = errors.await.unwrap_or_default();
        match (read, status) {
            (Ok(_), Ok(s)) if s.success() && !out.is_empty() => Ok(Bytes::from(out)),
            _ => {
                tracing::warn!(from, to, stderr = %String::from_utf8_lossy(&errors), "remuxing a segment failed");
                Err(RelayError::MergeFailed)
            }
        }
    }
}
