//! Two demo servers on one Redis: sessions, accounts, roles and lockouts are shared, and the
//! death of one server logs nobody out.

use crate::support;

use support::*;

async fn two_servers(redis: &RedisServer) -> (Server, Server) {
    let a = ServerBuilder::redis(redis.url())
        .env("LOGIN_MAX_FAILURES", 3)
        .env("LOGIN_LOCKOUT_SECS", 60)
        .start()
        .await;
    let b = ServerBuilder::redis(redis.url())
        .env("LOGIN_MAX_FAILURES", 3)
        .env("LOGIN_LOCKOUT_SECS", 60)
        .start()
        .await;
    (a, b)
}

#[tokio::test]
async fn login_on_a_works_on_b() {
    let redis = redis();
    let (a, b) = two_servers(&redis).await;
    let cookie = a.client().login_ok(ALICE.0, ALICE.1).await;
    let me = b.client().get("/me", Some(&cookie)).await;
    me.assert_status(200);
    assert_eq!(me.body, json!({"username": "alice", "roles": ["USER"]}));
    let admin = a.client().login_ok(ADMIN.0, ADMIN.1).await;
    b.client()
        .get("/admin", Some(&admin))
        .await
        .assert_status(200);
    b.client()
        .get("/admin", Some(&cookie))
        .await
        .assert_error(403, "forbidden");
    // The session list on B shows the session created on A as current.
    let list = b.client().get("/sessions", Some(&cookie)).await;
    let list = list.body.as_array().expect("list").clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["current"], true);
}

#[tokio::test]
async fn logout_on_b_ends_the_session_on_a() {
    let redis = redis();
    let (a, b) = two_servers(&redis).await;
    let cookie = a.client().login_ok(ALICE.0, ALICE.1).await;
    a.client()
        .get("/me", Some(&cookie))
        .await
        .assert_status(200);
    b.client()
        .post_empty("/logout", Some(&cookie))
        .await
        .assert_status(204);
    a.client()
        .get_until("/me", Some(&cookie), 401)
        .await
        .assert_error(401, "unauthenticated");
    b.client()
        .get("/me", Some(&cookie))
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn revocations_on_one_server_apply_on_the_other() {
    let redis = redis();
    let (a, b) = two_servers(&redis).await;
    let (ca, cb) = (a.client(), b.client());
    let alice_a = ca.login_ok(ALICE.0, ALICE.1).await;
    let alice_b = cb.login_ok(ALICE.0, ALICE.1).await;
    let admin = ca.login_ok(ADMIN.0, ADMIN.1).await;
    // DELETE /sessions/{id} on B for the session made on A.
    let list = cb.get("/sessions", Some(&alice_b)).await;
    let other = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .expect("A's session")
        .clone();
    cb.delete(
        &format!("/sessions/{}", other["id"].as_str().unwrap()),
        Some(&alice_b),
    )
    .await
    .assert_status(204);
    ca.get_until("/me", Some(&alice_a), 401)
        .await
        .assert_error(401, "unauthenticated");
    ca.get("/me", Some(&alice_b)).await.assert_status(200);
    // The admin on A revokes all of alice's sessions; B refuses them.
    ca.delete("/admin/users/alice/sessions", Some(&admin))
        .await
        .assert_status(204);
    cb.get_until("/me", Some(&alice_b), 401)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn role_change_made_on_a_applies_on_b() {
    let redis = redis();
    let (a, b) = two_servers(&redis).await;
    let alice = b.client().login_ok(ALICE.0, ALICE.1).await;
    let admin = a.client().login_ok(ADMIN.0, ADMIN.1).await;
    b.client()
        .get("/admin", Some(&alice))
        .await
        .assert_error(403, "forbidden");
    a.client()
        .put(
            "/admin/users/alice/roles",
            Some(&admin),
            json!({"roles": ["USER", "ADMIN"]}),
        )
        .await
        .assert_status(204);
    b.client()
        .get_until("/admin", Some(&alice), 200)
        .await
        .assert_status(200);
    a.client()
        .put(
            "/admin/users/alice/roles",
            Some(&admin),
            json!({"roles": ["USER"]}),
        )
        .await
        .assert_status(204);
    b.client()
        .get_until("/admin", Some(&alice), 403)
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn sigkill_of_a_leaves_its_sessions_alive_on_b() {
    let redis = redis();
    let (mut a, b) = two_servers(&redis).await;
    let alice = a.client().login_ok(ALICE.0, ALICE.1).await;
    let admin = a.client().login_ok(ADMIN.0, ADMIN.1).await;
    a.kill();
    assert!(!a.is_running());
    assert!(
        a.client()
            .try_send(Method::GET, "/health", None, None, &[])
            .await
            .is_err(),
        "A still answers after SIGKILL"
    );
    let me = b.client().get("/me", Some(&alice)).await;
    me.assert_status(200);
    assert_eq!(me.body["username"], "alice");
    b.client()
        .get("/admin", Some(&admin))
        .await
        .assert_status(200);
    // B can also end it.
    b.client()
        .post_empty("/logout", Some(&alice))
        .await
        .assert_status(204);
    b.client()
        .get("/me", Some(&alice))
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn lockout_earned_on_a_holds_on_b() {
    let redis = redis();
    let (a, b) = two_servers(&redis).await;
    for _ in 0..3 {
        a.client()
            .login("alice", "wrong-password")
            .await
            .unwrap_err()
            .assert_error(401, "invalid_credentials");
    }
    let res = b.client().login(ALICE.0, ALICE.1).await.unwrap_err();
    res.assert_error(429, "too_many_attempts");
    assert!(res.header("retry-after").is_some(), "{:?}", res.headers);
    assert!(res.set_cookies().is_empty());
    a.client()
        .login(ALICE.0, ALICE.1)
        .await
        .unwrap_err()
        .assert_error(429, "too_many_attempts");
}

#[tokio::test]
async fn failures_spread_over_a_and_b_add_up_to_a_lockout() {
    let redis = redis();
    let (a, b) = two_servers(&redis).await;
    a.client()
        .login("alice", "wrong-1")
        .await
        .unwrap_err()
        .assert_status(401);
    b.client()
        .login("alice", "wrong-2")
        .await
        .unwrap_err()
        .assert_status(401);
    a.client()
        .login("alice", "wrong-3")
        .await
        .unwrap_err()
        .assert_status(401);
    b.client()
        .login(ALICE.0, ALICE.1)
        .await
        .unwrap_err()
        .assert_error(429, "too_many_attempts");
}

#[tokio::test]
async fn account_registered_on_a_logs_in_on_b() {
    let redis = redis();
    let (a, b) = two_servers(&redis).await;
    a.client()
        .register("carol", "carol-password")
        .await
        .assert_status(201);
    let cookie = b.client().login_ok("carol", "carol-password").await;
    assert_eq!(
        a.client().get("/me", Some(&cookie)).await.body,
        json!({"username": "carol", "roles": ["USER"]})
    );
    b.client()
        .register("carol", "other-password")
        .await
        .assert_error(409, "conflict");
    b.client()
        .login("carol", "other-password")
        .await
        .unwrap_err()
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn a_second_server_does_not_reset_the_seeded_accounts() {
    let redis = redis();
    let a = ServerBuilder::redis(redis.url()).start().await;
    let admin = a.client().login_ok(ADMIN.0, ADMIN.1).await;
    a.client()
        .put(
            "/admin/users/alice/roles",
            Some(&admin),
            json!({"roles": ["USER", "ADMIN"]}),
        )
        .await
        .assert_status(204);
    // "Seeded at start if absent": B's start must not overwrite alice.
    let b = ServerBuilder::redis(redis.url()).start().await;
    let res = b
        .client()
        .post(
            "/login",
            None,
            json!({"username": "alice", "password": "alice-password"}),
        )
        .await;
    res.assert_status(200);
    let mut roles: Vec<&str> = res.body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, ["ADMIN", "USER"]);
}
