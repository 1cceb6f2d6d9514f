//! SABR, YouTube's own streaming protocol: a POST of what the player holds
//! and where it is, answered with a UMP stream of parts (the formats'
//! layouts, media segments, the next request's cookie and pause, redirects,
//! errors). yt-dlp lists such formats with `protocol: sabr`; their URL
//! takes no GET.
//!
//! - [`ump`]: the framing, read from chunks split anywhere.
//! - [`proto`]: the protobuf messages (`prost`), cookie and contexts opaque.
//! - [`session`]: one session's state, without I/O: what to send next, what
//!   each part brought (segments of both formats, with their numbers, times
//!   and places in the files), when to stop and why it failed.
//!
//! Imports nothing of reelay's: the relay drives a session over its
//! connections and keeps what it brings.

pub mod proto;
pub mod session;
pub mod ump;

pub use session::{Client, Config, Event, Format, Head, Next, SabrFailure, Segment, Session, Track};
