//! HTTP level: the real `demo-server` binary on a real Redis, loaded by `wrk`.
//!
//! 1. **Round trips**: one warm-up request (it fills the demo's session cache),
//!    `CONFIG RESETSTAT`, 1000 sequential `GET /me` on one keep-alive connection, then
//!    `INFO commandstats`: the commands Redis received per authenticated
//!    request (the demo's cache is on: a hot session needs none but a touch per interval),
//!    on one Redis, on a 3-primary Cluster (every node counted) and behind Sentinel (the
//!    primary counted).
//! 2. **Throughput and latency**: `wrk -t2 -c32 -d10s --latency` on `GET /livez` (no session,
//!    no store: the floor), `GET /health` (no session, one Redis `PING`),
//!    `GET /me` (`#[login_required]`) and `GET /admin` (`#[has_role("ADMIN")]`), alternated, in
//!    rounds (the order rotates each round), and `GET /me` on a **device-bound** session (DBSC:
//!    the demo runs with `DBSC=true`; a software key registered as a browser would, the bound
//!    credential cookie sent along), and `GET /me` on a second demo whose store is a 3-primary
//!    **Cluster** (the same cache). Reported: medians, the per-round ratios `/health`, `/me`
//!    and `/admin` ÷ `/livez`, bound `/me` ÷ `/me` and Cluster `/me` ÷ one-Redis `/me`,
//!    p50/p99 latency, non-2xx answers and socket errors.
//!
//! The server runs with `RUST_LOG=warn`: its per-request log lines (INFO) would otherwise be
//! part of what is measured. It needs `wrk` (`apt-get install wrk`); `benches/run.sh` installs
//! it. `DEMO_SERVER_BIN` may name a built `demo-server`; otherwise the bench builds it
//! (`cargo build --release -p session-examples --bin demo-server --features prometheus`: the
//! store behind `Metered`, as the figures before the demos' features were split had it).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_harness::{RedisCluster, RedisSentinelGroup, RedisServer};
use session_benches::{
    at_least, fmt_us, group, median, print_table, progress, quick, skip_unless_bench, Row, Spread,
};
use session_core::testing::dbsc::{sf_string, Device, Registration};

const BENCH: &str = "http";
/// The label of `GET /me` on a device-bound session.
const BOUND_ME: &str = "/me (device-bound)";
/// The label of `GET /me` with the demo on a 3-primary Cluster.
const CLUSTER_ME: &str = "/me (Cluster)";

fn main() {
    if skip_unless_bench(BENCH) {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("{BENCH}: `wrk` is not installed (apt-get install wrk); HTTP figures skipped");
        print_table(&[Row {
            bench: BENCH.into(),
            case: "skipped: wrk not installed".into(),
            ..Row::default()
        }]);
        return;
    }
    let cluster = RedisCluster::start(3, 0).expect("a Redis Cluster for the bench");
    let on_cluster = DemoServer::on_cluster(&cluster);
    let cluster_alice = on_cluster.login("alice", "alice-password");
    let mut rows = topology_round_trips(&on_cluster, &cluster, &cluster_alice);
    let redis = RedisServer::start_local().expect("redis-server for the bench");
    let server = DemoServer::start(&[("REDIS_URL", redis.url())]);
    let alice = server.login("alice", "alice-password");
    let admin = server.login("admin", "admin-password");
    let bound = server.login_bound("alice", "alice-password");

    let ports = [redis.port()];
    rows.push(round_trips(&ports, &server, &alice, "GET /me, one Redis"));
    rows.push(round_trips(
        &ports,
        &server,
        &bound,
        "GET /me, one Redis, device-bound session",
    ));
    rows.extend(load(
        &server,
        &on_cluster,
        Cookies {
            alice: &alice,
            admin: &admin,
            bound: &bound,
            cluster_alice: &cluster_alice,
        },
    ));
    print_table(&rows);
}

/// Redis commands per warm `GET /me` with the demo on a 3-primary Redis Cluster (`on_cluster`,
/// which stays up for the load rounds) and behind Sentinel (the session cache on, as on one
/// server): counted on every data node.
fn topology_round_trips(on_cluster: &DemoServer, cluster: &RedisCluster, alice: &str) -> Vec<Row> {
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port).collect();
    let mut rows = vec![round_trips(
        &ports,
        on_cluster,
        alice,
        "GET /me, 3-primary Cluster",
    )];
    let group = RedisSentinelGroup::start("bench").expect("a Sentinel group for the bench");
    let server = DemoServer::start(&[
        ("REDIS_SENTINELS", &group.sentinel_urls().join(",")),
        ("REDIS_SENTINEL_SERVICE", group.service()),
    ]);
    let alice = server.login("alice", "alice-password");
    // The primary only: a replica counts the replicated writes again.
    let ports = [group.primary_port()];
    rows.push(round_trips(&ports, &server, &alice, "GET /me, Sentinel"));
    rows
}

/// Redis commands per `GET /me`, from `INFO commandstats` of the data nodes on `ports` around
/// 1000 sequential requests.
fn round_trips(ports: &[u16], server: &DemoServer, cookie: &str, what: &str) -> Row {
    let n = if quick() { 100 } else { 1000 };
    let mut conn = TcpStream::connect(server.addr.as_str()).expect("connect to demo-server");
    // The first request opens the pool's connection; not counted. Then a second after a
    // pause: on a cluster the cache serves only once a heartbeat proved its slot map (within a
    // quarter of the staleness bound of the server's start); this counts the steady state.
    request(&mut conn, "GET", "/me", Some(cookie), "", true);
    std::thread::sleep(Duration::from_secs(1));
    request(&mut conn, "GET", "/me", Some(cookie), "", true);
    for port in ports {
        redis_cli(*port, &["CONFIG", "RESETSTAT"]);
    }
    for _ in 0..n {
        let (status, _) = request(&mut conn, "GET", "/me", Some(cookie), "", true);
        assert_eq!(status, 200, "GET /me during the round-trip count");
    }
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    for port in ports {
        let stats = redis_cli(*port, &["INFO", "commandstats"]);
        for (name, count) in stats.lines().filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls: u64 = rest.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        }) {
            if !matches!(name.as_str(), "config|resetstat" | "info") {
                *calls.entry(name).or_default() += count;
            }
        }
    }
    // commandstats counts a script's inner calls too, so this is every command Redis ran.
    let per_request = calls.values().sum::<u64>() as f64 / n as f64;
    let by_name: Vec<String> = calls
        .iter()
        .map(|(name, c)| format!("{} {:.3}", name.to_uppercase(), *c as f64 / n as f64))
        .collect();
    progress(format!("commandstats after {n} {what}: {calls:?}"));
    // The demo runs with its client-side cache on (its default): after the first request
    // (not counted) a hot session needs Redis only for a touch per touch interval and the
    // cache's heartbeat PINGs.
    let met = per_request <= 0.02;
    Row {
        bench: BENCH.into(),
        case: format!("Redis commands sent per authenticated {what} ({n} sequential)"),
        baseline: "1 (GET): actix-session, axum-login; stated, not measured here".into(),
        subject: format!("{per_request:.3} ({})", by_name.join(", ")),
        ratio: format!("{per_request:.3}×"),
        spread: "—".into(),
        rounds: "1".into(),
        target: format!("≤ 0.02 (cache on): {}", if met { "met" } else { "MISSED" }),
    }
}

/// The sessions the wrk rounds use.
struct Cookies<'a> {
    alice: &'a str,
    admin: &'a str,
    bound: &'a str,
    /// Alice's session on the demo on the Cluster.
    cluster_alice: &'a str,
}

/// The wrk rounds: every route on `server` (one Redis), and `GET /me` on `on_cluster`.
fn load(server: &DemoServer, on_cluster: &DemoServer, cookies: Cookies<'_>) -> Vec<Row> {
    let (rounds, secs) = if quick() { (1, 2) } else { (3, 10) };
    // (label, server, path, cookie)
    let endpoints: [(&str, &DemoServer, &str, Option<&str>); 6] = [
        ("/livez", server, "/livez", None),
        ("/health", server, "/health", None),
        ("/me", server, "/me", Some(cookies.alice)),
        (BOUND_ME, server, "/me", Some(cookies.bound)),
        ("/admin", server, "/admin", Some(cookies.admin)),
        (CLUSTER_ME, on_cluster, "/me", Some(cookies.cluster_alice)),
    ];
    let mut results: BTreeMap<&str, Vec<Wrk>> = BTreeMap::new();
    for round in 0..rounds {
        for i in 0..endpoints.len() {
            let (label, target, path, cookie) = endpoints[(i + round) % endpoints.len()];
            progress(format!(
                "round {}/{rounds}: wrk {label} for {secs} s",
                round + 1
            ));
            let w = wrk(&target.addr, path, cookie, secs);
            progress(format!(
                "  {:.0} req/s, p50 {:.0} µs, p99 {:.0} µs, non-2xx {}, socket errors {}",
                w.rps, w.p50_us, w.p99_us, w.non_2xx, w.socket_errors
            ));
            results.entry(label).or_default().push(w);
        }
    }
    // The floor: a route that touches no store (the same server, router and layers).
    let mut rows: Vec<Row> = ["/health", "/me", "/admin"]
        .into_iter()
        .map(|path| {
            ratio_row(
                &results,
                (path, "/livez"),
                format!(
                    "GET {path} vs GET /livez (no store), req/s at 32 connections ({secs} s each)"
                ),
                (path == "/me").then_some(0.9),
            )
        })
        .collect();
    // A device-bound session against an unbound one: the bound credential's check (one more
    // cookie read, one SHA-256) on every request, the refresh's write not at all.
    rows.push(ratio_row(
        &results,
        (BOUND_ME, "/me"),
        format!(
            "GET /me on a device-bound session (DBSC) vs an unbound one, req/s ({secs} s each)"
        ),
        Some(0.95),
    ));
    // The same request on a 3-primary Cluster: the cache serves both from memory, so the
    // topology should cost (next to) nothing per request.
    rows.push(ratio_row(
        &results,
        (CLUSTER_ME, "/me"),
        format!(
            "GET /me with the demo on a 3-primary Cluster vs on one Redis, req/s ({secs} s each)"
        ),
        Some(0.9),
    ));
    for path in ["/livez", "/health", "/me", BOUND_ME, "/admin", CLUSTER_ME] {
        let p50: Vec<f64> = results[path].iter().map(|w| w.p50_us).collect();
        let p99: Vec<f64> = results[path].iter().map(|w| w.p99_us).collect();
        let bad: u64 = results[path]
            .iter()
            .map(|w| w.non_2xx + w.socket_errors)
            .sum();
        rows.push(Row {
            bench: BENCH.into(),
            case: format!("GET {path} latency at 32 connections (p50 / p99, median of rounds)"),
            baseline: "—".into(),
            subject: format!("{} / {}", fmt_us(median(&p50)), fmt_us(median(&p99))),
            ratio: "—".into(),
            spread: "—".into(),
            rounds: rounds.to_string(),
            target: format!(
                "0 non-2xx and 0 socket errors: {}",
                if bad == 0 {
                    "met".to_owned()
                } else {
                    format!("MISSED ({bad})")
                }
            ),
        });
    }
    rows
}

/// The row of `subject`'s req/s against `baseline`'s, round by round; `min` is the target
/// ratio (`None`: for information).
fn ratio_row(
    results: &BTreeMap<&str, Vec<Wrk>>,
    (subject, baseline): (&str, &str),
    case: String,
    min: Option<f64>,
) -> Row {
    let rps = |label: &str| -> Vec<f64> { results[label].iter().map(|w| w.rps).collect() };
    let (subject, baseline) = (rps(subject), rps(baseline));
    let ratios: Vec<f64> = subject.iter().zip(&baseline).map(|(s, b)| s / b).collect();
    let spread = Spread::of(&ratios);
    let target = min.map_or_else(|| "info".to_owned(), |min| at_least(min, spread.median));
    Row::from_spread(
        BENCH,
        case,
        format!("{} req/s", group(median(&baseline) as u64)),
        format!("{} req/s", group(median(&subject) as u64)),
        spread,
        target,
    )
}

/// One wrk run's figures.
struct Wrk {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    non_2xx: u64,
    socket_errors: u64,
}

fn wrk(addr: &str, path: &str, cookie: Option<&str>, secs: u64) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c32", &format!("-d{secs}s"), "--latency"]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: session={c}")]);
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let find = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(str::trim))
    };
    let latency = |p: &str| -> f64 {
        find(p)
            .and_then(parse_duration_us)
            .unwrap_or_else(|| panic!("wrk printed no {p} latency:\n{text}"))
    };
    let socket_errors = find("Socket errors:").map_or(0, |s| {
        s.split(',')
            .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    });
    Wrk {
        rps: find("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("wrk printed no Requests/sec:\n{text}")),
        p50_us: latency("50%"),
        p99_us: latency("99%"),
        non_2xx: find("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        socket_errors,
    }
}

/// `1.23ms`, `456.78us`, `1.01s` → µs.
fn parse_duration_us(text: &str) -> Option<f64> {
    let (num, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| text.split_at(i))?;
    let value: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => value,
        "ms" => value * 1e3,
        "s" => value * 1e6,
        "m" => value * 60e6,
        _ => return None,
    })
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The demo server as a child process.
struct DemoServer {
    child: Child,
    addr: String,
}

impl DemoServer {
    /// The demo on the store `env` names (`REDIS_URL`, `REDIS_CLUSTER_NODES`, ...).
    fn start(env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(demo_binary())
            .env("DEMO_ADDR", &addr)
            // Offered at login; the bound credential outlasts the bench.
            .env("DBSC", "true")
            .env("DBSC_COOKIE_SECS", "3600")
            .envs(env.iter().copied())
            .env("COOKIE_SECURE", "false")
            .env("SESSION_MAX_PER_USER", "1000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start demo-server");
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = TcpStream::connect(server.addr.as_str()) {
                if request(&mut c, "GET", "/health", None, "", false).0 == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "demo-server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The demo on `cluster` (`REDIS_CLUSTER_NODES`).
    fn on_cluster(cluster: &RedisCluster) -> Self {
        let nodes: Vec<String> = cluster
            .urls()
            .iter()
            .map(|u| u.trim_start_matches("redis://").to_owned())
            .collect();
        Self::start(&[("REDIS_CLUSTER_NODES", &nodes.join(","))])
    }

    /// The session cookie's value after logging in.
    fn login(&self, user: &str, password: &str) -> String {
        let body = format!(r#"{{"username":"{user}","password":"{password}"}}"#);
        let mut c = TcpStream::connect(self.addr.as_str()).expect("connect");
        let (status, headers) = request(&mut c, "POST", "/login", None, &body, false);
        assert_eq!(status, 200, "login {user}");
        headers
            .iter()
            .find_map(|(k, v)| {
                (k.eq_ignore_ascii_case("set-cookie"))
                    .then(|| v.strip_prefix("session=")?.split(';').next())
                    .flatten()
            })
            .expect("a session cookie")
            .to_owned()
    }
}

impl DemoServer {
    /// A device-bound session (DBSC) of `user`: logs in, then registers a software key as a
    /// browser would; the `Cookie` value (after `session=`) with the bound credential.
    fn login_bound(&self, user: &str, password: &str) -> String {
        let body = format!(r#"{{"username":"{user}","password":"{password}"}}"#);
        let mut c = TcpStream::connect(self.addr.as_str()).expect("connect");
        let (status, headers) = request(&mut c, "POST", "/login", None, &body, false);
        assert_eq!(status, 200, "login {user}");
        let header = |headers: &[(String, String)], name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let cookie = |headers: &[(String, String)], name: &str| {
            headers.iter().find_map(|(k, v)| {
                k.eq_ignore_ascii_case("set-cookie")
                    .then(|| v.strip_prefix(name)?.split(';').next())
                    .flatten()
                    .map(str::to_owned)
            })
        };
        let session = cookie(&headers, "session=").expect("a session cookie");
        let offered = header(&headers, "secure-session-registration")
            .expect("DBSC=true: the login offers a registration");
        let registration = Registration::from_header(offered)
            .pop()
            .expect("one registration");
        let challenge = registration.challenge.expect("a challenge");
        let proof = sf_string(&Device::new().registration_proof(&challenge));
        let mut c = TcpStream::connect(self.addr.as_str()).expect("connect");
        let (status, headers) = request_with(
            &mut c,
            "POST",
            &registration.path,
            Some(&session),
            "",
            false,
            &[("Secure-Session-Response", &proof)],
        );
        assert_eq!(status, 200, "registration");
        let bound = cookie(&headers, "session-bound=").expect("the bound credential");
        format!("{session}; session-bound={bound}")
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("DEMO_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    progress("building demo-server (release)");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "session-examples",
            "--bin",
            "demo-server",
            // As users run it in production: store calls counted (`Metered`), `/metrics`.
            "--features",
            "prometheus",
        ])
        .current_dir(&root)
        .status()
        .expect("cargo build demo-server");
    assert!(status.success(), "building demo-server failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("release").join("demo-server")
}

/// One HTTP/1.1 request on `conn`; returns the status and headers (the body is read and
/// dropped). `keep_alive` false sends `Connection: close`.
fn request(
    conn: &mut TcpStream,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
    keep_alive: bool,
) -> (u16, Vec<(String, String)>) {
    request_with(conn, method, path, cookie, body, keep_alive, &[])
}

/// [`request`] with `extra` headers.
fn request_with(
    conn: &mut TcpStream,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
    keep_alive: bool,
    extra: &[(&str, &str)],
) -> (u16, Vec<(String, String)>) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: session={c}\r\n"));
    }
    for (name, value) in extra {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    if !keep_alive {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    conn.write_all(req.as_bytes()).expect("send request");
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).expect("body");
    (status, headers)
}
