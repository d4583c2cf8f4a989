//! A network link the test controls: a Linux network namespace of the test's own, joined to the
//! root namespace by a veth pair on a private /30, with a `redis-server` inside it. The link can
//! be cut silently (no RST), slowed or made lossy, and is torn down on drop.
//!
//! This kernel has no `sch_netem` (and no tc actions), so each fault uses what is there and the
//! test prints which: a partition is a `blackhole` qdisc on both ends of the pair (every packet
//! dropped, nothing answered); loss is netem if present, else `iptables -m statistic` inside
//! the namespace; latency is netem if present, else a delay line in the test process that holds
//! each chunk bound for Redis for the given time before passing it on.

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Redis's port inside the namespace (the namespace is ours alone, so any port is free).
const REDIS_PORT: u16 = 6390;

/// A namespace, its veth pair and its Redis.
pub struct Link {
    ns: String,
    host_if: String,
    ns_if: String,
    host_addr: String,
    ns_addr: String,
    redis: Option<Child>,
    iptables: bool,
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Link {
    /// A new namespace with Redis running inside, or `None` (with the reason printed) where
    /// namespaces cannot be made here (not root, no `ip`).
    pub fn create(test: &str) -> Option<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let ns = format!("sc-fault-{pid}-{n}");
        match Command::new("ip").args(["netns", "add", &ns]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!(
                    "SKIPPED {test}: `ip netns add` failed ({}); network-fault tests need root",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!(
                    "SKIPPED {test}: cannot run `ip` ({e}); network-fault tests need iproute2"
                );
                return None;
            }
        }
        // A /30 in 10.64.0.0/10 (10.b.c.0/30) picked from the pid and the counter; interface
        // names within the 15 characters Linux allows.
        let slot = (pid as usize * 8 + n) % (1 << 14);
        let (b, c) = (64 + slot / 256, slot % 256);
        let mut link = Link {
            host_if: format!("sfh{:x}x{n}", pid % 0xfffff),
            ns_if: format!("sfn{:x}x{n}", pid % 0xfffff),
            host_addr: format!("10.{b}.{c}.1"),
            ns_addr: format!("10.{b}.{c}.2"),
            ns,
            redis: None,
            iptables: false,
        };
        link.wire();
        link.start_redis();
        Some(link)
    }

    fn in_ns<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["ip", "netns", "exec", self.ns.as_str()];
        all.extend_from_slice(args);
        all
    }

    fn wire(&self) {
        must(&[
            "ip",
            "link",
            "add",
            &self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &self.ns_if,
        ]);
        must(&["ip", "link", "set", &self.ns_if, "netns", &self.ns]);
        let host_cidr = format!("{}/30", self.host_addr);
        let ns_cidr = format!("{}/30", self.ns_addr);
        must(&["ip", "addr", "add", &host_cidr, "dev", &self.host_if]);
        must(&["ip", "link", "set", &self.host_if, "up"]);
        must(&self.in_ns(&["ip", "addr", "add", &ns_cidr, "dev", &self.ns_if]));
        must(&self.in_ns(&["ip", "link", "set", &self.ns_if, "up"]));
        must(&self.in_ns(&["ip", "link", "set", "lo", "up"]));
    }

    fn start_redis(&mut self) {
        let port = REDIS_PORT.to_string();
        let args = self.in_ns(&[
            "redis-server",
            "--port",
            &port,
            "--bind",
            &self.ns_addr,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]);
        let child = Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server in {}: {e}", self.ns));
        self.redis = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server in namespace {} did not answer PING within 10 s",
                self.ns
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Redis's URL, as seen from the root namespace (through the veth pair).
    pub fn redis_url(&self) -> String {
        format!("redis://{}:{REDIS_PORT}", self.ns_addr)
    }

    /// Redis's address, as seen from the root namespace.
    pub fn redis_addr(&self) -> SocketAddr {
        format!("{}:{REDIS_PORT}", self.ns_addr)
            .parse()
            .expect("an IPv4 socket address")
    }

    /// `redis-cli` run inside the namespace (a path to Redis that the faults do not touch).
    pub fn cli(&self, args: &[&str]) -> String {
        let port = REDIS_PORT.to_string();
        let mut all = self.in_ns(&["redis-cli", "-h", &self.ns_addr, "-p", &port]);
        all.extend_from_slice(args);
        String::from_utf8_lossy(&run(&all).stdout).into_owned()
    }

    /// Drops every packet both ways, silently: no RST, no ICMP; sockets just stop hearing.
    pub fn partition(&self) {
        must(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.host_if,
            "root",
            "blackhole",
        ]);
        must(&self.in_ns(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.ns_if,
            "root",
            "blackhole",
        ]));
    }

    /// Undoes [`Link::partition`] and [`Link::lose`].
    pub fn heal(&mut self) {
        let _ = run(&["tc", "qdisc", "del", "dev", &self.host_if, "root"]);
        let _ = run(&self.in_ns(&["tc", "qdisc", "del", "dev", &self.ns_if, "root"]));
        if self.iptables {
            must(&self.in_ns(&["iptables", "-F"]));
            self.iptables = false;
        }
    }

    /// Drops `percent` % of the packets each way, at random. Returns how.
    pub fn lose(&mut self, percent: u32) -> &'static str {
        let loss = format!("{percent}%");
        let host = run(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.host_if,
            "root",
            "netem",
            "loss",
            &loss,
        ]);
        if host.status.success() {
            must(&self.in_ns(&[
                "tc",
                "qdisc",
                "replace",
                "dev",
                &self.ns_if,
                "root",
                "netem",
                "loss",
                &loss,
            ]));
            return "netem loss";
        }
        let p = format!("{:.4}", f64::from(percent) / 100.0);
        for chain in ["INPUT", "OUTPUT"] {
            let out = run(&self.in_ns(&[
                "iptables",
                "-A",
                chain,
                "-p",
                "tcp",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ]));
            assert!(
                out.status.success(),
                "no netem here, and `iptables -m statistic` failed ({}); install iptables \
                 (`.ci/run` does)",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        self.iptables = true;
        "iptables statistic DROP in the namespace (no netem in this kernel)"
    }

    /// Adds `delay` on the way to Redis: netem on the root end of the pair if the kernel has it
    /// (then `None`: use [`Link::redis_url`]), else a delay line in this process whose
    /// address is returned (use that instead of Redis's).
    pub async fn delay(&self, delay: Duration) -> Option<DelayLine> {
        let ms = format!("{}ms", delay.as_millis());
        let netem = run(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.host_if,
            "root",
            "netem",
            "delay",
            &ms,
        ]);
        if netem.status.success() {
            return None;
        }
        Some(DelayLine::start(self.redis_addr(), delay).await)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        // Deleting one end of a veth pair deletes both; deleting the namespace ends its
        // processes' network (redis-server was killed above).
        let _ = run(&["ip", "link", "del", &self.host_if]);
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}

/// A TCP relay on 127.0.0.1 that passes each chunk bound for the target on `delay` after it
/// arrived (order kept), and answers immediately: `delay` added to every round trip, like netem
/// on one interface.
pub struct DelayLine {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DelayLine {
    async fn start(target: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the delay line");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, target, delay));
            }
        });
        DelayLine { addr, task }
    }

    /// The URL to give the server instead of Redis's.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, target: SocketAddr, delay: Duration) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let inbound = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let delayed = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if server_tx.write_all(&chunk).await.is_err() {
                break;
            }
        }
    };
    let outbound = async move {
        let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
    };
    tokio::join!(inbound, delayed, outbound);
}
