//! `demo-actix`: the demo server on actix-web, the same HTTP contract as `demo-server`
//! (`cargo run -p session-examples --bin demo-actix`). Both keep sessions and accounts under
//! the same Redis keys, so a session made by one works on the other.

use demo::actix_app::serve;
use demo::settings::Settings;
use demo::setup::{finish, prepare, shutdown_signal, start};

fn main() {
    let settings = start("demo-actix");
    finish(
        "demo-actix",
        actix_web::rt::System::new().block_on(run(settings)),
    );
}

async fn run(settings: Settings) -> Result<(), String> {
    let prepared = prepare(&settings).await?;
    let listener = std::net::TcpListener::bind(settings.addr)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    tracing::info!(
        "demo-actix listening on http://{} (cookie {})",
        settings.addr,
        prepared.cookie.cookie_name()
    );
    serve(
        listener,
        prepared.state,
        prepared.cookie,
        prepared.csrf,
        settings.read_timeouts(),
        shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("demo-actix stopped");
    Ok(())
}
