//! The client-side session cache on Redis Cluster (`RedisStore::with_cache` on a
//! `RedisTarget::Cluster`), against a real local cluster: hot sessions cost no round trip on any
//! node, changes made through another store reach this one within milliseconds, and neither a
//! failover nor a slot migration lets a record cached from the old owner be served.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::cache_topology::{
    admins, honoured, once_available, refused_within_100ms, warm, without_heartbeats,
};
use crate::common::{unique_prefix, CacheMeter};
use redis_harness::RedisCluster;
use session_core::{
    CacheConfig, Error, RedisStore, RedisTarget, SessionConfig, SessionStore, Token,
};

fn config(prefix: &str) -> SessionConfig {
    SessionConfig::builder().key_prefix(prefix).build().unwrap()
}

fn session_key(prefix: &str, token: &Token) -> Vec<u8> {
    [format!("{prefix}:s:").as_bytes(), token.key().as_bytes()].concat()
}

/// A store on the cluster without the cache, whose calls give up after 500 ms.
async fn plain(cluster: &RedisCluster, config: SessionConfig) -> RedisStore {
    RedisStore::connect(RedisTarget::Cluster(cluster.urls()), config)
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_millis(500))
        .unwrap()
}

/// The same with the cache on, and the meter of what its cache counts.
async fn cached(
    cluster: &RedisCluster,
    config: SessionConfig,
    bound: Duration,
) -> (RedisStore, CacheMeter) {
    let store = plain(cluster, config).await;
    CacheMeter::made(|| {
        store
            .with_cache(CacheConfig::default().with_staleness_bound(bound))
            .unwrap()
    })
}

/// A connection of the test's own to the node on `port`.
async fn node(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_hot_session_is_served_from_memory() {
    let cluster = RedisCluster::start(3, 0).unwrap();
    let prefix = unique_prefix();
    let (store, meter) = cached(&cluster, config(&prefix), Duration::from_secs(1)).await;
    let sessions = admins(&store, "alice", 12).await;
    warm(&store, &meter, &sessions).await;
    let mut ports: Vec<u16> = sessions
        .iter()
        .filter_map(|(t, _)| cluster.primary_for_key(&session_key(&prefix, t)))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert!(
        ports.len() >= 2,
        "the sessions are spread over the primaries"
    );
    for port in ports {
        let before = meter.counts();
        let commands = common::monitored(port, async {
            for _ in 0..50 {
                for (token, _) in &sessions {
                    assert!(honoured(&store, token).await.unwrap());
                }
            }
        })
        .await;
        let commands = without_heartbeats(commands);
        // At most a slide or two (CLIENT CACHING, MULTI, PEXPIRE, PTTL, EXEC) can fall due.
        assert!(
            commands.len() <= 10,
            "expected no round trips on {port}: {commands:#?}"
        );
        let after = meter.counts();
        assert_eq!(after.hits - before.hits, 50 * sessions.len() as u64);
        assert_eq!(after.misses, before.misses);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_changes_made_through_another_store_end_the_cached_copy_within_100ms() {
    let cluster = RedisCluster::start(3, 0).unwrap();
    let prefix = unique_prefix();
    let (a, meter) = cached(&cluster, config(&prefix), Duration::from_secs(1)).await;
    let b = plain(&cluster, config(&prefix)).await;
    let sessions = admins(&b, "user", 30).await;
    warm(&a, &meter, &sessions).await;
    let mut windows = Vec::new();
    for (round, (token, user)) in sessions.iter().enumerate() {
        match round % 3 {
            0 => assert!(b.delete(token).await.unwrap()),
            1 => assert_eq!(
                b.delete_user_sessions(user, session_core::EndReason::Revoked)
                    .await
                    .unwrap(),
                1
            ),
            _ => assert_eq!(b.set_user_authz(user, &[], &[]).await.unwrap(), 1),
        }
        windows.push(refused_within_100ms(&a, token, &format!("round {round}")).await);
    }
    windows.sort();
    println!(
        "revocation window on a cluster: p50 {:?}, max {:?}",
        windows[windows.len() / 2],
        windows[windows.len() - 1]
    );
}

/// A primary holding cached sessions is SIGKILLed; after its replica is promoted another
/// store deletes some sessions and demotes others. None of those is served from memory, not
/// even on the first load; every other session is; and the cache works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_no_session_changed_after_a_failover_is_served_from_memory() {
    let mut cluster = RedisCluster::start(3, 1).unwrap();
    let prefix = unique_prefix();
    let (a, meter) = cached(&cluster, config(&prefix), Duration::from_secs(1)).await;
    let b = plain(&cluster, config(&prefix)).await;
    let sessions = admins(&b, "user", 30).await;
    let victim = cluster
        .primary_for_key(&session_key(&prefix, &sessions[0].0))
        .unwrap();
    cluster
        .wait_for_replication(victim, Duration::from_secs(10))
        .unwrap();
    warm(&a, &meter, &sessions).await;

    cluster.kill_node(victim).unwrap();
    cluster
        .wait_for_failover(victim, Duration::from_secs(30))
        .unwrap();
    // The victim's sessions first, then the others: a third deleted, a third demoted.
    let mut ordered = sessions.clone();
    ordered.sort_by_key(|(t, _)| cluster.primary_for_key(&session_key(&prefix, t)) != Some(victim));
    let (deleted, rest) = ordered.split_at(10);
    let (demoted, kept) = rest.split_at(10);
    for (token, _) in deleted {
        once_available("a logout after the failover", || b.delete(token)).await;
    }
    for (_, user) in demoted {
        once_available("a demotion after the failover", || {
            b.set_user_authz(user, &[], &[])
        })
        .await;
    }
    for (token, user) in deleted.iter().chain(demoted) {
        let served = once_available("a load after the failover", || honoured(&a, token)).await;
        assert!(!served, "{user}'s session was honoured after it changed");
    }
    for (token, user) in kept {
        let served = once_available("a load after the failover", || honoured(&a, token)).await;
        assert!(served, "{user}'s live session was lost");
    }
    warm(&a, &meter, kept).await;
    for (round, (token, _)) in kept.iter().enumerate() {
        assert!(b.delete(token).await.unwrap());
        refused_within_100ms(&a, token, &format!("after the failover, round {round}")).await;
    }
}

/// The slot of a cached session is migrated to another primary (`CLUSTER SETSLOT` MIGRATING /
/// IMPORTING, `MIGRATE`, then `SETSLOT NODE`). In the middle of it and after it, the session
/// is served (from the new owner), and a demotion (mid-migration) and a logout (after it) made
/// through another store are honoured within 100 ms; once the move is done the cache serves
/// the session from memory again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_migrated_slot_still_honours_revocations() {
    let cluster = RedisCluster::start(3, 0).unwrap();
    let prefix = unique_prefix();
    let (a, meter) = cached(&cluster, config(&prefix), Duration::from_secs(1)).await;
    let b = plain(&cluster, config(&prefix)).await;
    let sessions = admins(&b, "user", 2).await;
    warm(&a, &meter, &sessions).await;

    let key = session_key(&prefix, &sessions[0].0);
    let from = cluster.primary_for_key(&key).unwrap();
    let to = cluster
        .nodes()
        .iter()
        .map(|n| n.port)
        .find(|p| *p != from)
        .unwrap();
    let (mut src, mut dst) = (node(from).await, node(to).await);
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&key)
        .query_async(&mut src)
        .await
        .unwrap();
    let id = |mut c: redis::aio::MultiplexedConnection| async move {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async::<String>(&mut c)
            .await
            .unwrap()
    };
    let (src_id, dst_id) = (id(src.clone()).await, id(dst.clone()).await);
    let setslot = |state: &'static str, id: String| {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SETSLOT").arg(slot).arg(state).arg(id);
        cmd
    };
    let () = setslot("IMPORTING", src_id.clone())
        .query_async(&mut dst)
        .await
        .unwrap();
    let () = setslot("MIGRATING", dst_id.clone())
        .query_async(&mut src)
        .await
        .unwrap();
    let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(1000)
        .query_async(&mut src)
        .await
        .unwrap();
    assert!(keys.contains(&key));
    let () = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(to)
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(&keys)
        .query_async(&mut src)
        .await
        .unwrap();
    // Mid-migration: the key lives on the new owner, the slot is still the old one's.
    let (token, user) = &sessions[0];
    assert!(once_available("a load mid-migration", || honoured(&a, token)).await);
    assert_eq!(b.set_user_authz(user, &[], &[]).await.unwrap(), 1);
    refused_within_100ms(&a, token, "a demotion mid-migration").await;
    // Finish the move on every node.
    for n in cluster.nodes() {
        let () = setslot("NODE", dst_id.clone())
            .query_async(&mut node(n.port).await)
            .await
            .unwrap();
    }
    let admin = ["ADMIN".to_owned()];
    assert_eq!(b.set_user_authz(user, &admin, &[]).await.unwrap(), 1);
    assert!(once_available("a load after the move", || honoured(&a, token)).await);
    // Cached again, now from the new owner.
    warm(&a, &meter, &sessions[..1]).await;
    assert!(b.delete(token).await.unwrap());
    refused_within_100ms(&a, token, "a logout after the move").await;
    // The other session was not disturbed.
    assert!(once_available("the other session", || honoured(&a, &sessions[1].0)).await);
}

/// A manual failover (`CLUSTER FAILOVER` on the replica): the old primary stays up, as a
/// replica, and this store's tracking connection to it stays open. A session deleted on the
/// new primary through another store is refused here within the staleness bound (the old
/// primary's `ROLE` says replica; the slot map names the new one), and the others stay live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_demoted_primary_is_not_trusted_past_the_staleness_bound() {
    let cluster = RedisCluster::start(3, 1).unwrap();
    let prefix = unique_prefix();
    let bound = Duration::from_secs(1);
    let (a, meter) = cached(&cluster, config(&prefix), bound).await;
    let b = plain(&cluster, config(&prefix)).await;
    let sessions = admins(&b, "user", 6).await;
    let old = cluster
        .primary_for_key(&session_key(&prefix, &sessions[0].0))
        .unwrap();
    cluster
        .wait_for_replication(old, Duration::from_secs(10))
        .unwrap();
    warm(&a, &meter, &sessions).await;
    let replica = cluster
        .nodes()
        .iter()
        .find(|n| n.role == redis_harness::cluster::NodeRole::Replica { primary: old })
        .map(|n| n.port)
        .unwrap();
    let () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query_async(&mut node(replica).await)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), async {
        while cluster.primary_for_key(&session_key(&prefix, &sessions[0].0)) != Some(replica) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the replica takes over");
    let (token, user) = &sessions[0];
    once_available("a logout on the new primary", || b.delete(token)).await;
    let deleted = Instant::now();
    loop {
        match honoured(&a, token).await {
            Ok(false) => break,
            Ok(true) | Err(Error::Unavailable { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert!(
            deleted.elapsed() < bound + Duration::from_millis(250),
            "{user}'s session, deleted on the new primary, still served {:?} later",
            deleted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("refused {:?} after the logout", deleted.elapsed());
    for (token, user) in &sessions[1..] {
        let served = once_available("a load after the failover", || honoured(&a, token)).await;
        assert!(served, "{user}'s live session was lost");
    }
}

/// The slot of a cached session is handed to another primary without `MIGRATE` (the new owner
/// claims it with `SETSLOT NODE` and a bumped epoch, and the cluster agrees): by the cluster,
/// the session no longer exists. The old owner's copy is not served past the staleness bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_slot_taken_over_without_migrate_is_not_served_from_the_old_owner() {
    let cluster = RedisCluster::start(3, 0).unwrap();
    let prefix = unique_prefix();
    let bound = Duration::from_secs(1);
    let (a, meter) = cached(&cluster, config(&prefix), bound).await;
    let b = plain(&cluster, config(&prefix)).await;
    let sessions = admins(&b, "user", 1).await;
    warm(&a, &meter, &sessions).await;
    let (token, user) = &sessions[0];
    let key = session_key(&prefix, token);
    let from = cluster.primary_for_key(&key).unwrap();
    let to = cluster
        .nodes()
        .iter()
        .map(|n| n.port)
        .find(|p| *p != from)
        .unwrap();
    let mut dst = node(to).await;
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&key)
        .query_async(&mut dst)
        .await
        .unwrap();
    let dst_id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut dst)
        .await
        .unwrap();
    let () = redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg("NODE")
        .arg(&dst_id)
        .query_async(&mut dst)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("CLUSTER")
        .arg("BUMPEPOCH")
        .query_async(&mut dst)
        .await
        .unwrap();
    let moved = Instant::now();
    loop {
        match honoured(&a, token).await {
            Ok(false) => break,
            Ok(true) | Err(Error::Unavailable { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert!(
            moved.elapsed() < bound * 3,
            "{user}'s session, gone by the cluster, still served {:?} later",
            moved.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("refused {:?} after the take-over", moved.elapsed());
    assert!(
        once_available("a load through the other store", || b.load(token))
            .await
            .is_none()
    );
}
