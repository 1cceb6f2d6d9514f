//! What the API says of itself: `GET /` (service, endpoints, platforms), the
//! OpenAPI document (`GET /openapi.json`) and Swagger UI (`GET /docs/`,
//! served from the binary). Each route is described once here; a test checks
//! that the router and this document list the same paths.
#![allow(dead_code)] // the functions below only carry their annotations

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::batch::{BatchItem, BatchRequest, BatchResponse, BatchResult};
use super::reply::{json_response, timestamp};
use super::state::AppState;
use super::system::{Health, Ready, VERSION};
use crate::metrics::MetricsSnapshot;
use crate::platform::Platform;
use crate::service::health::Memory;
use crate::service::signin::AuthStatus;
use crate::service::{ApiFormat, ApiVideo, PlaylistEntry, PlaylistPage};

/// Every error: `code` is the HTTP reason phrase.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    success: bool,
    /// What went wrong, in a few words.
    error: String,
    /// Why, and what to do instead.
    detail: String,
    code: String,
    timestamp: String,
    /// Also in the `X-Request-Id` header and in every log line of the request.
    request_id: String,
}

/// `{success, message, data: video, timestamp}`.
#[derive(Serialize, ToSchema)]
pub struct VideoEnvelope {
    success: bool,
    message: String,
    data: ApiVideo,
    timestamp: String,
}

/// `{success, message, data: metrics, timestamp}`.
#[derive(Serialize, ToSchema)]
pub struct MetricsEnvelope {
    success: bool,
    message: String,
    data: MetricsSnapshot,
    timestamp: String,
}

#[utoipa::path(get, path = "/", tag = "system", responses(
    (status = 200, description = "Service, endpoints, platforms", body = Root),
    (status = 303, description = "Browsers (Accept: text/html) are sent to the page at /ui")))]
fn root() {}

#[utoipa::path(get, path = "/health", tag = "system", responses(
    (status = 200, description = "Healthy", body = Health),
    (status = 503, description = "Degraded: Redis or yt-dlp unavailable (the service still answers)", body = Health)))]
fn health() {}

#[utoipa::path(get, path = "/api/v2/system/health", tag = "system", responses(
    (status = 200, description = "Healthy", body = Health),
    (status = 503, description = "Degraded", body = Health)))]
fn system_health() {}

#[utoipa::path(get, path = "/ready", tag = "system", responses(
    (status = 200, description = "Ready: Redis (when configured) and yt-dlp have answered", body = Ready),
    (status = 503, description = "Starting (yt-dlp's first check still running) or a service down", body = Ready)))]
fn ready() {}

#[utoipa::path(get, path = "/api/v2/system/ready", tag = "system", responses(
    (status = 200, description = "Ready", body = Ready),
    (status = 503, description = "Not ready", body = Ready)))]
fn system_ready() {}

#[utoipa::path(get, path = "/api/v2/stream/metrics", tag = "system", security(("api_key" = []), ("bearer" = [])),
    responses((status = 200, description = "Streaming counters", body = MetricsEnvelope)))]
fn stream_metrics() {}

#[utoipa::path(get, path = "/api/v2/system/status", tag = "system",
    description = "The operators' status (what /ui/status draws): streams running now (title, platform, live, viewers, \
        bytes per second to viewers and from the origin, share from the store), the relay store against its budgets, \
        extractions (rate, outcomes, in flight, refusals by egress, proxies cooling down), yt-dlp, Redis, and ten \
        minutes of history. From loopback or TRUSTED_PROXIES directly, else with one of ADMIN_KEYS (X-Admin-Key, \
        Authorization: Bearer, ?admin_key=).",
    responses(
        (status = 200, description = "The status", content_type = "application/json"),
        (status = 403, description = "Not from this machine or TRUSTED_PROXIES, and no valid admin key", body = ErrorResponse)))]
fn system_status() {}

#[utoipa::path(get, path = "/cobalt", tag = "cobalt", responses(
    (status = 200, description = "cobalt's instance info: {cobalt: {version, url, startTime, services}, git}", content_type = "application/json")))]
fn cobalt_info() {}

#[utoipa::path(post, path = "/cobalt/", tag = "cobalt",
    description = "cobalt's POST / (its instance URL for reelay is https://host/cobalt): a body as cobalt's schema \
        (url; videoQuality, downloadMode auto|audio|mute, audioFormat best|mp3|ogg|wav|opus, audioBitrate, filenameStyle, \
        youtubeVideoCodec, youtubeVideoContainer, youtubeDubLang, subtitleLang, disableMetadata, alwaysProxy, \
        localProcessing, …; and reelay's own start and end, in seconds: a clip, always a tunnel) with Accept and \
        Content-Type application/json; Authorization: Api-Key <key> when API_KEYS is set. \
        Answers {status: tunnel|redirect|local-processing, url, filename} or {status: error, error: {code, context}} \
        with cobalt's codes (error.api.link.invalid, error.api.content.video.unavailable, error.api.rate_exceeded, …).",
    responses(
        (status = 200, description = "tunnel, redirect or local-processing", content_type = "application/json"),
        (status = 400, description = "error, with cobalt's code", content_type = "application/json"),
        (status = 429, description = "error.api.rate_exceeded (RateLimit-* headers)", content_type = "application/json")))]
fn cobalt_process() {}

#[utoipa::path(get, path = "/cobalt/", tag = "cobalt", responses(
    (status = 200, description = "cobalt's instance info", content_type = "application/json")))]
fn cobalt_info_slash() {}

#[utoipa::path(get, path = "/cobalt/tunnel/{token}", tag = "cobalt",
    params(("token" = String, Path, description = "A tunnel a POST /cobalt/ answered")),
    responses(
        (status = 200, description = "The file, Content-Disposition: attachment with its name (Range and HEAD once it is whole)"),
        (status = 206, description = "Part of the file"),
        (status = 403, description = "Not a link this server signed, or expired", body = ErrorResponse)))]
fn cobalt_tunnel() {}

#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "This document", content_type = "application/json")))]
fn openapi_json() {}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
fn prometheus() {}

/// Errors every video and stream route can answer.
macro_rules! video_errors {
    () => {
        "(400: bad platform, id, URL or query; 401/403: API key or address; 403: private address, or the video needs sign-in (age, members-only); 404: unavailable video or no such format; 408: a body not sent in time; 429: rate limit; 451: not available in the server's country; 502: extractor or origin failed; 503: blocked by the platform (bot check, HTTP 429; Retry-After) or yt-dlp cannot run; 504: timeout)"
    };
}

#[utoipa::path(get, path = "/api/v2/videos/{platform}/{video_id}", tag = "videos",
    security(("api_key" = []), ("bearer" = [])),
    params(
        ("platform" = String, Path, description = "youtube, bilibili, twitter, x, instagram or twitch"),
        ("video_id" = String, Path, description = "The platform's video id")),
    responses(
        (status = 200, description = "Video metadata and every format", body = VideoEnvelope),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn video_by_id() {}

#[utoipa::path(get, path = "/api/v2/videos", tag = "videos",
    security(("api_key" = []), ("bearer" = [])),
    params(("url" = String, Query, description = "Any video link (known platforms share the cache of their ids)")),
    responses(
        (status = 200, description = "Video metadata and every format", body = VideoEnvelope),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn video_by_url() {}

#[utoipa::path(get, path = "/api/v2/thumbnail/{platform}/{video_id}", tag = "videos",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path), ("video_id" = String, Path)),
    responses(
        (status = 200, description = "The thumbnail image, relayed; Cache-Control: public, max-age=86400", content_type = "image/jpeg"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn thumbnail_by_id() {}

#[utoipa::path(get, path = "/api/v2/thumbnail", tag = "videos",
    security(("api_key" = []), ("bearer" = [])),
    params(("url" = String, Query, description = "Any video link")),
    responses(
        (status = 200, description = "The thumbnail image", content_type = "image/jpeg"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn thumbnail_by_url() {}

#[utoipa::path(get, path = "/api/v2/subtitles/{platform}/{video_id}", tag = "videos",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path), ("video_id" = String, Path),
        ("lang" = Option<String>, Query, description = "The track's language, as the info's subtitles list it (en, pt-BR); any when absent"),
        ("auto" = Option<bool>, Query, description = "true: the platform's automatic captions; false: the uploader's only; by default the uploader's first")),
    responses(
        (status = 200, description = "The track as WebVTT, converted from the platform's format (json3, srv3) where needed", content_type = "text/vtt"),
        (status = "4XX", description = "400: bad input; 404: no such video, or no track in that language (the detail lists those there are)", body = ErrorResponse),
        (status = "5XX", description = "502: the origin failed or sent something else", body = ErrorResponse)))]
fn subtitles_by_id() {}

#[utoipa::path(get, path = "/api/v2/subtitles", tag = "videos",
    security(("api_key" = []), ("bearer" = [])),
    params(("url" = String, Query, description = "Any video link"), ("lang" = Option<String>, Query), ("auto" = Option<bool>, Query)),
    responses(
        (status = 200, description = "The track as WebVTT", content_type = "text/vtt"),
        (status = "4XX", description = "See the route by id", body = ErrorResponse),
        (status = "5XX", description = "See the route by id", body = ErrorResponse)))]
fn subtitles_by_url() {}

#[utoipa::path(post, path = "/api/v2/videos/batch", tag = "videos",
    security(("api_key" = []), ("bearer" = [])),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per item, in order; a bad item fails alone", body = BatchResponse),
        (status = 400, description = "Not JSON, no items, or more than 50", body = ErrorResponse),
        (status = 413, description = "Body over 64 KiB", body = ErrorResponse)))]
fn videos_batch() {}

/// `{success, message, data: page, timestamp}`.
#[derive(Serialize, ToSchema)]
pub struct PlaylistEnvelope {
    success: bool,
    message: String,
    data: PlaylistPage<'static>,
    timestamp: String,
}

/// `{success, message, data: [status per platform], timestamp}`.
#[derive(Serialize, ToSchema)]
pub struct AuthStatusListEnvelope {
    success: bool,
    message: String,
    data: Vec<AuthStatus>,
    timestamp: String,
}

/// `{success, message, data: status, timestamp}`.
#[derive(Serialize, ToSchema)]
pub struct AuthStatusEnvelope {
    success: bool,
    message: String,
    data: AuthStatus,
    timestamp: String,
}

/// Paging of the playlist routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// Index of the first entry, from 1 (default 1).
    start: Option<usize>,
    /// Entries per page, 1 to 1000 (default 100).
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v2/playlists/{platform}/{playlist_id}", tag = "playlists",
    security(("api_key" = []), ("bearer" = [])),
    params(
        ("platform" = String, Path, description = "youtube, bilibili or twitch"),
        ("playlist_id" = String, Path, description = "YouTube: PL…, UU…, OL…, FL… or RD…, or a channel: @handle or UC…; Bilibili: collection-<space id>-<list id>, series-<space id>-<list id> or space-<space id> (its uploads); Twitch: a channel name (its videos)"),
        ("tab" = Option<String>, Query, description = "A YouTube channel's tab: videos (default), shorts or streams"),
        PageParams),
    responses(
        (status = 200, description = "The playlist and one page of its entries (cached for CACHE_TTL)", body = PlaylistEnvelope),
        (status = "4XX", description = "400: bad platform, id or paging; 404: unavailable, or a single video; 429: rate limit", body = ErrorResponse),
        (status = "5XX", description = "502: extractor failed; 503: yt-dlp cannot run; 504: timeout", body = ErrorResponse)))]
fn playlist_by_id() {}

#[utoipa::path(get, path = "/api/v2/playlists", tag = "playlists",
    security(("api_key" = []), ("bearer" = [])),
    params(("url" = String, Query, description = "A YouTube playlist or channel link (/@handle, /channel/UC…, /c/…, /user/…, with /videos, /shorts or /streams), a Bilibili space, collection or series link, a Twitch channel's /videos, or another site's page"), PageParams),
    responses(
        (status = 200, description = "The playlist and one page of its entries", body = PlaylistEnvelope),
        (status = "4XX", description = "400: bad URL or paging; 403: private address; 404: unavailable, or a single video", body = ErrorResponse),
        (status = "5XX", description = "502: the host does not resolve, or the extractor failed; see the route by id", body = ErrorResponse)))]
fn playlist_by_url() {}

#[utoipa::path(get, path = "/api/v2/auth/status", tag = "auth",
    security(("api_key" = []), ("bearer" = [])),
    responses((status = 200, description = "Sign-in status of every platform, from COOKIES_DIR (cached for AUTH_STATUS_TTL)", body = AuthStatusListEnvelope)))]
fn auth_status() {}

#[utoipa::path(get, path = "/api/v2/auth/status/{platform}", tag = "auth",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path, description = "youtube, bilibili, twitter, x, instagram or twitch")),
    responses(
        (status = 200, description = "Sign-in status of one platform", body = AuthStatusEnvelope),
        (status = 400, description = "Unknown platform", body = ErrorResponse)))]
fn auth_status_one() {}

/// Parameters of the stream routes, described once.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamParams {
    /// best (default), worst, 2160p/4k, 1440p, 1080p/hd, 720p, 480p/sd, 360p, audio
    quality: Option<String>,
    /// Same as quality=audio.
    audio_only: Option<bool>,
    /// Direct mode: answer 409 instead of falling back to a lower quality that has sound.
    strict: Option<bool>,
    /// Only with `?url=` routes: any video link.
    url: Option<String>,
    /// The player's profile: browser (default), unity (a progressive MP4 with H.264/AAC, never HLS, AV1 or VP9),
    /// avpro (H.264/AAC; separate video and audio are sent to reelay's HLS manifest with a 302). Anything else is a 400.
    player: Option<String>,
    /// The audio language: original (the default: the video's own audio, never a dub) or a code from the info's
    /// audio_languages (de, pt-BR); one the video lacks is a 404 that lists those it has.
    lang: Option<String>,
    /// With quality=audio: best (the default: as the platform serves it), m4a, mp3, ogg (Vorbis), opus, wav. The source's
    /// own bytes when they already are that codec and container (Range works); else ffmpeg makes the file once for every
    /// requester (proxy only; the smart route proxies it; the direct route answers 409).
    format: Option<String>,
    /// Kilobits per second of an encoded audio file, 8–320 (default 128); naming one encodes even when the codec matches.
    bitrate: Option<String>,
    /// none: the video alone, without its audio (a video-only file as it is, else remuxed without re-encoding).
    audio: Option<String>,
    /// false: write no title, artist or year into produced audio files (written by default).
    metadata: Option<bool>,
    /// Names the file (Content-Disposition) in a style: classic (youtube_id_1920x1080_h264.mp4), basic (the default:
    /// "Title - Uploader (1080p, h264).mp4"), pretty (… plus the platform), nerdy (… plus the platform and id).
    filename: Option<String>,
    /// 1: Content-Disposition: attachment (the browser saves the file under its name rather than playing it).
    download: Option<String>,
    /// The video codec family preferred: h264, vp9, av1, h265; a video without that codec plays its best one.
    codec: Option<String>,
    /// What a merge of separate video and audio is written as: mp4 (the default, fragmented), mkv, webm (VP9/AV1 with
    /// Opus only; other codecs asked into WebM are written as mkv); gif: the video as an animated GIF (X's GIFs, clips up
    /// to 60 s; longer is a 409).
    container: Option<String>,
    /// A subtitle language (from the info's subtitles) written into the file with the video: mov_text in MP4, WebVTT in
    /// mkv/webm; a progressive file is remuxed for it; a language the video lacks leaves the file as it is.
    subtitles: Option<String>,
    /// A clip's first second (decimals allowed; 0 to 604800): the proxy route composes the fragments covering start..end
    /// into one MP4 whose edit lists start it exactly at start (videos served as separate DASH video and audio with their
    /// index; others are a 422, the direct route a 409; the smart route proxies a clip).
    start: Option<String>,
    /// A clip's last second, after start; without it, to the end.
    end: Option<String>,
}

/// Parameters of the manifest routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ManifestParams {
    /// The highest video rendition listed: best (default: every one), 2160p … 360p, worst (the lowest only), audio (audio alone).
    quality: Option<String>,
    /// proxy (default): segments through the server, from its block store; direct: the origin's URLs, for clients that can reach them.
    mode: Option<String>,
    /// browser (default) or avpro (H.264/AAC only); unity is a 409, as Unity's VideoPlayer plays no HLS or DASH.
    player: Option<String>,
    /// The audio rendition's language: original (the default) or a code from the info's audio_languages.
    lang: Option<String>,
    /// Only with `?url=` routes: any video link.
    url: Option<String>,
}

/// Parameters only the smart routes read.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SmartParams {
    /// proxy, direct or auto (default).
    mode: Option<String>,
    /// The client's country, when no CF-IPCountry / X-Country-Code header says it.
    country: Option<String>,
}

#[utoipa::path(get, path = "/api/v2/stream/direct/{platform}/{video_id}", tag = "streams",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path), ("video_id" = String, Path), StreamParams),
    responses(
        (status = 302, description = "Location: one URL that plays by itself, with sound; X-Reelay-Format names it"),
        (status = 409, description = "strict=true and the quality needs the proxy", body = ErrorResponse),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn direct_by_id() {}

#[utoipa::path(get, path = "/api/v2/stream/direct", tag = "streams",
    security(("api_key" = []), ("bearer" = [])), params(StreamParams),
    responses(
        (status = 302, description = "Location: one URL that plays by itself"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn direct_by_url() {}

#[utoipa::path(get, path = "/api/v2/stream/proxy/{platform}/{video_id}", tag = "streams",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path), ("video_id" = String, Path), StreamParams),
    responses(
        (status = 200, description = "The stream: relayed file (Range works), merged fragmented MP4, or a rewritten HLS playlist", content_type = "video/mp4"),
        (status = 206, description = "Part of a file, for a Range request"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn proxy_by_id() {}

#[utoipa::path(get, path = "/api/v2/stream/proxy", tag = "streams",
    security(("api_key" = []), ("bearer" = [])), params(StreamParams),
    responses(
        (status = 200, description = "The stream", content_type = "video/mp4"),
        (status = 206, description = "Part of a file, for a Range request"),
        (status = 307, description = "To the canonical form of the request (a known platform's link to its path, another site's link spelled as its parts' v=): the routing key balancers hash on"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn proxy_by_url() {}

#[utoipa::path(get, path = "/api/v2/stream/{platform}/{video_id}", tag = "streams",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path), ("video_id" = String, Path), StreamParams, SmartParams),
    responses(
        (status = 200, description = "Proxied (mode=proxy, a country in PROXY_COUNTRIES, or a URL bound to another address)"),
        (status = 302, description = "Redirected"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn smart_by_id() {}

#[utoipa::path(get, path = "/api/v2/stream", tag = "streams",
    security(("api_key" = []), ("bearer" = [])), params(StreamParams, SmartParams),
    responses(
        (status = 200, description = "Proxied"),
        (status = 302, description = "Redirected"),
        (status = 307, description = "To the canonical form of the request (a known platform's link to its path, another site's link spelled as its parts' v=): the routing key balancers hash on"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn smart_by_url() {}

#[utoipa::path(get, path = "/api/v2/stream/hls/{token}/{name}", tag = "streams",
    params(
        ("token" = String, Path, description = "Signed grant from a rewritten playlist"),
        ("name" = String, Path, description = "The upstream file name, for readability; not checked")),
    responses(
        (status = 200, description = "A nested playlist (rewritten again) or a segment, key or init section"),
        (status = 403, description = "Changed or expired signature", body = ErrorResponse),
        (status = 502, description = "The origin failed", body = ErrorResponse)))]
fn hls_link() {}

#[utoipa::path(get, path = "/api/v2/stream/live/{token}/{name}", tag = "streams",
    params(
        ("token" = String, Path, description = "Signed grant naming a live stream, its variant and (for a part) the segment, map or key; never the origin's URL"),
        ("name" = String, Path, description = "For readability (`{n}.ts`, `{variant}.m3u8`); not checked")),
    responses(
        (status = 200, description = "A live variant's playlist from its shared session (Cache-Control: max-age of half a target duration), or a segment, map or key from the relay"),
        (status = 403, description = "Changed or expired signature", body = ErrorResponse),
        (status = 404, description = "The part has left the live window (reload the playlist), or the stream is no longer live", body = ErrorResponse),
        (status = 502, description = "The origin failed before the session had a first copy", body = ErrorResponse)))]
fn live_link() {}

#[utoipa::path(get, path = "/api/v2/stream/manifest/{platform}/{video_id}/master.m3u8", tag = "manifests",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path), ("video_id" = String, Path), ManifestParams),
    responses(
        (status = 200, description = "HLS master playlist (version 7) built from the video's separate DASH files: a variant per video rendition, the audio (each language) and the subtitles as EXT-X-MEDIA; each media playlist lists the file's sidx subsegments as byte ranges. A source that is HLS already gets its own playlist, rewritten; a live stream reelay's own master of its variants' shared sessions; player=avpro with only a progressive file, that file as a one-segment playlist.", content_type = "application/vnd.apple.mpegurl"),
        (status = 302, description = "mode=direct and the source is HLS already: its own playlist"),
        (status = 409, description = "No separate DASH files (play the proxy link), or player=unity", body = ErrorResponse),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn master_by_id() {}

#[utoipa::path(get, path = "/api/v2/stream/manifest/master.m3u8", tag = "manifests",
    security(("api_key" = []), ("bearer" = [])), params(ManifestParams),
    responses(
        (status = 200, description = "HLS master playlist", content_type = "application/vnd.apple.mpegurl"),
        (status = 409, description = "No separate DASH files, or player=unity", body = ErrorResponse),
        (status = 307, description = "To the canonical form of the request (a known platform's link to its path, another site's link spelled as its parts' v=): the routing key balancers hash on"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn master_by_url() {}

#[utoipa::path(get, path = "/api/v2/stream/manifest/{platform}/{video_id}/manifest.mpd", tag = "manifests",
    security(("api_key" = []), ("bearer" = [])),
    params(("platform" = String, Path), ("video_id" = String, Path), ManifestParams),
    responses(
        (status = 200, description = "Static DASH MPD (on-demand profile): one Representation per file, SegmentBase with indexRange and Initialization", content_type = "application/dash+xml"),
        (status = 409, description = "No separate DASH files, the source is HLS only, or player=unity", body = ErrorResponse),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn mpd_by_id() {}

#[utoipa::path(get, path = "/api/v2/stream/manifest/manifest.mpd", tag = "manifests",
    security(("api_key" = []), ("bearer" = [])), params(ManifestParams),
    responses(
        (status = 200, description = "Static DASH MPD", content_type = "application/dash+xml"),
        (status = 409, description = "No separate DASH files, the source is HLS only, or player=unity", body = ErrorResponse),
        (status = 307, description = "To the canonical form of the request (a known platform's link to its path, another site's link spelled as its parts' v=): the routing key balancers hash on"),
        (status = "4XX", description = video_errors!(), body = ErrorResponse),
        (status = "5XX", description = "See 4XX", body = ErrorResponse)))]
fn mpd_by_url() {}

#[utoipa::path(get, path = "/api/v2/stream/media/{token}/{name}", tag = "manifests",
    params(
        ("token" = String, Path, description = "Signed grant from a manifest: the video, the format, what to serve, an expiry"),
        ("name" = String, Path, description = "{format_id}.m3u8 (media playlist), .mp4 or .m4a (the file); for players that look at extensions, not checked")),
    responses(
        (status = 200, description = "A media playlist, or the whole file"),
        (status = 206, description = "A byte range of the file: a segment or the initialization section"),
        (status = 403, description = "Changed or expired signature", body = ErrorResponse),
        (status = 404, description = "The format is no longer offered", body = ErrorResponse),
        (status = 502, description = "The origin failed", body = ErrorResponse)))]
fn media_link() {}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "reelay", description = "Video information, redirect and streaming-proxy API. API keys are needed only when the server sets API_KEYS; `?api_key=` works too."),
    paths(root, health, system_health, ready, system_ready, stream_metrics, prometheus, openapi_json, video_by_id, video_by_url, thumbnail_by_id, thumbnail_by_url, subtitles_by_id, subtitles_by_url, videos_batch,
          playlist_by_id, playlist_by_url, auth_status, auth_status_one, direct_by_id, direct_by_url,
          proxy_by_id, proxy_by_url, smart_by_id, smart_by_url, hls_link, live_link, master_by_id, master_by_url, mpd_by_id, mpd_by_url,
          media_link, system_status, cobalt_info, cobalt_info_slash, cobalt_process, cobalt_tunnel),
    components(schemas(PlaylistEnvelope, PlaylistPage, PlaylistEntry, AuthStatusListEnvelope, AuthStatusEnvelope, AuthStatus, BatchRequest, BatchItem, BatchResponse, BatchResult, ErrorResponse, VideoEnvelope, MetricsEnvelope, ApiVideo, ApiFormat, Health, Ready, Root, Memory, MetricsSnapshot)),
    modifiers(&Security),
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = VERSION.to_owned();
    doc
}

/// `GET /` and the OpenAPI document itself.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/", get(serve_root)), ("/openapi.json", get(serve_openapi))]
}

/// `GET /`.
#[derive(Serialize, ToSchema)]
pub struct Root {
    service: &'static str,
    version: &'static str,
    status: &'static str,
    /// `METHOD /path` of every route, from the OpenAPI document.
    endpoints: Vec<String>,
    supported_platforms: Vec<&'static str>,
    documentation: &'static str,
    timestamp: String,
}

/// The endpoint list, made once.
static ENDPOINTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let doc = openapi();
    doc.paths
        .paths
        .iter()
        .map(|(path, item)| format!("{} {path}", if item.post.is_some() { "POST" } else { "GET" }))
        .collect()
});

/// Browsers (which ask for `text/html`) are sent to the page; API clients
/// get the JSON.
async fn serve_root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.trim().starts_with("text/html")));
    let vary = (header::VARY, HeaderValue::from_static("Accept"));
    if wants_html {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static("/ui")), vary]).into_response();
    }
    let body = Root {
        service: "reelay",
        version: VERSION,
        status: "running",
        endpoints: ENDPOINTS.clone(),
        supported_platforms: Platform::NAMES.to_vec(),
        documentation: "/docs/",
        timestamp: timestamp(),
    };
    let mut resp = json_response(StatusCode::OK, serde_json::to_vec(&body).expect("serialises").into());
    resp.headers_mut().insert(vary.0, vary.1);
    resp
}

/// The OpenAPI document, serialised on first request: building it at start-up
/// would cost every instance time and memory for a page few open.
async fn serve_openapi() -> Response {
    static DOC: LazyLock<bytes::Bytes> =
        LazyLock::new(|| serde_json::to_vec(&openapi()).expect("the document serialises").into());
    json_response(StatusCode::OK, DOC.clone())
}
