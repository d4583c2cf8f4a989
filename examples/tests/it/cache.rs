//! The client-side session cache (on by default in the demo) seen over HTTP: two servers on
//! one Redis, a session cached on A and ended or demoted through B, and a stopped Redis.

use crate::support;

use std::time::{Duration, Instant};

use redis_harness::{RedisCluster, RedisSentinelGroup};
use support::*;

/// The change made through B in each try.
#[derive(Clone, Copy, Debug)]
enum Change {
    Logout,
    Revocation,
    Demotion,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_or_demoted_on_b_is_refused_on_a_at_once() {
    let redis = redis();
    let a = ServerBuilder::redis(redis.url()).start().await;
    let b = ServerBuilder::redis(redis.url()).start().await;
    refused_on_a_within_100_ms(&a, &b, "one Redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_too() {
    let cluster = RedisCluster::start(3, 0).expect("a local Redis Cluster");
    let (a, b) = (
        ServerBuilder::cluster(&cluster).start().await,
        ServerBuilder::cluster(&cluster).start().await,
    );
    refused_on_a_within_100_ms(&a, &b, "a 3-primary Cluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_too() {
    let group = RedisSentinelGroup::start("cache").expect("a local Sentinel group");
    let (a, b) = (
        ServerBuilder::sentinel(&group).start().await,
        ServerBuilder::sentinel(&group).start().await,
    );
    refused_on_a_within_100_ms(&a, &b, "Sentinel").await;
}

/// 200 tries of: a session used on A (cached there), then logged out, revoked or demoted
/// through B; A must refuse it within 100 ms of B's answer, every time.
async fn refused_on_a_within_100_ms(a: &Server, b: &Server, on: &str) {
    let (ca, cb) = (a.client(), b.client());
    let admin = cb.login_ok(ADMIN.0, ADMIN.1).await;
    cb.register("dave", "dave-password")
        .await
        .assert_status(201);
    let admin_roles = json!({"roles": ["USER", "ADMIN"]});

    let tries = 200;
    let mut windows = Vec::with_capacity(tries);
    let mut refused_at_once = 0;
    for i in 0..tries {
        let change = [Change::Logout, Change::Revocation, Change::Demotion][i % 3];
        if matches!(change, Change::Demotion) {
            cb.put("/admin/users/dave/roles", Some(&admin), admin_roles.clone())
                .await
                .assert_status(204);
        }
        let cookie = ca.login_ok("dave", "dave-password").await;
        let path = if matches!(change, Change::Demotion) {
            "/admin"
        } else {
            "/me"
        };
        // Used on A twice: the second answer comes from A's memory.
        ca.get(path, Some(&cookie)).await.assert_status(200);
        ca.get(path, Some(&cookie)).await.assert_status(200);
        match change {
            Change::Logout => cb.post_empty("/logout", Some(&cookie)).await,
            Change::Revocation => cb.delete("/admin/users/dave/sessions", Some(&admin)).await,
            Change::Demotion => {
                cb.put(
                    "/admin/users/dave/roles",
                    Some(&admin),
                    json!({"roles": ["USER"]}),
                )
                .await
            }
        }
        .assert_status(204);
        let answered = Instant::now();
        let mut first = true;
        loop {
            let status = ca.get(path, Some(&cookie)).await.status;
            if status == 401 || status == 403 {
                windows.push(answered.elapsed());
                refused_at_once += usize::from(first);
                break;
            }
            assert_eq!(status, 200, "try {i} ({change:?})");
            assert!(
                answered.elapsed() < Duration::from_millis(100),
                "try {i} ({change:?}): A still honoured the session 100 ms after B's 204"
            );
            first = false;
        }
    }
    windows.sort();
    let pct = |p: usize| windows[(windows.len() - 1) * p / 100];
    println!(
        "{on}: B's 204 -> A's refusal over {tries} tries: refused on the next request \
         {refused_at_once}; p50 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        pct(100)
    );
    // How often A refuses on its very next request is a figure, not a promise (it depends on
    // the machine's load; reported above, and in benches/RESULTS.md). The promise is the bound
    // checked in the loop: never honoured 100 ms after B's answer.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_sessions_get_503_within_the_staleness_bound_when_redis_stops() {
    let redis = redis();
    let a = ServerBuilder::redis(redis.url()).start().await;
    let ca = a.client();
    let cookie = ca.login_ok(ALICE.0, ALICE.1).await;
    ca.get("/me", Some(&cookie)).await.assert_status(200);
    ca.get("/me", Some(&cookie)).await.assert_status(200);
    redis.pause();
    let stopped = Instant::now();
    let mut last_ok = None;
    while stopped.elapsed() < Duration::from_millis(2500) {
        let res = ca.get("/me", Some(&cookie)).await;
        match res.status {
            200 => last_ok = Some(stopped.elapsed()),
            503 => res.assert_error(503, "store_unavailable"),
            other => panic!("a stopped Redis gave {other}: {}", res.text),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.resume();
    // The demo's bound is the library default, 1 s from the last answered heartbeat.
    if let Some(t) = last_ok {
        assert!(
            t <= Duration::from_millis(1050),
            "200 from memory {t:?} after Redis stopped"
        );
    }
    let back = Instant::now();
    while ca.get("/me", Some(&cookie)).await.status != 200 {
        assert!(back.elapsed() < Duration::from_secs(5), "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
