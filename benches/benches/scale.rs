//! `load` latency with 10 000 vs 1 000 000 sessions in Redis: it must stay flat.
//!
//! Two redis-servers of the bench's own, filled through `create` (4 sessions per user, so
//! 2 500 and 250 000 users): one with 10 000 sessions (the baseline), one with 1 000 000 (the
//! subject). The 1M fill runs 64 creates at a time (the pooled multiplexed connections pipeline
//! them) and prints progress. Then `load` of a uniformly chosen session at concurrency 8,
//! alternately on each server, 10 rounds of 1 s per side. Only one server is busy at a time.
//! Besides client-side latency and throughput, each side records Redis's own CPU time per
//! `GETEX` (`INFO commandstats`), the figure least disturbed by a noisy machine.
//!
//! Control: a raw `GET` of the same session keys on the same two servers, alternated the same
//! way, shows how much of any slowdown is Redis's own (a bigger keyspace misses the CPU caches
//! more) rather than the store's.

use std::time::Duration;

use session_benches::BenchStore;
use session_benches::{
    alternate, at_most, create_sessions, dbsize, drive, drive_measured, fmt_ops, fmt_us, group,
    progress, quick, session_key, start_redis, used_memory, user_id, Row, Spread,
};
use session_core::{NewSession, SessionStore, Token};

const BENCH: &str = "scale";
const CONCURRENCY: usize = 8;
const PER_USER: usize = 4;

fn main() {
    session_benches::main_with(BENCH, run);
}

struct Plan {
    small: usize,
    large: usize,
    rounds: usize,
    side: Duration,
}

fn plan() -> Plan {
    if quick() {
        Plan {
            small: 1_000,
            large: 20_000,
            rounds: 2,
            side: Duration::from_millis(200),
        }
    } else {
        Plan {
            small: 10_000,
            large: 1_000_000,
            rounds: 10,
            side: Duration::from_secs(1),
        }
    }
}

async fn filled(
    n: usize,
    label: &str,
) -> (
    redis_harness::RedisServer,
    &'static BenchStore,
    &'static [Token],
) {
    let (server, store) = start_redis().await;
    let tokens = create_sessions(
        store,
        0..n,
        64,
        |i| NewSession::new(user_id(i / PER_USER)).with_roles(["USER"]),
        label,
    )
    .await
    .leak();
    let keys = dbsize(store).await;
    progress(format!(
        "{label}: {} keys, used_memory {} bytes",
        group(keys),
        group(used_memory(store).await)
    ));
    (server, store, tokens)
}

fn getter(
    store: &'static BenchStore,
    tokens: &'static [Token],
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
       + Clone
       + Send
       + 'static {
    move |seed| {
        Box::pin(async move {
            let key = session_key(&tokens[(seed % tokens.len() as u64) as usize]);
            let v: Option<Vec<u8>> = store.raw(redis::cmd("GET").arg(&key)).await.expect("GET");
            assert!(v.is_some(), "session missing");
        })
    }
}

fn loader(
    store: &'static BenchStore,
    tokens: &'static [Token],
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
       + Clone
       + Send
       + 'static {
    move |seed| {
        Box::pin(async move {
            let token = &tokens[(seed % tokens.len() as u64) as usize];
            let s = store.load(token).await.expect("load");
            assert!(s.is_some(), "session missing");
        })
    }
}

async fn run() -> Vec<Row> {
    let plan = plan();
    let small_s = group(plan.small as u64);
    let large_s = group(plan.large as u64);
    let (_small_server, small_store, small_tokens) =
        filled(plan.small, &format!("{small_s} sessions")).await;
    let (_large_server, large_store, large_tokens) =
        filled(plan.large, &format!("{large_s} sessions")).await;

    let small = loader(small_store, small_tokens);
    let large = loader(large_store, large_tokens);
    let warmup = plan.side / 4;
    drive(CONCURRENCY, warmup, small.clone()).await;
    drive(CONCURRENCY, warmup, large.clone()).await;
    progress(format!(
        "{BENCH}: load at concurrency {CONCURRENCY}, {} rounds of {:?} per side",
        plan.rounds, plan.side
    ));
    let alt = alternate(
        plan.rounds,
        || drive_measured(small_store, "getex", CONCURRENCY, plan.side, small.clone()),
        || drive_measured(large_store, "getex", CONCURRENCY, plan.side, large.clone()),
    )
    .await;

    progress(format!("{BENCH}: control: raw GET of the same keys"));
    let (small_get, large_get) = (
        getter(small_store, small_tokens),
        getter(large_store, large_tokens),
    );
    drive(CONCURRENCY, warmup, small_get.clone()).await;
    drive(CONCURRENCY, warmup, large_get.clone()).await;
    let control = alternate(
        plan.rounds,
        || {
            drive_measured(
                small_store,
                "get",
                CONCURRENCY,
                plan.side,
                small_get.clone(),
            )
        },
        || {
            drive_measured(
                large_store,
                "get",
                CONCURRENCY,
                plan.side,
                large_get.clone(),
            )
        },
    )
    .await;

    let case =
        |what: &str| format!("load {what}, c={CONCURRENCY}: {large_s} vs {small_s} sessions");
    let p50 = Spread::of(&alt.per_round(|b, s| s.run.p50() / b.run.p50()));
    let (b50, s50) = alt.medians(|m| m.run.p50());
    let p99 = Spread::of(&alt.per_round(|b, s| s.run.p99() / b.run.p99()));
    let (b99, s99) = alt.medians(|m| m.run.p99());
    let thr = Spread::of(&alt.per_round(|b, s| s.run.throughput() / b.run.throughput()));
    let (bt, st) = alt.medians(|m| m.run.throughput());
    let cpu = Spread::of(&alt.per_round(|b, s| s.server_us / b.server_us));
    let (bc, sc) = alt.medians(|m| m.server_us);
    let mut rows = vec![
        Row::from_spread(
            BENCH,
            case("p50 latency"),
            format!("{small_s}: {}", fmt_us(b50)),
            format!("{large_s}: {}", fmt_us(s50)),
            p50,
            format!("flat, {}", at_most(1.2, p50.median)),
        ),
        Row::from_spread(
            BENCH,
            case("p99 latency"),
            format!("{small_s}: {}", fmt_us(b99)),
            format!("{large_s}: {}", fmt_us(s99)),
            p99,
            format!("flat, {}", at_most(1.2, p99.median)),
        ),
        Row::from_spread(
            BENCH,
            case("throughput"),
            format!("{small_s}: {}", fmt_ops(bt)),
            format!("{large_s}: {}", fmt_ops(st)),
            thr,
            "info (≈ 1 is flat)",
        ),
        Row::from_spread(
            BENCH,
            case("Redis CPU per GETEX (commandstats)"),
            format!("{small_s}: {bc:.2} µs"),
            format!("{large_s}: {sc:.2} µs"),
            cpu,
            "info (≈ 1 is flat)",
        ),
    ];
    let gp50 = Spread::of(&control.per_round(|b, s| s.run.p50() / b.run.p50()));
    let (gb50, gs50) = control.medians(|m| m.run.p50());
    let gcpu = Spread::of(&control.per_round(|b, s| s.server_us / b.server_us));
    let (gbc, gsc) = control.medians(|m| m.server_us);
    rows.extend([
        Row::from_spread(
            BENCH,
            format!("control: raw GET of the same keys, p50 latency, c={CONCURRENCY}: {large_s} vs {small_s}"),
            format!("{small_s}: {}", fmt_us(gb50)),
            format!("{large_s}: {}", fmt_us(gs50)),
            gp50,
            "info (Redis's own scaling)",
        ),
        Row::from_spread(
            BENCH,
            format!("control: raw GET, Redis CPU per GET (commandstats): {large_s} vs {small_s}"),
            format!("{small_s}: {gbc:.2} µs"),
            format!("{large_s}: {gsc:.2} µs"),
            gcpu,
            "info (Redis's own scaling)",
        ),
    ]);
    rows
}
