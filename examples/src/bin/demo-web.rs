//! `demo-web`: the server-rendered HTML app (see the README, "The web example":
//! `cargo run -p session-examples --bin demo-web`). Same settings as `demo-server`.

use demo::serve::serve;
use demo::settings::Settings;
use demo::setup::{finish, prepare, shutdown_signal, start};
use demo::web;

#[tokio::main]
async fn main() {
    let settings = start("demo-web");
    finish("demo-web", run(settings).await);
}

async fn run(settings: Settings) -> Result<(), String> {
    let prepared = prepare(&settings).await?;
    let (state, cookie, csrf) = (prepared.state, prepared.cookie, prepared.csrf);
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    tracing::info!(
        "demo-web listening on http://{} (cookie {})",
        settings.addr,
        cookie.cookie_name()
    );
    serve(
        listener,
        web::app(state, cookie, csrf),
        settings.read_timeouts(),
        shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("demo-web stopped");
    Ok(())
}
