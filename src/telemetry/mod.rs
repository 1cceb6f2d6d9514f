//! Logs: human-readable text in development, one JSON object per line in
//! production ([`json`]), filtered by `LOG_LEVEL`, written by their own
//! thread ([`lines`]).

use tracing_subscriber::EnvFilter;

use crate::config::{Config, Environment};

mod json;
mod lines;

pub use lines::Guard;

/// Sets up the logs; the guard writes what is buffered when dropped, so
/// `main` keeps it until the server has stopped.
///
/// Lines are written by a thread of their own, in batches ([`lines`]): a
/// slow log sink (a full pipe, a terminal) does not stall the worker
/// threads while the buffer has room, a burst of lines leaves in one
/// `write(2)`, and a busy server does not wake that thread per line. No
/// line is dropped: a full buffer makes the next writer wait.
///
/// What the access line costs (bench/manifest.py's µs of CPU per request,
/// a hot manifest against `/health`, which logs at debug): see
/// BENCHMARKS.md's manifest table.
pub fn init(config: &Config) -> Result<Guard, String> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| format!("LOG_LEVEL: {e}"))?;
    let (writer, guard) = lines::spawn(std::io::stderr()).map_err(|e| format!("log thread: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = match config.environment {
        Environment::Production => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLine)
            .try_init(),
        Environment::Development => builder.compact().try_init(),
    };
    result.map(|()| guard).map_err(|e| e.to_string())
}
