//! The task behind one live variant: reload, merge, publish, fetch ahead.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use super::playlist::{self, Copy};
use super::sabr::{Fed, Feed};
use super::window::{Part, Window};
use super::{Hub, LiveError, Snapshot, State, Variant};
use crate::relay::sabr::{Flow, SabrSource, run as run_sabr};
use crate::relay::{Locator, ProxyError, RelayError, Source};
use crate::sabr::{Config, Event, SabrFailure, Session, Track};
use crate::upstream::read_limited;

/// The largest live playlist read.
const MAX_PLAYLIST_BYTES: usize = 2 * 1024 * 1024;

/// Failures in a row (fetches, renewals) after which a stream is over.
const GIVE_UP_AFTER: u32 = 8;

/// Reloads tried before a variant's first viewer is told the origin failed.
const FIRST_TRIES: u32 = 5;

/// Polled this soon after a segment's predicted arrival, to be after it.
const MARGIN_MS: i64 = 30;

/// Why one reload failed.
enum Reload {
    /// 403, 404 or 410: the session is over; extract again.
    Refused,
    Failed(LiveError),
}

pub(super) async fn run(hub: Arc<Hub>, variant: Arc<Variant>, source: Arc<dyn Source>, number: u64) {
    hub.metrics.live.streams.inc();
    let mut poller = Poller {
        hub: hub.clone(),
        variant: variant.clone(),
        source,
        number,
        window: Window::default(),
        session: None,
        playlist_url: None,
        schedule: Schedule::default(),
        failures: 0,
        feed: Feed::default(),
        viewers: Viewers { traffic: Some(hub.metrics.traffic.video(&variant.key.stream)), ..Viewers::default() },
    };
    if let Some(t) = &poller.viewers.traffic {
        t.live_variants.fetch_add(1, Ordering::Relaxed);
    }
    poller.poll().await;
    hub.remove(&variant);
    poller.viewers.report(&hub, 0);
    if let Some(t) = &poller.viewers.traffic {
        t.live_variants.fetch_sub(1, Ordering::Relaxed);
    }
    for (part, _) in poller.window.parts() {
        hub.relay.discard(&hub.store_key(&variant.key, number, part));
    }
    hub.metrics.live.streams.dec();
    tracing::info!(stream = %variant.key.stream, variant = %variant.key.variant, "live poller stopped");
}

fn dummy() -> Locator {
    Locator { url: String::new(), headers: Default::default(), route: Default::default(), sabr: None }
}

struct Poller {
    hub: Arc<Hub>,
    variant: Arc<Variant>,
    source: Arc<dyn Source>,
    number: u64,
    window: Window,
    /// Where the session's playlist is, and its headers.
    session: Option<Locator>,
    /// The media playlist when the session's URL was a master.
    playlist_url: Option<Url>,
    schedule: Schedule,
    /// Failures in a row.
    failures: u32,
    /// What a SABR variant's session brought (the window's source then).
    feed: Feed,
    viewers: Viewers,
}

impl Poller {
    async fn poll(&mut self) {
        let idle = self.hub.settings.idle;
        loop {
            let quiet = self.hub.now_ms().saturating_sub(self.variant.last_request.load(Ordering::Relaxed));
            if Duration::from_millis(quiet) > idle {
                return;
            }
            self.viewers.tick(&self.hub, &self.variant, self.window.target);
            if self.window.ended {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let wait = match self.step().await {
                Ok(wait) => wait,
                Err(e) => {
                    if self.window.is_empty() {
                        let _ = self.variant.state.send(State::Failed(e));
                        return;
                    }
                    tracing::warn!(stream = %self.variant.key.stream, error = %e, "live stream given up; ended");
                    self.window.ended = true;
                    self.publish();
                    continue;
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One reload (renewing the session when it needs it): how long until
    /// the next, or why the stream is over.
    async fn step(&mut self) -> Result<Duration, LiveError> {
        let session = match self.session.clone() {
            Some(s) if !expires_soon(&s.url, self.window.target) => s,
            Some(s) => self.renew(Some(&s.url), "expiring").await?,
            None => self.renew(None, "start").await?,
        };
        if let Some(sabr) = session.sabr.clone() {
            return self.follow_sabr(session, sabr).await;
        }
        let url = self.playlist_url.clone().map_or_else(|| session.url.clone(), |u| u.to_string());
        match self.reload(&url, &session).await {
            Ok(copy) => {
                self.failures = 0;
                Ok(self.merge(copy, &url))
            }
            Err(Reload::Refused) => {
                self.hub.metrics.live.count_fetch("failed");
                self.renew(Some(&session.url), "refused").await?;
                Ok(Duration::ZERO)
            }
            Err(Reload::Failed(e)) => {
                self.hub.metrics.live.count_fetch("failed");
                tracing::debug!(error = %e, failures = self.failures + 1, "live playlist reload failed");
                self.failed(e)
            }
        }
    }

    /// One more failure in a row: the wait before trying again, or, past
    /// the patience, why the stream is over.
    fn failed(&mut self, e: LiveError) -> Result<Duration, LiveError> {
        self.failures += 1;
        // The first viewer waits for a few tries (an origin's hiccup of a
        // few seconds), not for the whole patience of a stream.
        if self.failures >= GIVE_UP_AFTER || (self.window.is_empty() && self.failures >= FIRST_TRIES) {
            return Err(e);
        }
        Ok(Duration::from_millis(500 * u64::from(self.failures)).min(self.half_target()))
    }

    fn half_target(&self) -> Duration {
        Duration::from_millis(self.window.target.max(1) * 500)
    }

    /// Where the session is now: the source's current URL, or (with
    /// `stale`) a new session after the origin refused that one.
    async fn renew(&mut self, stale: Option<&str>, why: &'static str) -> Result<Locator, LiveError> {
        let first = stale.is_none();
        let found = self.source.locate(stale).await;
        let live = &self.hub.metrics.live;
        match found {
            Ok(l) if first || Some(l.url.as_str()) != stale => {
                if !first {
                    live.count_renewal("ok");
                    tracing::info!(stream = %self.variant.key.stream, why, "live session renewed");
                }
                self.playlist_url = None;
                self.session = Some(l.clone());
                Ok(l)
            }
            // The same URL again: no new session (yet).
            Ok(l) => {
                live.count_renewal("failed");
                self.failures += 1;
                if self.failures >= GIVE_UP_AFTER || self.window.is_empty() {
                    return Err(LiveError::Origin(RelayError::Expired));
                }
                tokio::time::sleep(self.half_target()).await;
                Ok(l)
            }
            Err(e) => {
                if !first {
                    live.count_renewal("failed");
                }
                self.failures += 1;
                // The source says the stream is over: end now, no retries.
                let ended = matches!(e, RelayError::Ended(_));
                if first || ended || self.failures >= GIVE_UP_AFTER || self.window.is_empty() {
                    return Err(LiveError::Origin(e));
                }
                tracing::warn!(error = %e, "live session renewal failed; trying again");
                tokio::time::sleep(self.half_target()).await;
                // Carry on with the old session meanwhile.
                self.session.clone().ok_or(LiveError::Origin(e))
            }
        }
    }

    /// Fetches and reads the playlist at `url`; a master is followed to its
    /// first variant once.
    async fn reload(&mut self, url: &str, session: &Locator) -> Result<Copy, Reload> {
        let mut url = url.to_owned();
        for _ in 0..2 {
            let fetched = self.hub.relay.upstream().fetch(&url, &session.via(), None).await;
            let fetched = match fetched {
                Ok(f) => f,
                Err(ProxyError::Expired(_)) | Err(ProxyError::Status(http::StatusCode::NOT_FOUND)) => {
                    return Err(Reload::Refused);
                }
                Err(e) => return Err(Reload::Failed(LiveError::Origin(e.into()))),
            };
            let base = fetched.url;
            let body = read_limited(fetched.response.into_body(), MAX_PLAYLIST_BYTES)
                .await
                .map_err(|e| Reload::Failed(LiveError::Origin(RelayError::Unreachable(e))))?;
            let copy = playlist::parse(&String::from_utf8_lossy(&body), &base)
                .ok_or(Reload::Failed(LiveError::NotPlaylist))?;
            match copy.variant {
                Some(variant) => {
                    url = variant.to_string();
                    self.playlist_url = Some(variant);
                }
                None => return Ok(copy),
            }
        }
        Err(Reload::Failed(LiveError::NotPlaylist))
    }

    /// Merges a copy, publishes it, fetches new segments ahead, lets the
    /// gone ones go; the wait until the next reload.
    fn merge(&mut self, copy: Copy, url: &str) -> Duration {
        let hub = self.hub.clone();
        let key = self.variant.key.clone();
        let link = move |part: Part, u: &Url| hub.links.part(&key, part, &link_name(u, part));
        let first = self.window.is_empty();
        let merged = self.window.merge(&copy, url, &link);
        let changed = !merged.new.is_empty();
        let live = &self.hub.metrics.live;
        live.count_fetch(if changed { "changed" } else { "unchanged" });
        if changed || first {
            self.publish();
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let session = self.session.clone().unwrap_or_else(dummy);
        for seq in &merged.new {
            if let Some(url) = self.window.url_of(Part::Segment(*seq)) {
                let spec = self.hub.spec(&self.variant.key, self.number, Part::Segment(*seq), url, &session);
                let relay = self.hub.relay.clone();
                live.segment_fetches.inc();
                tokio::spawn(async move {
                    if let Err(e) = relay.prefetch(spec).await {
                        tracing::debug!(error = %e, "live segment prefetch failed");
                    }
                });
            }
        }
        for seq in &merged.gone {
            self.hub.relay.discard(&self.hub.store_key(&self.variant.key, self.number, Part::Segment(*seq)));
        }
        let edge = self.window.last().and_then(|s| s.up.date_ms.map(|d| (d + (s.up.duration * 1000.0) as i64, s)));
        if changed
            && !first
            && let Some((end, _)) = edge
        {
            live.edge_delay.observe(((now_ms - end) as f64 / 1000.0).max(0.0));
        }
        let next = edge.map(|(end, s)| (end, (s.up.duration * 1000.0) as i64));
        self.schedule.after(changed, self.window.target, next, now_ms)
    }

    fn publish(&self) {
        let body = Bytes::from(self.window.render());
        let snap = Snapshot {
            body,
            max_age: self.window.target / 2,
            parts: self.window.parts(),
            locator: self.session.clone().unwrap_or_else(dummy),
            poller: self.number,
        };
        self.variant.state.send_replace(State::Ready(Arc::new(snap)));
    }
}

impl Poller {
    /// Follows the stream over SABR from `session` until its viewers leave
    /// (`Ok`, the poll loop then stops), or the session fails: a refusal or
    /// a server that wants the video loaded again renews the session
    /// (extracts again); other failures are counted as a reload's are.
    pub(super) async fn follow_sabr(&mut self, loc: Locator, sabr: Arc<SabrSource>) -> Result<Duration, LiveError> {
        let config = Config { url: loc.url.clone(), ..sabr.config.clone() };
        let (video, audio) = match sabr.track {
            Track::Video => (sabr.format.clone(), sabr.partner.clone()),
            Track::Audio => (sabr.partner.clone(), sabr.format.clone()),
        };
        let mut feed = std::mem::take(&mut self.feed);
        if feed.content_type.is_empty() {
            feed.content_type = sabr.content_type.clone();
        }
        let mut session = Session::new(config, video, audio, feed.reached_ms).only(sabr.track).live();
        let hub = self.hub.clone();
        let idle = hub.settings.idle;
        let result = run_sabr(hub.relay.upstream(), &loc.via(), hub.relay.idle(), &mut session, |event| {
            if watched_within(&self.variant, &hub, idle) {
                self.viewers.tick(&hub, &self.variant, self.window.target.max(1));
            } else {
                return Flow::Stop;
            }
            match event {
                Event::Init { bytes, .. } => feed.init(self.number, bytes),
                Event::Segment(seg) => {
                    if let Some(fed) = feed.segment(self.number, seg) {
                        self.failures = 0;
                        self.list(fed, &mut feed);
                    }
                }
                Event::Layout { .. } | Event::Live(_) => {}
            }
            Flow::More
        })
        .await;
        self.feed = feed;
        match result {
            Ok(()) => Ok(Duration::ZERO),
            Err(RelayError::Expired | RelayError::Sabr(SabrFailure::Reload | SabrFailure::AttestationRequired)) => {
                self.hub.metrics.live.count_fetch("failed");
                self.renew(Some(&loc.url), "refused").await?;
                Ok(Duration::ZERO)
            }
            Err(e) => {
                self.hub.metrics.live.count_fetch("failed");
                tracing::debug!(error = %e, failures = self.failures, "live SABR session failed");
                self.failed(LiveError::Origin(e))
            }
        }
    }

    /// Puts a segment (and a new init section) in the store under its
    /// part's key, merges the copy that lists it, publishes.
    fn list(&mut self, fed: Fed, feed: &mut Feed) {
        let hub = self.hub.clone();
        let key = self.variant.key.clone();
        let link = move |part: Part, u: &Url| hub.links.part(&key, part, &link_name(u, part));
        let merged = self.window.merge(&fed.copy, super::sabr::SESSION, &link);
        let live = &self.hub.metrics.live;
        live.count_fetch(if merged.new.is_empty() { "unchanged" } else { "changed" });
        let content_type = feed.content_type.split(';').next().unwrap_or("").trim().to_owned();
        if let Some((url, bytes)) = feed.take_init() {
            let aux = self.window.parts().into_iter().find(|(p, u)| matches!(p, Part::Aux(_)) && *u == url);
            if let Some((part, url)) = aux {
                self.keep(part, url, bytes, &content_type);
            }
        }
        // One segment at a time: the copy's only new one is this one.
        if let Some(&seq) = merged.new.last()
            && let Some(url) = self.window.url_of(Part::Segment(seq))
        {
            live.segment_fetches.inc();
            self.keep(Part::Segment(seq), url, fed.bytes, &content_type);
        }
        for seq in &merged.gone {
            self.hub.relay.discard(&self.hub.store_key(&self.variant.key, self.number, Part::Segment(*seq)));
        }
        if !merged.new.is_empty() {
            self.publish();
        }
    }

    fn keep(&self, part: Part, url: Url, bytes: Bytes, content_type: &str) {
        let session = self.session.clone().unwrap_or_else(dummy);
        let spec = self.hub.spec(&self.variant.key, self.number, part, url, &session);
        self.hub.relay.keep(spec, bytes, content_type);
    }
}

/// Whether someone asked for the variant's playlist within `idle`.
fn watched_within(variant: &Variant, hub: &Hub, idle: Duration) -> bool {
    let quiet = hub.now_ms().saturating_sub(variant.last_request.load(Ordering::Relaxed));
    Duration::from_millis(quiet) <= idle
}

/// A link's last path segment: reelay's number and the origin's file
/// extension (`1234.ts`, `part0.mp4`), which some players look at; nothing
/// else of the origin's path.
fn link_name(u: &Url, part: Part) -> String {
    let last = u.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
    let ext: String = last
        .rsplit_once('.')
        .map(|(_, e)| e.chars().filter(char::is_ascii_alphanumeric).take(5).collect())
        .unwrap_or_default();
    let ext = if ext.is_empty() { "ts".to_owned() } else { ext };
    match part {
        Part::Segment(n) => format!("{n}.{ext}"),
        Part::Aux(n) => format!("part{n}.{ext}"),
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Whether a session URL's expiry (Unix seconds: `expire=` in the query, or
/// `/expire/<n>/` in the path as YouTube's HLS writes it) is near: within
/// three target durations (a refusal renews it too, for tokens reelay
/// cannot read).
fn expires_soon(url: &str, target: u64) -> bool {
    let Ok(u) = Url::parse(url) else { return false };
    let in_query = u
        .query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("expire") || k.eq_ignore_ascii_case("expires"))
        .and_then(|(_, v)| v.parse::<i64>().ok());
    let in_path = || {
        let parts: Vec<&str> = u.path_segments()?.collect();
        parts.windows(2).find(|w| w[0] == "expire").and_then(|w| w[1].parse::<i64>().ok())
    };
    in_query.or_else(in_path).is_some_and(|e| now_unix() >= e - 3 * target.max(1) as i64)
}

/// When to reload. With dated segments, just after the next one is due:
/// the newest one's end plus its duration plus the origin's lag (from a
/// segment's end to its listing); tried again at growing steps when it is
/// not there yet. The lag is learnt: none at first (the first copy came at
/// some moment after the listing and says nothing); a reload that had to
/// try again sets it to what it saw (within a step of the truth), and one
/// that finds the segment at once halves it. Without dates, RFC
/// 8216 §6.3.4: the target duration after a change, half of it after none.
#[derive(Debug, Default)]
struct Schedule {
    /// Milliseconds from a segment's end to its listing, as learnt.
    lag: Option<i64>,
    /// The newest segment's end seen, to take each lag once.
    last_end: Option<i64>,
    /// Reloads in a row that found nothing new.
    misses: u32,
}

impl Schedule {
    /// `next`: the newest segment's end (Unix ms) and duration (ms).
    fn after(&mut self, changed: bool, target: u64, next: Option<(i64, i64)>, now_ms: i64) -> Duration {
        let target_ms = target.max(1) as i64 * 1000;
        let Some((end, duration)) = next else {
            self.misses = if changed { 0 } else { self.misses + 1 };
            return Duration::from_millis(if changed { target_ms } else { target_ms / 2 } as u64);
        };
        if changed && self.last_end != Some(end) {
            let seen = (now_ms - end).max(0);
            self.lag = Some(match self.lag {
                None => 0,
                Some(lag) if self.misses == 0 => (lag / 2).min(seen),
                Some(_) => seen,
            });
            self.misses = 0;
            self.last_end = Some(end);
        } else {
            self.misses += 1;
        }
        let lag = self.lag.unwrap_or(0);
        let due = end + duration.max(1) + lag + MARGIN_MS;
        let wait = if due > now_ms {
            due - now_ms
        } else {
            // Late: retry at growing steps, never more often than 10 a second.
            (100i64 << self.misses.min(4).saturating_sub(1)).min(target_ms / 2)
        };
        Duration::from_millis(wait.clamp(100, target_ms * 3 / 2) as u64)
    }
}

/// The viewer estimate: playlist requests per target duration (a player
/// reloads about once per target duration), over the last few of them.
#[derive(Debug, Default)]
struct Viewers {
    since_ms: u64,
    requests_then: u64,
    reported: i64,
    /// The stream's counters on the status page.
    traffic: Option<Arc<crate::traffic::VideoTraffic>>,
}

impl Viewers {
    fn tick(&mut self, hub: &Hub, variant: &Variant, target: u64) {
        let now = hub.now_ms();
        let span = now.saturating_sub(self.since_ms);
        let target_ms = target.max(1) * 1000;
        if span < 3 * target_ms {
            return;
        }
        let requests = variant.requests.load(Ordering::Relaxed);
        let per_target = (requests - self.requests_then) as f64 * target_ms as f64 / span as f64;
        self.report(hub, per_target.round() as i64);
        self.since_ms = now;
        self.requests_then = requests;
    }

    fn report(&mut self, hub: &Hub, viewers: i64) {
        hub.metrics.live.viewers.inc_by(viewers - self.reported);
        if let Some(t) = &self.traffic {
            t.live_viewers.fetch_add(viewers - self.reported, Ordering::Relaxed);
        }
        self.reported = viewers;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_follow_the_segments_dates() {
        let mut s = Schedule::default();
        let m = MARGIN_MS as u64;
        // The first copy, 1200 ms after its newest segment's end: the next
        // is due at that end + 2000 (+ the margin), no lag assumed.
        assert_eq!(s.after(true, 2, Some((10_000, 2000)), 11_200), Duration::from_millis(800 + m));
        // Not there yet (the origin lags 300 ms): 100 ms, then 200 ms steps.
        assert_eq!(s.after(false, 2, Some((10_000, 2000)), 12_030), Duration::from_millis(100));
        assert_eq!(s.after(false, 2, Some((10_000, 2000)), 12_130), Duration::from_millis(200));
        // Found after trying again: the lag is what it saw.
        assert_eq!(s.after(true, 2, Some((12_000, 2000)), 12_330), Duration::from_millis(2000 + m));
        // Found at once: the lag halves.
        assert_eq!(s.after(true, 2, Some((14_000, 2000)), 14_360), Duration::from_millis(2000 - 360 + 165 + m));
        // Undated: RFC 8216's schedule.
        let mut s = Schedule::default();
        assert_eq!(s.after(true, 6, None, 0), Duration::from_secs(6));
        assert_eq!(s.after(false, 6, None, 0), Duration::from_secs(3));
    }

    #[test]
    fn session_expiry() {
        let soon = format!("https://o/p.m3u8?expire={}", now_unix() + 5);
        let later = format!("https://o/p.m3u8?expire={}", now_unix() + 3600);
        assert!(expires_soon(&soon, 2));
        assert!(!expires_soon(&later, 2));
        assert!(!expires_soon("https://o/p.m3u8", 2));
        let youtube = |e: i64| {
            format!(
                "https://manifest.googlevideo.com/api/manifest/hls_playlist/expire/{e}/ei/x/itag/96/playlist/index.m3u8"
            )
        };
        assert!(expires_soon(&youtube(now_unix() + 5), 2));
        assert!(!expires_soon(&youtube(now_unix() + 3600), 2));
    }
}
