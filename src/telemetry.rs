//! Logs: human-readable text in development, one JSON object per line in
//! production, filtered by `LOG_LEVEL`.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, Environment};

pub fn init(config: &Config) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| format!("LOG_LEVEL: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.environment {
        Environment::Production => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        }
        Environment::Development => builder.compact().try_init(),
    };
    result.map_err(|e| e.to_string())
}
