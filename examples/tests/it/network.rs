//! Networks that misbehave without closing the socket: Redis behind a link the test controls
//! (a network namespace of its own, `link.rs`), the demo server in the root namespace. A silent
//! partition, 200 ms of added latency and 5% packet loss must each end in 200 or 503 (fail
//! closed), never a hang past the operation timeout, never another 5xx, never a revoked session
//! served, and recovery without a restart. Skipped (passing, with a message) where network
//! namespaces cannot be made.

#[path = "network/link.rs"]
mod link;
use crate::support;

use std::time::{Duration, Instant};

use link::Link;
use support::*;

/// The demo's operation timeout (the library default).
const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for a loaded machine on top of a deadline.
const MARGIN: Duration = Duration::from_secs(2);

/// `GET /me`: its status and how long the answer took.
async fn timed_me(c: &Client, cookie: &Cookie) -> (u16, Duration) {
    let start = Instant::now();
    let res = c.get("/me", Some(cookie)).await;
    (res.status, start.elapsed())
}

/// Ends the session of `cookie` by deleting its key from inside the namespace (a path the
/// faults do not touch): what an admin's revocation through another app server would do.
fn revoke_inside(link: &Link, cookie: &Cookie) {
    let token = session_core::Token::parse(&cookie.value).expect("a well-formed session token");
    let hex: String = token
        .key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The key holds raw bytes (maybe a NUL), which argv cannot carry: rebuild it in Lua.
    let script = "local h = ARGV[2] local k = '' \
                  for i = 1, #h, 2 do k = k .. string.char(tonumber(h:sub(i, i + 1), 16)) end \
                  return redis.call('DEL', ARGV[1] .. k)";
    let deleted = link.cli(&["EVAL", script, "0", "demo:s:", &hex]);
    assert_eq!(
        deleted.trim(),
        "1",
        "the session key was not there to delete"
    );
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Waits until `kept` answers 200 again (the server reconnects by itself); on every round,
/// `revoked` must not be served. Returns the time it took.
async fn recover(c: &Client, kept: &Cookie, revoked: &Cookie, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, _) = timed_me(c, revoked).await;
        assert_ne!(
            status, 200,
            "a session revoked during the partition was served"
        );
        let (status, _) = timed_me(c, kept).await;
        if status == 200 {
            return start.elapsed();
        }
        assert_eq!(status, 503, "while recovering");
        assert!(
            start.elapsed() < within,
            "no recovery {within:?} after the link healed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partition_answers_503_within_the_timeout_and_heals_without_a_restart() {
    let Some(mut link) = Link::create("partition") else {
        return;
    };
    let server = ServerBuilder::redis(&link.redis_url())
        .env("SESSION_CACHE", "off")
        .start()
        .await;
    let c = server.client();
    let kept = c.login_ok(ALICE.0, ALICE.1).await;
    let revoked = c.login_ok(ADMIN.0, ADMIN.1).await;
    assert_eq!(c.me_status(&kept).await, 200);
    assert_eq!(c.me_status(&revoked).await, 200);

    link.partition();
    let mut took = Vec::new();
    for round in 0..8 {
        let who = if round % 2 == 0 { &kept } else { &revoked };
        let start = Instant::now();
        let res = c.get("/me", Some(who)).await;
        let elapsed = start.elapsed();
        res.assert_error(503, "store_unavailable");
        assert!(
            elapsed < OP_TIMEOUT + MARGIN,
            "a guarded request took {elapsed:?} in a partition (operation timeout {OP_TIMEOUT:?})"
        );
        took.push(elapsed);
    }
    let admin = c.get("/admin", Some(&revoked)).await;
    admin.assert_error(503, "store_unavailable");
    revoke_inside(&link, &revoked);
    let (status, _) = timed_me(&c, &revoked).await;
    assert_eq!(status, 503, "revoked during the partition");
    took.sort();

    link.heal();
    let recovery = recover(&c, &kept, &revoked, Duration::from_secs(20)).await;
    assert_eq!(c.me_status(&revoked).await, 401);
    assert_eq!(c.me_status(&kept).await, 200);
    println!(
        "partition: {} guarded requests, all 503, {:?} .. {:?}; recovery {:?} after healing; \
         the session revoked meanwhile 401 after",
        took.len(),
        took[0],
        took[took.len() - 1],
        recovery
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_200ms_added_latency_requests_succeed_or_fail_closed() {
    let Some(link) = Link::create("latency") else {
        return;
    };
    let delay = Duration::from_millis(200);
    let line = link.delay(delay).await;
    let (url, how) = match &line {
        Some(line) => (line.redis_url(), "a delay line in the test (no netem here)"),
        None => (link.redis_url(), "netem"),
    };
    let server = ServerBuilder::redis(&url)
        .env("SESSION_CACHE", "off")
        .start_unhealthy()
        .await;
    let c = server.client();
    // A login is several round trips, each within its own timeout; one failing closed is
    // allowed (503), so try a few times before giving up on having a session to test with.
    let mut login_took = Vec::new();
    let mut cookie = None;
    for _ in 0..3 {
        let start = Instant::now();
        let login = c.login(ALICE.0, ALICE.1).await;
        login_took.push(start.elapsed());
        match login {
            Ok(c) => {
                cookie = Some(c);
                break;
            }
            Err(res) => res.assert_error(503, "store_unavailable"),
        }
    }
    let cookie = cookie.unwrap_or_else(|| {
        panic!("three logins under 200 ms latency all failed closed ({login_took:?})")
    });
    let (mut ok, mut refused) = (0, 0);
    let mut took = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let res = c.get("/me", Some(&cookie)).await;
        let elapsed = start.elapsed();
        match res.status {
            200 => ok += 1,
            _ => {
                res.assert_error(503, "store_unavailable");
                refused += 1;
            }
        }
        assert!(
            elapsed < OP_TIMEOUT + MARGIN,
            "GET /me took {elapsed:?} with 200 ms latency"
        );
        took.push(elapsed);
    }
    took.sort();
    println!(
        "latency 200 ms ({how}): login {login_took:?}; GET /me x{}: {ok} x 200, {refused} x 503; \
         p50 {:?}, max {:?}",
        took.len(),
        percentile(&took, 50),
        took[took.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_packet_loss_under_load_gives_only_200_or_503_and_loses_no_session() {
    let Some(mut link) = Link::create("loss") else {
        return;
    };
    let server = ServerBuilder::redis(&link.redis_url())
        .env("SESSION_CACHE", "off")
        .env("SESSION_MAX_PER_USER", 50)
        .start()
        .await;
    let c = server.client();
    let mut cookies = Vec::new();
    for _ in 0..20 {
        cookies.push(c.login_ok(ALICE.0, ALICE.1).await);
    }

    let how = link.lose(5);
    let start = Instant::now();
    let tasks: Vec<_> = cookies
        .iter()
        .cloned()
        .map(|cookie| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..10 {
                    let t = Instant::now();
                    let res = c.get("/me", Some(&cookie)).await;
                    seen.push((res.status, res.code().to_owned(), t.elapsed()));
                }
                seen
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.extend(task.await.expect("a load task"));
    }
    let wall = start.elapsed();
    link.heal();

    let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
    let refused = results
        .iter()
        .filter(|(s, code, _)| *s == 503 && code == "store_unavailable")
        .count();
    let others: Vec<_> = results
        .iter()
        .filter(|(s, code, _)| !(*s == 200 || (*s == 503 && code == "store_unavailable")))
        .collect();
    let mut took: Vec<Duration> = results.iter().map(|(_, _, t)| *t).collect();
    took.sort();
    println!(
        "5% loss ({how}): {} requests over 20 tasks in {wall:?}: {ok} x 200, {refused} x 503, \
         {} other; p50 {:?}, p99 {:?}, max {:?}",
        results.len(),
        others.len(),
        percentile(&took, 50),
        percentile(&took, 99),
        took[took.len() - 1]
    );
    assert!(
        others.is_empty(),
        "answers other than 200 and 503: {others:?}"
    );
    assert!(
        took[took.len() - 1] < OP_TIMEOUT + MARGIN,
        "a request hung past the operation timeout"
    );

    // No session was lost: every one loads once the link is clean again.
    let deadline = Instant::now() + Duration::from_secs(20);
    for cookie in &cookies {
        loop {
            let status = c.me_status(cookie).await;
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "a session was lost under packet loss");
            assert!(
                Instant::now() < deadline,
                "no recovery after the loss ended"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_on_a_partition_past_the_heartbeat_bound_refuses_cached_sessions() {
    let Some(mut link) = Link::create("cache partition") else {
        return;
    };
    let server = ServerBuilder::redis(&link.redis_url())
        .env("SESSION_CACHE", "on")
        .start()
        .await;
    let c = server.client();
    let kept = c.login_ok(ALICE.0, ALICE.1).await;
    let revoked = c.login_ok(ADMIN.0, ADMIN.1).await;
    // Read both, so both are in the cache.
    for _ in 0..2 {
        assert_eq!(c.me_status(&kept).await, 200);
        assert_eq!(c.me_status(&revoked).await, 200);
    }

    link.partition();
    let cut = Instant::now();
    let bound = Duration::from_secs(1);
    let mut served_from_cache = 0;
    let mut last_served = Duration::ZERO;
    // A request that misses the cache goes to Redis and waits out the operation timeout, so
    // the first refusal arrives up to that much after it was sent.
    let (first_refusal_sent, first_refusal) = loop {
        let sent = cut.elapsed();
        let (status, took) = timed_me(&c, &kept).await;
        if status != 200 {
            assert_eq!(status, 503);
            break (sent, cut.elapsed());
        }
        served_from_cache += 1;
        last_served = cut.elapsed();
        assert!(
            last_served < bound + MARGIN,
            "a cached session still served {last_served:?} into a partition (heartbeat bound \
             {bound:?})"
        );
        assert!(took < OP_TIMEOUT + MARGIN);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    revoke_inside(&link, &revoked);
    // Keep the link cut past the bound; from the first refusal on, neither session is served.
    let mut refused = 0;
    while cut.elapsed() < bound * 3 {
        for cookie in [&kept, &revoked] {
            let (status, took) = timed_me(&c, cookie).await;
            assert_eq!(
                status, 503,
                "served during a partition past the heartbeat bound"
            );
            assert!(took < OP_TIMEOUT + MARGIN, "a request took {took:?}");
            refused += 1;
        }
    }

    link.heal();
    let recovery = recover(&c, &kept, &revoked, Duration::from_secs(20)).await;
    for _ in 0..5 {
        assert_eq!(
            c.me_status(&revoked).await,
            401,
            "the revocation made during the partition was not honoured"
        );
    }
    println!(
        "cache partition: {served_from_cache} answers from the cache, the last {last_served:?} \
         after the cut (bound {bound:?}); the first request sent on to Redis went out at \
         {first_refusal_sent:?}, refused (503) at {first_refusal:?}; {refused} requests refused \
         while cut; recovery {recovery:?} after healing; the session revoked meanwhile 401 after"
    );
}
