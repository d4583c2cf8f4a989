//! Router-level tests of the actix-web adapter (actix's test service, no network): the guards'
//! answers, one store lookup per request, the guard deciding before the body, the rejection
//! handler for every path, logout with the store down, the CSRF middleware.
#![cfg(feature = "actix")]

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test::{call_service, init_service, read_body, TestRequest};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, ResponseError};
use serde_json::Value;
use session_core::actix::SessionMiddleware;
use session_core::prelude::*;
use session_core::web::{AuthSession, CookieConfig, CurrentUser, Rejection, Require};
use switchable::Switchable;

use crate::switchable;

const COOKIE: &str = "sid";

fn run<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

fn middleware(store: Arc<Switchable>) -> SessionMiddleware {
    SessionMiddleware::new(store).with_cookie(CookieConfig::default().secure(false).name(COOKIE))
}

#[login_required]
async fn me(user: CurrentUser, auth: AuthSession) -> HttpResponse {
    assert!(auth.session().is_ok_and(|s| s.is_some()));
    HttpResponse::Ok().body(user.user_id().to_owned())
}

#[has_role("ADMIN")]
async fn admin_upload(body: Bytes) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} bytes", body.len()))
}

async fn login(mut auth: AuthSession) -> Result<HttpResponse, Error> {
    auth.login(NewSession::new("zoe").with_roles(["USER"]))
        .await?;
    Ok(HttpResponse::Ok().finish())
}

async fn logout(mut auth: AuthSession) -> Result<HttpResponse, Error> {
    if !auth.logout().await? {
        return Err(Error::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn fails_with_question_mark() -> Result<HttpResponse, Error> {
    Err(Error::NotFound)
}

async fn checks_a_role(user: CurrentUser) -> Result<HttpResponse, Rejection> {
    Require::role("ADMIN").check(&user)?;
    Ok(HttpResponse::Ok().finish())
}

fn with_cookie(req: TestRequest, token: &Token) -> TestRequest {
    req.insert_header((
        header::COOKIE,
        format!("{COOKIE}={}", token.as_cookie_value()),
    ))
}

async fn error_code<B: actix_web::body::MessageBody>(
    res: actix_web::dev::ServiceResponse<B>,
) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = serde_json::from_slice(&read_body(res).await).unwrap_or(Value::Null);
    (status, body["error"].as_str().unwrap_or("").to_owned())
}

#[test]
fn guards_answer_401_403_or_pass_with_one_store_lookup() {
    run(async {
        let store = Arc::new(Switchable::default());
        let app = init_service(
            App::new()
                .route("/me", web::get().to(me))
                .route("/upload", web::post().to(admin_upload))
                .wrap(middleware(store.clone())),
        )
        .await;
        let res = call_service(&app, TestRequest::get().uri("/me").to_request()).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNAUTHORIZED, "unauthenticated".into())
        );
        assert_eq!(
            store.loads.load(Ordering::SeqCst),
            0,
            "no cookie, no lookup"
        );

        let (alice, _) = store
            .create(NewSession::new("alice").with_roles(["USER"]))
            .await
            .unwrap();
        let (boss, _) = store
            .create(NewSession::new("boss").with_roles(["ADMIN"]))
            .await
            .unwrap();
        let res = call_service(
            &app,
            with_cookie(TestRequest::get().uri("/me"), &alice).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(read_body(res).await, "alice");
        assert_eq!(
            store.loads.load(Ordering::SeqCst),
            1,
            "guard + CurrentUser + AuthSession: one lookup"
        );
        let upload = |t: &Token| {
            with_cookie(TestRequest::post().uri("/upload"), t)
                .set_payload("x".repeat(10))
                .to_request()
        };
        let res = call_service(&app, upload(&alice)).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::FORBIDDEN, "forbidden".into())
        );
        let res = call_service(&app, upload(&boss)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(read_body(res).await, "10 bytes");
    });
}

#[test]
fn the_guard_decides_before_the_body_extractor_looks_at_the_body() {
    run(async {
        // A store that answers after a yield, like a network store.
        let store = Arc::new(Switchable::default());
        store.slow.store(true, Ordering::SeqCst);
        let app = init_service(
            App::new()
                .route("/upload", web::post().to(admin_upload))
                .wrap(middleware(store.clone())),
        )
        .await;
        let (alice, _) = store
            .create(NewSession::new("alice").with_roles(["USER"]))
            .await
            .unwrap();
        // Over `Bytes`' 256 KiB limit: that extractor alone would answer 413.
        let req = with_cookie(TestRequest::post().uri("/upload"), &alice)
            .set_payload(vec![b'x'; 300 * 1024])
            .to_request();
        let res = call_service(&app, req).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::FORBIDDEN, "forbidden".into())
        );
    });
}

#[test]
fn login_sets_a_new_cookie_and_logout_with_the_store_down_is_503_and_clears_it() {
    run(async {
        let store = Arc::new(Switchable::default());
        let app = init_service(
            App::new()
                .route("/login", web::post().to(login))
                .route("/logout", web::post().to(logout))
                .wrap(middleware(store.clone())),
        )
        .await;
        let (planted, _) = store.create(NewSession::new("mallory")).await.unwrap();
        let res = call_service(
            &app,
            with_cookie(TestRequest::post().uri("/login"), &planted).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let set = res
            .headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(set.starts_with("sid=") && set.contains("HttpOnly"), "{set}");
        assert!(
            !set.contains(&planted.as_cookie_value()),
            "login kept the planted token"
        );
        assert!(
            store.load(&planted).await.unwrap().is_none(),
            "the old session ended"
        );
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );

        let (alice, _) = store.create(NewSession::new("alice")).await.unwrap();
        store.down.store(true, Ordering::SeqCst);
        let res = call_service(
            &app,
            with_cookie(TestRequest::post().uri("/logout"), &alice).to_request(),
        )
        .await;
        let set = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            error_code(res).await,
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable".into())
        );
        assert!(
            set.as_deref().is_some_and(|s| s.contains("Max-Age=0")),
            "a logout refused with 503 must still clear the cookie: {set:?}"
        );
    });
}

#[test]
fn the_rejection_handler_answers_guards_errors_checks_and_csrf() {
    run(async {
        let store = Arc::new(Switchable::default());
        let sessions =
            middleware(store.clone()).with_rejection(|rejection, _req| match rejection {
                Rejection::Unauthenticated { .. } => HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/login"))
                    .finish(),
                Rejection::Forbidden { .. } | Rejection::CrossSite { .. } => {
                    HttpResponse::SeeOther()
                        .insert_header((header::LOCATION, "/denied"))
                        .finish()
                }
                other => other.error_response(),
            });
        let app = init_service(
            App::new()
                .route("/me", web::get().to(me))
                .route("/err", web::get().to(fails_with_question_mark))
                .route("/check", web::get().to(checks_a_role))
                .route("/login", web::post().to(login))
                .wrap(sessions),
        )
        .await;
        let (alice, _) = store
            .create(NewSession::new("alice").with_roles(["USER"]))
            .await
            .unwrap();
        for (req, location) in [
            (TestRequest::get().uri("/me").to_request(), "/login"),
            (TestRequest::get().uri("/err").to_request(), "/login"),
            (
                with_cookie(TestRequest::get().uri("/check"), &alice).to_request(),
                "/denied",
            ),
            (
                TestRequest::post()
                    .uri("/login")
                    .insert_header((header::HOST, "app.example"))
                    .insert_header((header::ORIGIN, "https://evil.example"))
                    .to_request(),
                "/denied",
            ),
        ] {
            let path = req.path().to_owned();
            let res = call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(
                res.headers().get(header::LOCATION).unwrap(),
                location,
                "{path}"
            );
        }
    });
}
