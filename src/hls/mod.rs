//! Origins' own HLS: playlists rewritten so every URI comes back through the
//! server (`rewrite`), and the grants those links carry, signed or (where
//! they name an origin URL) sealed (`signing`).
//!
//! Owns: playlist text and link signatures. A leaf: imports nothing of the
//! crate.

pub mod rewrite;
pub mod signing;

pub use signing::{EXPIRY_STEP_SECS, Grant, LiveGrant, PartGrant, PartKind, SignError, Signer, link_expiry};
