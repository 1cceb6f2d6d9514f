//! Fetching a URL the way yt-dlp marks some must be fetched (`impersonate`:
//! YouTube's subtitle files): as a browser, with curl_cffi from yt-dlp's
//! own Python (installed with its extras). reelay's HTTP client cannot look
//! like a browser on the wire; this does, for the few small files that need
//! it. The caller checks the URL against the private-address rule first.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// What the child runs: `url`, and a proxy URL or an empty string.
const SCRIPT: &str = r#"
import sys
from curl_cffi import requests
url, proxy, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
proxies = {"http": proxy, "https": proxy} if proxy else None
r = requests.get(url, impersonate="chrome", proxies=proxies, timeout=20, allow_redirects=False)
if r.status_code != 200:
    sys.stderr.write(f"HTTP {r.status_code}")
    sys.exit(3)
sys.stdout.buffer.write(r.content[:limit])
"#;

/// The body at `url` fetched as a browser, at most `limit` bytes; `proxy`
/// is the egress' proxy URL, when the video left through one.
pub async fn fetch(python: &Path, url: &str, proxy: Option<&str>, limit: usize) -> Result<Vec<u8>, String> {
    let mut child = Command::new(python)
        .args(["-c", SCRIPT, url, proxy.unwrap_or(""), &limit.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let run = async {
        let mut body = Vec::new();
        let mut errors = Vec::new();
        let mut out = (&mut stdout).take(limit as u64);
        let mut err = (&mut stderr).take(4096);
        let (read, _) = tokio::join!(out.read_to_end(&mut body), err.read_to_end(&mut errors));
        read.map_err(|e| e.to_string())?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        match status.success() {
            true => Ok(body),
            false => Err(String::from_utf8_lossy(&errors).lines().last().unwrap_or("failed").to_owned()),
        }
    };
    tokio::time::timeout(Duration::from_secs(30), run).await.map_err(|_| "no answer within 30 s".to_owned())?
}
