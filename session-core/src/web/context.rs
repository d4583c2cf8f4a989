//! [`RequestSession`]: the per-request session state every adapter keeps in the request's
//! extensions: the store, the request's token and how it came (the cookie or the bearer header,
//! never both), the session loaded at most once (lazily, on the first extractor or guard that
//! needs it), and what the response must carry (the cookie change, caching, the challenge).
//!
//! The session loaded may be anonymous ([`NewSession::anonymous`](crate::NewSession::anonymous)):
//! [`RequestSession::session`] (what guards and `CurrentUser` see) never returns one; only
//! [`RequestSession::any_session`] (the `AuthSession` handle) does.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::error::{Error, UnavailableKind};
use crate::record::Session;
use crate::store::SessionStore;
use crate::token::{SessionKey, Token};
use crate::web::bearer::{Bearer, BearerConfig, CHALLENGE, CHALLENGE_INVALID_TOKEN};
use crate::web::cookie::{BoundCredential, CookieConfig};
#[cfg(feature = "dbsc")]
use crate::web::dbsc::DbscConfig;
use crate::web::rejection::Rejection;

/// What every request of one app shares: the store, the cookie's settings, and the bearer
/// header's when the app accepts one.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) cookie: CookieConfig,
    /// `None`: the cookie only (the default).
    pub(crate) bearer: Option<BearerConfig>,
    /// Device Bound Session Credentials: offered at login, with their endpoints answered by
    /// the adapters; `None`: off (the default).
    #[cfg(feature = "dbsc")]
    pub(crate) dbsc: Option<Arc<DbscConfig>>,
}

impl Shared {
    pub(crate) fn new(store: Arc<dyn SessionStore>, cookie: CookieConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            cookie,
            bearer: None,
            #[cfg(feature = "dbsc")]
            dbsc: None,
        })
    }

    /// The same, offering device binding (DBSC) with `config`.
    #[cfg(feature = "dbsc")]
    pub(crate) fn with_dbsc(&self, config: DbscConfig) -> Arc<Self> {
        Arc::new(Self {
            dbsc: Some(Arc::new(config)),
            ..self.clone()
        })
    }

    /// The same with another cookie.
    pub(crate) fn with_cookie(&self, cookie: CookieConfig) -> Arc<Self> {
        Arc::new(Self {
            cookie,
            ..self.clone()
        })
    }

    /// The same, also accepting the token in the bearer header.
    pub(crate) fn with_bearer(&self, bearer: BearerConfig) -> Arc<Self> {
        Arc::new(Self {
            bearer: Some(bearer),
            ..self.clone()
        })
    }

    /// The name of the header the adapters hand over (with the `Cookie` headers) to
    /// [`RequestSession::from_headers`], when the app accepts bearer tokens.
    pub(crate) fn bearer_header(&self) -> Option<&str> {
        self.bearer.as_ref().map(BearerConfig::header_name)
    }

    /// The request headers an answer depends on, for `Vary`: `Cookie`, and the bearer header.
    pub(crate) fn vary(&self) -> impl Iterator<Item = &str> {
        std::iter::once("Cookie").chain(self.bearer_header())
    }
}

/// How the request's token came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The session cookie.
    Cookie,
    /// The bearer header.
    Header,
}

/// What the response must carry, as the request core decides it; the adapters write it.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    /// A `Set-Cookie` value: the new session's cookie, or the one that drops it.
    pub(crate) set_cookie: Option<String>,
    /// `Cache-Control: no-store`: the answer is for one session, or hands out or ends one.
    pub(crate) no_store: bool,
    /// `WWW-Authenticate`, for a 401 on an app that accepts bearer tokens.
    pub(crate) challenge: Option<&'static str>,
    /// `Secure-Session-Registration`: the answer to a login asks the browser to bind the new
    /// session to a key (DBSC, when the app offers it).
    pub(crate) registration: Option<String>,
}

/// Per-request session state (cheap to clone: one shared allocation).
#[derive(Clone)]
pub(crate) struct RequestSession(Arc<Inner>);

struct Inner {
    shared: Arc<Shared>,
    /// The token the request carried, in its cookie or its bearer header; never changes.
    presented: Option<Token>,
    /// How `presented` came (`None` without a token).
    transport: Option<Transport>,
    /// The bound credential's cookie (DBSC), if the request carried one.
    bound: Option<BoundCredential>,
    /// The request had `Bearer` credentials that are no token (malformed, or two): a 401 then
    /// says `invalid_token`.
    bearer_malformed: bool,
    /// The session under `presented`, loaded once however many extractors ask at once (actix
    /// polls a handler's extractors together).
    initial: OnceCell<Loaded>,
    state: Mutex<State>,
}

struct State {
    /// Set once the handler logged in, rotated or logged out: that replaces the cookie's.
    changed: Option<(Option<Token>, Loaded)>,
    /// The client's token changed in this request: a new one, or none any more.
    token_change: Option<TokenChange>,
    /// The answer goes to a header client: no `Set-Cookie`; a new token is the handler's to
    /// hand over ([`RequestSession::issued_token`]). Set for a request that came by header,
    /// and by [`RequestSession::use_header_transport`].
    by_header: bool,
    /// The application's user, loaded for the session under this key (at most once).
    user: Option<(SessionKey, Arc<dyn Any + Send + Sync>)>,
}

#[derive(Clone)]
enum Loaded {
    /// A login or anonymous session. A `Session` is cheap to clone (its record is shared).
    Session(Session),
    /// A device-bound session (DBSC) presented without its current bound credential: no
    /// session for every guard and extractor; only the DBSC refresh endpoint sees it.
    Unproven(#[cfg_attr(not(feature = "dbsc"), allow(dead_code))] Session),
    None,
    Unavailable(UnavailableKind),
}

enum TokenChange {
    Set(Token),
    Expire,
}

impl RequestSession {
    /// The state of a request with these `Cookie` headers and, when the app accepts bearer
    /// tokens, these values of the bearer header ([`Shared::bearer_header`]), each the raw
    /// bytes of one header, in order. No store call.
    ///
    /// The token comes from the cookie ([`CookieConfig::token_from`]) or from the header
    /// ([`BearerConfig::token_from`]); a malformed one of either counts as none.
    ///
    /// # Errors
    /// [`Rejection::BadRequest`] (400) when both carry a token: which of them the client means
    /// is not for the server to guess (a planted cookie next to an app's header, or the
    /// reverse).
    pub(crate) fn from_headers<'a, 'b>(
        shared: Arc<Shared>,
        cookie_lines: impl IntoIterator<Item = &'a [u8]>,
        bearer_values: impl IntoIterator<Item = &'b [u8]>,
    ) -> Result<Self, Rejection> {
        let (cookie, bound) = shared.cookie.read(cookie_lines);
        let bearer = match &shared.bearer {
            Some(config) => config.token_from(bearer_values),
            None => Bearer::Absent,
        };
        let malformed = bearer == Bearer::Malformed;
        let (presented, transport) = match (cookie, bearer) {
            (Some(_), Bearer::Token(_)) => {
                tracing::info!(
                    target: "session_audit",
                    event = "two_tokens",
                    "request refused: a session cookie and a bearer token both"
                );
                return Err(Rejection::BadRequest(
                    "send the session token either in the cookie or in the bearer header, not \
                     both"
                        .to_owned(),
                ));
            }
            (Some(token), _) => (Some(token), Some(Transport::Cookie)),
            (None, Bearer::Token(token)) => (Some(token), Some(Transport::Header)),
            (None, _) => (None, None),
        };
        let bearer_malformed = presented.is_none() && malformed;
        // Without a token there is nothing to load: settle that now, without a store call.
        let initial = if presented.is_none() {
            OnceCell::new_with(Some(Loaded::None))
        } else {
            OnceCell::new()
        };
        Ok(Self(Arc::new(Inner {
            shared,
            presented,
            transport,
            bound,
            bearer_malformed,
            initial,
            state: Mutex::new(State {
                changed: None,
                token_change: None,
                by_header: transport == Some(Transport::Header),
                user: None,
            }),
        })))
    }

    /// Whether the CSRF policy applies: to every request but one authenticated by the bearer
    /// header. A browser adds the cookie to a request another site makes it send (ambient
    /// authority), never the header; and a request with the header carries no session cookie
    /// (both: refused by [`RequestSession::from_headers`]).
    pub(crate) fn csrf_applies(&self) -> bool {
        !self.came_by_header()
    }

    /// Whether the request's token came in the bearer header (not the cookie).
    pub(crate) fn came_by_header(&self) -> bool {
        self.0.transport == Some(Transport::Header)
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

    /// True when the request carried a well-formed token, in its cookie or its bearer header
    /// (live or not).
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
            Loaded::None | Loaded::Unproven(_) => Ok(None),
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
                    Ok(Some(session)) => match self.proven(session) {
                        // A credential that is not the one this server knows may be newer:
                        // a refresh on another server reaches a cached copy within the
                        // invalidation latency. Asked once more, a moment later (only on this
                        // path: a refusal, or that race).
                        Loaded::Unproven(_) if self.0.bound.is_some() => {
                            tokio::time::sleep(SECOND_LOOK).await;
                            match self.store().load(token).await {
                                Ok(Some(session)) => self.proven(session),
                                Ok(None) => Loaded::None,
                                Err(e) => unavailable(&e),
                            }
                        }
                        loaded => loaded,
                    },
                    Ok(None) => Loaded::None,
                    Err(e) => unavailable(&e),
                }
            })
            .await
            .clone();
        // A login or logout may have happened while this call waited.
        self.loaded_now().unwrap_or(loaded)
    }

    /// A loaded session as the request may use it: a device-bound one only with its current
    /// bound credential (else [`Loaded::Unproven`]).
    fn proven(&self, session: Session) -> Loaded {
        let Some(binding) = &session.record.device.binding else {
            return Loaded::Session(session);
        };
        let now = self.store().config().clock().now_ms();
        if binding.accepts(self.0.bound.as_ref().map(|b| &b[..]), now) {
            Loaded::Session(session)
        } else {
            tracing::debug!(
                session = %session.key().log_tag(),
                "device-bound session without its current credential: refresh needed"
            );
            Loaded::Unproven(session)
        }
    }

    /// The request's session for the DBSC endpoints: a device-bound one also without its
    /// current credential (that is what a refresh is for).
    #[cfg(feature = "dbsc")]
    pub(crate) async fn session_to_prove(&self) -> Result<Option<Session>, UnavailableKind> {
        match self.load().await {
            Loaded::Session(s) | Loaded::Unproven(s) => Ok(Some(s)),
            Loaded::None => Ok(None),
            Loaded::Unavailable(kind) => Err(kind),
        }
    }

    /// The app's DBSC settings, when it offers device binding.
    #[cfg(feature = "dbsc")]
    pub(crate) fn dbsc(&self) -> Option<&DbscConfig> {
        self.0.shared.dbsc.as_deref()
    }

    /// The session cookie's settings.
    #[cfg(feature = "dbsc")]
    pub(crate) fn cookie(&self) -> &CookieConfig {
        &self.0.shared.cookie
    }

    /// Records a new session for this request and the token that names it (the cookie's, or
    /// the handler's to hand to a header client).
    pub(crate) fn started(&self, token: Token, session: Session) -> Session {
        let mut state = self.state();
        state.changed = Some((Some(token.clone()), Loaded::Session(session.clone())));
        state.token_change = Some(TokenChange::Set(token));
        session
    }

    /// Records that the session ended and the cookie must be dropped.
    pub(crate) fn ended(&self) {
        let mut state = self.state();
        state.changed = Some((None, Loaded::None));
        state.token_change = Some(TokenChange::Expire);
    }

    /// Records that the browser must drop the cookie, whatever happens to the session (a logout
    /// the store could not carry out: the browser forgets the token all the same).
    pub(crate) fn expire_cookie(&self) {
        self.state().token_change = Some(TokenChange::Expire);
    }

    /// Answers this request as a header client's: no `Set-Cookie`, and a token issued in it is
    /// [`issued_token`](Self::issued_token)'s.
    ///
    /// # Errors
    /// [`Error::Config`] when the app accepts no bearer token (the client could never present
    /// the token it would get).
    pub(crate) fn use_header_transport(&self) -> Result<(), Error> {
        if self.0.shared.bearer.is_none() {
            return Err(Error::Config(
                "header transport asked for, but the session layer accepts no bearer token: add \
                 `.with_bearer(BearerConfig::default())` to SessionLayer / SessionMiddleware"
                    .to_owned(),
            ));
        }
        self.state().by_header = true;
        Ok(())
    }

    /// The token issued in this request (login, rotation, re-authentication, an anonymous
    /// session started) when the answer goes to a header client; `None` otherwise: a cookie
    /// client's token stays in its `HttpOnly` cookie, out of any body.
    pub(crate) fn issued_token(&self) -> Option<Token> {
        let state = self.state();
        match (&state.token_change, state.by_header) {
            (Some(TokenChange::Set(token)), true) => Some(token.clone()),
            _ => None,
        }
    }

    /// Records new data of the loaded session (after it was saved).
    pub(crate) fn replace_session(&self, session: Session) {
        let token = self.token();
        self.state().changed = Some((token, Loaded::Session(session)));
    }

    /// What the answer of `status` must carry: the cookie change (never for a header client),
    /// `no-store` (for a request that carried a token, and an answer that hands out or ends
    /// one), and, for a 401 on an app that accepts bearer tokens, the challenge: `invalid_token`
    /// when the request's bearer token named no live session (or was malformed). Takes the
    /// cookie change: call it once, on the way out.
    pub(crate) fn outgoing(&self, status: u16) -> Outgoing {
        let (change, by_header, registration) = {
            let mut state = self.state();
            let change = state.token_change.take();
            let registration = match (&change, &state.changed) {
                (Some(TokenChange::Set(_)), Some((_, Loaded::Session(s))))
                    if !state.by_header && status < 400 =>
                {
                    self.registration_for(s)
                }
                _ => None,
            };
            (change, state.by_header, registration)
        };
        let no_store = self.carries_session() || change.is_some();
        let set_cookie = match change {
            Some(_) if by_header => None,
            Some(change) => Some(self.set_cookie(change)),
            None => None,
        };
        let challenge = (status == 401 && self.0.shared.bearer.is_some()).then(|| {
            let dead_bearer = self.0.transport == Some(Transport::Header)
                && matches!(self.0.initial.get(), Some(Loaded::None));
            if dead_bearer || self.0.bearer_malformed {
                CHALLENGE_INVALID_TOKEN
            } else {
                CHALLENGE
            }
        });
        Outgoing {
            set_cookie,
            no_store,
            challenge,
            registration,
        }
    }

    /// The `Secure-Session-Registration` value offering device binding to the new session
    /// `session` (a cookie client's login of its own, not yet bound), when the app offers it.
    #[cfg(feature = "dbsc")]
    fn registration_for(&self, session: &Session) -> Option<String> {
        let config = self.dbsc()?;
        let offer = !session.is_anonymous()
            && !session.is_device_bound()
            && session.impersonated_by().is_none();
        if !offer {
            return None;
        }
        let now = self.store().config().clock().now_ms();
        match config.registration_header(now) {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(error = %e, "no device binding offered with this login");
                None
            }
        }
    }

    #[cfg(not(feature = "dbsc"))]
    fn registration_for(&self, _: &Session) -> Option<String> {
        None
    }

    fn set_cookie(&self, change: TokenChange) -> String {
        let cookie = &self.0.shared.cookie;
        match change {
            TokenChange::Set(token) => {
                // A remembered session's cookie lives until the session's deadline; any
                // other ends with the browser.
                let now = self.store().config().clock().now_ms();
                let max_age = token
                    .remembered()
                    .then(|| Duration::from_millis(token.deadline_ms().saturating_sub(now)));
                cookie.set(&token, max_age)
            }
            TokenChange::Expire => cookie.expire(),
        }
    }
}

/// How long a request whose bound credential is not the one its server knows waits before
/// asking the store once more (see [`RequestSession::load`]): above the invalidation latency of
/// a client-side cache (about a millisecond).
const SECOND_LOOK: Duration = Duration::from_millis(10);

/// A failed load: denied, with what went wrong.
fn unavailable(e: &Error) -> Loaded {
    tracing::warn!(error = %e, "session store unavailable; request denied");
    Loaded::Unavailable(match e {
        Error::Unavailable { kind, .. } => *kind,
        _ => UnavailableKind::Server,
    })
}

/// The session of a load, login or anonymous.
fn outcome(loaded: Loaded) -> Result<Option<Session>, Rejection> {
    match loaded {
        Loaded::Session(s) => Ok(Some(s)),
        Loaded::None | Loaded::Unproven(_) => Ok(None),
        Loaded::Unavailable(_) => Err(Rejection::StoreUnavailable),
    }
}

/// A login only: an anonymous session is none. The one place the request core tells them
/// apart; every guard and login extractor goes through it.
fn login_only(session: Result<Option<Session>, Rejection>) -> Result<Option<Session>, Rejection> {
    session.map(|s| s.filter(|s| !s.is_anonymous()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, NewSession, SessionConfig};

    fn shared(bearer: bool) -> Arc<Shared> {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(SessionConfig::default()));
        let shared = Shared::new(store, CookieConfig::default());
        if bearer {
            shared.with_bearer(BearerConfig::default())
        } else {
            shared
        }
    }

    fn token() -> Token {
        Token::issue(4_000_000_000_000, false).unwrap()
    }

    fn cookie(token: &Token) -> String {
        format!("__Host-session={}", token.as_cookie_value())
    }

    fn bearer(token: &Token) -> String {
        format!("Bearer {}", token.as_cookie_value())
    }

    fn request(
        shared: &Arc<Shared>,
        cookie: &str,
        bearer: &str,
    ) -> Result<RequestSession, Rejection> {
        let lines = [cookie.as_bytes()].into_iter().filter(|l| !l.is_empty());
        let values = [bearer.as_bytes()].into_iter().filter(|v| !v.is_empty());
        RequestSession::from_headers(Arc::clone(shared), lines, values)
    }

    #[test]
    fn a_cookie_and_a_bearer_token_together_are_a_bad_request() {
        let shared = shared(true);
        let (a, b) = (token(), token());
        for (c, h) in [(cookie(&a), bearer(&b)), (cookie(&a), bearer(&a))] {
            let refused = request(&shared, &c, &h).err();
            assert!(
                matches!(&refused, Some(Rejection::BadRequest(_))),
                "{refused:?}"
            );
            assert_eq!(refused.map(|r| r.status().as_u16()), Some(400));
        }
    }

    #[test]
    fn the_token_comes_from_whichever_carries_one() {
        let shared = shared(true);
        let (a, b) = (token(), token());
        let by_cookie = request(&shared, &cookie(&a), "").unwrap();
        assert_eq!(by_cookie.token(), Some(a.clone()));
        let by_header = request(&shared, "", &bearer(&b)).unwrap();
        assert_eq!(by_header.token(), Some(b.clone()));
        // A malformed one of either is none, so the other one stands alone.
        let bad_header = request(&shared, &cookie(&a), "Bearer garbage").unwrap();
        assert_eq!(bad_header.token(), Some(a));
        let bad_cookie = request(&shared, "__Host-session=garbage", &bearer(&b)).unwrap();
        assert_eq!(bad_cookie.token(), Some(b));
        let neither = request(&shared, "__Host-session=x", "bEaReR nope").unwrap();
        assert_eq!(neither.token(), None);
    }

    #[test]
    fn without_bearer_config_the_header_is_not_ours() {
        let shared = shared(false);
        let (a, b) = (token(), token());
        // Not a conflict: the header is ignored, the cookie is the token.
        let ctx = request(&shared, &cookie(&a), &bearer(&b)).unwrap();
        assert_eq!(ctx.token(), Some(a));
        let ctx = request(&shared, "", &bearer(&b)).unwrap();
        assert_eq!(ctx.token(), None);
        assert!(ctx.csrf_applies());
        assert_eq!(ctx.outgoing(401).challenge, None);
    }

    #[test]
    fn csrf_is_skipped_only_for_a_request_authenticated_by_the_header() {
        let shared = shared(true);
        let t = token();
        assert!(!request(&shared, "", &bearer(&t)).unwrap().csrf_applies());
        assert!(request(&shared, &cookie(&t), "").unwrap().csrf_applies());
        assert!(request(&shared, "", "").unwrap().csrf_applies());
        // A malformed bearer value is no token: the request carries neither.
        assert!(request(&shared, "", "Bearer garbage")
            .unwrap()
            .csrf_applies());
        assert!(request(&shared, "", "Basic dXNlcjpwYXNz")
            .unwrap()
            .csrf_applies());
    }

    #[tokio::test]
    async fn a_header_client_gets_its_new_token_and_never_a_cookie() {
        let shared = shared(true);
        let (old, _) = shared.store.create(NewSession::new("ann")).await.unwrap();
        let ctx = request(&shared, "", &bearer(&old)).unwrap();
        assert!(ctx.session().await.unwrap().is_some());
        let new = shared.store.rotate(&old).await.unwrap();
        let session = ctx.session().await.unwrap().unwrap();
        ctx.started(new.clone(), session);
        assert_eq!(ctx.issued_token(), Some(new));
        let out = ctx.outgoing(200);
        assert_eq!(out.set_cookie, None);
        assert!(out.no_store);
        // Logout: no cookie to expire either.
        ctx.ended();
        assert_eq!(ctx.issued_token(), None);
        assert_eq!(ctx.outgoing(204).set_cookie, None);
    }

    #[tokio::test]
    async fn a_cookie_client_gets_a_cookie_and_no_token_unless_it_asks_for_the_header() {
        let shared = shared(true);
        let (token, session) = shared.store.create(NewSession::new("ann")).await.unwrap();
        let ctx = request(&shared, "", "").unwrap();
        ctx.started(token.clone(), session.clone());
        assert_eq!(ctx.issued_token(), None);
        let set = ctx.outgoing(200).set_cookie.unwrap();
        assert!(set.starts_with("__Host-session="), "{set}");

        let ctx = request(&shared, "", "").unwrap();
        ctx.use_header_transport().unwrap();
        ctx.started(token.clone(), session);
        assert_eq!(ctx.issued_token(), Some(token));
        let out = ctx.outgoing(200);
        assert_eq!(out.set_cookie, None);
        assert!(
            out.no_store,
            "an answer that hands out a token is never cached"
        );

        let cookie_only = self::shared(false);
        let ctx = request(&cookie_only, "", "").unwrap();
        assert!(matches!(ctx.use_header_transport(), Err(Error::Config(_))));
    }

    #[tokio::test]
    async fn a_401_challenges_and_says_invalid_token_for_a_dead_bearer_token() {
        let shared = shared(true);
        let dead = request(&shared, "", &bearer(&token())).unwrap();
        assert!(dead.session().await.unwrap().is_none());
        assert_eq!(
            dead.outgoing(401).challenge,
            Some(r#"Bearer error="invalid_token""#)
        );
        let malformed = request(&shared, "", "Bearer garbage").unwrap();
        assert_eq!(
            malformed.outgoing(401).challenge,
            Some(r#"Bearer error="invalid_token""#)
        );
        let none = request(&shared, "", "").unwrap();
        assert_eq!(none.outgoing(401).challenge, Some("Bearer"));
        let dead_cookie = request(&shared, &cookie(&token()), "").unwrap();
        assert!(dead_cookie.session().await.unwrap().is_none());
        assert_eq!(dead_cookie.outgoing(401).challenge, Some("Bearer"));
        // Only a 401 challenges.
        let dead = request(&shared, "", &bearer(&token())).unwrap();
        assert_eq!(dead.outgoing(403).challenge, None);
    }
}
