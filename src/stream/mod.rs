//! Serving streams: the upstream client and byte relay, HLS playlist
//! rewriting and signed links, and ffmpeg remuxing for merged plans.

pub mod hls;
pub mod proxy;
pub mod remux;
pub mod signing;

pub use proxy::{ProxyError, Upstream};
pub use remux::{RemuxError, Remuxer};
pub use signing::{Grant, SignError, Signer};
