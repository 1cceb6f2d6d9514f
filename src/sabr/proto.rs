//! The protocol's protobuf messages, as far as reelay reads or writes them.
//! Field numbers are those of the protocol's public definitions; every
//! field is optional on the wire (a client may leave out a zero), and
//! repeated numbers are read packed or not. The playback cookie and the
//! SABR contexts' values are opaque: kept as the server sent them and sent
//! back unchanged.

use prost::Message;

/// Which format: what a client selects and a server labels bytes with.
#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct FormatId {
    #[prost(int32, optional, tag = "1")]
    pub itag: Option<i32>,
    /// The format's `lmt`: the same itag re-encoded is another format.
    #[prost(uint64, optional, tag = "2")]
    pub last_modified: Option<u64>,
    #[prost(string, optional, tag = "3")]
    pub xtags: Option<String>,
}

/// The body of every request.
#[derive(Clone, PartialEq, Message)]
pub struct VideoPlaybackAbrRequest {
    #[prost(message, optional, tag = "1")]
    pub client_abr_state: Option<ClientAbrState>,
    /// Formats whose initialization the client holds: not sent again.
    #[prost(message, repeated, tag = "2")]
    pub selected_format_ids: Vec<FormatId>,
    /// What the client holds, so the server sends what follows.
    #[prost(message, repeated, tag = "3")]
    pub buffered_ranges: Vec<BufferedRange>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub video_playback_ustreamer_config: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "16")]
    pub preferred_audio_format_ids: Vec<FormatId>,
    #[prost(message, repeated, tag = "17")]
    pub preferred_video_format_ids: Vec<FormatId>,
    #[prost(message, optional, tag = "19")]
    pub streamer_context: Option<StreamerContext>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ClientAbrState {
    #[prost(int32, optional, tag = "21")]
    pub sticky_resolution: Option<i32>,
    /// Where the player is: the server sends from there.
    #[prost(int64, optional, tag = "28")]
    pub player_time_ms: Option<i64>,
    #[prost(int32, optional, tag = "34")]
    pub visibility: Option<i32>,
    #[prost(float, optional, tag = "35")]
    pub playback_rate: Option<f32>,
    /// 0: audio and video; 1: audio only; 2: video only.
    #[prost(int32, optional, tag = "40")]
    pub enabled_track_types_bitfield: Option<i32>,
    #[prost(bool, optional, tag = "46")]
    pub drc_enabled: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BufferedRange {
    #[prost(message, optional, tag = "1")]
    pub format_id: Option<FormatId>,
    #[prost(int64, optional, tag = "2")]
    pub start_time_ms: Option<i64>,
    #[prost(int64, optional, tag = "3")]
    pub duration_ms: Option<i64>,
    #[prost(int32, optional, tag = "4")]
    pub start_segment_index: Option<i32>,
    /// Inclusive.
    #[prost(int32, optional, tag = "5")]
    pub end_segment_index: Option<i32>,
    #[prost(message, optional, tag = "6")]
    pub time_range: Option<TimeRange>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeRange {
    #[prost(int64, optional, tag = "1")]
    pub start_ticks: Option<i64>,
    #[prost(int64, optional, tag = "2")]
    pub duration_ticks: Option<i64>,
    #[prost(int32, optional, tag = "3")]
    pub timescale: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamerContext {
    #[prost(message, optional, tag = "1")]
    pub client_info: Option<ClientInfo>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub po_token: Option<Vec<u8>>,
    /// The last `NextRequestPolicy`'s cookie, as it came.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub playback_cookie: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "5")]
    pub sabr_contexts: Vec<SabrContext>,
    #[prost(int32, repeated, tag = "6")]
    pub unsent_sabr_contexts: Vec<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SabrContext {
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub value: Option<Vec<u8>>,
}

/// The client the streaming URL was issued to (innertube's numbers).
#[derive(Clone, PartialEq, Message)]
pub struct ClientInfo {
    #[prost(string, optional, tag = "1")]
    pub hl: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub gl: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub device_make: Option<String>,
    #[prost(string, optional, tag = "13")]
    pub device_model: Option<String>,
    #[prost(string, optional, tag = "14")]
    pub visitor_data: Option<String>,
    #[prost(int32, optional, tag = "16")]
    pub client_name: Option<i32>,
    #[prost(string, optional, tag = "17")]
    pub client_version: Option<String>,
    #[prost(string, optional, tag = "18")]
    pub os_name: Option<String>,
    #[prost(string, optional, tag = "19")]
    pub os_version: Option<String>,
    #[prost(int32, optional, tag = "64")]
    pub android_sdk_version: Option<i32>,
}

/// What the bytes of MEDIA parts with its id are.
#[derive(Clone, PartialEq, Message)]
pub struct MediaHeader {
    #[prost(uint32, optional, tag = "1")]
    pub header_id: Option<u32>,
    #[prost(string, optional, tag = "2")]
    pub video_id: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub itag: Option<i32>,
    #[prost(uint64, optional, tag = "4")]
    pub lmt: Option<u64>,
    #[prost(string, optional, tag = "5")]
    pub xtags: Option<String>,
    /// Where the bytes sit in the format's file.
    #[prost(int64, optional, tag = "6")]
    pub start_range: Option<i64>,
    /// Anything but none is refused: no client decompresses.
    #[prost(int32, optional, tag = "7")]
    pub compression: Option<i32>,
    #[prost(bool, optional, tag = "8")]
    pub is_init_seg: Option<bool>,
    #[prost(int64, optional, tag = "9")]
    pub sequence_number: Option<i64>,
    #[prost(int64, optional, tag = "11")]
    pub start_ms: Option<i64>,
    #[prost(int64, optional, tag = "12")]
    pub duration_ms: Option<i64>,
    #[prost(message, optional, tag = "13")]
    pub format_id: Option<FormatId>,
    #[prost(int64, optional, tag = "14")]
    pub content_length: Option<i64>,
    #[prost(message, optional, tag = "15")]
    pub time_range: Option<TimeRange>,
}

/// A format's layout, sent once before its first bytes.
#[derive(Clone, PartialEq, Message)]
pub struct FormatInitializationMetadata {
    #[prost(string, optional, tag = "1")]
    pub video_id: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub format_id: Option<FormatId>,
    #[prost(int64, optional, tag = "3")]
    pub end_time_ms: Option<i64>,
    /// The last segment's sequence number.
    #[prost(int64, optional, tag = "4")]
    pub end_segment_number: Option<i64>,
    #[prost(string, optional, tag = "5")]
    pub mime_type: Option<String>,
    #[prost(message, optional, tag = "6")]
    pub init_range: Option<ByteRange>,
    #[prost(message, optional, tag = "7")]
    pub index_range: Option<ByteRange>,
    #[prost(int64, optional, tag = "9")]
    pub duration_units: Option<i64>,
    #[prost(int64, optional, tag = "10")]
    pub duration_timescale: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ByteRange {
    #[prost(int64, optional, tag = "1")]
    pub start: Option<i64>,
    #[prost(int64, optional, tag = "2")]
    pub end: Option<i64>,
}

/// How the next request is to be made: after a pause, with a cookie.
#[derive(Clone, PartialEq, Message)]
pub struct NextRequestPolicy {
    #[prost(int32, optional, tag = "4")]
    pub backoff_time_ms: Option<i32>,
    /// Opaque; sent back as it came.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub playback_cookie: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SabrRedirect {
    #[prost(string, optional, tag = "1")]
    pub url: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SabrError {
    #[prost(string, optional, tag = "1")]
    pub kind: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub code: Option<i32>,
}

/// 1: fine; 2: attestation pending; 3: attestation required (a PO token).
#[derive(Clone, PartialEq, Message)]
pub struct StreamProtectionStatus {
    #[prost(int32, optional, tag = "1")]
    pub status: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub max_retries: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SabrContextUpdate {
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub scope: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub value: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    pub send_by_default: Option<bool>,
    /// 2: keep a value already held.
    #[prost(int32, optional, tag = "5")]
    pub write_policy: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SabrContextSendingPolicy {
    #[prost(int32, repeated, tag = "1")]
    pub start_policy: Vec<i32>,
    #[prost(int32, repeated, tag = "2")]
    pub stop_policy: Vec<i32>,
    #[prost(int32, repeated, tag = "3")]
    pub discard_policy: Vec<i32>,
}

/// A live stream's head and what of it can be sought.
#[derive(Clone, PartialEq, Message)]
pub struct LiveMetadata {
    #[prost(int64, optional, tag = "3")]
    pub head_sequence_number: Option<i64>,
    #[prost(int64, optional, tag = "4")]
    pub head_sequence_time_ms: Option<i64>,
    #[prost(int64, optional, tag = "12")]
    pub min_seekable_time_ticks: Option<i64>,
    #[prost(int32, optional, tag = "13")]
    pub min_seekable_timescale: Option<i32>,
    #[prost(int64, optional, tag = "14")]
    pub max_seekable_time_ticks: Option<i64>,
    #[prost(int32, optional, tag = "15")]
    pub max_seekable_timescale: Option<i32>,
}
