//! Version 3 of the contract: Device Bound Session Credentials (`DBSC=true`), end to end. A
//! protocol-level browser ([`Browser`]: a P-256 key in software, the JWS it signs, the headers
//! and cookies it sends, as `spec.bs` has a browser do them) registers, refreshes across two
//! servers of both frameworks on one Redis, and a thief with a copy of its cookies but not its
//! key is locked out once the bound credential runs out.

use crate::support;

use std::time::{Duration, Instant};

use reqwest::Method;
use session_core::testing::dbsc::{challenges_from_header, sf_string, Device, Registration};
use support::*;

/// A server with DBSC on, bound credentials lasting `cookie_secs`.
async fn server(redis: &RedisServer, bin: Bin, cookie_secs: u64) -> Server {
    ServerBuilder::redis(redis.url())
        .bin(bin)
        .env("DBSC", "true")
        .env("DBSC_COOKIE_SECS", cookie_secs)
        .start()
        .await
}

/// A browser's DBSC state for one site: its key, its cookies, its DBSC session.
struct Browser {
    device: Device,
    session: Cookie,
    /// The bound credential's cookie, once registered.
    bound: Option<Cookie>,
    /// The session identifier and refresh URL of the session instructions.
    id: String,
    refresh_url: String,
    /// The registration the login's answer asked for: (path, challenge).
    registration: (String, String),
}

impl Browser {
    /// Logs in as `user` and reads the registration the answer offers.
    async fn login(c: &Client, user: (&str, &str)) -> Self {
        let res = c
            .post(
                "/login",
                None,
                json!({"username": user.0, "password": user.1}),
            )
            .await;
        res.assert_status(200);
        let session = c
            .new_cookie(&res)
            .expect("the login sets the session cookie");
        let header = res
            .header("secure-session-registration")
            .expect("with DBSC=true the login answer offers a registration");
        let offered = Registration::from_header(&header);
        assert_eq!(offered.len(), 1, "{header}");
        assert!(
            offered[0].algorithms.contains(&"ES256".to_owned()),
            "{header}"
        );
        let challenge = offered[0].challenge.clone().expect("a challenge");
        Self {
            device: Device::new(),
            session,
            bound: None,
            id: String::new(),
            refresh_url: String::new(),
            registration: (offered[0].path.clone(), challenge),
        }
    }

    /// What an infostealer takes to another machine: the cookies (`bound`: the credential it
    /// copied, if any), never the key.
    fn stolen(&self, bound: Option<Cookie>) -> Self {
        Self {
            device: Device::new(),
            session: self.session.clone(),
            bound,
            id: self.id.clone(),
            refresh_url: self.refresh_url.clone(),
            registration: self.registration.clone(),
        }
    }

    /// The `Cookie` header: the session cookie, and the bound one once there is one.
    fn cookies(&self) -> String {
        match &self.bound {
            Some(bound) => format!("{}; {}", self.session.header(), bound.header()),
            None => self.session.header(),
        }
    }

    async fn post(&self, c: &Client, path: &str, headers: &[(&str, &str)]) -> Resp {
        let cookies = self.cookies();
        let mut all = vec![("cookie", cookies.as_str())];
        all.extend_from_slice(headers);
        c.send(Method::POST, path, None, None, &all).await
    }

    async fn get(&self, c: &Client, path: &str) -> Resp {
        let cookies = self.cookies();
        c.send(
            Method::GET,
            path,
            None,
            None,
            &[("cookie", cookies.as_str())],
        )
        .await
    }

    /// Registers with `proof` (the device's own, by default): keeps what a 200 sets.
    async fn register_with(&mut self, c: &Client, proof: &str) -> Resp {
        let path = self.registration.0.clone();
        let res = self
            .post(c, &path, &[("secure-session-response", &sf_string(proof))])
            .await;
        if res.status == 200 {
            self.accept(&res);
        }
        res
    }

    async fn register(&mut self, c: &Client) -> Resp {
        let proof = self.device.registration_proof(&self.registration.1);
        let res = self.register_with(c, &proof).await;
        res.assert_status(200);
        res
    }

    /// Takes the instructions and the bound cookie of a 200 registration or refresh.
    fn accept(&mut self, res: &Resp) {
        let id = res.body["session_identifier"]
            .as_str()
            .expect("an identifier");
        self.id = id.to_owned();
        self.refresh_url = res.body["refresh_url"]
            .as_str()
            .expect("a refresh_url")
            .to_owned();
        let name = res.body["credentials"][0]["name"]
            .as_str()
            .expect("a cookie")
            .to_owned();
        assert_eq!(res.body["credentials"][0]["type"], "cookie");
        let set = res
            .set_cookies()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                panic!("no Set-Cookie for the credential {name}: {:?}", res.headers)
            });
        assert!(set.has("HttpOnly"), "{}", set.raw);
        self.bound = Some(Cookie {
            name,
            value: set.value,
        });
    }

    /// The refresh without a proof: the 403 and its challenge.
    async fn challenge(&self, c: &Client) -> (Resp, String) {
        let id = sf_string(&self.id);
        let res = self
            .post(c, &self.refresh_url, &[("sec-secure-session-id", &id)])
            .await;
        res.assert_status(403);
        let header = res
            .header("secure-session-challenge")
            .expect("a refresh without a proof gets a challenge");
        let pairs = challenges_from_header(&header);
        assert_eq!(pairs.len(), 1, "{header}");
        assert_eq!(pairs[0].1, self.id, "the challenge names the session");
        (res, pairs[0].0.clone())
    }

    /// Sends `proof` to the refresh endpoint; keeps what a 200 sets.
    async fn refresh_with(&mut self, c: &Client, proof: &str) -> Resp {
        let id = sf_string(&self.id);
        let res = self
            .post(
                c,
                &self.refresh_url.clone(),
                &[
                    ("sec-secure-session-id", &id),
                    ("secure-session-response", &sf_string(proof)),
                ],
            )
            .await;
        if res.status == 200 {
            self.accept(&res);
        }
        res
    }

    /// A whole refresh, as the browser does it: 403 and a challenge, then the signed proof.
    async fn refresh(&mut self, c: &Client) -> Resp {
        let (_, challenge) = self.challenge(c).await;
        let proof = self.device.refresh_proof(&challenge);
        let res = self.refresh_with(c, &proof).await;
        res.assert_status(200);
        res
    }
}

#[tokio::test]
async fn a_browser_registers_and_refreshes_100_times_across_two_servers() {
    let redis = redis();
    let a = server(&redis, Bin::under_test(), 600).await;
    let b = server(&redis, Bin::under_test().other(), 600).await;
    let (ca, cb) = (a.client(), b.client());
    let mut browser = Browser::login(&ca, ALICE).await;
    // Not bound yet: an ordinary session, refused where binding is required.
    assert_eq!(browser.get(&ca, "/me").await.status, 200);
    browser
        .get(&ca, "/bound-only")
        .await
        .assert_error(403, "device_binding_required");
    let res = browser.register(&ca).await;
    assert_eq!(res.body["refresh_url"], "/dbsc/refresh");
    let bound = res
        .set_cookies()
        .into_iter()
        .find(|s| Some(&s.name) == browser.bound.as_ref().map(|b| &b.name))
        .expect("the bound cookie");
    let max_age: u64 = bound
        .attr("Max-Age")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=600).contains(&max_age), "{}", bound.raw);
    let me = browser.get(&cb, "/bound-only").await;
    me.assert_status(200);
    assert_eq!(me.body["username"], "alice");
    let list = browser.get(&cb, "/sessions").await;
    assert_eq!(list.body[0]["bound"], true, "{}", list.text);
    for i in 0..100 {
        let (here, there) = if i % 2 == 0 { (&ca, &cb) } else { (&cb, &ca) };
        let before = browser.bound.clone();
        browser.refresh(here).await;
        assert_ne!(browser.bound, before, "refresh {i} kept the credential");
        let res = browser.get(there, "/bound-only").await;
        assert_eq!(res.status, 200, "after refresh {i}: {}", res.text);
    }
    // What a refresh costs Redis: one script (the binding's compare-and-set); the challenge
    // none, and the session's load comes from the server's cache.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    browser.refresh(&ca).await;
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let calls = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("cmdstat_{name}:calls="))?
                    .split(',')
                    .next()
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(calls("evalsha") + calls("eval"), 1, "{stats}");
    assert_eq!(
        calls("getex") + calls("get"),
        1,
        "the script's GET only: {stats}"
    );
    // A second registration of a bound session is refused: a copied cookie cannot rebind it.
    let other = Device::new();
    let challenge = browser.registration.1.clone();
    let res = browser
        .register_with(&ca, &other.registration_proof(&challenge))
        .await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert_eq!(browser.get(&cb, "/bound-only").await.status, 200);
}

#[tokio::test]
async fn a_stolen_cookie_stops_working_once_its_credential_runs_out() {
    let redis = redis();
    let lifetime = 2;
    let a = server(&redis, Bin::under_test(), lifetime).await;
    let b = server(&redis, Bin::under_test().other(), lifetime).await;
    let (ca, cb) = (a.client(), b.client());
    let mut victim = Browser::login(&ca, ALICE).await;
    victim.register(&ca).await;
    // Infostealer: every cookie copied to another machine, which has no key.
    let stolen_at = Instant::now();
    let mut thief = victim.stolen(victim.bound.clone());
    assert_eq!(
        thief.get(&cb, "/me").await.status,
        200,
        "works until it runs out"
    );
    // It runs out: every guarded route answers 401, on both servers.
    let mut locked_out = None;
    while stolen_at.elapsed() < Duration::from_secs(lifetime + 3) {
        if thief.get(&cb, "/me").await.status == 401 {
            locked_out = Some(stolen_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let locked_out = locked_out.expect("the stolen cookie kept working past its lifetime");
    assert!(
        locked_out <= Duration::from_secs(lifetime) + Duration::from_millis(500),
        "locked out after {locked_out:?}"
    );
    thief
        .get(&ca, "/me")
        .await
        .assert_error(401, "unauthenticated");
    thief
        .get(&ca, "/bound-only")
        .await
        .assert_error(401, "unauthenticated");
    // Its refresh attempt: a challenge it cannot answer; its own key's proof is refused.
    let refresh_started = Instant::now();
    let (_, challenge) = thief.challenge(&ca).await;
    let res = thief
        .refresh_with(&ca, &thief.device.refresh_proof(&challenge))
        .await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert!(res.set_cookies().is_empty(), "no credential for the thief");
    let refresh_attempt = refresh_started.elapsed();
    assert_eq!(thief.get(&cb, "/me").await.status, 401);
    eprintln!(
        "dbsc: a stolen cookie (credential lifetime {lifetime} s) was refused {locked_out:?} \
         after the theft; its refresh attempt was refused in {refresh_attempt:?}"
    );
    // The victim's browser refreshes with its key and goes on, on the other server too.
    victim.refresh(&cb).await;
    assert_eq!(victim.get(&ca, "/bound-only").await.status, 200);
}

#[tokio::test]
async fn a_refresh_by_the_device_retires_a_copied_credential_at_once() {
    let redis = redis();
    let a = server(&redis, Bin::under_test(), 600).await;
    let c = a.client();
    let mut victim = Browser::login(&c, ALICE).await;
    victim.register(&c).await;
    let copied = victim.bound.clone();
    victim.refresh(&c).await;
    let thief = victim.stolen(copied);
    thief
        .get(&c, "/me")
        .await
        .assert_error(401, "unauthenticated");
    // The session cookie alone (no credential) is no session either.
    let bare = victim.stolen(None);
    assert_eq!(bare.get(&c, "/me").await.status, 401);
    assert_eq!(victim.get(&c, "/me").await.status, 200);
}

#[tokio::test]
async fn every_forged_or_replayed_proof_is_refused() {
    let redis = redis();
    let a = server(&redis, Bin::under_test(), 600).await;
    let c = a.client();

    // Registration: alg none, another key's signature, a wrong typ, malformed, another
    // challenge's stale value, no proof: 4xx, and the session stays unbound.
    let mut browser = Browser::login(&c, ALICE).await;
    let challenge = browser.registration.1.clone();
    let device = Device::new();
    let forgeries = [
        device.unsigned_proof(&challenge, true),
        device.registration_proof_signed_by(&Device::new(), &challenge),
        device.registration_proof_with_typ(&challenge, "JWT"),
        device.registration_proof("not-our-challenge"),
        "not.a.jws".to_owned(),
        "a".repeat(9000),
    ];
    for proof in &forgeries {
        let res = browser.register_with(&c, proof).await;
        assert!(
            (400..500).contains(&res.status),
            "{proof:.40}: {}",
            res.text
        );
        assert!(res.set_cookies().is_empty());
    }
    let unquoted = browser
        .post(
            &c,
            "/dbsc/register",
            &[("secure-session-response", "\"eyJ.eyJ.x")],
        )
        .await;
    unquoted.assert_error(400, "bad_request");
    let missing = browser.post(&c, "/dbsc/register", &[]).await;
    missing.assert_error(400, "bad_request");
    browser
        .get(&c, "/bound-only")
        .await
        .assert_error(403, "device_binding_required");
    // Without a session: 401.
    let res = c
        .send(
            Method::POST,
            "/dbsc/register",
            None,
            None,
            &[(
                "secure-session-response",
                &sf_string(&device.registration_proof(&challenge)),
            )],
        )
        .await;
    res.assert_error(401, "unauthenticated");
    // A bearer client cannot be bound (it could never send the credential's cookie).
    let login = c
        .post(
            "/login",
            None,
            json!({"username": ALICE.0, "password": ALICE.1, "transport": "header"}),
        )
        .await;
    login.assert_status(200);
    assert_eq!(login.header("secure-session-registration"), None);
    let bearer = format!("Bearer {}", login.body["token"].as_str().expect("a token"));
    let proof = sf_string(&device.registration_proof(&challenge));
    let res = c
        .send(
            Method::POST,
            "/dbsc/register",
            None,
            None,
            &[
                ("authorization", &bearer),
                ("secure-session-response", &proof),
            ],
        )
        .await;
    res.assert_error(400, "bad_request");

    // Refresh: a replayed proof, another key's, alg none, a registration proof, a made-up
    // challenge: 403 and no cookie.
    browser.register(&c).await;
    let (_, challenge) = browser.challenge(&c).await;
    let proof = browser.device.refresh_proof(&challenge);
    browser.refresh_with(&c, &proof).await.assert_status(200);
    let (_, fresh) = browser.challenge(&c).await;
    let made_up = session_core::dbsc::Challenge::generate().unwrap();
    let forgeries = [
        proof.clone(),
        Device::new().refresh_proof(&fresh),
        browser.device.unsigned_proof(&fresh, false),
        browser.device.registration_proof(&fresh),
        browser.device.refresh_proof(made_up.as_str()),
        "x.y.z".to_owned(),
    ];
    for forged in &forgeries {
        let before = browser.bound.clone();
        let res = browser.refresh_with(&c, forged).await;
        assert_eq!(res.status, 403, "{forged:.40}: {}", res.text);
        assert!(res.set_cookies().is_empty());
        assert_eq!(browser.bound, before);
    }
    // The challenge a refused proof did not use still works for the device, once.
    let proof = browser.device.refresh_proof(&fresh);
    browser.refresh_with(&c, &proof).await.assert_status(200);
    assert_eq!(
        browser.refresh_with(&c, &proof).await.status,
        403,
        "replayed"
    );
    assert_eq!(browser.get(&c, "/bound-only").await.status, 200);
}

#[tokio::test]
async fn an_ended_session_tells_the_browser_to_stop_refreshing() {
    let redis = redis();
    let a = server(&redis, Bin::under_test(), 600).await;
    let c = a.client();
    let mut browser = Browser::login(&c, ALICE).await;
    browser.register(&c).await;
    browser.post(&c, "/logout", &[]).await.assert_status(204);
    let id = sf_string(&browser.id);
    let res = browser
        .post(
            &c,
            &browser.refresh_url.clone(),
            &[("sec-secure-session-id", &id)],
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.body, json!({"continue": false}), "{}", res.text);
    // Without DBSC=true nothing is offered, and the endpoints are not there.
    let plain = ServerBuilder::redis(redis.url()).start().await;
    let pc = plain.client();
    let res = pc
        .post(
            "/login",
            None,
            json!({"username": ALICE.0, "password": ALICE.1}),
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.header("secure-session-registration"), None);
}
