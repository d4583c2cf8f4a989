//! The web app's pages and form handlers: login and logout, an account page for any logged-in
//! user, the password change and the password confirmation (step-up), an admin page with
//! impersonation, "your devices" (the sessions) with the forms that end them, and the login
//! history.
//!
//! An admin acting as a user (impersonation) sees the user's pages under a banner
//! ([`Viewer::User`]'s `impersonated_by`); the pages only the user may use (the password change
//! and confirmation, "End all other sessions") refuse the impersonator with a 403 page.
//!
//! Every form posts to this site; the session layer's CSRF check around the app
//! refuses a post whose `Origin` is another site's (a browser always sends `Origin` with a
//! form post), so the forms need no token of their own.

use std::time::{Duration, SystemTime};

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use session_core::prelude::*;
use session_core::web::{AuthSession, CurrentUser};
use session_core::{LoginEvent, Session, SessionData, SessionHandle, SessionInfo};

use crate::accounts::ADMIN;
use crate::api::{canonical_username, check_login, PasswordBody, ReauthBody};
use crate::errors::ApiError;
use crate::web::errors::WebError;
use crate::web::html::{escape, Page, Viewer};
use crate::web::next::{reauth_url, safe_next};
use crate::AppState;

/// Where a login lands without a (safe) `next`.
pub const DEFAULT_LANDING: &str = "/account";

/// The session data key of the one-time message shown on the next page.
pub const FLASH_KEY: &str = "flash";

/// The session data key of the cart (item names), kept before login in an anonymous session
/// and carried over by the login.
pub const CART_KEY: &str = "cart";

/// What the shop on the home page sells.
pub const CATALOGUE: [&str; 3] = ["apple", "pear", "plum"];

/// The most items a cart holds (the session's data has a size limit; a form can be posted
/// in a loop).
pub const MAX_CART_ITEMS: usize = 50;

/// The query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// The page to return to after login (checked with [`safe_next`]).
    next: Option<String>,
    /// Set by the logout redirect: say so on the login page.
    logged_out: Option<String>,
    /// Set when a request was refused because its session had ended: why
    /// ([`signed_out_message`]; a value it does not know is ignored).
    ended: Option<String>,
}

/// The query of `/reauth`: where to return once the password is confirmed.
#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    /// A path on this site (checked with [`safe_next`]).
    next: Option<String>,
}

/// The form of `POST /admin/impersonate`.
#[derive(Debug, Deserialize)]
pub struct ImpersonateForm {
    username: String,
}

/// The fields of the login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
    /// The "Keep me signed in" box: sent (as `on`) only when ticked.
    #[serde(default)]
    remember: Option<String>,
}

fn viewer(session: &Session) -> Viewer<'_> {
    Viewer::User {
        name: session.user_id(),
        admin: session.has_role(ADMIN),
        impersonated_by: session.impersonated_by(),
    }
}

/// The 403 page of a page only the user may use, for an admin acting as them. It keeps the
/// viewer (and so the banner with its way back).
fn impersonator_refused(session: &Session) -> Response {
    Page {
        status: StatusCode::FORBIDDEN,
        title: "Forbidden",
        viewer: viewer(session),
        flash: None,
        body: format!(
            "<p class=\"error\" id=\"impersonator-refused\" role=\"alert\">Only \
             <strong>{user}</strong> can do this: an administrator acting as {user} may not \
             change or confirm their password, nor sign out their other sessions.</p>\
             <p>Stop impersonating (the button above) to return to your own account.</p>",
            user = escape(session.user_id()),
        ),
    }
    .into_response()
}

/// For the pages only the user may use: the answer when `session` may not use `page` now,
/// `None` when it may: the 403 page for an impersonator ([`Require::not_impersonated`]), the
/// password confirmation (returning to `page`) for a password entered longer than `step_up`
/// ago ([`Require::fresh`], as the JSON API's password change).
fn refusal_unless_own_and_fresh(
    session: &Session,
    step_up: Duration,
    page: &str,
) -> Option<Response> {
    if Require::not_impersonated().check(session).is_err() {
        return Some(impersonator_refused(session));
    }
    Require::fresh(step_up)
        .check(session)
        .is_err()
        .then(|| WebError::Reauthenticate(page.to_owned()).into_response())
}

/// `res` (a form shown again with `e`'s message) with `e`'s `Retry-After`, if any (a lockout,
/// a full password queue).
fn with_retry_after(mut res: Response, e: &ApiError) -> Response {
    if let Some(secs) = e.retry_after() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// The session's flash message, removed in the same step so it shows once (also when two
/// requests race for it). If it cannot be removed the page shows without it: a page is worth
/// more than a message.
fn shown_once(taken: Result<Option<String>, session_core::Error>) -> Option<String> {
    taken
        .inspect_err(|e| tracing::warn!(error = %e, "could not take the flash message"))
        .ok()
        .flatten()
}

/// Stores a one-time message for the next page of this session.
async fn set_flash(auth: &mut AuthSession, text: &str) -> Result<(), WebError> {
    auth.insert(FLASH_KEY, text).await?;
    Ok(())
}

/// "Firefox on Linux": what a device list shows of a browser and system read from a
/// `User-Agent`.
fn device_name(browser: Option<&str>, os: Option<&str>) -> String {
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(x), None) | (None, Some(x)) => x.to_owned(),
        (None, None) => "Unknown device".to_owned(),
    }
}

/// "Firefox on Linux (203.0.113.0/24)": a device and, if known, its network.
fn device_and_network(browser: Option<&str>, os: Option<&str>, network: Option<&str>) -> String {
    let device = device_name(browser, os);
    match network {
        Some(net) => format!("{device} ({net})"),
        None => device,
    }
}

/// `2026-11-30 02:08:05 UTC`.
fn when(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// `just now`, `5 min ago`, `3 h ago`.
fn ago(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .map_or(0, |d| d.as_secs());
    match secs {
        0..=59 => "just now".to_owned(),
        60..=3599 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

/// The cart: its items and a form per catalogue item to add one.
fn shop(cart: &[String]) -> String {
    let items = if cart.is_empty() {
        "<p id=\"cart-empty\">Your cart is empty.</p>".to_owned()
    } else {
        let rows: String = cart
            .iter()
            .map(|item| format!("<li class=\"cart-item\">{}</li>", escape(item)))
            .collect();
        format!("<ul id=\"cart\">{rows}</ul>")
    };
    let buttons: String = CATALOGUE
        .iter()
        .map(|item| {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/cart\">\
                 <input type=\"hidden\" name=\"item\" value=\"{item}\">\
                 <button id=\"add-{item}\">Add {item}</button></form> "
            )
        })
        .collect();
    format!(
        "<h2>Cart</h2><p>Kept in your session, before and after login (anonymous visitors \
         get a session at their first addition).</p>{items}<p>{buttons}</p>"
    )
}

/// `GET /`: what the demo is, the way in, and the cart. Reading it creates no session.
pub async fn home(mut visitor: AuthSession) -> Result<Response, WebError> {
    let login = visitor.session()?.cloned();
    let flash = shown_once(visitor.take(FLASH_KEY).await);
    let cart: Vec<String> = visitor.get(CART_KEY).ok().flatten().unwrap_or_default();
    let intro = match &login {
        Some(s) => format!(
            "<p>You are signed in as <strong>{}</strong>.</p>\
             <p><a href=\"/account\">Your account</a> · <a href=\"/sessions\">Your devices</a> · \
             <a href=\"/history\">Your login history</a></p>",
            escape(s.user_id())
        ),
        None => "<p>A server-rendered app on <code>session-core</code>: sessions in Redis, \
                 a login form, guarded pages, and a list of your sessions you can end.</p>\
                 <p><a href=\"/login\">Log in</a> as <code>alice</code> / \
                 <code>alice-password</code> or <code>admin</code> / \
                 <code>admin-password</code>.</p>"
            .to_owned(),
    };
    Ok(Page {
        status: StatusCode::OK,
        title: "Home",
        viewer: login.as_ref().map_or(Viewer::Anonymous, viewer),
        flash: flash.as_deref(),
        body: format!("{intro}{}", shop(&cart)),
    }
    .into_response())
}

/// The form of `POST /cart`.
#[derive(Debug, Deserialize)]
pub struct CartForm {
    item: String,
}

/// `POST /cart`: adds a catalogue item to the visitor's cart (an atomic update of that one
/// key: two tabs adding at once both count), creating an anonymous session for a visitor who
/// has none, and says so on the next page.
pub async fn add_to_cart(
    mut visitor: AuthSession,
    form: Result<Form<CartForm>, FormRejection>,
) -> Result<Redirect, WebError> {
    let item = match form {
        Ok(Form(form)) => CATALOGUE.into_iter().find(|i| *i == form.item),
        Err(_) => None,
    }
    .ok_or_else(|| WebError::BadRequest("There is no such item in the shop.".to_owned()))?;
    let mut full = false;
    visitor
        .update(CART_KEY, |cart: Option<Vec<String>>| {
            let mut cart = cart.unwrap_or_default();
            full = cart.len() >= MAX_CART_ITEMS;
            if !full {
                cart.push(item.to_owned());
            }
            cart
        })
        .await?;
    let message = if full {
        format!("Your cart is full ({MAX_CART_ITEMS} items).")
    } else {
        format!("Added one {item} to your cart.")
    };
    visitor.insert(FLASH_KEY, &message).await?;
    Ok(Redirect::to("/"))
}

/// The login form, with an error message and the username typed so far.
fn login_form(
    status: StatusCode,
    next: Option<&str>,
    username: &str,
    error: Option<&str>,
    flash: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let next = next
        .map(|n| {
            format!(
                "<input type=\"hidden\" name=\"next\" value=\"{}\">",
                escape(n)
            )
        })
        .unwrap_or_default();
    Page {
        status,
        title: "Log in",
        viewer: Viewer::Anonymous,
        flash,
        body: format!(
            "{error}<form method=\"post\" action=\"/login\">{next}\
             <label for=\"username\">Username</label>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required \
             autofocus value=\"{username}\">\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required>\
             <label class=\"check\"><input id=\"remember\" name=\"remember\" type=\"checkbox\"> \
             Keep me signed in</label>\
             <div class=\"actions\"><button id=\"login\" type=\"submit\">Log in</button></div>\
             </form>",
            username = escape(username),
        ),
    }
    .into_response()
}

/// `GET /login`: the form; a logged-in visitor goes straight on to `next`.
pub async fn login_page(
    auth: AuthSession,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let next = query.next.as_deref().and_then(safe_next);
    match auth.session() {
        Ok(Some(_)) => return Redirect::to(next.unwrap_or(DEFAULT_LANDING)).into_response(),
        Ok(None) => {}
        Err(e) => return WebError::from(e).into_response(),
    }
    let flash = match (
        query.ended.as_deref().and_then(signed_out_message),
        &query.logged_out,
    ) {
        (Some(why), _) => Some(why),
        (None, Some(_)) => Some("You have been logged out."),
        (None, None) => None,
    };
    login_form(StatusCode::OK, next, "", None, flash)
}

/// What the login page says for `ended=<reason>` (set by
/// [`signed_out_url`](crate::web::errors::signed_out_url) from the store's
/// [`EndReason`]): one fixed sentence per reason, `None` for any other text, so the query
/// can never put words on the page.
pub fn signed_out_message(ended: &str) -> Option<&'static str> {
    Some(match ended {
        "logged_out" => "You were signed out: this session was logged out.",
        "revoked" => {
            "You were signed out: your session was ended (on the Devices page or by an \
             administrator)."
        }
        "evicted" => "You were signed out: a newer sign-in took this session's place.",
        "password_changed" => "You were signed out: your password was changed.",
        "expired" => "You were signed out: your session expired.",
        _ => return None,
    })
}

/// `POST /login`: the password check of the JSON API (throttled per username, the same answer
/// for an unknown user and a wrong password), then a new session carrying a welcome message
/// for the next page (a [`new_device_notice`] instead when the login is from a device the
/// user's history has not seen, also logged), remembered (a persistent cookie) when "Keep me
/// signed in" is ticked, and a 303 to the form's `next` (when [`safe_next`]) or
/// [`DEFAULT_LANDING`].
pub async fn login_submit(
    State(state): State<AppState>,
    from: crate::api::Requester,
    mut auth: AuthSession,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Ok(Form(form)) = form else {
        return Err(WebError::BadRequest(
            "The login form could not be read; please fill it in again.".to_owned(),
        ));
    };
    let next = safe_next(&form.next);
    let refuse = |e: crate::errors::ApiError| {
        let mut res = login_form(e.status(), next, &form.username, Some(e.message()), None);
        if let Some(secs) = e.retry_after() {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    };
    let (account, begun) =
        match check_login(&state, &from, &form.username, &form.password, "web_login").await {
            Ok(checked) => checked,
            Err(e) => return Ok(refuse(e)),
        };
    // The visitor's cart (kept in an anonymous session) comes along; nothing else of it does.
    let mut data = SessionData::new();
    if let Some(cart) = auth.get::<Vec<String>>(CART_KEY)? {
        data.insert(CART_KEY, &cart)?;
    }
    data.insert(
        FLASH_KEY,
        &format!("Welcome, {}. You are signed in.", account.username),
    )?;
    let new = crate::api::password_login(begun, &account, &from)
        .with_data(data)
        .with_remember(form.remember.is_some());
    let session = match auth.login(new).await {
        // The password changed while this login checked it: as a wrong password.
        Err(e @ session_core::Error::LoginSuperseded) => return Ok(refuse(e.into())),
        other => other?,
    };
    if session.is_new_device() {
        crate::api::tell_new_device(&session);
        let device = from.entry(LoginEvent::Login);
        let device = device_and_network(
            device.browser.as_deref(),
            device.os.as_deref(),
            device.network.as_deref(),
        );
        // The notice replaces the welcome. Best effort: the login has happened either way.
        let notice = new_device_notice(&account.username, &device);
        if let Err(e) = auth.insert(FLASH_KEY, &notice).await {
            tracing::warn!(error = %e, "could not store the new-device notice");
        }
    }
    Ok(Redirect::to(next.unwrap_or(DEFAULT_LANDING)).into_response())
}

/// The message on the page after a login from a device the user's history has not seen.
pub fn new_device_notice(username: &str, device: &str) -> String {
    format!(
        "Welcome, {username}. New sign-in from {device}. If this wasn't you, end that session \
         on the Devices page."
    )
}

/// `POST /logout`: ends the session (if any) and goes to the login page, which says so. (The
/// message is a query flag, not session data: after logout there is no session to keep it in.)
pub async fn logout(mut auth: AuthSession) -> Result<Redirect, WebError> {
    auth.logout().await?;
    Ok(Redirect::to("/login?logged_out=1"))
}

/// `GET /account`: any logged-in user.
#[login_required]
pub async fn account(user: CurrentUser, mut auth: AuthSession) -> Response {
    let flash = shown_once(auth.take(FLASH_KEY).await);
    let roles = user
        .roles()
        .iter()
        .map(|r| format!("<span class=\"badge\">{}</span>", escape(r)))
        .collect::<Vec<_>>()
        .join(" ");
    let impersonator = user
        .impersonated_by()
        .map(|admin| {
            format!(
                "<tr><th>Impersonated by</th><td id=\"account-impersonator\">{}</td></tr>",
                escape(admin)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<table>\
         <tr><th>Username</th><td id=\"account-user\">{user_id}</td></tr>{impersonator}\
         <tr><th>Roles</th><td>{roles}</td></tr>\
         <tr><th>{auth_label}</th><td>{auth}</td></tr>\
         <tr><th>Session ends at the latest</th><td>{expires}</td></tr>\
         </table><p><a id=\"change-password\" href=\"/password\">Change your password</a></p>",
        user_id = escape(user.user_id()),
        // An impersonation's auth time is its start: no password of the user's was entered.
        auth_label = if user.impersonated_by().is_some() {
            "Impersonation started"
        } else {
            "Password entered"
        },
        auth = when(user.auth_time()),
        expires = when(user.expires_at()),
    );
    Page {
        status: StatusCode::OK,
        title: "Your account",
        viewer: viewer(&user),
        flash: flash.as_deref(),
        body,
    }
    .into_response()
}

/// `GET /bound-only`: a session bound to this device only (DBSC, `#[device_bound]`); others get
/// the 403 page, and a bound session whose credential the browser did not refresh is no session.
#[device_bound]
pub async fn bound_only(user: CurrentUser) -> Response {
    let body = format!(
        "<p id=\"bound-only\">This page is only shown to a session bound to this device: \
         signed in as <strong id=\"bound-user\">{user_id}</strong>. A copy of the session \
         cookie alone, used anywhere else, stops working within the bound credential's \
         lifetime.</p><p><a href=\"/sessions\">Your devices</a></p>",
        user_id = escape(user.user_id()),
    );
    Page {
        status: StatusCode::OK,
        title: "Device-bound page",
        viewer: viewer(&user),
        flash: None,
        body,
    }
    .into_response()
}

/// `GET /admin`: users with the `ADMIN` role only (others get the 403 page): a welcome and
/// the form to impersonate a user.
#[has_role("ADMIN")]
pub async fn admin(user: CurrentUser, mut auth: AuthSession) -> Response {
    let flash = shown_once(auth.take(FLASH_KEY).await);
    admin_page(&user, StatusCode::OK, flash.as_deref(), "", None)
}

/// The admin page, with the impersonation form holding `typed` and an `error` above it.
fn admin_page(
    session: &Session,
    status: StatusCode,
    flash: Option<&str>,
    typed: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" id=\"impersonate-error\" role=\"alert\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let impersonate = if session.impersonated_by().is_some() {
        "<p>You are impersonating someone already; stop first to act as another user.</p>"
            .to_owned()
    } else {
        format!(
            "{error}<form method=\"post\" action=\"/admin/impersonate\">\
             <label for=\"impersonate-user\">Username</label>\
             <input id=\"impersonate-user\" name=\"username\" required value=\"{typed}\">\
             <div class=\"actions\"><button id=\"impersonate\">Impersonate</button></div>\
             </form>",
            typed = escape(typed),
        )
    };
    Page {
        status,
        title: "Admin",
        viewer: viewer(session),
        flash,
        body: format!(
            "<p id=\"admin-area\">Welcome to the admin area, <strong>{name}</strong>. Only \
             accounts with the role <code>ADMIN</code> see this page; the guard \
             (<code>#[has_role(\"ADMIN\")]</code>) refuses everyone else before the handler \
             runs.</p>\
             <h2>Impersonate a user</h2>\
             <p>See the site as a user sees it, in a session of theirs marked with your name \
             (on their Devices page and in both login histories) that ends after a few \
             minutes at the latest. Your own session ends meanwhile; the banner on every page \
             brings you back. Their password and their other sessions stay theirs alone. It \
             needs a recent password entry: if yours is not, you are asked for it first.</p>\
             {impersonate}",
            name = escape(session.user_id()),
        ),
    }
    .into_response()
}

/// `POST /admin/impersonate` (role `ADMIN`): the admin acts as the form's user, through the
/// JSON API's [`api::impersonate`](crate::api::impersonate) (the admin's own, fresh session;
/// never a user with a role the admin lacks), then lands on the user's account page under the
/// banner. An unknown user, or one the admin may not impersonate, is the admin page again
/// with a message; a stale session goes to the password confirmation first.
#[has_role("ADMIN")]
pub async fn impersonate(
    State(state): State<AppState>,
    user: CurrentUser,
    mut auth: AuthSession,
    form: Result<Form<ImpersonateForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Ok(Form(form)) = form else {
        return Err(WebError::BadRequest(
            "The impersonation form could not be read; please fill it in again.".to_owned(),
        ));
    };
    // An impersonation starts nothing more (no chaining); then freshness, as the JSON API.
    if Require::not_impersonated().check(&user).is_err() {
        return Ok(impersonator_refused(&user));
    }
    if Require::fresh(state.step_up).check(&user).is_err() {
        return Err(WebError::Reauthenticate("/admin".to_owned()));
    }
    let typed = form.username.trim();
    let refused = |status, message: &str| admin_page(&user, status, None, typed, Some(message));
    match crate::api::impersonate(&state, &mut auth, typed.to_owned()).await {
        Ok(_) => {}
        Err(e) if e.code() == "not_found" => {
            return Ok(refused(
                StatusCode::NOT_FOUND,
                &format!("There is no user named \"{typed}\"."),
            ))
        }
        // Not chained (checked above): the admin or a user with more rights.
        Err(e) if e.code() == "forbidden" => {
            let why = if canonical_username(typed) == user.user_id() {
                "You cannot impersonate yourself.".to_owned()
            } else {
                format!(
                    "You cannot impersonate \"{typed}\": they have a role or permission you \
                     lack."
                )
            };
            return Ok(refused(StatusCode::FORBIDDEN, &why));
        }
        Err(e) if e.code() == "reauthentication_required" => {
            return Err(WebError::Reauthenticate("/admin".to_owned()))
        }
        Err(e) => return Err(e.into()),
    }
    let acting = auth.current()?.user_id().to_owned();
    set_flash(&mut auth, &format!("You are now acting as {acting}.")).await?;
    Ok(Redirect::to(DEFAULT_LANDING).into_response())
}

/// `POST /impersonation/stop` (login required; the banner's button): back to the admin's own
/// session (a new one, [`api::stop_impersonation`](crate::api::stop_impersonation)) and the
/// admin page. 403 page for a session that is no impersonation.
#[login_required]
pub async fn stop_impersonation(
    State(state): State<AppState>,
    user: CurrentUser,
    mut auth: AuthSession,
) -> Result<Response, WebError> {
    let Some(admin) = user.impersonated_by() else {
        return Err(WebError::Forbidden("an impersonation session".to_owned()));
    };
    match crate::api::stop_impersonation(&state, &mut auth).await {
        Ok(_) => {}
        Err(e) if e.code() == "not_found" => {
            return Ok(Page {
                status: StatusCode::CONFLICT,
                title: "Cannot stop impersonating",
                viewer: viewer(&user),
                flash: None,
                body: format!(
                    "<p class=\"error\">The account <strong>{}</strong> that started this \
                     impersonation no longer exists. Log out to end it.</p>",
                    escape(admin)
                ),
            }
            .into_response())
        }
        Err(e) => return Err(e.into()),
    }
    let message = format!(
        "You stopped impersonating {}; you are signed in as yourself again.",
        user.user_id()
    );
    set_flash(&mut auth, &message).await?;
    Ok(Redirect::to("/admin").into_response())
}

/// The password change form, with an error message.
fn password_form(
    session: &Session,
    status: StatusCode,
    flash: Option<&str>,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    Page {
        status,
        title: "Change your password",
        viewer: viewer(session),
        flash,
        body: format!(
            "<p>Your other sessions are signed out when the password changes.</p>{error}\
             <form id=\"password-form\" method=\"post\" action=\"/password\">\
             <input type=\"hidden\" name=\"username\" autocomplete=\"username\" \
             value=\"{user}\">\
             <label for=\"current_password\">Current password</label>\
             <input id=\"current_password\" name=\"current_password\" type=\"password\" \
             autocomplete=\"current-password\" required>\
             <label for=\"new_password\">New password (8 to 128 characters)</label>\
             <input id=\"new_password\" name=\"new_password\" type=\"password\" \
             autocomplete=\"new-password\" minlength=\"8\" maxlength=\"128\" required>\
             <div class=\"actions\"><button id=\"change\" type=\"submit\">Change password\
             </button></div></form>",
            user = escape(session.user_id()),
        ),
    }
    .into_response()
}

/// `GET /password` (login required; the user's own session, fresh within `STEP_UP_SECS`, else
/// a 403 page for an impersonator or the password confirmation): the password change form.
#[login_required]
pub async fn password_page(
    State(state): State<AppState>,
    user: CurrentUser,
    mut auth: AuthSession,
) -> Response {
    if let Some(refused) = refusal_unless_own_and_fresh(&user, state.step_up, "/password") {
        return refused;
    }
    let flash = shown_once(auth.take(FLASH_KEY).await);
    password_form(&user, StatusCode::OK, flash.as_deref(), None)
}

/// `POST /password` (login required; the user's own, fresh session): the JSON API's
/// [`api::change_password`](crate::api::change_password) (the current password checked,
/// throttled, the other sessions ended, a new token here), then the account page. A wrong
/// current password or a too short new one is the form again with a message.
#[login_required]
pub async fn change_password(
    State(state): State<AppState>,
    from: crate::api::Requester,
    user: CurrentUser,
    mut auth: AuthSession,
    form: Result<Form<PasswordBody>, FormRejection>,
) -> Result<Response, WebError> {
    if let Some(refused) = refusal_unless_own_and_fresh(&user, state.step_up, "/password") {
        return Ok(refused);
    }
    let Ok(Form(body)) = form else {
        return Err(WebError::BadRequest(
            "The password form could not be read; please fill it in again.".to_owned(),
        ));
    };
    if let Err(e) = crate::api::change_password(&state, &from, &mut auth, body).await {
        let message = match e.code() {
            "invalid_credentials" => "The current password is wrong.",
            "bad_request" => "The new password must be 8 to 128 characters long.",
            "too_many_attempts" | "busy" => e.message(),
            "reauthentication_required" => {
                return Err(WebError::Reauthenticate("/password".to_owned()))
            }
            _ => return Err(e.into()),
        };
        let form = password_form(&user, e.status(), None, Some(message));
        return Ok(with_retry_after(form, &e));
    }
    set_flash(
        &mut auth,
        "Your password was changed; your other sessions were signed out.",
    )
    .await?;
    Ok(Redirect::to(DEFAULT_LANDING).into_response())
}

/// The password confirmation form, returning to `next`, with an error message.
fn reauth_form(
    session: &Session,
    step_up: Duration,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    Page {
        status,
        title: "Confirm your password",
        viewer: viewer(session),
        flash: None,
        body: format!(
            "<p id=\"reauth-why\">This needs your password entered within the last {within}. \
             Please enter it again to continue.</p>{error}\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"username\" autocomplete=\"username\" \
             value=\"{user}\">\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required autofocus>\
             <div class=\"actions\"><button id=\"confirm\" type=\"submit\">Confirm</button>\
             </div></form>",
            within = humantime::format_duration(step_up),
            action = escape(&reauth_url(next.unwrap_or("/"))),
            user = escape(session.user_id()),
        ),
    }
    .into_response()
}

/// `GET /reauth?next=` (login required; not for an impersonator): the password again, for a
/// page that needs a recent password entry ([`WebError::Reauthenticate`]).
#[login_required]
pub async fn reauth_page(
    State(state): State<AppState>,
    user: CurrentUser,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    if Require::not_impersonated().check(&user).is_err() {
        return impersonator_refused(&user);
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let next = query.next.as_deref().and_then(safe_next);
    reauth_form(&user, state.step_up, StatusCode::OK, next, None)
}

/// `POST /reauth?next=` (login required; not for an impersonator): the JSON API's
/// [`api::reauth`](crate::api::reauth) (throttled and recorded like a login's password
/// check; a new token, fresh from now), then back to `next` ([`safe_next`]) or the account
/// page. A wrong password is the form again.
#[login_required]
pub async fn reauth_submit(
    State(state): State<AppState>,
    from: crate::api::Requester,
    user: CurrentUser,
    mut auth: AuthSession,
    query: Result<Query<NextQuery>, QueryRejection>,
    form: Result<Form<ReauthBody>, FormRejection>,
) -> Result<Response, WebError> {
    if Require::not_impersonated().check(&user).is_err() {
        return Ok(impersonator_refused(&user));
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let next = query.next.as_deref().and_then(safe_next);
    let Ok(Form(body)) = form else {
        return Err(WebError::BadRequest(
            "The password form could not be read; please fill it in again.".to_owned(),
        ));
    };
    if let Err(e) = crate::api::reauth(&state, &from, &mut auth, body).await {
        let message = match e.code() {
            "invalid_credentials" => "Wrong password.",
            "too_many_attempts" | "busy" => e.message(),
            _ => return Err(e.into()),
        };
        let form = reauth_form(&user, state.step_up, e.status(), next, Some(message));
        return Ok(with_retry_after(form, &e));
    }
    Ok(Redirect::to(next.unwrap_or(DEFAULT_LANDING)).into_response())
}

/// `GET /sessions` ("Devices"): the user's live sessions, most recently used first, each with
/// its device (browser on system, the full `User-Agent` on hover), network, "Remembered" and
/// "New device" badges ("Device-bound" for a session bound to its browser's key, DBSC), when it
/// signed in and was last seen, and a button that ends it; the
/// current one is marked; one button ends all the others.
#[login_required]
pub async fn sessions(user: CurrentUser, mut auth: AuthSession) -> Response {
    let listed = match auth.sessions().await {
        Ok(listed) => listed,
        Err(e) => return WebError::from(e).into_response(),
    };
    let flash = shown_once(auth.take(FLASH_KEY).await);
    let rows: String = listed.iter().map(session_row).collect();
    let others = listed.len().saturating_sub(1);
    let end_others = if user.impersonated_by().is_some() {
        // Only the user signs out their other sessions (the 403 page would say so).
        "<p id=\"end-others-own\">Ending all other sessions is for this user alone.</p>"
    } else if others > 0 {
        "<form class=\"actions\" method=\"post\" action=\"/sessions/others/end\">\
         <button id=\"end-others\" class=\"danger\">End all other sessions</button></form>"
    } else {
        ""
    };
    Page {
        status: StatusCode::OK,
        title: "Your devices",
        viewer: viewer(&user),
        flash: flash.as_deref(),
        body: format!(
            "<p>Every browser or device signed in to your account. End any you do not \
             recognise; it is logged out at its next request. Past sign-ins are in your \
             <a href=\"/history\">login history</a>.</p>\
             <table id=\"sessions\"><thead><tr><th>Device</th><th>Network</th>\
             <th>Signed in</th><th>Last seen</th><th></th></tr></thead><tbody>{rows}</tbody>\
             </table>{end_others}"
        ),
    }
    .into_response()
}

/// One row of the devices table.
fn session_row(s: &SessionInfo) -> String {
    let action = if s.current {
        "<span class=\"badge\">this session</span>".to_owned()
    } else {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"/sessions/{id}/end\">\
             <button class=\"danger end-session\">End</button></form>",
            id = escape(s.handle.as_str())
        )
    };
    let mut badges = String::new();
    if s.remembered {
        badges.push_str(" <span class=\"badge remembered\">Remembered</span>");
    }
    if s.new_device {
        badges.push_str(" <span class=\"badge new-device\">New device</span>");
    }
    if s.bound {
        badges.push_str(
            " <span class=\"badge device-bound\" title=\"Bound to a key this browser keeps: \
             a copy of the cookie alone does not last\">Device-bound</span>",
        );
    }
    if let Some(admin) = &s.impersonated_by {
        badges.push_str(&format!(
            " <span class=\"badge impersonated\">Impersonated by {}</span>",
            escape(admin)
        ));
    }
    let title = s
        .user_agent
        .as_deref()
        .map(|ua| format!(" title=\"{}\"", escape(ua)))
        .unwrap_or_default();
    format!(
        "<tr class=\"session{current}\" data-device-bound=\"{bound}\"><td class=\"device\"><span class=\"device-name\"{title}>\
         {device}</span>{badges}</td><td class=\"network\">{network}</td>\
         <td class=\"created\">{created}</td><td class=\"seen\">{seen}</td><td>{action}</td></tr>",
        current = if s.current { " current" } else { "" },
        bound = s.bound,
        device = escape(&device_name(s.browser.as_deref(), s.os.as_deref())),
        network = escape(s.network.as_deref().unwrap_or("unknown")),
        created = when(s.created_at),
        seen = ago(s.last_seen_at),
    )
}

/// What a login history says of `event`, in words.
pub fn event_words(event: LoginEvent) -> &'static str {
    match event {
        LoginEvent::Login => "Signed in",
        LoginEvent::LoginFailed => "Wrong password",
        LoginEvent::Locked => "Locked out (too many wrong passwords)",
        LoginEvent::Logout => "Signed out",
        LoginEvent::Revoked => "Session ended by you or an admin",
        LoginEvent::Evicted => "Signed out by a newer login (session limit)",
        LoginEvent::PasswordChanged => "Password changed",
        LoginEvent::Reauth => "Password confirmed",
        LoginEvent::ReauthFailed => "Wrong password when confirming",
        LoginEvent::ImpersonationStarted => "Impersonation started",
        LoginEvent::ImpersonationEnded => "Impersonation ended",
        _ => "Other account event",
    }
}

/// The event's `snake_case` name (`login_failed`), for a class attribute.
fn event_name(event: LoginEvent) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `GET /history`: the user's login history, newest first: when, what, from which device and
/// network.
#[login_required]
pub async fn history(user: CurrentUser, mut auth: AuthSession) -> Response {
    let entries = match auth.history().await {
        Ok(entries) => entries,
        Err(e) => return WebError::from(e).into_response(),
    };
    let flash = shown_once(auth.take(FLASH_KEY).await);
    let rows: String = entries
        .iter()
        .map(|e| {
            format!(
                "<tr class=\"event {name}\"><td class=\"at\">{at}</td>\
                 <td class=\"what\">{what}</td><td class=\"device\">{device}</td>\
                 <td class=\"network\">{network}</td></tr>",
                name = escape(&event_name(e.event)),
                at = when(e.at),
                what = event_words(e.event),
                device = escape(&device_name(e.browser.as_deref(), e.os.as_deref())),
                network = escape(e.network.as_deref().unwrap_or("unknown")),
            )
        })
        .collect();
    let table = if entries.is_empty() {
        "<p id=\"history-empty\">Nothing recorded yet.</p>".to_owned()
    } else {
        format!(
            "<table id=\"history\"><thead><tr><th>When</th><th>What</th><th>Device</th>\
             <th>Network</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    Page {
        status: StatusCode::OK,
        title: "Login history",
        viewer: viewer(&user),
        flash: flash.as_deref(),
        body: format!(
            "<p>Sign-ins, failed attempts and ended sessions of your account, newest first. \
             Something you do not recognise? End that session on the \
             <a href=\"/sessions\">Devices</a> page and change your password.</p>{table}"
        ),
    }
    .into_response()
}

/// `POST /sessions/{id}/end`: ends one of the user's sessions; ending this one logs out.
#[login_required]
pub async fn end_session(
    mut auth: AuthSession,
    Path(id): Path<String>,
) -> Result<Redirect, WebError> {
    let session = auth.session()?.cloned().ok_or(WebError::LoggedOut)?;
    let handle = SessionHandle::new(id);
    if handle == session.handle() {
        auth.logout().await?;
        return Ok(Redirect::to("/login?logged_out=1"));
    }
    let ended = handle.as_str().len() <= 64 && auth.end_session(&handle).await?;
    set_flash(
        &mut auth,
        if ended {
            "The session was ended; that browser is logged out."
        } else {
            "That session had already ended."
        },
    )
    .await?;
    Ok(Redirect::to("/sessions"))
}

/// `POST /sessions/others/end`: ends every session of the user but this one; the user's
/// alone (an impersonator gets the 403 page).
#[login_required]
pub async fn end_other_sessions(
    user: CurrentUser,
    mut auth: AuthSession,
) -> Result<Response, WebError> {
    if Require::not_impersonated().check(&user).is_err() {
        return Ok(impersonator_refused(&user));
    }
    let ended = auth.end_other_sessions(EndReason::Revoked).await?;
    let message = match ended {
        1 => "1 other session was ended.".to_owned(),
        n => format!("{n} other sessions were ended."),
    };
    set_flash(&mut auth, &message).await?;
    Ok(Redirect::to("/sessions").into_response())
}

/// Any other path.
pub async fn not_found() -> WebError {
    WebError::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_reason_has_its_sentence_and_nothing_else_has_one() {
        for reason in [
            EndReason::LoggedOut,
            EndReason::Revoked,
            EndReason::Evicted,
            EndReason::PasswordChanged,
            EndReason::Expired,
        ] {
            let said = signed_out_message(reason.as_str());
            assert!(
                said.is_some_and(|s| s.starts_with("You were signed out: ")),
                "{reason:?}"
            );
        }
        for other in ["", "Revoked", "revoked ", "<script>", "logged_out&x=1"] {
            assert_eq!(signed_out_message(other), None, "{other:?}");
        }
    }
}
