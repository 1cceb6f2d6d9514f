//! One integration binary: every test spawns reelay on 127.0.0.1:0 against a
//! local origin, real Redis, real ffmpeg-made media, and either the stand-in
//! extractor or the real yt-dlp.

mod helpers;

mod batch;
mod caching;
mod cluster;
mod cobalt;
mod compose;
mod edge;
mod egress;
mod extras;
mod hardening;
mod input;
mod languages;
mod layout;
mod live;
mod live_origin;
mod live_sabr;
mod manifest;
mod merge_hls;
mod monitoring;
mod observability;
mod outputs;
mod playlists;
mod proxies;
mod quirks;
mod real_ytdlp;
mod redis_tier;
mod refusals;
mod relay;
mod sabr;
mod sabr_origin;
mod seeking;
mod shipped;
mod signin;
mod soak;
mod status;
mod stream;
mod subtitles;
mod system;
mod ui;
mod update;
mod videos;
