//! The client-side session cache behind Sentinel (`RedisStore::with_cache` on a
//! `RedisTarget::Sentinel`), against a real Sentinel group: hot sessions cost no round trip,
//! changes made through another store reach this one within milliseconds, and after a
//! failover (a killed primary, or one that stays up and is cut off) no session changed on the
//! new primary is served from memory, while the sessions that were live stay live.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::cache_topology::{
    admins, honoured, once_available, refused_within_100ms, warm, without_heartbeats,
};
use crate::common::{unique_prefix, CacheMeter};
use redis_harness::RedisSentinelGroup;
use session_core::{
    CacheConfig, Error, NewSession, RedisStore, RedisTarget, SessionConfig, SessionStore,
};

fn config() -> SessionConfig {
    SessionConfig::builder()
        .key_prefix(unique_prefix())
        .build()
        .unwrap()
}

fn target(group: &RedisSentinelGroup) -> RedisTarget {
    RedisTarget::Sentinel {
        sentinels: group.sentinel_urls(),
        service: group.service().to_owned(),
    }
}

/// A store behind the group's sentinels without the cache, whose calls give up after 500 ms.
async fn plain(group: &RedisSentinelGroup, config: SessionConfig) -> RedisStore {
    RedisStore::connect(target(group), config)
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_millis(500))
        .unwrap()
}

/// The same with the cache on, and the meter of what its cache counts.
async fn cached(
    group: &RedisSentinelGroup,
    config: SessionConfig,
    bound: Duration,
) -> (RedisStore, CacheMeter) {
    let store = plain(group, config).await;
    CacheMeter::made(|| {
        store
            .with_cache(CacheConfig::default().with_staleness_bound(bound))
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_a_hot_session_is_served_from_memory() {
    let group = RedisSentinelGroup::start("sessions").unwrap();
    let (store, meter) = cached(&group, config(), Duration::from_secs(1)).await;
    let (token, _) = store
        .create(NewSession::new("alice").with_roles(["USER"]))
        .await
        .unwrap();
    assert!(store.load(&token).await.unwrap().is_some()); // the miss that fills the cache
    let before = meter.counts();
    let commands = common::monitored(group.primary_port(), async {
        for _ in 0..500 {
            let s = store.load(&token).await.unwrap().expect("live");
            assert!(s.has_role("USER"));
        }
    })
    .await;
    let commands = without_heartbeats(commands);
    // At most one slide (CLIENT CACHING, MULTI, PEXPIRE, PTTL, EXEC) can fall due in the
    // loop's few milliseconds.
    assert!(
        commands.len() <= 5,
        "expected no round trips: {commands:#?}"
    );
    let after = meter.counts();
    assert_eq!(after.hits - before.hits, 500, "{after:?}");
    assert_eq!(after.misses, before.misses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_changes_made_through_another_store_end_the_cached_copy_within_100ms() {
    let group = RedisSentinelGroup::start("sessions").unwrap();
    let config = config();
    let (a, meter) = cached(&group, config.clone(), Duration::from_secs(1)).await;
    let b = plain(&group, config).await;
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
        "revocation window behind Sentinel: p50 {:?}, max {:?}",
        windows[windows.len() / 2],
        windows[windows.len() - 1]
    );
}

/// The primary is SIGKILLed with sessions cached; after the failover another store deletes
/// some and demotes others on the new primary. The cached store never serves one of those
/// (not even once, on its first load after the failover), serves every other session, writes
/// at once (its shared connections follow the primary its cache found), and caches again from
/// the new primary, whose invalidations reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_no_session_changed_after_a_failover_is_served_from_memory() {
    let mut group = RedisSentinelGroup::start("sessions").unwrap();
    let config = config();
    let (a, meter) = cached(&group, config.clone(), Duration::from_secs(1)).await;
    let b = plain(&group, config).await;
    let sessions = admins(&b, "user", 30).await;
    // Writes through this store too, so that its shared connections (two) go to the primary.
    for _ in 0..4 {
        a.create(NewSession::new("before")).await.unwrap();
    }
    group.wait_for_replication(Duration::from_secs(10)).unwrap();
    warm(&a, &meter, &sessions).await;

    let old = group.kill_primary().unwrap();
    let new = group
        .wait_for_failover(old, Duration::from_secs(30))
        .unwrap();
    assert_ne!(new, old);
    // Through the other store, on the new primary: a third deleted, a third demoted.
    let (deleted, rest) = sessions.split_at(10);
    let (demoted, kept) = rest.split_at(10);
    for (token, _) in deleted {
        assert!(once_available("a logout after the failover", || b.delete(token)).await);
    }
    for (_, user) in demoted {
        let changed = once_available("a demotion after the failover", || {
            b.set_user_authz(user, &[], &[])
        })
        .await;
        assert_eq!(changed, 1);
    }
    // Never served from memory, not even on the first load after the failover.
    for (token, user) in deleted.iter().chain(demoted) {
        let served = once_available("a load after the failover", || honoured(&a, token)).await;
        assert!(!served, "{user}'s session was honoured after it changed");
    }
    // The live sessions are all there (none lost: they were replicated before the kill).
    for (token, user) in kept {
        let s = once_available("a load after the failover", || a.load(token))
            .await
            .unwrap_or_else(|| panic!("{user}'s live session was lost"));
        assert_eq!(s.user_id(), user);
        assert!(s.has_role("ADMIN"));
    }
    // This store's loads found the new primary through the cache's connection; its shared
    // connections, made for the old one, are not used again: the first write works.
    a.create(NewSession::new("after")).await.expect(
        "the first write after the cache found the new primary goes there, not to the old one",
    );
    // Cached again, now from the new primary, and its invalidations arrive.
    warm(&a, &meter, kept).await;
    for (round, (token, _)) in kept.iter().enumerate() {
        assert!(b.delete(token).await.unwrap());
        refused_within_100ms(&a, token, &format!("after the failover, round {round}")).await;
    }
}

/// A plain connection of the test's own to the server on `port`, named `test-admin`.
async fn admin(port: u16) -> redis::aio::MultiplexedConnection {
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("test-admin")
        .query_async(&mut conn)
        .await
        .unwrap();
    conn
}

/// Cuts the primary off from the sentinels while it keeps serving clients (a split brain as a
/// network partition makes one): it refuses their `PING`s (`ACL SETUSER default -ping`; the
/// store never sends one there), so they find it down and promote the replica. Returns the
/// old primary's port and the new one's.
async fn split_brain(group: &mut RedisSentinelGroup) -> (u16, u16) {
    let old = group.primary_port();
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-ping")
        .query_async(&mut admin(old).await)
        .await
        .unwrap();
    let new = group
        .wait_for_failover(old, Duration::from_secs(20))
        .unwrap();
    assert_ne!(new, old);
    (old, new)
}

/// A split brain: the old primary still answers this store (and `ROLE` as a primary), while
/// the sentinels name the replica they promoted and other stores write there. This store's
/// shared connections are reset and its next write goes to the new primary; from then on no
/// entry cached from the old one is served. The staleness bound is 10 minutes, so the
/// heartbeat (which would notice too, by asking the sentinels) cannot be what does it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_the_cache_stops_serving_once_writes_go_to_another_primary() {
    let mut group = RedisSentinelGroup::start("sessions").unwrap();
    let config = config();
    let (a, meter) = cached(&group, config.clone(), Duration::from_secs(600)).await;
    let sessions = admins(&a, "user", 5).await;
    group.wait_for_replication(Duration::from_secs(10)).unwrap();
    warm(&a, &meter, &sessions).await;

    let (old, _) = split_brain(&mut group).await;
    // Another store, made now, writes to the new primary.
    let b = plain(&group, config).await;
    let (token, user) = &sessions[0];
    assert!(once_available("a logout on the new primary", || b.delete(token)).await);
    // The old primary still serves this store, from memory.
    assert!(honoured(&a, token).await.unwrap(), "still a hit");
    // This store's shared connections are reset (not its tracking connection, which the
    // store names): its next write goes where the sentinels now point.
    let mut old_admin = admin(old).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut old_admin)
        .await
        .unwrap();
    for line in clients.lines().filter(|l| l.contains(" name= ")) {
        let id = line
            .split(' ')
            .find_map(|f| f.strip_prefix("id="))
            .expect("CLIENT LIST has ids");
        let _: Result<(), _> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut old_admin)
            .await;
    }
    let flushes = meter.counts().flushes;
    once_available("a login through the cached store", || {
        a.create(NewSession::new("someone"))
    })
    .await;
    let served = once_available("a load after the move", || honoured(&a, token)).await;
    assert!(
        !served,
        "{user}'s session, deleted on the new primary, was served from memory"
    );
    assert!(meter.counts().flushes > flushes, "the cache was emptied");
    for (token, user) in &sessions[1..] {
        let served = once_available("a load after the move", || honoured(&a, token)).await;
        assert!(served, "{user}'s live session was lost");
    }
}

/// A split brain in which this store only reads: the old primary still answers it as a
/// primary, and only the sentinels know better. The heartbeat asks them, so a session deleted
/// on the new primary is refused here within the staleness bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_a_cut_off_primary_is_not_trusted_past_the_staleness_bound() {
    let mut group = RedisSentinelGroup::start("sessions").unwrap();
    let config = config();
    let bound = Duration::from_secs(2);
    let (a, meter) = cached(&group, config.clone(), bound).await;
    let sessions = admins(&a, "user", 5).await;
    group.wait_for_replication(Duration::from_secs(10)).unwrap();
    warm(&a, &meter, &sessions).await;

    split_brain(&mut group).await;
    let b = plain(&group, config).await;
    let (token, user) = &sessions[0];
    assert!(once_available("a logout on the new primary", || b.delete(token)).await);
    let deleted = Instant::now();
    loop {
        match honoured(&a, token).await {
            Ok(false) => break,
            Ok(true) | Err(Error::Unavailable { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert!(
            deleted.elapsed() < bound + Duration::from_millis(500),
            "{user}'s session, deleted on the new primary, still served {:?} later",
            deleted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("refused {:?} after the logout", deleted.elapsed());
}
