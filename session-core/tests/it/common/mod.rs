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
