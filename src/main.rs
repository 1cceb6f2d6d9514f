use clap::Parser;
use reelay::{App, Config, telemetry};

/// The main thread's runtime keeps start-up, the acceptor and the
/// background tasks; connections are served on `app::workers`' threads.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `reelay healthcheck`: for container health checks, where no curl exists.
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        std::process::exit(healthcheck());
    }
    let config = Config::parse();
    let logs = match telemetry::init(&config) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("reelay: {e}");
            std::process::exit(2);
        }
    };
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            drop(logs); // the lines queued so far, before exit skips destructors
            eprintln!("reelay: {e}");
            std::process::exit(1);
        }
    };
    tracing::info!(port = app.port(), "reelay listening");
    let result = app.run_until_stopped(shutdown_signal()).await;
    drop(logs);
    if let Err(e) = result {
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

/// GET /health on this machine's `PORT`; 0 when it answers 200.
fn healthcheck() -> i32 {
    use std::io::{Read, Write};
    let port = std::env::var("PORT").unwrap_or_else(|_| "8001".to_owned());
    let timeout = std::time::Duration::from_secs(2);
    let Ok(addr) = format!("127.0.0.1:{port}").parse() else { return 2 };
    let Ok(mut conn) = std::net::TcpStream::connect_timeout(&addr, timeout) else { return 1 };
    let _ = conn.set_read_timeout(Some(timeout));
    if conn.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_err() {
        return 1;
    }
    let mut head = [0u8; 12];
    match conn.read_exact(&mut head) {
        Ok(()) if &head[9..12] == b"200" => 0,
        _ => 1,
    }
}
