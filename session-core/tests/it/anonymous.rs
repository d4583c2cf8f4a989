//! Anonymous sessions through the request core, on axum and actix-web, on the memory store and
//! on real Redis: created on a visitor's first write and never for a read, never a login for a
//! guard or `CurrentUser`, per-key and atomic writes under 50 concurrent requests, ended at
//! login with a new token that carries only the data the login handler chose.

use std::sync::Arc;

use crate::common::unique_prefix;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use redis::AsyncCommands as _;
use redis_harness::RedisServer;
use session_core::axum::SessionLayer;
use session_core::prelude::*;
use session_core::web::{AuthSession, CurrentUser};
use tower::ServiceExt as _;

const COOKIE: &str = "__Host-session";
const WRITERS: usize = 50;

async fn cart(visitor: AuthSession) -> Result<Json<Vec<String>>, Error> {
    Ok(Json(visitor.get("cart")?.unwrap_or_default()))
}

async fn add(mut visitor: AuthSession) -> Result<Json<usize>, Error> {
    // The window in which a whole-data save would lose other requests' items.
    tokio::task::yield_now().await;
    let cart = visitor
        .update("cart", |cart: Option<Vec<String>>| {
            let mut cart = cart.unwrap_or_default();
            cart.push(format!("item-{}", cart.len()));
            cart
        })
        .await?;
    Ok(Json(cart.len()))
}

async fn set_flash(mut visitor: AuthSession) -> Result<StatusCode, Error> {
    visitor.insert("flash", "saved").await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn take_flash(mut visitor: AuthSession) -> Result<Json<Option<String>>, Error> {
    Ok(Json(visitor.take("flash").await?))
}

async fn login(mut auth: AuthSession) -> Result<StatusCode, Error> {
    let mut carried = SessionData::new();
    if let Some(cart) = auth.get::<Vec<String>>("cart")? {
        carried.insert("cart", &cart)?;
    }
    auth.login(
        NewSession::new("alice")
            .with_roles(["USER"])
            .with_data(carried),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn whoami(auth: AuthSession) -> String {
    match auth.session() {
        Ok(Some(s)) => s.user_id().to_owned(),
        Ok(None) => format!(
            "nobody (anonymous: {})",
            auth.get::<serde_json::Value>("cart")
                .is_ok_and(|c| c.is_some())
        ),
        Err(e) => format!("error: {e}"),
    }
}

#[login_required]
async fn me(user: CurrentUser) -> String {
    user.user_id().to_owned()
}

async fn me_unguarded(user: CurrentUser) -> String {
    user.user_id().to_owned()
}

#[has_role("USER")]
async fn user_page() -> &'static str {
    "for users"
}

fn app(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/cart", get(cart).post(add))
        .route("/flash", get(take_flash).post(set_flash))
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/me", get(me))
        .route("/me-unguarded", get(me_unguarded))
        .route("/user", get(user_page))
        .layer(SessionLayer::new(store))
}

struct Answer {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Answer {
    /// The token value the response's `Set-Cookie` sets (not an expiry).
    fn token(&self) -> Option<String> {
        let cookie = self.set_cookie.as_deref()?;
        let value = cookie
            .strip_prefix(&format!("{COOKIE}="))?
            .split(';')
            .next()?;
        (!value.is_empty()).then(|| value.to_owned())
    }
}

async fn send(app: &Router, method: &str, path: &str, token: Option<&str>) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header(header::COOKIE, format!("{COOKIE}={token}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        set_cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// The whole life of an anonymous session on one store.
async fn anonymous_life(store: Arc<dyn SessionStore>) {
    let app = app(store);

    // Reads create nothing: no cookie, and every route sees no session.
    let read = send(&app, "GET", "/cart", None).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "[]"));
    assert_eq!(read.set_cookie, None, "a read created a session");
    let flash = send(&app, "GET", "/flash", None).await;
    assert_eq!((flash.body.as_str(), flash.set_cookie), ("null", None));

    // The first write creates the anonymous session and sets its cookie.
    let first = send(&app, "POST", "/cart", None).await;
    assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "1"));
    let anon = first
        .token()
        .expect("the first write sets a session cookie");
    let cookie = first.set_cookie.as_deref().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure"),
        "{cookie}"
    );

    // It is no login, for guards and for the extractors alike.
    for path in ["/me", "/me-unguarded", "/user"] {
        let refused = send(&app, "GET", path, Some(&anon)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let who = send(&app, "GET", "/whoami", Some(&anon)).await;
    assert_eq!(who.body, "nobody (anonymous: true)");

    // 50 requests of the visitor at once, each adding an item: none is lost.
    let adds: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (app, anon) = (app.clone(), anon.clone());
            tokio::spawn(async move { send(&app, "POST", "/cart", Some(&anon)).await })
        })
        .collect();
    for add in adds {
        let add = add.await.unwrap();
        assert_eq!(add.status, StatusCode::OK, "{}", add.body);
        assert_eq!(
            add.set_cookie, None,
            "a write to an existing session re-set the cookie"
        );
    }
    let items: Vec<String> =
        serde_json::from_str(&send(&app, "GET", "/cart", Some(&anon)).await.body).unwrap();
    assert_eq!(items.len(), WRITERS + 1, "lost items: {items:?}");

    // A flash message is shown once, even to two requests racing for it.
    assert_eq!(
        send(&app, "POST", "/flash", Some(&anon)).await.status,
        StatusCode::NO_CONTENT
    );
    let (a, b) = tokio::join!(
        send(&app, "GET", "/flash", Some(&anon)),
        send(&app, "GET", "/flash", Some(&anon))
    );
    let mut shown = [a.body, b.body];
    shown.sort();
    assert_eq!(shown, ["\"saved\"".to_owned(), "null".to_owned()]);
    assert_eq!(
        send(&app, "POST", "/flash", Some(&anon)).await.status,
        StatusCode::NO_CONTENT
    );

    // Login: a new token; the cart is carried over (the handler chose it), the flash is not;
    // the anonymous token names nothing any more.
    let login = send(&app, "POST", "/login", Some(&anon)).await;
    assert_eq!(login.status, StatusCode::NO_CONTENT);
    let user = login.token().expect("login sets a new cookie");
    assert_ne!(user, anon);
    assert_eq!(send(&app, "GET", "/me", Some(&user)).await.body, "alice");
    assert_eq!(
        send(&app, "GET", "/user", Some(&user)).await.status,
        StatusCode::OK
    );
    let carried: Vec<String> =
        serde_json::from_str(&send(&app, "GET", "/cart", Some(&user)).await.body).unwrap();
    assert_eq!(carried, items);
    assert_eq!(send(&app, "GET", "/flash", Some(&user)).await.body, "null");
    let old = send(&app, "GET", "/cart", Some(&anon)).await;
    assert_eq!((old.status, old.body.as_str()), (StatusCode::OK, "[]"));
    assert_eq!(
        send(&app, "GET", "/whoami", Some(&anon)).await.body,
        "nobody (anonymous: false)"
    );

    // A logged-in user's AuthSession writes go to the login session (no new cookie).
    let add = send(&app, "POST", "/cart", Some(&user)).await;
    assert_eq!((add.body.as_str(), add.set_cookie), ("52", None));
}

#[tokio::test]
async fn anonymous_sessions_on_the_memory_store() {
    anonymous_life(Arc::new(MemoryStore::new(SessionConfig::default()))).await;
}

#[tokio::test]
async fn anonymous_sessions_on_redis() {
    let server = RedisServer::start().unwrap();
    let prefix = unique_prefix();
    let config = SessionConfig::builder()
        .key_prefix(prefix.clone())
        .build()
        .unwrap();
    let store = Arc::new(RedisStore::connect(server.url(), config).await.unwrap());
    let app = app(store.clone());
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Reads of cookie-less visitors write nothing to Redis.
    for _ in 0..10 {
        send(&app, "GET", "/cart", None).await;
        send(&app, "GET", "/flash", None).await;
    }
    let keys: Vec<Vec<u8>> = raw.keys(format!("{prefix}:*")).await.unwrap();
    assert!(keys.is_empty(), "reads wrote {} keys", keys.len());
    anonymous_life(store).await;
}

#[tokio::test]
async fn anonymous_sessions_on_redis_with_the_cache() {
    let server = RedisServer::start().unwrap();
    let config = SessionConfig::builder()
        .key_prefix(unique_prefix())
        .build()
        .unwrap();
    let store = RedisStore::connect(server.url(), config)
        .await
        .unwrap()
        .with_cache(session_core::CacheConfig::default())
        .unwrap();
    anonymous_life(Arc::new(store)).await;
}

#[cfg(feature = "actix")]
mod actix {
    use actix_web::http::StatusCode;
    use actix_web::{test, web, App, HttpResponse};
    use session_core::actix::SessionMiddleware;
    use session_core::prelude::*;
    use session_core::web::{AuthSession, CurrentUser};

    async fn add(mut visitor: AuthSession) -> Result<HttpResponse, Error> {
        let n = visitor
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .await?;
        Ok(HttpResponse::Ok().body(n.to_string()))
    }

    async fn login(mut auth: AuthSession) -> Result<HttpResponse, Error> {
        let mut carried = SessionData::new();
        if let Some(n) = auth.get::<u32>("n")? {
            carried.insert("n", &n)?;
        }
        auth.login(NewSession::new("bob").with_data(carried))
            .await?;
        Ok(HttpResponse::NoContent().finish())
    }

    #[login_required]
    async fn me(user: CurrentUser) -> HttpResponse {
        HttpResponse::Ok().body(format!(
            "{} {:?}",
            user.user_id(),
            user.data().get::<u32>("n")
        ))
    }

    fn token_of<B>(res: &actix_web::dev::ServiceResponse<B>) -> Option<String> {
        let cookie = res.headers().get("set-cookie")?.to_str().ok()?;
        let value = cookie
            .strip_prefix(&format!("{}=", super::COOKIE))?
            .split(';')
            .next()?;
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The same rules on actix-web: no cookie for a read, a cookie at the first write, 401
    /// for the guard with the anonymous cookie, the login's new token carrying `n`.
    #[test]
    fn anonymous_sessions_on_actix() {
        actix_web::rt::System::new().block_on(anonymous_life_on_actix());
    }

    async fn anonymous_life_on_actix() {
        let store = std::sync::Arc::new(MemoryStore::new(SessionConfig::default()));
        let app = test::init_service(
            App::new()
                .wrap(SessionMiddleware::new(store))
                .route("/n", web::post().to(add))
                .route("/login", web::post().to(login))
                .route("/me", web::get().to(me)),
        )
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(token_of(&res), None);

        let res = test::call_service(&app, test::TestRequest::post().uri("/n").to_request()).await;
        let anon = token_of(&res).expect("the first write sets a cookie");
        let with = |req: test::TestRequest, token: &str| {
            req.insert_header(("Cookie", format!("{}={token}", super::COOKIE)))
                .to_request()
        };
        let res = test::call_service(&app, with(test::TestRequest::post().uri("/n"), &anon)).await;
        assert_eq!(test::read_body(res).await, "2");
        let res = test::call_service(&app, with(test::TestRequest::get().uri("/me"), &anon)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        let res =
            test::call_service(&app, with(test::TestRequest::post().uri("/login"), &anon)).await;
        let user = token_of(&res).expect("login sets a new cookie");
        assert_ne!(user, anon);
        let res = test::call_service(&app, with(test::TestRequest::get().uri("/me"), &user)).await;
        assert_eq!(test::read_body(res).await, "bob Ok(Some(2))");
    }
}
