//! The upstream client's connector: to the origin from a route's source
//! address, or through its proxy (HTTP `CONNECT` or SOCKS5 for https
//! origins, absolute-form requests to an HTTP proxy for plain-http ones).
//!
//! The tunnel and SOCKS handshakes are hyper-util's; this module picks one
//! per route and gives every kind of connection one type, so that one
//! client type serves every route.

use std::error::Error as StdError;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use tower_service::Service;

use super::{Proxy, ProxyKind};
use crate::net::GuardedResolver;

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Any stream a connection runs over (TCP, TLS to an HTTPS proxy).
trait Io: Read + Write + Connection + Unpin + Send {}
impl<T: Read + Write + Connection + Unpin + Send> Io for T {}

/// One connection, whichever way it went.
pub struct Conn {
    io: Box<dyn Io>,
    /// Requests on it go to an HTTP proxy in absolute form.
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write_vectored(cx, bufs)
    }
}

/// A route's proxy, ready to connect through.
#[derive(Clone)]
struct Via {
    kind: ProxyKind,
    /// The proxy's address (`http(s)://host:port`; SOCKS proxies as `http://`).
    uri: Uri,
    /// `user`, `password`, percent-decoded.
    auth: Option<(String, String)>,
    /// To the proxy itself: TLS for an `https://` proxy. Proxies are the
    /// operator's, so the private-address guard does not apply to them.
    to_proxy: HttpsConnector<HttpConnector<GuardedResolver>>,
}

/// Connects for one route.
#[derive(Clone)]
pub struct Connector {
    /// Straight to origins, through the private-address guard.
    direct: HttpConnector<GuardedResolver>,
    via: Option<Via>,
}

impl Connector {
    /// `source`: the address to connect from; `proxy`: the route's proxy.
    /// `tls`: for an `https://` proxy.
    pub fn new(
        resolver: GuardedResolver,
        tls: &rustls::ClientConfig,
        timeout: Duration,
        source: Option<IpAddr>,
        proxy: Option<&Proxy>,
    ) -> Self {
        let tcp = |resolver: GuardedResolver| {
            let mut http = HttpConnector::new_with_resolver(resolver);
            http.enforce_http(false);
            http.set_connect_timeout(Some(timeout));
            http.set_nodelay(true);
            http.set_local_address(source);
            http
        };
        let via = proxy.map(|p| {
            let host = p.url.host_str().unwrap_or_default();
            let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
            let port = p.url.port_or_known_default().unwrap_or(1080);
            let scheme = if p.url.scheme() == "https" { "https" } else { "http" };
            let uri = format!("{scheme}://{host}:{port}").parse().expect("a host and a port make a URI");
            let decode = |s: &str| super::percent_decode(s).unwrap_or_else(|_| s.to_owned());
            let auth = (!p.url.username().is_empty())
                .then(|| (decode(p.url.username()), decode(p.url.password().unwrap_or_default())));
            let to_proxy = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp(GuardedResolver { allow_private: true, ..resolver.clone() }));
            Via { kind: p.kind, uri, auth, to_proxy }
        });
        Connector { direct: tcp(resolver), via }
    }

    /// The `Proxy-Authorization` a plain-http request through this route's
    /// HTTP proxy carries (https ones carry it on `CONNECT`).
    pub fn proxy_authorization(&self) -> Option<HeaderValue> {
        let via = self.via.as_ref().filter(|v| v.kind == ProxyKind::Http)?;
        via.auth.as_ref().map(|(u, p)| basic(u, p))
    }
}

fn basic(user: &str, pass: &str) -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = HeaderValue::try_from(format!("Basic {token}")).expect("base64 is a valid header");
    v.set_sensitive(true);
    v
}

/// `dst` with its port spelled out: the tunnel and SOCKS handshakes assume
/// 443 when it is missing, which is wrong for `http://`.
fn with_port(dst: Uri) -> Uri {
    if dst.port().is_some() {
        return dst;
    }
    let port = if dst.scheme_str() == Some("http") { 80 } else { 443 };
    let host = dst.host().unwrap_or_default();
    format!("{}://{host}:{port}/", dst.scheme_str().unwrap_or("https")).parse().unwrap_or(dst)
}

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let plain_http = dst.scheme_str() == Some("http");
        let dst = with_port(dst);
        let Some(via) = self.via.clone() else {
            let mut direct = self.direct.clone();
            return Box::pin(async move {
                let io = direct.call(dst).await?;
                Ok(Conn { io: Box::new(io), proxied: false })
            });
        };
        Box::pin(async move {
            let io: Box<dyn Io> = match via.kind {
                ProxyKind::Http if plain_http => {
                    let mut to_proxy = via.to_proxy.clone();
                    let io = to_proxy.call(via.uri.clone()).await.map_err(|e| format!("the proxy: {e}"))?;
                    return Ok(Conn { io: Box::new(io), proxied: true });
                }
                ProxyKind::Http => {
                    let mut tunnel = Tunnel::new(via.uri, via.to_proxy);
                    if let Some((u, p)) = &via.auth {
                        tunnel = tunnel.with_auth(basic(u, p));
                    }
                    Box::new(tunnel.call(dst).await?)
                }
                ProxyKind::Socks5 { remote_dns } => {
                    let mut socks = SocksV5::new(via.uri, via.to_proxy).local_dns(!remote_dns);
                    if let Some((u, p)) = via.auth {
                        socks = socks.with_auth(u, p);
                    }
                    Box::new(socks.call(dst).await.map_err(|e| format!("the SOCKS proxy: {e}"))?)
                }
            };
            Ok(Conn { io, proxied: false })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::with_port;

    #[test]
    fn ports_are_spelled_out_for_the_handshakes() {
        assert_eq!(with_port("http://a.example/x?y".parse().unwrap()).to_string(), "http://a.example:80/");
        assert_eq!(with_port("https://[::1]/x".parse().unwrap()).to_string(), "https://[::1]:443/");
        assert_eq!(with_port("https://h:8443/x".parse().unwrap()).to_string(), "https://h:8443/x");
    }
}
