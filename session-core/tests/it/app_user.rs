//! The application's user in one extractor (`Authenticated<L>` over the app's `UserLoader` `L`),
//! on axum and actix-web: loaded once per request however many extractors ask, never without a
//! login session (anonymous included), 401 for a user that no longer exists, 503 when the
//! app's storage is down; on actix-web, 500 (logged) without the loader in the app's data (on
//! axum that does not compile: `tests/ui/fail/authenticated_without_loader.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use session_core::axum::SessionLayer;
use session_core::prelude::*;
use session_core::web::{AuthSession, Authenticated, CurrentUser, UserLoader};
use session_core::{Session, UnavailableKind};
use tower::ServiceExt as _;

const COOKIE: &str = "__Host-session";

#[derive(Clone, Debug, PartialEq)]
struct Account {
    id: String,
    name: String,
}

/// The app's "database": `carol` is gone, `dave`'s row is on a server that is down.
#[derive(Clone, Default)]
struct Accounts {
    calls: Arc<AtomicUsize>,
}

impl UserLoader for Accounts {
    type User = Account;

    async fn load_user(&self, session: &Session) -> Result<Option<Account>, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(
            !session.is_anonymous(),
            "asked to load a user for an anonymous session"
        );
        match session.user_id() {
            "carol" => Ok(None),
            "dave" => Err(Error::Unavailable {
                kind: UnavailableKind::Connection,
                detail: "accounts database down".to_owned(),
            }),
            id => Ok(Some(Account {
                id: id.to_owned(),
                name: id.to_uppercase(),
            })),
        }
    }
}

async fn login(mut auth: AuthSession, body: String) -> Result<StatusCode, Error> {
    auth.login(NewSession::new(body).with_roles(["USER"]))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remember(mut visitor: AuthSession) -> Result<StatusCode, Error> {
    visitor.insert("seen", &true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A guard, the session and the user twice: one store load, one user load.
#[has_role("USER")]
async fn profile(
    user: CurrentUser,
    Authenticated(account): Authenticated<Accounts>,
    again: Authenticated<Accounts>,
) -> String {
    assert_eq!(account, *again);
    assert_eq!(account.id, user.user_id());
    account.name
}

fn app(store: Arc<dyn SessionStore>, calls: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/remember", post(remember))
        .route("/profile", get(profile))
        .layer(SessionLayer::new(store))
        .with_state(Accounts { calls })
}

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header(header::COOKIE, format!("{COOKIE}={token}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let token = res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.strip_prefix(&format!("{COOKIE}=")))
        .and_then(|c| c.split(';').next())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, token, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_app_user_is_loaded_once_per_request_and_only_for_a_login() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(store, Arc::clone(&calls));
    let loads = || calls.load(Ordering::SeqCst);

    // No session, an anonymous one: 401, and the loader is never asked.
    assert_eq!(
        send(&app, "GET", "/profile", None, "").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, anon, _) = send(&app, "POST", "/remember", None, "").await;
    let anon = anon.expect("anonymous session cookie");
    let (status, _, _) = send(&app, "GET", "/profile", Some(&anon), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(loads(), 0);

    // Alice: her account, loaded once for two extractions.
    let (_, alice, _) = send(&app, "POST", "/login", None, "alice").await;
    let alice = alice.expect("login cookie");
    let (status, _, body) = send(&app, "GET", "/profile", Some(&alice), "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ALICE"));
    assert_eq!(loads(), 1);
    send(&app, "GET", "/profile", Some(&alice), "").await;
    assert_eq!(loads(), 2, "one load per request");

    // Carol's account is gone: 401. Dave's storage is down: 503 (fail closed).
    let (_, carol, _) = send(&app, "POST", "/login", None, "carol").await;
    let (status, _, _) = send(&app, "GET", "/profile", carol.as_deref(), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, dave, _) = send(&app, "POST", "/login", None, "dave").await;
    let (status, _, _) = send(&app, "GET", "/profile", dave.as_deref(), "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[cfg(feature = "actix")]
mod actix {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use actix_web::http::StatusCode;
    use actix_web::test::{call_service, init_service, read_body, TestRequest};
    use actix_web::{web, App, HttpResponse};
    use session_core::actix::SessionMiddleware;
    use session_core::prelude::*;
    use session_core::web::{AuthSession, Authenticated};

    use super::Accounts;

    async fn login(mut auth: AuthSession) -> Result<HttpResponse, Error> {
        auth.login(NewSession::new("erin").with_roles(["USER"]))
            .await?;
        Ok(HttpResponse::NoContent().finish())
    }

    #[has_role("USER")]
    async fn profile(
        Authenticated(account): Authenticated<Accounts>,
        again: Authenticated<Accounts>,
    ) -> HttpResponse {
        assert_eq!(account, *again);
        HttpResponse::Ok().body(account.name)
    }

    #[test]
    fn the_app_user_on_actix() {
        actix_web::rt::System::new().block_on(async {
            let calls = Arc::new(AtomicUsize::new(0));
            let store = Arc::new(MemoryStore::new(SessionConfig::default()));
            let app = init_service(
                App::new()
                    .wrap(SessionMiddleware::new(store))
                    .app_data(web::Data::new(Accounts {
                        calls: Arc::clone(&calls),
                    }))
                    .route("/login", web::post().to(login))
                    .route("/profile", web::get().to(profile)),
            )
            .await;
            let res = call_service(&app, TestRequest::get().uri("/profile").to_request()).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            let res = call_service(&app, TestRequest::post().uri("/login").to_request()).await;
            let cookie = res
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|c| c.split(';').next())
                .expect("login cookie")
                .to_owned();
            let res = call_service(
                &app,
                TestRequest::get()
                    .uri("/profile")
                    .insert_header(("Cookie", cookie))
                    .to_request(),
            )
            .await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(read_body(res).await, "ERIN");
            assert_eq!(calls.load(Ordering::SeqCst), 1);

            // Without the loader in the app's data: a programming error, 500 (and a log line).
            let bare = init_service(
                App::new()
                    .wrap(SessionMiddleware::new(Arc::new(MemoryStore::new(
                        SessionConfig::default(),
                    ))))
                    .route("/login", web::post().to(login))
                    .route("/profile", web::get().to(profile)),
            )
            .await;
            let res = call_service(&bare, TestRequest::post().uri("/login").to_request()).await;
            let cookie = res
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|c| c.split(';').next())
                .expect("login cookie")
                .to_owned();
            let res = call_service(
                &bare,
                TestRequest::get()
                    .uri("/profile")
                    .insert_header(("Cookie", cookie))
                    .to_request(),
            )
            .await;
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        });
    }
}
