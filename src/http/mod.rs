//! The HTTP layer, the only module that knows axum: one module per route
//! group, each with its `routes()`, the middleware every request goes through
//! (`middleware`: request ids, limits, logs; `guard`: IP lists, API keys, rate
//! limits), `AppState` and `Client` (`state`), `ApiError` (`error`), the
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

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::routing::MethodRouter;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa_swagger_ui::SwaggerUi;

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

/// The whole application. Layers, outermost first: `observe` (request id,
/// limits, errors, logs, metrics), CORS, `guard` (lists, keys, rate limit);
/// non-stream routes also get `REQUEST_TIMEOUT`.
pub fn router(state: AppState) -> Router {
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
        .layer(cors(&state.config.cors_origins))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

/// `CORS_ORIGINS`: `*` or a comma list of origins.
fn cors(origins: &str) -> CorsLayer {
    let any = origins.trim() == "*";
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.split(',').filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    let h = |s: &'static str| HeaderName::from_static(s);
    // With `*` every answer is the same whatever the Origin: no `Vary`
    // that would split a shared cache's entries per site.
    let vary: Vec<HeaderName> = if any {
        Vec::new()
    } else {
        vec![header::ORIGIN, header::ACCESS_CONTROL_REQUEST_METHOD, header::ACCESS_CONTROL_REQUEST_HEADERS]
    };
    CorsLayer::new()
        .vary(vary)
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([header::RANGE, header::AUTHORIZATION, header::CONTENT_TYPE, h("x-api-key"), h("x-request-id")])
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ACCEPT_RANGES,
            header::RETRY_AFTER,
            h("x-request-id"),
            h("x-reelay-format"),
            h("ratelimit-limit"),
            h("ratelimit-remaining"),
            h("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(3600))
}
