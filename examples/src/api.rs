//! What each route of the demo does, once for both binaries: the framework-neutral part of
//! every handler. The axum handlers ([`crate::routes`]) and the actix-web handlers
//! (`crate::actix_app`, feature `actix`) only extract their inputs, call these, and write the
//! answer; the guards (`#[login_required]`, `#[has_role("ADMIN")]`) sit on those thin handlers.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{json, Value};
use session_core::logging::log_safe;
use session_core::prelude::*;
use session_core::web::{AuthSession, CurrentUser};
use session_core::{HistoryEntry, LoginEvent, SessionHandle};

use crate::accounts::{Account, ADMIN};
use crate::errors::ApiError;
use crate::AppState;

/// Who sent a request, as far as a login history records it: the client's address and its
/// `User-Agent` (the history keeps the network, the browser and the system, not these).
#[derive(Debug, Clone, Default)]
pub struct Requester {
    /// The client's address ([`crate::routes::ClientAddr`]).
    pub client: Option<IpAddr>,
    /// The request's `User-Agent`.
    pub user_agent: Option<String>,
}

impl Requester {
    /// A history entry of `event` for this requester.
    pub fn entry(&self, event: LoginEvent) -> HistoryEntry {
        let mut entry = HistoryEntry::new(event);
        if let Some(ua) = &self.user_agent {
            entry = entry.with_user_agent(ua);
        }
        if let Some(ip) = self.client {
            entry = entry.with_client_ip(ip);
        }
        entry
    }
}

/// `{"username", "password"}` of `/register`.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

/// `{"username", "password", "remember"?, "transport"?}` of `/login`: `remember` (default
/// false) asks for a session that outlives the browser (`SESSION_REMEMBER_*_SECS`),
/// `transport` how the client will carry the token.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    remember: bool,
    #[serde(default)]
    transport: Transport,
}

/// How a client carries its session's token: `"cookie"` (the default: the answer sets the
/// cookie) or `"header"` (an API or mobile client: the answer's body has `"token"`, to send
/// back as `Authorization: Bearer <token>`; no cookie).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// The session cookie.
    #[default]
    Cookie,
    /// `Authorization: Bearer <token>`.
    Header,
}

/// `answer` with `"token"`, the token issued in this request, when it goes to a header client
/// (one that came with `Authorization: Bearer`, or a login that asked for the header); a
/// cookie client's token stays in its cookie.
fn with_issued_token(auth: &AuthSession, mut answer: Value) -> Value {
    if let Some(token) = auth.issued_token() {
        answer["token"] = token.as_cookie_value().into();
    }
    answer
}

/// `{"roles": [...]}` of `PUT /admin/users/{username}/roles`.
#[derive(Debug, Deserialize)]
pub struct RolesBody {
    roles: Vec<String>,
}

/// `{"password"}` of `POST /reauth`.
#[derive(Debug, Deserialize)]
pub struct ReauthBody {
    password: String,
}

/// `{"assertion"}` of `POST /reauth/passkey`.
#[derive(Debug, Deserialize)]
pub struct PasskeyBody {
    assertion: String,
}

/// `{"current_password", "new_password"}` of `PUT /password`.
#[derive(Debug, Deserialize)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// The one spelling of a username: names are ASCII and compared without case, so `Alice`,
/// `ALICE` and `alice` are one account (and one lockout counter, one login epoch, one session
/// owner), spelled `alice`.
pub fn canonical_username(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// 3-64 characters of `A-Z`, `a-z`, `0-9`, `_`, `.`, `-` (any case: see [`canonical_username`]).
pub fn valid_username(username: &str) -> bool {
    (3..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_password(password: &str) -> bool {
    (8..=128).contains(&password.chars().count())
}

fn valid_role(role: &str) -> bool {
    (1..=64).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `GET /livez`: the process serves requests; asks no store.
pub fn livez() -> Value {
    json!({ "status": "ok" })
}

/// `GET /health`: the store answers.
///
/// # Errors
/// 503 when the store does not answer.
pub async fn health(state: &AppState) -> Result<Value, ApiError> {
    state.store.ping().await?;
    Ok(json!({ "status": "ok", "store": state.store.backend_name() }))
}

/// `POST /register` (answered 201): 503 `busy` when `LOGIN_QUEUE_MAX` password checks are
/// waiting already.
///
/// # Errors
/// 400 for an unusable name or password, 409 for a taken name, 503.
pub async fn register(
    state: &AppState,
    client: Option<IpAddr>,
    body: Credentials,
) -> Result<Value, ApiError> {
    if !valid_username(&body.username) {
        return Err(ApiError::bad_request(
            "username must be 3-64 characters of A-Z, a-z, 0-9, '_', '.', '-'",
        ));
    }
    if !valid_password(&body.password) {
        return Err(ApiError::bad_request("password must be 8-128 characters"));
    }
    let _slot = state.password_queue.enter(client)?;
    let username = canonical_username(&body.username);
    if state.accounts.get(&username).await?.is_some() {
        return Err(ApiError::conflict("that username is taken"));
    }
    let account = Account {
        username,
        password_hash: state.passwords.hash(&body.password).await?,
        roles: vec!["USER".to_owned()],
    };
    if !state.accounts.create(&account).await? {
        return Err(ApiError::conflict("that username is taken"));
    }
    tracing::info!(target: "session_audit", event = "register", user = %log_safe(&account.username), "account created");
    Ok(json!({ "username": account.username, "roles": account.roles }))
}

/// The `Retry-After` seconds for a throttle's wait (`LoginThrottle::begin_login` /
/// `record_failure`): rounded up to whole seconds, and never 0 (a wait under a second, when the
/// limit is taken by attempts still being checked, is 1).
fn retry_after_secs(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000).max(1)).unwrap_or(u64::MAX)
}

/// Checks `password` for `username` under the lockout rule, as every password check does
/// (login, reauthentication, password change): the attempt is counted before the hash (so
/// parallel guesses cannot exceed the limit), refused with 429 while the username is locked,
/// and a failure answers 401 `invalid_credentials` (the same for an unknown user and a wrong
/// password). The caller holds a place in the password queue.
///
/// `plausible`: whether `username` can be an account at all; a name that cannot is checked
/// like an unknown one (same answer, same time) but not counted: it has no throttle key of
/// its own.
///
/// A refusal of an existing account goes into its login history (`locked`, or `login_failed` /
/// `reauth_failed` by `event`), with `from`'s device; an unknown name has no history.
pub async fn check_password(
    state: &AppState,
    username: &str,
    password: &str,
    plausible: bool,
    event: &str,
    from: &Requester,
) -> Result<Account, ApiError> {
    if plausible {
        throttle_gate(state, username, event, from).await?;
    }
    let account = if plausible {
        state.accounts.get(username).await?
    } else {
        None
    };
    let password = if plausible { password } else { "" };
    let ok = state
        .passwords
        .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
        .await?;
    let Some(account) = account.filter(|_| ok) else {
        return Err(refused(state, username, plausible, event, from).await?);
    };
    state.store.clear_failures(username).await?;
    Ok(account)
}

/// The lockout's gate before a proof is checked: 429 `too_many_attempts` while `username` is
/// locked (recorded in its history as `locked`); attempts still being checked are waited for
/// (at most a second) rather than refused.
async fn throttle_gate(
    state: &AppState,
    username: &str,
    event: &str,
    from: &Requester,
) -> Result<(), ApiError> {
    let mut locked = state.store.begin_login(username, &state.throttle).await?;
    // A short wait means the limit is taken by attempts still being checked, not by
    // failures: wait for them (at most a second) rather than refuse the rightful user.
    for _ in 0..20 {
        match locked {
            Some(retry_after) if retry_after <= Duration::from_secs(1) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                locked = state.store.begin_login(username, &state.throttle).await?;
            }
            _ => break,
        }
    }
    if let Some(secs) = locked.map(retry_after_secs) {
        tracing::info!(target: "session_audit", event = "login_refused_locked", user = %log_safe(username), during = event, "password check refused: username locked");
        record_refusal(state, username, from.entry(LoginEvent::Locked));
        return Err(ApiError::too_many_attempts(secs));
    }
    Ok(())
}

/// A failed proof: logged, recorded in the user's history (`login_failed`, or
/// `reauth_failed` for a re-authentication) and counted towards the lockout; the answer is
/// 401 `invalid_credentials`, the same for an unknown user.
async fn refused(
    state: &AppState,
    username: &str,
    plausible: bool,
    event: &str,
    from: &Requester,
) -> Result<ApiError, ApiError> {
    tracing::info!(target: "session_audit", event = "login_failed", user = %log_safe(username), during = event, "failed password check");
    if plausible {
        let failed = if event.starts_with("reauth") {
            LoginEvent::ReauthFailed
        } else {
            LoginEvent::LoginFailed
        };
        record_refusal(state, username, from.entry(failed));
        if let Some(secs) = state
            .store
            .record_failure(username, &state.throttle)
            .await?
            .map(retry_after_secs)
        {
            tracing::warn!(
                target: "session_audit",
                event = "lockout",
                user = %log_safe(username),
                secs,
                "username locked after repeated failed password checks"
            );
        }
    }
    Ok(ApiError::invalid_credentials())
}

/// Records a refused password check in `username`'s login history if that is an account (no
/// history for made-up names), in a task of its own: the answer does not wait for it, so a
/// refusal takes no longer for an existing account than for an unknown name.
fn record_refusal(state: &AppState, username: &str, entry: HistoryEntry) {
    let (state, username) = (state.clone(), username.to_owned());
    tokio::spawn(async move {
        match state.accounts.get(&username).await {
            Ok(Some(_)) => record(&state, &username, entry).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: "session_audit", user = %log_safe(&username), error = %e, "login history entry not recorded");
            }
        }
    });
}

/// Adds `entry` to `user`'s login history; a failure is logged, never the request's answer
/// (what it records has happened).
pub async fn record(state: &AppState, user: &str, entry: HistoryEntry) {
    if let Err(e) = state.store.record_event(user, entry).await {
        tracing::warn!(target: "session_audit", user = %log_safe(user), error = %e, "login history entry not recorded");
    }
}

/// The password check of a login (`POST /login`, and the web example's form): a place in the
/// password queue for `client`, the login begun (`SessionStore::new_login`), then
/// [`check_password`]. Returns the account and the login's `NewSession`, to create the session
/// from.
///
/// A name that cannot be an account, or a password longer than any account's, is refused at
/// once (401 `invalid_credentials`): no place, no hash. That answer is quicker than a wrong
/// password's, but it only tells what the public rules for names and passwords say.
///
/// # Errors
/// 401, 429, 503 as [`check_password`]; 503 `busy` when the queue is full or `client` holds
/// its share of it.
pub async fn check_login(
    state: &AppState,
    from: &Requester,
    username: &str,
    password: &str,
    event: &str,
) -> Result<(Account, NewSession), ApiError> {
    if !valid_username(username) || password.chars().count() > 128 {
        tracing::info!(target: "session_audit", event = "login_failed", user = %log_safe(username), during = event, "implausible name or password");
        return Err(ApiError::invalid_credentials());
    }
    let username = &canonical_username(username);
    let _slot = state.password_queue.enter(from.client)?;
    // The login begins before the password hash: a password change (or a sign-out everywhere)
    // that lands while this login checks the old password refuses the session it would create.
    let begun = state.store.new_login(username).await?;
    let account = check_password(state, username, password, true, event, from).await?;
    Ok((account, begun))
}

/// `POST /login`: throttled per username; the same answer for an unknown user and a wrong
/// password; every login starts a new session with a new token, with the request's
/// `User-Agent` and network, the method `password`, remembered if the body asks. The token
/// goes in the cookie, or in the body's `"token"` (and no cookie) when the body asks for
/// `"transport": "header"` or the request came with a bearer token. 503 `busy` when
/// `LOGIN_QUEUE_MAX` password checks are waiting already, or this client holds
/// `LOGIN_QUEUE_PER_CLIENT` of them.
///
/// # Errors
/// 401, 429, 503 as said; 401 `invalid_credentials` also when the user's sessions were ended
/// (a password change) while this login checked the password.
pub async fn login(
    state: &AppState,
    from: &Requester,
    auth: &mut AuthSession,
    body: LoginBody,
) -> Result<Value, ApiError> {
    let (account, begun) =
        check_login(state, from, &body.username, &body.password, "login").await?;
    let new = password_login(begun, &account, from).with_remember(body.remember);
    if body.transport == Transport::Header {
        auth.use_header_transport()?;
    }
    let session = auth.login(new).await?;
    if session.is_new_device() {
        tell_new_device(&session);
    }
    let answer = json!({
        "username": session.user_id(),
        "roles": session.roles(),
        "new_device": session.is_new_device(),
    });
    Ok(with_issued_token(auth, answer))
}

/// What the demo does for a login from a new device: one log line (a real application would
/// e-mail the user: "a new sign-in to your account").
pub fn tell_new_device(session: &Session) {
    tracing::info!(target: "session_audit", event = "new_device", user = %log_safe(session.user_id()), "login from a new device for user {}", log_safe(session.user_id()));
}

/// The session of a login with the password (`begun` by `SessionStore::new_login`): the
/// account's roles, and what the device list shows (`User-Agent`, network, method).
pub fn password_login(begun: NewSession, account: &Account, from: &Requester) -> NewSession {
    let mut new = begun
        .with_roles(account.roles.clone())
        .with_method("password");
    if let Some(ua) = &from.user_agent {
        new = new.with_user_agent(ua.clone());
    }
    if let Some(ip) = from.client {
        new = new.with_client_ip(ip);
    }
    new
}

/// `POST /reauth` (login required): the logged-in user enters the password again. A new token
/// (the old one stops working; a bearer client's in the body's `"token"`) and the session is
/// fresh from now. A wrong password counts toward the lockout like a failed login.
///
/// # Errors
/// 401, 429, 503.
pub async fn reauth(
    state: &AppState,
    from: &Requester,
    auth: &mut AuthSession,
    body: ReauthBody,
) -> Result<Value, ApiError> {
    let session = auth.current()?.clone();
    Require::not_impersonated().check(&session)?;
    let user = session.user_id().to_owned();
    let _slot = state.password_queue.enter(from.client)?;
    let plausible = body.password.chars().count() <= 128;
    check_password(state, &user, &body.password, plausible, "reauth", from).await?;
    let session = auth.reauthenticate("password").await?;
    let answer = json!({ "username": session.user_id(), "roles": session.roles() });
    Ok(with_issued_token(auth, answer))
}

/// `POST /reauth/passkey` (login required): the demo's stand-in for a passkey check (a real
/// app verifies a WebAuthn assertion here): the assertion `"<username>-passkey"` passes and the
/// session is re-authenticated by `passkey` (new token, as `POST /reauth`). Anything else is
/// 401 `invalid_credentials`, throttled, locked out and recorded like a wrong password.
///
/// # Errors
/// 401 `invalid_credentials`, 429, 503.
pub async fn reauth_passkey(
    state: &AppState,
    from: &Requester,
    auth: &mut AuthSession,
    body: PasskeyBody,
) -> Result<Value, ApiError> {
    let session = auth.current()?.clone();
    Require::not_impersonated().check(&session)?;
    let user = session.user_id().to_owned();
    let plausible = body.assertion.len() <= 512;
    if plausible {
        throttle_gate(state, &user, "reauth_passkey", from).await?;
    }
    if !plausible || body.assertion != format!("{user}-passkey") {
        return Err(refused(state, &user, plausible, "reauth_passkey", from).await?);
    }
    state.store.clear_failures(&user).await?;
    let session = auth.reauthenticate("passkey").await?;
    let answer = json!({ "username": session.user_id(), "roles": session.roles() });
    Ok(with_issued_token(auth, answer))
}

/// `GET /bound-only` (a device-bound session): who is asking.
pub fn bound_only(user: &CurrentUser) -> Value {
    json!({ "username": user.user_id() })
}

/// `GET /vault` (login required): only for a session whose last proof within `STEP_UP_SECS`
/// was a passkey; a fresh password is not enough.
///
/// # Errors
/// 401 `reauthentication_required` with `"methods": ["passkey"]`.
pub fn vault(state: &AppState, user: &CurrentUser) -> Result<Value, ApiError> {
    Require::fresh_by(state.step_up, ["passkey"]).check(user)?;
    Ok(json!({ "username": user.user_id() }))
}

/// `PUT /password` (login required): needs a fresh session (`STEP_UP_SECS`) and the current
/// password; ends every other session of the user and gives this one a new token. Answered
/// 204, or, for a bearer client, 200 with `{"token"}`: the answer this returns.
///
/// # Errors
/// 401 `reauthentication_required` or `invalid_credentials`, 400, 429, 503.
pub async fn change_password(
    state: &AppState,
    from: &Requester,
    auth: &mut AuthSession,
    body: PasswordBody,
) -> Result<Option<Value>, ApiError> {
    let session = auth.current()?.clone();
    // Not as an impersonator; then freshness: a stale session changes nothing, not even the
    // lockout count.
    Require::not_impersonated().check(&session)?;
    Require::fresh(state.step_up).check(&session)?;
    if !valid_password(&body.new_password) {
        return Err(ApiError::bad_request(
            "new_password must be 8-128 characters",
        ));
    }
    let user = session.user_id().to_owned();
    let _slot = state.password_queue.enter(from.client)?;
    let plausible = body.current_password.chars().count() <= 128;
    check_password(
        state,
        &user,
        &body.current_password,
        plausible,
        "password_change",
        from,
    )
    .await?;
    let hash = state.passwords.hash(&body.new_password).await?;
    // Order: other sessions end first, then the password changes, then the other sessions end
    // once more. A failure after the first step leaves the old password with fewer sessions
    // (safe; the user retries). Each ending gives the user a new login epoch, and a login reads
    // the epoch before the hash, so a login that checked the old password gets no session,
    // whenever its create lands: its epoch is older than the last step's. Only then does this
    // session get its new token. (The other sessions' clients are told `password_changed`;
    // the history shows `reauth`, then `password_changed`.)
    auth.end_other_sessions(EndReason::PasswordChanged).await?;
    if !state.accounts.set_password_hash(&user, &hash).await? {
        return Err(ApiError::not_found("no such user"));
    }
    let ended = auth.end_other_sessions(EndReason::PasswordChanged).await?;
    auth.reauthenticate("password").await?;
    record(state, &user, from.entry(LoginEvent::PasswordChanged)).await;
    tracing::info!(target: "session_audit", event = "password_changed", user = %log_safe(&user), late_sessions_ended = ended, "password changed; other sessions ended");
    Ok(auth
        .issued_token()
        .map(|token| json!({ "token": token.as_cookie_value() })))
}

/// `DELETE /sessions/others` (login required; 204): needs a fresh session; ends every session
/// of the caller but this one.
///
/// # Errors
/// 401 `reauthentication_required`, 503.
pub async fn delete_other_sessions(
    state: &AppState,
    auth: &mut AuthSession,
) -> Result<(), ApiError> {
    let session = auth.current()?.clone();
    Require::not_impersonated().check(&session)?;
    Require::fresh(state.step_up).check(&session)?;
    auth.end_other_sessions(EndReason::Revoked).await?;
    Ok(())
}

/// `POST /logout` (login required, checked here rather than by a guard; 204). With the store
/// down: 503, and the cookie is cleared in the browser all the same.
///
/// # Errors
/// 401 without a live session, 503.
pub async fn logout(auth: &mut AuthSession) -> Result<(), ApiError> {
    if !auth.logout().await? {
        return Err(session_core::Error::NotFound.into());
    }
    Ok(())
}

/// `GET /me` (login required).
pub fn me(user: &CurrentUser) -> Value {
    let mut me = json!({ "username": user.user_id(), "roles": user.roles() });
    if let Some(admin) = user.impersonated_by() {
        me["impersonated_by"] = admin.into();
    }
    me
}

/// `POST /admin/impersonate/{username}` (role ADMIN): the admin acts as `username` in a new
/// session (the admin's own ends), for `IMPERSONATION_SECS` at most. Needs the admin's own,
/// fresh session; never a user with a role the admin lacks.
///
/// # Errors
/// 403 `forbidden` in an impersonation session or for a user with more roles; 401
/// `reauthentication_required` when not fresh; 404 for an unknown user; 503.
pub async fn impersonate(
    state: &AppState,
    auth: &mut AuthSession,
    username: String,
) -> Result<Value, ApiError> {
    let session = auth.current()?.clone();
    Require::not_impersonated().check(&session)?;
    Require::fresh(state.step_up).check(&session)?;
    let username = canonical_username(&username);
    let account = match valid_username(&username) {
        true => state.accounts.get(&username).await?,
        false => None,
    };
    let Some(account) = account else {
        return Err(ApiError::not_found("no such user"));
    };
    let target = NewSession::new(&account.username).with_roles(account.roles.clone());
    let session = auth.impersonate(target).await?;
    let answer = json!({
        "username": session.user_id(),
        "roles": session.roles(),
        "impersonated_by": session.impersonated_by(),
    });
    Ok(with_issued_token(auth, answer))
}

/// `POST /impersonation/stop` (login required): back to the admin's own session (a new one).
///
/// # Errors
/// 403 `forbidden` for a session that is not an impersonation; 503.
pub async fn stop_impersonation(
    state: &AppState,
    auth: &mut AuthSession,
) -> Result<Value, ApiError> {
    let session = auth.current()?.clone();
    let Some(admin) = session.impersonated_by() else {
        return Err(Error::Forbidden("an impersonation session".into()).into());
    };
    let Some(account) = state.accounts.get(admin).await? else {
        return Err(ApiError::not_found(
            "the impersonating admin no longer exists",
        ));
    };
    let own = state
        .store
        .new_login(&account.username)
        .await?
        .with_roles(account.roles.clone());
    let session = auth.end_impersonation(own).await?;
    let answer = json!({ "username": session.user_id(), "roles": session.roles() });
    Ok(with_issued_token(auth, answer))
}

/// `GET /admin` (role ADMIN).
pub fn admin(user: &CurrentUser) -> Value {
    json!({ "message": format!("welcome to the admin area, {}", user.user_id()) })
}

/// `GET /sessions` (login required): the caller's live sessions.
///
/// # Errors
/// 503.
pub async fn list_sessions(auth: &AuthSession) -> Result<Value, ApiError> {
    let sessions = auth.sessions().await?;
    Ok(Value::Array(
        sessions
            .into_iter()
            .map(|s| {
                json!({
                    "id": s.handle,
                    "created_at": rfc3339(s.created_at),
                    "last_seen_at": rfc3339(s.last_seen_at),
                    "current": s.current,
                    "user_agent": s.user_agent,
                    "browser": s.browser,
                    "os": s.os,
                    "network": s.network,
                    "remembered": s.remembered,
                    "new_device": s.new_device,
                    "impersonated_by": s.impersonated_by,
                    "bound": s.bound,
                })
            })
            .collect(),
    ))
}

/// `DELETE /sessions/{id}` (login required; 204): ends one of the caller's own sessions.
///
/// # Errors
/// 404 when it is not one of theirs, 503.
pub async fn delete_session(auth: &mut AuthSession, id: String) -> Result<(), ApiError> {
    if !auth.end_session(&SessionHandle::new(id)).await? {
        return Err(ApiError::not_found("no such session among yours"));
    }
    Ok(())
}

/// `DELETE /sessions` (login required; 204): ends all the caller's sessions, this one too.
///
/// # Errors
/// 503.
pub async fn delete_all_sessions(
    state: &AppState,
    from: &Requester,
    auth: &mut AuthSession,
) -> Result<(), ApiError> {
    let user = auth.current()?.user_id().to_owned();
    let ended = state
        .store
        .delete_user_sessions(&user, EndReason::Revoked)
        .await?;
    tracing::info!(target: "session_audit", event = "revocation", user = %log_safe(&user), ended, by = %log_safe(&user), "all sessions ended by their owner");
    record(state, &user, from.entry(LoginEvent::Revoked)).await;
    auth.logout().await?;
    Ok(())
}

/// `PUT /admin/users/{username}/roles` (role ADMIN; 204): the user's live sessions see the new
/// roles at their next request.
///
/// # Errors
/// 400, 404, 409 (the last admin demoting themselves), 503.
pub async fn set_roles(
    state: &AppState,
    admin: &CurrentUser,
    username: String,
    body: RolesBody,
) -> Result<(), ApiError> {
    let username = canonical_username(&username);
    if body.roles.len() > 32 || !body.roles.iter().all(|r| valid_role(r)) {
        return Err(ApiError::bad_request(
            "roles: at most 32, each 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-', ':'",
        ));
    }
    let mut roles = body.roles;
    roles.sort();
    roles.dedup();
    if state.accounts.get(&username).await?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    // The last admin keeps ADMIN: nobody could give it back. Checked and taken in one atomic
    // step of the account store, so two admins demoting themselves at once cannot both pass.
    // A failure after it leaves the account counted as no admin while it still is one: the
    // rule then refuses more, never less, until the admin's retry writes the roles again.
    if !roles.iter().any(|r| r == ADMIN) && !state.accounts.release_admin(&username).await? {
        return Err(ApiError::conflict(if username == admin.user_id() {
            "you are the last admin: give ADMIN to another account first"
        } else {
            "that account is the last admin: give ADMIN to another account first"
        }));
    }
    // Two stores, two writes, no transaction across them. The sessions are changed first:
    // `set_user_authz` rewrites every live session of the user and records the new roles for
    // the store's role-change window, during which every new login of the user gets them
    // whatever the account says. So if the account update then fails, no session (existing or
    // new) honours a removed role, and the admin's retry (the request answered 503) brings
    // the account in line. The other order would leave a removed role on every live session
    // after a failure between the two. The account update is also retried once at once.
    let sessions = state.store.set_user_authz(&username, &roles, &[]).await?;
    let updated = match state.accounts.set_roles(&username, &roles).await {
        Ok(updated) => updated,
        Err(_) => state.accounts.set_roles(&username, &roles).await?,
    };
    if !updated {
        return Err(ApiError::not_found("no such user"));
    }
    tracing::info!(target: "session_audit", event = "roles_changed", user = %log_safe(&username), roles = ?roles, sessions, by = %log_safe(admin.user_id()), "roles changed");
    Ok(())
}

/// `DELETE /admin/users/{username}/sessions` (role ADMIN; 204): ends all that user's sessions.
///
/// # Errors
/// 400, 503.
pub async fn revoke_user_sessions(
    state: &AppState,
    admin: &CurrentUser,
    username: String,
) -> Result<(), ApiError> {
    if username.is_empty() || username.len() > 255 {
        return Err(ApiError::bad_request("no such username"));
    }
    let username = canonical_username(&username);
    let ended = state
        .store
        .delete_user_sessions(&username, EndReason::Revoked)
        .await?;
    tracing::info!(target: "session_audit", event = "revocation", user = %log_safe(&username), ended, by = %log_safe(admin.user_id()), "all sessions of a user ended by an admin");
    if ended > 0 {
        record(state, &username, HistoryEntry::new(LoginEvent::Revoked)).await;
    }
    Ok(())
}

/// `GET /history` (login required): the caller's login history, newest first.
///
/// # Errors
/// 503.
pub async fn history(auth: &AuthSession) -> Result<Value, ApiError> {
    Ok(history_json(auth.history().await?))
}

/// `GET /admin/users/{username}/history` (role ADMIN): that user's login history.
///
/// # Errors
/// 404 for an unknown user, 503.
pub async fn user_history(state: &AppState, username: String) -> Result<Value, ApiError> {
    let username = canonical_username(&username);
    if !valid_username(&username) || state.accounts.get(&username).await?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    Ok(history_json(state.store.login_history(&username).await?))
}

fn history_json(history: Vec<HistoryEntry>) -> Value {
    Value::Array(
        history
            .into_iter()
            .map(|e| {
                json!({
                    "at": rfc3339(e.at),
                    "event": e.event,
                    "browser": e.browser,
                    "os": e.os,
                    "network": e.network,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_and_password_rules() {
        assert!(valid_username("abc") && valid_username(&"a".repeat(64)));
        assert!(!valid_username("ab") && !valid_username(&"a".repeat(65)));
        assert!(valid_username("a.b-c_9") && !valid_username("a b") && !valid_username("é_é"));
        assert!(valid_password("12345678") && valid_password(&"é".repeat(128)));
        assert!(!valid_password("1234567") && !valid_password(&"x".repeat(129)));
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero_while_locked() {
        let secs = |ms| retry_after_secs(Duration::from_millis(ms));
        assert_eq!(secs(0), 1);
        assert_eq!(secs(200), 1);
        assert_eq!(secs(1000), 1);
        assert_eq!(secs(1001), 2);
    }
}
