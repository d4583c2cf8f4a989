//! End-to-end harness: a real `demo-server` process on a free loopback port (against a real
//! `redis-server` of the test's own, or the in-memory store), its output captured to a file the
//! test can search, and a small HTTP client that manages the session cookie by hand.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use redis_harness::RedisServer;
pub use reqwest::header::HeaderMap;
pub use reqwest::Method;
pub use serde_json::{json, Value};

/// The demo binaries, built by cargo for this test target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    /// `demo-server` (axum).
    Axum,
    /// `demo-actix` (actix-web).
    Actix,
    /// `demo-web` (axum, HTML pages): only for the tests that name it, never [`Bin::under_test`].
    Web,
}

impl Bin {
    /// The binary the tests run against: `DEMO_BIN=actix` picks `demo-actix`, anything else
    /// (or nothing) `demo-server`. CI runs the e2e suite once per value.
    pub fn under_test() -> Self {
        match std::env::var("DEMO_BIN").as_deref() {
            Ok("actix") | Ok("demo-actix") => Bin::Actix,
            _ => Bin::Axum,
        }
    }

    /// The JSON binary on the other framework (for tests that run one server of each).
    pub fn other(self) -> Self {
        match self {
            Bin::Axum | Bin::Web => Bin::Actix,
            Bin::Actix => Bin::Axum,
        }
    }

    /// The path cargo built it at.
    pub fn path(self) -> &'static str {
        match self {
            Bin::Axum => env!("CARGO_BIN_EXE_demo-server"),
            Bin::Actix => env!("CARGO_BIN_EXE_demo-actix"),
            Bin::Web => env!("CARGO_BIN_EXE_demo-web"),
        }
    }
}

/// Settings the harness always controls, so the developer's environment cannot leak in.
const CONTROLLED_ENV: &[&str] = &[
    "DEMO_ADDR",
    "REDIS_URL",
    "REDIS_CLUSTER_NODES",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_SERVICE",
    "SESSION_IDLE_SECS",
    "SESSION_ABSOLUTE_SECS",
    "SESSION_MAX_PER_USER",
    "SESSION_REMEMBER_IDLE_SECS",
    "SESSION_REMEMBER_ABSOLUTE_SECS",
    "HISTORY_MAX",
    "COOKIE_SECURE",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_SECS",
    "LOGIN_QUEUE_MAX",
    "ALLOWED_ORIGINS",
    "HTTP_HEADER_TIMEOUT_SECS",
    "HTTP_BODY_TIMEOUT_SECS",
    "STEP_UP_SECS",
    "RUST_LOG",
];

/// How long a change made on one server may take to reach another server's session cache
/// (see [`Client::get_until`]).
pub const CROSS_SERVER_WINDOW: Duration = Duration::from_millis(500);

/// A `redis-server` of this test's own on a free port.
/// Length of a session token's text form.
pub const TOKEN_LEN: usize = session_core::token::TOKEN_LEN;

/// A well-formed token nobody issued, with a deadline an hour away: the server must ask the
/// store about it (a token past its deadline it refuses without asking).
pub fn unknown_token() -> String {
    session_core::Token::generate(std::time::SystemTime::now() + Duration::from_secs(3600))
        .expect("OS randomness")
        .as_cookie_value()
}

pub fn redis() -> RedisServer {
    RedisServer::start_local().unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
}

/// How to start a `demo-server`.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    redis_url: Option<String>,
    envs: Vec<(String, String)>,
    cookie_secure_default: bool,
    bin: Bin,
}

impl ServerBuilder {
    /// A server on the Redis at `url`, with `COOKIE_SECURE=false` (cookie `session`).
    pub fn redis(url: &str) -> Self {
        Self {
            redis_url: Some(url.to_owned()),
            envs: Vec::new(),
            cookie_secure_default: false,
            bin: Bin::under_test(),
        }
    }

    /// A server without `REDIS_URL` (the in-memory store), `COOKIE_SECURE=false`.
    pub fn memory() -> Self {
        Self {
            redis_url: None,
            envs: Vec::new(),
            cookie_secure_default: false,
            bin: Bin::under_test(),
        }
    }

    /// A server on `cluster` (`REDIS_CLUSTER_NODES`), `COOKIE_SECURE=false`.
    pub fn cluster(cluster: &redis_harness::RedisCluster) -> Self {
        let nodes: Vec<String> = cluster
            .urls()
            .iter()
            .map(|u| u.trim_start_matches("redis://").to_owned())
            .collect();
        Self::memory().env("REDIS_CLUSTER_NODES", nodes.join(","))
    }

    /// A server behind `group`'s sentinels (`REDIS_SENTINELS`, `REDIS_SENTINEL_SERVICE`),
    /// `COOKIE_SECURE=false`.
    pub fn sentinel(group: &redis_harness::RedisSentinelGroup) -> Self {
        Self::memory()
            .env("REDIS_SENTINELS", group.sentinel_urls().join(","))
            .env("REDIS_SENTINEL_SERVICE", group.service())
    }

    /// Runs `bin` instead of the binary under test ([`Bin::under_test`]).
    pub fn bin(mut self, bin: Bin) -> Self {
        self.bin = bin;
        self
    }

    /// Sets an environment variable of the server.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.envs.push((key.to_owned(), value.to_string()));
        self
    }

    /// Leaves `COOKIE_SECURE` unset (the default, `true`: cookie `__Host-session`, `Secure`).
    pub fn cookie_secure_default(mut self) -> Self {
        self.cookie_secure_default = true;
        self
    }

    /// Starts the server and waits until `GET /health` answers 200 (20 s at most).
    pub async fn start(self) -> Server {
        self.start_waiting(true).await
    }

    /// Starts the server and waits until `GET /health` gives any HTTP answer (for a server
    /// whose store is down at start).
    pub async fn start_unhealthy(self) -> Server {
        self.start_waiting(false).await
    }

    async fn start_waiting(self, need_200: bool) -> Server {
        let mut last_failure = String::new();
        // A free port can be taken by someone else between our probe and the server's bind:
        // try a few ports before giving up.
        for _ in 0..3 {
            let port = free_port();
            let mut server = self.spawn(port);
            match server.wait_healthy(Duration::from_secs(20), need_200).await {
                Ok(()) => return server,
                Err(failure) => {
                    let exited = !server.is_running();
                    last_failure = failure;
                    server.kill();
                    if !(exited && last_failure.to_lowercase().contains("in use")) {
                        break;
                    }
                }
            }
        }
        panic!("{last_failure}");
    }

    fn spawn(&self, port: u16) -> Server {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let log_path = std::env::temp_dir().join(format!(
            "demo-server-e2e-{}-{n}-{nanos}-{port}.log",
            std::process::id()
        ));
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("clone the log file handle");

        let bin = self.bin.path();
        let mut cmd = Command::new(bin);
        for key in CONTROLLED_ENV {
            cmd.env_remove(key);
        }
        cmd.env("DEMO_ADDR", format!("127.0.0.1:{port}"))
            .env("NO_COLOR", "1");
        if let Some(url) = &self.redis_url {
            cmd.env("REDIS_URL", url);
        }
        if !self.cookie_secure_default {
            cmd.env("COOKIE_SECURE", "false");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let cookie_name = if self.cookie_secure_default {
            "__Host-session"
        } else {
            "session"
        };
        Server {
            child: Some(child),
            port,
            log_path,
            cookie_name: cookie_name.to_owned(),
            http: http_client(),
        }
    }
}

fn free_port() -> u16 {
    redis_harness::free_port().unwrap_or_else(|e| panic!("{e}"))
}

fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("build the HTTP client")
}

fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
}

/// A running `demo-server`; SIGKILLed when dropped.
pub struct Server {
    child: Option<Child>,
    port: u16,
    log_path: PathBuf,
    cookie_name: String,
    http: reqwest::Client,
}

impl Server {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`: what a browser would send as this server's `Origin`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// The session cookie's name this server is expected to use.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// A client for this server (shares this server's connection pool).
    pub fn client(&self) -> Client {
        Client {
            http: self.http.clone(),
            base: self.origin(),
            cookie_name: self.cookie_name.clone(),
        }
    }

    /// A client with a connection pool of its own.
    pub fn fresh_client(&self) -> Client {
        Client {
            http: http_client(),
            base: self.origin(),
            cookie_name: self.cookie_name.clone(),
        }
    }

    /// A client with a connection pool of its own whose connections come from `local`, a
    /// loopback address (any of 127.0.0.0/8): to the server, another client.
    pub fn client_from(&self, local: std::net::IpAddr) -> Client {
        Client {
            http: http_client_builder()
                .local_address(local)
                .build()
                .expect("build the HTTP client"),
            base: self.origin(),
            cookie_name: self.cookie_name.clone(),
        }
    }

    /// Everything the server wrote to stdout and stderr so far, ANSI colours removed.
    pub fn logs(&self) -> String {
        let raw = std::fs::read(&self.log_path).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(&raw))
    }

    /// The server's output as written, bytes and all (nothing removed).
    pub fn raw_logs(&self) -> Vec<u8> {
        std::fs::read(&self.log_path).unwrap_or_default()
    }

    /// The log's lines after the first `skip` bytes (use `logs().len()` as a mark).
    pub fn logs_since(&self, mark: usize) -> String {
        let logs = self.logs();
        logs.get(mark..).unwrap_or_default().to_owned()
    }

    /// Waits (up to `timeout`) until a line written after `mark` satisfies `pred`; returns it.
    pub async fn wait_for_line(
        &self,
        mark: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs_since(mark).lines().find(|l| pred(l)) {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Its exit status, if it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL (a crash), and reaps the process.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `sig` (e.g. `"-TERM"`, `"-INT"`) with the `kill` command.
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .arg(sig)
                .arg(pid.to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill {sig} {pid} failed");
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit; `None` if it is still running.
    pub async fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal("-TERM");
        self.wait_exit(timeout).await
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `GET /health` until it answers 200 (or anything, unless `need_200`).
    async fn wait_healthy(&mut self, timeout: Duration, need_200: bool) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(format!(
                    "demo-server on port {} exited with {status} before GET /health answered.\n\
                     --- its output ---\n{}",
                    self.port,
                    self.logs()
                ));
            }
            match self
                .http
                .get(self.url("/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(res) if res.status().as_u16() == 200 || !need_200 => return Ok(()),
                Ok(res) => {
                    let status = res.status();
                    last = format!("{status}: {}", res.text().await.unwrap_or_default());
                }
                Err(e) => last = format!("{e}"),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "demo-server on port {} did not answer GET /health with 200 within {timeout:?} \
                     (last: {last}).\n--- its output ---\n{}",
                    self.port,
                    self.logs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- demo-server :{} output (last 60 lines; full log kept at {}) ---\n{}",
                self.port,
                self.log_path.display(),
                self.log_tail(60)
            );
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A session cookie as the client keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
}

impl Cookie {
    /// `name=value`, for a `Cookie` request header.
    pub fn header(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

/// A parsed `Set-Cookie`.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub raw: String,
    pub name: String,
    pub value: String,
    /// Attributes as written, e.g. `HttpOnly`, `SameSite=Lax`, `Path=/`.
    pub attrs: Vec<String>,
}

impl SetCookie {
    pub fn parse(raw: &str) -> Self {
        let mut parts = raw.split(';').map(str::trim);
        let pair = parts.next().unwrap_or_default();
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        Self {
            raw: raw.to_owned(),
            name: name.to_owned(),
            value: value.trim_matches('"').to_owned(),
            attrs: parts.filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        }
    }

    /// The value of attribute `name` (case-insensitive), `Some("")` for a flag.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find_map(|a| {
            let (k, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    pub fn has(&self, flag: &str) -> bool {
        self.attr(flag).is_some()
    }

    /// True if it tells the browser to drop the cookie (`Max-Age=0` or `Expires` in the past,
    /// or an empty value with either).
    pub fn expires_cookie(&self) -> bool {
        let max_age_zero = self
            .attr("Max-Age")
            .is_some_and(|v| v.parse::<i64>().is_ok_and(|n| n <= 0));
        let expires_past = self.attr("Expires").is_some_and(|v| {
            v.contains("1970") || v.contains("1969") // the epoch, as servers write it
        });
        max_age_zero || expires_past
    }
}

/// An HTTP answer: status, headers, the body as JSON (`Null` when empty or not JSON) and text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Every `Set-Cookie` of the answer.
    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| SetCookie::parse(&String::from_utf8_lossy(v.as_bytes())))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }

    /// The `error` code of an error body (empty if none).
    pub fn code(&self) -> &str {
        self.body.get("error").and_then(Value::as_str).unwrap_or("")
    }

    /// Asserts the status and that the body is the error contract
    /// `{"error": code, "message": text}` served as `application/json`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got {} {:?}",
            self.status, self.text
        );
        self.assert_error_shape();
        assert_eq!(self.code(), code, "wrong error code in {:?}", self.text);
    }

    /// Asserts the body is `{"error": string, "message": string}` as `application/json`.
    #[track_caller]
    pub fn assert_error_shape(&self) {
        assert!(
            self.content_type().starts_with("application/json"),
            "status {}: Content-Type is {:?}, not application/json (body {:?})",
            self.status,
            self.content_type(),
            self.text
        );
        let ok = self.body.get("error").is_some_and(Value::is_string)
            && self.body.get("message").is_some_and(Value::is_string);
        assert!(
            ok,
            "status {}: body is not {{\"error\",\"message\"}}: {:?}",
            self.status, self.text
        );
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status, status,
            "expected {status}, got {} {:?}",
            self.status, self.text
        );
    }
}

/// A request body.
pub enum Body {
    Json(Value),
    /// Raw bytes with an optional `Content-Type`.
    Raw(Vec<u8>, Option<&'static str>),
}

/// An HTTP client for one server; the cookie is passed explicitly with each request.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    cookie_name: String,
}

impl Client {
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// A cookie of this server's name with an arbitrary value.
    pub fn cookie(&self, value: &str) -> Cookie {
        Cookie {
            name: self.cookie_name.clone(),
            value: value.to_owned(),
        }
    }

    /// Sends a request; panics on a transport error (no HTTP answer is always a bug here).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&Cookie>,
        body: Option<Body>,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.try_send(method.clone(), path, cookie, body, headers)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no HTTP answer: {e}"))
    }

    /// Like [`Client::send`], returning the transport error instead of panicking.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&Cookie>,
        body: Option<Body>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie.header());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match body {
            Some(Body::Json(v)) => {
                req = req
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&v).expect("serialize"));
            }
            Some(Body::Raw(bytes, ct)) => {
                if let Some(ct) = ct {
                    req = req.header("content-type", ct);
                }
                req = req.body(bytes);
            }
            None => {}
        }
        let res = req.send().await.map_err(|e| format!("{e:?}"))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.map_err(|e| format!("{e:?}"))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            body,
            text,
        })
    }

    pub async fn get(&self, path: &str, cookie: Option<&Cookie>) -> Resp {
        self.send(Method::GET, path, cookie, None, &[]).await
    }

    /// `GET path` until it answers `status`, for at most `CROSS_SERVER_WINDOW`: after a change
    /// made on another server, this server's session cache learns of it from Redis's
    /// invalidation (within about a millisecond; the documented bound is 100 ms, and the
    /// harness allows more on a loaded machine). Returns the last answer, which the caller
    /// asserts on.
    pub async fn get_until(&self, path: &str, cookie: Option<&Cookie>, status: u16) -> Resp {
        let deadline = Instant::now() + CROSS_SERVER_WINDOW;
        loop {
            let res = self.get(path, cookie).await;
            if res.status == status || Instant::now() >= deadline {
                return res;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn post(&self, path: &str, cookie: Option<&Cookie>, json: Value) -> Resp {
        self.send(Method::POST, path, cookie, Some(Body::Json(json)), &[])
            .await
    }

    pub async fn post_empty(&self, path: &str, cookie: Option<&Cookie>) -> Resp {
        self.send(Method::POST, path, cookie, None, &[]).await
    }

    pub async fn put(&self, path: &str, cookie: Option<&Cookie>, json: Value) -> Resp {
        self.send(Method::PUT, path, cookie, Some(Body::Json(json)), &[])
            .await
    }

    pub async fn delete(&self, path: &str, cookie: Option<&Cookie>) -> Resp {
        self.send(Method::DELETE, path, cookie, None, &[]).await
    }

    /// `POST /register`.
    pub async fn register(&self, username: &str, password: &str) -> Resp {
        self.post(
            "/register",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// `POST /login` without a cookie: the new session cookie, or the refusal.
    pub async fn login(&self, username: &str, password: &str) -> Result<Cookie, Resp> {
        self.login_with(username, password, None).await
    }

    /// `POST /login`, sending `cookie` along.
    pub async fn login_with(
        &self,
        username: &str,
        password: &str,
        cookie: Option<&Cookie>,
    ) -> Result<Cookie, Resp> {
        let res = self
            .post(
                "/login",
                cookie,
                json!({"username": username, "password": password}),
            )
            .await;
        if res.status != 200 {
            return Err(res);
        }
        let set = res
            .set_cookies()
            .into_iter()
            .find(|c| c.name == self.cookie_name && !c.expires_cookie())
            .unwrap_or_else(|| {
                panic!(
                    "login of {username} answered 200 without a Set-Cookie named {}: {:?}",
                    self.cookie_name, res.headers
                )
            });
        Ok(Cookie {
            name: set.name,
            value: set.value,
        })
    }

    /// `login`, panicking on failure.
    pub async fn login_ok(&self, username: &str, password: &str) -> Cookie {
        match self.login(username, password).await {
            Ok(c) => c,
            Err(res) => panic!("login of {username} failed: {} {:?}", res.status, res.text),
        }
    }

    /// The session cookie an answer sets (not an expiring one), if any.
    pub fn new_cookie(&self, res: &Resp) -> Option<Cookie> {
        res.set_cookies()
            .into_iter()
            .find(|c| c.name == self.cookie_name && !c.expires_cookie())
            .map(|set| Cookie {
                name: set.name,
                value: set.value,
            })
    }

    /// `DELETE /sessions/{id}` of the one other session `cookie`'s `GET /sessions` lists
    /// (panics unless it answers 204).
    pub async fn end_other_session(&self, cookie: &Cookie) {
        let id = other_session_id(&self.get("/sessions", Some(cookie)).await);
        self.delete(&format!("/sessions/{id}"), Some(cookie))
            .await
            .assert_status(204);
    }

    /// `GET /me` status with this cookie.
    pub async fn me_status(&self, cookie: &Cookie) -> u16 {
        self.get("/me", Some(cookie)).await.status
    }
}

/// The seeded accounts.
/// The id of the one session a `GET /sessions` answer lists as not the current one (panics
/// unless it answered 200 with one).
pub fn other_session_id(list: &Resp) -> String {
    list.assert_status(200);
    list.body
        .as_array()
        .and_then(|l| l.iter().find(|s| s["current"] == false))
        .and_then(|s| s["id"].as_str())
        .expect("another session listed")
        .to_owned()
}

pub const ALICE: (&str, &str) = ("alice", "alice-password");
pub const ADMIN: (&str, &str) = ("admin", "admin-password");

/// An answer to a hand-written request.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `request` (a complete HTTP/1.1 request; add `Connection: close`) over a plain TCP
/// connection and reads the answer to the end; for bytes `reqwest` refuses to put in a header.
pub async fn raw_request(port: u16, request: &[u8]) -> Result<RawResp, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        stream
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "no complete answer within 10 s".to_owned())??;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP head in {:?}", String::from_utf8_lossy(&buf)))?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut body = buf[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(RawResp { status, head, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Every key in the Redis at `url` (raw bytes: session keys hold binary hashes).
pub async fn redis_keys(url: &str) -> BTreeSet<Vec<u8>> {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis");
    redis::cmd("KEYS")
        .arg("*")
        .query_async::<Vec<Vec<u8>>>(&mut con)
        .await
        .expect("KEYS *")
        .into_iter()
        .collect()
}

/// Printable form of a Redis key for messages.
pub fn show_key(key: &[u8]) -> String {
    key.iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Starts a Redis and one server on it.
pub async fn redis_and_server() -> (RedisServer, Server) {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    (redis, server)
}

/// Asserts no token in `tokens` appears anywhere in the server's output.
#[track_caller]
pub fn assert_no_tokens_in_logs(server: &Server, tokens: &[String]) {
    let logs = server.logs();
    for token in tokens {
        assert!(
            !logs.contains(token.as_str()),
            "a session token appears in the server's output:\n{}",
            logs.lines()
                .filter(|l| l.contains(token.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Asserts the status is not a 5xx.
#[track_caller]
pub fn assert_not_5xx(res: &Resp, what: &str) {
    assert!(
        res.status < 500,
        "{what}: server error {} {:?}",
        res.status,
        res.text
    );
}
