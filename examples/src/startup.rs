//! What both demo binaries (`demo-server`, `demo-web`) do before serving: logging, the store
//! and accounts chosen from the [`Settings`], the seeded accounts, the cookie and CSRF policy,
//! and the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use axum::http::uri::Scheme;
use session_core::axum::{CookieConfig, CsrfLayer};
use session_core::password::Passwords;
use session_core::throttle::ThrottleConfig;
use session_core::{CacheConfig, MemoryStore, RedisStore, SessionConfig};
use tracing_subscriber::EnvFilter;

use crate::accounts::{MemoryAccounts, RedisAccounts};
use crate::password_queue::PasswordQueue;
use crate::settings::Settings;
use crate::{seed, AppState};

/// The key prefix of the demos' sessions and accounts in Redis (both binaries share it, so an
/// account and its sessions are the same in either).
pub const KEY_PREFIX: &str = "demo";

/// Log lines to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
}

/// The store and accounts the settings ask for: Redis (`REDIS_URL` and friends) or memory.
///
/// # Errors
/// A message for an unusable session configuration or Redis target.
pub fn state_from(settings: &Settings) -> Result<AppState, String> {
    let config = SessionConfig::builder()
        .key_prefix(KEY_PREFIX)
        .idle_timeout(settings.idle)
        .absolute_timeout(settings.absolute)
        .max_sessions_per_user(Some(settings.max_per_user))
        .build()
        .map_err(|e| e.to_string())?;
    let passwords = Passwords::default();
    let throttle = ThrottleConfig::new(settings.login_max_failures, settings.lockout);
    let password_queue = PasswordQueue::new(settings.login_queue_max);
    Ok(match settings.redis.clone() {
        Some(target) => {
            let mut store = RedisStore::from_target(target, config).map_err(|e| e.to_string())?;
            if settings.session_cache {
                store = store
                    .with_cache(CacheConfig::default())
                    .map_err(|e| e.to_string())?;
            }
            let store = Arc::new(store);
            tracing::info!(redis = ?store, "sessions and accounts are kept in Redis");
            AppState {
                accounts: Arc::new(RedisAccounts::new(Arc::clone(&store), KEY_PREFIX)),
                store,
                passwords,
                throttle,
                password_queue,
                step_up: settings.step_up,
            }
        }
        None => {
            tracing::warn!(
                "REDIS_URL is not set: sessions and accounts are kept IN MEMORY. They vanish when \
                 this process stops and are not shared with other servers. Set REDIS_URL (e.g. \
                 redis://127.0.0.1:6379), REDIS_CLUSTER_NODES or REDIS_SENTINELS to keep them \
                 in Redis."
            );
            AppState {
                store: Arc::new(MemoryStore::new(config)),
                accounts: Arc::new(MemoryAccounts::default()),
                passwords,
                throttle,
                password_queue,
                step_up: settings.step_up,
            }
        }
    })
}

/// Seeds the demo accounts; if Redis is down now, keeps trying in the background so the server
/// still starts and recovers when Redis comes.
pub async fn seed_or_retry(state: &AppState) {
    if let Err(e) = seed(state).await {
        tracing::warn!(error = %e, "could not seed the demo accounts yet; retrying in the background");
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if seed(&state).await.is_ok() {
                    tracing::info!("demo accounts seeded");
                    break;
                }
            }
        });
    }
}

/// The session cookie (`COOKIE_SECURE`) and the CSRF policy (`ALLOWED_ORIGINS`; otherwise the
/// request's own origin, over https, or http with `COOKIE_SECURE=false`).
///
/// # Errors
/// A message naming `ALLOWED_ORIGINS` when it is unusable.
pub fn cookie_and_csrf(settings: &Settings) -> Result<(CookieConfig, CsrfLayer), String> {
    let cookie = CookieConfig::default().secure(settings.cookie_secure);
    if !settings.cookie_secure {
        tracing::warn!("COOKIE_SECURE=false: the session cookie is also sent over plain http");
    }
    let csrf = match &settings.allowed_origins {
        Some(origins) => {
            tracing::info!(origins = ?origins, "writes are allowed from these origins only");
            CsrfLayer::new()
                .with_allowed_origins(origins)
                .map_err(|e| format!("ALLOWED_ORIGINS: {e}"))?
        }
        // A Secure cookie is only sent over https, so the site is https; without it, http.
        None if settings.cookie_secure => CsrfLayer::new(),
        None => CsrfLayer::new().with_site_scheme(Scheme::HTTP),
    };
    Ok((cookie, csrf))
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
