//! The loopback listener ffmpeg reads merge inputs from: each input is an
//! object of the relay, reachable at a random, unguessable path while its
//! merge runs, on 127.0.0.1 only. Nothing else is served here (no API, no
//! keys, no rate limits), and nothing it serves is a URL a client chose.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{Body, Relay, Shared, Spec};

type Routes = Arc<Mutex<HashMap<String, Served>>>;

/// What a route serves: an object of the relay, or a small text in hand
/// (a subtitle track to embed).
#[derive(Clone)]
enum Served {
    Object(Arc<Spec>),
    Text(bytes::Bytes),
}

pub struct Internal {
    /// Taken by the accept loop when it starts.
    listener: Mutex<Option<TcpListener>>,
    port: u16,
    routes: Routes,
    /// The accept loop, stopped with the relay.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Internal {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
    }
}

/// A served input; dropping it stops serving it.
pub struct Route {
    /// Where ffmpeg reads it.
    pub url: String,
    id: String,
    routes: Routes,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl Internal {
    pub async fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        Ok(Internal { listener: Mutex::new(Some(listener)), port, routes: Arc::default(), task: Mutex::default() })
    }

    /// Serves `spec` until the returned route is dropped. The path ends in
    /// the object's key and `name`, so `ps` and ffmpeg's logs say what it
    /// reads.
    pub fn route(&self, spec: Spec, name: &str) -> Route {
        let label: String =
            spec.key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(96).collect();
        self.add(Served::Object(Arc::new(spec)), &format!("{label}-{name}"))
    }

    /// Serves `text` until the returned route is dropped.
    pub fn route_text(&self, text: bytes::Bytes, name: &str) -> Route {
        self.add(Served::Text(text), name)
    }

    fn add(&self, served: Served, name: &str) -> Route {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), served);
        let url = format!("http://127.0.0.1:{}/{id}/{name}", self.port);
        Route { url, id, routes: self.routes.clone() }
    }

    /// Starts accepting; the loop ends when the relay is dropped.
    pub(super) fn serve(&self, relay: Relay) {
        let Some(listener) = self.listener.lock().unwrap_or_else(PoisonError::into_inner).take() else { return };
        let weak: Weak<Shared> = Arc::downgrade(&relay.0);
        drop(relay);
        let routes = self.routes.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (weak, routes) = (weak.clone(), routes.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (weak, routes) = (weak.clone(), routes.clone());
                    async move { Ok::<_, Infallible>(answer(weak, routes, req).await) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    }
}

async fn answer(weak: Weak<Shared>, routes: Routes, req: Request<Incoming>) -> Response<Body> {
    let id = req.uri().path().trim_start_matches('/').split('/').next().unwrap_or("");
    let served = routes.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned();
    let (Some(served), Some(shared)) = (served, weak.upgrade()) else { return status(StatusCode::NOT_FOUND) };
    let spec = match served {
        Served::Object(spec) => spec,
        Served::Text(text) => return Response::new(Body::Full(Some(text))),
    };
    let spec = Spec {
        key: spec.key.clone(),
        source: spec.source.clone(),
        chunk_size: spec.chunk_size,
        transient: spec.transient,
    };
    match Relay(shared).serve_counted(spec, req.method(), req.headers(), false).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(error = %e, "a merge input could not be relayed");
            status(StatusCode::BAD_GATEWAY)
        }
    }
}

fn status(s: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::Empty);
    *r.status_mut() = s;
    r
}
