//! The demo server on a Redis Cluster and behind Sentinel, chosen by environment variables:
//! accounts, login, guards and logout work as on one server, and a Sentinel failover is
//! survived without restarting the server.

use crate::support;

use std::time::Duration;

use redis_harness::{RedisCluster, RedisSentinelGroup};
use support::*;

/// Log in, use guarded routes, log out: the whole flow on whatever store the server has.
async fn session_flow(server: &Server) {
    let c = server.client();
    c.register("topo-user", "topo-password")
        .await
        .assert_status(201);
    let cookie = c.login_ok("topo-user", "topo-password").await;
    c.get("/me", Some(&cookie)).await.assert_status(200);
    c.get("/admin", Some(&cookie))
        .await
        .assert_error(403, "forbidden");
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.get("/admin", Some(&admin)).await.assert_status(200);
    let sessions = c.get("/sessions", Some(&cookie)).await;
    sessions.assert_status(200);
    assert_eq!(sessions.body.as_array().map(Vec::len), Some(1));
    c.post("/logout", Some(&cookie), json!({}))
        .await
        .assert_status(204);
    c.get("/me", Some(&cookie))
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn demo_server_runs_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3, 0).expect("a local Redis Cluster");
    let server = ServerBuilder::cluster(&cluster).start().await;
    let health = server.client().get("/health", None).await;
    health.assert_status(200);
    assert_eq!(health.body["store"], "redis");
    session_flow(&server).await;
}

#[tokio::test]
async fn demo_server_behind_sentinel_survives_a_failover() {
    let mut group = RedisSentinelGroup::start("demo").expect("a local Sentinel group");
    let server = ServerBuilder::sentinel(&group).start().await;
    session_flow(&server).await;
    let c = server.client();
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    group
        .wait_for_replication(Duration::from_secs(10))
        .expect("replica caught up");
    let old = group.kill_primary().expect("kill the primary");
    // During the switch: the session or 503, never another answer.
    let during = c.get("/me", Some(&cookie)).await;
    assert!(
        during.status == 200 || during.status == 503,
        "during failover: {} {}",
        during.status,
        during.text
    );
    group
        .wait_for_failover(old, Duration::from_secs(30))
        .expect("a replica is promoted");
    let mut last = during;
    for _ in 0..50 {
        last = c.get("/me", Some(&cookie)).await;
        if last.status == 200 {
            break;
        }
        assert_eq!(last.status, 503, "{}", last.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last.assert_status(200);
    // The server recovered by itself: new logins work on the new primary.
    c.login_ok(ADMIN.0, ADMIN.1).await;
}
