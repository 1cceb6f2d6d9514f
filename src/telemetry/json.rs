//! The production log line: one JSON object per event, in the shape
//! tracing-subscriber's JSON formatter writes with `flatten_event` —
//! `timestamp`, `level`, the event's fields, `target`, and the current
//! span as `span: {fields…, name}` — written straight into the line.
//!
//! Why not that formatter: it collects each field into a map of values
//! before writing, and parses the current span's fields back from JSON for
//! every event; on a hot route the access line cost more than the route.
//! Here fields are escaped as they are visited, and the span's fields,
//! which [`JsonFields`] already stored as JSON, are copied as they are; a
//! line logged inside a request without a span names the request from
//! [`crate::request_id`].

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The formatter; span fields must be formatted by [`JsonFields`].
pub struct JsonLine;

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, JsonFields>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        w.write_str(std::str::from_utf8(&timestamp(chrono::Utc::now())).expect("ASCII digits"))?;
        write!(w, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = Fields { w: &mut w, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        w.write_str(",\"target\":")?;
        string(&mut w, meta.target())?;
        if let Some(span) = ctx.lookup_current() {
            w.write_str(",\"span\":{")?;
            let ext = span.extensions();
            // JsonFields stores `{"a":1,…}`, or nothing for a span without fields.
            let inner = ext
                .get::<FormattedFields<JsonFields>>()
                .map(|f| f.fields.trim())
                .and_then(|f| f.strip_prefix('{')?.strip_suffix('}'))
                .filter(|f| !f.trim().is_empty());
            if let Some(inner) = inner {
                w.write_str(inner)?;
                w.write_char(',')?;
            }
            w.write_str("\"name\":")?;
            string(&mut w, span.name())?;
            w.write_char('}')?;
        } else if let Some(id) = crate::request_id::current() {
            // The request being served, in the shape its span had.
            w.write_str(",\"span\":{\"request_id\":")?;
            string(&mut w, &id)?;
            w.write_str(",\"name\":\"request\"}")?;
        }
        w.write_str("}\n")
    }
}

/// `2026-12-01T17:33:45.307821Z` (RFC 3339, UTC, microseconds), digit by
/// digit into a buffer on the stack: chrono's formatter parses a pattern
/// and allocates per call.
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> [u8; 27] {
    use chrono::{Datelike, Timelike};
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, t.year().clamp(0, 9999) as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    // A leap second's nanoseconds run past a billion: keep the micros' six digits.
    put(20, 6, (t.timestamp_subsec_micros()).min(999_999));
    b
}

/// Writes each field as `,"name":value`.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.w.write_char(',')?;
        string(self.w, field.name())?;
        self.w.write_char(':')
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.w));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |w| string(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        self.put(field, |w| if value.is_finite() { write!(w, "{value}") } else { w.write_str("null") });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value}")?;
            w.write_char('"')
        });
    }
}

/// `s` as a JSON string.
fn string(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what is written through it for a JSON string's inside.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Nearly every piece needs no escape: find that out without a
        // branch per byte (the compiler makes this fold a vector loop).
        let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f;
        if !s.bytes().fold(false, |any, b| any | special(b)) {
            return self.0.write_str(s);
        }
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines `emit` writes, each parsed as JSON.
    fn lines(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    #[test]
    fn timestamps_are_rfc3339_micros_in_utc() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07.000089Z").unwrap().to_utc();
        assert_eq!(&timestamp(t), b"2026-03-04T05:06:07.000089Z");
        let now = chrono::Utc::now();
        assert_eq!(&timestamp(now)[..], now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).as_bytes());
    }

    #[test]
    fn a_line_is_json_with_its_fields_target_and_span() {
        let got = lines(|| {
            let tricky = "quote \" back \\ newline \n tab \t bell \u{7} ñ";
            tracing::info!(path = %tricky, status = 404u16, latency_ms = 0.185, ok = false, n = -3i64, "request");
            let span = tracing::info_span!("request", request_id = "ab-1");
            let _in = span.enter();
            tracing::warn!(nan = f64::NAN, "inside");
            let bare = tracing::info_span!("bare");
            let _in2 = bare.enter();
            tracing::error!("deeper");
            drop(_in2);
            drop(_in);
            // A request's task-local id, where no span is entered.
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(crate::request_id::scope("req-9".into(), async { tracing::info!("in a request") }));
        });
        assert_eq!(got.len(), 4);
        assert_eq!(got[3]["span"], serde_json::json!({"request_id": "req-9", "name": "request"}));
        let a = &got[0];
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["message"], "request");
        assert_eq!(a["path"], "quote \" back \\ newline \n tab \t bell \u{7} ñ");
        assert_eq!(a["status"], 404);
        assert_eq!(a["latency_ms"], 0.185);
        assert_eq!(a["ok"], false);
        assert_eq!(a["n"], -3);
        assert_eq!(a["target"], module_path!());
        assert!(a.get("span").is_none());
        let ts = a["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'), "{ts}");
        assert_eq!(got[1]["span"], serde_json::json!({"request_id": "ab-1", "name": "request"}));
        assert_eq!(got[1]["nan"], serde_json::Value::Null);
        assert_eq!(got[2]["span"], serde_json::json!({"name": "bare"}));
    }
}
