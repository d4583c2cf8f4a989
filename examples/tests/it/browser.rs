//! The web example (`demo-web`) in a real browser: headless Chromium driven through WebDriver
//! (a `chromedriver` of the test's own), against a `redis-server` of the test's own.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run` installs them); without
//! them the test fails and says how to install them. `CHROMIUM` and `CHROMEDRIVER` name other
//! binaries.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use redis_harness::{free_port, RedisServer};
use serde_json::json;

pub(crate) const WEB_BIN: &str = env!("CARGO_BIN_EXE_demo-web");

/// The demo's settings, cleared so the developer's environment cannot leak in.
pub(crate) const CONTROLLED_ENV: &[&str] = &[
    "DEMO_ADDR",
    "REDIS_URL",
    "REDIS_CLUSTER_NODES",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_SERVICE",
    "COOKIE_SECURE",
    "ALLOWED_ORIGINS",
    "SESSION_CACHE",
    "DBSC",
    "DBSC_COOKIE_SECS",
    "RUST_LOG",
];

/// A child process, killed (SIGKILL) and reaped when dropped; its output goes to `log`. (The
/// browsers chromedriver starts are closed through WebDriver before it is dropped.)
pub(crate) struct Process {
    child: Child,
    pub(crate) log: PathBuf,
}

impl Process {
    pub(crate) fn spawn(mut cmd: Command, name: &str) -> Self {
        let log = std::env::temp_dir().join(format!(
            "browser-test-{name}-{}-{}.log",
            std::process::id(),
            free_port().unwrap_or(0)
        ));
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone the log file handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { child, log }
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` from the environment variable `var`, else the first of `candidates` on the `PATH`.
fn program(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| candidates.iter().map(move |c| dir.join(c)))
        .find(|p| p.is_file())
}

pub(crate) fn browser_programs() -> (PathBuf, PathBuf) {
    let chromium = program(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = program("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the browser test needs Chromium and its WebDriver (found chromium: {}, chromedriver: \
             {}). Install them with `apt-get install -y chromium chromium-driver` (Debian; `.ci/run` \
             does this), or set CHROMIUM and CHROMEDRIVER to their paths.",
            c.map_or("no".to_owned(), |p| p.display().to_string()),
            d.map_or("no".to_owned(), |p| p.display().to_string()),
        ),
    }
}

/// Waits until `url` answers 200, or panics with `process`'s log.
pub(crate) async fn wait_ok(url: &str, process: &mut Process, what: &str) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("build the HTTP client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = http.get(url).send().await {
            if res.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("{what} exited ({status}):\n{}", process.log_tail());
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer 200 at {url} within 30 s:\n{}",
            process.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `demo-web` on the Redis at `redis_url`, with its default (Secure) cookie: Chromium sends
/// `Secure` cookies to `http://127.0.0.1`, which it counts as a secure context.
async fn start_web(redis_url: &str) -> (Process, String) {
    let port = free_port().expect("a free port");
    let mut cmd = Command::new(WEB_BIN);
    for key in CONTROLLED_ENV {
        cmd.env_remove(key);
    }
    cmd.env("DEMO_ADDR", format!("127.0.0.1:{port}"))
        .env("REDIS_URL", redis_url)
        .env("NO_COLOR", "1");
    let mut web = Process::spawn(cmd, "demo-web");
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&format!("{base}/health"), &mut web, "demo-web").await;
    (web, base)
}

pub(crate) async fn start_driver(chromedriver: &Path) -> (Process, String) {
    let port = free_port().expect("a free port");
    let mut cmd = Command::new(chromedriver);
    cmd.arg(format!("--port={port}"));
    let mut driver = Process::spawn(cmd, "chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    wait_ok(&format!("{url}/status"), &mut driver, "chromedriver").await;
    (driver, url)
}

/// A new browser (its own profile: its own cookies) through the driver at `driver_url`.
async fn browser(driver_url: &str, chromium: &Path) -> Client {
    browser_with(driver_url, chromium, &[]).await
}

/// [`browser`], with `extra` command-line arguments for Chromium.
pub(crate) async fn browser_with(driver_url: &str, chromium: &Path, extra: &[String]) -> Client {
    let mut args: Vec<String> = [
        "--headless=new",
        // The test may run as root (CI does), where Chromium's sandbox cannot start.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1100,760",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend_from_slice(extra);
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": args,
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!("a JSON object literal")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(driver_url)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session through chromedriver: {e}"))
}

/// The path and query of the browser's current URL.
pub(crate) async fn here(c: &Client) -> String {
    let url = c.current_url().await.expect("current URL");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

pub(crate) async fn text_of(c: &Client, css: &str) -> String {
    let at = here(c).await;
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on {at}: {e}"))
        .text()
        .await
        .expect("element text")
}

pub(crate) async fn has(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css))
        .await
        .expect("find elements")
        .is_empty()
}

/// Fills in the login form on the current page and submits it; waits for the next page.
pub(crate) async fn submit_login(c: &Client, username: &str, password: &str) {
    fill_login(c, username, password).await;
    c.find(Locator::Id("login"))
        .await
        .expect("the login button")
        .click()
        .await
        .expect("click Log in");
    wait_until_left(c, "/login").await;
}

/// Fills in the login form's username and password on the current page.
async fn fill_login(c: &Client, username: &str, password: &str) {
    c.find(Locator::Id("username"))
        .await
        .expect("the login form's username field")
        .send_keys(username)
        .await
        .expect("type the username");
    c.find(Locator::Id("password"))
        .await
        .expect("the login form's password field")
        .send_keys(password)
        .await
        .expect("type the password");
}

/// Waits until the browser's path is not `path` (a form post and its redirect take a moment).
async fn wait_until_left(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.current_url().await.expect("current URL").path() == path {
        assert!(Instant::now() < deadline, "still on {path} after 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the element at `css` and waits until the next page has replaced this one.
async fn click_and_wait(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.expect("the page");
    let at = here(c).await;
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on {at}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    // The old document's element goes stale once the new page has loaded.
    while old.tag_name().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "clicking {css} loaded no new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sessions_and_logout_in_a_real_browser() {
    let (chromium, chromedriver) = browser_programs();
    let redis = RedisServer::start_local().unwrap_or_else(|e| panic!("redis-server: {e}"));
    let (web, base) = start_web(redis.url()).await;
    let (_driver, driver_url) = start_driver(&chromedriver).await;
    // Two browsers, each with its own profile (its own cookies).
    let a = browser(&driver_url, &chromium).await;
    let b = browser(&driver_url, &chromium).await;
    // The scenario runs as a task so that the browsers are closed even when it fails.
    let outcome = tokio::spawn(scenario(a.clone(), b.clone(), base)).await;
    let _ = a.close().await;
    let _ = b.close().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            eprintln!("demo-web's log:\n{}", web.log_tail());
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("the scenario did not finish: {e}");
    }
}

/// Browser `a` and browser `b` against `demo-web` at `base`.
async fn scenario(a: Client, b: Client, base: String) {
    let url = |path: &str| format!("{base}{path}");

    let session_cookie = |c: &Client| {
        let c = c.clone();
        async move {
            c.get_all_cookies()
                .await
                .expect("the browser's cookies")
                .into_iter()
                .find(|c| c.name() == "__Host-session")
                .map(|c| c.value().to_owned())
        }
    };

    // Anonymous: reading the shop creates no session.
    a.goto(&url("/")).await.expect("open /");
    assert!(has(&a, "#cart-empty").await);
    assert_eq!(session_cookie(&a).await, None, "a read created a session");

    // Before login, the cart fills an anonymous session (created at the first addition).
    click_and_wait(&a, "#add-apple").await;
    assert_eq!(here(&a).await, "/");
    assert!(text_of(&a, ".flash").await.contains("Added one apple"));
    click_and_wait(&a, "#add-pear").await;
    let anonymous = session_cookie(&a)
        .await
        .expect("an anonymous session cookie");
    let cart: Vec<String> = {
        let items = a
            .find_all(Locator::Css(".cart-item"))
            .await
            .expect("cart items");
        let mut names = Vec::new();
        for item in items {
            names.push(item.text().await.expect("item text"));
        }
        names
    };
    assert_eq!(cart, ["apple", "pear"]);

    // Anonymous is not logged in: a protected page sends the browser to the login form,
    // which remembers it.
    a.goto(&url("/account")).await.expect("open /account");
    assert_eq!(here(&a).await, "/login?next=/account");
    assert!(!has(&a, "#account-user").await);

    // Log in through the form: back to /account, with the welcome message from the session.
    submit_login(&a, "alice", "alice-password").await;
    assert_eq!(here(&a).await, "/account");
    assert_eq!(text_of(&a, "#account-user").await, "alice");
    assert!(text_of(&a, ".flash").await.contains("Welcome, alice"));
    // A new token at login, and the cart came along.
    assert_ne!(session_cookie(&a).await.as_ref(), Some(&anonymous));
    a.goto(&url("/")).await.expect("open /");
    assert_eq!(
        a.find_all(Locator::Css(".cart-item"))
            .await
            .expect("cart items")
            .len(),
        2,
        "the cart was not carried over by the login"
    );
    a.goto(&url("/account")).await.expect("open /account");

    // The browser holds the session cookie, HttpOnly and Secure, and scripts cannot read it.
    let cookies = a.get_all_cookies().await.expect("the browser's cookies");
    let session = cookies
        .iter()
        .find(|c| c.name() == "__Host-session")
        .unwrap_or_else(|| panic!("no __Host-session cookie in {cookies:?}"));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    let script_view = a
        .execute("return document.cookie;", vec![])
        .await
        .expect("run a script");
    let script_view = script_view.as_str().unwrap_or_default();
    assert!(
        !script_view.contains("__Host-session") && !script_view.contains(session.value()),
        "document.cookie shows the session cookie: {script_view:?}"
    );

    // Reload: still logged in; the flash message was shown once.
    a.refresh().await.expect("reload");
    assert_eq!(here(&a).await, "/account");
    assert_eq!(text_of(&a, "#account-user").await, "alice");
    assert!(!has(&a, ".flash").await, "the welcome message showed twice");

    // The admin page is forbidden for alice (USER), with an HTML page, not the admin area.
    a.goto(&url("/admin")).await.expect("open /admin");
    assert_eq!(here(&a).await, "/admin");
    assert_eq!(
        a.title().await.expect("title"),
        "Forbidden · session-core demo"
    );
    assert!(!has(&a, "#admin-area").await);

    // A second browser logs in as alice too.
    b.goto(&url("/login")).await.expect("open /login in B");
    submit_login(&b, "alice", "alice-password").await;
    assert_eq!(here(&b).await, "/account");
    assert_eq!(text_of(&b, "#account-user").await, "alice");

    // The first lists both sessions, this one marked; screenshot the page.
    a.goto(&url("/sessions")).await.expect("open /sessions");
    assert_eq!(
        a.find_all(Locator::Css("#sessions tr.session"))
            .await
            .expect("session rows")
            .len(),
        2
    );
    assert_eq!(
        a.find_all(Locator::Css("#sessions tr.session.current"))
            .await
            .expect("current row")
            .len(),
        1
    );
    let png = a.screenshot().await.expect("screenshot");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let shot = dir.join("sessions.png");
    std::fs::write(&shot, &png).unwrap_or_else(|e| panic!("write {}: {e}", shot.display()));
    println!("screenshot of the sessions page: {}", shot.display());

    // End the second browser's session from the first.
    click_and_wait(&a, "#sessions tr.session:not(.current) button.end-session").await;
    assert_eq!(here(&a).await, "/sessions");
    assert!(text_of(&a, ".flash").await.contains("session was ended"));
    assert_eq!(
        a.find_all(Locator::Css("#sessions tr.session"))
            .await
            .expect("session rows")
            .len(),
        1
    );
    // ... and the second is logged out at its next request, and told why.
    b.refresh().await.expect("reload in B");
    assert_eq!(here(&b).await, "/login?next=/account&ended=revoked");
    assert!(!has(&b, "#account-user").await);
    assert!(text_of(&b, ".flash")
        .await
        .contains("You were signed out: your session was ended"));

    // Log out in the first; Back must not show the sessions page from the cache.
    click_and_wait(&a, "header form button").await;
    assert_eq!(here(&a).await, "/login?logged_out=1");
    assert!(text_of(&a, ".flash").await.contains("logged out"));
    a.back().await.expect("Back");
    let source = a.source().await.expect("page source");
    assert!(
        !source.contains("id=\"sessions\"") && !source.contains("Signed in as"),
        "Back after logout showed protected content at {}",
        here(&a).await
    );
    assert_eq!(here(&a).await, "/login?next=/sessions");

    // An admin gets the admin page (so the 403 above was about the role).
    submit_login(&a, "admin", "admin-password").await;
    assert_eq!(here(&a).await, "/sessions");
    a.goto(&url("/admin")).await.expect("open /admin");
    assert!(text_of(&a, "#admin-area").await.contains("admin"));
}

/// The browsers a scenario opens, closed through WebDriver when it ends (also when it fails).
#[derive(Clone)]
struct Browsers {
    driver_url: String,
    chromium: PathBuf,
    open: Arc<Mutex<Vec<Client>>>,
}

impl Browsers {
    /// A fresh browser: its own profile, no cookies (a browser started anew).
    async fn start(&self) -> Client {
        let c = browser(&self.driver_url, &self.chromium).await;
        self.open.lock().expect("the browser list").push(c.clone());
        c
    }

    async fn close_all(&self) {
        let open = std::mem::take(&mut *self.open.lock().expect("the browser list"));
        for c in open {
            // One the scenario closed itself answers an error.
            let _ = c.close().await;
        }
    }
}

/// Remember me, the devices page, the login history and the new-device notice: a login from
/// another device (an HTTP client that says it is Firefox) seeds alice's history; Chromium then
/// tries a wrong password and signs in with "Keep me signed in" ticked, a new device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remember_me_devices_and_history_in_a_real_browser() {
    let (chromium, chromedriver) = browser_programs();
    let redis = RedisServer::start_local().unwrap_or_else(|e| panic!("redis-server: {e}"));
    let (web, base) = start_web(redis.url()).await;
    let (_driver, driver_url) = start_driver(&chromedriver).await;
    let browsers = Browsers {
        driver_url,
        chromium,
        open: Arc::default(),
    };
    let outcome = tokio::spawn(devices_scenario(browsers.clone(), base)).await;
    browsers.close_all().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            eprintln!("demo-web's log:\n{}", web.log_tail());
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("the scenario did not finish: {e}");
    }
}

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// An HTTP client (no redirects followed) that says it is `user_agent`.
pub(crate) fn http_client(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build the HTTP client")
}

/// Logs in through demo-web's form with `http`; the session cookie (`name=value`).
pub(crate) async fn form_login(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> String {
    let res = http
        .post(format!("{base}/login"))
        .header("origin", base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={user}&password={password}"))
        .send()
        .await
        .expect("POST /login");
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    let set = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    set.split(';').next().unwrap_or_default().to_owned()
}

pub(crate) async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css))
        .await
        .expect("find elements")
        .len()
}

pub(crate) async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let shot = dir.join(name);
    std::fs::write(&shot, &png).unwrap_or_else(|e| panic!("write {}: {e}", shot.display()));
    println!("screenshot: {}", shot.display());
}

async fn devices_scenario(browsers: Browsers, base: String) {
    let url = |path: &str| format!("{base}{path}");

    // Another device signs in first: "Firefox on Linux" (alice's first login: no new device).
    let firefox = http_client(FIREFOX_LINUX);
    let firefox_cookie = form_login(&firefox, &base, "alice", "alice-password").await;

    // Chromium: a wrong password first (the form again, with an error), then the right one
    // with "Keep me signed in".
    let a = browsers.start().await;
    a.goto(&url("/login")).await.expect("open /login");
    fill_login(&a, "alice", "wrong-password").await;
    click_and_wait(&a, "#login").await;
    assert_eq!(here(&a).await, "/login");
    assert!(text_of(&a, ".error").await.contains("wrong password"));
    a.goto(&url("/login")).await.expect("open /login");
    fill_login(&a, "alice", "alice-password").await;
    a.find(Locator::Id("remember"))
        .await
        .expect("the Keep me signed in box")
        .click()
        .await
        .expect("tick Keep me signed in");
    click_and_wait(&a, "#login").await;
    assert_eq!(here(&a).await, "/account");
    // A device alice has not signed in from: the notice, once.
    let notice = text_of(&a, ".flash").await;
    assert!(
        notice.contains("New sign-in from Chrome on Linux (127.0.0.0/24).")
            && notice.contains("end that session on the Devices page"),
        "{notice}"
    );

    // The remembered login's cookie is persistent: it has an expiry (in the future).
    let remembered = a
        .get_named_cookie("__Host-session")
        .await
        .expect("the session cookie");
    let expires = remembered
        .expires_datetime()
        .unwrap_or_else(|| panic!("a remembered login's cookie has no expiry: {remembered:?}"));
    assert!(
        expires.unix_timestamp()
            > std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs() as i64
                + 3600,
        "expires too soon: {expires}"
    );

    // The devices page: both, this one marked, with its browser, network and badges.
    a.goto(&url("/sessions")).await.expect("open /sessions");
    assert_eq!(count(&a, "#sessions tr.session").await, 2);
    assert_eq!(count(&a, "#sessions tr.session.current").await, 1);
    let this = text_of(&a, "#sessions tr.session.current").await;
    assert!(this.contains("Chrome on Linux"), "{this}");
    assert!(this.contains("127.0.0.0/24"), "{this}");
    assert!(
        this.contains("Remembered") && this.contains("New device"),
        "{this}"
    );
    assert!(this.contains("this session"), "{this}");
    let other = text_of(&a, "#sessions tr.session:not(.current)").await;
    assert!(other.contains("Firefox on Linux"), "{other}");
    assert!(
        !other.contains("Remembered") && !other.contains("New device"),
        "{other}"
    );
    screenshot(&a, "devices.png").await;

    // The history: newest first, the two sign-ins and the wrong password in words.
    a.goto(&url("/history")).await.expect("open /history");
    assert_eq!(count(&a, "#history tr.event.login").await, 2);
    assert_eq!(count(&a, "#history tr.event.login_failed").await, 1);
    let newest = text_of(&a, "#history tbody tr:first-child").await;
    assert!(
        newest.contains("Signed in") && newest.contains("Chrome on Linux"),
        "{newest}"
    );
    let failed = text_of(&a, "#history tr.event.login_failed").await;
    assert!(
        failed.contains("Wrong password") && failed.contains("127.0.0.0/24"),
        "{failed}"
    );
    screenshot(&a, "history.png").await;

    // End all other sessions: one left, and the Firefox one is logged out.
    a.goto(&url("/sessions")).await.expect("open /sessions");
    click_and_wait(&a, "#end-others").await;
    assert_eq!(here(&a).await, "/sessions");
    assert!(text_of(&a, ".flash")
        .await
        .contains("1 other session was ended"));
    assert_eq!(count(&a, "#sessions tr.session").await, 1);
    assert!(!has(&a, "#end-others").await);
    let res = firefox
        .get(url("/account"))
        .header("cookie", &firefox_cookie)
        .send()
        .await
        .expect("GET /account");
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    a.goto(&url("/history")).await.expect("open /history");
    let newest = text_of(&a, "#history tbody tr:first-child").await;
    assert!(
        newest.contains("Session ended by you or an admin"),
        "{newest}"
    );

    // A browser restart keeps a persistent cookie: a fresh browser given the saved cookie
    // (after opening the site, whose origin it belongs to) is signed in.
    a.clone().close().await.expect("close the first browser");
    let c = browsers.start().await;
    c.goto(&url("/")).await.expect("open /");
    c.add_cookie(remembered.clone())
        .await
        .expect("add the saved cookie");
    c.goto(&url("/account")).await.expect("open /account");
    assert_eq!(
        here(&c).await,
        "/account",
        "the remembered login did not survive"
    );
    assert_eq!(text_of(&c, "#account-user").await, "alice");

    // Without the box: a session cookie (no expiry), which a browser restart drops. From the
    // same browser, system and network as before: no new-device notice.
    let d = browsers.start().await;
    d.goto(&url("/login")).await.expect("open /login");
    submit_login(&d, "alice", "alice-password").await;
    assert_eq!(here(&d).await, "/account");
    let welcome = text_of(&d, ".flash").await;
    assert!(
        welcome.contains("Welcome, alice") && !welcome.contains("New sign-in"),
        "{welcome}"
    );
    let ordinary = d
        .get_named_cookie("__Host-session")
        .await
        .expect("the session cookie");
    assert_eq!(
        ordinary.expires(),
        None,
        "an ordinary login's cookie is persistent: {ordinary:?}"
    );
    d.goto(&url("/sessions")).await.expect("open /sessions");
    assert_eq!(count(&d, "#sessions tr.session").await, 2);
    let this = text_of(&d, "#sessions tr.session.current").await;
    assert!(
        !this.contains("Remembered") && !this.contains("New device"),
        "{this}"
    );
    let other = text_of(&d, "#sessions tr.session:not(.current)").await;
    assert!(other.contains("Remembered"), "{other}");
}

/// Impersonation: an admin acts as alice from the admin page (an unknown name first), sees
/// alice's pages under the banner, is refused alice's password page, and stops from the banner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_impersonates_alice_in_a_real_browser() {
    let (chromium, chromedriver) = browser_programs();
    let redis = RedisServer::start_local().unwrap_or_else(|e| panic!("redis-server: {e}"));
    let (web, base) = start_web(redis.url()).await;
    let (_driver, driver_url) = start_driver(&chromedriver).await;
    let browsers = Browsers {
        driver_url,
        chromium,
        open: Arc::default(),
    };
    let outcome = tokio::spawn(impersonation_scenario(browsers.clone(), base)).await;
    browsers.close_all().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            eprintln!("demo-web's log:\n{}", web.log_tail());
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("the scenario did not finish: {e}");
    }
}

/// Replaces the text of the input at `css` with `text`.
async fn type_into(c: &Client, css: &str, text: &str) {
    let at = here(c).await;
    let input = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on {at}: {e}"));
    input.clear().await.expect("clear the field");
    input.send_keys(text).await.expect("type into the field");
}

async fn impersonation_scenario(browsers: Browsers, base: String) {
    let url = |path: &str| format!("{base}{path}");
    let a = browsers.start().await;

    // The admin signs in on the way to the admin page: no banner on an own session.
    a.goto(&url("/admin")).await.expect("open /admin");
    assert_eq!(here(&a).await, "/login?next=/admin");
    submit_login(&a, "admin", "admin-password").await;
    assert_eq!(here(&a).await, "/admin");
    assert!(!has(&a, "#impersonation").await);

    // A name with no account: the admin page again, saying so.
    type_into(&a, "#impersonate-user", "nobody").await;
    click_and_wait(&a, "#impersonate").await;
    assert_eq!(
        text_of(&a, "#impersonate-error").await,
        "There is no user named \"nobody\"."
    );
    assert!(!has(&a, "#impersonation").await);

    // alice: her account page, under the banner naming both.
    type_into(&a, "#impersonate-user", "alice").await;
    click_and_wait(&a, "#impersonate").await;
    assert_eq!(here(&a).await, "/account");
    assert_eq!(
        text_of(&a, "#impersonation-text").await,
        "You are acting as alice (impersonated by admin)"
    );
    assert!(has(&a, "#impersonation #stop-impersonating").await);
    assert_eq!(text_of(&a, "#account-user").await, "alice");
    assert_eq!(text_of(&a, "#account-impersonator").await, "admin");
    assert!(text_of(&a, "header .who").await.contains("alice"));
    assert!(
        !has(&a, "header a[href='/admin']").await,
        "alice's rights, not the admin's"
    );
    screenshot(&a, "impersonation.png").await;

    // Every page carries the banner; the devices page marks the session.
    for path in ["/", "/sessions", "/history"] {
        a.goto(&url(path)).await.expect("open a page");
        assert!(has(&a, "#impersonation").await, "no banner on {path}");
    }
    a.goto(&url("/sessions")).await.expect("open /sessions");
    let this = text_of(&a, "#sessions tr.session.current").await;
    assert!(this.contains("Impersonated by admin"), "{this}");
    assert!(!has(&a, "#end-others").await);

    // alice's password page is hers alone: a 403 page, still with the way back.
    a.goto(&url("/password")).await.expect("open /password");
    assert_eq!(here(&a).await, "/password");
    assert_eq!(
        a.title().await.expect("title"),
        "Forbidden · session-core demo"
    );
    assert!(text_of(&a, "#impersonator-refused")
        .await
        .contains("Only alice can do this"));
    assert!(!has(&a, "#new_password").await);

    // Stop from the banner: back on the admin page as the admin, no banner.
    click_and_wait(&a, "#stop-impersonating").await;
    assert_eq!(here(&a).await, "/admin");
    assert!(!has(&a, "#impersonation").await);
    assert!(text_of(&a, ".flash")
        .await
        .contains("You stopped impersonating alice"));
    assert!(text_of(&a, "#admin-area").await.contains("admin"));
    a.goto(&url("/account")).await.expect("open /account");
    assert_eq!(text_of(&a, "#account-user").await, "admin");
    assert!(!has(&a, "#account-impersonator").await);
    assert!(!has(&a, "#impersonation").await);
    // The admin's own password page is open again.
    a.goto(&url("/password")).await.expect("open /password");
    assert!(has(&a, "#new_password").await);

    // The admin's history says it, start and end.
    a.goto(&url("/history")).await.expect("open /history");
    assert_eq!(
        count(&a, "#history tr.event.impersonation_started").await,
        1
    );
    assert_eq!(count(&a, "#history tr.event.impersonation_ended").await, 1);
}
