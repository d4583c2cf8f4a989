//! `demo-actix`: the demo server on actix-web, the same HTTP contract as `demo-server`
//! (`cargo run -p session-examples --bin demo-actix`). Both keep sessions and accounts under
//! the same Redis keys, so a session made by one works on the other.

use demo::actix_app::serve;
use demo::settings::Settings;
use demo::setup::{init_logging, prepare, shutdown_signal};

fn main() {
    init_logging();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo-actix: bad setting: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = actix_web::rt::System::new().block_on(run(settings)) {
        eprintln!("demo-actix: {e}");
        std::process::exit(1);
    }
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
        settings.header_timeout,
        shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("demo-actix stopped");
    Ok(())
}
