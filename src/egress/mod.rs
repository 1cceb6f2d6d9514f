//! Egress: which way an extraction leaves the server, and with it every
//! fetch of that video's URLs.
//!
//! Platforms answer datacenter addresses with bot checks, and googlevideo
//! binds a stream URL to the address that extracted it (`ip=` in the URL).
//! So an extraction picks a [`Route`] (a proxy from `EGRESS_PROXIES`, in
//! turn, skipping those cooling down; a random address of
//! `EGRESS_SOURCE_CIDR`), yt-dlp runs through it, the route is cached with
//! the info, and the relay ([`connect`]) fetches that video's bytes the
//! same way. A proxy whose extraction met a bot check, a 429 or a
//! connection failure cools down for `EGRESS_COOLDOWN`.
//!
//! Owns: routes out and their connector. May import `net`.

pub mod connect;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

/// The way one extraction left, kept with its cached info so that the
/// video's fetches leave the same way. The default is the server's own
/// address, with no proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The proxy's label (`host:port`, never its credentials), looked up in
    /// `EGRESS_PROXIES` by whoever fetches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The source address, from `EGRESS_SOURCE_CIDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
}

impl Route {
    pub fn is_direct(&self) -> bool {
        self.proxy.is_none() && self.source.is_none()
    }
}

/// How to talk to a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// `http://` or `https://`: `CONNECT` for https origins, absolute-form
    /// requests for plain-http ones.
    Http,
    /// `socks5://` (names resolved here) or `socks5h://` (by the proxy).
    Socks5 { remote_dns: bool },
}

/// One of `EGRESS_PROXIES`.
pub struct Proxy {
    /// `host:port` (with `#2`, `#3`… for repeats): metrics, logs, and the
    /// key a cached route names.
    pub label: String,
    /// The URL, credentials included: for the connector only, never logged.
    pub url: Url,
    /// As configured, for yt-dlp's `--proxy` (never logged).
    configured: String,
    pub kind: ProxyKind,
    /// Refused extractions until this instant.
    cooling_until: Mutex<Option<Instant>>,
}

/// Every proxy is cooling down: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllCooling(pub Duration);

/// `EGRESS_PROXIES`, `EGRESS_SOURCE_CIDR` and `EGRESS_COOLDOWN`, with the
/// proxies' cool-downs.
pub struct Egress {
    proxies: Vec<Proxy>,
    /// Where the next extraction starts looking (round robin).
    next: AtomicUsize,
    /// The block source addresses are drawn from.
    block: Option<IpNet>,
    cooldown: Duration,
}

impl Egress {
    /// Parses `EGRESS_PROXIES` (comma-separated URLs) and
    /// `EGRESS_SOURCE_CIDR`; errors name the variable and never echo a
    /// credential.
    pub fn new(proxies: &str, block: Option<&str>, cooldown: Duration) -> Result<Self, String> {
        let mut parsed: Vec<Proxy> = Vec::new();
        for (i, item) in proxies.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            let url = Url::parse(item).map_err(|e| format!("EGRESS_PROXIES: entry {} is not a URL: {e}", i + 1))?;
            let kind = match url.scheme() {
                "http" | "https" => ProxyKind::Http,
                "socks5" => ProxyKind::Socks5 { remote_dns: false },
                "socks5h" => ProxyKind::Socks5 { remote_dns: true },
                other => {
                    return Err(format!(
                        "EGRESS_PROXIES: entry {} has scheme '{other}'; use http, https, socks5 or socks5h",
                        i + 1
                    ));
                }
            };
            let host = url.host_str().ok_or_else(|| format!("EGRESS_PROXIES: entry {} has no host", i + 1))?;
            let port = url.port_or_known_default().unwrap_or(1080);
            let base = format!("{host}:{port}");
            let repeats = parsed.iter().filter(|p| p.label == base || p.label.starts_with(&format!("{base}#"))).count();
            let label = if repeats == 0 { base } else { format!("{base}#{}", repeats + 1) };
            parsed.push(Proxy { label, url, configured: item.to_owned(), kind, cooling_until: Mutex::new(None) });
        }
        let block = match block.map(str::trim).filter(|b| !b.is_empty()) {
            None => None,
            Some(b) => Some(b.parse::<IpNet>().map_err(|_| format!("EGRESS_SOURCE_CIDR: '{b}' is not a CIDR block"))?),
        };
        Ok(Egress { proxies: parsed, next: AtomicUsize::new(0), block, cooldown })
    }

    /// Whether a failed extraction may be tried again another way: another
    /// proxy, or another address of the block.
    pub fn can_retry(&self) -> bool {
        self.proxies.len() > 1 || (self.proxies.is_empty() && self.block.is_some_and(|b| b.hosts().nth(1).is_some()))
    }

    /// The route for the next extraction, never `avoid`'s proxy.
    pub fn pick(&self, avoid: Option<&Route>) -> Result<Route, AllCooling> {
        let source = self.block.map(random_address);
        if self.proxies.is_empty() {
            return Ok(Route { proxy: None, source });
        }
        let now = Instant::now();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut soonest: Option<Duration> = None;
        for i in 0..self.proxies.len() {
            let p = &self.proxies[(start + i) % self.proxies.len()];
            if avoid.and_then(|r| r.proxy.as_deref()) == Some(p.label.as_str()) {
                continue;
            }
            match *p.cooling_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
                Some(until) if until > now => {
                    let left = until - now;
                    soonest = Some(soonest.map_or(left, |s| s.min(left)));
                }
                _ => return Ok(Route { proxy: Some(p.label.clone()), source }),
            }
        }
        Err(AllCooling(soonest.unwrap_or(self.cooldown)))
    }

    /// The route's proxy was refused (bot check, 429, no connection): it
    /// rests for `EGRESS_COOLDOWN`.
    pub fn cool(&self, route: &Route) {
        if let Some(p) = route.proxy.as_deref().and_then(|l| self.proxy(l)) {
            *p.cooling_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(Instant::now() + self.cooldown);
            tracing::warn!(egress = %p.label, cooldown_s = self.cooldown.as_secs(), "egress proxy refused; cooling down");
        }
    }

    /// Each proxy's label and the seconds it still rests (0: in use), for
    /// the status page.
    pub fn cooling(&self) -> Vec<(String, u64)> {
        let now = Instant::now();
        self.proxies
            .iter()
            .map(|p| {
                let until = *p.cooling_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                (p.label.clone(), until.map_or(0, |u| u.saturating_duration_since(now).as_secs()))
            })
            .collect()
    }

    /// The proxy a cached route names, if it is still configured.
    pub fn proxy(&self, label: &str) -> Option<&Proxy> {
        self.proxies.iter().find(|p| p.label == label)
    }

    /// Whether this server can still send a cached route's fetches its way:
    /// its proxy is configured and its address is in the block.
    pub fn honours(&self, route: &Route) -> bool {
        let proxy_ok = route.proxy.as_deref().is_none_or(|l| self.proxy(l).is_some());
        let source_ok = route.source.is_none_or(|ip| self.block.is_some_and(|b| b.contains(&ip)));
        proxy_ok && source_ok
    }

    /// The route's label in metrics and logs: its proxy's, else the source
    /// block's (one series per block, not per address), else `direct`.
    pub fn label(&self, route: &Route) -> String {
        match (&route.proxy, self.block) {
            (Some(p), _) => p.clone(),
            (None, Some(b)) if route.source.is_some() => b.to_string(),
            _ => "direct".to_owned(),
        }
    }

    /// yt-dlp's options for the route: `--proxy`, `--source-address`.
    pub fn ytdlp_args(&self, route: &Route) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(p) = route.proxy.as_deref().and_then(|l| self.proxy(l)) {
            args.extend(["--proxy".to_owned(), p.configured.clone()]);
        }
        if let Some(ip) = route.source {
            args.extend(["--source-address".to_owned(), ip.to_string()]);
        }
        args
    }

    /// The proxy URL (credentials included) for the worker's `proxy` option.
    pub fn proxy_url(&self, route: &Route) -> Option<String> {
        route.proxy.as_deref().and_then(|l| self.proxy(l)).map(|p| p.configured.clone())
    }

    /// `text` with every configured proxy password replaced by `***`, for
    /// logs and error messages (yt-dlp may quote the proxy URL it used).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for p in &self.proxies {
            let Some(pw) = p.url.password().filter(|pw| !pw.is_empty()) else { continue };
            let user = p.url.username();
            let decoded = percent_decode(pw).unwrap_or_else(|_| pw.to_owned());
            for secret in [pw, decoded.as_str()] {
                out = out.replace(&format!("{user}:{secret}@"), &format!("{user}:***@"));
                // Quoted alone too, unless so short that words would go with it.
                if secret.len() >= 4 {
                    out = out.replace(secret, "***");
                }
            }
        }
        out
    }

    /// Start-up check of `EGRESS_SOURCE_CIDR`: an address of the block can
    /// be bound on this host, or a message saying what the host needs.
    pub fn check_block(&self) -> Result<(), String> {
        let Some(block) = self.block else { return Ok(()) };
        let ip = random_address(block);
        std::net::TcpListener::bind((ip, 0)).map(drop).map_err(|e| {
            let hint = match ip {
                IpAddr::V6(_) => format!(
                    "route the block to this host (`ip -6 route add local {block} dev lo`) or allow binding \
                     addresses not on an interface (`sysctl -w net.ipv6.ip_nonlocal_bind=1`)"
                ),
                IpAddr::V4(_) => format!(
                    "add the block to an interface (`ip addr add {block} dev eth0`, or `ip route add local {block} dev lo`)"
                ),
            };
            format!("EGRESS_SOURCE_CIDR: cannot bind {ip}, an address of {block}, on this host ({e}); {hint}")
        })
    }
}

/// `%XX` escapes decoded (URL credentials are percent-encoded).
fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
}

/// A random address of `block`, never its network or (IPv4) broadcast
/// address when the block has others.
pub fn random_address(block: IpNet) -> IpAddr {
    let r = uuid::Uuid::new_v4().as_u128();
    match block {
        IpNet::V4(b) => {
            let host_bits = 32 - u32::from(b.prefix_len());
            let base = u32::from(b.network());
            if host_bits < 2 {
                let mask = if host_bits == 0 { 0 } else { 1 };
                return IpAddr::V4(Ipv4Addr::from(base | (r as u32 & mask)));
            }
            let span = (1u64 << host_bits) - 2; // without network and broadcast
            IpAddr::V4(Ipv4Addr::from(base + 1 + (r as u64 % span) as u32))
        }
        IpNet::V6(b) => {
            let host_bits = 128 - u32::from(b.prefix_len());
            let base = u128::from(b.network());
            if host_bits == 0 {
                return IpAddr::V6(Ipv6Addr::from(base));
            }
            let mask = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
            let host = (r & mask).max(1); // never the subnet-router anycast address
            IpAddr::V6(Ipv6Addr::from(base | host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rotates_skipping_cooling_proxies() {
        let e = Egress::new(
            "http://u:p%40ss@10.0.0.1:3128, socks5h://10.0.0.2:1080,http://u2:x@10.0.0.1:3128",
            None,
            Duration::from_secs(300),
        )
        .unwrap();
        let labels: Vec<_> = e.proxies.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["10.0.0.1:3128", "10.0.0.2:1080", "10.0.0.1:3128#2"]);
        let picks: Vec<_> = (0..3).map(|_| e.pick(None).unwrap().proxy.unwrap()).collect();
        assert_eq!(picks, labels);
        e.cool(&Route { proxy: Some("10.0.0.2:1080".into()), source: None });
        for _ in 0..6 {
            assert_ne!(e.pick(None).unwrap().proxy.as_deref(), Some("10.0.0.2:1080"));
        }
        let first = Route { proxy: Some("10.0.0.1:3128".into()), source: None };
        assert_eq!(e.pick(Some(&first)).unwrap().proxy.as_deref(), Some("10.0.0.1:3128#2"));
        e.cool(&first);
        e.cool(&Route { proxy: Some("10.0.0.1:3128#2".into()), source: None });
        let AllCooling(wait) = e.pick(None).unwrap_err();
        assert!(wait <= Duration::from_secs(300) && wait > Duration::from_secs(290), "{wait:?}");
        assert_eq!(e.redact("proxy http://u:p%40ss@10.0.0.1 and p@ss"), "proxy http://u:***@10.0.0.1 and ***");
        assert_eq!(e.redact("via http://u2:x@10.0.0.1:3128 exactly"), "via http://u2:***@10.0.0.1:3128 exactly");
    }

    #[test]
    fn refuses_bad_values_without_echoing_credentials() {
        let err = Egress::new("ftp://u:secret@h", None, Duration::ZERO).err().unwrap();
        assert!(err.contains("EGRESS_PROXIES") && !err.contains("secret"), "{err}");
        assert!(Egress::new("", Some("10.0.0.0/33"), Duration::ZERO).err().unwrap().contains("EGRESS_SOURCE_CIDR"));
    }

    #[test]
    fn source_addresses_stay_in_the_block() {
        let b: IpNet = "127.0.0.0/8".parse().unwrap();
        for _ in 0..1000 {
            let ip = random_address(b);
            assert!(b.contains(&ip) && ip != b.network() && ip != b.broadcast(), "{ip}");
        }
        let b6: IpNet = "2001:db8:1:2::/64".parse().unwrap();
        let ips: std::collections::HashSet<_> = (0..100).map(|_| random_address(b6)).collect();
        assert!(ips.len() > 90 && ips.iter().all(|ip| b6.contains(ip)));
        assert_eq!(random_address("192.0.2.7/32".parse().unwrap()), "192.0.2.7".parse::<IpAddr>().unwrap());
        let e = Egress::new("", Some("127.0.0.0/8"), Duration::ZERO).unwrap();
        e.check_block().unwrap();
        let r = e.pick(None).unwrap();
        assert!(e.honours(&r) && e.label(&r) == "127.0.0.0/8" && e.can_retry());
        assert!(!e.honours(&Route { proxy: None, source: Some("10.0.0.1".parse().unwrap()) }));
        // TEST-NET-2: no interface has it (these machines' own eth0 is in 192.0.2.0/24,
        // so a random address of that block was this host's one time in 254).
        let err = Egress::new("", Some("198.51.100.0/24"), Duration::ZERO).unwrap().check_block().unwrap_err();
        assert!(err.contains("EGRESS_SOURCE_CIDR") && err.contains("198.51.100."), "{err}");
    }
}
