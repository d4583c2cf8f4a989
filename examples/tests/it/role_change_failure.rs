//! A role change touches two stores (the sessions and the accounts) without a transaction
//! across them. In-process (the demo's own router, `tower::ServiceExt::oneshot`), with an
//! account store whose role update fails: a removed role must be gone from every session
//! anyway, existing or created by a later login, and the admin is told to retry (503).

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use demo::accounts::{Account, AccountStore, MemoryAccounts};
use demo::password_queue::PasswordQueue;
use demo::{app, AppState};
use session_core::password::Passwords;
use session_core::throttle::ThrottleConfig;
use session_core::web::CookieConfig;
use session_core::web::CsrfPolicy;
use session_core::{
    Error, MemoryStore, NewSession, SessionConfig, SessionStore, Token, UnavailableKind,
};
use tower::ServiceExt as _;

/// Accounts whose role updates always fail (the store went away between the two writes).
struct RolesUpdateFails(MemoryAccounts);

#[async_trait]
impl AccountStore for RolesUpdateFails {
    async fn get(&self, username: &str) -> Result<Option<Account>, Error> {
        self.0.get(username).await
    }
    async fn create(&self, account: &Account) -> Result<bool, Error> {
        self.0.create(account).await
    }
    async fn set_roles(&self, _: &str, _: &[String]) -> Result<bool, Error> {
        Err(Error::Unavailable {
            kind: UnavailableKind::Connection,
            detail: "test: the account store failed".to_owned(),
        })
    }
    async fn release_admin(&self, username: &str) -> Result<bool, Error> {
        self.0.release_admin(username).await
    }
    async fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool, Error> {
        self.0.set_password_hash(username, hash).await
    }
}

fn account(name: &str, roles: &[&str]) -> Account {
    Account {
        username: name.to_owned(),
        password_hash: "unused".to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn get(path: &str, token: &Token) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header(header::COOKIE, format!("sid={}", token.as_cookie_value()))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_failed_account_update_leaves_no_session_with_the_removed_role() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let accounts = MemoryAccounts::default();
    accounts
        .create(&account("admin", &["USER", "ADMIN"]))
        .await
        .unwrap();
    accounts
        .create(&account("carol", &["USER", "ADMIN"]))
        .await
        .unwrap();
    let state = AppState {
        store: store.clone(),
        accounts: Arc::new(RolesUpdateFails(accounts)),
        passwords: Passwords::default(),
        throttle: ThrottleConfig::default(),
        password_queue: PasswordQueue::new(4, 4),
        step_up: std::time::Duration::from_secs(300),
        metrics: None,
        dbsc: None,
    };
    let service = app(
        state,
        CookieConfig::default().secure(false).name("sid"),
        CsrfPolicy::default(),
    );
    let admin_roles = ["USER", "ADMIN"];
    let (admin, _) = store
        .create(NewSession::new("admin").with_roles(admin_roles))
        .await
        .unwrap();
    let (carol, _) = store
        .create(NewSession::new("carol").with_roles(admin_roles))
        .await
        .unwrap();
    assert_eq!(
        service
            .clone()
            .oneshot(get("/admin", &carol))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let req = Request::builder()
        .method("PUT")
        .uri("/admin/users/carol/roles")
        .header(header::COOKIE, format!("sid={}", admin.as_cookie_value()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"roles":["USER"]}"#))
        .unwrap();
    let res = service.clone().oneshot(req).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the admin must retry"
    );

    // The account still says ADMIN, but no session of carol's honours it: neither the
    // existing one nor one a login creates now from the account's roles.
    assert_eq!(
        service
            .clone()
            .oneshot(get("/admin", &carol))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN,
        "the removed role is still honoured after a failed account update"
    );
    let (_, later) = store
        .create(NewSession::new("carol").with_roles(admin_roles))
        .await
        .unwrap();
    assert_eq!(later.roles(), ["USER"]);
}
