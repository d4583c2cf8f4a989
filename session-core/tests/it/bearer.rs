//! The session carried by `Authorization: Bearer <token>` (`with_bearer`), through both adapters
//! (axum's `oneshot`, actix-web's test service; no network): the same handlers answer a cookie
//! client and a header client, a header client never gets a cookie and gets its new tokens from
//! `AuthSession::issued_token`, both carriers at once are refused before any handler, the CSRF
//! check skips header requests only, and a 401 challenges.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;

use session_core::prelude::*;
use session_core::web::{AuthSession, BearerConfig, CookieConfig, CurrentUser};

thread_local! {
    /// How often a handler's body ran, per test (each test runs on a thread of its own).
    static RAN: Cell<usize> = const { Cell::new(0) };
}

fn ran() -> usize {
    RAN.with(Cell::get)
}

const COOKIE: &str = "sid";

fn cookie_config() -> CookieConfig {
    CookieConfig::default().secure(false).name(COOKIE)
}

// The handlers, written once: `Result<String, Error>` answers on both frameworks.

async fn login(mut auth: AuthSession) -> Result<String, Error> {
    RAN.with(|r| r.set(r.get() + 1));
    auth.login(NewSession::new("zoe").with_roles(["USER"]))
        .await?;
    Ok(issued(&auth))
}

async fn login_header(mut auth: AuthSession) -> Result<String, Error> {
    auth.use_header_transport()?;
    login(auth).await
}

#[login_required]
async fn me(user: CurrentUser) -> String {
    RAN.with(|r| r.set(r.get() + 1));
    user.user_id().to_owned()
}

#[login_required]
async fn rotate(mut auth: AuthSession) -> Result<String, Error> {
    auth.rotate().await?;
    Ok(issued(&auth))
}

async fn logout(mut auth: AuthSession) -> Result<String, Error> {
    if !auth.logout().await? {
        return Err(Error::NotFound);
    }
    Ok(String::new())
}

/// The token issued to a header client, or "" (a cookie client's goes in its cookie).
fn issued(auth: &AuthSession) -> String {
    auth.issued_token()
        .map(|t| t.as_cookie_value())
        .unwrap_or_default()
}

/// One request, as both adapters' tests send it.
#[derive(Default)]
struct Req {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Req {
    fn get(path: &'static str) -> Self {
        Self {
            method: "GET",
            path,
            ..Self::default()
        }
    }

    fn post(path: &'static str) -> Self {
        Self {
            method: "POST",
            path,
            ..Self::default()
        }
    }

    fn cookie(mut self, token: &str) -> Self {
        self.headers.push(("cookie", format!("{COOKIE}={token}")));
        self
    }

    fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A write another site's page makes the browser send.
    fn cross_site(self) -> Self {
        self.header("host", "app.example")
            .header("origin", "https://evil.example")
    }
}

/// An answer, as both adapters' tests read it.
#[derive(Debug)]
struct Res {
    status: u16,
    set_cookie: Vec<String>,
    www_authenticate: Option<String>,
    vary: Vec<String>,
    cache_control: Option<String>,
    body: String,
}

impl Res {
    /// The session cookie this answer sets (not one that drops it), if any.
    fn new_cookie(&self) -> Option<String> {
        self.set_cookie.iter().find_map(|c| {
            let value = c.strip_prefix(&format!("{COOKIE}="))?.split(';').next()?;
            (!value.is_empty()).then(|| value.to_owned())
        })
    }
}

/// Every behaviour of header transport, on the app `send` sends to, over `store`.
async fn header_transport_behaves<F>(send: impl Fn(Req) -> F, store: &dyn SessionStore)
where
    F: Future<Output = Res>,
{
    // A cookie login: a cookie, no token in the body.
    let res = send(Req::post("/login")).await;
    assert_eq!(res.status, 200, "{res:?}");
    let by_cookie = res.new_cookie().expect("a cookie login sets the cookie");
    assert_eq!(res.body, "");

    // A login asking for header transport: the token in the body, no Set-Cookie at all.
    let res = send(Req::post("/login/header")).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert!(res.set_cookie.is_empty(), "{res:?}");
    assert_eq!(res.cache_control.as_deref(), Some("no-store"), "{res:?}");
    let token = res.body.clone();
    assert_eq!(token.len(), 51, "{res:?}");

    // The header carries the session to the guards and extractors, as the cookie does.
    for req in [
        Req::get("/me").bearer(&token),
        Req::get("/me").cookie(&by_cookie),
    ] {
        let res = send(req).await;
        assert_eq!((res.status, res.body.as_str()), (200, "zoe"), "{res:?}");
        assert_eq!(res.cache_control.as_deref(), Some("no-store"));
        assert!(res.set_cookie.is_empty(), "{res:?}");
        assert!(
            res.vary
                .iter()
                .any(|v| v.eq_ignore_ascii_case("authorization"))
                && res.vary.iter().any(|v| v.eq_ignore_ascii_case("cookie")),
            "{res:?}"
        );
    }
    // Any case of the scheme.
    let res = send(Req::get("/me").header("authorization", format!("bEARER {token}"))).await;
    assert_eq!(res.status, 200, "{res:?}");

    // Both at once: 400 before any handler, whichever of them is live.
    let before = ran();
    for req in [
        Req::get("/me").cookie(&by_cookie).bearer(&token),
        Req::post("/login").cookie(&by_cookie).bearer(&token),
    ] {
        let res = send(req).await;
        assert_eq!(res.status, 400, "{res:?}");
        assert!(res.body.contains("bad_request"), "{res:?}");
    }
    assert_eq!(ran(), before, "a handler ran for a request with both");

    // Malformed bearer values are no token: 401 (with the challenge), never a 5xx.
    for value in ["Bearer", "Bearer garbage", "Bearer a b"] {
        let res = send(Req::get("/me").header("authorization", value)).await;
        assert_eq!(res.status, 401, "{value:?}: {res:?}");
        assert_eq!(
            res.www_authenticate.as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{value:?}"
        );
    }
    // A token that names no session: 401 invalid_token. None at all: a plain challenge.
    let unknown =
        Token::generate(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap()
            .as_cookie_value();
    let res = send(Req::get("/me").bearer(&unknown)).await;
    assert_eq!(res.status, 401, "{res:?}");
    assert_eq!(
        res.www_authenticate.as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    let res = send(Req::get("/me")).await;
    assert_eq!(
        (res.status, res.www_authenticate.as_deref()),
        (401, Some("Bearer"))
    );

    // CSRF: skipped for the header, enforced for the cookie and for neither.
    let res = send(Req::post("/rotate").bearer(&token).cross_site()).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert!(res.set_cookie.is_empty(), "{res:?}");
    let rotated = res.body.clone();
    assert_eq!(
        rotated.len(),
        51,
        "rotation hands the header client its new token"
    );
    assert_ne!(rotated, token);
    for req in [
        Req::post("/rotate").cookie(&by_cookie).cross_site(),
        Req::post("/login").cross_site(),
        Req::post("/login")
            .header("authorization", "Bearer garbage")
            .cross_site(),
    ] {
        let res = send(req).await;
        assert_eq!(res.status, 403, "{res:?}");
        assert!(res.body.contains("csrf"), "{res:?}");
    }
    // The old token is dead (invalid_token, with why it ended: nothing to say for a rotation).
    let res = send(Req::get("/me").bearer(&token)).await;
    assert_eq!(res.status, 401, "{res:?}");
    assert_eq!(send(Req::get("/me").bearer(&rotated)).await.status, 200);

    // A cookie client's rotation: a new cookie, nothing in the body.
    let res = send(Req::post("/rotate").cookie(&by_cookie)).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body, "", "a cookie client's token never goes in a body");
    assert!(res.new_cookie().is_some(), "{res:?}");

    // Logout by header: the session ends, no cookie to expire.
    let res = send(Req::post("/logout").bearer(&rotated)).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert!(res.set_cookie.is_empty(), "{res:?}");
    let res = send(Req::get("/me").bearer(&rotated)).await;
    assert_eq!(res.status, 401, "{res:?}");
    assert!(res.body.contains("logged_out"), "{res:?}");
    let parsed = Token::parse(&rotated).unwrap();
    assert!(store.load(&parsed).await.unwrap().is_none());
}

/// Header transport asked for on a layer without `with_bearer`: a loud 500, never a token the
/// client could not present; the bearer header is not read at all there.
async fn cookie_only_layer_ignores_the_header<F>(send: impl Fn(Req) -> F, store: &dyn SessionStore)
where
    F: Future<Output = Res>,
{
    let res = send(Req::post("/login/header")).await;
    assert_eq!(res.status, 500, "{res:?}");
    assert!(res.set_cookie.is_empty(), "{res:?}");
    let (token, _) = store.create(NewSession::new("zoe")).await.unwrap();
    let token = token.as_cookie_value();
    let res = send(Req::get("/me").bearer(&token)).await;
    assert_eq!((res.status, res.www_authenticate), (401, None));
    // Not "both": the header is not ours here.
    let res = send(Req::get("/me").cookie(&token).bearer("whatever")).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert!(!res
        .vary
        .iter()
        .any(|v| v.eq_ignore_ascii_case("authorization")));
}

mod axum_app {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::{get, post};
    use axum::Router;
    use session_core::axum::SessionLayer;
    use tower::ServiceExt as _;

    use super::*;

    async fn send(app: &Router, req: Req) -> Res {
        let mut builder = Request::builder().method(req.method).uri(req.path);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        let res = app
            .clone()
            .oneshot(builder.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let headers = res.headers();
        let all = |name| {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let (set_cookie, vary) = (all("set-cookie"), all("vary"));
        let one = |name| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        let (www_authenticate, cache_control) = (one("www-authenticate"), one("cache-control"));
        let status = res.status().as_u16();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        Res {
            status,
            set_cookie,
            www_authenticate,
            vary,
            cache_control,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    fn app(layer: SessionLayer) -> Router {
        Router::new()
            .route("/login", post(login))
            .route("/login/header", post(login_header))
            .route("/me", get(me))
            .route("/rotate", post(rotate))
            .route("/logout", post(logout))
            .layer(layer.with_cookie(cookie_config()))
    }

    #[tokio::test]
    async fn header_transport_on_axum() {
        let store = Arc::new(MemoryStore::new(SessionConfig::default()));
        let app = app(SessionLayer::new(store.clone()).with_bearer(BearerConfig::default()));
        header_transport_behaves(|req| send(&app, req), store.as_ref()).await;
    }

    #[tokio::test]
    async fn a_cookie_only_layer_on_axum_ignores_the_header() {
        let store = Arc::new(MemoryStore::new(SessionConfig::default()));
        let app = app(SessionLayer::new(store.clone()));
        cookie_only_layer_ignores_the_header(|req| send(&app, req), store.as_ref()).await;
    }

    /// Another header name: read there, and `Authorization` is then not ours.
    #[tokio::test]
    async fn a_header_of_its_own_name() {
        let store = Arc::new(MemoryStore::new(SessionConfig::default()));
        let bearer = BearerConfig::default().header("X-Session").unwrap();
        let app = app(SessionLayer::new(store.clone()).with_bearer(bearer));
        let (token, _) = store.create(NewSession::new("zoe")).await.unwrap();
        let token = token.as_cookie_value();
        let req = Req::get("/me").header("x-session", format!("Bearer {token}"));
        let res = send(&app, req).await;
        assert_eq!(res.status, 200, "{res:?}");
        assert!(res.vary.iter().any(|v| v.eq_ignore_ascii_case("x-session")));
        assert_eq!(send(&app, Req::get("/me").bearer(&token)).await.status, 401);
    }
}

#[cfg(feature = "actix")]
mod actix_app {
    use actix_web::test::{call_service, init_service, read_body, TestRequest};
    use actix_web::{web, App};
    use std::pin::Pin;
    use std::rc::Rc;

    use session_core::actix::SessionMiddleware;

    use super::*;

    fn run<F: Future>(f: F) -> F::Output {
        actix_web::rt::System::new().block_on(f)
    }

    /// A way to send requests to the test app over `middleware`.
    async fn app(
        middleware: SessionMiddleware,
    ) -> impl Fn(Req) -> Pin<Box<dyn Future<Output = Res>>> {
        let app = Rc::new(
            init_service(
                App::new()
                    .route("/login", web::post().to(login))
                    .route("/login/header", web::post().to(login_header))
                    .route("/me", web::get().to(me))
                    .route("/rotate", web::post().to(rotate))
                    .route("/logout", web::post().to(logout))
                    .wrap(middleware.with_cookie(cookie_config())),
            )
            .await,
        );
        move |req: Req| {
            let app = Rc::clone(&app);
            Box::pin(async move {
                let method = actix_web::http::Method::from_bytes(req.method.as_bytes()).unwrap();
                let mut test = TestRequest::default().method(method).uri(req.path);
                for (name, value) in req.headers {
                    test = test.append_header((name, value));
                }
                let res = call_service(app.as_ref(), test.to_request()).await;
                let headers = res.headers();
                let all = |name| {
                    headers
                        .get_all(name)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .collect::<Vec<_>>()
                };
                let (set_cookie, vary) = (all("set-cookie"), all("vary"));
                let one = |name| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
                let (www_authenticate, cache_control) =
                    (one("www-authenticate"), one("cache-control"));
                let status = res.status().as_u16();
                let body = read_body(res).await;
                Res {
                    status,
                    set_cookie,
                    www_authenticate,
                    vary,
                    cache_control,
                    body: String::from_utf8(body.to_vec()).unwrap(),
                }
            })
        }
    }

    #[test]
    fn header_transport_on_actix() {
        run(async {
            let store = Arc::new(MemoryStore::new(SessionConfig::default()));
            let middleware =
                SessionMiddleware::new(store.clone()).with_bearer(BearerConfig::default());
            header_transport_behaves(app(middleware).await, store.as_ref()).await;
        });
    }

    #[test]
    fn a_cookie_only_middleware_on_actix_ignores_the_header() {
        run(async {
            let store = Arc::new(MemoryStore::new(SessionConfig::default()));
            let send = app(SessionMiddleware::new(store.clone())).await;
            cookie_only_layer_ignores_the_header(send, store.as_ref()).await;
        });
    }
}
