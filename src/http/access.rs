//! Who is asking, and may they: the client's address (believing forwarding
//! headers only from `TRUSTED_PROXIES`), `IP_ALLOWLIST` / `IP_DENYLIST`, and
//! API keys. Parsed once at start; a malformed list stops start-up with the
//! variable's name.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::config::Config;

pub struct Access {
    /// Peers whose X-Forwarded-For / X-Real-IP / Forwarded are believed.
    trusted: Vec<IpNet>,
    /// When not empty, only these clients are served.
    allow: Vec<IpNet>,
    /// Never served.
    deny: Vec<IpNet>,
    /// SHA-256 of each API key: compared digest to digest, in constant time,
    /// and the keys themselves are not kept.
    keys: Vec<[u8; 32]>,
}

/// What a request's key amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// No keys are configured.
    Open,
    Missing,
    Wrong,
    Valid,
}

/// Parses a comma list of CIDRs or plain addresses.
pub fn parse_cidrs(var: &str, raw: Option<&str>) -> Result<Vec<IpNet>, String> {
    raw.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{var}: '{s}' is not an IP address or CIDR"))
        })
        .collect()
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Equal in time that does not depend on where the bytes differ.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Access {
    pub fn from_config(c: &Config) -> Result<Self, String> {
        let mut raw_keys: Vec<String> = c
            .api_keys
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect();
        if let Some(path) = &c.api_keys_file {
            let text = std::fs::read_to_string(path).map_err(|e| format!("API_KEYS_FILE: {}: {e}", path.display()))?;
            raw_keys.extend(
                text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned),
            );
            if raw_keys.is_empty() {
                return Err(format!("API_KEYS_FILE: {} holds no keys", path.display()));
            }
        }
        Ok(Access {
            trusted: parse_cidrs("TRUSTED_PROXIES", c.trusted_proxies.as_deref())?,
            allow: parse_cidrs("IP_ALLOWLIST", c.ip_allowlist.as_deref())?,
            deny: parse_cidrs("IP_DENYLIST", c.ip_denylist.as_deref())?,
            keys: raw_keys.iter().map(|k| digest(k)).collect(),
        })
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy,
    /// in which case the nearest untrusted address it forwarded.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        let text =
            |name: &str| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
        let forwarded_for: Vec<IpAddr> =
            text("x-forwarded-for").split(',').filter_map(|s| parse_ip(s.trim())).collect();
        if !forwarded_for.is_empty() {
            return forwarded_for.iter().rev().copied().find(|ip| !self.is_trusted(*ip)).unwrap_or(forwarded_for[0]);
        }
        if let Some(ip) = parse_ip(text("x-real-ip").trim()) {
            return ip;
        }
        // Forwarded: for=192.0.2.1, for="[2001:db8::1]:4711"
        let forwarded: Vec<IpAddr> = text("forwarded")
            .split([',', ';'])
            .filter_map(|part| {
                let (k, v) = part.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| parse_ip(v.trim().trim_matches('"')))?
            })
            .collect();
        forwarded.iter().rev().copied().find(|ip| !self.is_trusted(*ip)).unwrap_or(peer)
    }

    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        !self.deny.iter().any(|n| n.contains(&ip))
            && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
    }

    pub fn keys_required(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn check_key(&self, presented: Option<&str>) -> KeyCheck {
        if self.keys.is_empty() {
            return KeyCheck::Open;
        }
        let Some(key) = presented.filter(|k| !k.is_empty()) else { return KeyCheck::Missing };
        let d = digest(key);
        // Every stored key is compared, so the time says nothing about which matched.
        let found = self.keys.iter().fold(false, |found, k| found | ct_eq(k, &d));
        if found { KeyCheck::Valid } else { KeyCheck::Wrong }
    }
}

/// An address, with or without a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    None
}

/// Whether two keys are the same, in time that does not depend on where
/// they differ.
pub fn same_key(a: &str, b: &str) -> bool {
    ct_eq(&digest(a), &digest(b))
}

/// A stable, non-reversible name for an API key, for rate-limit keys.
pub fn key_id(key: &str) -> String {
    digest(key)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The key a request presents: `X-API-Key`, `Authorization: Bearer` (or
/// cobalt's `Api-Key` scheme), or `?api_key=` for players that cannot set
/// headers.
pub fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim().to_owned());
    }
    if let Some(k) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("Api-Key ")))
    {
        return Some(k.trim().to_owned());
    }
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "api_key")
            .then(|| url::form_urlencoded::parse(format!("k={v}").as_bytes()).next().map(|(_, v)| v.into_owned()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(trusted: &str) -> Access {
        let c = Config::from_args(["reelay", "--trusted-proxies", trusted, "--api-keys", "k1, k2"]).unwrap();
        Access::from_config(&c).unwrap()
    }

    #[test]
    fn forwarding_headers_only_from_trusted_peers() {
        let a = access("10.0.0.0/8");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7, 10.0.0.2".parse().unwrap());
        assert_eq!(a.client_ip("10.0.0.1".parse().unwrap(), &h), "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(a.client_ip("198.51.100.1".parse().unwrap(), &h), "198.51.100.1".parse::<IpAddr>().unwrap());
        let mut h = HeaderMap::new();
        h.insert("forwarded", "for=\"[2001:db8::1]:4711\";proto=https".parse().unwrap());
        assert_eq!(a.client_ip("10.0.0.1".parse().unwrap(), &h), "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn keys_and_lists() {
        let a = access("");
        assert_eq!(a.check_key(None), KeyCheck::Missing);
        assert_eq!(a.check_key(Some("k2")), KeyCheck::Valid);
        assert_eq!(a.check_key(Some("k3")), KeyCheck::Wrong);
        assert!(parse_cidrs("IP_DENYLIST", Some("10.0.0.0/8, ::1, nonsense")).unwrap_err().contains("IP_DENYLIST"));
    }
}
