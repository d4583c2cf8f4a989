//! Device Bound Session Credentials in a real browser: headless Chromium binds its `demo-web`
//! session (`DBSC=true`) to a key of its own at login, refreshes the short-lived bound
//! credential by itself, and a copy of the session cookie taken out of it stops working.
//!
//! Chromium speaks DBSC over https only, to a certificate it trusts, and (headless on Linux,
//! without a TPM) with a software key behind a feature flag. So the test puts a TLS terminator
//! of its own in front of demo-web ([`TlsFront`]: a self-signed certificate for `localhost`,
//! trusted by its key's hash with `--ignore-certificate-errors-spki-list`) and starts Chromium
//! with `--enable-features=DeviceBoundSessions:RefreshQuota/false,
//! EnableBoundSessionCredentialsSoftwareKeysForManualTesting`. demo-web itself serves plain
//! http and sees the browser's `Host` (`localhost:<port>`), so its default `Secure`
//! `__Host-session` cookie and its https origin check apply unchanged.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`, as the other browser tests; if
//! the installed Chromium does not bind the session, the test fails and says so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::Client;
use rcgen::PublicKeyData as _;
use redis_harness::{free_port, RedisServer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::browser::{
    browser_programs, browser_with, form_login, has, here, http_client, screenshot, start_driver,
    submit_login, text_of, wait_ok, Process, CONTROLLED_ENV, WEB_BIN,
};

/// How long a bound credential lasts (`DBSC_COOKIE_SECS`): short, so that the test sees
/// Chromium refresh it and a copied cookie run out.
const CREDENTIAL_SECS: u64 = 3;

/// What demo-web's audit log says when a session is bound, and when its credential is renewed.
const REGISTERED: &str = "device-bound session registered";
const REFRESHED: &str = "device-bound session refreshed";

/// A TLS terminator on `127.0.0.1`: each connection's bytes, decrypted, go to the backend as
/// they are (HTTP/1.1, the browser's own `Host` header), and the answers back.
struct TlsFront {
    port: u16,
    /// The base64 SHA-256 of the certificate's SubjectPublicKeyInfo, for Chromium's
    /// `--ignore-certificate-errors-spki-list`.
    spki_sha256: String,
    /// What passed through, in short (see [`tap`]): printed when the test fails.
    wire: Wire,
    accept: tokio::task::JoinHandle<()>,
}

/// Request and status lines and DBSC headers seen by the TLS front, with the time since it
/// started.
struct WireLog {
    started: Instant,
    lines: Mutex<Vec<String>>,
}

type Wire = Arc<WireLog>;

/// Copies `from` to `to` and notes in `wire` the HTTP request and status lines, the DBSC
/// headers (values cut short) and the names of the cookies that pass. (By the chunk: a line
/// split across two reads is missed, which is fine for a failure's diagnostics.)
async fn tap(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    wire: &Wire,
    sender: &str,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        let mut noted = Vec::new();
        for line in text.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            let note = if line.ends_with(" HTTP/1.1") || line.starts_with("HTTP/1.1 ") {
                line.to_owned()
            } else if lower.starts_with("secure-session-")
                || lower.starts_with("sec-secure-session-")
            {
                line.chars().take(72).collect()
            } else if let Some(cookies) = lower.strip_prefix("cookie:") {
                let names: Vec<&str> = cookies
                    .split(';')
                    .map(|c| c.trim().split('=').next().unwrap_or_default())
                    .collect();
                format!("cookie names: {}", names.join(", "))
            } else if lower.starts_with("set-cookie:") {
                line.split(';')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(40)
                    .collect()
            } else {
                continue;
            };
            let at = wire.started.elapsed().as_millis();
            noted.push(format!("{at:>6} ms {sender}: {note}"));
        }
        wire.lines.lock().expect("the wire log").extend(noted);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl TlsFront {
    async fn start(backend: SocketAddr) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a self-signed certificate for localhost");
        let spki_sha256 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(
            certified.signing_key.subject_public_key_info(),
        ));
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        // ring, deprecated in rustls for want of post-quantum key exchange, which a loopback
        // test does not need; aws-lc-rs would add a C library and cmake to the build.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("TLS protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("the TLS server configuration");
        // No ALPN: the browser speaks HTTP/1.1, as demo-web does.
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the TLS front");
        let port = listener.local_addr().expect("the TLS front's port").port();
        let wire = Arc::new(WireLog {
            started: Instant::now(),
            lines: Mutex::default(),
        });
        let accept = tokio::spawn({
            let wire = Arc::clone(&wire);
            async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let wire = Arc::clone(&wire);
                    tokio::spawn(async move {
                        // A failed handshake or connection is the browser's to retry.
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Ok(plain) = TcpStream::connect(backend).await else {
                            return;
                        };
                        let (from_browser, to_browser) = tokio::io::split(tls);
                        let (from_web, to_web) = plain.into_split();
                        tokio::join!(
                            tap(from_browser, to_web, &wire, "browser"),
                            tap(from_web, to_browser, &wire, "demo-web"),
                        );
                    });
                }
            }
        });
        Self {
            port,
            spki_sha256,
            wire,
            accept,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `demo-web` on the Redis at `redis_url` with DBSC on; its plain http address.
async fn start_web(redis_url: &str) -> (Process, SocketAddr) {
    let port = free_port().expect("a free port");
    let mut cmd = Command::new(WEB_BIN);
    for key in CONTROLLED_ENV {
        cmd.env_remove(key);
    }
    cmd.env("DEMO_ADDR", format!("127.0.0.1:{port}"))
        .env("REDIS_URL", redis_url)
        .env("DBSC", "true")
        .env("DBSC_COOKIE_SECS", CREDENTIAL_SECS.to_string())
        .env("NO_COLOR", "1");
    let mut web = Process::spawn(cmd, "demo-web-dbsc");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_ok(&format!("http://{addr}/health"), &mut web, "demo-web").await;
    (web, addr)
}

/// A Chromium with DBSC on (software keys), trusting `front`'s certificate, with its profile in
/// `profile`.
async fn dbsc_browser(
    driver_url: &str,
    chromium: &Path,
    front: &TlsFront,
    profile: &Path,
) -> Client {
    let extra = [
        format!("--user-data-dir={}", profile.display()),
        // Trusted, not ignored: with --ignore-certificate-errors Chromium ignores every DBSC
        // header.
        format!(
            "--ignore-certificate-errors-spki-list={}",
            front.spki_sha256
        ),
        "--enable-features=DeviceBoundSessions:RefreshQuota/false,\
         EnableBoundSessionCredentialsSoftwareKeysForManualTesting"
            .to_owned(),
    ];
    browser_with(driver_url, chromium, &extra).await
}

/// How many times `needle` is in the log at `log`.
fn occurrences(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Waits until the log at `log` has `needle` more than `before` times; false after `within`.
async fn logged_more(log: &Path, needle: &str, before: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while occurrences(log, needle) <= before {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_binds_refreshes_and_a_copied_cookie_runs_out() {
    let (chromium, chromedriver) = browser_programs();
    let redis = RedisServer::start_local().unwrap_or_else(|e| panic!("redis-server: {e}"));
    let (web, web_addr) = start_web(redis.url()).await;
    let front = TlsFront::start(web_addr).await;
    let (_driver, driver_url) = start_driver(&chromedriver).await;
    let profile = std::env::temp_dir().join(format!(
        "browser-dbsc-profile-{}-{}",
        std::process::id(),
        front.port
    ));
    let a = dbsc_browser(&driver_url, &chromium, &front, &profile).await;
    let scenario = Scenario {
        base: format!("https://localhost:{}", front.port),
        plain: format!("http://{web_addr}"),
        log: web.log.clone(),
    };
    let outcome = tokio::spawn(scenario.run(a.clone())).await;
    let _ = a.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    let wire = front.wire.lines.lock().expect("the wire log").join("\n");
    // Shown when the test fails (and with --nocapture): the DBSC exchange as Chromium did it.
    println!("through the TLS front (browser <-> demo-web):\n{wire}");
    if let Err(e) = outcome {
        if e.is_panic() {
            eprintln!("demo-web's log:\n{}", web.log_tail());
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("the scenario did not finish: {e}");
    }
}

struct Scenario {
    /// The site as the browser sees it: `https://localhost:<the TLS front's port>`.
    base: String,
    /// demo-web itself, plain http (for the HTTP clients: a thief, a browser without DBSC).
    plain: String,
    /// demo-web's log.
    log: PathBuf,
}

impl Scenario {
    /// demo-web's `host:port`.
    fn plain_authority(&self) -> &str {
        self.plain.trim_start_matches("http://")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn run(self, a: Client) {
        let lifetime = Duration::from_secs(CREDENTIAL_SECS);

        // A client without DBSC signs in as alice too: its session is not bound, and the
        // device-bound page refuses it with the HTML 403 page.
        let plain_client = http_client("curl/8");
        let unbound = form_login(&plain_client, &self.plain, "alice", "alice-password").await;
        let res = plain_client
            .get(format!("{}/bound-only", self.plain))
            .header("cookie", &unbound)
            .send()
            .await
            .expect("GET /bound-only");
        assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
        let page = res.text().await.expect("the 403 page");
        assert!(
            page.contains("this page needs a session bound to this device"),
            "{page}"
        );

        // Chromium signs in through the form; the login's answer asks it to bind the session,
        // and it registers its key at once, while it follows the login's redirect.
        let registered = occurrences(&self.log, REGISTERED);
        a.goto(&self.url("/login")).await.expect("open /login");
        submit_login(&a, "alice", "alice-password").await;
        assert!(
            logged_more(&self.log, REGISTERED, registered, Duration::from_secs(15)).await,
            "Chromium did not register a device-bound session within 15 s of the login \
             (demo-web's log has no \"{REGISTERED}\"): this Chromium does not do DBSC with \
             these flags, or the registration was refused (see the log below)"
        );

        // The page after login may have raced the registration: sent without a bound credential
        // (there was none yet) and answered after the session was bound, it went to the login
        // page, which sent the browser back. Either way the browser ends up signed in.
        a.goto(&self.url("/account")).await.expect("open /account");
        assert_eq!(here(&a).await, "/account");
        assert_eq!(text_of(&a, "#account-user").await, "alice");

        // The devices page marks this session device-bound, and only this one.
        a.goto(&self.url("/sessions"))
            .await
            .expect("open /sessions");
        assert_eq!(here(&a).await, "/sessions");
        assert!(
            has(
                &a,
                "#sessions tr.session.current[data-device-bound='true'] .badge.device-bound"
            )
            .await,
            "the current session is not marked device-bound: {}",
            text_of(&a, "#sessions tr.session.current").await
        );
        assert!(
            has(
                &a,
                "#sessions tr.session:not(.current)[data-device-bound='false']"
            )
            .await
                && !has(&a, "#sessions tr.session:not(.current) .badge.device-bound").await,
            "the HTTP client's session is marked device-bound"
        );
        screenshot(&a, "devices-dbsc.png").await;

        // The device-bound page shows the user.
        a.goto(&self.url("/bound-only"))
            .await
            .expect("open /bound-only");
        assert_eq!(here(&a).await, "/bound-only");
        assert_eq!(text_of(&a, "#bound-user").await, "alice");

        // The session cookie as a thief would copy it (with the bound credential of the
        // moment).
        let cookies = a.get_all_cookies().await.expect("the browser's cookies");
        let copied = |name: &str| {
            cookies
                .iter()
                .find(|c| c.name() == name)
                .map(|c| format!("{name}={}", c.value()))
        };
        let session = copied("__Host-session")
            .unwrap_or_else(|| panic!("no __Host-session cookie in {cookies:?}"));
        let with_credential = match copied("__Host-session-bound") {
            Some(bound) => format!("{session}; {bound}"),
            None => session.clone(),
        };

        // Past the credential's lifetime, the browser renews it by itself (a signed refresh)
        // and its pages keep working.
        let refreshed = occurrences(&self.log, REFRESHED);
        tokio::time::sleep(lifetime + Duration::from_secs(2)).await;
        a.goto(&self.url("/account")).await.expect("open /account");
        assert_eq!(
            here(&a).await,
            "/account",
            "the bound session did not survive its credential's lifetime"
        );
        assert_eq!(text_of(&a, "#account-user").await, "alice");
        assert!(
            logged_more(&self.log, REFRESHED, refreshed, Duration::from_secs(10)).await,
            "no \"{REFRESHED}\" in demo-web's log after the credential's lifetime"
        );
        a.goto(&self.url("/bound-only"))
            .await
            .expect("open /bound-only");
        assert_eq!(text_of(&a, "#bound-user").await, "alice");

        // The copy, with or without its (by now stale) credential, is no session: sent to the
        // login page, from any page.
        let thief = http_client("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0");
        for cookie in [&session, &with_credential] {
            for path in ["/account", "/bound-only"] {
                let res = thief
                    .get(format!("{}{path}", self.plain))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .expect("the thief's request");
                assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER, "{path}");
                let to = res
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                assert!(to.starts_with("/login"), "{path} sent the thief to {to}");
            }
        }

        // The thief may ask for a refresh: the answer is a challenge (in the HTML app's 403 page,
        // which keeps the protocol's header) that only the browser's key can sign.
        let res = thief
            .post(format!("{}/dbsc/refresh", self.plain))
            .header("origin", format!("https://{}", self.plain_authority()))
            .header("cookie", &session)
            .send()
            .await
            .expect("the thief's refresh");
        assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
        assert!(
            res.headers().contains_key("secure-session-challenge"),
            "a refresh without a proof got no challenge: {:?}",
            res.headers()
        );
        assert!(
            res.headers().get_all("set-cookie").iter().next().is_none(),
            "a refresh without a proof set a cookie"
        );

        // ... while the browser, with its key, is still signed in.
        a.goto(&self.url("/account")).await.expect("open /account");
        assert_eq!(text_of(&a, "#account-user").await, "alice");
    }
}
