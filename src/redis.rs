//! The shared tier: Redis through a `ConnectionManager`, kept alive by a
//! background task so that requests never wait on a reconnect.
//!
//! Every command has a short deadline. A Redis that is down, slow or stopped
//! costs one request at most that deadline: the failure marks the tier down,
//! and until the maintenance task (every second) finds Redis answering again,
//! commands fail at once and callers carry on without the shared tier. State
//! changes are logged once, by the maintenance task, not per request.
//!
//! Owns: the Redis connection. A leaf.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one cache command may take before the request gives up on Redis.
const OP_TIMEOUT: Duration = Duration::from_millis(300);

/// One GCRA step on one key, with Redis's own clock so every instance
/// agrees. ARGV: emission interval (µs), limit. Returns {allowed, remaining,
/// retry_after_us, reset_us}.
pub const GCRA_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local tau = interval * (limit - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tau then
  return {0, 0, tat - now - tau, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now + tau + interval - new_tat) / interval), 0, new_tat - now}
"#;

#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Inner>,
}

struct Inner {
    /// Parsed once; each reconnect attempt starts from it.
    client: ::redis::Client,
    /// `None` until the first connection succeeds. After that the manager
    /// reconnects by itself and stays here.
    conn: RwLock<Option<ConnectionManager>>,
    /// `"healthy"`, or why not; read by the health endpoint.
    status: RwLock<String>,
    /// Whether commands are sent at all: cleared by a command that timed out
    /// or lost its connection, set by the maintenance task's next good check.
    up: AtomicBool,
}

impl RedisTier {
    /// Parses the URL; connecting happens in [`RedisTier::maintain`], so a
    /// Redis that is down at start does not stop the server.
    pub fn new(url: &str) -> Result<Self, ::redis::RedisError> {
        let client = ::redis::Client::open(url)?;
        Ok(RedisTier {
            inner: Arc::new(Inner {
                client,
                conn: RwLock::new(None),
                status: RwLock::new("connecting".to_owned()),
                up: AtomicBool::new(false),
            }),
        })
    }

    pub fn status(&self) -> String {
        self.inner.status.read().expect("status lock").clone()
    }

    pub fn is_healthy(&self) -> bool {
        *self.inner.status.read().expect("status lock") == "healthy"
    }

    fn conn(&self) -> Option<ConnectionManager> {
        self.inner.conn.read().expect("conn lock").clone()
    }

    /// Connects, then checks the connection every `every`; logs each change
    /// of state once. Runs until the server stops.
    pub async fn maintain(self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.refresh().await;
        }
    }

    /// Connects if need be, pings, and records (and logs) any change of state.
    /// Start-up calls it once, so the first requests already find Redis.
    pub async fn refresh(&self) {
        let now = self.check().await;
        self.inner.up.store(now == "healthy", Ordering::Relaxed);
        let before = std::mem::replace(&mut *self.inner.status.write().expect("status lock"), now.clone());
        // Logged when Redis comes or goes, not each time the reason it is
        // down reads differently (refused, reset, timed out...).
        let came_up = now == "healthy" && before != "healthy";
        let went_down = now != "healthy" && (before == "healthy" || before == "connecting");
        if came_up {
            tracing::info!("redis is healthy");
        } else if went_down {
            tracing::warn!(status = %now, "redis is not available; serving from the in-process cache");
        }
    }

    async fn check(&self) -> String {
        let conn = match self.conn() {
            Some(c) => c,
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(OP_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2));
                match tokio::time::timeout(
                    Duration::from_secs(3),
                    ConnectionManager::new_with_config(self.inner.client.clone(), config),
                )
                .await
                {
                    Ok(Ok(c)) => {
                        *self.inner.conn.write().expect("conn lock") = Some(c.clone());
                        c
                    }
                    Ok(Err(e)) => return format!("unhealthy: {e}"),
                    Err(_) => return "unhealthy: connect timed out".to_owned(),
                }
            }
        };
        let mut conn = conn;
        match tokio::time::timeout(Duration::from_secs(1), ::redis::cmd("PING").query_async::<String>(&mut conn)).await
        {
            Ok(Ok(_)) => "healthy".to_owned(),
            Ok(Err(e)) => format!("unhealthy: {e}"),
            Err(_) => "unhealthy: ping timed out".to_owned(),
        }
    }

    async fn run<T, F, Fut>(&self, f: F) -> Result<T, String>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        if !self.inner.up.load(Ordering::Relaxed) {
            return Err("redis is down".to_owned());
        }
        let conn = self.conn().ok_or_else(|| "not connected".to_owned())?;
        let down = match tokio::time::timeout(OP_TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if !(e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()) => {
                return Err(e.to_string());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        self.inner.up.store(false, Ordering::Relaxed);
        Err(down)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.run(|mut c| async move { c.get(key).await }).await
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), String> {
        let secs = ttl.as_secs().max(1);
        self.run(|mut c| async move { c.set_ex(key, value, secs).await }).await
    }

    pub async fn del(&self, key: &str) -> Result<(), String> {
        self.run(|mut c| async move { c.del(key).await }).await
    }

    /// `SET key 1 NX PX ttl`: true when this caller now holds the lock.
    pub async fn try_lock(&self, key: &str, ttl: Duration) -> Result<bool, String> {
        let ms = ttl.as_millis() as u64;
        self.run(|mut c| async move {
            let r: Option<String> =
                ::redis::cmd("SET").arg(key).arg(1).arg("NX").arg("PX").arg(ms).query_async(&mut c).await?;
            Ok(r.is_some())
        })
        .await
    }

    /// Runs one GCRA step for `key` in Redis (see [`GCRA_LUA`]).
    pub async fn gcra(&self, key: &str, interval_us: u64, limit: u32) -> Result<[i64; 4], String> {
        static SCRIPT: std::sync::LazyLock<::redis::Script> =
            std::sync::LazyLock::new(|| ::redis::Script::new(GCRA_LUA));
        self.run(|mut c| async move {
            let r: Vec<i64> = SCRIPT.key(key).arg(interval_us).arg(limit).invoke_async(&mut c).await?;
            Ok([r[0], r[1], r[2], r[3]])
        })
        .await
    }

    pub async fn exists(&self, key: &str) -> Result<bool, String> {
        self.run(|mut c| async move { c.exists(key).await }).await
    }
}
