//! Metrics and tracing spans for store calls (feature `metrics`), through the
//! [`metrics`](https://docs.rs/metrics) facade: the library records, the application chooses
//! the exporter (Prometheus, StatsD, ...). Without an installed recorder they cost next to
//! nothing.
//!
//! Wrap any store in [`Metered`]; it is itself a [`SessionStore`] (and a `LoginThrottle` when
//! the inner store is one), so it goes wherever the store went:
//!
//! ```
//! use std::sync::Arc;
//! use session_core::metrics::Metered;
//! use session_core::{MemoryStore, SessionConfig, SessionStore};
//!
//! let store: Arc<dyn SessionStore> = Arc::new(Metered::new(Arc::new(MemoryStore::new(SessionConfig::default()))));
//! ```
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `session_store_operations_total` | counter | `op` (`load`, `create`, ...), `outcome` (`ok`, `none`, `conflict`, `not_found`, `invalid_input`, `unavailable`, `corrupt`, `error`) |
//! | `session_store_operation_seconds` | histogram | `op` |
//! | `session_cache_hits_total`, `session_cache_misses_total`, `session_cache_invalidations_total`, `session_cache_flushes_total` | counter | — (the Redis store's client-side cache, as they happen) |
//! | `session_cache_entries` | gauge | — (sessions the cache holds) |
//! | `session_rejections_total` | counter | `reason` (`unauthenticated`, `forbidden`, `reauthentication_required`, `store_unavailable`, `csrf`, ...), recorded by the axum and actix-web adapters for every refusal they answer |
//!
//! Each store call also runs in a `tracing` span `session_store` (level DEBUG) with the `op`.
//!
//! The cache's metrics need no `Metered` and no polling: a `RedisStore` with its cache on
//! (`RedisStore::with_cache`) counts them itself, through handles it takes from the recorder in
//! effect when the cache is made. Install the recorder before building the store, as for
//! `Metered`.

#[cfg(feature = "throttle")]
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::OnceLock;
#[cfg(feature = "throttle")]
use std::time::Duration;
use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument as _;

use crate::binding::DeviceBinding;
use crate::changes::DataChanges;
use crate::config::SessionConfig;
use crate::ended::EndReason;
use crate::error::{Error, Result};
use crate::history::HistoryEntry;
use crate::record::{NewSession, Session, SessionData, SessionInfo};
use crate::store::SessionStore;
#[cfg(feature = "throttle")]
use crate::throttle::{LoginThrottle, ThrottleConfig};
use crate::token::{SessionHandle, Token};

/// Counter of store calls, by `op` and `outcome`.
pub const OPERATIONS_TOTAL: &str = "session_store_operations_total";
/// Histogram of store call durations in seconds, by `op`.
pub const OPERATION_SECONDS: &str = "session_store_operation_seconds";
/// Counter of refused requests, by `reason`.
pub const REJECTIONS_TOTAL: &str = "session_rejections_total";
/// Counter of loads the Redis store's client-side cache answered from memory.
pub const CACHE_HITS_TOTAL: &str = "session_cache_hits_total";
/// Counter of loads the cache could not answer (they asked Redis).
pub const CACHE_MISSES_TOTAL: &str = "session_cache_misses_total";
/// Counter of cached sessions dropped because Redis said they changed (or by a flush).
pub const CACHE_INVALIDATIONS_TOTAL: &str = "session_cache_invalidations_total";
/// Counter of times the whole cache was emptied (lost connection, missed heartbeat, `FLUSHALL`).
pub const CACHE_FLUSHES_TOTAL: &str = "session_cache_flushes_total";
/// Gauge of the sessions the cache holds.
pub const CACHE_ENTRIES: &str = "session_cache_entries";

/// A store that records a metric and a tracing span for every call, then delegates to the
/// store it wraps. See the [module docs](self) for the metrics.
///
/// The metric handles are taken from the installed recorder at each operation's first call
/// through this `Metered` and kept (a registry lookup per call cost about 5% of an
/// authenticated request's throughput in the demo): install the recorder before the first
/// store call, as exporters ask anyway.
pub struct Metered<S> {
    inner: Arc<S>,
    handles: Box<[OpHandles; Op::COUNT]>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Metered<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// A store operation: the `op` label.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "throttle"), allow(dead_code))]
enum Op {
    Ping,
    Create,
    NewLogin,
    Load,
    SaveData,
    UpdateData,
    Rotate,
    Reauthenticate,
    Delete,
    EndReason,
    BindDevice,
    List,
    DeleteUserSession,
    DeleteUserSessions,
    DeleteOtherUserSessions,
    SetUserAuthz,
    RecordEvent,
    LoginHistory,
    BeginLogin,
    RecordFailure,
    ClearFailures,
    ReleaseAttempt,
}

impl Op {
    const COUNT: usize = 22;

    fn name(self) -> &'static str {
        match self {
            Op::Ping => "ping",
            Op::Create => "create",
            Op::NewLogin => "new_login",
            Op::Load => "load",
            Op::SaveData => "save_data",
            Op::UpdateData => "update_data",
            Op::Rotate => "rotate",
            Op::Reauthenticate => "reauthenticate",
            Op::Delete => "delete",
            Op::EndReason => "end_reason",
            Op::BindDevice => "bind_device",
            Op::List => "list",
            Op::DeleteUserSession => "delete_user_session",
            Op::DeleteUserSessions => "delete_user_sessions",
            Op::DeleteOtherUserSessions => "delete_other_user_sessions",
            Op::SetUserAuthz => "set_user_authz",
            Op::RecordEvent => "record_event",
            Op::LoginHistory => "login_history",
            Op::BeginLogin => "begin_login",
            Op::RecordFailure => "record_failure",
            Op::ClearFailures => "clear_failures",
            Op::ReleaseAttempt => "release_attempt",
        }
    }
}

/// How a store call ended: the `outcome` label.
#[derive(Clone, Copy)]
enum Outcome {
    Ok,
    None,
    Conflict,
    #[cfg_attr(not(feature = "throttle"), allow(dead_code))]
    Locked,
    NotFound,
    InvalidInput,
    Unavailable,
    Corrupt,
    Error,
}

impl Outcome {
    const COUNT: usize = 9;

    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::None => "none",
            Outcome::Conflict => "conflict",
            Outcome::Locked => "locked",
            Outcome::NotFound => "not_found",
            Outcome::InvalidInput => "invalid_input",
            Outcome::Unavailable => "unavailable",
            Outcome::Corrupt => "corrupt",
            Outcome::Error => "error",
        }
    }
}

/// One operation's metric handles, each taken at its first use.
#[derive(Default)]
struct OpHandles {
    seconds: OnceLock<metrics::Histogram>,
    outcomes: [OnceLock<metrics::Counter>; Outcome::COUNT],
}

impl<S> Metered<S> {
    /// Wraps `inner`, shared: the application may keep a handle on it too.
    ///
    /// ```
    /// # #[cfg(feature = "redis")] {
    /// use std::sync::Arc;
    /// use session_core::metrics::Metered;
    /// use session_core::{RedisStore, SessionConfig};
    ///
    /// let redis = Arc::new(RedisStore::new("redis://127.0.0.1:6379", SessionConfig::default())?);
    /// let store = Metered::new(Arc::clone(&redis));
    /// # }
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            handles: Box::default(),
        }
    }
}

/// The `outcome` label of an error.
fn error_outcome(e: &Error) -> Outcome {
    match e {
        Error::Conflict { .. } => Outcome::Conflict,
        Error::NotFound => Outcome::NotFound,
        Error::InvalidInput(_) => Outcome::InvalidInput,
        Error::Unavailable { .. } => Outcome::Unavailable,
        Error::Corrupt(_) => Outcome::Corrupt,
        _ => Outcome::Error,
    }
}

impl<S> Metered<S> {
    /// Runs `call` in a span named for `op`, and records its outcome and duration.
    async fn measured<T>(
        &self,
        op: Op,
        call: impl std::future::Future<Output = Result<T>>,
        outcome: impl FnOnce(&T) -> Outcome,
    ) -> Result<T> {
        let start = Instant::now();
        let result = call
            .instrument(tracing::debug_span!("session_store", op = op.name()))
            .await;
        let label = match &result {
            Ok(value) => outcome(value),
            Err(e) => error_outcome(e),
        };
        let handles = &self.handles[op as usize];
        handles.outcomes[label as usize]
            .get_or_init(|| {
                metrics::counter!(OPERATIONS_TOTAL, "op" => op.name(), "outcome" => label.name())
            })
            .increment(1);
        handles
            .seconds
            .get_or_init(|| metrics::histogram!(OPERATION_SECONDS, "op" => op.name()))
            .record(start.elapsed().as_secs_f64());
        result
    }
}

fn ok<T>(_: &T) -> Outcome {
    Outcome::Ok
}

fn found(yes: bool) -> Outcome {
    if yes {
        Outcome::Ok
    } else {
        Outcome::None
    }
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
        self.measured(Op::Ping, self.inner.ping(), ok).await
    }

    async fn create(&self, new: NewSession) -> Result<(Token, Session)> {
        self.measured(Op::Create, self.inner.create(new), ok).await
    }

    async fn new_login(&self, user_id: &str) -> Result<NewSession> {
        self.measured(Op::NewLogin, self.inner.new_login(user_id), ok)
            .await
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        self.measured(Op::Load, self.inner.load(token), |s| found(s.is_some()))
            .await
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        self.measured(Op::SaveData, self.inner.save_data(token, data), ok)
            .await
    }

    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<SessionData> {
        self.measured(Op::UpdateData, self.inner.update_data(token, changes), ok)
            .await
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        self.measured(Op::Rotate, self.inner.rotate(token), ok)
            .await
    }

    async fn reauthenticate(&self, token: &Token, method: &str) -> Result<(Token, Session)> {
        self.measured(
            Op::Reauthenticate,
            self.inner.reauthenticate(token, method),
            ok,
        )
        .await
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        self.measured(Op::Delete, self.inner.delete(token), |gone| found(*gone))
            .await
    }

    async fn end_reason(&self, token: &Token) -> Result<Option<EndReason>> {
        self.measured(Op::EndReason, self.inner.end_reason(token), |r| {
            found(r.is_some())
        })
        .await
    }

    async fn bind_device(
        &self,
        token: &Token,
        read: &Session,
        binding: &DeviceBinding,
    ) -> Result<bool> {
        self.measured(
            Op::BindDevice,
            self.inner.bind_device(token, read, binding),
            |r| found(*r),
        )
        .await
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        self.measured(Op::List, self.inner.list_user_sessions(user_id), ok)
            .await
    }

    async fn record_event(&self, user_id: &str, entry: HistoryEntry) -> Result<()> {
        self.measured(Op::RecordEvent, self.inner.record_event(user_id, entry), ok)
            .await
    }

    async fn login_history(&self, user_id: &str) -> Result<Vec<HistoryEntry>> {
        self.measured(Op::LoginHistory, self.inner.login_history(user_id), ok)
            .await
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        self.measured(
            Op::DeleteUserSession,
            self.inner.delete_user_session(user_id, handle),
            |gone| found(*gone),
        )
        .await
    }

    async fn delete_user_sessions(&self, user_id: &str, why: EndReason) -> Result<usize> {
        self.measured(
            Op::DeleteUserSessions,
            self.inner.delete_user_sessions(user_id, why),
            ok,
        )
        .await
    }

    async fn delete_other_user_sessions(
        &self,
        user_id: &str,
        keep: &Token,
        why: EndReason,
    ) -> Result<usize> {
        self.measured(
            Op::DeleteOtherUserSessions,
            self.inner.delete_other_user_sessions(user_id, keep, why),
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
        self.measured(
            Op::SetUserAuthz,
            self.inner.set_user_authz(user_id, roles, permissions),
            ok,
        )
        .await
    }
}

#[cfg(feature = "throttle")]
fn attempt(wait: &Option<Duration>) -> Outcome {
    match wait {
        None => Outcome::Ok,
        Some(_) => Outcome::Locked,
    }
}

#[cfg(feature = "throttle")]
#[async_trait]
impl<S: LoginThrottle> LoginThrottle for Metered<S> {
    async fn begin_login(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.measured(
            Op::BeginLogin,
            self.inner.begin_login(username, config),
            attempt,
        )
        .await
    }

    async fn record_failure(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.measured(
            Op::RecordFailure,
            self.inner.record_failure(username, config),
            attempt,
        )
        .await
    }

    async fn clear_failures(&self, username: &str) -> Result<()> {
        self.measured(Op::ClearFailures, self.inner.clear_failures(username), ok)
            .await
    }

    async fn release_attempt(&self, subject: &str) -> Result<()> {
        self.measured(Op::ReleaseAttempt, self.inner.release_attempt(subject), ok)
            .await
    }

    async fn begin_login_from(
        &self,
        address: IpAddr,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.measured(
            Op::BeginLogin,
            self.inner.begin_login_from(address, config),
            attempt,
        )
        .await
    }

    async fn record_failure_from(
        &self,
        address: IpAddr,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.measured(
            Op::RecordFailure,
            self.inner.record_failure_from(address, config),
            attempt,
        )
        .await
    }

    async fn release_attempt_from(&self, address: IpAddr) -> Result<()> {
        self.measured(
            Op::ReleaseAttempt,
            self.inner.release_attempt_from(address),
            ok,
        )
        .await
    }
}

/// Counts one refused request under `reason` (the rejection's error code: `unauthenticated`,
/// `forbidden`, `reauthentication_required`, `store_unavailable`, `csrf`, ...).
///
/// The axum and actix-web adapters call it for every [`Rejection`](crate::web::Rejection) they
/// answer (guards, extractors, `Require`, the CSRF layers, handlers' `Err(Error)`), once per
/// refused request, also when the app's rejection handler writes the answer.
pub(crate) fn record_rejection(reason: &'static str) {
    metrics::counter!(REJECTIONS_TOTAL, "reason" => reason).increment(1);
}
