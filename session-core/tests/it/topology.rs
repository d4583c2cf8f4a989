//! The Redis store on a Redis Cluster and behind Sentinel: the conformance suite, the one round
//! trip per load, and failover (SIGKILL of a primary with sessions in flight).

use crate::common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::conformance;
use redis_harness::cluster::NodeRole;
use redis_harness::{RedisCluster, RedisSentinelGroup};
use session_core::{
    Clock, Error, NewSession, RedisStore, RedisTarget, SessionConfig, SessionStore, Token,
};

fn config() -> SessionConfig {
    with_prefix(&conformance::unique_prefix())
}

/// The default configuration with `prefix`: a test that reads the store's keys knows it.
fn with_prefix(prefix: &str) -> SessionConfig {
    SessionConfig::builder().key_prefix(prefix).build().unwrap()
}

fn session_key(prefix: &str, token: &Token) -> Vec<u8> {
    [format!("{prefix}:s:").as_bytes(), token.key().as_bytes()].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_passes_the_conformance_suite() {
    let cluster = RedisCluster::start(3, 0).expect("a local Redis Cluster");
    let nodes = cluster.urls();
    let make = |config| {
        let target = RedisTarget::Cluster(nodes.clone());
        async move {
            let store = RedisStore::connect(target, config).await.expect("connect");
            assert!(format!("{store:?}").contains(r#"engine: "cluster""#));
            store
        }
    };
    conformance::run(make).await;
    conformance::run_throttle(make).await;
}

/// The same suite with the client-side cache on: every answer as without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_with_the_client_side_cache_passes_the_conformance_suite() {
    let cluster = RedisCluster::start(3, 0).expect("a local Redis Cluster");
    let nodes = cluster.urls();
    let make = |config| {
        let target = RedisTarget::Cluster(nodes.clone());
        async move {
            RedisStore::connect(target, config)
                .await
                .expect("connect")
                .with_cache(session_core::CacheConfig::default())
                .expect("cache on a cluster")
        }
    };
    conformance::run(make).await;
}

/// The same suite with the client-side cache on: every answer as without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_primary_with_the_client_side_cache_passes_the_conformance_suite() {
    let group = RedisSentinelGroup::start("sessions").expect("a local Sentinel group");
    let target = RedisTarget::Sentinel {
        sentinels: group.sentinel_urls(),
        service: group.service().to_owned(),
    };
    let make = |config| {
        let target = target.clone();
        async move {
            RedisStore::connect(target, config)
                .await
                .expect("connect")
                .with_cache(session_core::CacheConfig::default())
                .expect("cache behind Sentinel")
        }
    };
    conformance::run(make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_primary_passes_the_conformance_suite() {
    let group = RedisSentinelGroup::start("sessions").expect("a local Sentinel group");
    let target = RedisTarget::Sentinel {
        sentinels: group.sentinel_urls(),
        service: group.service().to_owned(),
    };
    let make = |config| {
        let target = target.clone();
        async move { RedisStore::connect(target, config).await.expect("connect") }
    };
    conformance::run(make).await;
    conformance::run_throttle(make).await;
}

#[tokio::test]
async fn load_is_one_round_trip_and_rotation_keeps_one_index_entry_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0).expect("a local Redis Cluster");
    // The store's clock moves between loads (as real requests come apart), without a sleep.
    let clock = Clock::manual(std::time::SystemTime::now());
    let prefix = conformance::unique_prefix();
    let config = SessionConfig::builder()
        .key_prefix(prefix.as_str())
        .clock(clock.clone())
        .build()
        .unwrap();
    let store = RedisStore::connect(RedisTarget::Cluster(cluster.urls()), config.clone())
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_millis(500))
        .unwrap();
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
    // Rotation on a cluster swaps the index entry in its own steps: exactly one member remains.
    let token = store.rotate(&token).await.unwrap();
    let index = format!("{prefix}:u:alice");
    let index_node = cluster.primary_for_key(index.as_bytes()).unwrap();
    let members = Command::new("redis-cli")
        .args(["-p", &index_node.to_string(), "ZCARD", &index])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&members.stdout).trim(), "1");
    store.load(&token).await.unwrap().unwrap();
    let node = cluster
        .primary_for_key(&session_key(&prefix, &token))
        .expect("the session key's primary");
    let commands = common::monitored(node, async {
        for _ in 0..30 {
            clock.advance(Duration::from_millis(2)).unwrap();
            assert!(store.load(&token).await.unwrap().is_some());
        }
    })
    .await;
    common::assert_each_is(&commands, 30, "getex");
}

/// A value of another type under an indexed session key is foreign data on a cluster too, not
/// an outage: listing skips (and un-indexes) it, rotation refuses it as not a session, delete
/// ends it. The Cluster engine reads a record with its TTL in a pipeline or `MULTI`, where
/// redis-rs reports Redis's `WRONGTYPE` without a code of its own.
#[tokio::test]
async fn a_value_of_another_type_under_a_session_key_is_no_session_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0).expect("a local Redis Cluster");
    let prefix = conformance::unique_prefix();
    let config = with_prefix(&prefix);
    let store = RedisStore::connect(RedisTarget::Cluster(cluster.urls()), config.clone())
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_millis(500))
        .unwrap();
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
    let (kept, kept_session) = store.create(NewSession::new("alice")).await.unwrap();
    let key = session_key(&prefix, &token);
    let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    redis::pipe()
        .atomic()
        .cmd("DEL")
        .arg(&key)
        .ignore()
        .cmd("HSET")
        .arg(&key)
        .arg("f")
        .arg("v")
        .ignore()
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    assert!(store.load(&token).await.unwrap().is_none());
    let listed = store.list_user_sessions("alice").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].handle, kept_session.handle());
    assert!(
        matches!(store.rotate(&token).await, Err(Error::Corrupt(_))),
        "rotation of a hash"
    );
    assert!(store.delete(&token).await.unwrap());
    assert!(store.load(&kept).await.unwrap().is_some());
}

/// Loads every session; each must be either its own user's session or "unavailable" — never
/// "no session" and never someone else's.
async fn check_fail_closed(store: &RedisStore, sessions: &[(Token, String)]) -> (usize, usize) {
    let (mut ok, mut unavailable) = (0, 0);
    for (token, user) in sessions {
        match store.load(token).await {
            Ok(Some(s)) => {
                assert_eq!(s.user_id(), user, "a session came back as someone else's");
                ok += 1;
            }
            Ok(None) => panic!("a replicated live session of {user} was reported absent"),
            Err(e) => {
                assert!(
                    matches!(e, Error::Unavailable { .. }),
                    "unexpected error {e}"
                );
                unavailable += 1;
            }
        }
    }
    (ok, unavailable)
}

/// After a promotion: every session written (and replicated) before the kill loads again
/// through the same store object, and new sessions can be written — no restart. Both are
/// polled every 10 ms (a normal run waits only as long as the store takes to find the new
/// primary) with limits of 10 s and 5 s, for a busy machine.
async fn recovers_after_failover(store: &RedisStore, sessions: &[(Token, String)]) {
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (ok, _) = check_fail_closed(store, sessions).await;
            if ok == sessions.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "replicated sessions did not all come back after the failover"
    );
    // A login touches two slots (the session's and the user index's); the shared cluster
    // connections may still route the index's slot to the dead primary for a moment after the
    // sessions load again (each answers 503 then, never a wrong session), so allow a few tries.
    let token = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match store.create(NewSession::new("after")).await {
                Ok((t, _)) => break t,
                Err(Error::Unavailable { .. }) => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(other) => panic!("a login after the failover: {other:?}"),
            }
        }
    })
    .await
    .expect("new logins work again within 5 s of the recovery");
    assert!(store.load(&token).await.unwrap().is_some());
}

/// Creates and loads sessions in the background until stopped; counts outcomes and makes sure
/// every answer is a correct session or "unavailable". Returns once the first session has made
/// its round trip (the traffic is in flight), with the task that ends when `stop` is set.
/// Between round trips it waits 10 ms, in the background: pacing, not waiting for the test.
async fn traffic(
    store: Arc<RedisStore>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let ok = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&ok);
    let task = tokio::spawn(async move {
        let ok = counted;
        let unavailable = AtomicUsize::new(0);
        let mut i = 0u32;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            let user = format!("flight-{}", i % 20);
            match store.create(NewSession::new(user.clone())).await {
                Ok((token, _)) => match store.load(&token).await {
                    Ok(Some(s)) => {
                        assert_eq!(s.user_id(), user);
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    // A write acknowledged by a primary that dies before replicating it is
                    // lost (asynchronous replication): then "no session" is the truth.
                    Ok(None) => {}
                    Err(e) => {
                        assert!(matches!(e, Error::Unavailable { .. }), "{e}");
                        unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                },
                Err(e) => {
                    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
                    unavailable.fetch_add(1, Ordering::SeqCst);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (ok.load(Ordering::SeqCst), unavailable.into_inner())
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while ok.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the background traffic makes a round trip within 5 s");
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_keeps_replicated_sessions_and_fails_closed() {
    let mut cluster = RedisCluster::start(3, 1).expect("a local Redis Cluster with replicas");
    let prefix = conformance::unique_prefix();
    let config = with_prefix(&prefix);
    let store = Arc::new(
        RedisStore::connect(RedisTarget::Cluster(cluster.urls()), config.clone())
            .await
            .unwrap()
            .with_operation_timeout(Duration::from_millis(500))
            .unwrap(),
    );
    let mut sessions = Vec::new();
    for i in 0..60 {
        let user = format!("user-{i}");
        let (token, _) = store.create(NewSession::new(user.clone())).await.unwrap();
        sessions.push((token, user));
    }
    for node in cluster
        .nodes()
        .iter()
        .filter(|n| n.role == NodeRole::Primary)
    {
        cluster
            .wait_for_replication(node.port, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let victim = cluster
        .primary_for_key(&session_key(&prefix, &sessions[0].0))
        .unwrap();
    let on_victim: HashMap<_, _> = sessions
        .iter()
        .filter(|(t, _)| cluster.primary_for_key(&session_key(&prefix, t)) == Some(victim))
        .map(|(t, u)| (t.as_cookie_value(), u.clone()))
        .collect();
    assert!(!on_victim.is_empty());

    let stop = Arc::new(AtomicBool::new(false));
    let background = traffic(Arc::clone(&store), Arc::clone(&stop)).await;
    cluster.kill_node(victim).unwrap();
    // During the switch: correct sessions or "unavailable", never a wrong answer.
    let (_, unavailable) = check_fail_closed(&store, &sessions).await;
    assert!(
        unavailable > 0,
        "the dead primary's sessions should be unavailable for a while"
    );
    cluster
        .wait_for_failover(victim, Duration::from_secs(30))
        .expect("a replica is promoted");

    // After promotion: every replicated session is back, through the same store object.
    recovers_after_failover(&store, &sessions).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, _) = background.await.expect("traffic task panicked");
    assert!(ok > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_keeps_replicated_sessions_and_fails_closed() {
    let mut group = RedisSentinelGroup::start("sessions").expect("a local Sentinel group");
    let target = RedisTarget::Sentinel {
        sentinels: group.sentinel_urls(),
        service: group.service().to_owned(),
    };
    let store = RedisStore::connect(target, config())
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_millis(500))
        .unwrap();
    let store = Arc::new(store);
    let mut sessions = Vec::new();
    for i in 0..30 {
        let user = format!("user-{i}");
        let (token, _) = store
            .create(NewSession::new(user.clone()).with_roles(["USER"]))
            .await
            .unwrap();
        sessions.push((token, user));
    }
    group
        .wait_for_replication(Duration::from_secs(10))
        .expect("replica caught up");

    let stop = Arc::new(AtomicBool::new(false));
    let background = traffic(Arc::clone(&store), Arc::clone(&stop)).await;
    let old = group.kill_primary().unwrap();
    let (_, unavailable) = check_fail_closed(&store, &sessions).await;
    assert!(
        unavailable > 0,
        "with the primary dead, loads must be unavailable"
    );
    let new = group
        .wait_for_failover(old, Duration::from_secs(30))
        .expect("sentinels promote the replica");
    assert_ne!(new, old);

    recovers_after_failover(&store, &sessions).await;
    assert_eq!(
        store
            .set_user_authz("user-1", &["ADMIN".to_owned()], &[])
            .await
            .unwrap(),
        1
    );
    stop.store(true, Ordering::SeqCst);
    let (ok, _) = background.await.expect("traffic task panicked");
    assert!(ok > 0);
}
