//! `demo-server`: see the README (`cargo run -p session-examples --bin demo-server`).

use demo::app;
use demo::serve::serve;
use demo::settings::Settings;
use demo::startup::{cookie_and_csrf, init_logging, seed_or_retry, shutdown_signal, state_from};

#[tokio::main]
async fn main() {
    init_logging();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo-server: bad setting: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(settings).await {
        eprintln!("demo-server: {e}");
        std::process::exit(1);
    }
}

async fn run(settings: Settings) -> Result<(), String> {
    let state = state_from(&settings)?;
    seed_or_retry(&state).await;
    let (cookie, csrf) = cookie_and_csrf(&settings)?;
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    tracing::info!(
        "demo-server listening on http://{} (cookie {})",
        settings.addr,
        cookie.cookie_name()
    );
    serve(
        listener,
        app(state, cookie, csrf),
        settings.header_timeout,
        shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("demo-server stopped");
    Ok(())
}
