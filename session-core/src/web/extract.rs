//! The extractors: [`AuthSession`] ("maybe logged in": login, logout, data) and [`CurrentUser`]
//! ("must be logged in"). One type each, extracted by axum (`FromRequestParts`, feature
//! `axum`) and by actix-web (`FromRequest`, feature `actix`).

use std::ops::Deref;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::changes::{update_value, DataChanges};
use crate::error::{Error, Result};
use crate::logging::log_safe;
use crate::record::{NewSession, Session, SessionData};
use crate::web::context::RequestSession;
use crate::web::rejection::Rejection;
use crate::web::visitor::{take, take_from};

/// The request's session, if any, with the operations that change it: login, logout, rotation
/// and application data.
///
/// Extracting it costs no store call when the request carries no session cookie. It is refused
/// only when the store is unavailable (503) or the app has no session layer (axum) or
/// middleware (actix-web).
///
/// ```
/// use axum::Json;
/// use session_core::web::AuthSession;
/// use session_core::{Error, NewSession};
///
/// async fn login(mut auth: AuthSession) -> Result<Json<String>, Error> {
///     // ... check the password first ...
///     let session = auth.login(NewSession::new("alice").with_roles(["USER"])).await?;
///     Ok(Json(session.user_id().to_owned()))
/// }
///
/// async fn logout(mut auth: AuthSession) -> Result<(), Error> {
///     auth.logout().await?;
///     Ok(())
/// }
/// ```
pub struct AuthSession {
    ctx: RequestSession,
    session: Option<Session>,
    /// The visitor's anonymous session, when the request has one instead of a login.
    anonymous: Option<Session>,
}

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl AuthSession {
    /// The extractor over the request's state; refused only when the store is unavailable.
    pub(crate) async fn from_context(ctx: RequestSession) -> Result<Self, Rejection> {
        let (session, anonymous) = match ctx.visitor_session().await? {
            Some(s) if s.is_anonymous() => (None, Some(s)),
            other => (other, None),
        };
        Ok(Self {
            ctx,
            session,
            anonymous,
        })
    }

    /// The live login session, when the request has one (never an anonymous session).
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The visitor's anonymous session ([`Visitor`](crate::web::Visitor)), when the request
    /// has one instead of a login: read what to carry over before [`AuthSession::login`]
    /// ends it.
    pub fn anonymous(&self) -> Option<&Session> {
        self.anonymous.as_ref()
    }

    /// The live session, or [`Rejection::Unauthenticated`] (401): for a handler under a guard
    /// (`#[login_required]`, `#[has_role]`, ...), which knows the request has one, so that it
    /// need not unwrap an `Option`. `?` turns the rejection into the handler's error (it
    /// converts into [`Error`]). The guard's lookup is reused: no second store call.
    ///
    /// ```
    /// use session_core::prelude::*;
    /// use session_core::web::AuthSession;
    ///
    /// #[login_required]
    /// async fn rotate_if_admin(mut auth: AuthSession) -> Result<(), Error> {
    ///     if auth.current()?.has_role("ADMIN") {
    ///         auth.rotate().await?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Rejection::Unauthenticated`] when the request has no live session.
    pub fn current(&self) -> std::result::Result<&Session, Rejection> {
        self.session.as_ref().ok_or(Rejection::Unauthenticated)
    }

    /// True when the request has a live session.
    pub fn is_logged_in(&self) -> bool {
        self.session.is_some()
    }

    /// Logs a user in: ends the request's current session, if any (whoever it belonged to, an
    /// anonymous session too), and starts a new one with a new token, which the response's
    /// cookie carries. Every login rotates, so a token planted before login (session fixation)
    /// is worthless after it.
    ///
    /// Nothing of an anonymous session is carried over unless the application says so: take
    /// the keys to keep from [`AuthSession::anonymous`] into the new session's data.
    ///
    /// ```
    /// use session_core::web::AuthSession;
    /// use session_core::{Error, NewSession};
    ///
    /// async fn login(mut auth: AuthSession) -> Result<(), Error> {
    ///     // ... check the password first ...
    ///     let cart = auth.anonymous().map(|s| s.data().only(&["cart"])).unwrap_or_default();
    ///     auth.login(NewSession::new("alice").with_data(cart)).await?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Call it only after checking the user's credentials.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store cannot be reached (nothing changed);
    /// [`Error::InvalidInput`] for an unusable user id.
    pub async fn login(&mut self, new: NewSession) -> Result<Session> {
        if let Some(old) = self.ctx.token() {
            self.ctx.store().delete(&old).await?;
        }
        let (token, session) = self.ctx.store().create(new).await?;
        tracing::info!(
            target: "session_audit",
            event = "login",
            user = %log_safe(session.user_id()),
            session = %session.key().log_tag(),
            "session started"
        );
        let session = self.ctx.started(token, session);
        self.session = Some(session.clone());
        self.anonymous = None;
        Ok(session)
    }

    /// Logs out: deletes the session from the store and tells the browser to drop the cookie.
    /// Returns whether there was a live login session (an anonymous session ends too).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store cannot be reached: the session stays in the store
    /// (until it expires), but the response still tells the browser to drop the cookie, so the
    /// device that asked to log out holds no token any more.
    pub async fn logout(&mut self) -> Result<bool> {
        let existed = match self.ctx.token() {
            Some(token) => match self.ctx.store().delete(&token).await {
                Ok(existed) => existed,
                Err(e) => {
                    self.ctx.expire_cookie();
                    return Err(e);
                }
            },
            None => false,
        };
        if let Some(session) = &self.session {
            tracing::info!(
                target: "session_audit",
                event = "logout",
                user = %log_safe(session.user_id()),
                session = %session.key().log_tag(),
                "session ended"
            );
        }
        let was_login = self.session.is_some();
        self.ctx.ended();
        self.session = None;
        self.anonymous = None;
        Ok(existed && was_login)
    }

    /// Gives the session a new token (the old one stops working at once); use it when the
    /// user's privileges change.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a live session; [`Error::Unavailable`].
    pub async fn rotate(&mut self) -> Result<()> {
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let session = self.session.clone().ok_or(Error::NotFound)?;
        let new_token = self.ctx.store().rotate(&token).await?;
        let rotated = Session {
            key: new_token.key(),
            ..session
        };
        self.session = Some(self.ctx.started(new_token, rotated));
        Ok(())
    }

    /// Re-authentication (step-up, ASVS 7.5): the user has just entered their password again.
    /// Gives the session a new token, which the response's cookie carries (the old one stops
    /// working at once), and makes it fresh: [`Session::auth_time`] is now, so freshness
    /// guards (`#[fresh_login]`, [`Require::fresh`](crate::web::Require::fresh)) pass.
    ///
    /// Call it only after checking the password.
    ///
    /// ```
    /// use session_core::web::AuthSession;
    /// use session_core::Error;
    ///
    /// async fn reauth(mut auth: AuthSession) -> Result<(), Error> {
    ///     // ... check the password against the account of auth.session()'s user first ...
    ///     auth.reauthenticate().await?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] without a live session; [`Error::Unavailable`].
    pub async fn reauthenticate(&mut self) -> Result<Session> {
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        self.session.as_ref().ok_or(Error::NotFound)?;
        let (new_token, session) = self.ctx.store().reauthenticate(&token).await?;
        tracing::info!(
            target: "session_audit",
            event = "reauthentication",
            user = %log_safe(session.user_id()),
            session = %session.key().log_tag(),
            "password entered again; new token"
        );
        let session = self.ctx.started(new_token, session);
        self.session = Some(session.clone());
        Ok(session)
    }

    /// Ends every other session of this session's user (after a password change, or "log out
    /// my other devices"); this one stays. Returns how many ended.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a live session; [`Error::Unavailable`].
    pub async fn end_other_sessions(&mut self) -> Result<usize> {
        let token = self.ctx.token().ok_or(Error::NotFound)?;
        let session = self.session.as_ref().ok_or(Error::NotFound)?;
        let ended = self
            .ctx
            .store()
            .delete_other_user_sessions(session.user_id(), &token)
            .await?;
        tracing::info!(
            target: "session_audit",
            event = "revocation",
            user = %log_safe(session.user_id()),
            ended,
            session = %session.key().log_tag(),
            "the user's other sessions ended"
        );
        Ok(ended)
    }

    /// Stores `value` under `key` in the session's application data. Only this key is written
    /// (the store merges it, [`SessionStore::update_data`](crate::SessionStore::update_data)):
    /// concurrent requests of the same session that write other keys keep theirs.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a live session; [`Error::InvalidInput`] for a value that is
    /// not JSON-representable or too large; [`Error::Unavailable`].
    pub async fn insert<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let mut changes = DataChanges::new();
        changes.set(key, value)?;
        self.session = Some(apply(&self.ctx, self.session.as_ref(), &changes).await?);
        Ok(())
    }

    /// Removes `key` from the session's application data (only this key is written, as with
    /// [`AuthSession::insert`]).
    ///
    /// # Errors
    /// As [`AuthSession::insert`].
    pub async fn remove(&mut self, key: &str) -> Result<()> {
        let mut changes = DataChanges::new();
        changes.remove(key);
        self.session = Some(apply(&self.ctx, self.session.as_ref(), &changes).await?);
        Ok(())
    }

    /// Atomic read-modify-write of one key: `f` gets the value as stored (`None`: absent) and
    /// returns the new one, which is stored only if nobody changed the key meanwhile; else `f`
    /// runs again with the newer value ([`update_value`](crate::update_value)). Returns the value stored.
    ///
    /// # Errors
    /// [`Error::Contended`] when other writers changed the key during every try;
    /// [`Error::InvalidInput`] when the stored value is not a `T`; as [`AuthSession::insert`].
    pub async fn update<T, F>(&mut self, key: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let (value, session) = update(&self.ctx, self.session.as_ref(), key, f).await?;
        self.session = Some(session);
        Ok(value)
    }

    /// Reads and removes `key` in one atomic step, as [`Visitor::take`](crate::web::Visitor::take)
    /// (a flash message); `Ok(None)` without a login session.
    ///
    /// # Errors
    /// As [`Visitor::take`](crate::web::Visitor::take).
    pub async fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        take_from(&self.ctx, &mut self.session, key).await
    }

    /// Replaces the session's whole application data, and saves it. The last writer wins: keys
    /// that concurrent requests set meanwhile are lost. To change some keys, use `insert`,
    /// `remove` or `update`, which write only theirs.
    ///
    /// # Errors
    /// As [`AuthSession::insert`].
    pub async fn save_data(&mut self, data: SessionData) -> Result<()> {
        let saved = save(&self.ctx, self.session.as_ref(), data).await?;
        self.session = Some(saved);
        Ok(())
    }
}

async fn save(
    ctx: &RequestSession,
    session: Option<&Session>,
    data: SessionData,
) -> Result<Session> {
    let session = session.ok_or(Error::NotFound)?;
    let token = ctx.token().ok_or(Error::NotFound)?;
    ctx.store().save_data(&token, &data).await?;
    Ok(with_data(ctx, session, data))
}

/// Applies per-key `changes` to the request's session in the store.
pub(super) async fn apply(
    ctx: &RequestSession,
    session: Option<&Session>,
    changes: &DataChanges,
) -> Result<Session> {
    let session = session.ok_or(Error::NotFound)?;
    let token = ctx.token().ok_or(Error::NotFound)?;
    let data = ctx.store().update_data(&token, changes).await?.into_data();
    Ok(with_data(ctx, session, data))
}

/// [`update_value`] on the request's session.
pub(super) async fn update<T, F>(
    ctx: &RequestSession,
    session: Option<&Session>,
    key: &str,
    f: F,
) -> Result<(T, Session)>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> T,
{
    let session = session.ok_or(Error::NotFound)?;
    let token = ctx.token().ok_or(Error::NotFound)?;
    let (value, data) = update_value(ctx.store().as_ref(), &token, key, session.data(), f).await?;
    Ok((value, with_data(ctx, session, data)))
}

/// `session` with `data`, also kept as the request's session for later extractors.
pub(super) fn with_data(ctx: &RequestSession, session: &Session, data: SessionData) -> Session {
    let mut updated = session.clone();
    Arc::make_mut(&mut updated.record).data = data;
    ctx.replace_session(updated.clone());
    updated
}

/// The logged-in user's session; requests without one are refused with 401 before the handler
/// runs (503 when the store is unavailable).
///
/// It dereferences to [`Session`] (user id, roles, permissions, data).
///
/// ```
/// use session_core::web::CurrentUser;
///
/// async fn me(user: CurrentUser) -> String {
///     format!("{} ({})", user.user_id(), user.roles().join(", "))
/// }
/// ```
pub struct CurrentUser {
    ctx: RequestSession,
    session: Session,
}

impl std::fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CurrentUser").field(&self.session).finish()
    }
}

impl Deref for CurrentUser {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl CurrentUser {
    /// The extractor over the request's state: 401 without a live session, 503 when the store
    /// is unavailable.
    pub(crate) async fn from_context(ctx: RequestSession) -> Result<Self, Rejection> {
        match ctx.session().await? {
            Some(session) => Ok(Self { ctx, session }),
            None => Err(Rejection::Unauthenticated),
        }
    }

    /// The session as checked at extraction (also reachable through `Deref`).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, owned.
    pub fn into_session(self) -> Session {
        self.session
    }

    /// Stores `value` under `key` in the session's application data (only this key is
    /// written, as with [`AuthSession::insert`]).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the session ended meanwhile; [`Error::InvalidInput`] for a value
    /// that is not JSON-representable or too large; [`Error::Unavailable`].
    pub async fn insert<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let mut changes = DataChanges::new();
        changes.set(key, value)?;
        self.session = apply(&self.ctx, Some(&self.session), &changes).await?;
        Ok(())
    }

    /// Removes `key` from the session's application data (only this key is written).
    ///
    /// # Errors
    /// As [`CurrentUser::insert`].
    pub async fn remove(&mut self, key: &str) -> Result<()> {
        let mut changes = DataChanges::new();
        changes.remove(key);
        self.session = apply(&self.ctx, Some(&self.session), &changes).await?;
        Ok(())
    }

    /// Atomic read-modify-write of one key, as [`AuthSession::update`].
    ///
    /// # Errors
    /// As [`AuthSession::update`].
    pub async fn update<T, F>(&mut self, key: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let (value, session) = update(&self.ctx, Some(&self.session), key, f).await?;
        self.session = session;
        Ok(value)
    }

    /// Reads and removes `key` in one atomic step, as [`Visitor::take`](crate::web::Visitor::take)
    /// (a flash message: shown once).
    ///
    /// # Errors
    /// As [`Visitor::take`](crate::web::Visitor::take).
    pub async fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        let (value, session) = take(&self.ctx, &self.session, key).await?;
        self.session = session;
        Ok(value)
    }

    /// Replaces the session's whole application data, and saves it. The last writer wins: keys
    /// that concurrent requests set meanwhile are lost. To change some keys, use `insert`,
    /// `remove` or `update`, which write only theirs.
    ///
    /// # Errors
    /// As [`CurrentUser::insert`].
    pub async fn save_data(&mut self, data: SessionData) -> Result<()> {
        self.session = save(&self.ctx, Some(&self.session), data).await?;
        Ok(())
    }
}

/// Logout for a route that must end the session even while the store is down: extracting it
/// never fails and costs nothing; [`EndSession::end`] does the work. Unlike
/// [`AuthSession::logout`] behind a guard (whose guard answers 503 before the handler runs),
/// with the store down it answers 503 **and** tells the browser to drop the cookie, so the
/// device that asked to log out holds no token any more (the session itself lives on in the
/// store until it expires or is revoked).
///
/// ```
/// use session_core::web::EndSession;
/// use session_core::Error;
///
/// async fn logout(end: EndSession) -> Result<(), Error> {
///     end.end().await?; // 401 without a live session, 503 with the store down
///     Ok(())
/// }
/// ```
pub struct EndSession {
    ctx: RequestSession,
}

impl std::fmt::Debug for EndSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndSession").finish_non_exhaustive()
    }
}

impl EndSession {
    pub(crate) fn from_context(ctx: RequestSession) -> Self {
        Self { ctx }
    }

    /// Ends the request's session: deletes it from the store and tells the browser to drop
    /// the cookie. Returns the session that ended.
    ///
    /// # Errors
    /// [`Error::NotFound`] (401) without a live session; [`Error::Unavailable`] or
    /// [`Error::Rejected`] with [`Rejection::StoreUnavailable`] (both 503) when the store
    /// cannot be reached; in both cases a cookie the request carried is cleared all the same.
    pub async fn end(self) -> Result<Session> {
        let session = match self.ctx.session().await {
            Ok(Some(session)) => session,
            Ok(None) => {
                if self.ctx.carries_session() {
                    self.ctx.expire_cookie();
                }
                return Err(Error::NotFound);
            }
            Err(rejection) => {
                self.ctx.expire_cookie();
                return Err(Error::Rejected(rejection));
            }
        };
        let mut auth = AuthSession {
            ctx: self.ctx,
            session: Some(session.clone()),
            anonymous: None,
        };
        auth.logout().await?;
        Ok(session)
    }
}
