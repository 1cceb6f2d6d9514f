//! Fuzzing, on the stable toolchain: every parser that reads input a client
//! or an origin controls, fed its corpus (`tests/fuzz/corpus/<target>/`) and
//! proptest-driven mutations of it. The property everywhere: no panic,
//! output bounded by the input, and output that parses back to itself.
//! `REELAY_FUZZ_CASES` sets the cases per target (default 20,000).

mod mutate;

use axum::http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use reelay::extract::{SabrMode, VideoInfo};
use reelay::hls::rewrite::{rewrite, segment_identity};
use reelay::hls::{Grant, PartGrant, Signer};
use reelay::manifest::Index;
use reelay::platform::PlaylistRef;
use reelay::platform::{Platform, VideoRef};
use reelay::relay::range::{Answer, Validators, answer, first_byte};
use reelay::service::signin::read_status;
use serde_json::Value;
use url::Url;

use mutate::{bytes, config, corpus, corpus_bytes, raw, text};

const PLATFORMS: &[&str] = &["youtube", "bilibili", "twitter", "x", "instagram", "twitch", "YouTube", "myspace", ""];

/// A parsed link must name the same video when its canonical URL, or its
/// cache key, is parsed again.
fn check_video_ref(r: &VideoRef) {
    let key = r.cache_key();
    assert!(key.len() <= 2200, "{key}");
    assert!(!key.chars().any(char::is_control), "{key:?}");
    let again = VideoRef::from_url(&r.source_url()).unwrap_or_else(|e| panic!("{}: {e}", r.source_url()));
    assert_eq!(again.cache_key(), key);
    assert_eq!(VideoRef::from_cache_key(&key).map(|r| r.cache_key()), Some(key));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn links_and_ids(input in text(corpus("urls")), platform in prop::sample::select(PLATFORMS)) {
        links(&input, platform);
    }

    #[test]
    fn range_headers_from_anywhere(value in text(corpus("ranges")), if_range in text(corpus("ranges")), len in 0u64..5000) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::RANGE, v);
        }
        if let Ok(v) = HeaderValue::from_str(&if_range) {
            h.insert(header::IF_RANGE, v.clone());
            h.insert(header::IF_NONE_MATCH, v.clone());
            h.insert(header::IF_MODIFIED_SINCE, v);
        }
        let v = Validators { etag: Some("\"e\"".into()), last_modified: Some("Sat, 28 Nov 2026 00:00:00 GMT".into()) };
        if let Answer::Part { start, end } = answer(&h, len, &v) {
            prop_assert!(start <= end && end < len, "{start}-{end} of {len}");
        }
        let _ = first_byte(&h);
    }

    /// Well-formed range sets against a model of RFC 9110 §14.1.2–14.2.
    #[test]
    fn range_sets_match_the_rfc(
        specs in prop::collection::vec((0u8..3, 0u64..3000, 0u64..3000), 1..6),
        len in 0u64..2500,
    ) {
        let text: Vec<String> = specs.iter().map(|&(kind, a, b)| match kind {
            0 => format!("{a}-{b}"),
            1 => format!("{a}-"),
            _ => format!("-{a}"),
        }).collect();
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(&format!("bytes={}", text.join(", "))).unwrap());
        let model = if specs.iter().any(|&(kind, a, b)| kind == 0 && b < a) {
            Answer::Full // one invalid spec: the header is ignored
        } else {
            specs.iter().find_map(|&(kind, a, b)| match kind {
                0 if a < len => Some(Answer::Part { start: a, end: b.min(len - 1) }),
                1 if a < len => Some(Answer::Part { start: a, end: len - 1 }),
                2 if a > 0 && len > 0 => Some(Answer::Part { start: len - a.min(len), end: len - 1 }),
                _ => None,
            }).unwrap_or(Answer::Unsatisfiable)
        };
        prop_assert_eq!(answer(&h, len, &Validators::default()), model);
    }

    #[test]
    fn hls_playlists_from_origins(playlist in text(corpus("hls")), base in text(corpus("urls"))) {
        hls(&playlist, &base);
    }

    #[test]
    fn ytdlp_json_bytes(raw in bytes(corpus("ytdlp")), platform in prop::sample::select(PLATFORMS)) {
        ytdlp(&raw, platform);
    }

    #[test]
    fn ytdlp_json_shapes(v in ytdlp_value(), sabr in prop::sample::select(vec![SabrMode::Auto, SabrMode::Prefer, SabrMode::Off])) {
        if let Ok(info) = VideoInfo::from_ytdlp_value(v, "youtube", sabr) {
            let api: Value = serde_json::from_slice(&info.to_api_json()).expect("the API's JSON parses");
            prop_assert!(api.is_object());
        }
    }

    #[test]
    fn signed_link_tokens(token in text(corpus("tokens")), u in ".{0,80}", v in ".{0,40}", f in ".{0,20}", e in any::<i64>(), p in any::<bool>()) {
        let signer = Signer::new(Some("fuzz-key"));
        prop_assert!(signer.verify::<Grant>(&token, 0).is_err(), "a token not made with the key is refused");
        prop_assert!(signer.verify::<PartGrant>(&token, 0).is_err(), "a token not made with the key is refused");
        let grant = Grant { u, v, f, e, p };
        let signed = signer.sign(&grant);
        if e >= 0 {
            prop_assert_eq!(signer.verify(&signed, 0), Ok(grant.clone()));
        }
        // Any change to a signed token is refused, or reads back the same grant.
        let mut tampered: Vec<char> = signed.chars().collect();
        let at = (token.len() * 31) % tampered.len();
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        if let Ok(g) = signer.verify::<Grant>(&tampered, i64::MIN) {
            prop_assert_eq!(&g, &grant);
        }
        // Sealed the same: any token not sealed with the key is refused;
        // a sealed one opens to its grant, and any change to it is refused
        // (or, where base64 ignores the change, reads back the same).
        prop_assert!(signer.open::<Grant>(&token, 0).is_err(), "a token not sealed with the key is refused");
        let sealed = signer.seal(&grant);
        if e >= 0 {
            prop_assert_eq!(signer.open(&sealed, 0), Ok(grant.clone()));
        }
        let mut tampered: Vec<char> = sealed.chars().collect();
        let at = (token.len() * 31) % tampered.len();
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        if let Ok(g) = signer.open::<Grant>(&tampered, i64::MIN) {
            prop_assert_eq!(g, grant);
        }
    }

    #[test]
    fn mp4_heads(head in raw(corpus_bytes("mp4"))) {
        // Any bytes: an index, a request for more, or a plain refusal, never a panic;
        // an index read is consistent with the bytes it came from.
        if let Ok(index) = Index::parse(&head) {
            prop_assert!(index.init_len() <= index.sidx.0 && index.sidx.1 < head.len() as u64);
            prop_assert!(index.segments.first().is_some_and(|s| s.offset > index.sidx.1));
            prop_assert!(index.timescale > 0);
        }
    }

    #[test]
    fn netscape_cookie_files(file in bytes(corpus("cookies")), now in any::<i64>()) {
        cookies(&file, now);
    }
}

fn links(input: &str, platform: &str) {
    if let Ok(r) = VideoRef::from_url(input) {
        check_video_ref(&r);
    }
    if let Ok(r) = VideoRef::from_path(platform, input) {
        check_video_ref(&r);
    }
    if let Ok(p) = PlaylistRef::from_url(input) {
        let again = PlaylistRef::from_url(&p.source_url()).expect("a playlist's own URL parses");
        assert_eq!(again.cache_key(), p.cache_key());
    }
    let _ = PlaylistRef::from_path(platform, input, None);
    let _ = PlaylistRef::from_path(platform, input, Some(input));
}

fn hls(playlist: &str, base: &str) {
    let base = Url::parse(base).unwrap_or_else(|_| Url::parse("https://cdn.example.com/live/index.m3u8").unwrap());
    let mut n = 0;
    let out = rewrite(playlist, &base, |u, _| {
        let _ = segment_identity(u);
        n += 1;
        format!("https://relay.example/s/{n}.ts")
    });
    assert_eq!(out.lines().count(), playlist.lines().count());
    assert!(out.len() <= playlist.len() * 2 + (n + playlist.lines().count()) * 40);
    // Rewritten output parses back to itself: every link it holds resolves to itself.
    let again = rewrite(&out, &base, |u, _| u.to_string());
    assert_eq!(again, out);
}

fn ytdlp(raw: &[u8], platform: &str) {
    if let Ok(info) = VideoInfo::from_ytdlp_json(raw, platform) {
        let api: Value = serde_json::from_slice(&info.to_api_json()).expect("the API's JSON parses");
        assert!(api.is_object());
    }
}

fn cookies(file: &[u8], now: i64) {
    for platform in [Platform::YouTube, Platform::Bilibili, Platform::Twitter, Platform::Instagram, Platform::Twitch] {
        let reading = read_status(platform, Some(file.to_vec()), now);
        if let Some(at) = &reading.status.expires_at {
            assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        }
        assert!(!reading.status.cookies_valid || reading.status.authenticated);
    }
}

/// Every corpus entry as it is, whatever the mutations pick: the corpus
/// holds the inputs that once failed.
#[test]
fn the_corpus_as_it_is() {
    for input in corpus("urls") {
        for platform in PLATFORMS {
            links(&input, platform);
        }
    }
    for playlist in corpus("hls") {
        hls(&playlist, "https://cdn.example.com/live/index.m3u8");
    }
    for raw in corpus("ytdlp") {
        ytdlp(raw.as_bytes(), "youtube");
    }
    for file in corpus("cookies") {
        cookies(file.as_bytes(), 1_800_000_000);
    }
    for head in corpus_bytes("mp4") {
        let index = Index::parse(&head).expect("the corpus holds DASH heads");
        assert!(!index.segments.is_empty());
    }
}

proptest! {
    // Each case parses the whole Config with clap: a tenth of the cases.
    #![proptest_config(mutate::config_scaled(10))]

    /// `YTDLP_ARGS`: any value splits or is refused, never panics; split
    /// arguments quoted again split back to themselves.
    #[test]
    fn ytdlp_args_quoting(value in text(corpus("args")), args in prop::collection::vec(".{0,20}", 0..6)) {
        let config = |v: &str| reelay::config::Config::from_args(["reelay", "--ytdlp-args", v]);
        if let Ok(c) = config(&value) {
            let _ = c.ytdlp_args();
        }
        if let Ok(joined) = shlex::try_join(args.iter().map(String::as_str)) {
            let back = config(&joined).expect("a quoted value parses").ytdlp_args().expect("and splits");
            prop_assert_eq!(back, args);
        }
    }
}

/// JSON shaped like yt-dlp's, with its keys and wrong types in them.
fn ytdlp_value() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "id",
        "title",
        "duration",
        "formats",
        "url",
        "format_id",
        "ext",
        "width",
        "height",
        "fps",
        "tbr",
        "abr",
        "vcodec",
        "acodec",
        "filesize",
        "filesize_approx",
        "protocol",
        "http_headers",
        "downloader_options",
        "http_chunk_size",
        "_type",
        "entries",
        "thumbnail",
        "thumbnails",
        "upload_date",
        "view_count",
        "uploader",
        "extractor_key",
        "webpage_url",
        "manifest_url",
        "is_live",
        "requested_formats",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("https://rr1---sn-a.googlevideo.com/videoplayback?expire=1&clen=9".into())),
        Just(Value::String("none".into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
