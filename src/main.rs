use clap::Parser;
use reelay::{App, Config, telemetry};

#[tokio::main]
async fn main() {
    let config = Config::parse();
    if let Err(e) = telemetry::init(&config) {
        eprintln!("reelay: {e}");
        std::process::exit(2);
    }
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("reelay: {e}");
            std::process::exit(1);
        }
    };
    tracing::info!(port = app.port(), "reelay listening");
    if let Err(e) = app.run_until_stopped(shutdown_signal()).await {
        eprintln!("reelay: {e}");
        std::process::exit(1);
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
