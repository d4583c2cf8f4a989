//! What the demo binaries (`demo-server`, `demo-actix`, `demo-web`) do before serving: the store, the accounts, the seed, the cookie
//! and the CSRF policy from the settings; and the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use axum::http::uri::Scheme;
use session_core::password::Passwords;
use session_core::throttle::ThrottleConfig;
use session_core::web::{CookieConfig, CsrfPolicy};
use session_core::{CacheConfig, MemoryStore, RedisStore, SessionConfig};

use crate::accounts::{MemoryAccounts, RedisAccounts};
use crate::password_queue::PasswordQueue;
use crate::settings::Settings;
use crate::{seed, AppState};

/// The Redis key prefix of both binaries: a session made by one works on the other.
pub const KEY_PREFIX: &str = "demo";

/// What a demo binary serves.
pub struct Prepared {
    /// The handlers' shared state.
    pub state: AppState,
    /// The session cookie.
    pub cookie: CookieConfig,
    /// The CSRF rules.
    pub csrf: CsrfPolicy,
}

/// Builds the store and the accounts from `settings`, seeds the demo accounts (retrying in
/// the background while Redis is down), and the cookie and CSRF policy.
///
/// # Errors
/// A message naming the setting to fix.
pub async fn prepare(settings: &Settings) -> Result<Prepared, String> {
    let config = SessionConfig::builder()
        .key_prefix(KEY_PREFIX)
        .idle_timeout(settings.idle)
        .absolute_timeout(settings.absolute)
        .max_sessions_per_user(Some(settings.max_per_user))
        .build()
        .map_err(|e| e.to_string())?;
    let passwords = Passwords::default();
    let throttle = ThrottleConfig::new(settings.login_max_failures, settings.lockout);
    let state = match settings.redis.clone() {
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
                password_queue: PasswordQueue::new(settings.login_queue_max),
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
                password_queue: PasswordQueue::new(settings.login_queue_max),
                step_up: settings.step_up,
            }
        }
    };
    // Seed the demo accounts; if Redis is down now, keep trying in the background so the
    // server still starts and recovers when Redis comes.
    if let Err(e) = seed(&state).await {
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

    let cookie = CookieConfig::default().secure(settings.cookie_secure);
    if !settings.cookie_secure {
        tracing::warn!("COOKIE_SECURE=false: the session cookie is also sent over plain http");
    }
    let csrf = match &settings.allowed_origins {
        Some(origins) => {
            tracing::info!(origins = ?origins, "writes are allowed from these origins only");
            CsrfPolicy::new()
                .with_allowed_origins(origins)
                .map_err(|e| format!("ALLOWED_ORIGINS: {e}"))?
        }
        // A Secure cookie is only sent over https, so the site is https; without it, http.
        None if settings.cookie_secure => CsrfPolicy::new(),
        None => CsrfPolicy::new().with_site_scheme(Scheme::HTTP),
    };
    Ok(Prepared {
        state,
        cookie,
        csrf,
    })
}

/// The start of every demo binary: logging, then the settings from the environment. A bad
/// setting is printed with the binary's `name` and the process exits with code 2.
pub fn start(name: &str) -> Settings {
    init_logging();
    Settings::from_env().unwrap_or_else(|e| {
        eprintln!("{name}: bad setting: {e}");
        std::process::exit(2);
    })
}

/// The end of every demo binary: a failure is printed with its `name` and the process exits
/// with code 1.
pub fn finish(name: &str, outcome: Result<(), String>) {
    if let Err(e) = outcome {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}

/// Log lines to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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
