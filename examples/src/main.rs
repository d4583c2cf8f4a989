//! `demo-server`: see the README (`cargo run -p session-examples --bin demo-server`).

use demo::app;
use demo::serve::serve;
use demo::settings::Settings;
use demo::setup::{finish, prepare, shutdown_signal, start};

#[tokio::main]
async fn main() {
    let settings = start("demo-server");
    finish("demo-server", run(settings).await);
}

async fn run(settings: Settings) -> Result<(), String> {
    let prepared = prepare(&settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    tracing::info!(
        "demo-server listening on http://{} (cookie {})",
        settings.addr,
        prepared.cookie.cookie_name()
    );
    serve(
        listener,
        app(prepared.state, prepared.cookie, prepared.csrf),
        settings.read_timeouts(),
        shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("demo-server stopped");
    Ok(())
}
