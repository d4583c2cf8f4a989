//! A small benchmark harness of our own, shared by the bench targets in `benches/benches/`.
//!
//! Every figure we publish is a **ratio of two things measured alternately in the same run**
//! (this kind of machine swings ±20% from one run to the next, much less from one second to the
//! next). [`alternate`] runs a baseline and a subject in rounds, flipping which goes first each
//! round, and [`Spread`] summarises the per-round ratios (median, min, max). Each bench prints
//! one Markdown table ([`print_table`]) on stdout; progress goes to stderr. `benches/run.sh` runs
//! them all and merges the tables.
//!
//! Benchmarks are not tests: run through `cargo test --all-targets`, a bench binary (which then
//! gets no `--bench` argument) says so and exits at once ([`invoked_as_bench`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_harness::RedisServer;
use session_core::{NewSession, RedisStore, SessionConfig, SessionStore, Token, SESSION_KEY_BYTES};

/// True when `cargo bench` started this binary (it passes `--bench`).
pub fn invoked_as_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Exits early (returning `true`) when the binary was not started by `cargo bench`.
pub fn skip_unless_bench(name: &str) -> bool {
    if invoked_as_bench() {
        return false;
    }
    eprintln!(
        "{name}: a benchmark, not a test; run `cargo bench -p session-benches --bench {name}`"
    );
    true
}

/// The `main` of an async bench: nothing unless `cargo bench` started it, else `run` on a
/// multi-thread tokio runtime and its rows printed as the table.
pub fn main_with<F, Fut>(name: &str, run: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Vec<Row>>,
{
    if skip_unless_bench(name) {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows = rt.block_on(run());
    print_table(&rows);
}

/// `BENCH_QUICK=1`: tiny sizes and durations, to check that a bench runs end to end. Its figures
/// mean nothing.
pub fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Prints a progress line on stderr (stdout carries only the table).
pub fn progress(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

/// A fast, well-mixing hash of a counter: the benches' source of "random" choices (no shared
/// RNG state between tasks, reproducible, and no syscalls).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// As many pseudo-random bytes as a session key has, derived from `seed` (for baseline key
/// names of a session key's length).
pub fn key_bytes(seed: u64) -> [u8; SESSION_KEY_BYTES] {
    let mut out = [0u8; SESSION_KEY_BYTES];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(
            &splitmix64(seed ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407)).to_le_bytes(),
        );
    }
    out
}

/// One timed run: how many operations completed and how long each took.
#[derive(Debug, Clone)]
pub struct Run {
    /// Operations completed.
    pub ops: u64,
    /// Wall time from the start until the last task finished.
    pub elapsed: Duration,
    /// Per-operation latencies in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
}

impl Run {
    /// Operations per second.
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`-th percentile latency (`p` in 0..=100), in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (self.latencies_ns.len() - 1) as f64).round() as usize;
        self.latencies_ns[rank.min(self.latencies_ns.len() - 1)] as f64 / 1000.0
    }

    /// Median latency, µs.
    pub fn p50(&self) -> f64 {
        self.percentile_us(50.0)
    }

    /// 99th percentile latency, µs.
    pub fn p99(&self) -> f64 {
        self.percentile_us(99.0)
    }
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(1);

/// Runs `op` in a loop on `concurrency` tokio tasks for `duration` and times every call.
///
/// `op` gets a distinct 64-bit value per call (hashed from run, task and iteration numbers), to
/// pick a key or a user from. Call it inside a multi-threaded runtime.
pub async fn drive<F, Fut>(concurrency: usize, duration: Duration, op: F) -> Run
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let run = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 14);
                let mut i: u64 = 0;
                loop {
                    let t = Instant::now();
                    if t >= deadline {
                        break;
                    }
                    op(splitmix64((run << 44) ^ (task << 32) ^ i)).await;
                    latencies.push(t.elapsed().as_nanos() as u64);
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies_ns = Vec::new();
    for task in tasks {
        latencies_ns.extend(task.await.expect("bench task panicked"));
    }
    let elapsed = start.elapsed();
    latencies_ns.sort_unstable();
    Run {
        ops: latencies_ns.len() as u64,
        elapsed,
        latencies_ns,
    }
}

/// The per-round results of an alternation.
#[derive(Debug, Clone, Default)]
pub struct Alternation<M> {
    /// Baseline measurement of each round.
    pub baseline: Vec<M>,
    /// Subject measurement of each round.
    pub subject: Vec<M>,
}

impl<M> Alternation<M> {
    /// Per-round `f(baseline, subject)`.
    pub fn per_round(&self, f: impl Fn(&M, &M) -> f64) -> Vec<f64> {
        self.baseline
            .iter()
            .zip(&self.subject)
            .map(|(b, s)| f(b, s))
            .collect()
    }

    /// Median over rounds of `f(baseline)` and of `f(subject)`.
    pub fn medians(&self, f: impl Fn(&M) -> f64) -> (f64, f64) {
        let b: Vec<f64> = self.baseline.iter().map(&f).collect();
        let s: Vec<f64> = self.subject.iter().map(&f).collect();
        (median(&b), median(&s))
    }

    /// Number of rounds.
    pub fn rounds(&self) -> usize {
        self.baseline.len()
    }
}

/// Runs `rounds` rounds of baseline and subject, alternately; the side that goes first flips
/// every round, so a drift of the machine during the run does not favour one side.
pub async fn alternate<M, B, BF, S, SF>(
    rounds: usize,
    mut baseline: B,
    mut subject: S,
) -> Alternation<M>
where
    B: FnMut() -> BF,
    BF: Future<Output = M>,
    S: FnMut() -> SF,
    SF: Future<Output = M>,
{
    let mut out = Alternation {
        baseline: Vec::with_capacity(rounds),
        subject: Vec::with_capacity(rounds),
    };
    for round in 0..rounds {
        if round % 2 == 0 {
            out.baseline.push(baseline().await);
            out.subject.push(subject().await);
        } else {
            out.subject.push(subject().await);
            out.baseline.push(baseline().await);
        }
    }
    out
}

/// The median of `values` (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median, min and max of per-round ratios.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Spread {
    /// Summarises `values`.
    pub fn of(values: &[f64]) -> Self {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self {
            median: median(values),
            min,
            max,
            n: values.len(),
        }
    }

    /// `0.93×`.
    pub fn ratio(&self) -> String {
        format!("{:.2}×", self.median)
    }

    /// `0.88–0.97`.
    pub fn range(&self) -> String {
        format!("{:.2}–{:.2}", self.min, self.max)
    }
}

/// One row of the results table. Columns: what was measured, the baseline and subject figures
/// (medians over rounds), the median per-round ratio, its spread, the number of rounds and the
/// target with a verdict.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Bench target name.
    pub bench: String,
    /// What this row measures.
    pub case: String,
    /// Baseline figure.
    pub baseline: String,
    /// Subject figure.
    pub subject: String,
    /// Ratio (median of the per-round ratios).
    pub ratio: String,
    /// Spread of the per-round ratios (min–max).
    pub spread: String,
    /// Rounds.
    pub rounds: String,
    /// Target and verdict, or `info`.
    pub target: String,
}

impl Row {
    /// A row from a [`Spread`] of ratios.
    pub fn from_spread(
        bench: &str,
        case: impl Into<String>,
        baseline: impl Into<String>,
        subject: impl Into<String>,
        spread: Spread,
        target: impl Into<String>,
    ) -> Self {
        Self {
            bench: bench.to_owned(),
            case: case.into(),
            baseline: baseline.into(),
            subject: subject.into(),
            ratio: spread.ratio(),
            spread: spread.range(),
            rounds: spread.n.to_string(),
            target: target.into(),
        }
    }
}

/// The table header (shared by every bench so that `run.sh` can merge their tables).
pub const TABLE_HEADER: &str = "| bench | case | baseline (median) | subject (median) | ratio subject/baseline (median of rounds) | spread (min–max) | rounds | target |\n|---|---|---|---|---|---|---|---|";

/// Prints `rows` as a Markdown table on stdout.
pub fn print_table(rows: &[Row]) {
    println!("{TABLE_HEADER}");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.bench, r.case, r.baseline, r.subject, r.ratio, r.spread, r.rounds, r.target
        );
    }
}

/// `at least` target verdict: `≥ 0.90×: met` / `missed`.
pub fn at_least(target: f64, value: f64) -> String {
    let verdict = if value >= target { "met" } else { "MISSED" };
    format!("≥ {target:.2}×: {verdict}")
}

/// `at most` target verdict.
pub fn at_most(target: f64, value: f64) -> String {
    let verdict = if value <= target { "met" } else { "MISSED" };
    format!("≤ {target:.2}×: {verdict}")
}

/// `12 345 ops/s`.
pub fn fmt_ops(ops: f64) -> String {
    format!("{} ops/s", group(ops.round() as u64))
}

/// `123 µs` / `1.23 ms`.
pub fn fmt_us(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

/// `1 234 567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A [`RedisStore`] and a raw connection of the bench's own to the same redis-server, for
/// what the store does not offer (`INFO`, `CONFIG RESETSTAT`, `MEMORY USAGE`, baseline `SET`s).
/// Derefs to the store.
pub struct BenchStore {
    store: RedisStore,
    raw: MultiplexedConnection,
}

impl std::ops::Deref for BenchStore {
    type Target = RedisStore;

    fn deref(&self) -> &RedisStore {
        &self.store
    }
}

impl BenchStore {
    /// Runs `cmd` on the raw connection.
    pub async fn raw<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        cmd.query_async(&mut self.raw.clone()).await
    }
}

/// The benches' key prefix (the store's keys are read back raw: [`session_key`]): the default,
/// so that measured key sizes are a default deployment's.
pub const KEY_PREFIX: &str = "session";

/// The benches' idle timeout.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// The benches' limit of sessions per user.
pub const MAX_PER_USER: usize = 10;

/// A redis-server of the bench's own and a [`BenchStore`] on it, configured with
/// [`KEY_PREFIX`], [`IDLE`] and [`MAX_PER_USER`]. The store is leaked so that bench tasks can
/// hold `&'static` references to it (no `Arc` traffic in the measured loop).
pub async fn start_redis() -> (RedisServer, &'static BenchStore) {
    let server = RedisServer::start_local().unwrap_or_else(|e| panic!("{e}"));
    let config = SessionConfig::builder()
        .key_prefix(KEY_PREFIX)
        .idle_timeout(IDLE)
        .max_sessions_per_user(Some(MAX_PER_USER))
        .build()
        .unwrap_or_else(|e| panic!("the benches' configuration: {e}"));
    let store = RedisStore::connect(server.url(), config)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the bench's redis-server: {e}"));
    let raw = redis::Client::open(server.url())
        .expect("redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the bench's redis-server");
    let store: &'static BenchStore = Box::leak(Box::new(BenchStore { store, raw }));
    // Open every pooled connection and load the Lua scripts now, so that neither shows up in
    // the first measurement.
    warm_pool(store).await;
    (server, store)
}

/// Concurrent reads that open every pooled connection: calls take the shared connections in
/// turn, so any number above the pool size (2 by default; the benches do not change it) will do.
const WARM_UP_CALLS: usize = 64;

/// Runs enough concurrent store reads (of a user with no sessions) to open every pooled
/// connection.
pub async fn warm_pool(store: &'static RedisStore) {
    let n = WARM_UP_CALLS;
    let pings: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(async move {
                store
                    .list_user_sessions("warm-up")
                    .await
                    .expect("warm-up read");
            })
        })
        .collect();
    for p in pings {
        p.await.expect("ping task");
    }
}

/// The Redis key of a session (`{prefix}:s:{sha256(token)}`; see the store's key layout).
pub fn session_key(token: &Token) -> Vec<u8> {
    let mut k = format!("{KEY_PREFIX}:s:").into_bytes();
    k.extend_from_slice(token.key().as_bytes());
    k
}

/// The Redis key of a user's index (`{prefix}:u:{user id}`).
pub fn index_key(user_id: &str) -> Vec<u8> {
    format!("{KEY_PREFIX}:u:{user_id}").into_bytes()
}

/// A user's login-history list (in the hash slot of the user's index).
pub fn history_key(user_id: &str) -> Vec<u8> {
    format!("{KEY_PREFIX}:h:{{{KEY_PREFIX}:u:{user_id}}}").into_bytes()
}

/// A baseline key of the same length as a session key: `{prefix}:b:` and 16 bytes.
pub fn baseline_key(seed: u64) -> Vec<u8> {
    let mut k = format!("{KEY_PREFIX}:b:").into_bytes();
    k.extend_from_slice(&key_bytes(seed));
    k
}

/// A timed run plus Redis's own CPU time per call of the measured command.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The client-side view: throughput and latencies.
    pub run: Run,
    /// `usec_per_call` of the measured command in `INFO commandstats` over the run: the time
    /// Redis spent executing one call (for `EVALSHA`, the whole script with its inner calls).
    /// Far less sensitive to a noisy machine than wall-clock figures.
    pub server_us: f64,
    /// This process's CPU time (user + system, all threads) per call over the run: the
    /// client's cost of one call (Redis runs in its own process).
    pub client_us: f64,
}

/// [`drive`], bracketed by `CONFIG RESETSTAT` and `INFO commandstats` on `store`'s server, to
/// also get Redis's CPU time per call of `command` (lower case: `get`, `set`, `evalsha`).
pub async fn drive_measured<F, Fut>(
    store: &'static BenchStore,
    command: &'static str,
    concurrency: usize,
    duration: Duration,
    op: F,
) -> Sample
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let () = store
        .raw(redis::cmd("CONFIG").arg("RESETSTAT"))
        .await
        .expect("CONFIG RESETSTAT");
    let cpu_before = process_cpu();
    let run = drive(concurrency, duration, op).await;
    let client_us = (process_cpu() - cpu_before).as_secs_f64() * 1e6 / run.ops.max(1) as f64;
    let stats: String = store
        .raw(redis::cmd("INFO").arg("commandstats"))
        .await
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:");
    let server_us = stats
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|fields| {
            fields
                .split(',')
                .find_map(|f| f.strip_prefix("usec_per_call="))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(f64::NAN);
    Sample {
        run,
        server_us,
        client_us,
    }
}

/// CPU time this process has used so far, all threads (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `used_memory` from `INFO memory`.
pub async fn used_memory(store: &BenchStore) -> u64 {
    let info: String = store
        .raw(redis::cmd("INFO").arg("memory"))
        .await
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

/// `MEMORY USAGE key SAMPLES 0` (exact for aggregates).
pub async fn memory_usage(store: &BenchStore, key: &[u8]) -> u64 {
    let n: Option<u64> = store
        .raw(
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0),
        )
        .await
        .expect("MEMORY USAGE");
    n.expect("MEMORY USAGE of an existing key")
}

/// `STRLEN key`.
pub async fn strlen(store: &BenchStore, key: &[u8]) -> usize {
    store
        .raw(redis::cmd("STRLEN").arg(key))
        .await
        .expect("STRLEN")
}

/// `DBSIZE`.
pub async fn dbsize(store: &BenchStore) -> u64 {
    store.raw(&redis::cmd("DBSIZE")).await.expect("DBSIZE")
}

/// Creates sessions number `range` through the store (`create`, so each is indexed under its
/// user and the per-user limit is enforced), `concurrency` at a time: the multiplexed pooled
/// connections pipeline concurrent calls. Session `i` belongs to `user_of(i)` and has role
/// `USER`. Prints progress on stderr about every tenth. Returns the tokens in no particular
/// order.
pub async fn create_sessions(
    store: &'static RedisStore,
    range: std::ops::Range<usize>,
    concurrency: usize,
    new_of: fn(usize) -> NewSession,
    label: &str,
) -> Vec<Token> {
    let (first, n) = (range.start, range.end);
    let next: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(first)));
    let step = ((n - first) / 10).max(1);
    let start = Instant::now();
    let label: &'static str = Box::leak(label.to_owned().into_boxed_str());
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (token, _) = store.create(new_of(i)).await.expect("create");
                    tokens.push(token);
                    let done = i + 1 - first;
                    if done.is_multiple_of(step) {
                        let secs = start.elapsed().as_secs_f64();
                        progress(format!(
                            "{label}: {} / {} sessions created ({:.1} s, {:.0}/s)",
                            group(done as u64),
                            group((n - first) as u64),
                            secs,
                            done as f64 / secs
                        ));
                    }
                }
                tokens
            })
        })
        .collect();
    let mut tokens = Vec::with_capacity(n - first);
    for t in tasks {
        tokens.extend(t.await.expect("create task"));
    }
    tokens
}

/// Runs `SET key value EX ttl` for every `(key, value)` with `concurrency` calls in flight
/// (for baseline data sets).
pub async fn set_many(
    store: &'static BenchStore,
    keys: &'static [Vec<u8>],
    value: &'static [u8],
    ttl_secs: u64,
    concurrency: usize,
) {
    let next: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(key) = keys.get(i) else { break };
                    let () = store
                        .raw(
                            redis::cmd("SET")
                                .arg(key)
                                .arg(value)
                                .arg("EX")
                                .arg(ttl_secs),
                        )
                        .await
                        .expect("SET");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("set task");
    }
}

/// A user id of the benches' population: `user000042` (10 bytes, like a typical short id).
pub fn user_id(n: usize) -> String {
    format!("user{n:06}")
}
