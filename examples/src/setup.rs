//! What the demo binaries (`demo-server`, `demo-actix`, `demo-web`) do before serving: the store, the accounts, the seed, the cookie
//! and the CSRF policy from the settings; the Prometheus recorder behind `GET /metrics` (feature
//! `prometheus`; without it, `/metrics` is 404); and the shutdown signal.

use std::sync::Arc;
#[cfg(feature = "prometheus")]
use std::sync::OnceLock;
use std::time::Duration;

use http::uri::Scheme;
#[cfg(feature = "prometheus")]
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
#[cfg(feature = "prometheus")]
use session_core::metrics::Metered;
use session_core::password::Passwords;
use session_core::throttle::ThrottleConfig;
use session_core::web::{CookieConfig, CsrfPolicy};
use session_core::{CacheConfig, MemoryStore, RedisStore, SessionConfig};

use crate::accounts::{MemoryAccounts, RedisAccounts};
use crate::password_queue::PasswordQueue;
use crate::settings::Settings;
use crate::{seed, AppState, Backend};

/// The sessions' Redis key prefix, the same in every binary: a session made by one works on the
/// other.
pub const KEY_PREFIX: &str = "demo";

/// The accounts' Redis key prefix: the application's own data, apart from the sessions' (as
/// SECURITY.md's ACL recipe has it: the session store's Redis user gets `~demo:*`, the rest of
/// the app another user with `~demo-app:*`).
pub const ACCOUNTS_PREFIX: &str = "demo-app";

/// The longest one Redis call may take, for the session store and the accounts alike.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// `store`, with every call counted (`session_store_operations_total`, ...) when the demo is
/// built with `prometheus` (whether or not a recorder is installed; without one, next to no
/// cost).
fn counted<S: Backend + 'static>(store: Arc<S>) -> Arc<dyn Backend> {
    #[cfg(feature = "prometheus")]
    let store = Arc::new(Metered::new(store));
    store
}

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
        .remember_idle_timeout(settings.remember_idle)
        .remember_absolute_timeout(settings.remember_absolute)
        .impersonation_timeout(settings.impersonation)
        .max_sessions_per_user(Some(settings.max_per_user))
        .history_max(settings.history_max)
        .build()
        .map_err(|e| e.to_string())?;
    let passwords = Passwords::default();
    let throttle = ThrottleConfig::new(settings.login_max_failures, settings.lockout);
    let state = match settings.redis.clone() {
        Some(target) => {
            let mut store = RedisStore::new(target.clone(), config)
                .and_then(|store| store.with_operation_timeout(REDIS_TIMEOUT))
                .map_err(|e| e.to_string())?;
            if settings.session_cache {
                store = store
                    .with_cache(CacheConfig::default())
                    .map_err(|e| e.to_string())?;
            }
            let store = Arc::new(store);
            tracing::info!(redis = ?store, "sessions and accounts are kept in Redis");
            // The accounts' own client, on the same target, under their own prefix.
            let accounts = RedisAccounts::connect(&target, ACCOUNTS_PREFIX, REDIS_TIMEOUT)
                .map_err(|e| format!("accounts: {e}"))?;
            AppState {
                accounts: Arc::new(accounts),
                metrics: Metrics::installed(),
                store: counted(store),
                passwords,
                throttle,
                password_queue: PasswordQueue::new(
                    settings.login_queue_max,
                    settings.login_queue_per_client,
                ),
                step_up: settings.step_up,
                dbsc: dbsc_config(settings),
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
                store: counted(Arc::new(MemoryStore::new(config))),
                metrics: Metrics::installed(),
                accounts: Arc::new(MemoryAccounts::default()),
                passwords,
                throttle,
                password_queue: PasswordQueue::new(
                    settings.login_queue_max,
                    settings.login_queue_per_client,
                ),
                step_up: settings.step_up,
                dbsc: dbsc_config(settings),
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
            CsrfPolicy::default()
                .with_allowed_origins(origins)
                .map_err(|e| format!("ALLOWED_ORIGINS: {e}"))?
        }
        // A Secure cookie is only sent over https, so the site is https; without it, http.
        None if settings.cookie_secure => CsrfPolicy::default(),
        None => CsrfPolicy::default().with_site_scheme(Scheme::HTTP),
    };
    Ok(Prepared {
        state,
        cookie,
        csrf,
    })
}

/// The start of every demo binary: logging, the Prometheus recorder ([`install_metrics`]),
/// then the settings from the environment. A bad setting is printed with the binary's `name`
/// and the process exits with code 2.
pub fn start(name: &str) -> Settings {
    init_logging();
    install_metrics();
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

/// How often the recorder's histograms are drained (see [`install_metrics`]).
#[cfg(feature = "prometheus")]
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, once [`install_metrics`] has installed it.
#[cfg(feature = "prometheus")]
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs a Prometheus recorder as the process's global `metrics` recorder (once: later
/// calls do nothing). The binaries call it at start; the app builders do not, so tests that
/// build apps in their own process install nothing (and their apps have no `/metrics`).
/// Without the `prometheus` feature it installs nothing.
pub fn install_metrics() {
    #[cfg(feature = "prometheus")]
    install_prometheus();
}

#[cfg(feature = "prometheus")]
fn install_prometheus() {
    if PROMETHEUS.get().is_some() {
        return;
    }
    match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => {
            // Histograms keep every sample until an upkeep drains them into their summary:
            // without it, a server nobody scrapes grows by 8 bytes per store call.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || loop {
                    std::thread::sleep(METRICS_UPKEEP);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "GET /metrics is off: no upkeep thread");
                return;
            }
            let _ = PROMETHEUS.set(handle);
        }
        Err(e) => tracing::warn!(error = %e, "GET /metrics is off: no Prometheus recorder"),
    }
}

/// What `GET /metrics` renders: the process's recorder. (The Redis store's session cache
/// reports its counters, `session_cache_*`, to it as they happen: [`start`] installs the
/// recorder before [`prepare`] builds the store.)
#[derive(Clone)]
pub struct Metrics {
    #[cfg(feature = "prometheus")]
    handle: PrometheusHandle,
}

impl Metrics {
    /// The endpoint's state if [`install_metrics`] has installed the recorder, else `None`
    /// (no `/metrics`; always `None` without the `prometheus` feature).
    pub fn installed() -> Option<Self> {
        #[cfg(feature = "prometheus")]
        return PROMETHEUS.get().map(|handle| Self {
            handle: handle.clone(),
        });
        #[cfg(not(feature = "prometheus"))]
        None
    }

    /// Everything recorded so far, in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        #[cfg(feature = "prometheus")]
        return self.handle.render();
        #[cfg(not(feature = "prometheus"))]
        String::new()
    }
}

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

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

/// The DBSC settings (`DBSC`, `DBSC_COOKIE_SECS`): the default endpoints, the credential's
/// lifetime as set.
fn dbsc_config(settings: &Settings) -> Option<session_core::web::DbscConfig> {
    settings
        .dbsc
        .map(|lifetime| session_core::web::DbscConfig::default().with_cookie_lifetime(lifetime))
}
