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
