//! Idle and absolute expiry with short settings, and eviction beyond the per-user limit.

use crate::support;

use std::time::{Duration, Instant};

use support::*;

async fn server(redis: &RedisServer, idle: u64, absolute: u64) -> Server {
    ServerBuilder::redis(redis.url())
        .env("SESSION_IDLE_SECS", idle)
        .env("SESSION_ABSOLUTE_SECS", absolute)
        .start()
        .await
}

#[tokio::test]
async fn idle_session_ends_after_the_idle_timeout() {
    let redis = redis();
    let server = server(&redis, 2, 60).await;
    let c = server.client();
    let idle = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&idle)).await.assert_status(200);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    c.get("/me", Some(&idle))
        .await
        .assert_error(401, "unauthenticated");
    // It stays ended, and it is gone from the list.
    c.get("/me", Some(&idle))
        .await
        .assert_error(401, "unauthenticated");
    let fresh = c.login_ok(ALICE.0, ALICE.1).await;
    let list = c.get("/sessions", Some(&fresh)).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(1), "{}", list.text);
}

#[tokio::test]
async fn requests_slide_the_idle_timeout() {
    let redis = redis();
    let server = server(&redis, 2, 60).await;
    let c = server.client();
    let active = c.login_ok(ALICE.0, ALICE.1).await;
    let start = Instant::now();
    // A request every 1.2 s keeps a 2 s idle timeout alive for 3.6 s.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let res = c.get("/me", Some(&active)).await;
        assert_eq!(
            res.status,
            200,
            "an active session ended after {:?}: {}",
            start.elapsed(),
            res.text
        );
    }
    tokio::time::sleep(Duration::from_millis(2600)).await;
    c.get("/me", Some(&active))
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn absolute_deadline_ends_even_an_active_session() {
    let redis = redis();
    let server = server(&redis, 2, 4).await;
    let c = server.client();
    let res = c
        .post(
            "/login",
            None,
            json!({"username": "alice", "password": "alice-password"}),
        )
        .await;
    res.assert_status(200);
    let start = Instant::now();
    let set = res.set_cookies().into_iter().next().expect("cookie");
    if let Some(max_age) = set.attr("Max-Age") {
        let max_age: u64 = max_age.parse().expect("numeric Max-Age");
        assert!(
            max_age <= 4,
            "the cookie outlives the 4 s absolute deadline: {}",
            set.raw
        );
    }
    let cookie = Cookie {
        name: set.name,
        value: set.value,
    };
    let mut ended_at = None;
    while start.elapsed() < Duration::from_millis(6000) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = start.elapsed();
        let res = c.get("/me", Some(&cookie)).await;
        match (res.status, ended_at) {
            (200, None) => assert!(
                t < Duration::from_millis(4300),
                "the session was still alive {t:?} after login (absolute 4 s)"
            ),
            (401, None) => {
                res.assert_error(401, "unauthenticated");
                assert!(
                    t >= Duration::from_millis(3500),
                    "ended too early, at {t:?} (absolute 4 s, idle 2 s, active every 0.5 s)"
                );
                ended_at = Some(t);
            }
            (401, Some(_)) => break, // ended, and stays ended
            (s, _) => panic!(
                "unexpected {s} at {t:?} (ended at {ended_at:?}): {}",
                res.text
            ),
        }
    }
    assert!(ended_at.is_some(), "the session never ended");
}

#[tokio::test]
async fn logins_beyond_max_per_user_evict_the_oldest_session() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("SESSION_MAX_PER_USER", 2)
        .start()
        .await;
    let c = server.client();
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let first = c.login_ok(ALICE.0, ALICE.1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = c.login_ok(ALICE.0, ALICE.1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.get("/me", Some(&first)).await.assert_status(200);
    c.get("/me", Some(&second)).await.assert_status(200);

    let third = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&first))
        .await
        .assert_error(401, "unauthenticated");
    c.get("/me", Some(&second)).await.assert_status(200);
    c.get("/me", Some(&third)).await.assert_status(200);
    let list = c.get("/sessions", Some(&third)).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(2), "{}", list.text);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let fourth = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&second))
        .await
        .assert_error(401, "unauthenticated");
    c.get("/me", Some(&third)).await.assert_status(200);
    c.get("/me", Some(&fourth)).await.assert_status(200);
    // Other users are not counted against alice's limit.
    c.get("/admin", Some(&admin)).await.assert_status(200);
}
