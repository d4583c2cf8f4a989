//! Metrics and tracing spans for store calls (feature `metrics`), through the
//! [`metrics`](https://docs.rs/metrics) facade: the library records, the application chooses
//! the exporter (Prometheus, StatsD, ...). Without an installed recorder they cost next to
//! nothing.
//!
//! Wrap any store in [`Metered`]; it is itself a [`SessionStore`] (and a [`LoginThrottle`] when
//! the inner store is one), so it goes wherever the store went:
//!
//! ```
//! use std::sync::Arc;
//! use session_core::metrics::Metered;
//! use session_core::{MemoryStore, SessionConfig, SessionStore};
//!
//! let store: Arc<dyn SessionStore> = Arc::new(Metered::new(MemoryStore::new(SessionConfig::default())));
//! ```
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `session_store_operations_total` | counter | `op` (`load`, `create`, ...), `outcome` (`ok`, `none`, `conflict`, `not_found`, `invalid_input`, `unavailable`, `corrupt`, `error`) |
//! | `session_store_operation_seconds` | histogram | `op` |
//! | `session_cache_hits_total`, `session_cache_misses_total`, `session_cache_invalidations_total`, `session_cache_flushes_total` | counter | — ([`record_cache_stats`]) |
//! | `session_cache_entries` | gauge | — |
//! | `session_rejections_total` | counter | `reason` (`unauthenticated`, `forbidden`, `reauthentication_required`, `store_unavailable`, `csrf`, ...), recorded by the axum and actix-web adapters for every refusal they answer ([`record_rejection`]) |
//!
//! Each store call also runs in a `tracing` span `session_store` (level DEBUG) with the `op`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument as _;

use crate::changes::{DataChanges, DataUpdate};
use crate::config::SessionConfig;
use crate::error::{Error, Result};
use crate::record::{NewSession, Session, SessionData, SessionInfo};
use crate::store::SessionStore;
use crate::throttle::{Attempt, LoginThrottle, ThrottleConfig};
use crate::token::{SessionHandle, Token};

/// Counter of store calls, by `op` and `outcome`.
pub const OPERATIONS_TOTAL: &str = "session_store_operations_total";
/// Histogram of store call durations in seconds, by `op`.
pub const OPERATION_SECONDS: &str = "session_store_operation_seconds";
/// Counter of refused requests, by `reason`.
pub const REJECTIONS_TOTAL: &str = "session_rejections_total";

/// A store that records a metric and a tracing span for every call, then delegates to the
/// store it wraps. See the [module docs](self) for the metrics.
#[derive(Debug)]
pub struct Metered<S> {
    inner: Arc<S>,
}

impl<S> Metered<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self::from_arc(Arc::new(inner))
    }

    /// Wraps a store the application also keeps a handle on, for example a `RedisStore` whose
    /// [`cache_stats`](crate::RedisStore::cache_stats) it publishes before each scrape:
    ///
    /// ```
    /// # #[cfg(feature = "redis")] {
    /// use std::sync::Arc;
    /// use session_core::metrics::Metered;
    /// use session_core::{RedisStore, SessionConfig};
    ///
    /// let redis = Arc::new(RedisStore::new("redis://127.0.0.1:6379", SessionConfig::default())?);
    /// let store = Metered::from_arc(Arc::clone(&redis));
    /// // Before each scrape:
    /// if let Some(stats) = redis.cache_stats() {
    ///     session_core::metrics::record_cache_stats(&stats);
    /// }
    /// # }
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn from_arc(inner: Arc<S>) -> Self {
        Self { inner }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// The `outcome` label of an error.
fn error_outcome(e: &Error) -> &'static str {
    match e {
        Error::NotFound => "not_found",
        Error::InvalidInput(_) => "invalid_input",
        Error::Unavailable { .. } => "unavailable",
        Error::Corrupt(_) => "corrupt",
        _ => "error",
    }
}

/// Runs `call` in a span named for `op`, and records its outcome and duration.
async fn measured<T>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T>>,
    outcome: impl FnOnce(&T) -> &'static str,
) -> Result<T> {
    let start = Instant::now();
    let result = call
        .instrument(tracing::debug_span!("session_store", op))
        .await;
    let label = match &result {
        Ok(value) => outcome(value),
        Err(e) => error_outcome(e),
    };
    metrics::counter!(OPERATIONS_TOTAL, "op" => op, "outcome" => label).increment(1);
    metrics::histogram!(OPERATION_SECONDS, "op" => op).record(start.elapsed().as_secs_f64());
    result
}

fn ok<T>(_: &T) -> &'static str {
    "ok"
}

#[async_trait]
impl<S: SessionStore> SessionStore for Metered<S> {
    fn config(&self) -> &SessionConfig {
        self.inner.config()
    }

    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn ping(&self) -> Result<()> {
        measured("ping", self.inner.ping(), ok).await
    }

    async fn create(&self, new: NewSession) -> Result<(Token, Session)> {
        measured("create", self.inner.create(new), ok).await
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        measured("load", self.inner.load(token), |s| {
            if s.is_some() {
                "ok"
            } else {
                "none"
            }
        })
        .await
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        measured("save_data", self.inner.save_data(token, data), ok).await
    }

    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<DataUpdate> {
        measured(
            "update_data",
            self.inner.update_data(token, changes),
            |u| match u {
                DataUpdate::Applied(_) => "ok",
                DataUpdate::Conflict(_) => "conflict",
            },
        )
        .await
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        measured("rotate", self.inner.rotate(token), ok).await
    }

    async fn reauthenticate(&self, token: &Token) -> Result<(Token, Session)> {
        measured("reauthenticate", self.inner.reauthenticate(token), ok).await
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        measured("delete", self.inner.delete(token), |gone| {
            if *gone {
                "ok"
            } else {
                "none"
            }
        })
        .await
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        measured("list", self.inner.list_user_sessions(user_id), ok).await
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        measured(
            "delete_user_session",
            self.inner.delete_user_session(user_id, handle),
            |gone| if *gone { "ok" } else { "none" },
        )
        .await
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize> {
        measured(
            "delete_user_sessions",
            self.inner.delete_user_sessions(user_id),
            ok,
        )
        .await
    }

    async fn delete_other_user_sessions(&self, user_id: &str, keep: &Token) -> Result<usize> {
        measured(
            "delete_other_user_sessions",
            self.inner.delete_other_user_sessions(user_id, keep),
            ok,
        )
        .await
    }

    async fn set_user_authz(
        &self,
        user_id: &str,
        roles: &[String],
        permissions: &[String],
    ) -> Result<usize> {
        measured(
            "set_user_authz",
            self.inner.set_user_authz(user_id, roles, permissions),
            ok,
        )
        .await
    }
}

fn attempt(a: &Attempt) -> &'static str {
    match a {
        Attempt::Allowed => "ok",
        Attempt::Locked { .. } => "locked",
    }
}

#[async_trait]
impl<S: LoginThrottle> LoginThrottle for Metered<S> {
    async fn begin_login(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt> {
        measured(
            "begin_login",
            self.inner.begin_login(username, config),
            attempt,
        )
        .await
    }

    async fn record_failure(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt> {
        measured(
            "record_failure",
            self.inner.record_failure(username, config),
            attempt,
        )
        .await
    }

    async fn clear_failures(&self, username: &str) -> Result<()> {
        measured("clear_failures", self.inner.clear_failures(username), ok).await
    }

    async fn release_attempt(&self, subject: &str) -> Result<()> {
        measured("release_attempt", self.inner.release_attempt(subject), ok).await
    }

    async fn begin_login_from(&self, address: IpAddr, config: &ThrottleConfig) -> Result<Attempt> {
        measured(
            "begin_login",
            self.inner.begin_login_from(address, config),
            attempt,
        )
        .await
    }

    async fn record_failure_from(
        &self,
        address: IpAddr,
        config: &ThrottleConfig,
    ) -> Result<Attempt> {
        measured(
            "record_failure",
            self.inner.record_failure_from(address, config),
            attempt,
        )
        .await
    }

    async fn release_attempt_from(&self, address: IpAddr) -> Result<()> {
        measured(
            "release_attempt",
            self.inner.release_attempt_from(address),
            ok,
        )
        .await
    }
}

/// Publishes a cache's counters ([`RedisStore::cache_stats`](crate::RedisStore::cache_stats))
/// as metrics: call it before each scrape (the counters are cumulative in the cache, so
/// publishing them again is harmless).
#[cfg(feature = "redis")]
pub fn record_cache_stats(stats: &crate::CacheStats) {
    metrics::counter!("session_cache_hits_total").absolute(stats.hits);
    metrics::counter!("session_cache_misses_total").absolute(stats.misses);
    metrics::counter!("session_cache_invalidations_total").absolute(stats.invalidations);
    metrics::counter!("session_cache_flushes_total").absolute(stats.flushes);
    metrics::gauge!("session_cache_entries").set(stats.entries as f64);
}

/// Counts one refused request under `reason` (the rejection's error code: `unauthenticated`,
/// `forbidden`, `reauthentication_required`, `store_unavailable`, `csrf`, ...).
///
/// The axum and actix-web adapters call it for every [`Rejection`](crate::web::Rejection) they
/// answer (guards, extractors, `Require`, the CSRF layers, handlers' `Err(Error)`), once per
/// refused request, also when the app's rejection handler writes the answer; call it yourself
/// only for refusals of your own.
pub fn record_rejection(reason: &'static str) {
    metrics::counter!(REJECTIONS_TOTAL, "reason" => reason).increment(1);
}
