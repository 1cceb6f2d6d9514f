//! What a client's `Range` and conditional headers ask of an object whose
//! length and validators are known, decided by RFC 9110 (§13, §14) rather
//! than passed to the origin: the relay answers from its own blocks.
//!
//! - An invalid `Range` (bad syntax, `last < first`, another unit, too long)
//!   is ignored: the whole object, `200`.
//! - No satisfiable range (`bytes=-0`, a start past the end): `416`.
//! - Several ranges: the first satisfiable one alone, as a `206` whose
//!   `Content-Range` says which (a client must read it; no multipart).
//! - `If-Range` that does not match the strong validator: the whole object.
//! - `If-None-Match` (weak comparison), else `If-Modified-Since`: `304`.

use http::HeaderMap;
use http::header;

/// The longest `Range` value read; longer ones are ignored as abuse.
const MAX_RANGE_HEADER: usize = 1024;
/// The most ranges read from one header.
const MAX_RANGES: usize = 32;

/// What to send for an object of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `200` with the whole object.
    Full,
    /// `206` with bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// `416`: nothing asked for exists.
    Unsatisfiable,
    /// `304`: the client's copy is current.
    NotModified,
}

/// The validators an answer is judged against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Decides the answer to a GET or HEAD with `headers` for an object of
/// `len` bytes.
pub fn answer(headers: &HeaderMap, len: u64, v: &Validators) -> Answer {
    if not_modified(headers, v) {
        return Answer::NotModified;
    }
    let Some(range) = headers.get(header::RANGE).and_then(|r| r.to_str().ok()) else { return Answer::Full };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        let matches = if_range.to_str().ok().is_some_and(|want| if_range_matches(want.trim(), v));
        if !matches {
            return Answer::Full;
        }
    }
    match parse(range, len) {
        Parsed::Invalid => Answer::Full,
        Parsed::Unsatisfiable => Answer::Unsatisfiable,
        Parsed::Range(start, end) => Answer::Part { start, end },
    }
}

/// The first byte a `Range` header asks for, before the length is known:
/// where the relay starts fetching. Suffix ranges and anything unreadable
/// start at 0.
pub fn first_byte(headers: &HeaderMap) -> u64 {
    let Some(value) = headers.get(header::RANGE).and_then(|r| r.to_str().ok()) else { return 0 };
    let Some(specs) = specs(value) else { return 0 };
    specs.into_iter().find_map(|s| s.ok().and_then(|(first, _)| first)).unwrap_or(0)
}

/// The one closed range (`bytes=first-last`) a `Range` header asks for,
/// before the length is known; `None` for anything else (open, suffix,
/// several, unreadable).
pub fn closed(headers: &HeaderMap) -> Option<(u64, u64)> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    match specs(value)?.as_slice() {
        [Ok((Some(first), Some(last)))] => Some((*first, *last)),
        _ => None,
    }
}

/// Whether a request is conditional (its answer depends on validators).
pub fn conditional(headers: &HeaderMap) -> bool {
    [header::IF_RANGE, header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::IF_MATCH, header::IF_UNMODIFIED_SINCE]
        .iter()
        .any(|h| headers.contains_key(h))
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Invalid,
    Unsatisfiable,
    Range(u64, u64),
}

/// One range-spec: `(Some(first), last)` or `(None, Some(suffix_len))`.
type Spec = (Option<u64>, Option<u64>);

/// Splits `bytes=...` into specs; `None` when the header is not a byte range
/// set at all; an `Err` item for a spec that does not parse.
fn specs(value: &str) -> Option<Vec<Result<Spec, ()>>> {
    if value.len() > MAX_RANGE_HEADER {
        return None;
    }
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let items: Vec<&str> = set.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if items.is_empty() || items.len() > MAX_RANGES {
        return None;
    }
    Some(items.into_iter().map(spec).collect())
}

fn number(s: &str) -> Result<u64, ()> {
    // Digits only (no sign, no spaces inside); at most 19 so it fits.
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    s.parse().map_err(|_| ())
}

fn spec(item: &str) -> Result<Spec, ()> {
    let (first, last) = item.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Err(()),
        (true, false) => Ok((None, Some(number(last)?))),
        (false, true) => Ok((Some(number(first)?), None)),
        (false, false) => {
            let (f, l) = (number(first)?, number(last)?);
            if l < f { Err(()) } else { Ok((Some(f), Some(l))) }
        }
    }
}

fn parse(value: &str, len: u64) -> Parsed {
    let Some(specs) = specs(value) else { return Parsed::Invalid };
    let mut parsed = Vec::with_capacity(specs.len());
    for s in specs {
        match s {
            Ok(s) => parsed.push(s),
            // One bad spec makes the whole header invalid: ignore it.
            Err(()) => return Parsed::Invalid,
        }
    }
    for (first, last) in parsed {
        let satisfiable = match (first, last) {
            (Some(f), l) if f < len => Some((f, l.map_or(len - 1, |l| l.min(len - 1)))),
            (None, Some(n)) if n > 0 && len > 0 => Some((len.saturating_sub(n), len - 1)),
            _ => None,
        };
        if let Some((start, end)) = satisfiable {
            return Parsed::Range(start, end);
        }
    }
    Parsed::Unsatisfiable
}

/// `If-Range`: an entity tag must equal the strong one; a date must equal
/// `Last-Modified` exactly.
fn if_range_matches(want: &str, v: &Validators) -> bool {
    if want.starts_with('"') {
        v.etag.as_deref().is_some_and(|e| !e.starts_with("W/") && e == want)
    } else {
        v.last_modified.as_deref().is_some_and(|lm| lm == want)
    }
}

fn not_modified(headers: &HeaderMap, v: &Validators) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|h| h.to_str().ok()) {
        let Some(etag) = v.etag.as_deref() else { return false };
        let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        return inm.trim() == "*" || inm.split(',').any(|t| bare(t) == bare(etag));
    }
    let ims = headers.get(header::IF_MODIFIED_SINCE).and_then(|h| h.to_str().ok());
    match (ims.and_then(|s| httpdate::parse_http_date(s).ok()), v.last_modified.as_deref()) {
        (Some(since), Some(lm)) => httpdate::parse_http_date(lm).is_ok_and(|modified| modified <= since),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(range: &str, len: u64) -> Answer {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, range.parse().unwrap());
        answer(&h, len, &Validators::default())
    }

    #[test]
    fn rfc_9110_examples() {
        use Answer::*;
        assert_eq!(ans("bytes=0-499", 10000), Part { start: 0, end: 499 });
        assert_eq!(ans("bytes=500-999", 10000), Part { start: 500, end: 999 });
        assert_eq!(ans("bytes=-500", 10000), Part { start: 9500, end: 9999 });
        assert_eq!(ans("bytes=9500-", 10000), Part { start: 9500, end: 9999 });
        assert_eq!(ans("bytes=0-0,-1", 10000), Part { start: 0, end: 0 });
        assert_eq!(ans("bytes= 500-600 , 601-999", 10000), Part { start: 500, end: 600 });
        assert_eq!(ans("bytes=0-99999", 10000), Part { start: 0, end: 9999 });
        assert_eq!(ans("bytes=-20000", 10000), Part { start: 0, end: 9999 });
        assert_eq!(ans("BYTES=1-2", 10), Part { start: 1, end: 2 });
    }

    #[test]
    fn invalid_is_ignored_and_unsatisfiable_is_416() {
        use Answer::*;
        for bad in ["bytes=500-100", "bytes=abc", "bytes=", "items=0-1", "bytes=--1", "bytes=1-2-3", "bytes=+1-2"] {
            assert_eq!(ans(bad, 10000), Full, "{bad}");
        }
        assert_eq!(ans(&format!("bytes={}", "0-1,".repeat(400)), 10), Full, "too long");
        assert_eq!(ans("bytes=99999999999999999999-", 10), Full, "overflow");
        assert_eq!(ans("bytes=-0", 10000), Unsatisfiable);
        assert_eq!(ans("bytes=10000-", 10000), Unsatisfiable);
        assert_eq!(ans("bytes=0-", 0), Unsatisfiable);
        assert_eq!(ans("bytes=20000-,-0", 10000), Unsatisfiable);
    }

    #[test]
    fn conditionals() {
        let v =
            Validators { etag: Some("\"abc\"".into()), last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()) };
        let with = |pairs: &[(header::HeaderName, &str)]| {
            let mut h = HeaderMap::new();
            for (k, val) in pairs {
                h.insert(k.clone(), val.parse().unwrap());
            }
            answer(&h, 100, &v)
        };
        assert_eq!(with(&[(header::IF_NONE_MATCH, "W/\"abc\"")]), Answer::NotModified);
        assert_eq!(with(&[(header::IF_NONE_MATCH, "\"other\"")]), Answer::Full);
        assert_eq!(with(&[(header::IF_MODIFIED_SINCE, "Wed, 21 Oct 2015 07:28:00 GMT")]), Answer::NotModified);
        assert_eq!(with(&[(header::IF_MODIFIED_SINCE, "Tue, 20 Oct 2015 07:28:00 GMT")]), Answer::Full);
        let part = Answer::Part { start: 0, end: 9 };
        assert_eq!(with(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"abc\"")]), part);
        assert_eq!(with(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"old\"")]), Answer::Full);
        assert_eq!(with(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "Wed, 21 Oct 2015 07:28:00 GMT")]), part);
    }

    #[test]
    fn first_byte_before_the_length_is_known() {
        let h = |r: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::RANGE, r.parse().unwrap());
            first_byte(&h)
        };
        assert_eq!(h("bytes=1000-"), 1000);
        assert_eq!(h("bytes=-500"), 0);
        assert_eq!(h("bytes=5-9,100-"), 5);
        assert_eq!(h("nonsense"), 0);
    }
}
