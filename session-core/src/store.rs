//! The [`SessionStore`] trait: what every session backend does, and the rules it keeps.

#[cfg(feature = "redis")]
pub mod redis;

pub mod memory;
mod rules;
pub(crate) mod storage;

pub(crate) use rules::is_kept;

use async_trait::async_trait;

use crate::binding::DeviceBinding;
use crate::changes::DataChanges;
use crate::config::SessionConfig;
use crate::ended::EndReason;
use crate::error::Result;
use crate::history::HistoryEntry;
use crate::record::{NewSession, Session, SessionData, SessionInfo};
use crate::token::{SessionHandle, Token};

#[cfg_attr(
    feature = "redis",
    doc = "A place to keep sessions: [`RedisStore`](crate::RedisStore) in production,"
)]
#[cfg_attr(
    not(feature = "redis"),
    doc = "A place to keep sessions: `RedisStore` (feature `redis`) in production,"
)]
/// [`MemoryStore`](crate::MemoryStore) for tests and Redis-less development.
///
/// Every implementation keeps the same rules, and the public conformance suite
/// (`session_core::testing::conformance`, feature `test-suite`) checks them:
///
/// - **Keys, not tokens.** A session is filed under its token's SHA-256 ([`Token::key`]); the
///   token itself is never stored.
/// - **Expiry.** A session ends after [`SessionConfigBuilder::idle_timeout`](crate::SessionConfigBuilder::idle_timeout) without a
///   [`load`](SessionStore::load) (each load slides it) and at
///   [`SessionConfigBuilder::absolute_timeout`](crate::SessionConfigBuilder::absolute_timeout) after creation whatever happens. An ended session is
///   never returned.
/// - **Per-user index.** The store knows each user's sessions, so it can list them, end one or
///   all, change their roles, and keep at most [`SessionConfigBuilder::max_sessions_per_user`](crate::SessionConfigBuilder::max_sessions_per_user) (a new
///   session evicts the oldest). Ended sessions are pruned from the index.
/// - **Why a session ended.** A session ended by [`delete`](SessionStore::delete), a
///   revocation or the per-user limit leaves its [`EndReason`] under its key until its
///   deadline, for [`end_reason`](SessionStore::end_reason) to tell the client that still
///   holds the token.
/// - **Anonymous sessions** ([`NewSession::anonymous`]) have no user: they are in no index,
///   count against no limit, have no roles, and load with
///   [`Session::is_anonymous`](crate::Session::is_anonymous) true. Everything keyed by token
///   (load, data, rotate, delete) works on them as on any session.
/// - **Fail closed.** A store that cannot be reached answers
///   [`Error::Unavailable`](crate::Error::Unavailable), never "no session" and never a session.
///
/// # Implementing a store
/// Implement [`Storage`](crate::Storage) instead: a handful of primitives (hand out a
/// session or a user's sessions, write back what changed, atomically). Every `Storage` is a
/// `SessionStore`, with the rules above written once in session-core. The Redis store is the
/// one store that implements this trait itself: it keeps the same rules in its scripts, so that
/// every operation is one round trip. Run the conformance suite against a store
/// (`session_core::testing::conformance::run`, feature `test-suite`).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The configuration the store was built with.
    fn config(&self) -> &SessionConfig;

    /// A short name of the backend, for health checks and logs (`"redis"`, `"memory"`).
    fn backend_name(&self) -> &'static str;

    /// Checks that the store can be reached.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when it cannot.
    async fn ping(&self) -> Result<()>;

    /// Creates a session with a fresh token and indexes it under its user. When the user is
    /// over the per-user limit afterwards, their oldest sessions are ended. An anonymous
    /// session ([`NewSession::anonymous`]) is only stored.
    ///
    /// When `new` comes from [`new_login`](SessionStore::new_login), the session is created
    /// only if none of the user's sessions were ended since, checked atomically with the write:
    /// no session of a login that began before the user's sessions were ended.
    ///
    /// # Errors
    /// [`Error::LoginSuperseded`](crate::Error::LoginSuperseded) when the user's sessions were
    /// ended after `new_login` (nothing is stored);
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an unusable user id or oversized
    /// data; [`Error::Unavailable`](crate::Error::Unavailable).
    async fn create(&self, new: NewSession) -> Result<(Token, Session)>;

    /// Begins a login of `user_id`: the [`NewSession`] to [`create`](SessionStore::create)
    /// once the credentials are checked (add roles, data, a label to it). Call it **before**
    /// reading what the credentials are checked against (the password hash): it carries the
    /// user's session epoch as of now, and [`delete_user_sessions`] and
    /// [`delete_other_user_sessions`] give the user a new one (kept for
    /// [`SessionConfigBuilder::role_change_window`](crate::SessionConfigBuilder::role_change_window)),
    /// so a login in flight across a password change or a "sign out everywhere" gets
    /// [`Error::LoginSuperseded`](crate::Error::LoginSuperseded) instead of a session made with
    /// the old password.
    ///
    /// ```
    /// use session_core::{EndReason, Error, MemoryStore, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// // A login begins: first this, then the password hash and its check.
    /// let login = store.new_login("alice").await?;
    /// // Meanwhile the password changes and the user's sessions are ended.
    /// store.delete_user_sessions("alice", EndReason::PasswordChanged).await?;
    /// // The login that checked the old password gets no session.
    /// let late = store.create(login.with_roles(["USER"])).await;
    /// assert!(matches!(late, Err(Error::LoginSuperseded)));
    /// // A login that begins after the change is not affected.
    /// let login = store.new_login("alice").await?;
    /// assert!(store.create(login).await.is_ok());
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// [`delete_user_sessions`]: SessionStore::delete_user_sessions
    /// [`delete_other_user_sessions`]: SessionStore::delete_other_user_sessions
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an unusable user id;
    /// [`Error::Unavailable`](crate::Error::Unavailable): deny the login.
    async fn new_login(&self, user_id: &str) -> Result<NewSession>;

    /// Loads the session of `token` and slides its idle expiry ("load and touch"). `Ok(None)`
    /// when there is no live session; a corrupt record is logged and also gives `Ok(None)`.
    /// An anonymous session is returned too: check
    /// [`Session::is_anonymous`](crate::Session::is_anonymous) before treating a session as a
    /// login (the request core's guards and extractors do).
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) only: a store outage is never "no session".
    async fn load(&self, token: &Token) -> Result<Option<Session>>;

    /// Replaces the application data of the session of `token`, keeping its roles, expiry and
    /// everything else. The whole data: a key another writer set since this caller read the
    /// data is lost. To change some keys, use [`update_data`](SessionStore::update_data).
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when the session has ended;
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for oversized data;
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()>;

    /// Applies `changes` to the application data of the session of `token` in one atomic step
    /// in the store: the keys it sets or removes are merged into the data as stored at that
    /// moment, and every other key keeps whatever it holds, so concurrent writers of different
    /// keys never lose each other's writes (as a load, change and
    /// [`save_data`](SessionStore::save_data) of the whole data would). If an expectation
    /// ([`DataChanges::expect`]) does not hold, nothing changes and the answer is
    /// [`Error::Conflict`](crate::Error::Conflict), which carries the data as stored (to
    /// compute the change again from). Otherwise the answer is the whole data as now stored.
    /// Roles, expiry and everything else stay.
    ///
    /// In a handler, a read-modify-write of one key (a counter, a cart) is
    /// `AuthSession::update`, which retries on conflicts.
    ///
    /// ```
    /// use session_core::{DataChanges, MemoryStore, NewSession, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let (token, _) = store.create(NewSession::new("alice")).await?;
    /// let mut changes = DataChanges::new();
    /// changes.set("cart", &["apple"])?;
    /// let data = store.update_data(&token, &changes).await?;
    /// assert_eq!(data.get::<Vec<String>>("cart")?, Some(vec!["apple".to_owned()]));
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) when an expectation does not hold;
    /// [`Error::NotFound`](crate::Error::NotFound) when the session has ended;
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) when the merged data would be too
    /// large (nothing changes); [`Error::Corrupt`](crate::Error::Corrupt) when the stored data
    /// cannot be read; [`Error::Unavailable`](crate::Error::Unavailable).
    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<SessionData>;

    /// Gives the session a new token and returns it; the old token stops working at once.
    /// Everything else (user, roles, data, deadline) stays. Use it when privileges change.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when the session has ended;
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn rotate(&self, token: &Token) -> Result<Token>;

    /// Re-authentication (step-up): the user has just proved who they are again in the
    /// session of `token`, by `method` (`"password"`, `"passkey"`, whatever the application
    /// names its methods: 1 to [`MAX_METHOD_LEN`](crate::MAX_METHOD_LEN) bytes of
    /// `[A-Za-z0-9._-]`). Gives the session a new token (the old one stops working at once, as
    /// with [`rotate`](SessionStore::rotate)) and sets its [`auth_time`](Session::auth_time) to
    /// now and its [`auth_method`](Session::auth_method) to `method`, in one step; returns the
    /// new token and the session as now stored. Everything else (user, roles, device, data,
    /// deadline) stays.
    ///
    /// Call it only after checking the proof. Guards for recent authentication
    /// ([`Require::fresh`](crate::web::Require::fresh), optionally by method) then pass for
    /// their `max_age`.
    ///
    /// ```
    /// use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let (old, _) = store.create(NewSession::new("alice")).await?;
    /// // ... the password was checked again ...
    /// let (new, session) = store.reauthenticate(&old, "passkey").await?;
    /// assert!(store.load(&old).await?.is_none());
    /// assert_eq!(store.load(&new).await?.map(|s| s.auth_time()), Some(session.auth_time()));
    /// assert_eq!(session.auth_method(), "passkey");
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when the session has ended;
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an unusable method name;
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn reauthenticate(&self, token: &Token, method: &str) -> Result<(Token, Session)>;

    /// Ends the session of `token` (logout, [`EndReason::LoggedOut`]). True when there was
    /// one.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn delete(&self, token: &Token) -> Result<bool>;

    /// Why the session of `token` ended, for a request that still carries it:
    /// [`EndReason::Expired`] past the token's deadline (no store call), else the reason the
    /// store kept when the session ended (until its deadline). `None` for a session that is
    /// live, idled out, or was never there (a made-up token, an old token after a rotation).
    /// The request core asks only when [`load`](SessionStore::load) found no session, to put
    /// the reason in the 401.
    ///
    /// ```
    /// use session_core::{EndReason, MemoryStore, NewSession, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let (laptop, _) = store.create(NewSession::new("alice")).await?;
    /// let (phone, _) = store.create(NewSession::new("alice")).await?;
    /// store.delete(&laptop).await?;
    /// store.delete_other_user_sessions("alice", &laptop, EndReason::PasswordChanged).await?;
    /// assert_eq!(store.end_reason(&laptop).await?, Some(EndReason::LoggedOut));
    /// assert_eq!(store.end_reason(&phone).await?, Some(EndReason::PasswordChanged));
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn end_reason(&self, token: &Token) -> Result<Option<EndReason>>;

    /// Binds the session `token` names to a device (DBSC): its binding becomes `binding`, if
    /// the session is live and its binding is still the one `read` (the session as the caller
    /// loaded it) has. A compare-and-set: of two refreshes racing over one session, one wins
    /// and the other gets `false`, so a challenge is accepted once. Nothing else of the session
    /// changes (data, roles, deadline, idle expiry).
    ///
    /// The request core's DBSC endpoints call this (`SessionLayer::with_dbsc`); an application
    /// has no reason to.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable); [`Error::Corrupt`](crate::Error::Corrupt)
    /// for a stored value that is not a session record.
    async fn bind_device(
        &self,
        token: &Token,
        read: &Session,
        binding: &DeviceBinding,
    ) -> Result<bool>;

    /// The live sessions of `user_id`, the most recently used first (as a "your devices" page
    /// lists them). Ended sessions are pruned from the index on the way.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>>;

    /// Appends `entry` to `user_id`'s login history, dated now by the config's clock; the
    /// oldest entries beyond
    /// [`history_max`](crate::SessionConfigBuilder::history_max) or
    /// [`history_max_age`](crate::SessionConfigBuilder::history_max_age) are dropped. With
    /// `history_max` 0 nothing is kept.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an unusable user id;
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn record_event(&self, user_id: &str, entry: HistoryEntry) -> Result<()>;

    /// `user_id`'s login history, newest first (see [`crate::history`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an unusable user id;
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn login_history(&self, user_id: &str) -> Result<Vec<HistoryEntry>>;

    /// Ends the session of `user_id` that has public handle `handle` ([`EndReason::Revoked`]).
    /// False when the user has no such session (so nobody can end another user's session by
    /// guessing handles).
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool>;

    /// Ends every session of `user_id` for `why` (usually [`EndReason::Revoked`]; the clients
    /// are told it) and gives the user a new login epoch, so logins in flight
    /// ([`new_login`](SessionStore::new_login)) get no session either; returns how many were
    /// live.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn delete_user_sessions(&self, user_id: &str, why: EndReason) -> Result<usize>;

    /// Ends every session of `user_id` except the one of `keep` for `why`
    /// ([`EndReason::PasswordChanged`] after a password change, [`EndReason::Revoked`] for "log
    /// out my other devices"); returns how many were live. When `keep` is not a session of
    /// the user, all of the user's sessions end. Gives the user a new login epoch, so logins
    /// in flight ([`new_login`](SessionStore::new_login)) get no session either.
    ///
    /// ```
    /// use session_core::{EndReason, MemoryStore, NewSession, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let (laptop, _) = store.create(NewSession::new("alice")).await?;
    /// let (phone, _) = store.create(NewSession::new("alice")).await?;
    /// let ended = store.delete_other_user_sessions("alice", &laptop, EndReason::Revoked);
    /// assert_eq!(ended.await?, 1);
    /// assert!(store.load(&phone).await?.is_none());
    /// assert!(store.load(&laptop).await?.is_some());
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an unusable user id;
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn delete_other_user_sessions(
        &self,
        user_id: &str,
        keep: &Token,
        why: EndReason,
    ) -> Result<usize>;

    /// Replaces the roles and permissions on every live session of `user_id`; returns how many
    /// sessions were changed. From the moment this returns, no session of the user is loaded
    /// with the old roles.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for oversized lists;
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn set_user_authz(
        &self,
        user_id: &str,
        roles: &[String],
        permissions: &[String],
    ) -> Result<usize>;
}

/// A shared store is a store: `Arc<RedisStore>`, `Arc<dyn SessionStore>` and the like can be
/// handed wherever a store is taken.
#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    fn config(&self) -> &SessionConfig {
        (**self).config()
    }
    fn backend_name(&self) -> &'static str {
        (**self).backend_name()
    }
    async fn ping(&self) -> Result<()> {
        (**self).ping().await
    }
    async fn create(&self, new: NewSession) -> Result<(Token, Session)> {
        (**self).create(new).await
    }
    async fn new_login(&self, user_id: &str) -> Result<NewSession> {
        (**self).new_login(user_id).await
    }
    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        (**self).load(token).await
    }
    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        (**self).save_data(token, data).await
    }
    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<SessionData> {
        (**self).update_data(token, changes).await
    }
    async fn rotate(&self, token: &Token) -> Result<Token> {
        (**self).rotate(token).await
    }
    async fn reauthenticate(&self, token: &Token, method: &str) -> Result<(Token, Session)> {
        (**self).reauthenticate(token, method).await
    }
    async fn delete(&self, token: &Token) -> Result<bool> {
        (**self).delete(token).await
    }
    async fn end_reason(&self, token: &Token) -> Result<Option<EndReason>> {
        (**self).end_reason(token).await
    }
    async fn bind_device(
        &self,
        token: &Token,
        read: &Session,
        binding: &DeviceBinding,
    ) -> Result<bool> {
        (**self).bind_device(token, read, binding).await
    }
    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        (**self).list_user_sessions(user_id).await
    }
    async fn record_event(&self, user_id: &str, entry: HistoryEntry) -> Result<()> {
        (**self).record_event(user_id, entry).await
    }
    async fn login_history(&self, user_id: &str) -> Result<Vec<HistoryEntry>> {
        (**self).login_history(user_id).await
    }
    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        (**self).delete_user_session(user_id, handle).await
    }
    async fn delete_user_sessions(&self, user_id: &str, why: EndReason) -> Result<usize> {
        (**self).delete_user_sessions(user_id, why).await
    }
    async fn delete_other_user_sessions(
        &self,
        user_id: &str,
        keep: &Token,
        why: EndReason,
    ) -> Result<usize> {
        (**self)
            .delete_other_user_sessions(user_id, keep, why)
            .await
    }
    async fn set_user_authz(
        &self,
        user_id: &str,
        roles: &[String],
        permissions: &[String],
    ) -> Result<usize> {
        (**self).set_user_authz(user_id, roles, permissions).await
    }
}
