//! The private-network guard (DESIGN §5): unless `ALLOW_PRIVATE_NETWORKS`
//! is set, the server neither extracts nor fetches from loopback, private,
//! link-local or otherwise non-public addresses.
//!
//! For the proxy the check lives in the HTTP client's resolver, so it covers
//! every redirect hop and the address actually connected to (no window for
//! DNS rebinding); URLs with a literal IP never reach a resolver and are
//! checked by [`check_url`] on every hop instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// True for addresses a public service may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 198 && (b == 18 || b == 19))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// Why [`check_url`] refused a URL: the client's doing, or the name's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// The host is, or resolves to, a private or local address (the
    /// client asked for something the server will not fetch).
    Private(String),
    /// The name does not resolve: DNS, not the client, failed.
    Unresolvable(String),
}

/// Refuses a URL whose host is a literal non-public IP, or a name that
/// resolves to one, or does not resolve. Used before extraction.
pub async fn check_url(url: &url::Url, allow_private: bool) -> Result<(), UrlRefusal> {
    if allow_private {
        return Ok(());
    }
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) => return check_ip(IpAddr::V4(ip)).map_err(UrlRefusal::Private),
        Some(url::Host::Ipv6(ip)) => return check_ip(IpAddr::V6(ip)).map_err(UrlRefusal::Private),
        Some(url::Host::Domain(d)) => d.to_owned(),
        None => return Err(UrlRefusal::Private("the URL has no host".to_owned())),
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| UrlRefusal::Unresolvable(format!("cannot resolve {host}: {e}")))?;
    for addr in addrs {
        check_ip(addr.ip()).map_err(UrlRefusal::Private)?;
    }
    Ok(())
}

/// The literal-IP part of [`check_url`], usable where no await is possible
/// (the redirect policy).
pub fn check_literal(url: &url::Url, allow_private: bool) -> Result<(), String> {
    match url.host() {
        _ if allow_private => Ok(()),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip)),
        _ => Ok(()),
    }
}

fn check_ip(ip: IpAddr) -> Result<(), String> {
    if is_public(ip) { Ok(()) } else { Err(format!("{ip} is a private or local address")) }
}

/// A resolver that drops non-public addresses (unless allowed), so the
/// client can only ever connect to public ones.
#[derive(Clone)]
pub struct GuardedResolver {
    /// `ALLOW_PRIVATE_NETWORKS`.
    pub allow_private: bool,
    /// `UPSTREAM_RESOLVE`: host names answered without asking DNS.
    pub pinned: std::sync::Arc<std::collections::HashMap<String, IpAddr>>,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        let pinned = self.pinned.get(name.as_str()).copied();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = match pinned {
                Some(ip) => vec![SocketAddr::new(ip, 0)],
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(std::io::Error::other(format!("{host} resolves to no public address")));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
