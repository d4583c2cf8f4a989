//! Store operations against the best path of the same Redis client, at concurrency 1, 8 and 32.
//!
//! The baseline is **raw redis-rs on one shared `MultiplexedConnection`** (opened by the bench
//! itself, not through the store): every task clones the handle and sends its command, so
//! concurrent commands pipeline on one socket. That is the fastest way this client talks to
//! Redis; the store's own connections, timeouts, key hashing and record decoding are all part of
//! what is measured against it.
//!
//! - `load` (load-and-touch: one `GETEX key PX <idle>` that reads the record and slides the
//!   idle expiry; the absolute deadline and the record are checked in the client) vs a raw
//!   `GETEX key PX <idle>` of a value of the same byte length, under a key of the same length.
//!   Both sides pick uniformly among 10 000 keys.
//! - `create` (with the per-user index and the default limit of 10 sessions per user, for 1 000
//!   users chosen uniformly, prefilled to the limit so that every create also evicts the user's
//!   oldest session: the steady state of a busy site) vs a raw `SET key value PX <idle>` of the
//!   same sizes under a fresh key.
//!
//! Besides throughput, each side reports the client's CPU time per call (this process's CPU
//! over the run ÷ calls; Redis runs in its own process).
//!
//! Each concurrency level runs a short warm-up of both sides, then 10 rounds of 1 s per side,
//! alternately (the side that goes first flips each round). Besides throughput and client-side
//! latency, each side records Redis's own CPU time per call (`INFO commandstats`, reset before
//! each side), which explains the throughput ratios and hardly depends on the machine's noise.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use session_benches::{
    alternate, at_least, at_most, baseline_key, create_sessions, drive, drive_measured, fmt_ops,
    fmt_us, progress, quick, session_key, set_many, start_redis, strlen, user_id, Alternation, Row,
    Sample, Spread, IDLE, MAX_PER_USER,
};
use session_core::{NewSession, SessionStore, Token};

const BENCH: &str = "store_ops";
const LEVELS: [usize; 3] = [1, 8, 32];
const USERS: usize = 1000;
const KEYS: usize = 10_000;

/// A kind of login: its name, the user of each call (by seed), the throughput target.
type CreateKind = (&'static str, fn(u64) -> String, f64);

fn main() {
    session_benches::main_with(BENCH, run);
}

struct Plan {
    rounds: usize,
    side: Duration,
    warmup: Duration,
}

fn plan() -> Plan {
    if quick() {
        Plan {
            rounds: 2,
            side: Duration::from_millis(200),
            warmup: Duration::from_millis(50),
        }
    } else {
        Plan {
            rounds: 10,
            side: Duration::from_secs(1),
            warmup: Duration::from_millis(500),
        }
    }
}

async fn run() -> Vec<Row> {
    let plan = plan();
    let (server, store) = start_redis().await;
    progress(format!(
        "{BENCH}: redis-server started; the default pool (2 connections), limit {MAX_PER_USER} \
         sessions/user"
    ));

    // Data set: 10 sessions for each of 1000 users (the per-user limit, so later creates evict).
    let tokens: &'static [Token] = create_sessions(
        store,
        0..KEYS,
        32,
        |i| NewSession::new(user_id(i % USERS)).with_roles(["USER"]),
        "load data set",
    )
    .await
    .leak();
    let record_len = strlen(store, &session_key(&tokens[0])).await;
    progress(format!("{BENCH}: a session record is {record_len} bytes"));

    // Baseline data set: as many keys of the same length, values of the same length, same TTL
    // kind (sessions carry an expiry too).
    let value: &'static [u8] = vec![b'v'; record_len].leak();
    let keys: &'static [Vec<u8>] = (0..KEYS as u64)
        .map(baseline_key)
        .collect::<Vec<_>>()
        .leak();
    set_many(store, keys, value, 1800, 32).await;

    // The baseline's connection: one multiplexed connection, shared by every task.
    let raw: &'static MultiplexedConnection = Box::leak(Box::new(
        redis::Client::open(server.url())
            .expect("redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection for the baseline"),
    ));
    let idle_ms = u64::try_from(IDLE.as_millis()).unwrap_or(u64::MAX);

    let mut rows = Vec::new();
    for &level in &LEVELS {
        progress(format!("{BENCH}: load vs raw GETEX, concurrency {level}"));
        let getex = move |seed: u64| async move {
            let key = &keys[(seed % KEYS as u64) as usize];
            let mut c = raw.clone();
            let v: Option<Vec<u8>> = redis::cmd("GETEX")
                .arg(key)
                .arg("PX")
                .arg(idle_ms)
                .query_async(&mut c)
                .await
                .expect("GETEX");
            assert!(v.is_some(), "baseline key missing");
        };
        let load = move |seed: u64| async move {
            let token = &tokens[(seed % KEYS as u64) as usize];
            let s = store.load(token).await.expect("load");
            assert!(s.is_some(), "session missing");
        };
        drive(level, plan.warmup, getex).await;
        drive(level, plan.warmup, load).await;
        let alt = alternate(
            plan.rounds,
            || drive_measured(store, "getex", level, plan.side, getex),
            || drive_measured(store, "getex", level, plan.side, load),
        )
        .await;
        rows.extend(level_rows(
            &format!("c={level}"),
            "raw GETEX",
            "load",
            &alt,
            0.85,
            1.3,
        ));
    }

    // Two kinds of login: a user's first session (the index is only counted: the typical
    // login), and one at the per-user limit (the index is read, ended sessions are pruned and
    // the oldest live one is evicted: a busy user's steady state).
    let kinds: [CreateKind; 2] = [
        (
            "create (a user's first session)",
            |seed| format!("fresh-{seed:016x}"),
            0.7,
        ),
        (
            "create (at the limit: evicts)",
            |seed| user_id((seed % USERS as u64) as usize),
            f64::NAN,
        ),
    ];
    for (subject, user_of, target) in kinds {
        for &level in &LEVELS {
            progress(format!(
                "{BENCH}: {subject} vs raw SET PX, concurrency {level}"
            ));
            let set = move |seed: u64| async move {
                let key = baseline_key(seed);
                let mut c = raw.clone();
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(idle_ms)
                    .query_async(&mut c)
                    .await
                    .expect("SET");
            };
            let create = move |seed: u64| async move {
                store
                    .create(NewSession::new(user_of(seed)).with_roles(["USER"]))
                    .await
                    .expect("create");
            };
            drive(level, plan.warmup, set).await;
            drive(level, plan.warmup, create).await;
            let alt = alternate(
                plan.rounds,
                || drive_measured(store, "set", level, plan.side, set),
                || drive_measured(store, "exec", level, plan.side, create),
            )
            .await;
            rows.extend(level_rows(
                &format!("c={level}"),
                "raw SET PX",
                subject,
                &alt,
                target,
                f64::INFINITY,
            ));
        }
    }
    rows
}

/// Throughput (with the target), p50, p99 and Redis CPU rows for one concurrency level.
fn level_rows(
    level: &str,
    baseline: &str,
    subject: &str,
    alt: &Alternation<Sample>,
    target: f64,
    cpu_target: f64,
) -> Vec<Row> {
    let thr = Spread::of(&alt.per_round(|b, s| s.run.throughput() / b.run.throughput()));
    let (bt, st) = alt.medians(|m| m.run.throughput());
    let p50 = Spread::of(&alt.per_round(|b, s| s.run.p50() / b.run.p50()));
    let (b50, s50) = alt.medians(|m| m.run.p50());
    let p99 = Spread::of(&alt.per_round(|b, s| s.run.p99() / b.run.p99()));
    let (b99, s99) = alt.medians(|m| m.run.p99());
    let cpu = Spread::of(&alt.per_round(|b, s| s.server_us / b.server_us));
    let (bc, sc) = alt.medians(|m| m.server_us);
    let client = Spread::of(&alt.per_round(|b, s| s.client_us / b.client_us));
    let (bcl, scl) = alt.medians(|m| m.client_us);
    vec![
        Row::from_spread(
            BENCH,
            format!("{subject} vs {baseline}, throughput, {level}"),
            format!("{baseline} {}", fmt_ops(bt)),
            format!("{subject} {}", fmt_ops(st)),
            thr,
            if target.is_nan() {
                "info".to_owned()
            } else {
                at_least(target, thr.median)
            },
        ),
        Row::from_spread(
            BENCH,
            format!("{subject} vs {baseline}, client CPU per call, {level}"),
            format!("{bcl:.2} µs"),
            format!("{scl:.2} µs"),
            client,
            if cpu_target.is_finite() {
                at_most(cpu_target, client.median)
            } else {
                "info (lower is better)".to_owned()
            },
        ),
        Row::from_spread(
            BENCH,
            format!("{subject} vs {baseline}, p50 latency, {level}"),
            fmt_us(b50),
            fmt_us(s50),
            p50,
            "info (lower is better)",
        ),
        Row::from_spread(
            BENCH,
            format!("{subject} vs {baseline}, p99 latency, {level}"),
            fmt_us(b99),
            fmt_us(s99),
            p99,
            "info (lower is better)",
        ),
        Row::from_spread(
            BENCH,
            format!("{subject} vs {baseline}, Redis CPU per call (commandstats), {level}"),
            format!("{bc:.2} µs"),
            format!("{sc:.2} µs"),
            cpu,
            "info (lower is better)",
        ),
    ]
}
