//! HLS playlist rewriting, line by line: every URI (variant playlists,
//! segments, and the `URI="..."` of `#EXT-X-KEY`, `#EXT-X-MAP`,
//! `#EXT-X-MEDIA` and any other tag) is resolved against the playlist's own
//! URL and replaced by what `link` returns, told whether the URI is itself a
//! playlist (a variant, a rendition, an I-frame playlist) or media.
//! Everything else, unknown tags included, is kept as it is.

use url::Url;

/// Rewrites `text`, fetched from `base`; lines end in LF. URIs that are not http(s) after
/// resolving (`data:`, `skd://`) are left alone.
pub fn rewrite(text: &str, base: &Url, mut link: impl FnMut(&Url, bool) -> String) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    // The URI line after `#EXT-X-STREAM-INF` is a variant playlist.
    let mut variant_next = false;
    for line in text.lines() {
        // A stray CR (one not before the LF) is no part of a line.
        let line = line.trim_end_matches('\r');
        let t = line.trim();
        if t.is_empty() || (t.starts_with('#') && !t.starts_with("#EXT")) {
            out.push_str(line);
        } else if t.starts_with('#') {
            variant_next |= t.starts_with("#EXT-X-STREAM-INF");
            let nested = t.starts_with("#EXT-X-MEDIA:") || t.starts_with("#EXT-X-I-FRAME-STREAM-INF");
            rewrite_attributes(line, base, &mut |u| link(u, nested), &mut out);
        } else {
            match resolve(base, t) {
                Some(u) => out.push_str(&link(&u, variant_next)),
                None => out.push_str(line),
            }
            variant_next = false;
        }
        out.push('\n');
    }
    out
}

fn resolve(base: &Url, uri: &str) -> Option<Url> {
    base.join(uri).ok().filter(|u| u.scheme() == "http" || u.scheme() == "https")
}

/// Replaces the value of each `URI="..."` attribute in a tag line.
fn rewrite_attributes(line: &str, base: &Url, link: &mut impl FnMut(&Url) -> String, out: &mut String) {
    const ATTR: &str = "URI=\"";
    let mut rest = line;
    while let Some(at) = rest.find(ATTR) {
        // Only a whole attribute name: at the start of the list or after ',' or ':'.
        let whole = at == 0 || matches!(rest.as_bytes()[at - 1], b',' | b':');
        let value_start = at + ATTR.len();
        let Some(len) = rest[value_start..].find('"') else { break };
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..value_start + len];
        match resolve(base, value).filter(|_| whole) {
            Some(u) => out.push_str(&link(&u)),
            None => out.push_str(value),
        }
        rest = &rest[value_start + len..];
    }
    out.push_str(rest);
}

/// Query parameters that sign or date a URL rather than name its bytes.
const VOLATILE: [&str; 15] = [
    "token",
    "sig",
    "signature",
    "expire",
    "expires",
    "hdnts",
    "hdnea",
    "hmac",
    "policy",
    "key-pair-id",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
];

/// What a segment URL names, without its host (CDN edges rotate) or the
/// parameters that only sign or date it: the key of its bytes in the relay.
pub fn segment_identity(u: &Url) -> String {
    let mut id = u.path().to_owned();
    let mut kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !VOLATILE.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    kept.sort();
    for (i, (k, v)) in kept.iter().enumerate() {
        id.push(if i == 0 { '?' } else { '&' });
        id.push_str(k);
        id.push('=');
        id.push_str(v);
    }
    id
}

/// True when a response is a playlist, by its type or its URL.
pub fn is_playlist(content_type: Option<&str>, url: &Url) -> bool {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    ct.contains("mpegurl") || url.path().to_ascii_lowercase().ends_with(".m3u8")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO=\"aud\"
v360/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720
https://other.cdn.example/v720/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"iframes.m3u8\"
#EXT-X-SOMETHING-NEW:FOO=1
";

    const MEDIA: &str = "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k?id=1\",IV=0x1234
#EXT-X-MAP:URI=\"init.mp4\"
# a comment
#EXTINF:2.0,
seg0.m4s
#EXTINF:2.0,
/abs/seg1.m4s
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-id\"
#EXT-X-ENDLIST
";

    fn link(u: &Url, nested: bool) -> String {
        format!("/{}?u={u}", if nested { "pl" } else { "p" })
    }

    #[test]
    fn master_playlist() {
        let base = Url::parse("https://cdn.example/vod/master.m3u8").unwrap();
        let out = rewrite(MASTER, &base, link);
        assert!(out.contains("URI=\"/pl?u=https://cdn.example/vod/audio/en.m3u8\""), "{out}");
        assert!(out.contains("\n/pl?u=https://cdn.example/vod/v360/index.m3u8?token=abc\n"), "{out}");
        assert!(out.contains("\n/pl?u=https://other.cdn.example/v720/index.m3u8\n"), "{out}");
        assert!(out.contains("URI=\"/pl?u=https://cdn.example/vod/iframes.m3u8\""), "{out}");
        assert!(out.contains("#EXT-X-SOMETHING-NEW:FOO=1\n"), "unknown tags are kept");
        assert_eq!(out.lines().count(), MASTER.lines().count());
    }

    #[test]
    fn media_playlist() {
        let base = Url::parse("https://cdn.example/vod/v360/index.m3u8").unwrap();
        let out = rewrite(MEDIA, &base, link);
        assert!(out.contains("URI=\"/p?u=https://keys.example/k?id=1\",IV=0x1234"), "{out}");
        assert!(out.contains("#EXT-X-MAP:URI=\"/p?u=https://cdn.example/vod/v360/init.mp4\""), "{out}");
        assert!(out.contains("\n/p?u=https://cdn.example/vod/v360/seg0.m4s\n"), "{out}");
        assert!(out.contains("\n/p?u=https://cdn.example/abs/seg1.m4s\n"), "{out}");
        assert!(out.contains("URI=\"skd://key-id\""), "non-http keys are left alone");
        assert!(out.contains("# a comment\n"));
        assert!(!out.lines().any(|l| !l.starts_with('#') && l.contains("cdn.example") && !l.starts_with("/p?")));
    }

    #[test]
    fn segments_are_named_without_host_or_signature() {
        let a = Url::parse("https://edge1.cdn/v/seg7.ts?token=x&b=2&a=1&Expires=9").unwrap();
        let b = Url::parse("https://edge2.cdn/v/seg7.ts?a=1&b=2&token=y").unwrap();
        assert_eq!(segment_identity(&a), "/v/seg7.ts?a=1&b=2");
        assert_eq!(segment_identity(&a), segment_identity(&b));
        assert_ne!(segment_identity(&a), segment_identity(&Url::parse("https://edge1.cdn/v/seg8.ts").unwrap()));
    }
}
