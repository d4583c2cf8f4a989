//! Smoke test of the cluster and sentinel harnesses: start each topology, write a key, kill the
//! primary holding it, wait for the failover, and read the key from the promoted node.

use std::process::Command;
use std::time::{Duration, Instant};

use redis_harness::cluster::NodeRole;
use redis_harness::{RedisCluster, RedisSentinelGroup};

/// Failovers normally take 2–5 s (see the harness docs); this leaves room for a loaded machine.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(20);

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli {args:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn cluster_fails_over_and_keeps_the_key() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start(3, 1).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("cluster up in {:?}", started.elapsed());

    let nodes = cluster.nodes();
    assert_eq!(nodes.len(), 6);
    assert_eq!(
        nodes.iter().filter(|n| n.role == NodeRole::Primary).count(),
        3
    );
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    let seed: u16 = urls[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");

    let key = "session:{smoke}";
    assert_eq!(cli(seed, &["-c", "SET", key, "hello"]), "OK");
    let owner = cluster.primary_for_key(key.as_bytes()).expect("slot owner");
    // Asked directly (no -c), the owner answers instead of redirecting: the slot maths agree.
    assert_eq!(cli(owner, &["GET", key]), "hello");
    cluster
        .wait_for_replication(owner, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let replica = cluster
        .nodes()
        .into_iter()
        .find(|n| n.role == NodeRole::Replica { primary: owner })
        .expect("the owner has a replica")
        .port;
    // A replica answers reads of its primary's slots after READONLY (one connection).
    let out = Command::new("redis-cli")
        .args(["-p", &replica.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("READONLY\nGET {key}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK\nhello");

    let killed = Instant::now();
    cluster.kill_node(owner).unwrap_or_else(|e| panic!("{e}"));
    let promoted = cluster
        .wait_for_failover(owner, FAILOVER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "cluster failover {owner} -> {promoted} in {:?}",
        killed.elapsed()
    );

    assert_ne!(promoted, owner);
    assert_eq!(cluster.primary_for_key(key.as_bytes()), Some(promoted));
    assert_eq!(cli(promoted, &["GET", key]), "hello");
    assert_eq!(
        cli(seed_other_than(&cluster, owner), &["-c", "GET", key]),
        "hello"
    );
    let nodes = cluster.nodes();
    assert!(nodes
        .iter()
        .any(|n| n.port == owner && n.role == NodeRole::Down));
    assert!(nodes
        .iter()
        .any(|n| n.port == promoted && n.role == NodeRole::Primary));
}

fn seed_other_than(cluster: &RedisCluster, dead: u16) -> u16 {
    cluster
        .nodes()
        .into_iter()
        .find(|n| n.port != dead && n.role != NodeRole::Down)
        .map(|n| n.port)
        .expect("a live node")
}

#[test]
fn sentinels_fail_over_and_keep_the_key() {
    let started = Instant::now();
    let mut group = RedisSentinelGroup::start("smoke").unwrap_or_else(|e| panic!("{e}"));
    eprintln!("sentinel group up in {:?}", started.elapsed());
    assert_eq!(group.service(), "smoke");
    assert_eq!(group.sentinel_urls().len(), 3);

    let primary = group.primary_port();
    assert_ne!(group.replica_port(), primary);
    assert_eq!(cli(primary, &["SET", "session:smoke", "hello"]), "OK");
    group
        .wait_for_replication(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));

    let killed_at = Instant::now();
    let killed = group.kill_primary().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(killed, primary);
    let promoted = group
        .wait_for_failover(killed, FAILOVER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "sentinel failover {killed} -> {promoted} in {:?}",
        killed_at.elapsed()
    );

    assert_ne!(promoted, killed);
    assert_eq!(group.primary_port(), promoted);
    assert_eq!(cli(promoted, &["GET", "session:smoke"]), "hello");
}
