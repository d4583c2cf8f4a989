//! Redis killed, restarted and frozen under a running server: 503 `store_unavailable`, never
//! 200, never a crash, never a dropped connection, and recovery without a restart of the server.

use crate::support;

use std::time::{Duration, Instant};

use support::*;

async fn wait_for_health(c: &Client, status: u16, within: Duration) -> Resp {
    let deadline = Instant::now() + within;
    loop {
        let res = c.get("/health", None).await;
        if res.status == status || Instant::now() >= deadline {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With the session cache on (the demo's default), a session read before the kill may still be
/// answered from memory until the cache learns the connection is gone: at once when the socket
/// closes, at the latest after the staleness bound (1 s). Waits for the first refusal, within
/// that bound and a margin for a loaded machine, and returns how long it took.
async fn wait_until_refused(c: &Client, cookie: &Cookie) -> Duration {
    let start = Instant::now();
    let bound = Duration::from_secs(1) + Duration::from_millis(1500);
    loop {
        let res = c.get("/me", Some(cookie)).await;
        if res.status != 200 {
            res.assert_error(503, "store_unavailable");
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "/me still served {:?} after Redis was killed (staleness bound 1 s)",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn guarded_routes_answer_503_while_redis_is_down_and_the_server_stays_up() {
    let mut redis = redis();
    let mut server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let list = c.get("/sessions", Some(&alice)).await;
    let ids: Vec<String> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();

    redis.kill();
    wait_until_refused(&c, &alice).await;

    for round in 0..2 {
        let checks: Vec<(&str, Resp)> = vec![
            ("GET /me", c.get("/me", Some(&alice)).await),
            ("GET /admin (admin)", c.get("/admin", Some(&admin)).await),
            ("GET /admin (alice)", c.get("/admin", Some(&alice)).await),
            ("GET /sessions", c.get("/sessions", Some(&alice)).await),
            (
                "DELETE /sessions/{id}",
                c.delete(&format!("/sessions/{}", ids[0]), Some(&alice))
                    .await,
            ),
            (
                "DELETE /sessions",
                c.delete("/sessions", Some(&alice)).await,
            ),
            ("POST /logout", c.post_empty("/logout", Some(&alice)).await),
            (
                "PUT /admin/users/alice/roles",
                c.put(
                    "/admin/users/alice/roles",
                    Some(&admin),
                    json!({"roles": ["USER", "ADMIN"]}),
                )
                .await,
            ),
            (
                "DELETE /admin/users/alice/sessions",
                c.delete("/admin/users/alice/sessions", Some(&admin)).await,
            ),
            (
                "POST /login (right password)",
                c.post(
                    "/login",
                    None,
                    json!({"username": "alice", "password": "alice-password"}),
                )
                .await,
            ),
            (
                "POST /login (wrong password)",
                c.post(
                    "/login",
                    None,
                    json!({"username": "alice", "password": "wrong-password"}),
                )
                .await,
            ),
            (
                "POST /register",
                c.post(
                    "/register",
                    None,
                    json!({"username": "erin", "password": "erin-password"}),
                )
                .await,
            ),
            ("GET /health", c.get("/health", None).await),
        ];
        for (what, res) in &checks {
            assert_eq!(
                res.status, 503,
                "round {round}, {what} with Redis down: {} {:?}",
                res.status, res.text
            );
            res.assert_error(503, "store_unavailable");
            assert!(
                res.set_cookies().is_empty() || *what == "POST /logout",
                "{what} set a cookie: {:?}",
                res.headers
            );
        }
        // Without a cookie there is nothing to look up: refused, never served.
        let anon = c.get("/me", None).await;
        assert!(
            anon.status == 401 || anon.status == 503,
            "anonymous /me: {} {:?}",
            anon.status,
            anon.text
        );
        assert!(
            server.is_running(),
            "the server died with Redis down:\n{}",
            server.log_tail(40)
        );
    }
    // A logout refused with 503 still tells the browser to drop the cookie (issue 13): the
    // device that asked to log out keeps no token, though the session lives on in the store.
    let res = c.post_empty("/logout", Some(&alice)).await;
    res.assert_error(503, "store_unavailable");
    assert!(
        res.set_cookies().iter().any(|s| s.expires_cookie()),
        "a logout refused with 503 left the cookie in the browser: {:?}",
        res.headers
    );
    assert!(server.is_running());
}

#[tokio::test]
async fn server_recovers_by_itself_after_redis_restarts() {
    let mut redis = redis();
    let mut server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&alice)).await.assert_status(200);

    redis.kill();
    wait_until_refused(&c, &alice).await;
    // Refused once, refused from then on.
    c.get("/me", Some(&alice))
        .await
        .assert_error(503, "store_unavailable");
    c.get("/health", None)
        .await
        .assert_error(503, "store_unavailable");

    redis.restart().expect("restart redis-server");
    let health = wait_for_health(&c, 200, Duration::from_secs(15)).await;
    assert_eq!(
        health.status, 200,
        "no recovery 15 s after Redis came back: {:?}",
        health.text
    );
    assert_eq!(health.body, json!({"status": "ok", "store": "redis"}));
    assert!(server.is_running());

    // The restarted Redis is empty (no persistence): the old session is gone, cleanly.
    c.get("/me", Some(&alice))
        .await
        .assert_error(401, "unauthenticated");
    // The server works again for new accounts and sessions.
    c.register("frank", "frank-password")
        .await
        .assert_status(201);
    let frank = c.login_ok("frank", "frank-password").await;
    let me = c.get("/me", Some(&frank)).await;
    me.assert_status(200);
    assert_eq!(me.body["username"], "frank");
    c.get("/sessions", Some(&frank)).await.assert_status(200);
    c.post_empty("/logout", Some(&frank))
        .await
        .assert_status(204);
    c.get("/me", Some(&frank))
        .await
        .assert_error(401, "unauthenticated");
    // The seeded accounts went with the old Redis and the server seeds only at start: alice
    // may be back (re-seeded) or unknown, but her login is a clean answer either way.
    let res = c
        .post(
            "/login",
            None,
            json!({"username": "alice", "password": "alice-password"}),
        )
        .await;
    if res.status != 200 {
        res.assert_error(401, "invalid_credentials");
    }
}

#[tokio::test]
async fn server_started_while_redis_is_down_recovers_and_seeds_when_it_comes_up() {
    let mut redis = redis();
    redis.kill();
    // Polling alice's login below counts failures until she is seeded: no lockout here.
    let server = ServerBuilder::redis(redis.url())
        .env("LOGIN_MAX_FAILURES", 1000)
        .start_unhealthy()
        .await;
    let c = server.client();
    c.get("/health", None)
        .await
        .assert_error(503, "store_unavailable");
    c.post(
        "/login",
        None,
        json!({"username": "alice", "password": "alice-password"}),
    )
    .await
    .assert_error(503, "store_unavailable");
    c.get("/me", Some(&c.cookie(&unknown_token())))
        .await
        .assert_error(503, "store_unavailable");

    redis.restart().expect("start redis-server");
    let health = wait_for_health(&c, 200, Duration::from_secs(15)).await;
    assert_eq!(
        health.status, 200,
        "no recovery after Redis came up: {:?}",
        health.text
    );
    // The demo accounts appear once Redis is there ("seeded at start if absent").
    let deadline = Instant::now() + Duration::from_secs(10);
    let alice = loop {
        match c.login(ALICE.0, ALICE.1).await {
            Ok(cookie) => break cookie,
            Err(res) if Instant::now() < deadline => {
                assert!(
                    res.status == 401 || res.status == 503,
                    "{} {:?}",
                    res.status,
                    res.text
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(res) => panic!(
                "alice was never seeded after Redis came up: {} {:?}",
                res.status, res.text
            ),
        }
    };
    c.get("/me", Some(&alice)).await.assert_status(200);
}

#[tokio::test]
async fn hung_redis_answers_503_promptly_and_sessions_survive_the_resume() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let alice = c.login_ok(ALICE.0, ALICE.1).await;

    redis.pause();
    let t = Instant::now();
    let res = c.get("/me", Some(&alice)).await;
    let took = t.elapsed();
    res.assert_error(503, "store_unavailable");
    assert!(
        took < Duration::from_secs(5),
        "a frozen Redis held /me for {took:?}"
    );
    c.get("/health", None)
        .await
        .assert_error(503, "store_unavailable");
    c.post(
        "/login",
        None,
        json!({"username": "alice", "password": "alice-password"}),
    )
    .await
    .assert_error(503, "store_unavailable");
    redis.resume();

    let health = wait_for_health(&c, 200, Duration::from_secs(10)).await;
    assert_eq!(
        health.status, 200,
        "no recovery after Redis resumed: {:?}",
        health.text
    );
    // Nothing was lost: the same cookie works.
    c.get("/me", Some(&alice)).await.assert_status(200);
}
