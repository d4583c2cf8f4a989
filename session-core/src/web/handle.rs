//! The request's session handle, [`AuthSession`], and its logged-in view, [`CurrentUser`]. One
//! type each for every framework: axum extracts them with `FromRequestParts` (feature `axum`),
//! actix-web with `FromRequest` (feature `actix`).

use std::ops::Deref;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::changes::{update_value, DataChanges};
use crate::ended::EndReason;
use crate::error::{Error, Result, UnavailableKind};
use crate::history::{HistoryEntry, LoginEvent};
use crate::logging::log_safe;
use crate::record::{NewSession, Session, SessionData, SessionInfo};
use crate::token::{SessionHandle, Token};
use crate::web::context::RequestSession;
use crate::web::rejection::Rejection;

/// How often [`AuthSession::take`] tries when other requests keep changing the key meanwhile.
const TAKE_ATTEMPTS: u32 = 8;

/// The request's session: the one handle a handler needs, on axum and actix-web alike.
///
/// A request has **no session**, an **anonymous** one (data kept before login: a cart, a flash
/// message), or a **login**. The handle reads and writes the session's data whichever it is,
/// and logs in, logs out, rotates and re-authenticates.
///
/// - **Reads are fallible**: [`session`](Self::session), [`current`](Self::current) and
///   [`get`](Self::get) return [`Error::Unavailable`] (503 with `?`) when the store could not
///   be reached to load the session. Extracting the handle itself never fails on that, so that
///   [`logout`](Self::logout) can still tell the browser to drop its cookie while the store is
///   down.
/// - **An anonymous session is created on the first write**, never for a read: a visitor who
///   only reads costs no session and no cookie. It is never a login: guards,
///   [`CurrentUser`] and [`session`](Self::session) treat it as "not logged in".
/// - **Writes are per key** ([`insert`](Self::insert), [`update`](Self::update),
///   [`remove`](Self::remove), [`take`](Self::take)): concurrent requests of the same session
///   that write other keys keep theirs.
/// - Under a guard (`#[login_required]`, `#[has_role(..)]`, ...) the session the guard checked
///   is reused: no second store call.
///
/// ```
/// use session_core::prelude::*;
///
/// async fn login(mut auth: AuthSession) -> Result<String, Error> {
///     // ... check the password first ...
///     let session = auth.login(NewSession::new("alice").with_roles(["USER"])).await?;
///     Ok(session.user_id().to_owned())
/// }
///
/// async fn add_to_cart(mut auth: AuthSession) -> Result<String, Error> {
///     // Works before login too: the first write starts an anonymous session.
///     let cart = auth
///         .update("cart", |cart: Option<Vec<String>>| {
///             let mut cart = cart.unwrap_or_default();
///             cart.push("apple".to_owned());
///             cart
///         })
///         .await?;
///     Ok(format!("{} items", cart.len()))
/// }
///
/// #[login_required]
/// async fn rotate_if_admin(mut auth: AuthSession) -> Result<(), Error> {
///     if auth.current()?.has_role("ADMIN") {
///         auth.rotate().await?;
///     }
///     Ok(())
/// }
///
/// async fn logout(mut auth: AuthSession) -> Result<(), Error> {
///     auth.logout().await?; // with the store down: 503, and the cookie is cleared all the same
///     Ok(())
/// }
/// ```
pub struct AuthSession {
    ctx: RequestSession,
    /// The request's session (login or anonymous) as this handle knows it; `Err` when the
    /// store could not be reached to load it.
    known: std::result::Result<Option<Session>, UnavailableKind>,
}

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("session", &self.known)
            .finish_non_exhaustive()
    }
}

impl AuthSession {
    /// The handle over the request's state. Never refused: a store outage is remembered and
    /// reported by the reads.
    pub(crate) async fn from_context(ctx: RequestSession) -> Self {
        let known = ctx.any_session().await;
        Self { ctx, known }
    }

    /// The session, login or anonymous; [`Error::Unavailable`] when it could not be loaded.
    fn known(&self) -> Result<Option<&Session>> {
        match &self.known {
            Ok(session) => Ok(session.as_ref()),
            Err(kind) => Err(Error::unavailable(
                *kind,
                "the session store could not be reached to load the request's session",
            )),
        }
    }

    /// The live login session, if the request has one (`Ok(None)` for no session and for an
    /// anonymous one).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store could not be reached to load it.
    pub fn session(&self) -> Result<Option<&Session>> {
        Ok(self.known()?.filter(|s| !s.is_anonymous()))
    }

    /// The live login session, for a handler under a guard, which knows the request has one:
    /// no `Option` to unwrap, and `?` answers 401 if there is none after all.
    ///
    /// # Errors
    /// [`Error::NotFound`] (401) without a login session; [`Error::Unavailable`] (503).
    pub fn current(&self) -> Result<&Session> {
        self.session()?.ok_or(Error::NotFound)
    }

    /// Reads `key` from the session's data, login or anonymous; `Ok(None)` when it is absent
    /// or there is no session.
    ///
    /// Before [`login`](Self::login), this reads the visitor's anonymous session: take what to
    /// carry over into the new session's data, since nothing else is carried over.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the stored value is not a `T`; [`Error::Unavailable`].
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.known()? {
            Some(session) => session.data().get(key),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key` (only this key is written); without a session, this starts
    /// an anonymous one, whose cookie the response sets.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the session ended meanwhile; [`Error::InvalidInput`] for a value
    /// that is not JSON-representable or too large; [`Error::Unavailable`].
    pub async fn insert<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        if self.known()?.is_none() {
            let mut data = SessionData::new();
            data.insert(key, value)?;
            return self.start_anonymous(data).await;
        }
        let mut changes = DataChanges::new();
        changes.set(key, value)?;
        self.apply(&changes).await.map(drop)
    }

    /// Atomic read-modify-write of one key: `f` gets the value as stored (`None`: absent) and
    /// returns the new one, which is stored only if nobody changed the key meanwhile; else `f`
    /// runs again with the newer value. Without a session, `f` gets `None` and its value
    /// starts an anonymous session. Returns the value stored.
    ///
    /// # Errors
    /// [`Error::Contended`] when other writers changed the key during every try;
    /// [`Error::InvalidInput`] when the stored value is not a `T`; as [`insert`](Self::insert).
    pub async fn update<T, F>(&mut self, key: &str, mut f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let Some(session) = self.known()?.cloned() else {
            let value = f(None);
            let mut data = SessionData::new();
            data.insert(key, &value)?;
            self.start_anonymous(data).await?;
            return Ok(value);
        };
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let store = self.ctx.store().clone();
        let (value, data) = update_value(store.as_ref(), &token, key, session.data(), f).await?;
        self.keep_data(session, data);
        Ok(value)
    }

    /// Removes `key`; without a session, or when the key is absent, nothing is written.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the session ended meanwhile; [`Error::Unavailable`].
    pub async fn remove(&mut self, key: &str) -> Result<()> {
        if self.known()?.is_none_or(|s| s.data().value(key).is_none()) {
            return Ok(());
        }
        let mut changes = DataChanges::new();
        changes.remove(key);
        self.apply(&changes).await.map(drop)
    }

    /// Reads and removes `key` in one atomic step (a flash message: shown once, even when two
    /// requests race for it). `Ok(None)`, and no write, when it is absent or there is no
    /// session.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the stored value is not a `T`; [`Error::Contended`] when
    /// other requests changed the key during every try; [`Error::NotFound`] when the session
    /// ended meanwhile; [`Error::Unavailable`].
    pub async fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        let Some(mut session) = self.known()?.cloned() else {
            return Ok(None);
        };
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let mut current = session.data().value(key).cloned();
        for _ in 0..TAKE_ATTEMPTS {
            let Some(value) = current else {
                return Ok(None);
            };
            let mut changes = DataChanges::new();
            changes.expect_json(key, Some(value.clone())).remove(key);
            match self.ctx.store().update_data(&token, &changes).await {
                Ok(data) => {
                    self.keep_data(session, data);
                    let value = T::deserialize(value)
                        .map_err(|e| Error::InvalidInput(format!("session data {key:?}: {e}")))?;
                    return Ok(Some(value));
                }
                Err(Error::Conflict { data }) => {
                    current = data.value(key).cloned();
                    session = self.keep_data(session, data);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Contended {
            key: key.to_owned(),
            attempts: TAKE_ATTEMPTS,
        })
    }

    /// Logs a user in: ends the request's current session, if any (whoever it belonged to, an
    /// anonymous one too), and starts a new one with a new token, which the response's cookie
    /// carries (a header client's: [`issued_token`](Self::issued_token)). Every login rotates,
    /// so a token planted before login (session fixation) is worthless after it.
    ///
    /// Nothing of an anonymous session is carried over unless the application says so: read
    /// the keys to keep with [`get`](Self::get) first.
    ///
    /// ```
    /// use session_core::prelude::*;
    ///
    /// async fn login(mut auth: AuthSession, store: &dyn SessionStore) -> Result<(), Error> {
    ///     // The login begins before the password hash is read...
    ///     let new = store.new_login("alice").await?;
    ///     // ... check the password ...
    ///     let mut data = SessionData::new();
    ///     if let Some(cart) = auth.get::<Vec<String>>("cart")? {
    ///         data.insert("cart", &cart)?;
    ///     }
    ///     auth.login(new.with_data(data)).await?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Call it only after checking the user's credentials, with the [`NewSession`] that
    /// [`SessionStore::new_login`](crate::SessionStore::new_login) handed out before the check
    /// (so that a password change meanwhile refuses this login).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store cannot be reached (nothing changed);
    /// [`Error::InvalidInput`] for an unusable user id; [`Error::LoginSuperseded`] when the
    /// user's sessions were ended after `new` was handed out.
    pub async fn login(&mut self, mut new: NewSession) -> Result<Session> {
        let store = self.ctx.store();
        let entry = HistoryEntry::of_device(LoginEvent::Login, &new.device);
        if !new.anonymous && store.config().history_max() > 0 {
            let history = store.login_history(&new.user_id).await?;
            new.device.new_device = HistoryEntry::is_new_device(&history, &entry);
        }
        let (token, session) = self.replace_session(new).await?;
        tracing::info!(
            target: "session_audit",
            event = "login",
            user = %log_safe(session.user_id()),
            session = %session.key().log_tag(),
            new_device = session.is_new_device(),
            "session started"
        );
        self.record(session.user_id(), entry).await;
        Ok(self.started(token, session))
    }

    /// Starts impersonating: the logged-in user (an admin; the route's guards say who may)
    /// acts as `target`'s user in a **new** session marked with who impersonates
    /// ([`NewSession::impersonated_by`]), time-boxed by
    /// [`SessionConfigBuilder::impersonation_timeout`](crate::SessionConfigBuilder::impersonation_timeout),
    /// never fresh for step-up guards. The admin's own session ends (this request's cookie
    /// carries the new one); both users' login histories record `impersonation_started`. Build
    /// `target` with the user's roles and permissions, as at their login.
    ///
    /// ```
    /// use session_core::prelude::*;
    ///
    /// async fn impersonate(mut auth: AuthSession, roles: Vec<String>) -> Result<(), Error> {
    ///     let session = auth.impersonate(NewSession::new("alice").with_roles(roles)).await?;
    ///     assert_eq!(session.impersonated_by(), Some("admin"));
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::Forbidden`] when this session is itself an impersonation (no chaining), when
    /// `target` is the admin, or when `target` has a role or permission the admin's session
    /// lacks (an admin never gains rights by impersonating); [`Error::NotFound`] without a
    /// login session; [`Error::InvalidInput`]; [`Error::Unavailable`].
    pub async fn impersonate(&mut self, target: NewSession) -> Result<Session> {
        let admin = self.current()?.clone();
        if admin.impersonated_by().is_some() {
            return Err(Error::Forbidden(
                "a session that is not an impersonation (no chaining)".into(),
            ));
        }
        if target.anonymous || target.user_id == admin.user_id() {
            return Err(Error::Forbidden("another user to impersonate".into()));
        }
        let lacks = target.authz.roles.iter().find(|r| !admin.has_role(r));
        let lacks =
            lacks.or_else(|| (target.authz.permissions.iter()).find(|p| !admin.has_permission(p)));
        if let Some(right) = lacks {
            return Err(Error::Forbidden(format!(
                "{right:?}, which the impersonated user has, for the admin too"
            )));
        }
        // The admin's last proof goes with them (an impersonation session is never fresh
        // itself): back in their own session they are as fresh as before, not renewed.
        let mut target = target.impersonated_by(admin.user_id());
        target.proved_at_ms = Some(admin.record.auth_time_ms);
        let (token, session) = self.replace_session(target).await?;
        tracing::info!(
            target: "session_audit",
            event = "impersonation_started",
            user = %log_safe(session.user_id()),
            by = %log_safe(admin.user_id()),
            session = %session.key().log_tag(),
            "impersonation started"
        );
        let entry = HistoryEntry::of_device(LoginEvent::ImpersonationStarted, &admin.record.device);
        self.record_both(session.user_id(), admin.user_id(), entry)
            .await;
        Ok(self.started(token, session))
    }

    /// Stops impersonating: ends this impersonation session and starts `admin`'s own session
    /// again (a new one, with a new token the cookie carries; build it as at the admin's login,
    /// [`SessionStore::new_login`](crate::SessionStore::new_login)). It is as fresh as the
    /// admin's session was when the impersonation began, not renewed: stopping proves nothing.
    /// Both users' histories record `impersonation_ended`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when this session is not an impersonation;
    /// [`Error::InvalidInput`] when `admin` is not the impersonator; [`Error::NotFound`]
    /// without a login session; [`Error::LoginSuperseded`]; [`Error::Unavailable`].
    pub async fn end_impersonation(&mut self, mut admin: NewSession) -> Result<Session> {
        let session = self.current()?.clone();
        let Some(by) = session.impersonated_by() else {
            return Err(Error::Forbidden("an impersonation session".into()));
        };
        if admin.user_id != by || admin.anonymous {
            return Err(Error::InvalidInput(
                "the session to return to is the impersonator's".into(),
            ));
        }
        // As fresh as the admin was when the impersonation began: stopping proves nothing.
        admin.proved_at_ms = Some(session.record.auth_time_ms);
        let (token, own) = self.replace_session(admin).await?;
        tracing::info!(
            target: "session_audit",
            event = "impersonation_ended",
            user = %log_safe(session.user_id()),
            by = %log_safe(own.user_id()),
            session = %own.key().log_tag(),
            "impersonation ended"
        );
        let entry = HistoryEntry::of_device(LoginEvent::ImpersonationEnded, &own.record.device);
        self.record_both(session.user_id(), own.user_id(), entry)
            .await;
        Ok(self.started(token, own))
    }

    /// Ends the request's session, if any, and creates `new` in its place (the response's
    /// cookie is set by the caller, with [`started`](Self::started)).
    async fn replace_session(&mut self, new: NewSession) -> Result<(Token, Session)> {
        let store = self.ctx.store();
        if let Some(old) = self.ctx.token() {
            store.delete(&old).await?;
        }
        store.create(new).await
    }

    /// Adds `entry` to the histories of the impersonated user and of the admin.
    async fn record_both(&self, user: &str, admin: &str, entry: HistoryEntry) {
        self.record(user, entry.clone()).await;
        self.record(admin, entry).await;
    }

    /// Adds `entry` to `user`'s login history. Best effort: the operation it records has
    /// happened, whatever becomes of its entry (a failure is logged).
    async fn record(&self, user: &str, entry: HistoryEntry) {
        if user.is_empty() {
            return;
        }
        let event = entry.event;
        if let Err(e) = self.ctx.store().record_event(user, entry).await {
            tracing::warn!(
                target: "session_audit",
                user = %log_safe(user),
                ?event,
                error = %e,
                "login history entry not recorded"
            );
        }
    }

    /// Logs out: deletes the session from the store and tells the browser to drop the cookie
    /// (a header client's token simply stops working).
    /// Returns whether a login session ended (`false` without one; an anonymous session ends
    /// too). A handler that must answer 401 without a login can turn `false` into
    /// [`Error::NotFound`].
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store cannot be reached: the session stays in the store
    /// (until it expires or is revoked), but the response still tells the browser to drop the
    /// cookie, so the device that asked to log out holds no token any more.
    pub async fn logout(&mut self) -> Result<bool> {
        let Some(token) = self.ctx.token() else {
            return Ok(false);
        };
        let existed = match self.ctx.store().delete(&token).await {
            Ok(existed) => existed,
            Err(e) => {
                self.ctx.expire_cookie();
                return Err(e);
            }
        };
        // Known unless the load failed and the store came back for the delete.
        let login = match &self.known {
            Ok(session) => session.as_ref().filter(|s| !s.is_anonymous()).cloned(),
            Err(_) => None,
        };
        if let Some(session) = &login {
            tracing::info!(
                target: "session_audit",
                event = "logout",
                user = %log_safe(session.user_id()),
                session = %session.key().log_tag(),
                "session ended"
            );
            if existed {
                match session.impersonated_by() {
                    // Logging out of an impersonation ends it: both histories say so.
                    Some(admin) => {
                        let ended = LoginEvent::ImpersonationEnded;
                        let entry = HistoryEntry::of_device(ended, &session.record.device);
                        self.record_both(session.user_id(), admin, entry).await;
                    }
                    None => {
                        let logout = LoginEvent::Logout;
                        let entry = HistoryEntry::of_device(logout, &session.record.device);
                        self.record(session.user_id(), entry).await;
                    }
                }
            }
        }
        let was_login = login.is_some() || (self.known.is_err() && existed);
        self.ctx.ended();
        self.known = Ok(None);
        Ok(existed && was_login)
    }

    /// Gives the login session a new token (the old one stops working at once); use it when
    /// the user's privileges change. The response's cookie carries it; a header client gets it
    /// from [`issued_token`](Self::issued_token).
    ///
    /// # Errors
    /// [`Error::NotFound`] without a login session; [`Error::Unavailable`].
    pub async fn rotate(&mut self) -> Result<()> {
        let session = self.current()?.clone();
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let new_token = self.ctx.store().rotate(&token).await?;
        let rotated = Session {
            key: new_token.key(),
            ..session
        };
        self.started(new_token, rotated);
        Ok(())
    }

    /// Re-authentication (step-up, ASVS 7.5): the user has just proved who they are again,
    /// by `method` (`"password"`, `"passkey"`, whatever the application names its methods).
    /// Gives the session a new token, which the response's cookie carries (a header client's:
    /// [`issued_token`](Self::issued_token)); the old one stops working at once (ASVS 7.2.4).
    /// Makes it fresh by `method`: [`Session::auth_time`] is now and [`Session::auth_method`]
    /// is `method`, so freshness guards (`#[fresh_login]`,
    /// [`Require::fresh`](crate::web::Require::fresh), and those that ask for a method,
    /// [`Require::fresh_by`](crate::web::Require::fresh_by)) pass.
    ///
    /// Call it only after checking the proof.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a login session; [`Error::Forbidden`] in an impersonation
    /// session; [`Error::InvalidInput`] for an unusable method name; [`Error::Unavailable`].
    pub async fn reauthenticate(&mut self, method: &str) -> Result<Session> {
        if self.current()?.impersonated_by().is_some() {
            return Err(Error::Forbidden(
                "the user's own session: an admin's proof is not the user's".into(),
            ));
        }
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let (new_token, session) = self.ctx.store().reauthenticate(&token, method).await?;
        tracing::info!(
            target: "session_audit",
            event = "reauthentication",
            user = %log_safe(session.user_id()),
            method = %log_safe(method),
            session = %session.key().log_tag(),
            "identity proved again; new token"
        );
        let entry = HistoryEntry::of_device(LoginEvent::Reauth, &session.record.device);
        self.record(session.user_id(), entry).await;
        Ok(self.started(new_token, session))
    }

    /// The logged-in user's live sessions (this one included, marked
    /// [`current`](SessionInfo::current)), the most recently used first: what a "your devices"
    /// page lists. Each entry serializes to JSON with RFC 3339 times.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a login session; [`Error::Unavailable`].
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        let session = self.current()?;
        let mut listed = self
            .ctx
            .store()
            .list_user_sessions(session.user_id())
            .await?;
        let current = session.handle();
        for info in &mut listed {
            info.current = info.handle == current;
        }
        Ok(listed)
    }

    /// The logged-in user's login history, newest first (see [`crate::history`]); each entry
    /// serializes to JSON with an RFC 3339 time.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a login session; [`Error::Unavailable`].
    pub async fn history(&self) -> Result<Vec<HistoryEntry>> {
        let user = self.current()?.user_id();
        self.ctx.store().login_history(user).await
    }

    /// Ends one of the logged-in user's sessions by its public handle (from
    /// [`sessions`](Self::sessions)); another user's handle ends nothing. Returns whether a
    /// session ended. Ending this request's own session is a [`logout`](Self::logout).
    ///
    /// # Errors
    /// [`Error::NotFound`] without a login session; [`Error::Unavailable`].
    pub async fn end_session(&mut self, handle: &SessionHandle) -> Result<bool> {
        let session = self.current()?;
        let (own, user) = (session.handle() == *handle, session.user_id().to_owned());
        if own {
            return self.logout().await;
        }
        let entry = HistoryEntry::of_device(LoginEvent::Revoked, &session.record.device);
        let ended = self.ctx.store().delete_user_session(&user, handle).await?;
        if ended {
            tracing::info!(
                target: "session_audit",
                event = "revocation",
                user = %log_safe(&user),
                handle = %log_safe(handle.as_str()),
                "session ended by its owner"
            );
            self.record(&user, entry).await;
        }
        Ok(ended)
    }

    /// Ends every other session of the logged-in user for `why`, which their clients are told
    /// ([`EndReason::Revoked`] for "log out my other devices", which the login history records;
    /// [`EndReason::PasswordChanged`] after a password change, whose history entry is the
    /// application's to record); this one stays. Returns how many ended.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a login session; [`Error::Unavailable`].
    pub async fn end_other_sessions(&mut self, why: EndReason) -> Result<usize> {
        let session = self.current()?;
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let ended = self
            .ctx
            .store()
            .delete_other_user_sessions(session.user_id(), &token, why)
            .await?;
        tracing::info!(
            target: "session_audit",
            event = "revocation",
            user = %log_safe(session.user_id()),
            ended,
            reason = %why,
            session = %session.key().log_tag(),
            "the user's other sessions ended"
        );
        if ended > 0 && why == EndReason::Revoked {
            let entry = HistoryEntry::of_device(LoginEvent::Revoked, &session.record.device);
            let user = session.user_id().to_owned();
            self.record(&user, entry).await;
        }
        Ok(ended)
    }

    /// Answers this request as a **header client's** (an API or mobile client that sends its
    /// token as `Authorization: Bearer <token>`, see [`BearerConfig`]): the answer sets no
    /// cookie, and a token issued in the request is [`issued_token`](Self::issued_token)'s, for
    /// the handler to put in the body. Call it before [`login`](Self::login) when the client
    /// asks for header transport: that login then gets no cookie (never both a cookie and a
    /// body token). A request that came with the bearer header is a header client's already.
    ///
    /// ```
    /// use session_core::prelude::*;
    ///
    /// // POST /login {"username", "password", "transport": "header"}
    /// async fn login(mut auth: AuthSession, header: bool) -> Result<Option<String>, Error> {
    ///     // ... check the password ...
    ///     if header {
    ///         auth.use_header_transport()?;
    ///     }
    ///     auth.login(NewSession::new("alice")).await?;
    ///     // Some(token) for the body when header, else None: the cookie carries it.
    ///     Ok(auth.issued_token().map(|token| token.as_cookie_value()))
    /// }
    /// ```
    ///
    /// **Security:** a token in a body is readable by whatever code receives it, unlike the
    /// `HttpOnly` cookie; answer as a header client only to a client that asked to be one.
    /// A client that switches from the cookie to the header should drop its cookie: a request
    /// carrying both is refused (400).
    ///
    /// # Errors
    /// [`Error::Config`] (500) when the session layer accepts no bearer token
    /// (`with_bearer` not called on `SessionLayer` / `SessionMiddleware`): the client could
    /// never present the token.
    ///
    /// [`BearerConfig`]: crate::web::BearerConfig
    pub fn use_header_transport(&mut self) -> Result<()> {
        self.ctx.use_header_transport()
    }

    /// The token issued in this request, for a header client: after [`login`](Self::login),
    /// [`rotate`](Self::rotate), [`reauthenticate`](Self::reauthenticate) (a password change's
    /// too) or the first write of an anonymous session, in a request that came with the bearer
    /// header or asked for [`use_header_transport`](Self::use_header_transport). The handler
    /// hands it to the client in the answer's body (`token.as_cookie_value()` is its text);
    /// the answer sets no cookie.
    ///
    /// `None` when no token was issued, and always for a cookie client, whose token stays in
    /// its `HttpOnly` cookie, out of every body.
    ///
    /// ```
    /// use session_core::prelude::*;
    ///
    /// // POST /reauth: a cookie client gets a new cookie, a header client the token.
    /// #[login_required]
    /// async fn reauth(mut auth: AuthSession) -> Result<String, Error> {
    ///     // ... check the password ...
    ///     auth.reauthenticate("password").await?;
    ///     Ok(match auth.issued_token() {
    ///         Some(token) => format!(r#"{{"token":"{}"}}"#, token.as_cookie_value()),
    ///         None => "{}".to_owned(),
    ///     })
    /// }
    /// ```
    pub fn issued_token(&self) -> Option<crate::token::Token> {
        self.ctx.issued_token()
    }

    /// Starts an anonymous session with `data`; the response sets its cookie.
    async fn start_anonymous(&mut self, data: SessionData) -> Result<()> {
        let (token, session) = self
            .ctx
            .store()
            .create(NewSession::anonymous().with_data(data))
            .await?;
        tracing::debug!(session = %session.key().log_tag(), "anonymous session started");
        self.started(token, session);
        Ok(())
    }

    /// A new token for the request: the response's cookie carries it.
    fn started(&mut self, token: crate::token::Token, session: Session) -> Session {
        let session = self.ctx.started(token, session);
        self.known = Ok(Some(session.clone()));
        session
    }

    /// Applies per-key `changes` to the request's session in the store.
    async fn apply(&mut self, changes: &DataChanges) -> Result<Session> {
        let session = self.known()?.cloned().ok_or(Error::NotFound)?;
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let data = self.ctx.store().update_data(&token, changes).await?;
        Ok(self.keep_data(session, data))
    }

    /// `session` with `data`, kept as the request's session (for later extractors too).
    fn keep_data(&mut self, mut session: Session, data: SessionData) -> Session {
        Arc::make_mut(&mut session.record).data = data;
        self.ctx.replace_session(session.clone());
        self.known = Ok(Some(session.clone()));
        session
    }
}

/// Who is logged in: the request's login session, read-only. Requests without one are refused
/// with 401 before the handler runs (503 when the store is unavailable).
///
/// It dereferences to [`Session`] (user id, roles, permissions, data), and
/// `let CurrentUser(session) = user;` takes the session out. To change the session (data,
/// logout, rotation), take an [`AuthSession`] as well: both share the one lookup.
///
/// ```
/// use session_core::prelude::*;
///
/// async fn me(user: CurrentUser) -> String {
///     format!("{} ({})", user.user_id(), user.roles().join(", "))
/// }
/// ```
pub struct CurrentUser(pub Session);

impl std::fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CurrentUser").field(&self.0).finish()
    }
}

impl Deref for CurrentUser {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

impl CurrentUser {
    /// The view over the request's state: 401 without a login session, 503 when the store
    /// is unavailable.
    pub(crate) async fn from_context(ctx: RequestSession) -> Result<Self, Rejection> {
        match ctx.session().await? {
            Some(session) => Ok(Self(session)),
            None => Err(ctx.unauthenticated().await),
        }
    }
}
