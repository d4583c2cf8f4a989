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
