//! Contract version 3, "Why a session ended": the 401 for a token whose session ended says
//! why (`logged_out`, `revoked`, `evicted`, `password_changed`, `expired`); a token that never
//! named a session, a malformed one or no cookie at all gets no `reason`. One test per reason.

use crate::support;

use std::time::Duration;

use support::*;

/// `GET /me` with `cookie` must be 401 `unauthenticated` with `reason` (or without one).
async fn assert_ended(c: &Client, cookie: &Cookie, reason: Option<&str>) {
    let res = c.get("/me", Some(cookie)).await;
    res.assert_error(401, "unauthenticated");
    assert_eq!(
        res.body.get("reason").and_then(|r| r.as_str()),
        reason,
        "GET /me: {}",
        res.body
    );
}

/// Two sessions of a fresh user (one server, one Redis).
async fn two_sessions(c: &Client, user: &str) -> (Cookie, Cookie) {
    c.register(user, "a-long-password-1")
        .await
        .assert_status(201);
    let a = c.login_ok(user, "a-long-password-1").await;
    let b = c.login_ok(user, "a-long-password-1").await;
    (a, b)
}

#[tokio::test]
async fn a_logged_out_session_says_logged_out_and_no_session_says_nothing() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    c.post_empty("/logout", Some(&cookie))
        .await
        .assert_status(204);
    assert_ended(&c, &cookie, Some("logged_out")).await;
    // Still so on the next request: the reason is kept, not used up.
    assert_ended(&c, &cookie, Some("logged_out")).await;
    // No cookie, a well-formed token that never named a session, a malformed one: no reason.
    let res = c.get("/me", None).await;
    res.assert_error(401, "unauthenticated");
    assert!(res.body.get("reason").is_none(), "{}", res.body);
    assert_ended(&c, &c.cookie(&unknown_token()), None).await;
    assert_ended(&c, &c.cookie("garbage"), None).await;
}

#[tokio::test]
async fn revoked_sessions_say_revoked_for_each_way_of_revoking() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();

    // DELETE /sessions/{id} from another session of the user.
    let (keep, victim) = two_sessions(&c, "rita").await;
    c.end_other_session(&keep).await;
    assert_ended(&c, &victim, Some("revoked")).await;

    // DELETE /sessions/others (a fresh session: just logged in).
    let other = c.login_ok("rita", "a-long-password-1").await;
    c.delete("/sessions/others", Some(&keep))
        .await
        .assert_status(204);
    assert_ended(&c, &other, Some("revoked")).await;

    // DELETE /sessions: every session, the caller's too.
    let other = c.login_ok("rita", "a-long-password-1").await;
    c.delete("/sessions", Some(&keep)).await.assert_status(204);
    assert_ended(&c, &other, Some("revoked")).await;
    assert_ended(&c, &keep, Some("revoked")).await;

    // DELETE /admin/users/{u}/sessions.
    let (a, b) = two_sessions(&c, "sam").await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.delete("/admin/users/sam/sessions", Some(&admin))
        .await
        .assert_status(204);
    assert_ended(&c, &a, Some("revoked")).await;
    assert_ended(&c, &b, Some("revoked")).await;
}

#[tokio::test]
async fn a_session_past_the_per_user_limit_says_evicted() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("SESSION_MAX_PER_USER", 2)
        .start()
        .await;
    let c = server.client();
    let (oldest, second) = two_sessions(&c, "tess").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let newest = c.login_ok("tess", "a-long-password-1").await;
    assert_ended(&c, &oldest, Some("evicted")).await;
    c.get("/me", Some(&second)).await.assert_status(200);
    c.get("/me", Some(&newest)).await.assert_status(200);
}

#[tokio::test]
async fn the_other_sessions_of_a_password_change_say_password_changed() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let (here, elsewhere) = two_sessions(&c, "uma").await;
    let res = c
        .put(
            "/password",
            Some(&here),
            json!({"current_password": "a-long-password-1", "new_password": "a-new-password-2"}),
        )
        .await;
    res.assert_status(204);
    assert_ended(&c, &elsewhere, Some("password_changed")).await;
    // The session that changed it goes on under a new token; its old token was rotated away,
    // which names no ended session.
    let renewed = c
        .new_cookie(&res)
        .expect("a new token for the changing session");
    c.get("/me", Some(&renewed)).await.assert_status(200);
    assert_ended(&c, &here, None).await;
}

#[tokio::test]
async fn a_session_past_its_absolute_lifetime_says_expired() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("SESSION_IDLE_SECS", 2)
        .env("SESSION_ABSOLUTE_SECS", 2)
        .start()
        .await;
    let c = server.client();
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&cookie)).await.assert_status(200);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_ended(&c, &cookie, Some("expired")).await;
}
