//! [`Visitor`]: the session of whoever sent the request, logged in or not, for data kept before
//! login (a cart, a flash message). Its first write creates an anonymous session.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::changes::{DataChanges, DataUpdate};
use crate::error::{Error, Result};
use crate::record::{NewSession, Session, SessionData};
use crate::web::context::RequestSession;
use crate::web::extract::{apply, update, with_data};
use crate::web::rejection::Rejection;

/// How often [`Visitor::take`] tries when other requests keep changing the key meanwhile.
const TAKE_ATTEMPTS: u32 = 8;

/// The session of whoever sent the request: the login session of a logged-in user, else the
/// visitor's **anonymous session** ([`NewSession::anonymous`]), else none yet. For what a
/// visitor keeps before logging in: a cart, a flash message, a language.
///
/// - **Created lazily, on the first write**, never for a read: a visitor who only reads costs
///   no session, no store write and no cookie. The first [`insert`](Visitor::insert) or
///   [`update`](Visitor::update) creates an anonymous session and the response sets its
///   cookie (the same cookie a login uses).
/// - **Never a login**: guards, [`CurrentUser`](crate::web::CurrentUser) and
///   [`AuthSession::session`](crate::web::AuthSession::session) treat an anonymous session as
///   "not logged in" (401).
/// - **Ended at login** with a new token ([`AuthSession::login`](crate::web::AuthSession::login));
///   the login carries over only the keys the application takes from
///   [`AuthSession::anonymous`](crate::web::AuthSession::anonymous).
///
/// Writes are per key, as with [`CurrentUser::insert`](crate::web::CurrentUser::insert):
/// concurrent requests writing other keys keep theirs. Two first writes of one browser racing
/// each other (no cookie yet) create two sessions, of which the browser keeps the one whose
/// cookie arrives last.
///
/// Extracting it costs one store call when the request has a session cookie (none otherwise) and
/// is refused only when the store is unavailable (503).
///
/// ```
/// use session_core::web::Visitor;
/// use session_core::Error;
///
/// async fn add_to_cart(mut visitor: Visitor) -> Result<String, Error> {
///     let cart = visitor
///         .update("cart", |cart: Option<Vec<String>>| {
///             let mut cart = cart.unwrap_or_default();
///             cart.push("apple".to_owned());
///             cart
///         })
///         .await?;
///     Ok(format!("{} items", cart.len()))
/// }
///
/// async fn show_flash(mut visitor: Visitor) -> Result<String, Error> {
///     // Shown once: read and removed in one step.
///     Ok(visitor.take::<String>("flash").await?.unwrap_or_default())
/// }
/// ```
pub struct Visitor {
    ctx: RequestSession,
    session: Option<Session>,
}

impl std::fmt::Debug for Visitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visitor")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Visitor {
    /// The extractor over the request's state; refused only when the store is unavailable.
    pub(crate) async fn from_context(ctx: RequestSession) -> Result<Self, Rejection> {
        let session = ctx.visitor_session().await?;
        Ok(Self { ctx, session })
    }

    /// The request's session, login or anonymous; `None` before the visitor's first write.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// True when the request's session is a login (not anonymous, not none).
    pub fn is_logged_in(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.is_anonymous())
    }

    /// Reads `key` from the session's data; `Ok(None)` when absent or when there is no session.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the stored value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match &self.session {
            Some(session) => session.data().get(key),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`; the first write creates an anonymous session. Only this key
    /// is written.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the session ended meanwhile; [`Error::InvalidInput`] for a value
    /// that is not JSON-representable or too large; [`Error::Unavailable`].
    pub async fn insert<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        if self.session.is_none() {
            let mut data = SessionData::new();
            data.insert(key, value)?;
            return self.start(data).await;
        }
        let mut changes = DataChanges::new();
        changes.set(key, value)?;
        self.session = Some(apply(&self.ctx, self.session.as_ref(), &changes).await?);
        Ok(())
    }

    /// Atomic read-modify-write of one key, as
    /// [`AuthSession::update`](crate::web::AuthSession::update); without a session, `f` gets
    /// `None` and its value starts an anonymous session. Returns the value stored.
    ///
    /// # Errors
    /// As [`AuthSession::update`](crate::web::AuthSession::update).
    pub async fn update<T, F>(&mut self, key: &str, mut f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        if self.session.is_none() {
            let value = f(None);
            let mut data = SessionData::new();
            data.insert(key, &value)?;
            self.start(data).await?;
            return Ok(value);
        }
        let (value, session) = update(&self.ctx, self.session.as_ref(), key, f).await?;
        self.session = Some(session);
        Ok(value)
    }

    /// Removes `key`. Without a session, or when the key is absent, nothing is written.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the session ended meanwhile; [`Error::Unavailable`].
    pub async fn remove(&mut self, key: &str) -> Result<()> {
        if self
            .session
            .as_ref()
            .is_none_or(|s| s.data().value(key).is_none())
        {
            return Ok(());
        }
        let mut changes = DataChanges::new();
        changes.remove(key);
        self.session = Some(apply(&self.ctx, self.session.as_ref(), &changes).await?);
        Ok(())
    }

    /// Reads and removes `key` in one atomic step (a flash message: shown once, even when two
    /// requests of the visitor race for it). `Ok(None)`, and no write, when it is absent.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the stored value is not a `T`; [`Error::Contended`] when
    /// other requests changed the key during every try; [`Error::NotFound`] when the session
    /// ended meanwhile; [`Error::Unavailable`].
    pub async fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>> {
        take_from(&self.ctx, &mut self.session, key).await
    }

    /// Starts the visitor's anonymous session with `data`; the response sets its cookie.
    async fn start(&mut self, data: SessionData) -> Result<()> {
        let (token, session) = self
            .ctx
            .store()
            .create(NewSession::anonymous().with_data(data))
            .await?;
        tracing::debug!(
            session = %session.key().log_tag(),
            "anonymous session started"
        );
        self.session = Some(self.ctx.started(token, session));
        Ok(())
    }
}

/// [`take`] on the request's session, if it has one (`Ok(None)` and no store call if not),
/// keeping the session as now stored in `slot`.
pub(super) async fn take_from<T: DeserializeOwned>(
    ctx: &RequestSession,
    slot: &mut Option<Session>,
    key: &str,
) -> Result<Option<T>> {
    let Some(session) = slot.as_ref() else {
        return Ok(None);
    };
    let (value, session) = take(ctx, session, key).await?;
    *slot = Some(session);
    Ok(value)
}

/// Reads and removes `key` of the request's `session` in one atomic step (an expectation on
/// the value read, retried on conflicts); no write when the key is absent. Returns the value
/// and the session as now stored.
pub(super) async fn take<T: DeserializeOwned>(
    ctx: &RequestSession,
    session: &Session,
    key: &str,
) -> Result<(Option<T>, Session)> {
    let token = ctx.token().ok_or(Error::NotFound)?;
    let mut current = session.data().value(key).cloned();
    for _ in 0..TAKE_ATTEMPTS {
        let Some(value) = current else {
            return Ok((None, session.clone()));
        };
        let mut changes = DataChanges::new();
        changes.expect_json(key, Some(value.clone())).remove(key);
        match ctx.store().update_data(&token, &changes).await? {
            DataUpdate::Applied(data) => {
                let session = with_data(ctx, session, data);
                let value = T::deserialize(value)
                    .map_err(|e| Error::InvalidInput(format!("session data {key:?}: {e}")))?;
                return Ok((Some(value), session));
            }
            DataUpdate::Conflict(data) => current = data.value(key).cloned(),
        }
    }
    Err(Error::Contended {
        key: key.to_owned(),
        attempts: TAKE_ATTEMPTS,
    })
}
