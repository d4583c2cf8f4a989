//! [`Storage`]: the few primitives a session backend provides. The rules of a session store are
//! written once above them (`store/rules.rs`), so a backend that implements `Storage` is a
//! [`SessionStore`](crate::SessionStore) with every rule kept.

use std::future::Future;

use crate::config::SessionConfig;
use crate::error::Result;
use crate::record::Session;
use crate::token::SessionKey;

/// Where sessions are kept: sessions by [`SessionKey`], each user's sessions together, and a
/// small opaque value per user. Every type that implements it is a
/// [`SessionStore`](crate::SessionStore): expiry, the per-user limit and its eviction order,
/// role changes reaching live sessions, login epochs, anonymous sessions and last-seen are
/// kept by session-core, not by the backend. [`MemoryStore`](crate::MemoryStore) is one.
///
/// A backend does two things, each **atomically** (no other call on the same session or user
/// runs in between: a lock, a database transaction, a retry on conflict):
///
/// 1. hand out what is stored, to a `change` function session-core passes in;
/// 2. store what `change` left: **every session in the list is stored under its
///    [`key`](Session::key)** (replacing what was there), and **every session handed out whose
///    key is no longer in the list is deleted**. If `change` fails, nothing is written and
///    its error is returned.
///
/// A backend never sees a token: sessions are filed under their [`SessionKey`] (the first 128
/// bits of the token's SHA-256), so a copy of the backend's data cannot be replayed as cookies.
///
/// `change` may be called again when a backend retries a conflicting transaction; only what
/// the last call left is written. Sessions with an empty [`user_id`](Session::user_id) are
/// anonymous: they belong to no user, and need no entry in any user's set. A backend may
/// drop a session once its [`expires_at`](Session::expires_at) has passed; everything else
/// about time is the rules' business (read from [`SessionConfig`]'s clock).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// use session_core::{Result, Session, SessionConfig, SessionKey, Storage};
///
/// /// Sessions in a map, users' values in another, one lock over both.
/// struct MapStorage {
///     config: SessionConfig,
///     state: Mutex<(HashMap<SessionKey, Session>, HashMap<String, Vec<u8>>)>,
/// }
///
/// impl Storage for MapStorage {
///     fn config(&self) -> &SessionConfig {
///         &self.config
///     }
///
///     async fn session(
///         &self,
///         key: &SessionKey,
///         change: &mut (dyn FnMut(&mut Vec<Session>) -> Result<()> + Send),
///     ) -> Result<()> {
///         let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
///         let mut list: Vec<Session> = state.0.get(key).cloned().into_iter().collect();
///         change(&mut list)?;
///         if !list.iter().any(|s| s.key() == *key) {
///             state.0.remove(key);
///         }
///         state.0.extend(list.into_iter().map(|s| (s.key(), s)));
///         Ok(())
///     }
///
///     async fn user(
///         &self,
///         user_id: &str,
///         change: &mut (dyn FnMut(&mut Vec<Session>, &mut Vec<u8>) -> Result<()> + Send),
///     ) -> Result<()> {
///         let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
///         let (sessions, values) = &mut *state;
///         let mut list: Vec<Session> =
///             sessions.values().filter(|s| s.user_id() == user_id).cloned().collect();
///         let handed_out: Vec<SessionKey> = list.iter().map(Session::key).collect();
///         let mut value = values.get(user_id).cloned().unwrap_or_default();
///         change(&mut list, &mut value)?;
///         for gone in handed_out.iter().filter(|k| !list.iter().any(|s| s.key() == **k)) {
///             sessions.remove(gone);
///         }
///         sessions.extend(list.into_iter().map(|s| (s.key(), s)));
///         values.insert(user_id.to_owned(), value);
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use session_core::{NewSession, SessionStore};
///
/// let store = MapStorage { config: SessionConfig::default(), state: Mutex::default() };
/// let (token, _) = store.create(NewSession::new("alice")).await?;
/// assert_eq!(store.load(&token).await?.map(|s| s.user_id().to_owned()), Some("alice".into()));
/// # Ok::<(), session_core::Error>(())
/// # }).unwrap();
/// ```
///
/// Run the conformance suite against it (`session_core::testing::conformance::run`, feature
/// `test-suite`); `examples/tests/it/external_store.rs` is a store written outside
/// session-core that passes it.
pub trait Storage: Send + Sync + 'static {
    /// The configuration the backend was built with (the rules read their timeouts, limits
    /// and clock from it).
    fn config(&self) -> &SessionConfig;

    /// The session stored under `key` (a list of none or one), changed by `change` and
    /// written back, atomically (see the trait's docs for what to write).
    ///
    /// # Errors
    /// What `change` returns (nothing is written then), or
    /// [`Error::Unavailable`](crate::Error::Unavailable) when the backend cannot be reached:
    /// never pretend that there is no session.
    fn session(
        &self,
        key: &SessionKey,
        change: &mut (dyn FnMut(&mut Vec<Session>) -> Result<()> + Send),
    ) -> impl Future<Output = Result<()>> + Send;

    /// Every stored session of `user_id` (in any order) and the user's value (empty when
    /// none is stored; opaque: keep it as it is), changed by `change` and written back,
    /// atomically (see the trait's docs).
    ///
    /// # Errors
    /// As [`session`](Storage::session).
    // Spelled out rather than behind an alias: an implementer copies this signature.
    #[allow(clippy::type_complexity)]
    fn user(
        &self,
        user_id: &str,
        change: &mut (dyn FnMut(&mut Vec<Session>, &mut Vec<u8>) -> Result<()> + Send),
    ) -> impl Future<Output = Result<()>> + Send;

    /// Checks that the backend can be reached (a health check). The default says it can.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when it cannot.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// A short name of the backend, for logs and metrics.
    fn backend_name(&self) -> &'static str {
        "storage"
    }
}
