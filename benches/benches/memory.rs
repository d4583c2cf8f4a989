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
//! 10 members.

use std::time::Duration;

use redis_harness::RedisServer;
use session_benches::BenchStore;
use session_benches::{
    baseline_key, create_sessions, dbsize, group, index_key, memory_usage, progress, quick,
    session_key, set_many, start_redis, strlen, used_memory, user_id, Row,
};
use session_core::{NewSession, SessionStore};

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

async fn sessions(per_user: usize) -> Growth {
    let (small, large) = sizes();
    let (_server, store) = start().await;
    let before = settled_used_memory(store).await;
    let user_of: fn(usize) -> String = if per_user == 1 {
        user_id
    } else {
        |i| user_id(i / 10)
    };
    let label = format!("{per_user} session(s)/user");
    let tokens = create_sessions(store, 0..small, 32, user_of, &label).await;
    let mid = settled_used_memory(store).await;
    create_sessions(store, small..large, 32, user_of, &label).await;
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
    let one = sessions(1).await;
    progress(format!("{BENCH}: 10 sessions per user"));
    let ten = sessions(10).await;
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
