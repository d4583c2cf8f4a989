//! The client-side session cache (`RedisStore::with_cache`) against a real Redis: hot sessions
//! cost no round trip, changes made through another store reach this one within milliseconds,
//! and a silent, stopped, flushed or restarted Redis is never trusted from memory.

use crate::common;

use std::time::{Duration, Instant, SystemTime};

use crate::common::{unique_prefix, CacheMeter};
use redis_harness::RedisServer;
use session_core::{
    CacheConfig, Clock, EndReason, Error, NewSession, RedisStore, SessionConfig, SessionStore,
    Token,
};

fn config() -> SessionConfig {
    SessionConfig::builder()
        .key_prefix(unique_prefix())
        .build()
        .unwrap()
}

/// A store without the cache, whose calls give up after 300 ms.
async fn plain(server: &RedisServer, config: SessionConfig) -> RedisStore {
    RedisStore::connect(server.url(), config)
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_millis(300))
        .unwrap()
}

/// A store with the cache on, and the meter of what its cache counts.
async fn cached(
    server: &RedisServer,
    config: SessionConfig,
    bound: Duration,
) -> (RedisStore, CacheMeter) {
    let store = plain(server, config).await;
    CacheMeter::made(|| {
        store
            .with_cache(CacheConfig::default().with_staleness_bound(bound))
            .unwrap()
    })
}

/// A plain connection of the test's own (not the store's).
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Keys in Redis's tracking table (`INFO stats`), for every client, connected or not.
async fn tracked_keys(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("tracking_total_keys:"))
        .expect("INFO stats has tracking_total_keys (Redis 6+)")
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `a` refuses `token` (gone, or no ADMIN role) and returns how long that took;
/// fails if it is still honoured 100 ms after the change.
async fn refused_within_100ms(a: &RedisStore, token: &Token, what: &str) -> Duration {
    let changed = Instant::now();
    loop {
        let refused = match a.load(token).await.unwrap() {
            None => true,
            Some(s) => !s.has_role("ADMIN"),
        };
        if refused {
            return changed.elapsed();
        }
        assert!(
            changed.elapsed() < Duration::from_millis(100),
            "{what}: still honoured 100 ms after the change"
        );
        tokio::task::yield_now().await;
    }
}

/// Client commands other than the heartbeat's PINGs.
fn without_pings(commands: Vec<String>) -> Vec<String> {
    commands
        .into_iter()
        .filter(|c| !c.to_lowercase().contains("\"ping\""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_session_is_served_from_memory() {
    let server = RedisServer::start_local().unwrap();
    let (store, meter) = cached(&server, config(), Duration::from_secs(1)).await;
    let (token, _) = store
        .create(NewSession::new("alice").with_roles(["USER"]))
        .await
        .unwrap();
    assert!(store.load(&token).await.unwrap().is_some()); // the miss that fills the cache
    let before = meter.counts();
    let commands = common::monitored(server.port(), async {
        for _ in 0..500 {
            let s = store.load(&token).await.unwrap().expect("live");
            assert!(s.has_role("USER"));
        }
    })
    .await;
    let commands = without_pings(commands);
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
async fn changes_made_through_another_store_end_the_cached_copy_within_milliseconds() {
    let server = RedisServer::start_local().unwrap();
    let config = config();
    let (a, _) = cached(&server, config.clone(), Duration::from_secs(1)).await;
    let b = plain(&server, config).await;
    let mut windows = Vec::new();
    for round in 0..60 {
        let user = format!("user-{round}");
        let (token, _) = b
            .create(NewSession::new(user.as_str()).with_roles(["ADMIN"]))
            .await
            .unwrap();
        assert!(a.load(&token).await.unwrap().is_some());
        assert!(a.load(&token).await.unwrap().is_some()); // from memory now
                                                          // Alternate: logout, revocation of all the user's sessions, demotion.
        match round % 3 {
            0 => assert!(b.delete(&token).await.unwrap()),
            1 => assert_eq!(
                b.delete_user_sessions(&user, EndReason::Revoked)
                    .await
                    .unwrap(),
                1
            ),
            _ => assert_eq!(b.set_user_authz(&user, &[], &[]).await.unwrap(), 1),
        }
        windows.push(refused_within_100ms(&a, &token, &format!("round {round}")).await);
    }
    windows.sort();
    println!(
        "revocation window: p50 {:?}, max {:?}",
        windows[windows.len() / 2],
        windows[windows.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_not_trusted_past_the_staleness_bound() {
    let server = RedisServer::start_local().unwrap();
    // A short bound (a heartbeat every 15 ms) keeps the waits short.
    let bound = Duration::from_millis(60);
    let (store, _) = cached(&server, config(), bound).await;
    let (token, _) = store.create(NewSession::new("bob")).await.unwrap();
    assert!(store.load(&token).await.unwrap().is_some());
    tokio::time::sleep(bound / 2).await; // two heartbeats answered
    assert!(store.load(&token).await.unwrap().is_some());
    server.pause();
    let paused = Instant::now();
    // Watched for four bounds and at least two loads that found no trust, a load every 5 ms:
    // hits until the trust ends, then loads that go to the stopped Redis (and mostly wait out
    // the operation timeout). A hit counts from before its call: it was served then or later.
    let mut last_hit = None;
    let mut refused = 0;
    while paused.elapsed() < bound * 4 || refused < 2 {
        let asked = paused.elapsed();
        match store.load(&token).await {
            Ok(Some(_)) => last_hit = Some(asked),
            Ok(None) => panic!("a stopped Redis is not 'no session'"),
            Err(Error::Unavailable { .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.resume();
    if let Some(t) = last_hit {
        assert!(
            t <= bound,
            "served from memory {t:?} after Redis stopped (bound {bound:?})"
        );
    }
    // Back: the store answers again without a restart (first from Redis, then from memory);
    // polled every 5 ms, for 5 s at most.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !matches!(store.load(&token).await, Ok(Some(_))) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("no recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_and_a_restart_empty_the_cache() {
    let mut server = RedisServer::start_local().unwrap();
    let (store, meter) = cached(&server, config(), Duration::from_secs(1)).await;
    let (token, _) = store.create(NewSession::new("carol")).await.unwrap();
    assert!(store.load(&token).await.unwrap().is_some());
    assert!(store.load(&token).await.unwrap().is_some());
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    let flushed = Instant::now();
    while store.load(&token).await.unwrap().is_some() {
        assert!(
            flushed.elapsed() < Duration::from_millis(100),
            "FLUSHALL ignored"
        );
        tokio::time::sleep(Duration::from_micros(100)).await;
    }

    let (token, _) = store.create(NewSession::new("carol")).await.unwrap();
    assert!(store.load(&token).await.unwrap().is_some());
    assert!(store.load(&token).await.unwrap().is_some());
    let flushes = meter.counts().flushes;
    // A restart keeps nothing: the session is gone. Until the cache has been emptied (it learns
    // of the restart from its dropped tracking connection, or from a heartbeat), no load may
    // come from memory; polled every 2 ms, and the cache must be emptied within 5 s.
    server.restart().unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match store.load(&token).await {
                Ok(Some(_)) => panic!("a session that no longer exists was served from memory"),
                Ok(None) | Err(Error::Unavailable { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
            if meter.counts().flushes > flushes {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the cache was not emptied after the restart");
    assert!(store.load(&token).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_this_server_slid_is_still_invalidated() {
    let server = RedisServer::start_local().unwrap();
    // Slides fall due every 20 ms of use, by the stores' clock (moved by hand, not slept).
    let clock = Clock::manual(SystemTime::now());
    let config = SessionConfig::builder()
        .key_prefix(unique_prefix())
        .clock(clock.clone())
        .touch_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let (a, meter) = cached(&server, config.clone(), Duration::from_secs(1)).await;
    let b = plain(&server, config).await;
    for round in 0..3 {
        let user = format!("frank-{round}");
        let (token, _) = b
            .create(NewSession::new(user.as_str()).with_roles(["ADMIN"]))
            .await
            .unwrap();
        assert!(a.load(&token).await.unwrap().is_some());
        // A hit after the touch interval slides the expiry (PEXPIRE on the tracking connection).
        clock.advance(Duration::from_millis(30)).unwrap();
        let before = meter.counts().hits;
        assert!(a.load(&token).await.unwrap().is_some());
        assert_eq!(meter.counts().hits, before + 1, "a hit that slides");
        match round {
            0 => assert!(b.delete(&token).await.unwrap()),
            1 => assert_eq!(
                b.delete_user_sessions(&user, EndReason::Revoked)
                    .await
                    .unwrap(),
                1
            ),
            _ => assert_eq!(b.set_user_authz(&user, &[], &[]).await.unwrap(), 1),
        }
        refused_within_100ms(&a, &token, &format!("round {round}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tokens_leave_no_entries_in_redis_tracking_table() {
    let server = RedisServer::start_local().unwrap();
    let config = config();
    let (a, meter) = cached(&server, config.clone(), Duration::from_secs(1)).await;
    let b = plain(&server, config).await;
    let mut conn = raw(&server).await;
    let (token, _) = b
        .create(NewSession::new("erin").with_roles(["ADMIN"]))
        .await
        .unwrap();
    assert!(a.load(&token).await.unwrap().is_some()); // the miss that fills the cache
    let before = tracked_keys(&mut conn).await;
    assert_eq!(before, 1, "the real session is tracked");

    // Random, well-formed tokens (a deadline a day away: past the token check, into the cache's
    // miss path), as a client probing `GET /me` would send them.
    let deadline = SystemTime::now() + Duration::from_secs(86_400);
    for _ in 0..2_000 {
        let made_up = Token::generate(deadline).unwrap();
        assert!(a.load(&made_up).await.unwrap().is_none());
    }
    let after = tracked_keys(&mut conn).await;
    println!("tracking table: {before} keys before 2000 made-up tokens, {after} after");
    assert_eq!(
        after, before,
        "2000 made-up tokens grew Redis's tracking table from {before} to {after} keys"
    );

    // The real session is still served from memory, and still invalidated.
    let hits = meter.counts().hits;
    assert!(a.load(&token).await.unwrap().is_some());
    assert_eq!(meter.counts().hits, hits + 1, "served from memory");
    assert!(b.delete(&token).await.unwrap());
    refused_within_100ms(&a, &token, "logout through another store").await;
}

/// Keeps Redis busy for ARGV[1] microseconds.
const BUSY_SCRIPT: &str = "local t = redis.call('TIME') \
    local start = tonumber(t[1]) * 1000000 + tonumber(t[2]) \
    repeat local n = redis.call('TIME') \
    until tonumber(n[1]) * 1000000 + tonumber(n[2]) - start >= tonumber(ARGV[1])";

/// The id of the cache's tracking connection (`CLIENT LIST`, by the name the cache gives it).
async fn cache_client_id(admin: &mut redis::aio::MultiplexedConnection) -> u64 {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .unwrap();
    list.lines()
        .find(|l| l.split(' ').any(|f| f == "name=session-core-cache"))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .unwrap_or_else(|| panic!("no tracking connection named session-core-cache: {list}"))
        .parse()
        .unwrap()
}

/// Kills the connection `id` right after keeping Redis busy for 300 ms, so that whatever the
/// cache sends on it meanwhile is in flight when it dies: a reset found by the next request, not
/// by the driver reading an EOF first (a kill of an idle connection usually is, and then the
/// next request reconnects anyway). Returns once the script runs: when a `PING` of the test's
/// own goes unanswered for 15 ms (Redis runs one command at a time; idle, it answers in well
/// under a millisecond).
async fn kill_after_busy(server: &RedisServer, id: u64) -> tokio::task::JoinHandle<()> {
    const PROBE: Duration = Duration::from_millis(15);
    let mut killer = raw(server).await;
    let mut probe = raw(server).await;
    let kill = tokio::spawn(async move {
        redis::pipe()
            .cmd("EVAL")
            .arg(BUSY_SCRIPT)
            .arg(0)
            .arg(300_000)
            .ignore()
            .cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .ignore()
            .query_async::<()>(&mut killer)
            .await
            .unwrap();
    });
    let ping = redis::cmd("PING");
    while matches!(
        tokio::time::timeout(PROBE, ping.query_async::<String>(&mut probe)).await,
        Ok(Ok(_))
    ) {}
    kill
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_tracking_connection_is_replaced_without_a_503() {
    let server = RedisServer::start_local().unwrap();
    // Room for the 300 ms stall within one operation.
    let store = RedisStore::connect(server.url(), config())
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_secs(2))
        .unwrap();
    let (store, meter) = CacheMeter::made(|| store.with_cache(CacheConfig::default()).unwrap());
    let mut admin = raw(&server).await;
    for round in 0..3 {
        let user = format!("grace-{round}");
        let (idle_kill, _) = store.create(NewSession::new(user.as_str())).await.unwrap();
        let (busy_kill, _) = store.create(NewSession::new(user.as_str())).await.unwrap();
        // The tracking connection is up (a load of another session opened it).
        let (warm, _) = store.create(NewSession::new("heidi")).await.unwrap();
        assert!(store.load(&warm).await.unwrap().is_some());

        // An idle connection killed, then a miss.
        let id = cache_client_id(&mut admin).await;
        let () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut admin)
            .await
            .unwrap();
        match store.load(&idle_kill).await {
            Ok(Some(s)) => assert_eq!(s.user_id(), user),
            other => panic!("round {round}: a miss after a kill answered {other:?}"),
        }

        // A miss whose read is in flight when its connection is reset.
        let flushes = meter.counts().flushes;
        let kill = kill_after_busy(&server, cache_client_id(&mut admin).await).await;
        match store.load(&busy_kill).await {
            Ok(Some(s)) => assert_eq!(s.user_id(), user),
            other => panic!("round {round}: a miss after a reset answered {other:?}"),
        }
        kill.await.unwrap();
        assert!(
            meter.counts().flushes > flushes,
            "round {round}: the cache was not emptied when its connection was replaced"
        );

        // A logout while the tracking connection is reset: it succeeds and the session is
        // gone. (The write's barrier finds the connection dead, or already given up: either
        // way the cache was emptied.)
        assert!(store.load(&busy_kill).await.unwrap().is_some()); // fills the cache
        assert!(store.load(&busy_kill).await.unwrap().is_some()); // from memory
        let kill = kill_after_busy(&server, cache_client_id(&mut admin).await).await;
        assert!(
            store.delete(&busy_kill).await.unwrap(),
            "round {round}: logout"
        );
        kill.await.unwrap();
        assert!(
            store.load(&busy_kill).await.unwrap().is_none(),
            "round {round}"
        );
        assert!(store.delete(&idle_kill).await.unwrap(), "round {round}");
        assert!(
            store.load(&idle_kill).await.unwrap().is_none(),
            "round {round}"
        );
    }
}
