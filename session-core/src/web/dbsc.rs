//! Device Bound Session Credentials in the request core (feature `dbsc`): [`DbscConfig`], the
//! registration offered with a login's answer, and the two endpoints the adapters answer
//! themselves (registration and refresh), on top of the protocol layer ([`crate::dbsc`]) and
//! the binding a session record keeps (`binding.rs`).
//!
//! - **Login**: the answer carries `Secure-Session-Registration` with a fresh challenge.
//! - **Registration** (`POST` the registration path, with the session cookie and the proof):
//!   the proof's key is kept in the session's record, a first bound credential (a cookie that
//!   lasts [`DbscConfig::with_cookie_lifetime`]) is set, and the session instructions
//!   answered. A session is bound once: a second registration is refused.
//! - **Refresh** (`POST` the refresh path): without a proof, 403 and a challenge; with a proof
//!   by the session's key over a fresh challenge of this session, not used before, a new
//!   credential. One store write per refresh (the compare-and-set of
//!   [`SessionStore::bind_device`](crate::SessionStore::bind_device)); issuing a challenge
//!   costs none.
//! - **Every other request** of a bound session counts only with its current credential
//!   (`context.rs`): without it, the session is no session (401) until a refresh succeeds.

use std::time::Duration;

use crate::binding::{registration_challenge, registration_challenge_is_fresh, DeviceBinding};
use crate::dbsc::{self, BoundKey, Challenge, Credential, DbscError, Scope, SessionInstructions};
use crate::logging::log_safe;
use crate::record::{duration_ms, Session};
use crate::web::context::RequestSession;
use crate::web::rejection::Rejection;

/// Device Bound Session Credentials for an app (`SessionLayer::with_dbsc`,
/// `SessionMiddleware::with_dbsc`): where the browser registers and refreshes, and how long
/// a bound credential lasts.
///
/// ```
/// use std::time::Duration;
/// use session_core::web::DbscConfig;
///
/// let dbsc = DbscConfig::default()
///     .with_paths("/auth/dbsc/register", "/auth/dbsc/refresh")
///     .with_cookie_lifetime(Duration::from_secs(300));
/// assert_eq!(dbsc.refresh_path(), "/auth/dbsc/refresh");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbscConfig {
    registration_path: String,
    refresh_path: String,
    cookie_lifetime: Duration,
}

impl Default for DbscConfig {
    /// `/dbsc/register`, `/dbsc/refresh`, and a bound credential of 10 minutes.
    fn default() -> Self {
        Self {
            registration_path: "/dbsc/register".to_owned(),
            refresh_path: "/dbsc/refresh".to_owned(),
            cookie_lifetime: Duration::from_secs(600),
        }
    }
}

/// Which endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Register,
    Refresh,
}

/// What a DBSC endpoint answers: a JSON body (200) or a refusal, and headers to add.
pub(crate) struct Reply {
    pub(crate) outcome: Result<String, Rejection>,
    /// `(name, value)`: `Set-Cookie` of the bound credential, `Secure-Session-Challenge`.
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(instructions: &SessionInstructions) -> Self {
        Self {
            outcome: serde_json::to_string(instructions).map_err(|_| Rejection::Internal),
            headers: Vec::new(),
        }
    }

    fn refused(rejection: Rejection) -> Self {
        Self {
            outcome: Err(rejection),
            headers: Vec::new(),
        }
    }
}

impl DbscConfig {
    /// The paths of the registration and refresh endpoints (default `/dbsc/register` and
    /// `/dbsc/refresh`). The session layer answers `POST`s to them itself: no route to add.
    #[must_use]
    pub fn with_paths(
        mut self,
        registration: impl Into<String>,
        refresh: impl Into<String>,
    ) -> Self {
        self.registration_path = registration.into();
        self.refresh_path = refresh.into();
        self
    }

    /// How long a bound credential lasts (default 10 minutes, at least a second): how long a
    /// copied cookie keeps working at most, and how often the browser signs a refresh.
    #[must_use]
    pub fn with_cookie_lifetime(mut self, lifetime: Duration) -> Self {
        self.cookie_lifetime = lifetime.max(Duration::from_secs(1));
        self
    }

    /// The registration endpoint's path.
    pub fn registration_path(&self) -> &str {
        &self.registration_path
    }

    /// The refresh endpoint's path.
    pub fn refresh_path(&self) -> &str {
        &self.refresh_path
    }

    /// How long a bound credential lasts.
    pub fn cookie_lifetime(&self) -> Duration {
        self.cookie_lifetime
    }

    /// The endpoint a request of `method` to `path` is for, if any.
    pub(crate) fn endpoint(&self, method: &str, path: &str) -> Option<Endpoint> {
        if method != "POST" {
            return None;
        }
        if path == self.registration_path {
            Some(Endpoint::Register)
        } else if path == self.refresh_path {
            Some(Endpoint::Refresh)
        } else {
            None
        }
    }

    /// The `Secure-Session-Registration` value for a login answered at `now`.
    pub(crate) fn registration_header(&self, now: u64) -> crate::Result<String> {
        let challenge = Challenge::from_issued(registration_challenge(now)?);
        let value = dbsc::registration_header(&self.registration_path, &challenge)
            .map_err(|e| crate::Error::Config(format!("DBSC registration path: {e}")))?;
        Ok(value.to_str().unwrap_or_default().to_owned())
    }
}

/// Answers a request to a DBSC endpoint. `header` gives a request header's value by
/// (lower-case) name, `None` when absent or given more than once.
pub(crate) async fn answer<'h>(
    endpoint: Endpoint,
    ctx: &RequestSession,
    header: impl Fn(&str) -> Option<&'h [u8]>,
) -> Reply {
    let Some(config) = ctx.dbsc() else {
        return Reply::refused(Rejection::Internal);
    };
    let session = match ctx.session_to_prove().await {
        Ok(session) => session.filter(|s| !s.is_anonymous()),
        Err(_) => return Reply::refused(Rejection::StoreUnavailable),
    };
    let proof = header("secure-session-response").map(dbsc::parse_response_header);
    let proof = match proof.transpose() {
        Ok(proof) => proof,
        Err(e) => return Reply::refused(Rejection::BadRequest(e.to_string())),
    };
    match endpoint {
        Endpoint::Register => register(config, ctx, session, proof).await,
        Endpoint::Refresh => {
            let id = header("sec-secure-session-id").map(dbsc::parse_session_id_header);
            match id.transpose() {
                Ok(id) => refresh(config, ctx, session, id, proof).await,
                Err(e) => Reply::refused(Rejection::BadRequest(e.to_string())),
            }
        }
    }
}

async fn register(
    config: &DbscConfig,
    ctx: &RequestSession,
    session: Option<Session>,
    proof: Option<String>,
) -> Reply {
    let Some(session) = session else {
        return Reply::refused(Rejection::UNAUTHENTICATED);
    };
    if ctx.came_by_header() {
        // A bearer client sends no cookies: bound, it could never present the credential.
        return Reply::refused(Rejection::BadRequest(
            "device binding is for a browser's cookie session, not a bearer token".to_owned(),
        ));
    }
    if session.is_device_bound() || session.impersonated_by().is_some() {
        return Reply::refused(Rejection::Forbidden {
            requirement: "a session that is not bound to a device yet".to_owned(),
        });
    }
    let Some(proof) = proof else {
        return Reply::refused(Rejection::BadRequest(
            "send the registration proof in Secure-Session-Response".to_owned(),
        ));
    };
    let now = ctx.store().config().clock().now_ms();
    let key = match dbsc::verify_registration_with(&proof, |jti| {
        registration_challenge_is_fresh(jti, now)
    }) {
        Ok(key) => key,
        Err(e) => return refused_proof(&session, "registration", &e, None),
    };
    let issued = match DeviceBinding::register(key.to_bytes(), now, lifetime_ms(config)) {
        Ok(issued) => issued,
        Err(e) => return Reply::refused(Rejection::from(&e)),
    };
    bind(config, ctx, &session, &key, issued, "registered").await
}

async fn refresh(
    config: &DbscConfig,
    ctx: &RequestSession,
    session: Option<Session>,
    id: Option<String>,
    proof: Option<String>,
) -> Reply {
    // A session that ended, or a DBSC session the browser keeps for a session this one is not
    // (a new login since): the browser is told to drop it.
    let bound = session.and_then(|s| {
        let binding = s.record.device.binding.clone()?;
        let key = BoundKey::from_bytes(&binding.key).ok()?;
        Some((s, binding, key))
    });
    let Some((session, binding, key)) = bound else {
        return Reply::json(&SessionInstructions::terminate());
    };
    let thumbprint = key.thumbprint();
    if id.as_deref().is_some_and(|id| id != thumbprint) {
        return Reply::json(&SessionInstructions::terminate());
    }
    let now = ctx.store().config().clock().now_ms();
    let Some(proof) = proof else {
        return challenge(
            &binding,
            &thumbprint,
            now,
            Rejection::Forbidden {
                requirement: "a proof signed by the session's device key".to_owned(),
            },
        );
    };
    let mut issued_ms = None;
    if let Err(e) = dbsc::verify_refresh_with(&proof, &key, |jti| {
        issued_ms = binding.check_challenge(jti, now);
        issued_ms.is_some()
    }) {
        return refused_proof(&session, "refresh", &e, Some((&binding, &thumbprint, now)));
    }
    let Some(issued_ms) = issued_ms else {
        return Reply::refused(Rejection::Internal);
    };
    let issued = match binding.refreshed(issued_ms, now, lifetime_ms(config)) {
        Ok(issued) => issued,
        Err(e) => return Reply::refused(Rejection::from(&e)),
    };
    bind(config, ctx, &session, &key, issued, "refreshed").await
}

/// Stores the new binding (compare-and-set) and answers with the instructions and the new
/// credential's cookie.
async fn bind(
    config: &DbscConfig,
    ctx: &RequestSession,
    session: &Session,
    key: &BoundKey,
    issued: crate::binding::Issued,
    event: &'static str,
) -> Reply {
    let Some(token) = ctx.token() else {
        return Reply::refused(Rejection::UNAUTHENTICATED);
    };
    match ctx
        .store()
        .bind_device(&token, session, &issued.binding)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Reply::refused(Rejection::Conflict(
                "the session changed meanwhile (another refresh, or it ended): retry".to_owned(),
            ))
        }
        Err(e) => return Reply::refused(Rejection::from(&e)),
    }
    tracing::info!(
        target: "session_audit",
        event = event,
        user = %log_safe(session.user_id()),
        session = %session.key().log_tag(),
        "device-bound session {event}"
    );
    let cookie = ctx.cookie();
    let instructions = SessionInstructions::new(
        key.thumbprint(),
        Scope::answering_origin(),
        vec![Credential::cookie(
            cookie.bound_name(),
            cookie.bound_attributes(),
        )],
    )
    .with_refresh_url(config.refresh_path.clone());
    let mut reply = Reply::json(&instructions);
    reply.headers.push((
        "set-cookie",
        cookie.set_bound(&issued.credential, config.cookie_lifetime),
    ));
    reply
}

/// 403 with a new challenge for the session's next proof.
fn challenge(binding: &DeviceBinding, id: &str, now: u64, rejection: Rejection) -> Reply {
    let mut reply = Reply::refused(rejection);
    match binding
        .challenge(now)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            dbsc::challenge_header(&Challenge::from_issued(c), id).map_err(|e| e.to_string())
        }) {
        Ok(value) => reply.headers.push((
            "secure-session-challenge",
            value.to_str().unwrap_or_default().to_owned(),
        )),
        Err(e) => tracing::error!(error = %e, "no DBSC challenge could be made"),
    }
    reply
}

/// A proof refused: audit-logged (what failed, never the proof), 403; a refresh gets a new
/// challenge, so a browser whose challenge went stale can retry at once.
fn refused_proof(
    session: &Session,
    flow: &'static str,
    error: &DbscError,
    retry: Option<(&DeviceBinding, &str, u64)>,
) -> Reply {
    tracing::warn!(
        target: "session_audit",
        event = "dbsc_proof_refused",
        flow = flow,
        user = %log_safe(session.user_id()),
        session = %session.key().log_tag(),
        error = %error,
        "device-binding proof refused"
    );
    let rejection = Rejection::Forbidden {
        requirement: format!("a valid device-binding proof ({error})"),
    };
    match retry {
        Some((binding, id, now)) => challenge(binding, id, now, rejection),
        None => Reply::refused(rejection),
    }
}

fn lifetime_ms(config: &DbscConfig) -> u64 {
    duration_ms(config.cookie_lifetime)
}
