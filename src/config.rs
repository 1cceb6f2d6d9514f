//! The one `Config`: every setting is an environment variable (the
//! reference's names keep their meaning) and a `--flag` of the same name.
//! A malformed value stops start-up with clap's message, which names the
//! variable; nothing falls back to a default silently.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "reelay",
    version,
    args_override_self = true,
    about = "Video information, redirect and streaming-proxy API server"
)]
pub struct Config {
    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8001)]
    pub port: u16,

    /// `development` logs text, `production` logs JSON.
    #[arg(long, env = "ENVIRONMENT", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,

    /// Log level or tracing filter (debug, info, warn, error, or e.g. `reelay=debug`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Redis host; setting it makes `redis` the default cache backend.
    #[arg(long, env = "REDIS_HOST")]
    pub redis_host: Option<String>,

    /// Redis port.
    #[arg(long, env = "REDIS_PORT", default_value_t = 6379)]
    pub redis_port: u16,

    /// Redis password (optional).
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Redis database number.
    #[arg(long, env = "REDIS_DB", default_value_t = 0)]
    pub redis_db: i64,

    /// Full Redis URL (`redis://[:password@]host:port/db`); wins over REDIS_HOST and friends.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// `memory` (in-process only) or `redis` (shared tier behind an in-process one).
    /// Default: `redis` when REDIS_HOST or REDIS_URL is set, else `memory`.
    #[arg(long, env = "CACHE_BACKEND", value_enum)]
    pub cache_backend: Option<CacheBackend>,

    /// How long playlist listings are cached, in seconds.
    #[arg(long, env = "CACHE_TTL", default_value_t = 300)]
    pub cache_ttl: u64,

    /// How long video metadata is cached, in seconds (never past the stream URLs' own expiry).
    #[arg(long, env = "VIDEO_INFO_TTL", default_value_t = 3600)]
    pub video_info_ttl: u64,

    /// How old, in seconds, cached stream URLs may be when a stream is served from them.
    #[arg(long, env = "STREAM_URL_TTL", default_value_t = 600)]
    pub stream_url_ttl: u64,

    /// How long a reading of the cookie files is used, in seconds: the sign-in status, and which
    /// extractions run signed in.
    #[arg(long, env = "AUTH_STATUS_TTL", default_value_t = 1800)]
    pub auth_status_ttl: u64,

    /// Enable per-client rate limiting.
    #[arg(long, env = "RATE_LIMIT_ENABLED", default_value_t = true, action = ArgAction::Set)]
    pub rate_limit_enabled: bool,

    /// Requests allowed per client per window.
    #[arg(long, env = "RATE_LIMIT_MAX_REQUESTS", default_value_t = 1000)]
    pub rate_limit_max_requests: u32,

    /// Rate-limit window, in seconds.
    #[arg(long, env = "RATE_LIMIT_WINDOW", default_value_t = 60)]
    pub rate_limit_window: u64,

    /// The yt-dlp executable (or a stand-in that prints yt-dlp's JSON).
    #[arg(long, env = "YTDLP_PATH", default_value = "yt-dlp")]
    pub ytdlp_path: PathBuf,

    /// Extra yt-dlp options for every extraction, shell-quoted (for example
    /// `--extractor-args "youtubepot-bgutilhttp:base_url=http://bgutil:4416"`);
    /// in both extractor modes. A value yt-dlp rejects stops start-up.
    #[arg(long, env = "YTDLP_ARGS", default_value = "", allow_hyphen_values = true)]
    pub ytdlp_args: String,

    /// Keeps yt-dlp current in the background: `stable` or `nightly` (PyPI
    /// pre-releases) install a newer release next to the one in use with
    /// YTDLP_PYTHON's pip, check it (and YTDLP_CANARY_URL), and switch. Any
    /// other value is a pip requirement to follow instead (a SABR build:
    /// `yt-dlp[default,deno,curl-cffi] @ https://…/yt-dlp-sabr.tar.gz`).
    #[arg(long, env = "YTDLP_UPDATE", default_value = "off", value_parser = parse_update)]
    pub ytdlp_update: UpdateChannel,

    /// YouTube's SABR formats (formats served only through YouTube's own
    /// streaming protocol, relayed by reelay's SABR client): `auto` plays
    /// them for videos with nothing else, `prefer` wherever yt-dlp lists
    /// them, `off` never. A SABR-capable yt-dlp is asked for them with
    /// `--extractor-args youtube:formats=duplicate`.
    #[arg(long, env = "YOUTUBE_SABR", default_value = "auto")]
    pub youtube_sabr: crate::extract::SabrMode,

    /// How often to look for a newer yt-dlp (`24h`, `30m`, `90s`, or seconds).
    #[arg(long, env = "YTDLP_UPDATE_INTERVAL", default_value = "24h", value_parser = parse_duration)]
    pub ytdlp_update_interval: Duration,

    /// A URL a new yt-dlp must extract before it is used (unset: `--version` only).
    #[arg(long, env = "YTDLP_CANARY_URL")]
    pub ytdlp_canary_url: Option<String>,

    /// Where updated yt-dlp releases are installed, one folder each.
    #[arg(long, env = "YTDLP_UPDATE_DIR")]
    pub ytdlp_update_dir: Option<PathBuf>,

    /// Comma list of proxies extractions and their videos' fetches leave through, in turn
    /// (`http://`, `https://`, `socks5://`, `socks5h://`; `user:pass@` allowed).
    #[arg(long, env = "EGRESS_PROXIES", default_value = "", hide_env_values = true)]
    pub egress_proxies: String,

    /// Seconds a proxy rests after a bot check, an HTTP 429 or a connection failure.
    #[arg(long, env = "EGRESS_COOLDOWN", default_value_t = 300)]
    pub egress_cooldown: u64,

    /// An IPv4 or IPv6 block (e.g. a routed /64): each extraction, and its video's fetches,
    /// leave from a random address of it. Checked at start-up.
    #[arg(long, env = "EGRESS_SOURCE_CIDR")]
    pub egress_source_cidr: Option<String>,

    /// `process` runs yt-dlp once per extraction; `worker` keeps EXTRACT_CONCURRENCY
    /// Python processes with yt_dlp imported (YTDLP_PYTHON), for fast cold misses.
    #[arg(long, env = "EXTRACTOR", value_enum, default_value_t = ExtractorKind::Process)]
    pub extractor: ExtractorKind,

    /// The Python interpreter that has yt_dlp installed (for EXTRACTOR=worker).
    #[arg(long, env = "YTDLP_PYTHON", default_value = "python3")]
    pub ytdlp_python: PathBuf,

    /// The ffmpeg executable (used to merge separate video and audio streams).
    #[arg(long, env = "FFMPEG_PATH", default_value = "ffmpeg")]
    pub ffmpeg_path: PathBuf,

    /// Seconds an extraction may take before it is killed (504).
    #[arg(long, env = "EXTRACT_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub extract_timeout: u64,

    /// Extractions that may run at once; more wait their turn.
    #[arg(long, env = "EXTRACT_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub extract_concurrency: u32,

    /// Allow extracting and proxying private, loopback and link-local addresses.
    #[arg(long, env = "ALLOW_PRIVATE_NETWORKS", default_value_t = false, action = ArgAction::Set)]
    pub allow_private_networks: bool,

    /// Key for signed HLS URLs (random per process when unset: single instance only).
    #[arg(long, env = "URL_SIGNING_KEY", hide_env_values = true)]
    pub url_signing_key: Option<String>,

    /// Comma list of country codes whose clients get proxy mode in smart streaming.
    #[arg(long, env = "PROXY_COUNTRIES", default_value = "CN")]
    pub proxy_countries: String,

    /// `direct` or `proxy`: what smart streaming does when nothing else decides.
    #[arg(long, env = "DEFAULT_STREAM_MODE", value_enum, default_value_t = StreamModeSetting::Direct)]
    pub default_stream_mode: StreamModeSetting,

    /// Comma list of API keys required on /api/v2 routes (empty: no keys needed).
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,

    /// File with one API key per line.
    #[arg(long, env = "API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// Comma list of CIDRs allowed to use the API (empty: everyone).
    #[arg(long, env = "IP_ALLOWLIST")]
    pub ip_allowlist: Option<String>,

    /// Comma list of CIDRs refused.
    #[arg(long, env = "IP_DENYLIST")]
    pub ip_denylist: Option<String>,

    /// Comma list of allowed CORS origins, or `*`.
    #[arg(long, env = "CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,

    /// Comma list of CIDRs whose X-Forwarded-For / X-Real-IP / Forwarded headers are believed.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,

    /// Comma list of keys that open the status page (`/ui/status`) from
    /// addresses other than loopback and `TRUSTED_PROXIES`.
    #[arg(long, env = "ADMIN_KEYS", hide_env_values = true)]
    pub admin_keys: Option<String>,

    /// The address clients reach this server at (`https://media.example`),
    /// for answers that must carry absolute links (cobalt's tunnels). Unset:
    /// each request's `Host`, with `X-Forwarded-Proto`/`-Host` believed from
    /// `TRUSTED_PROXIES`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Separate, lower per-client budget for cache misses (requests per window).
    #[arg(long, env = "EXTRACT_RATE_LIMIT")]
    pub extract_rate_limit: Option<u32>,

    /// Seconds streams get to finish at shutdown.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,

    /// Threads serving connections, each running its own connections on a
    /// runtime of its own, as nginx runs a worker per core (0: one per CPU).
    /// Why not one shared runtime: `app::workers`.
    #[arg(long, env = "WORKERS", default_value_t = 0)]
    pub workers: u16,

    /// Requests (streams included) served at once; more get 503 at once.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,

    /// Seconds a non-stream request may take (0: EXTRACT_TIMEOUT + 15).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value_t = 0)]
    pub request_timeout: u64,

    /// Seconds a lasting refusal (removed, private, not in this country,
    /// age or sign-in required) is remembered, in both cache tiers, so
    /// repeated lookups run yt-dlp once; 0 turns it off. Bot checks,
    /// timeouts and rate limits are never remembered.
    #[arg(long, env = "ERROR_CACHE_TTL", default_value_t = 60)]
    pub error_cache_ttl: u64,

    /// Seconds a client may take to send a request body it announced (408
    /// past it), so a client that promises a body and sends nothing does
    /// not hold a connection and a task for the request's lifetime.
    #[arg(long, env = "REQUEST_BODY_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_body_timeout: u64,

    /// Folder of Netscape cookie files named `<platform>.txt` (youtube, bilibili, twitter, instagram,
    /// twitch); extractions for that platform run signed in with a private copy.
    #[arg(long, env = "COOKIES_DIR")]
    pub cookies_dir: Option<PathBuf>,

    /// Bytes of stream blocks kept in memory (`256MiB`, `1GiB`, `0` for none): one fetch from the
    /// origin serves every viewer of a video, and replays come from here.
    #[arg(long, env = "STREAM_CACHE_MEMORY", default_value = "256MiB", value_parser = parse_bytes)]
    pub stream_cache_memory: u64,

    /// Folder where stream blocks are also kept on disk, across restarts (unset: memory only).
    #[arg(long, env = "STREAM_CACHE_DIR")]
    pub stream_cache_dir: Option<PathBuf>,

    /// Bytes of stream blocks kept on disk under STREAM_CACHE_DIR (`0` turns the disk tier off).
    #[arg(long, env = "STREAM_CACHE_DISK_MAX", default_value = "10GiB", value_parser = parse_bytes)]
    pub stream_cache_disk_max: u64,

    /// Bytes asked of an origin per request when the extractor names no chunk size (YouTube's
    /// formats do: 10 MiB); one more range is fetched ahead of each viewer.
    #[arg(long, env = "STREAM_CHUNK_SIZE", default_value = "8MiB", value_parser = parse_chunk)]
    pub stream_chunk_size: u64,

    /// Seconds an origin may send nothing mid-stream before it is asked again from where it stopped.
    #[arg(long, env = "STREAM_IDLE_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stream_idle_timeout: u64,

    /// Seconds a live stream's variant may go without a playlist request before its shared
    /// session stops polling the origin.
    #[arg(long, env = "LIVE_IDLE_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub live_idle_timeout: u64,

    /// Comma list of `host=address` pairs that origin host names resolve to, without DNS (like
    /// curl's --resolve); the private-network rule still applies to the address.
    #[arg(long, env = "UPSTREAM_RESOLVE", value_parser = parse_resolve)]
    pub upstream_resolve: Option<Resolve>,
}

/// `UPSTREAM_RESOLVE`, parsed.
#[derive(Debug, Clone, Default)]
pub struct Resolve(pub std::collections::HashMap<String, std::net::IpAddr>);

fn parse_resolve(s: &str) -> Result<Resolve, String> {
    let mut map = std::collections::HashMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (host, ip) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not host=address"))?;
        let ip = ip.trim().parse().map_err(|_| format!("'{ip}' is not an IP address"))?;
        map.insert(host.trim().to_ascii_lowercase(), ip);
    }
    Ok(Resolve(map))
}

/// A size: bytes, or with a unit (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`, all
/// powers of 1024; `KB`, `MB`, `GB` too).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a size (like 512MiB or 2GiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("unknown unit '{other}' in '{s}'; use K, M, G or T (KiB, MiB, GiB, TiB)")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("'{s}' is too large"))
}

fn parse_chunk(s: &str) -> Result<u64, String> {
    let n = parse_bytes(s)?;
    if !(64 * 1024..=1 << 30).contains(&n) {
        return Err("between 64KiB and 1GiB".into());
    }
    Ok(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheBackend {
    Memory,
    Redis,
}

/// `YTDLP_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateChannel {
    Off,
    Stable,
    Nightly,
    /// A pip requirement (a fork's build, a pinned version).
    Requirement(String),
}

impl UpdateChannel {
    /// The updater's channel; `None` when updates are off.
    pub fn channel(&self) -> Option<crate::extract::update::Channel> {
        use crate::extract::update::Channel;
        match self {
            UpdateChannel::Off => None,
            UpdateChannel::Stable => Some(Channel::Stable),
            UpdateChannel::Nightly => Some(Channel::Nightly),
            UpdateChannel::Requirement(r) => Some(Channel::Requirement(r.clone())),
        }
    }
}

/// `off`, `stable`, `nightly`, or a pip requirement; one that pip would read
/// as an option is refused.
fn parse_update(s: &str) -> Result<UpdateChannel, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "off" | "" => Ok(UpdateChannel::Off),
        "stable" => Ok(UpdateChannel::Stable),
        "nightly" => Ok(UpdateChannel::Nightly),
        _ if t.starts_with('-') => Err(format!("'{t}' is not off, stable, nightly or a pip requirement")),
        _ => Ok(UpdateChannel::Requirement(t.to_owned())),
    }
}

/// A duration: seconds, or with a unit (`s`, `m`, `h`, `d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a duration (like 24h, 30m or 90s)"))?;
    let secs = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => return Err(format!("unknown unit '{other}' in '{s}'; use s, m, h or d")),
    };
    if n == 0 {
        return Err("must be more than 0".into());
    }
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(|| format!("'{s}' is too long"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExtractorKind {
    Process,
    Worker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamModeSetting {
    Direct,
    Proxy,
}

impl Config {
    /// Parses a config from explicit arguments only (the program name first),
    /// ignoring the environment. Tests use it so that the machine's variables
    /// cannot change what they exercise.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cmd = <Self as clap::CommandFactory>::command();
        cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let mut matches = cmd.try_get_matches_from(args)?;
        <Self as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
    }

    /// The cache backend in force, after the REDIS_HOST / REDIS_URL default.
    pub fn cache_backend(&self) -> CacheBackend {
        self.cache_backend.unwrap_or(if self.redis_host.is_some() || self.redis_url.is_some() {
            CacheBackend::Redis
        } else {
            CacheBackend::Memory
        })
    }

    /// The Redis URL built from REDIS_URL or REDIS_HOST/PORT/PASSWORD/DB.
    pub fn redis_url(&self) -> String {
        if let Some(url) = &self.redis_url {
            return url.clone();
        }
        let host = self.redis_host.as_deref().unwrap_or("127.0.0.1");
        let auth = self.redis_password.as_deref().map(|p| format!(":{p}@")).unwrap_or_default();
        format!("redis://{auth}{host}:{}/{}", self.redis_port, self.redis_db)
    }

    /// `PROXY_COUNTRIES` as upper-case codes.
    pub fn proxy_countries(&self) -> Vec<String> {
        self.proxy_countries.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect()
    }

    pub fn extract_timeout(&self) -> Duration {
        Duration::from_secs(self.extract_timeout)
    }

    /// `YTDLP_ARGS` split as a shell would.
    pub fn ytdlp_args(&self) -> Result<Vec<String>, String> {
        shlex::split(&self.ytdlp_args).ok_or_else(|| "YTDLP_ARGS: unbalanced quotes".to_owned())
    }

    /// `EGRESS_PROXIES`, `EGRESS_SOURCE_CIDR` and `EGRESS_COOLDOWN`, parsed.
    pub fn egress(&self) -> Result<crate::egress::Egress, String> {
        crate::egress::Egress::new(
            &self.egress_proxies,
            self.egress_source_cidr.as_deref(),
            Duration::from_secs(self.egress_cooldown),
        )
    }

    /// The deadline of non-stream requests.
    pub fn request_timeout(&self) -> Duration {
        match self.request_timeout {
            0 => self.extract_timeout() + Duration::from_secs(15),
            s => Duration::from_secs(s),
        }
    }

    pub fn video_info_ttl(&self) -> Duration {
        Duration::from_secs(self.video_info_ttl)
    }

    pub fn stream_url_ttl(&self) -> Duration {
        Duration::from_secs(self.stream_url_ttl)
    }

    /// The Python that fetches as a browser (curl_cffi, for files yt-dlp
    /// marks `impersonate`): the one beside YTDLP_PATH when it is a venv's
    /// (where `scripts/setup` installs yt-dlp with its extras), else
    /// YTDLP_PYTHON.
    pub fn impersonation_python(&self) -> PathBuf {
        let beside = self.ytdlp_path.parent().map(|d| d.join("python")).filter(|p| p.exists());
        beside.unwrap_or_else(|| self.ytdlp_python.clone())
    }

    /// The live sessions' settings.
    pub fn live(&self) -> crate::live::Settings {
        crate::live::Settings { idle: Duration::from_secs(self.live_idle_timeout) }
    }

    /// The relay engine's settings.
    pub fn relay(&self) -> crate::relay::Settings {
        crate::relay::Settings {
            memory: self.stream_cache_memory,
            chunk: self.stream_chunk_size,
            idle: Duration::from_secs(self.stream_idle_timeout),
            disk_dir: self.stream_cache_dir.clone(),
            disk_max: self.stream_cache_disk_max,
            ffmpeg: self.ffmpeg_path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_args(["reelay", "--rate-limit-enabled", "maybe"]).unwrap_err().to_string();
        assert!(err.contains("RATE_LIMIT_ENABLED") || err.contains("rate-limit-enabled"), "{err}");
        let err = Config::from_args(["reelay", "--port", "99999"]).unwrap_err().to_string();
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn backend_defaults_follow_redis_settings() {
        let c = Config::from_args(["reelay"]).unwrap();
        assert_eq!(c.cache_backend(), CacheBackend::Memory);
        let c = Config::from_args(["reelay", "--redis-host", "r"]).unwrap();
        assert_eq!(c.cache_backend(), CacheBackend::Redis);
        assert_eq!(c.redis_url(), "redis://r:6379/0");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("512 KB"), Ok(512 << 10));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5XB").unwrap_err().contains("unit"));
        assert!(parse_bytes("99999999999T").is_err());
        let err = Config::from_args(["reelay", "--stream-chunk-size", "1"]).unwrap_err().to_string();
        assert!(err.contains("stream-chunk-size") || err.contains("STREAM_CHUNK_SIZE"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_update("Nightly"), Ok(UpdateChannel::Nightly));
        assert_eq!(
            parse_update("yt-dlp[default] @ https://example.org/y.tar.gz"),
            Ok(UpdateChannel::Requirement("yt-dlp[default] @ https://example.org/y.tar.gz".into()))
        );
        assert!(parse_update("--index-url=http://evil").is_err(), "read by pip as an option");
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2 m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err() && parse_duration("soon").is_err() && parse_duration("3w").is_err());
    }
}
