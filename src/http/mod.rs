//! The HTTP layer, the only module that knows axum: one module per route
//! group, each with its `routes()`, the middleware every request goes through
//! (`middleware`: request ids, limits, logs; `guard`: IP lists, API keys, rate
//! limits), CORS (`cors`), `AppState` and `Client` (`state`), `ApiError` (`error`), the
//! shared response shapes (`reply`), input read at the edge (`edge`), what
//! shared caches may keep (`caching`), and the OpenAPI document with `GET /`
//! (`docs`).
//!
//! Owns: routes, status codes and headers. May import everything below it
//! (`config`, `service`, `relay`, ...) but not `app`; route modules share
//! `reply`, `edge`, `error`, `caching` and `hls`, never each other.

pub mod access;
mod batch;
mod caching;
mod captions;
mod cobalt;
pub mod conn;
mod cors;
mod docs;
mod edge;
pub mod error;
mod guard;
mod hls;
pub mod live;
mod manifest;
mod middleware;
mod playlists;
pub mod reply;
mod signin;
mod state;
mod status;
mod stream;
mod system;
mod ui;
mod videos;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::MethodRouter;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::timeout::TimeoutLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use cors::Cors;
pub use state::{AppState, Client, Inner, RequestIds};

/// Every API route, as registered: what `/openapi.json` must describe.
pub fn route_paths() -> Vec<&'static str> {
    all_routes().into_iter().map(|(path, ..)| path).collect()
}

fn all_routes() -> Vec<(&'static str, MethodRouter<AppState>, bool)> {
    let timed = |v: Vec<(&'static str, MethodRouter<AppState>)>| v.into_iter().map(|(p, r)| (p, r, true));
    let untimed = |v: Vec<(&'static str, MethodRouter<AppState>)>| v.into_iter().map(|(p, r)| (p, r, false));
    // System routes answer from memory at once: no timer for them.
    untimed(system::routes())
        .chain(untimed(docs::routes()))
        .chain(timed(videos::routes()))
        .chain(timed(batch::routes()))
        .chain(timed(playlists::routes()))
        .chain(untimed(signin::routes()))
        .chain(untimed(stream::routes()))
        .chain(untimed(hls::routes()))
        .chain(untimed(live::routes()))
        .chain(timed(captions::routes()))
        .chain(untimed(manifest::routes()))
        .chain(timed(cobalt::routes()))
        .chain(untimed(cobalt::tunnel_routes()))
        .chain(untimed(status::routes()))
        .collect()
}

/// The whole application as one service. Layers, outermost first:
/// `observe` (request id, limits, CORS, errors, logs, metrics) around the
/// router, once; then, per route, `guard` (lists, keys, rate limit; it also
/// hands the matched route back to `observe`) and, on non-stream routes,
/// `REQUEST_TIMEOUT`.
///
/// `observe` wraps the router rather than each route because axum clones a
/// route's whole stack for every request; around the router only the
/// router's `Arc` is cloned.
pub fn service(state: AppState) -> Service {
    let observe = axum::middleware::from_fn_with_state(state.clone(), middleware::observe);
    BoxCloneSyncService::new(ServiceBuilder::new().layer(observe).service(router(state)))
}

/// What [`service`] returns: cloned once per connection.
pub type Service = BoxCloneSyncService<axum::extract::Request, axum::response::Response, std::convert::Infallible>;

/// The routes with what each needs of its own (`guard`, timeouts).
fn router(state: AppState) -> Router {
    let timeout = TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, state.config.request_timeout());
    let mut app = Router::new();
    for (path, route, timed) in all_routes() {
        app = app.route(path, if timed { route.layer(timeout) } else { route });
    }
    // Swagger UI fetches /openapi.json, which is built on first request.
    app.merge(SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json")))
        .merge(ui::router())
        .merge(status::page_routes())
        .fallback(middleware::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}
