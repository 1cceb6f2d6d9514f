//! Stand-ins for egress proxies: an HTTP forward proxy (absolute-form
//! requests and `CONNECT`) and a SOCKS5 proxy, each logging what passes
//! through it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request or tunnel that went through a proxy.
#[derive(Debug, Clone)]
pub struct Passed {
    /// `GET http://host:port/path?query`, `CONNECT host:port`, or
    /// `SOCKS host:port`.
    pub target: String,
    /// `Proxy-Authorization`, or the SOCKS user name.
    pub auth: Option<String>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Passed>>>,
}

impl Proxy {
    /// An HTTP forward proxy: plain-http requests in absolute form are sent
    /// on (one per connection), `CONNECT` opens a tunnel.
    pub async fn http() -> Proxy {
        Proxy::start(false, None).await
    }

    /// The same behind TLS (an `https://` proxy), with a certificate of `ca`'s.
    pub async fn https(ca: &TestCa) -> Proxy {
        Proxy::start(false, Some(ca.acceptor.clone())).await
    }

    /// A SOCKS5 proxy (no authentication, or any user name and password).
    pub async fn socks5() -> Proxy {
        Proxy::start(true, None).await
    }

    async fn start(socks: bool, tls: Option<tokio_rustls::TlsAcceptor>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<Passed>>> = Arc::default();
        let shared = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, tls) = (shared.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = match tls {
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => http(stream, log).await,
                            Err(e) => Err(e),
                        },
                        None if socks => socks5(stream, log).await,
                        None => http(stream, log).await,
                    };
                });
            }
        });
        Proxy { addr, log }
    }

    /// `scheme://[user:pass@]127.0.0.1:port`.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        let auth = credentials.map(|(u, p)| format!("{u}:{p}@")).unwrap_or_default();
        format!("{scheme}://{auth}{}", self.addr)
    }

    /// The label reelay gives this proxy in metrics: `host:port`.
    pub fn label(&self) -> String {
        self.addr.to_string()
    }

    pub fn passed(&self) -> Vec<Passed> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests or tunnels named something containing `needle`.
    pub fn saw(&self, needle: &str) -> usize {
        self.passed().iter().filter(|p| p.target.contains(needle)).count()
    }
}

/// Reads a request head; returns it and whatever came after it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
    }
}

async fn http<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, log: Arc<Mutex<Vec<Passed>>>) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client).await?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let mut parts = first.split(' ');
    let (method, target, version) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or("HTTP/1.1"));
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let auth = headers
        .iter()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("proxy-authorization")))
        .map(|(_, v)| v.trim().to_owned());
    log.lock().unwrap().push(Passed { target: format!("{method} {target}"), auth });
    if method == "CONNECT" {
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            return client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        };
        client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let url = url::Url::parse(target).map_err(std::io::Error::other)?;
    let host = format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(80));
    let path = &url[url::Position::BeforePath..];
    let mut out = format!("{method} {path} {version}\r\n");
    for h in headers {
        let name = h.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if !matches!(name.as_str(), "proxy-authorization" | "proxy-connection" | "connection") {
            out.push_str(h);
            out.push_str("\r\n");
        }
    }
    out.push_str("connection: close\r\n\r\n");
    let mut upstream = TcpStream::connect(host).await?;
    upstream.write_all(out.as_bytes()).await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn socks5(mut client: TcpStream, log: Arc<Mutex<Vec<Passed>>>) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    client.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; greeting[1] as usize];
    client.read_exact(&mut methods).await?;
    let mut user = None;
    if methods.contains(&2) && !methods.contains(&0) {
        client.write_all(&[5, 2]).await?;
        let mut ver_len = [0u8; 2];
        client.read_exact(&mut ver_len).await?;
        let mut name = vec![0u8; ver_len[1] as usize];
        client.read_exact(&mut name).await?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen).await?;
        let mut pass = vec![0u8; plen[0] as usize];
        client.read_exact(&mut pass).await?;
        user = Some(String::from_utf8_lossy(&name).into_owned());
        client.write_all(&[1, 0]).await?;
    } else {
        client.write_all(&[5, 0]).await?;
    }
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    log.lock().unwrap().push(Passed { target: format!("SOCKS {target}"), auth: user });
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// A certificate authority of the test's own (made with openssl) and a
/// certificate for 127.0.0.1 it signed, which a reelay process trusts
/// through `SSL_CERT_FILE`.
pub struct TestCa {
    /// The CA's certificate (PEM).
    pub ca: std::path::PathBuf,
    /// TLS with the 127.0.0.1 certificate.
    pub acceptor: tokio_rustls::TlsAcceptor,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub async fn new() -> TestCa {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("srv.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let steps: [&[&str]; 3] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=reelay test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "srv.key",
                "-out",
                "srv.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "srv.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "srv.pem",
                "-days",
                "2",
                "-extfile",
                "srv.ext",
            ],
        ];
        for args in steps {
            let out = tokio::process::Command::new("openssl").args(args).current_dir(d).output().await.unwrap();
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(d.join("srv.pem")).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(d.join("srv.key")).unwrap();
        let config =
            tokio_rustls::rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
        TestCa { ca: d.join("ca.pem"), acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), _dir: dir }
    }
}

/// An https origin serving the media files with `ca`'s certificate;
/// returns `https://127.0.0.1:port`.
pub async fn tls_origin(ca: &TestCa) -> String {
    let acceptor = ca.acceptor.clone();
    let app =
        axum::Router::new().nest_service("/media", tower_http::services::ServeDir::new(crate::helpers::media_dir()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    base
}
