//! Signed links for HLS: every URI in a rewritten playlist points back at
//! the server with a grant (the upstream URL, the video and format whose
//! headers fetch it, an expiry). The segment endpoint fetches only what it
//! granted, so the proxy never becomes an open one. A [`Grant`] names an
//! origin URL, so it is sealed (encrypted and authenticated, XChaCha20-
//! Poly1305): a client reads nothing of it. Manifests reelay builds name
//! their parts with [`PartGrant`]s, which name no URL and are signed (HMAC).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a signed link allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The upstream URL.
    pub u: String,
    /// The video's cache key, to find the format's upstream headers.
    pub v: String,
    /// The format id whose headers are sent.
    pub f: String,
    /// Unix time after which the link is refused.
    pub e: i64,
    /// The URL is a playlist (rewritten again when fetched), not media.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub p: bool,
}

/// A grant for one part of a manifest reelay built (`/api/v2/stream/media/`):
/// a media playlist, or a file of the video fetched through the relay (or
/// named directly). It carries no upstream URL: the part is found in the
/// video's current extraction, so links outlive expiring origin URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartGrant {
    /// The video's cache key.
    pub v: String,
    /// The format id.
    pub f: String,
    /// Unix time after which the link is refused.
    pub e: i64,
    /// What the link serves: `m` a media playlist, `b` the file's bytes,
    /// `s` a subtitle track's playlist, `t` its WebVTT (`f` is then the
    /// track: its language, `auto:` before it for automatic captions).
    pub k: PartKind,
    /// A media playlist whose segments name the origin URL (`mode=direct`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub d: bool,
    /// A muxed HLS segment, by its place in the video's subsegments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i: Option<u32>,
}

/// A grant for a live stream's link (`/api/v2/stream/live/`): a variant's
/// playlist, or a segment, map or key of its window. It names the stream
/// and variant, never the origin's URL, so a variant link outlives the
/// origin's session and no client learns where the bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveGrant {
    /// The stream's video cache key.
    pub v: String,
    /// The variant's format id.
    pub f: String,
    /// Unix time after which the link is refused.
    pub e: i64,
    /// A segment, by reelay's media sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<u64>,
    /// A map or key, by its place in the window's table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartKind {
    #[serde(rename = "m")]
    Playlist,
    #[serde(rename = "b")]
    Bytes,
    #[serde(rename = "s")]
    SubtitlePlaylist,
    #[serde(rename = "t")]
    Subtitles,
    /// Muxed HLS (`f` is `{video}+{audio}`): a variant's media playlist,
    /// and one of its MPEG-TS segments.
    #[serde(rename = "x")]
    MuxedPlaylist,
    #[serde(rename = "y")]
    MuxedSegment,
}

/// What every grant has: an expiry.
pub trait Expiring {
    fn expires(&self) -> i64;
}

impl Expiring for Grant {
    fn expires(&self) -> i64 {
        self.e
    }
}

impl Expiring for LiveGrant {
    fn expires(&self) -> i64 {
        self.e
    }
}

impl Expiring for PartGrant {
    fn expires(&self) -> i64 {
        self.e
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the link's signature is not valid")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

pub struct Signer {
    /// `URL_SIGNING_KEY`, or random bytes per process.
    key: Vec<u8>,
    /// Seals grants that name an origin URL; its key is derived from `key`
    /// (so every instance sharing `URL_SIGNING_KEY` opens the others').
    sealer: XChaCha20Poly1305,
    /// Derives each nonce from the grant it seals (a synthetic IV, as in
    /// AES-SIV): the same grant sealed anywhere with the same key is the
    /// same link, so caches in front share it; two different grants share
    /// a nonce with odds of 2^-96, and one grant sealed twice shows only
    /// that it is the same grant. Its key is derived from `key` too.
    nonces: HmacSha256,
}

/// Link expiries are rounded up to this step: every link written within
/// it, by any instance sharing `URL_SIGNING_KEY` and after a restart, is
/// byte-identical, so players and caches in front share them.
pub const EXPIRY_STEP_SECS: i64 = 3600;

/// The expiry of a link written at `now` to live at least `ttl` seconds:
/// `now + ttl` rounded up to [`EXPIRY_STEP_SECS`].
pub fn link_expiry(now: i64, ttl: i64) -> i64 {
    let at = now + ttl;
    at + (EXPIRY_STEP_SECS - at.rem_euclid(EXPIRY_STEP_SECS)) % EXPIRY_STEP_SECS
}

/// The nonce's length (XChaCha20's).
const NONCE: usize = 24;

impl Signer {
    /// With no key, a random one: links then work on this process only.
    pub fn new(key: Option<&str>) -> Self {
        let key = match key {
            Some(k) => k.as_bytes().to_vec(),
            None => [uuid::Uuid::new_v4().into_bytes(), uuid::Uuid::new_v4().into_bytes()].concat(),
        };
        let mut derive = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
        derive.update(b"reelay: the key of sealed links");
        let sealer = XChaCha20Poly1305::new(&derive.finalize().into_bytes());
        let mut derive = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
        derive.update(b"reelay: the key of sealed links' nonces");
        let nonces = HmacSha256::new_from_slice(&derive.finalize().into_bytes()).expect("any length");
        Signer { key, sealer, nonces }
    }

    /// `grant` encrypted and authenticated, base64url: nonce, then
    /// ciphertext. The same grant gives the same token.
    pub fn seal(&self, grant: &impl Serialize) -> String {
        let plain = serde_json::to_vec(grant).expect("plain struct");
        let mut mac = self.nonces.clone();
        mac.update(&plain);
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&mac.finalize().into_bytes()[..NONCE]);
        let sealed = self.sealer.encrypt(&nonce.into(), plain.as_slice()).expect("a grant is far below the limit");
        B64.encode([&nonce[..], &sealed].concat())
    }

    /// Opens a sealed grant and checks its expiry; anything altered, or
    /// sealed with another key, is `Invalid`.
    pub fn open<G: DeserializeOwned + Expiring>(&self, token: &str, now: i64) -> Result<G, SignError> {
        let bytes = B64.decode(token).map_err(|_| SignError::Invalid)?;
        if bytes.len() < NONCE {
            return Err(SignError::Invalid);
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| SignError::Invalid)?;
        let plain = self.sealer.decrypt(&nonce.into(), sealed).map_err(|_| SignError::Invalid)?;
        let grant: G = serde_json::from_slice(&plain).map_err(|_| SignError::Invalid)?;
        if grant.expires() < now {
            return Err(SignError::Expired);
        }
        Ok(grant)
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(payload);
        mac
    }

    /// `{payload}.{signature}`, both base64url.
    pub fn sign(&self, grant: &impl Serialize) -> String {
        let payload = B64.encode(serde_json::to_vec(grant).expect("plain struct"));
        let sig = B64.encode(self.mac(payload.as_bytes()).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// Checks the signature (in constant time) and the expiry. A grant of
    /// another kind does not read as this one (their fields differ).
    pub fn verify<G: DeserializeOwned + Expiring>(&self, token: &str, now: i64) -> Result<G, SignError> {
        let (payload, sig) = token.split_once('.').ok_or(SignError::Invalid)?;
        let sig = B64.decode(sig).map_err(|_| SignError::Invalid)?;
        self.mac(payload.as_bytes()).verify_slice(&sig).map_err(|_| SignError::Invalid)?;
        let grant: G = serde_json::from_slice(&B64.decode(payload).map_err(|_| SignError::Invalid)?)
            .map_err(|_| SignError::Invalid)?;
        if grant.expires() < now {
            return Err(SignError::Expired);
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_tamper_and_expiry() {
        let s = Signer::new(Some("k"));
        let g =
            Grant { u: "https://cdn/x.ts".into(), v: "video:twitch:1".into(), f: "hls-720".into(), e: 100, p: false };
        let t = s.sign(&g);
        assert_eq!(s.verify(&t, 50), Ok(g.clone()));
        assert_eq!(s.verify::<Grant>(&t, 101), Err(SignError::Expired));
        assert_eq!(s.verify::<PartGrant>(&t, 50), Err(SignError::Invalid), "an HLS link is no manifest part");
        let part = PartGrant { v: g.v.clone(), f: g.f.clone(), e: 100, k: PartKind::Bytes, d: false, i: None };
        let pt = s.sign(&part);
        assert_eq!(s.verify(&pt, 50), Ok(part));
        assert_eq!(s.verify::<Grant>(&pt, 50), Err(SignError::Invalid), "a manifest part is no HLS link");
        let live = LiveGrant { v: g.v.clone(), f: g.f.clone(), e: 100, s: Some(7), a: None };
        let lt = s.sign(&live);
        assert_eq!(s.verify(&lt, 50), Ok(live));
        assert_eq!(s.verify::<LiveGrant>(&t, 50), Err(SignError::Invalid), "an HLS link is no live link");
        assert_eq!(s.verify::<LiveGrant>(&pt, 50), Err(SignError::Invalid), "a manifest part is no live link");
        assert_eq!(s.verify::<Grant>(&lt, 50), Err(SignError::Invalid));
        assert_eq!(s.verify::<PartGrant>(&lt, 50), Err(SignError::Invalid));
        let other = Grant { u: "https://evil/".into(), ..g };
        let forged = format!("{}.{}", s.sign(&other).split_once('.').unwrap().0, t.split_once('.').unwrap().1);
        assert_eq!(s.verify::<Grant>(&forged, 50), Err(SignError::Invalid));
        assert_eq!(Signer::new(Some("other")).verify::<Grant>(&t, 50), Err(SignError::Invalid));
        assert_eq!(s.verify::<Grant>("garbage", 50), Err(SignError::Invalid));
    }

    #[test]
    fn sealed_grants_hide_the_url_and_open_only_unaltered_with_the_key() {
        let s = Signer::new(Some("k"));
        let g = Grant {
            u: "https://usher.origin.example/vod/secret-token.m3u8".into(),
            v: "video:twitch:1".into(),
            f: "hls-720".into(),
            e: 100,
            p: true,
        };
        let t = s.seal(&g);
        let raw = B64.decode(&t).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("origin.example"), "the URL is not readable");
        assert_eq!(t, Signer::new(Some("k")).seal(&g), "the same grant is the same link on every instance");
        let other = Grant { e: 101, ..g.clone() };
        let raw_other = B64.decode(s.seal(&other)).unwrap();
        assert_ne!(&raw[..NONCE], &raw_other[..NONCE], "another grant, another nonce");
        assert_ne!(&raw[..NONCE], &B64.decode(Signer::new(Some("k2")).seal(&g)).unwrap()[..NONCE], "another key too");
        assert_eq!(s.open(&t, 50), Ok(g.clone()));
        assert_eq!(s.open::<Grant>(&t, 101), Err(SignError::Expired));
        assert_eq!(Signer::new(Some("k")).open(&t, 50), Ok(g.clone()), "another instance with the same key");
        assert_eq!(Signer::new(Some("other")).open::<Grant>(&t, 50), Err(SignError::Invalid));
        let mut altered = raw.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(s.open::<Grant>(&B64.encode(altered), 50), Err(SignError::Invalid));
        assert_eq!(s.open::<Grant>(&s.sign(&g), 50), Err(SignError::Invalid), "a signed grant is not a sealed one");
        assert_eq!(s.verify::<Grant>(&t, 50), Err(SignError::Invalid), "nor the other way");
        assert_eq!(s.open::<Grant>("AAAA", 50), Err(SignError::Invalid));
    }
}
