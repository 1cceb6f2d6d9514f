//! `EXTRACTOR=worker`: a pool of long-lived Python processes that import
//! yt_dlp once and answer one JSON request per line, which takes a cold
//! extraction from a second of interpreter start-up to the extraction
//! itself. A worker that times out, dies or has served `MAX_USES`
//! extractions is killed (with its process group) and replaced on demand.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{ExtractError, classify};
use crate::process::GroupGuard;

/// The worker program, shipped inside the binary.
const SCRIPT: &str = include_str!("worker.py");

/// Extractions a worker serves before it is replaced (yt-dlp keeps caches).
const MAX_USES: u32 = 200;

/// The egress of one extraction, as yt-dlp's options.
pub struct Via {
    /// `--proxy`.
    pub proxy: Option<String>,
    /// `--source-address`.
    pub source_address: Option<std::net::IpAddr>,
}

pub struct WorkerPool {
    /// `YTDLP_PYTHON`: the interpreter that has yt_dlp.
    python: PathBuf,
    /// The extractions' yt-dlp options (`YTDLP_ARGS`, and what SABR adds)
    /// as a JSON list, handed to each worker in its environment.
    args: Mutex<String>,
    /// The updated release's folder (first on `PYTHONPATH`) and its
    /// generation (a new release or new options); workers of an older
    /// generation are not reused.
    release: Mutex<(Option<PathBuf>, u64)>,
    /// Workers waiting for a request; the extractor's semaphore bounds how
    /// many are busy, so this never holds more than `EXTRACT_CONCURRENCY`.
    idle: Mutex<Vec<Worker>>,
}

struct Worker {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    uses: u32,
    /// The release it imported (see `WorkerPool::switch`).
    generation: u64,
    /// Declared before `child`, so the group is killed before the child is
    /// dropped (and reaped).
    _group: GroupGuard,
    child: Child,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    info: Option<Value>,
    version: Option<String>,
    /// yt-dlp's verbose header, for `{"debug_header": true}`.
    debug: Option<String>,
    error: Option<String>,
}

impl WorkerPool {
    /// `args`: `YTDLP_ARGS`, which each worker turns into options with
    /// yt-dlp's own parser.
    pub fn new(python: PathBuf, args: &[String]) -> Self {
        let args = Mutex::new(serde_json::to_string(args).expect("strings serialise"));
        WorkerPool { python, args, release: Mutex::new((None, 0)), idle: Mutex::new(Vec::new()) }
    }

    /// New workers take `args`; idle ones with the old are stopped, busy
    /// ones when they finish.
    pub fn set_args(&self, args: &[String]) {
        *self.args.lock().expect("args lock") = serde_json::to_string(args).expect("strings serialise");
        self.next_generation(None);
    }

    /// New workers import yt_dlp from `folder`; idle ones of the old release
    /// are stopped, busy ones when they finish.
    pub fn switch(&self, folder: PathBuf) {
        self.next_generation(Some(folder));
    }

    /// Workers started from now on are of a new generation (from `folder`
    /// when given); idle ones of the old are stopped.
    fn next_generation(&self, folder: Option<PathBuf>) {
        let mut release = self.release.lock().expect("release lock");
        if let Some(folder) = folder {
            release.0 = Some(folder);
        }
        release.1 += 1;
        drop(release);
        self.idle.lock().expect("idle lock").clear();
    }

    fn generation(&self) -> u64 {
        self.release.lock().expect("release lock").1
    }

    fn spawn(&self) -> Result<Worker, ExtractError> {
        let (folder, generation) = self.release.lock().expect("release lock").clone();
        let mut cmd = Command::new(&self.python);
        if let Some(folder) = folder {
            super::use_release(&mut cmd, &folder);
        }
        let mut child = cmd
            .args(["-u", "-c", SCRIPT])
            .env("REELAY_YTDLP_ARGS", self.args.lock().expect("args lock").as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExtractError::NotRunnable(format!("{}: {e}", self.python.display())))?;
        let group = GroupGuard::new(&child);
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(Worker { stdin, stdout, uses: 0, generation, _group: group, child })
    }

    pub async fn version(&self, timeout: Duration) -> Result<String, ExtractError> {
        let answer = self.ask(&serde_json::json!({"version": true}), timeout).await?;
        Ok(answer.version.unwrap_or_default())
    }

    /// The `[debug]` lines `yt-dlp -v` would print (with `YTDLP_ARGS`).
    pub async fn debug_header(&self, timeout: Duration) -> Result<String, ExtractError> {
        let answer = self.ask(&serde_json::json!({"debug_header": true}), timeout).await?;
        Ok(answer.debug.unwrap_or_default())
    }

    /// What `yt-dlp -J` would print for `url` (with `--flat-playlist` when
    /// `flat`, `--cookies` when given, and the route's `--proxy` and
    /// `--source-address`).
    pub async fn extract(
        &self,
        url: &str,
        flat: bool,
        cookies: Option<&Path>,
        via: &Via,
        timeout: Duration,
    ) -> Result<Value, ExtractError> {
        let request = serde_json::json!({
            "url": url,
            "flat": flat,
            "cookies": cookies,
            "proxy": via.proxy,
            "source_address": via.source_address,
        });
        let answer = self.ask(&request, timeout).await?;
        answer.info.ok_or_else(|| ExtractError::Failed("the extractor worker answered without info".into()))
    }

    /// An idle worker that is still alive, else a new one.
    fn take(&self) -> Result<(Worker, bool), ExtractError> {
        let generation = self.generation();
        let mut idle = self.idle.lock().expect("idle lock");
        while let Some(mut w) = idle.pop() {
            if w.generation == generation && matches!(w.child.try_wait(), Ok(None)) {
                return Ok((w, true));
            }
        }
        drop(idle);
        Ok((self.spawn()?, false))
    }

    async fn ask(&self, request: &Value, timeout: Duration) -> Result<Answer, ExtractError> {
        let mut line = serde_json::to_string(request).expect("json serialises");
        line.push('\n');
        let (worker, pooled) = self.take()?;
        match self.exchange(worker, &line, timeout).await {
            // A pooled worker that died since its last answer: one retry on a fresh one.
            Err(ExtractError::Failed(_)) if pooled => self.exchange(self.spawn()?, &line, timeout).await,
            other => other,
        }
    }

    async fn exchange(&self, mut worker: Worker, line: &str, timeout: Duration) -> Result<Answer, ExtractError> {
        let exchange = async {
            worker.stdin.write_all(line.as_bytes()).await?;
            let mut reply = String::new();
            worker.stdout.read_line(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        let reply = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                tracing::warn!(timeout_s = timeout.as_secs(), "extractor worker timed out; killed");
                return Err(ExtractError::Timeout(timeout.as_secs()));
            }
            Ok(Ok(reply)) if !reply.is_empty() => reply,
            // A worker that never answered did not start: most likely no yt_dlp.
            Ok(_) if worker.uses == 0 => {
                return Err(ExtractError::NotRunnable(format!(
                    "the extractor worker exited; does {} have yt_dlp installed?",
                    self.python.display()
                )));
            }
            Ok(Err(e)) => return Err(ExtractError::Failed(format!("the extractor worker failed: {e}"))),
            Ok(Ok(_)) => return Err(ExtractError::Failed("the extractor worker exited".into())),
        };
        let answer: Answer = serde_json::from_str(&reply)
            .map_err(|e| ExtractError::Failed(format!("the extractor worker said nonsense: {e}")))?;
        worker.uses += 1;
        if worker.uses < MAX_USES && worker.generation == self.generation() {
            self.idle.lock().expect("idle lock").push(worker);
        }
        if answer.ok { Ok(answer) } else { Err(classify(answer.error.as_deref().unwrap_or("ERROR: unknown failure"))) }
    }
}
