//! Serving streams: the upstream client and byte relay for the proxy.

pub mod proxy;

pub use proxy::{ProxyError, Upstream};
