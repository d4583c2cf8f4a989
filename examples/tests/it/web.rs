//! The web example's router (`demo::web::app`) without a browser: redirects, cookies, caching
//! headers, CSRF and escaping, request by request (in-memory store).

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use demo::settings::Settings;
use demo::setup::prepare;
use demo::{web, HttpService};
use session_core::web::CookieConfig;
use session_core::web::CsrfPolicy;
use tower::ServiceExt as _;

const HOST: &str = "app.localhost:3000";
const ORIGIN: &str = "https://app.localhost:3000";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `name=value` of the session cookie this answer sets.
    fn session_cookie(&self) -> String {
        let set = self.header(header::SET_COOKIE);
        assert!(
            set.starts_with("__Host-session="),
            "no session cookie: {set:?}"
        );
        set.split(';').next().unwrap_or_default().to_owned()
    }
}

async fn app() -> HttpService {
    let settings = Settings::from_lookup(|_| None).expect("default settings");
    // The in-memory store; `prepare` seeds the demo accounts.
    let state = prepare(&settings).await.expect("in-memory state").state;
    web::app(state, CookieConfig::default(), CsrfPolicy::default())
}

async fn send(app: &HttpService, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &HttpService, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::get(path).header(header::HOST, HOST);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::empty()).expect("request")).await
}

async fn post_form(
    app: &HttpService,
    path: &str,
    origin: &str,
    cookie: Option<&str>,
    form: &str,
) -> Answer {
    let mut req = Request::post(path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, origin)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::from(form.to_owned())).expect("request")).await
}

async fn login(app: &HttpService, user: &str, password: &str, next: &str) -> Answer {
    let form = format!("username={user}&password={password}&next={next}");
    post_form(app, "/login", ORIGIN, None, &form).await
}

#[tokio::test]
async fn anonymous_requests_for_protected_pages_go_to_the_login_form_with_next() {
    let app = app().await;
    for (path, location) in [
        ("/account", "/login?next=/account"),
        ("/sessions?tab=1", "/login?next=/sessions%3Ftab%3D1"),
        ("/admin", "/login?next=/admin"),
    ] {
        let res = get(&app, path, None).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.header(header::LOCATION), location);
    }
    let form = get(&app, "/login?next=/sessions", None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form
        .body
        .contains("<input type=\"hidden\" name=\"next\" value=\"/sessions\">"));
    let evil = get(&app, "/login?next=//evil.example", None).await;
    assert!(!evil.body.contains("evil.example"), "{}", evil.body);
}

#[tokio::test]
async fn login_follows_only_a_same_site_next() {
    let app = app().await;
    let res = login(&app, "alice", "alice-password", "/sessions").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.header(header::LOCATION), "/sessions");
    for next in [
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
        "/%09/evil.example",
    ] {
        let res = login(&app, "alice", "alice-password", next).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(res.header(header::LOCATION), "/account", "next={next}");
    }
}

#[tokio::test]
async fn a_cross_site_login_post_is_refused() {
    let app = app().await;
    let res = post_form(
        &app,
        "/login",
        "https://evil.example",
        None,
        "username=alice&password=alice-password",
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.headers.get(header::SET_COOKIE).is_none());
    // The app's rejection handler answers it too: a page, not the library's JSON.
    assert!(
        res.header(header::CONTENT_TYPE).starts_with("text/html"),
        "{:?}",
        res.headers
    );
}

#[tokio::test]
async fn pages_of_a_logged_in_user_are_no_store_and_admin_is_a_403_page_for_a_user() {
    let app = app().await;
    let cookie = login(&app, "alice", "alice-password", "")
        .await
        .session_cookie();
    let account = get(&app, "/account", Some(&cookie)).await;
    assert_eq!(account.status, StatusCode::OK);
    assert_eq!(account.header(header::CACHE_CONTROL), "no-store");
    assert!(account
        .header(header::CONTENT_TYPE)
        .starts_with("text/html"));
    assert!(account.body.contains("Welcome, alice"));
    let admin = get(&app, "/admin", Some(&cookie)).await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
    assert!(admin.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert!(!admin.body.contains("admin-area"));
    let admin_cookie = login(&app, "admin", "admin-password", "")
        .await
        .session_cookie();
    let admin = get(&app, "/admin", Some(&admin_cookie)).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.body.contains("id=\"admin-area\""));
}

#[tokio::test]
async fn a_failed_login_shows_the_form_again_with_the_username_escaped() {
    let app = app().await;
    let res = login(&app, "%3Cscript%3Ex%3C%2Fscript%3E", "nope", "").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.headers.get(header::SET_COOKIE).is_none());
    assert!(res
        .body
        .contains("value=\"&lt;script&gt;x&lt;/script&gt;\""));
    assert!(!res.body.contains("<script>"), "{}", res.body);
}

#[tokio::test]
async fn logout_ends_the_session_and_says_so() {
    let app = app().await;
    let cookie = login(&app, "alice", "alice-password", "")
        .await
        .session_cookie();
    let res = post_form(&app, "/logout", ORIGIN, Some(&cookie), "").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.header(header::LOCATION), "/login?logged_out=1");
    assert!(res.header(header::SET_COOKIE).contains("Max-Age=0"));
    let after = get(&app, "/account", Some(&cookie)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    let page = get(&app, "/login?logged_out=1", None).await;
    assert!(page.body.contains("You have been logged out."));
}

/// The cart before login: an unknown item is a 400 that creates no session; a catalogue item
/// creates an anonymous session (its cookie), which is no login (the account page still
/// redirects); the cart stops at its limit; the login carries the cart to the new session and
/// the anonymous cookie then names nothing.
#[tokio::test]
async fn the_cart_fills_an_anonymous_session_that_the_login_carries_over() {
    let app = app().await;
    let home = get(&app, "/", None).await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(
        home.header(header::SET_COOKIE),
        "",
        "a read created a session"
    );

    let refused = post_form(&app, "/cart", ORIGIN, None, "item=banana").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.header(header::SET_COOKIE), "");

    let added = post_form(&app, "/cart", ORIGIN, None, "item=plum").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let anonymous = added.session_cookie();
    let account = get(&app, "/account", Some(&anonymous)).await;
    assert_eq!(
        account.status,
        StatusCode::SEE_OTHER,
        "anonymous is not a login"
    );
    for _ in 0..web::pages::MAX_CART_ITEMS + 2 {
        post_form(&app, "/cart", ORIGIN, Some(&anonymous), "item=apple").await;
    }
    let home = get(&app, "/", Some(&anonymous)).await;
    assert!(home.body.contains("Your cart is full"), "{}", home.body);
    assert_eq!(
        home.body.matches("class=\"cart-item\"").count(),
        web::pages::MAX_CART_ITEMS
    );

    let login = post_form(
        &app,
        "/login",
        ORIGIN,
        Some(&anonymous),
        "username=alice&password=alice-password",
    )
    .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let alice = login.session_cookie();
    assert_ne!(alice, anonymous);
    let home = get(&app, "/", Some(&alice)).await;
    assert!(home.body.contains("signed in as <strong>alice</strong>"));
    assert_eq!(
        home.body.matches("class=\"cart-item\"").count(),
        web::pages::MAX_CART_ITEMS
    );
    let old = get(&app, "/", Some(&anonymous)).await;
    assert!(
        old.body.contains("cart-empty"),
        "the anonymous session outlived the login"
    );
}

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                              (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// A login through the form from a browser with `user_agent`.
async fn login_from(app: &HttpService, user_agent: &str, form: &str) -> Answer {
    let req = Request::post("/login")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::USER_AGENT, user_agent)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request");
    send(app, req).await
}

/// The history page is login-required; it lists the user's sign-ins and a wrong password
/// (once per attempt), newest first, in words.
#[tokio::test]
async fn the_history_page_lists_logins_and_failed_attempts() {
    let app = app().await;
    let anonymous = get(&app, "/history", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header(header::LOCATION), "/login?next=/history");

    let first = login(&app, "alice", "alice-password", "").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let wrong = login(&app, "alice", "wrong-password", "").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // An unknown name gets no history of its own (and answers as a wrong password).
    let unknown = login(&app, "nobody", "wrong-password", "").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let cookie = login_from(
        &app,
        FIREFOX_LINUX,
        "username=alice&password=alice-password",
    )
    .await
    .session_cookie();

    // The failure is recorded in a task of its own (the answer does not wait for it).
    let mut page = get(&app, "/history", Some(&cookie)).await;
    for _ in 0..100 {
        if page.body.contains("class=\"event login_failed\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        page = get(&app, "/history", Some(&cookie)).await;
    }
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header(header::CACHE_CONTROL), "no-store");
    let body = &page.body;
    assert_eq!(body.matches("class=\"event login\"").count(), 2, "{body}");
    assert_eq!(
        body.matches("class=\"event login_failed\"").count(),
        1,
        "one wrong password, one entry: {body}"
    );
    assert!(body.contains(">Signed in<") && body.contains(">Wrong password<"));
    // Newest first: the Firefox login, then the wrong password, then the first login.
    let firefox = body.find("Firefox on Linux").expect("the Firefox login");
    let failed = body.find("Wrong password<").expect("the failed attempt");
    assert!(firefox < failed, "not newest first: {body}");
    // The navigation links it, next to the devices page.
    assert!(body.contains("<a href=\"/sessions\">Devices</a><a href=\"/history\">History</a>"));
}

/// A remembered login's cookie is persistent (`Max-Age`), an ordinary one's is not; a login
/// from a device alice has not signed in from shows the new-device notice on the next page
/// and a "New device" badge on the devices page, next to "Remembered".
#[tokio::test]
async fn remember_me_and_the_new_device_notice() {
    let app = app().await;
    let ordinary = login_from(
        &app,
        FIREFOX_LINUX,
        "username=alice&password=alice-password",
    )
    .await;
    assert!(
        !ordinary.header(header::SET_COOKIE).contains("Max-Age"),
        "{}",
        ordinary.header(header::SET_COOKIE)
    );
    let firefox = ordinary.session_cookie();
    let first = get(&app, "/account", Some(&firefox)).await;
    assert!(first.body.contains("Welcome, alice. You are signed in."));
    assert!(
        !first.body.contains("New sign-in"),
        "a first login is no new device"
    );

    let remembered = login_from(
        &app,
        CHROME_WINDOWS,
        "username=alice&password=alice-password&remember=on",
    )
    .await;
    assert!(
        remembered.header(header::SET_COOKIE).contains("Max-Age="),
        "{}",
        remembered.header(header::SET_COOKIE)
    );
    let chrome = remembered.session_cookie();
    let account = get(&app, "/account", Some(&chrome)).await;
    assert!(
        account.body.contains(
            "New sign-in from Chrome on Windows 10. If this wasn&#39;t you, end that session on \
             the Devices page."
        ),
        "{}",
        account.body
    );

    let devices = get(&app, "/sessions", Some(&chrome)).await;
    assert_eq!(devices.status, StatusCode::OK);
    let rows: Vec<&str> = devices.body.split("<tr class=\"session").skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", devices.body);
    let (this, other) = if rows[0].starts_with(" current") {
        (rows[0], rows[1])
    } else {
        (rows[1], rows[0])
    };
    assert!(this.contains("Chrome on Windows 10") && other.contains("Firefox on Linux"));
    assert!(this.contains(">Remembered<") && this.contains(">New device<"));
    assert!(!other.contains(">Remembered<") && !other.contains(">New device<"));
    // The full User-Agent on hover, escaped.
    assert!(this.contains("title=\"Mozilla/5.0 (Windows NT 10.0"));

    // The same device again is not new.
    let again = login_from(
        &app,
        CHROME_WINDOWS,
        "username=alice&password=alice-password",
    )
    .await
    .session_cookie();
    let account = get(&app, "/account", Some(&again)).await;
    assert!(!account.body.contains("New sign-in"), "{}", account.body);
}

/// The web app with sessions fresh for `step_up` only (`STEP_UP_SECS` counts whole seconds).
async fn app_with_step_up(step_up: std::time::Duration) -> HttpService {
    let settings = Settings::from_lookup(|_| None).expect("default settings");
    let mut state = prepare(&settings).await.expect("in-memory state").state;
    state.step_up = step_up;
    web::app(state, CookieConfig::default(), CsrfPolicy::default())
}

/// The banner of an impersonation session, as every page renders it.
const BANNER: &str =
    "You are acting as <strong>alice</strong> (impersonated by <strong>admin</strong>)";

/// From the admin page: an unknown user (named back, escaped) and the admin themself are
/// refused with a message; alice is impersonated in a new session (the admin's ends), every
/// page shows the banner, the devices page marks the session, and what only alice may do
/// (password change and confirmation, ending her other sessions) is a 403 page that changes
/// nothing; the banner's button returns to a new session of the admin, on the admin page.
#[tokio::test]
async fn an_admin_impersonates_from_the_admin_page_and_stops_from_the_banner() {
    let app = app().await;
    let admin = login(&app, "admin", "admin-password", "")
        .await
        .session_cookie();
    let page = get(&app, "/admin", Some(&admin)).await;
    assert!(page.body.contains("action=\"/admin/impersonate\""));
    assert!(!page.body.contains("id=\"impersonation\""));

    let unknown = post_form(
        &app,
        "/admin/impersonate",
        ORIGIN,
        Some(&admin),
        "username=%3Cb%3Enobody",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown
            .body
            .contains("There is no user named &quot;&lt;b&gt;nobody&quot;."),
        "{}",
        unknown.body
    );
    assert!(!unknown.body.contains("<b>nobody"));
    assert!(unknown.body.contains("value=\"&lt;b&gt;nobody\""));
    let myself = post_form(
        &app,
        "/admin/impersonate",
        ORIGIN,
        Some(&admin),
        "username=admin",
    )
    .await;
    assert_eq!(myself.status, StatusCode::FORBIDDEN);
    assert!(myself.body.contains("You cannot impersonate yourself."));
    // A form from another site is refused like every other (the CSRF check).
    let cross = post_form(
        &app,
        "/admin/impersonate",
        "https://evil.example",
        Some(&admin),
        "username=alice",
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);

    let started = post_form(
        &app,
        "/admin/impersonate",
        ORIGIN,
        Some(&admin),
        "username=alice",
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert_eq!(started.header(header::LOCATION), "/account");
    let acting = started.session_cookie();
    let gone = get(&app, "/account", Some(&admin)).await;
    assert_eq!(
        gone.status,
        StatusCode::SEE_OTHER,
        "the admin's session lives on"
    );

    let account = get(&app, "/account", Some(&acting)).await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains(BANNER), "{}", account.body);
    assert!(account.body.contains("id=\"account-user\">alice<"));
    assert!(account.body.contains("id=\"account-impersonator\">admin<"));
    assert!(account.body.contains("You are now acting as alice."));
    assert!(
        !account.body.contains("href=\"/admin\""),
        "alice's rights, not the admin's"
    );
    for path in ["/", "/sessions", "/history"] {
        let page = get(&app, path, Some(&acting)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains(BANNER), "no banner on {path}");
        assert!(page.body.contains("action=\"/impersonation/stop\""));
    }
    let devices = get(&app, "/sessions", Some(&acting)).await;
    assert!(devices
        .body
        .contains("<span class=\"badge impersonated\">Impersonated by admin</span>"));
    assert!(devices.body.contains("id=\"end-others-own\""));
    assert!(!devices.body.contains("id=\"end-others\""));

    // What only alice may do: a 403 page (with the banner and its way back), nothing changes.
    for path in ["/password", "/reauth?next=/password"] {
        let refused = get(&app, path, Some(&acting)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(refused.body.contains("id=\"impersonator-refused\""));
        assert!(refused.body.contains(BANNER));
    }
    for (path, form) in [
        (
            "/password",
            "current_password=alice-password&new_password=stolen-password-1",
        ),
        ("/reauth", "password=alice-password"),
        ("/sessions/others/end", ""),
    ] {
        let refused = post_form(&app, path, ORIGIN, Some(&acting), form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "POST {path}");
        assert!(refused.body.contains("id=\"impersonator-refused\""));
    }
    // alice holds no ADMIN: no impersonation from her session (nor any chaining).
    let chained = post_form(
        &app,
        "/admin/impersonate",
        ORIGIN,
        Some(&acting),
        "username=admin",
    )
    .await;
    assert_eq!(chained.status, StatusCode::FORBIDDEN);
    let alice = login(&app, "alice", "alice-password", "").await;
    assert_eq!(
        alice.status,
        StatusCode::SEE_OTHER,
        "the password changed meanwhile"
    );

    let stopped = post_form(&app, "/impersonation/stop", ORIGIN, Some(&acting), "").await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER);
    assert_eq!(stopped.header(header::LOCATION), "/admin");
    let back = stopped.session_cookie();
    let page = get(&app, "/admin", Some(&back)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("id=\"impersonation\""), "{}", page.body);
    assert!(page
        .body
        .contains("You stopped impersonating alice; you are signed in as yourself again."));
    let ended = get(&app, "/account", Some(&acting)).await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert!(ended
        .header(header::LOCATION)
        .starts_with("/login?next=/account"));
    let not_acting = post_form(&app, "/impersonation/stop", ORIGIN, Some(&back), "").await;
    assert_eq!(not_acting.status, StatusCode::FORBIDDEN);
}

/// A password entered longer ago than `STEP_UP_SECS`: impersonating and the password page send
/// the admin to the password confirmation, which refuses a wrong password with the form again
/// and returns to the page after the right one.
#[tokio::test]
async fn a_stale_session_confirms_the_password_before_impersonating() {
    let app = app_with_step_up(std::time::Duration::from_secs(1)).await;
    let admin = login(&app, "admin", "admin-password", "")
        .await
        .session_cookie();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let stale = post_form(
        &app,
        "/admin/impersonate",
        ORIGIN,
        Some(&admin),
        "username=alice",
    )
    .await;
    assert_eq!(stale.status, StatusCode::SEE_OTHER);
    assert_eq!(stale.header(header::LOCATION), "/reauth?next=/admin");
    let password = get(&app, "/password", Some(&admin)).await;
    assert_eq!(password.header(header::LOCATION), "/reauth?next=/password");

    let form = get(&app, "/reauth?next=/admin", Some(&admin)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("action=\"/reauth?next=/admin\""));
    assert!(form.body.contains("within the last 1s"), "{}", form.body);
    let evil = get(&app, "/reauth?next=//evil.example", Some(&admin)).await;
    assert!(!evil.body.contains("evil.example"), "{}", evil.body);
    let wrong = post_form(
        &app,
        "/reauth?next=/admin",
        ORIGIN,
        Some(&admin),
        "password=wrong-password",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong password."));
    let confirmed = post_form(
        &app,
        "/reauth?next=/admin",
        ORIGIN,
        Some(&admin),
        "password=admin-password",
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER);
    assert_eq!(confirmed.header(header::LOCATION), "/admin");
    let fresh = confirmed.session_cookie();
    assert_ne!(fresh, admin, "a confirmation gives a new token");
    let started = post_form(
        &app,
        "/admin/impersonate",
        ORIGIN,
        Some(&fresh),
        "username=alice",
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert_eq!(started.header(header::LOCATION), "/account");
}

/// The password page: a wrong current password and a too short new one are the form again;
/// the change signs out alice's other session, whose next page is the login form saying why.
#[tokio::test]
async fn the_password_page_changes_the_password_and_the_login_page_says_why_others_ended() {
    let app = app().await;
    let mine = login(&app, "alice", "alice-password", "")
        .await
        .session_cookie();
    let other = login(&app, "alice", "alice-password", "")
        .await
        .session_cookie();
    let page = get(&app, "/password", Some(&mine)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"new_password\""));

    let wrong = post_form(
        &app,
        "/password",
        ORIGIN,
        Some(&mine),
        "current_password=nope-nope&new_password=new-alice-password",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("The current password is wrong."));
    let short = post_form(
        &app,
        "/password",
        ORIGIN,
        Some(&mine),
        "current_password=alice-password&new_password=short",
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.body.contains("8 to 128 characters"));

    let changed = post_form(
        &app,
        "/password",
        ORIGIN,
        Some(&mine),
        "current_password=alice-password&new_password=new-alice-password",
    )
    .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert_eq!(changed.header(header::LOCATION), "/account");
    let mine = changed.session_cookie();
    let account = get(&app, "/account", Some(&mine)).await;
    assert!(account.body.contains("Your password was changed"));

    let signed_out = get(&app, "/account", Some(&other)).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    let to = signed_out.header(header::LOCATION).to_owned();
    assert_eq!(to, "/login?next=/account&ended=password_changed");
    let login_page = get(&app, &to, None).await;
    assert!(login_page
        .body
        .contains("You were signed out: your password was changed."));
    assert!(login_page
        .body
        .contains("<input type=\"hidden\" name=\"next\" value=\"/account\">"));
    let relogin = login(&app, "alice", "new-alice-password", "").await;
    assert_eq!(relogin.status, StatusCode::SEE_OTHER);
}

/// The login page's `ended` takes only the reasons it knows, each with its sentence; any other
/// text shows nothing and is not echoed.
#[tokio::test]
async fn the_login_page_says_why_a_session_ended_in_fixed_words_only() {
    let app = app().await;
    for (ended, words) in [
        ("logged_out", "this session was logged out"),
        ("revoked", "your session was ended"),
        ("evicted", "a newer sign-in took this session&#39;s place"),
        ("password_changed", "your password was changed"),
        ("expired", "your session expired"),
    ] {
        let page = get(&app, &format!("/login?ended={ended}"), None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(words), "{ended}: {}", page.body);
    }
    let made_up = get(&app, "/login?ended=%3Cscript%3Ehacked", None).await;
    assert_eq!(made_up.status, StatusCode::OK);
    assert!(!made_up.body.contains("You were signed out"));
    assert!(!made_up.body.contains("hacked") && !made_up.body.contains("<script>"));
}
