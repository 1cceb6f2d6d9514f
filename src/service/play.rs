//! Playing a video: what a stream request becomes, without HTTP. The relay
//! objects of a video's formats and merges are keyed here, by what their
//! bytes are (the video's cache key with its sign-in scope, the format, the
//! merge plan), never by URL.

use std::sync::Arc;

use super::{FormatSource, VideoService};
use crate::cache::CachedInfo;
use crate::extract::Format;
use crate::platform::VideoRef;
use crate::relay::Spec;

/// The relay object of one format: its bytes, keyed by the video (with its
/// sign-in scope) and the format, found through the cached extraction.
pub fn format_spec(service: &Arc<VideoService>, video: &VideoRef, cached: &Arc<CachedInfo>, f: &Format) -> Spec {
    Spec {
        key: format!("{}|{}", cached.key, f.format_id),
        source: Arc::new(FormatSource::new(service.clone(), video.clone(), cached.clone(), &f.format_id)),
        chunk_size: f.chunk_size,
    }
}
