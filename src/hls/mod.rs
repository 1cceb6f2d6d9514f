//! Serving stream formats that are not plain bytes: HLS playlist rewriting
//! and the signed links inside rewritten playlists.

pub mod rewrite;
pub mod signing;

pub use signing::{Grant, PartGrant, PartKind, SignError, Signer};
