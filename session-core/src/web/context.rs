//! [`RequestSession`]: the per-request session state every adapter keeps in the request's
//! extensions: the store, the cookie's token, the session loaded at most once (lazily, on the
//! first extractor or guard that needs it), and the cookie change the response must carry.
//!
//! The session loaded may be anonymous ([`NewSession::anonymous`](crate::NewSession::anonymous)):
//! [`RequestSession::session`] (what guards and `CurrentUser` see) never returns one; only
//! [`RequestSession::any_session`] (the `AuthSession` handle) does.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::error::UnavailableKind;
use crate::record::Session;
use crate::store::SessionStore;
use crate::token::{SessionKey, Token};
use crate::web::cookie::CookieConfig;
use crate::web::rejection::Rejection;

/// What every request of one app shares: the store and the cookie's settings.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) cookie: CookieConfig,
}

impl Shared {
    pub(crate) fn new(store: Arc<dyn SessionStore>, cookie: CookieConfig) -> Arc<Self> {
        Arc::new(Self { store, cookie })
    }

    /// The same with another cookie.
    pub(crate) fn with_cookie(&self, cookie: CookieConfig) -> Arc<Self> {
        Arc::new(Self {
            cookie,
            ..self.clone()
        })
    }
}

/// Per-request session state (cheap to clone: one shared allocation).
#[derive(Clone)]
pub(crate) struct RequestSession(Arc<Inner>);

struct Inner {
    shared: Arc<Shared>,
    /// The token of the request's cookie; never changes.
    presented: Option<Token>,
    /// The session under `presented`, loaded once however many extractors ask at once (actix
    /// polls a handler's extractors together).
    initial: OnceCell<Loaded>,
    state: Mutex<State>,
}

struct State {
    /// Set once the handler logged in, rotated or logged out: that replaces the cookie's.
    changed: Option<(Option<Token>, Loaded)>,
    cookie: Option<CookieChange>,
    /// The application's user, loaded for the session under this key (at most once).
    user: Option<(SessionKey, Arc<dyn Any + Send + Sync>)>,
}

#[derive(Clone)]
enum Loaded {
    /// A login or anonymous session. A `Session` is cheap to clone (its record is shared).
    Session(Session),
    None,
    Unavailable(UnavailableKind),
}

enum CookieChange {
    Set(Token),
    Expire,
}

impl RequestSession {
    /// The state of a request whose cookie carried `token` (see [`CookieConfig::token_from`]).
    pub(crate) fn new(shared: Arc<Shared>, token: Option<Token>) -> Self {
        // Without a token there is nothing to load: settle that now, without a store call.
        let initial = if token.is_none() {
            OnceCell::new_with(Some(Loaded::None))
        } else {
            OnceCell::new()
        };
        Self(Arc::new(Inner {
            shared,
            presented: token,
            initial,
            state: Mutex::new(State {
                changed: None,
                cookie: None,
                user: None,
            }),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn store(&self) -> &Arc<dyn SessionStore> {
        &self.0.shared.store
    }

    /// The application's user already loaded for the session under `key`, if it is a `U`.
    pub(crate) fn cached_user<U: Clone + 'static>(&self, key: SessionKey) -> Option<U> {
        let state = self.state();
        let (cached_for, user) = state.user.as_ref()?;
        (*cached_for == key)
            .then(|| user.downcast_ref::<U>().cloned())
            .flatten()
    }

    /// Keeps the application's user of the session under `key` for the rest of the request.
    pub(crate) fn cache_user<U: Send + Sync + 'static>(&self, key: SessionKey, user: U) {
        self.state().user = Some((key, Arc::new(user)));
    }

    /// The token the request's session goes by now (after a login or rotation: the new one).
    pub(crate) fn token(&self) -> Option<Token> {
        match &self.state().changed {
            Some((token, _)) => token.clone(),
            None => self.0.presented.clone(),
        }
    }

    /// True when the request carried a well-formed session cookie (live or not).
    pub(crate) fn carries_session(&self) -> bool {
        self.0.presented.is_some()
    }

    /// The outcome of the login session's load when it is known without waiting (no cookie,
    /// already loaded, or changed by the handler); `None` when a store call is needed. An
    /// anonymous session is no login: `Ok(None)`.
    pub(crate) fn session_now(&self) -> Option<Result<Option<Session>, Rejection>> {
        self.loaded_now().map(outcome).map(login_only)
    }

    fn loaded_now(&self) -> Option<Loaded> {
        if let Some((_, loaded)) = &self.state().changed {
            return Some(loaded.clone());
        }
        self.0.initial.get().cloned()
    }

    /// The request's login session, loaded from the store on the first call only (an
    /// anonymous session is none).
    pub(crate) async fn session(&self) -> Result<Option<Session>, Rejection> {
        login_only(self.loaded().await)
    }

    /// The 401 for a request without a login session: with why the session its cookie named
    /// ended, when it names one the store found ended (one more store call, on this path
    /// only). Nothing is said for an anonymous session, a token past which a login or logout
    /// happened in this request, or when the store cannot tell (the 401 stands).
    pub(crate) async fn unauthenticated(&self) -> Rejection {
        let unknown =
            self.state().changed.is_none() && matches!(self.0.initial.get(), Some(Loaded::None));
        let (Some(token), true) = (&self.0.presented, unknown) else {
            return Rejection::UNAUTHENTICATED;
        };
        let reason = match self.store().end_reason(token).await {
            Ok(reason) => reason,
            Err(e) => {
                tracing::debug!(error = %e, "why the session ended is not known");
                None
            }
        };
        Rejection::Unauthenticated { reason }
    }

    /// The request's session, login or anonymous, loaded from the store on the first call
    /// only; `Err` with what went wrong when the store could not be reached.
    pub(crate) async fn any_session(&self) -> Result<Option<Session>, UnavailableKind> {
        match self.load().await {
            Loaded::Session(s) => Ok(Some(s)),
            Loaded::None => Ok(None),
            Loaded::Unavailable(kind) => Err(kind),
        }
    }

    async fn loaded(&self) -> Result<Option<Session>, Rejection> {
        outcome(self.load().await)
    }

    async fn load(&self) -> Loaded {
        if let Some(now) = self.loaded_now() {
            return now;
        }
        let loaded = self
            .0
            .initial
            .get_or_init(|| async {
                let Some(token) = &self.0.presented else {
                    return Loaded::None;
                };
                match self.store().load(token).await {
                    Ok(Some(session)) => Loaded::Session(session),
                    Ok(None) => Loaded::None,
                    Err(e) => {
                        tracing::warn!(error = %e, "session store unavailable; request denied");
                        Loaded::Unavailable(match e {
                            crate::Error::Unavailable { kind, .. } => kind,
                            _ => UnavailableKind::Server,
                        })
                    }
                }
            })
            .await
            .clone();
        // A login or logout may have happened while this call waited.
        self.loaded_now().unwrap_or(loaded)
    }

    /// Records a new session for this request and the cookie that carries it.
    pub(crate) fn started(&self, token: Token, session: Session) -> Session {
        let mut state = self.state();
        state.changed = Some((Some(token.clone()), Loaded::Session(session.clone())));
        state.cookie = Some(CookieChange::Set(token));
        session
    }

    /// Records that the session ended and the cookie must be dropped.
    pub(crate) fn ended(&self) {
        let mut state = self.state();
        state.changed = Some((None, Loaded::None));
        state.cookie = Some(CookieChange::Expire);
    }

    /// Records that the browser must drop the cookie, whatever happens to the session (a logout
    /// the store could not carry out: the browser forgets the token all the same).
    pub(crate) fn expire_cookie(&self) {
        self.state().cookie = Some(CookieChange::Expire);
    }

    /// Records new data of the loaded session (after it was saved).
    pub(crate) fn replace_session(&self, session: Session) {
        let token = self.token();
        self.state().changed = Some((token, Loaded::Session(session)));
    }

    /// The `Set-Cookie` value the response must carry, if the cookie changes.
    pub(crate) fn take_cookie_header(&self) -> Option<String> {
        let change = self.state().cookie.take()?;
        let cookie = &self.0.shared.cookie;
        Some(match change {
            CookieChange::Set(token) => {
                // A remembered session's cookie lives until the session's deadline; any
                // other ends with the browser.
                let now = self.store().config().clock().now_ms();
                let max_age = token
                    .remembered()
                    .then(|| Duration::from_millis(token.deadline_ms().saturating_sub(now)));
                cookie.set(&token, max_age)
            }
            CookieChange::Expire => cookie.expire(),
        })
    }
}

/// The session of a load, login or anonymous.
fn outcome(loaded: Loaded) -> Result<Option<Session>, Rejection> {
    match loaded {
        Loaded::Session(s) => Ok(Some(s)),
        Loaded::None => Ok(None),
        Loaded::Unavailable(_) => Err(Rejection::StoreUnavailable),
    }
}

/// A login only: an anonymous session is none. The one place the request core tells them
/// apart; every guard and login extractor goes through it.
fn login_only(session: Result<Option<Session>, Rejection>) -> Result<Option<Session>, Rejection> {
    session.map(|s| s.filter(|s| !s.is_anonymous()))
}
