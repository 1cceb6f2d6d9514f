//! Logs: human-readable text in development, one JSON object per line in
//! production, filtered by `LOG_LEVEL`.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Environment};

/// Sets up the logs; the guard flushes what is queued when dropped, so
/// `main` keeps it until the server has stopped.
///
/// Lines are written by a thread of their own (`tracing-appender`): a slow
/// log sink (a full pipe, a terminal) does not stall the worker threads
/// while the queue has room, and a burst of lines leaves in one `write(2)`.
/// The queue blocks rather than drops when full, so no line is lost.
///
/// What the access line costs (bench/manifest.py's µs of CPU per request):
/// a hot manifest takes ~19.5 µs at `LOG_LEVEL=info` and ~14.4 µs at
/// `warn`, of which the request span ~1.5 µs and the JSON line the rest;
/// `/health` (logged at debug) ~12 µs.
pub fn init(config: &Config) -> Result<WorkerGuard, String> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| format!("LOG_LEVEL: {e}"))?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // Lines queued before a worker waits: a bounded channel allocates
        // its slots up front (the default 128k lines cost 4 MB of idle RSS).
        .buffered_lines_limit(8 * 1024)
        .thread_name("reelay-log")
        // Buffered: the log thread writes a burst of lines with one
        // `write(2)` and flushes when the queue is empty, so lines still
        // appear at once when traffic is light.
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = match config.environment {
        Environment::Production => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        }
        Environment::Development => builder.compact().try_init(),
    };
    result.map(|()| guard).map_err(|e| e.to_string())
}
