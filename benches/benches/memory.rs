//! Redis memory per live session, including its entry in the per-user index.
//!
//! For each user distribution (1 session per user; 10 sessions per user, the default limit) a
//! fresh redis-server: `used_memory` (from `INFO memory`) before, after creating 10 000 sessions
//! and after creating 90 000 more (100 000 in all). Bytes per session = growth / sessions.
//! "Before" is taken with the pool's connections open and the Lua scripts loaded (one warm-up
//! session), so neither is charged to the sessions.
//!
//! The baseline is a raw `SET key value EX 1800` with a key and a value of the same lengths
//! (what the record alone would cost as a plain string key with an expiry), on its own fresh
//! server. Memory is not noisy the way time is: one measurement per figure, no rounds.
//!
//! Also reported: `MEMORY USAGE` of one session key, of an index with 1 member and of one with
//! 10 members; the same growth for sessions that carry what a device list shows (a typical
//! browser `User-Agent`, the network, the method, remembered); and bytes per login-history
//! entry (1 000 users, or 100 in a quick run, each with a full history of 100 entries).

use std::time::Duration;

use redis_harness::RedisServer;
use session_benches::BenchStore;
use session_benches::{
    baseline_key, create_sessions, dbsize, group, history_key, index_key, memory_usage, progress,
    quick, session_key, set_many, start_redis, strlen, used_memory, user_id, Row,
};
use session_core::{HistoryEntry, LoginEvent, NewSession, SessionStore};

/// A current Chrome on Windows: 111 bytes, a typical `User-Agent`.
const USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

const BENCH: &str = "memory";
/// Bytes per session with its index entry: at 1 session per user, and at 10.
const TARGETS: [(usize, f64); 2] = [(1, 300.0), (10, 200.0)];

fn main() {
    session_benches::main_with(BENCH, run);
}

fn sizes() -> (usize, usize) {
    if quick() {
        (1_000, 10_000)
    } else {
        (10_000, 100_000)
    }
}

/// Bytes per item after the first step and after both, and `MEMORY USAGE` of a sample key.
struct Growth {
    small: f64,
    large: f64,
    keys_per_item: f64,
    record_len: usize,
    sample: u64,
    index_usage: Option<u64>,
}

/// Waits for Redis to settle (incremental rehashing, client buffers) and reads `used_memory`.
async fn settled_used_memory(store: &BenchStore) -> u64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    used_memory(store).await
}

async fn start() -> (RedisServer, &'static BenchStore) {
    let (server, store) = start_redis().await;
    // Load the create script (and its cache entry) before "before".
    store
        .create(NewSession::new("warmup").with_roles(["USER"]))
        .await
        .expect("warm-up create");
    (server, store)
}

/// A session of user `i` (one per user) with no device details.
fn bare_one(i: usize) -> NewSession {
    NewSession::new(user_id(i)).with_roles(["USER"])
}

/// A session of user `i / 10` with no device details.
fn bare_ten(i: usize) -> NewSession {
    NewSession::new(user_id(i / 10)).with_roles(["USER"])
}

/// A session of user `i / 10` with what a device list shows.
fn with_device(i: usize) -> NewSession {
    bare_ten(i)
        .with_user_agent(USER_AGENT)
        .with_client_ip(std::net::IpAddr::from([203, 0, 113, (i % 250) as u8]))
        .with_method("password")
        .with_remember(i.is_multiple_of(2))
}

async fn sessions(per_user: usize, new_of: fn(usize) -> NewSession, what: &str) -> Growth {
    let (small, large) = sizes();
    let (_server, store) = start().await;
    let before = settled_used_memory(store).await;
    let label = format!("{per_user} session(s)/user{what}");
    let tokens = create_sessions(store, 0..small, 32, new_of, &label).await;
    let mid = settled_used_memory(store).await;
    create_sessions(store, small..large, 32, new_of, &label).await;
    let after = settled_used_memory(store).await;
    // Minus the warm-up session and its index.
    let keys = dbsize(store).await - 2;
    let users = large.div_ceil(per_user) as u64;
    assert_eq!(
        keys,
        large as u64 + users,
        "unexpected key count (evictions?)"
    );
    let key = session_key(&tokens[0]);
    let record_len = strlen(store, &key).await;
    let sample = memory_usage(store, &key).await;
    let index_usage = memory_usage(store, &index_key(&user_id(0))).await;
    progress(format!(
        "{label}: used_memory before {} / after {} sessions {} / after {} {}; {} keys",
        group(before),
        group(small as u64),
        group(mid),
        group(large as u64),
        group(after),
        group(keys)
    ));
    Growth {
        small: (mid - before) as f64 / small as f64,
        large: (after - before) as f64 / large as f64,
        keys_per_item: keys as f64 / large as f64,
        record_len,
        sample,
        index_usage: Some(index_usage),
    }
}

/// Bytes per login-history entry: `users` users, each with a full history (100 entries, the
/// default bound) of failed logins from a known browser and network.
async fn history_entries() -> (f64, u64, u64) {
    let users = if quick() { 100 } else { 1_000 };
    let per_user = 100;
    let (_server, store) = start().await;
    let before = settled_used_memory(store).await;
    let entry = HistoryEntry::new(LoginEvent::LoginFailed)
        .with_user_agent(USER_AGENT)
        .with_client_ip([203, 0, 113, 7].into());
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let total = users * per_user;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (next, entry) = (next.clone(), entry.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    store
                        .record_event(&user_id(i % users), entry.clone())
                        .await
                        .expect("record_event");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("history task");
    }
    let after = settled_used_memory(store).await;
    progress(format!(
        "history: {} entries for {} users: used_memory {} -> {}",
        group(total as u64),
        group(users as u64),
        group(before),
        group(after)
    ));
    let one_user = memory_usage(store, &history_key(&user_id(0))).await;
    (
        (after - before) as f64 / total as f64,
        total as u64,
        one_user,
    )
}

async fn raw_strings(record_len: usize) -> Growth {
    let (small, large) = sizes();
    let (_server, store) = start().await;
    let value: &'static [u8] = vec![b'v'; record_len].leak();
    let keys: &'static [Vec<u8>] = (0..large as u64)
        .map(baseline_key)
        .collect::<Vec<_>>()
        .leak();
    let before = settled_used_memory(store).await;
    set_many(store, &keys[..small], value, 1800, 32).await;
    let mid = settled_used_memory(store).await;
    set_many(store, &keys[small..], value, 1800, 32).await;
    let after = settled_used_memory(store).await;
    let sample = memory_usage(store, &keys[0]).await;
    Growth {
        small: (mid - before) as f64 / small as f64,
        large: (after - before) as f64 / large as f64,
        keys_per_item: 1.0,
        record_len,
        sample,
        index_usage: None,
    }
}

async fn run() -> Vec<Row> {
    let (small, large) = sizes();
    let (small_s, large_s) = (group(small as u64), group(large as u64));
    progress(format!("{BENCH}: 1 session per user"));
    let one = sessions(1, bare_one, "").await;
    progress(format!("{BENCH}: 10 sessions per user"));
    let ten = sessions(10, bare_ten, "").await;
    progress(format!(
        "{BENCH}: 10 sessions per user, with device details"
    ));
    let devices = sessions(10, with_device, ", with device details").await;
    progress(format!("{BENCH}: login history"));
    let (per_entry, entries, one_user) = history_entries().await;
    progress(format!("{BENCH}: raw SET EX baseline"));
    let raw = raw_strings(one.record_len).await;

    let mut rows = Vec::new();
    for ((name, g), (_, target)) in [("1 session/user", &one), ("10 sessions/user", &ten)]
        .into_iter()
        .zip(TARGETS)
    {
        for (n, per, raw_per) in [
            (&small_s, g.small, raw.small),
            (&large_s, g.large, raw.large),
        ] {
            rows.push(Row {
                bench: BENCH.to_owned(),
                case: format!(
                    "bytes per session incl. index, {name}, {n} sessions ({:.1} keys/session)",
                    g.keys_per_item
                ),
                baseline: format!("raw SET EX same sizes: {raw_per:.0} B/key"),
                subject: format!("{per:.0} B/session"),
                ratio: format!("{:.2}×", per / raw_per),
                spread: "— (deterministic)".to_owned(),
                rounds: "1".to_owned(),
                target: if per <= target {
                    format!("≤ {target:.0} B/session: met")
                } else {
                    format!("≤ {target:.0} B/session: MISSED")
                },
            });
        }
        rows.push(Row {
            bench: BENCH.to_owned(),
            case: format!("flatness, {name}: B/session at {large_s} vs at {small_s}"),
            baseline: format!("{:.0} B", g.small),
            subject: format!("{:.0} B", g.large),
            ratio: format!("{:.2}×", g.large / g.small),
            spread: "— (deterministic)".to_owned(),
            rounds: "1".to_owned(),
            target: "≈ 1 (flat): info".to_owned(),
        });
    }
    rows.push(Row {
        bench: BENCH.to_owned(),
        case: format!(
            "MEMORY USAGE of one session key ({}-byte record)",
            one.record_len
        ),
        baseline: format!("raw string key: {} B", raw.sample),
        subject: format!("{} B", one.sample),
        ratio: format!("{:.2}×", one.sample as f64 / raw.sample as f64),
        spread: "—".to_owned(),
        rounds: "1".to_owned(),
        target: "info".to_owned(),
    });
    rows.push(Row {
        bench: BENCH.to_owned(),
        case: format!(
            "bytes per session incl. index, 10 sessions/user, {large_s} sessions, with device \
             details ({}-byte record: a {}-byte User-Agent, network, method)",
            devices.record_len,
            USER_AGENT.len()
        ),
        baseline: format!(
            "the same without device details: {:.0} B/session",
            ten.large
        ),
        subject: format!("{:.0} B/session", devices.large),
        ratio: format!("{:.2}×", devices.large / ten.large),
        spread: "— (deterministic)".to_owned(),
        rounds: "1".to_owned(),
        target: "info".to_owned(),
    });
    rows.push(Row {
        bench: BENCH.to_owned(),
        case: format!(
            "bytes per login-history entry ({} entries, 100 per user; MEMORY USAGE of one \
             user's history: {one_user} B)",
            group(entries)
        ),
        baseline: format!(
            "a session with device details: {:.0} B/session",
            devices.large
        ),
        subject: format!("{per_entry:.0} B/entry"),
        ratio: format!("{:.2}×", per_entry / devices.large),
        spread: "— (deterministic)".to_owned(),
        rounds: "1".to_owned(),
        target: "< 1× (a history entry costs less than a session): info".to_owned(),
    });
    for (name, g) in [("1 member", &one), ("10 members", &ten)] {
        rows.push(Row {
            bench: BENCH.to_owned(),
            case: format!("MEMORY USAGE of a per-user index key, {name}"),
            baseline: "—".to_owned(),
            subject: format!("{} B", g.index_usage.unwrap_or(0)),
            ratio: "—".to_owned(),
            spread: "—".to_owned(),
            rounds: "1".to_owned(),
            target: "info".to_owned(),
        });
    }
    rows
}
