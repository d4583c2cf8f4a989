//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Commands the Redis on `port` received from clients (not from inside scripts) while `work`
/// ran, as seen by `MONITOR`.
pub async fn monitored<F: std::future::Future<Output = ()>>(port: u16, work: F) -> Vec<String> {
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli on PATH (it comes with redis-server)");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "OK");
    work.await;
    let echoed = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "echo", "end-of-test"])
        .output()
        .expect("redis-cli");
    assert!(echoed.status.success());
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("monitor output");
        if line.contains("end-of-test") {
            break;
        }
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    // Commands run by a script show as "[0 lua]"; what a client sent shows its address.
    lines.into_iter().filter(|l| !l.contains(" lua]")).collect()
}

/// Asserts that `commands` (from [`monitored`]) are exactly `count` commands, each of them
/// `name` (lower case: `getex`, `evalsha`).
pub fn assert_each_is(commands: &[String], count: usize, name: &str) {
    assert_eq!(
        commands.len(),
        count,
        "expected one command per call: {commands:#?}"
    );
    let quoted = format!("\"{name}\"");
    assert!(
        commands.iter().all(|c| c.to_lowercase().contains(&quoted)),
        "expected only {name}: {commands:#?}"
    );
}

/// A key prefix no other test or run uses, so tests share a Redis server without seeing each
/// other's keys. The same form as the conformance suite's own (`conformance-…`): `redis_acl`
/// grants its sessions user exactly `~conformance-*`.
pub fn unique_prefix() -> String {
    use rand::Rng as _;
    format!("conformance-{:016x}", rand::rng().random::<u64>())
}

/// The conformance suite and [`unique_prefix`], for the modules that name both through
/// `conformance::`.
pub mod conformance {
    pub use super::unique_prefix;
    pub use session_core::testing::conformance::{run, run_throttle};
}

/// The counts a Redis store's session cache reports to the `metrics` facade
/// (`session_cache_*_total`), read from a recorder of the test's own. The cache takes its
/// metric handles from the recorder in effect when it is made ([`CacheMeter::made`]), so its
/// counts reach this recorder from any thread (the cache's driver thread counts flushes and
/// invalidations), and no other test's counts do.
pub struct CacheMeter {
    snapshotter: metrics_util::debugging::Snapshotter,
    /// Counts so far, by metric name (a snapshot drains the recorder's counters).
    totals: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// Cumulative counts of a [`CacheMeter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    pub flushes: u64,
}

impl CacheMeter {
    /// Runs `make` (which turns a store's cache on) with a recorder of this meter's own in
    /// effect on this thread; returns what `make` returned and the meter.
    pub fn made<T>(make: impl FnOnce() -> T) -> (T, CacheMeter) {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let made = metrics::with_local_recorder(&recorder, make);
        let meter = CacheMeter {
            snapshotter,
            totals: Default::default(),
        };
        (made, meter)
    }

    /// The counts so far.
    pub fn counts(&self) -> CacheCounts {
        use metrics_util::debugging::DebugValue;
        use session_core::metrics::{
            CACHE_FLUSHES_TOTAL, CACHE_HITS_TOTAL, CACHE_INVALIDATIONS_TOTAL, CACHE_MISSES_TOTAL,
        };
        let mut totals = self.totals.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            if let DebugValue::Counter(n) = value {
                *totals.entry(key.key().name().to_owned()).or_default() += n;
            }
        }
        let get = |name: &str| totals.get(name).copied().unwrap_or(0);
        CacheCounts {
            hits: get(CACHE_HITS_TOTAL),
            misses: get(CACHE_MISSES_TOTAL),
            invalidations: get(CACHE_INVALIDATIONS_TOTAL),
            flushes: get(CACHE_FLUSHES_TOTAL),
        }
    }
}

/// What the cache tests on Cluster and behind Sentinel share (`redis_cache_cluster.rs`,
/// `redis_cache_sentinel.rs`).
pub mod cache_topology {
    use std::time::{Duration, Instant};

    use session_core::{Error, NewSession, RedisStore, SessionStore, Token};

    use super::CacheMeter;

    /// Client commands other than the heartbeats' (`ROLE`, `CLUSTER SLOTS`, `PING`).
    pub fn without_heartbeats(commands: Vec<String>) -> Vec<String> {
        commands
            .into_iter()
            .filter(|c| {
                let c = c.to_lowercase();
                !c.contains("\"role\"") && !c.contains("\"cluster\"") && !c.contains("\"ping\"")
            })
            .collect()
    }

    /// Whether `a` still honours `token` as an ADMIN session.
    pub async fn honoured(a: &RedisStore, token: &Token) -> Result<bool, Error> {
        Ok(a.load(token).await?.is_some_and(|s| s.has_role("ADMIN")))
    }

    /// Waits until `a` refuses `token`; fails if it is still honoured 100 ms after the change.
    pub async fn refused_within_100ms(a: &RedisStore, token: &Token, what: &str) -> Duration {
        let changed = Instant::now();
        while honoured(a, token).await.unwrap() {
            assert!(
                changed.elapsed() < Duration::from_millis(100),
                "{what}: still honoured 100 ms after the change"
            );
            tokio::task::yield_now().await;
        }
        changed.elapsed()
    }

    /// `n` ADMIN sessions of users `{name}-0..n`, made through `b`.
    pub async fn admins(b: &RedisStore, name: &str, n: usize) -> Vec<(Token, String)> {
        let mut sessions = Vec::new();
        for i in 0..n {
            let user = format!("{name}-{i}");
            let (token, _) = b
                .create(NewSession::new(user.as_str()).with_roles(["ADMIN"]))
                .await
                .unwrap();
            sessions.push((token, user));
        }
        sessions
    }

    /// Loads every session through `a` until each load is a hit (on a cluster the slot map is
    /// trusted once a heartbeat found every primary agreeing with it), for at most 5 s.
    pub async fn warm(a: &RedisStore, meter: &CacheMeter, sessions: &[(Token, String)]) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                for (token, _) in sessions {
                    assert!(honoured(a, token).await.unwrap());
                }
                let before = meter.counts().hits;
                for (token, _) in sessions {
                    assert!(honoured(a, token).await.unwrap());
                }
                if meter.counts().hits - before == sessions.len() as u64 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every session cached within 5 s");
    }

    /// Runs `f` until it stops answering `Unavailable`, every 10 ms, for at most 10 s.
    pub async fn once_available<T, F, Fut>(what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match f().await {
                    Ok(v) => return v,
                    Err(Error::Unavailable { .. }) => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    Err(other) => panic!("{what}: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: still unavailable after 10 s"))
    }
}
