//! A crowd of video players, for `bench/run.py`: `VIEWERS` clients open one
//! stream, arriving evenly over `ARRIVAL` seconds; each reads as fast as
//! bytes come until it holds a `BUFFER`-second buffer, then at `RATE`
//! bytes/s, for `SECONDS` seconds from its start. A player starts playing a
//! second after its first byte and stalls if it ever runs dry.
//!
//! Prints one JSON array, a `[first byte ms or null, bytes, stalled, late
//! ms]` per viewer (late: how far behind its schedule the player itself
//! started, a sign that the players lacked CPU). Written in Rust (not asyncio) so that the players are not what
//! the measurement measures: 1,000 Python players on the server's cores
//! spent seconds of their own before sending their requests.
//!
//! `cargo run --release --example crowd -- ADDR PATH VIEWERS RATE SECONDS ARRIVAL BUFFER`

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Player {
    addr: String,
    path: String,
    rate: f64,
    seconds: f64,
    buffer: f64,
}

impl Player {
    /// A connection with a receive buffer a player on a real network would
    /// have (`RCVBUF`, 0: the kernel's default, which on loopback grows to
    /// megabytes and makes the server push each player far ahead).
    async fn connect(&self) -> std::io::Result<TcpStream> {
        let addr: std::net::SocketAddr = self.addr.parse().map_err(std::io::Error::other)?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        if let Some(n) = std::env::var("RCVBUF").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0) {
            socket.set_recv_buffer_size(n)?;
        }
        socket.connect(addr).await
    }

    async fn watch(&self, start: Instant, delay: Duration) -> (Option<f64>, u64, bool, f64) {
        tokio::time::sleep_until((start + delay).into()).await;
        let t0 = Instant::now();
        let late = (t0 - start - delay).as_secs_f64() * 1000.0;
        let Ok(mut conn) = self.connect().await else { return (None, 0, true, late) };
        let request = format!("GET {} HTTP/1.1\r\nHost: bench\r\n\r\n", self.path);
        if conn.write_all(request.as_bytes()).await.is_err() {
            return (None, 0, true, late);
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut head = Vec::new();
        let body_start = loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return (None, 0, true, late),
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        if !head.starts_with(b"HTTP/1.1 200") {
            return (None, 0, true, late);
        }
        let mut got = (head.len() - body_start) as f64;
        let mut first = (got > 0.0).then(Instant::now);
        let mut stalled = false;
        while t0.elapsed().as_secs_f64() < self.seconds {
            let since_first = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
            let allowed = self.rate * (self.buffer + since_first);
            if got >= allowed {
                let wait = ((got - allowed) / self.rate + 0.01).min(0.1);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                continue;
            }
            let want = ((allowed - got) as usize).clamp(1, buf.len());
            let n = match tokio::time::timeout(Duration::from_secs(30), conn.read(&mut buf[..want])).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => {
                    stalled = true;
                    break;
                }
            };
            let first = *first.get_or_insert_with(Instant::now);
            got += n as f64;
            if got < self.rate * (first.elapsed().as_secs_f64() - 1.0) {
                stalled = true;
            }
        }
        let first_ms = first.map(|f| (f - t0).as_secs_f64() * 1000.0);
        (first_ms, got as u64, stalled, late)
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, viewers, rate, seconds, arrival, buffer] = args.as_slice() else {
        eprintln!("usage: crowd ADDR PATH VIEWERS RATE SECONDS ARRIVAL BUFFER");
        std::process::exit(2);
    };
    let num = |s: &str| s.parse::<f64>().expect("a number");
    let viewers = num(viewers) as usize;
    let arrival = num(arrival);
    let player = std::sync::Arc::new(Player {
        addr: addr.clone(),
        path: path.clone(),
        rate: num(rate),
        seconds: num(seconds),
        buffer: num(buffer),
    });
    let start = Instant::now();
    let tasks: Vec<_> = (0..viewers)
        .map(|i| {
            let player = player.clone();
            let delay = Duration::from_secs_f64(arrival * i as f64 / viewers as f64);
            tokio::spawn(async move { player.watch(start, delay).await })
        })
        .collect();
    let mut results = Vec::with_capacity(viewers);
    for t in tasks {
        let (first, got, stalled, late) = t.await.expect("a player panicked");
        results.push(serde_json::json!([first, got, stalled, late]));
    }
    println!("{}", serde_json::Value::Array(results));
}
