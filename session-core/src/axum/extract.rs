//! The extractors: [`AuthSession`] ("maybe logged in": login, logout, data) and [`CurrentUser`]
//! ("must be logged in").

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::axum::layer::RequestSession;
use crate::axum::rejection::Rejection;
use crate::changes::{update_value, DataChanges};
use crate::error::{Error, Result};
use crate::logging::log_safe;
use crate::record::{NewSession, Session, SessionData};

/// The request's session, if any, with the operations that change it: login, logout, rotation
/// and application data.
///
/// Extracting it costs no store call when the request carries no session cookie. It is refused
/// only when the store is unavailable (503) or the [`SessionLayer`](crate::axum::SessionLayer)
/// is missing.
///
/// ```
/// use axum::Json;
/// use session_core::axum::AuthSession;
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
}

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let ctx = RequestSession::from_parts(parts)?;
        let session = ctx.session().await.map_err(|r| ctx.reject(r, parts))?;
        Ok(Self { ctx, session })
    }
}

impl AuthSession {
    /// The live session, when the request has one.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// True when the request has a live session.
    pub fn is_logged_in(&self) -> bool {
        self.session.is_some()
    }

    /// Logs a user in: ends the request's current session, if any (whoever it belonged to), and
    /// starts a new one with a new token, which the response's cookie carries. Every login
    /// rotates, so a token planted before login (session fixation) is worthless after it.
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
        Ok(session)
    }

    /// Logs out: deletes the session from the store and tells the browser to drop the cookie.
    /// Returns whether there was a live session.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the store cannot be reached (the session stays).
    pub async fn logout(&mut self) -> Result<bool> {
        let existed = match self.ctx.token() {
            Some(token) => self.ctx.store().delete(&token).await?,
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
        self.ctx.ended();
        self.session = None;
        Ok(existed)
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
    /// guards (`#[fresh_login]`, [`Require::fresh`](crate::axum::Require::fresh)) pass.
    ///
    /// Call it only after checking the password.
    ///
    /// ```
    /// use session_core::axum::AuthSession;
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

    /// Stores `value` under `key` in the session's application data. Only this key is
    /// written (merged into the data as stored, [`SessionStore::update_data`](crate::SessionStore::update_data)): concurrent
    /// requests writing other keys keep theirs.
    ///
    /// ```
    /// use session_core::axum::AuthSession;
    /// use session_core::Error;
    ///
    /// async fn add_to_cart(mut auth: AuthSession) -> Result<String, Error> {
    ///     // A read-modify-write of one key: retried if another request changed it meanwhile.
    ///     let cart = auth
    ///         .update("cart", |cart: Option<Vec<String>>| {
    ///             let mut cart = cart.unwrap_or_default();
    ///             cart.push("apple".to_owned());
    ///             cart
    ///         })
    ///         .await?;
    ///     auth.insert("last_added", "apple").await?;
    ///     auth.remove("flash").await?;
    ///     Ok(format!("{} items", cart.len()))
    /// }
    /// ```
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
    let mut updated = session.clone();
    Arc::make_mut(&mut updated.record).data = data;
    ctx.replace_session(updated.clone());
    Ok(updated)
}

/// Applies `changes` in the store and keeps the data it answers with as the request's session.
async fn apply(
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
async fn update<T, F>(
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
fn with_data(ctx: &RequestSession, session: &Session, data: SessionData) -> Session {
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
/// use session_core::axum::CurrentUser;
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

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let ctx = RequestSession::from_parts(parts)?;
        match ctx.session().await {
            Ok(Some(session)) => Ok(Self { ctx, session }),
            Ok(None) => Err(ctx.reject(Rejection::Unauthenticated, parts)),
            Err(rejection) => Err(ctx.reject(rejection, parts)),
        }
    }
}

impl CurrentUser {
    /// Stores `value` under `key` in the session's application data. Only this key is
    /// written: concurrent requests writing other keys keep theirs.
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
