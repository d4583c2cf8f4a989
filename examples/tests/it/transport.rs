//! Version 3 of the contract, "the same session without a cookie": every guard and route
//! through both transports, as a matrix. Each test runs its scenario once with the session
//! cookie and once with `Authorization: Bearer <token>` (a login asking for
//! `"transport": "header"`), on one server; the rules that tell the transports apart (both at
//! once, the CSRF check, the challenge of a 401, no cookie for a header client) have their own
//! tests.

use crate::support;

use std::time::Duration;

use support::*;

/// How a client carries its session's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Cookie,
    Header,
}

const BOTH: [Via; 2] = [Via::Cookie, Via::Header];

/// A session's token as a client of one transport holds it.
#[derive(Debug, Clone)]
struct Cred {
    via: Via,
    token: String,
}

/// `Authorization: Bearer <token>`.
fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// A client speaking one transport.
struct T<'a> {
    c: &'a Client,
    via: Via,
}

impl<'a> T<'a> {
    fn new(c: &'a Client, via: Via) -> Self {
        Self { c, via }
    }

    /// Sends a request with `cred` carried as its transport says, plus `extra` headers.
    async fn send(
        &self,
        method: Method,
        path: &str,
        cred: Option<&Cred>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let body = body.map(Body::Json);
        let cookie = cred
            .filter(|c| c.via == Via::Cookie)
            .map(|c| self.c.cookie(&c.token));
        let auth = cred
            .filter(|c| c.via == Via::Header)
            .map(|c| bearer(&c.token));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some((name, value)) = &auth {
            headers.push((name, value.as_str()));
        }
        let res = self
            .c
            .send(method, path, cookie.as_ref(), body, &headers)
            .await;
        if self.via == Via::Header || cred.is_some_and(|c| c.via == Via::Header) {
            assert!(
                res.set_cookies().is_empty(),
                "{path}: an answer to a header client set a cookie: {:?}",
                res.headers
            );
        }
        res
    }

    async fn get(&self, path: &str, cred: &Cred) -> Resp {
        self.send(Method::GET, path, Some(cred), None, &[]).await
    }

    async fn post(&self, path: &str, cred: &Cred, body: Value) -> Resp {
        self.send(Method::POST, path, Some(cred), Some(body), &[])
            .await
    }

    async fn put(&self, path: &str, cred: &Cred, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(cred), Some(body), &[])
            .await
    }

    async fn delete(&self, path: &str, cred: &Cred) -> Resp {
        self.send(Method::DELETE, path, Some(cred), None, &[]).await
    }

    /// `POST /login` over this transport: the cookie, or (`"transport": "header"`) the token
    /// of the body, with no `Set-Cookie` at all.
    async fn login(&self, username: &str, password: &str) -> Cred {
        let mut body = json!({"username": username, "password": password});
        if self.via == Via::Header {
            body["transport"] = "header".into();
        }
        let res = self
            .send(Method::POST, "/login", None, Some(body), &[])
            .await;
        res.assert_status(200);
        assert_eq!(res.body["username"], username, "{}", res.text);
        self.issued(&res)
            .unwrap_or_else(|| panic!("login over {:?} handed out no token: {res:?}", self.via))
    }

    /// The new token an answer hands this transport's client: a `Set-Cookie` (and no token in
    /// the body: a cookie's token never reaches a script), or the body's `"token"`.
    fn issued(&self, res: &Resp) -> Option<Cred> {
        let token = match self.via {
            Via::Cookie => {
                assert!(
                    res.body.get("token").is_none(),
                    "a cookie client's token in a body: {}",
                    res.text
                );
                self.c.new_cookie(res)?.value
            }
            Via::Header => {
                assert!(res.set_cookies().is_empty(), "{:?}", res.headers);
                res.body.get("token")?.as_str()?.to_owned()
            }
        };
        assert_eq!(token.len(), TOKEN_LEN, "{token:?}");
        assert_eq!(
            res.header("cache-control").as_deref(),
            Some("no-store"),
            "an answer that hands out a token must not be cached"
        );
        Some(Cred {
            via: self.via,
            token,
        })
    }

    /// `POST /register` of `username`, then a login.
    async fn new_user(&self, username: &str, password: &str) -> Cred {
        self.c.register(username, password).await.assert_status(201);
        self.login(username, password).await
    }
}

/// A per-transport username: the scenarios run twice on one server.
fn user(name: &str, via: Via) -> String {
    format!("{name}-{}", format!("{via:?}").to_lowercase())
}

/// `cred` names no session any more: 401 `unauthenticated` with `reason` (or none), and for a
/// bearer token the RFC 6750 challenge.
#[track_caller]
fn assert_dead(res: &Resp, cred: &Cred, reason: Option<&str>) {
    res.assert_error(401, "unauthenticated");
    assert_eq!(
        res.body.get("reason").and_then(Value::as_str),
        reason,
        "{}",
        res.text
    );
    if cred.via == Via::Header {
        assert_eq!(
            res.header("www-authenticate").as_deref(),
            Some(r#"Bearer error="invalid_token""#),
            "{:?}",
            res.headers
        );
    }
}

#[tokio::test]
async fn login_guards_and_logout_work_alike_through_both_transports() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let mut tokens = Vec::new();
    for via in BOTH {
        let t = T::new(&c, via);
        let alice = t.login(ALICE.0, ALICE.1).await;
        tokens.push(alice.token.clone());
        let me = t.get("/me", &alice).await;
        me.assert_status(200);
        assert_eq!(me.body["username"], "alice", "{via:?}");
        assert_eq!(me.body["roles"], json!(["USER"]), "{via:?}");
        assert_eq!(me.header("cache-control").as_deref(), Some("no-store"));
        t.get("/admin", &alice).await.assert_error(403, "forbidden");
        let list = t.get("/sessions", &alice).await;
        list.assert_status(200);
        let current: Vec<_> = list
            .body
            .as_array()
            .expect("a list")
            .iter()
            .filter(|s| s["current"] == true)
            .collect();
        assert_eq!(current.len(), 1, "{via:?}: {}", list.text);
        assert_ne!(
            current[0]["id"],
            alice.token.as_str(),
            "the handle is not the token"
        );
        t.get("/history", &alice).await.assert_status(200);

        let admin = t.login(ADMIN.0, ADMIN.1).await;
        t.get("/admin", &admin).await.assert_status(200);
        t.get("/admin/users/alice/history", &admin)
            .await
            .assert_status(200);

        // Logout ends the session; a header client has no cookie to expire.
        let res = t
            .send(Method::POST, "/logout", Some(&alice), None, &[])
            .await;
        res.assert_status(204);
        if via == Via::Cookie {
            assert!(res.set_cookies().iter().any(|c| c.expires_cookie()));
        }
        assert_dead(&t.get("/me", &alice).await, &alice, Some("logged_out"));
        t.send(Method::POST, "/logout", Some(&alice), None, &[])
            .await
            .assert_error(401, "unauthenticated");
        tokens.push(admin.token);
    }
    // No token of either transport in the server's output.
    assert_no_tokens_in_logs(&server, &tokens);
}

#[tokio::test]
async fn fresh_login_routes_and_rotation_hand_a_header_client_its_token_in_the_body() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("STEP_UP_SECS", 1)
        .start()
        .await;
    let c = server.client();
    // Two sessions per transport, then one wait: both are stale.
    let mut users = Vec::new();
    for via in BOTH {
        let t = T::new(&c, via);
        let name = user("step", via);
        let here = t.new_user(&name, "a-long-password-1").await;
        let other = t.login(&name, "a-long-password-1").await;
        users.push((via, name, here, other));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (via, name, here, other) in users {
        let t = T::new(&c, via);
        t.delete("/sessions/others", &here)
            .await
            .assert_error(401, "reauthentication_required");
        let password =
            json!({"current_password": "a-long-password-1", "new_password": "a-long-password-2"});
        t.put("/password", &here, password.clone())
            .await
            .assert_error(401, "reauthentication_required");

        // Re-authentication rotates the token: a cookie, or "token" in the body.
        let res = t
            .post("/reauth", &here, json!({"password": "a-long-password-1"}))
            .await;
        res.assert_status(200);
        assert_eq!(res.body["username"], name.as_str());
        let fresh = t.issued(&res).expect("reauth hands out a new token");
        assert_ne!(fresh.token, here.token, "{via:?}: reauth kept the token");
        assert_dead(&t.get("/me", &here).await, &here, None);
        t.get("/me", &fresh).await.assert_status(200);

        // Fresh now: the password change answers 204 + cookie, or 200 {"token"}.
        let res = t.put("/password", &fresh, password).await;
        let renewed = match via {
            Via::Cookie => {
                res.assert_status(204);
                t.issued(&res).expect("a new cookie")
            }
            Via::Header => {
                res.assert_status(200);
                t.issued(&res).expect("a new token in the body")
            }
        };
        assert_ne!(renewed.token, fresh.token);
        assert_dead(&t.get("/me", &fresh).await, &fresh, None);
        assert_dead(
            &t.get("/me", &other).await,
            &other,
            Some("password_changed"),
        );
        t.get("/me", &renewed).await.assert_status(200);
        t.delete("/sessions/others", &renewed)
            .await
            .assert_status(204);
    }
}

#[tokio::test]
async fn a_session_revoked_by_its_handle_is_refused_to_a_bearer_client() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    // Each transport revokes a session of the other.
    for (by, of) in [(Via::Cookie, Via::Header), (Via::Header, Via::Cookie)] {
        let (revoker, victim) = (T::new(&c, by), T::new(&c, of));
        let name = user("rev", by);
        let me = revoker.new_user(&name, "a-long-password-1").await;
        let target = victim.login(&name, "a-long-password-1").await;
        let id = other_session_id(&revoker.get("/sessions", &me).await);
        revoker
            .delete(&format!("/sessions/{id}"), &me)
            .await
            .assert_status(204);
        assert_dead(&victim.get("/me", &target).await, &target, Some("revoked"));
        revoker.get("/me", &me).await.assert_status(200);
    }
    // An admin through the header ends every session of a user, whatever their transport.
    let admin = T::new(&c, Via::Header).login(ADMIN.0, ADMIN.1).await;
    let name = user("gone", Via::Header);
    let by_header = T::new(&c, Via::Header)
        .new_user(&name, "a-long-password-1")
        .await;
    let by_cookie = T::new(&c, Via::Cookie)
        .login(&name, "a-long-password-1")
        .await;
    let t = T::new(&c, Via::Header);
    t.put(
        &format!("/admin/users/{name}/roles"),
        &admin,
        json!({"roles": ["USER", "AUDITOR"]}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        t.get("/me", &by_header).await.body["roles"],
        json!(["AUDITOR", "USER"])
    );
    t.delete(&format!("/admin/users/{name}/sessions"), &admin)
        .await
        .assert_status(204);
    for cred in [&by_header, &by_cookie] {
        let res = T::new(&c, cred.via).get("/me", cred).await;
        assert_dead(&res, cred, Some("revoked"));
    }
}

#[tokio::test]
async fn the_per_user_limit_counts_both_transports_and_evicts_the_oldest() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("SESSION_MAX_PER_USER", 2)
        .start()
        .await;
    let c = server.client();
    for first in BOTH {
        let second = if first == Via::Cookie {
            Via::Header
        } else {
            Via::Cookie
        };
        let name = user("lim", first);
        let oldest = T::new(&c, first).new_user(&name, "a-long-password-1").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let middle = T::new(&c, second).login(&name, "a-long-password-1").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newest = T::new(&c, first).login(&name, "a-long-password-1").await;
        let res = T::new(&c, first).get("/me", &oldest).await;
        assert_dead(&res, &oldest, Some("evicted"));
        for cred in [&middle, &newest] {
            T::new(&c, cred.via)
                .get("/me", cred)
                .await
                .assert_status(200);
        }
        let list = T::new(&c, first).get("/sessions", &newest).await;
        assert_eq!(list.body.as_array().map(Vec::len), Some(2), "{}", list.text);
    }
}

#[tokio::test]
async fn a_dead_or_malformed_bearer_token_is_401_with_the_challenge_never_a_5xx() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let t = T::new(&c, Via::Header);
    // A token nobody issued: invalid_token, and no reason (it never named a session).
    let unknown = Cred {
        via: Via::Header,
        token: unknown_token(),
    };
    for path in ["/me", "/admin", "/sessions"] {
        assert_dead(&t.get(path, &unknown).await, &unknown, None);
    }
    let res = t.post("/reauth", &unknown, json!({"password": "x"})).await;
    assert_dead(&res, &unknown, None);
    // Malformed values are no token: 401, never a 5xx, never a cookie.
    let long = format!("Bearer {}", "A".repeat(8000));
    let values = [
        "Bearer",
        "Bearer garbage",
        "Bearer %%%%",
        long.as_str(),
        "Bearer a b c",
    ];
    for value in values {
        let res = c
            .send(Method::GET, "/me", None, None, &[("authorization", value)])
            .await;
        assert_not_5xx(&res, value);
        res.assert_error(401, "unauthenticated");
        assert!(
            res.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{value:?}: {:?}",
            res.headers
        );
    }
    // Non-UTF-8 bytes in the header, which reqwest will not send.
    let raw = raw_request(
        server.port(),
        b"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("an answer");
    assert_eq!(raw.status, 401, "{}", raw.head);
    // Another scheme is not ours, and no token at all may carry a plain challenge.
    let res = c
        .send(
            Method::GET,
            "/me",
            None,
            None,
            &[("authorization", "Basic YTpi")],
        )
        .await;
    res.assert_error(401, "unauthenticated");
    let plain = c.get("/me", None).await;
    plain.assert_error(401, "unauthenticated");
    assert_eq!(plain.header("www-authenticate").as_deref(), Some("Bearer"));
    // Any case of the scheme.
    let live = t.login(ALICE.0, ALICE.1).await;
    let lower = format!("bearer {}", live.token);
    c.send(Method::GET, "/me", None, None, &[("authorization", &lower)])
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_request_with_both_a_cookie_and_a_bearer_token_is_refused() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let cookie = T::new(&c, Via::Cookie).login(ALICE.0, ALICE.1).await;
    let header = T::new(&c, Via::Header).login(ALICE.0, ALICE.1).await;
    let jar = c.cookie(&cookie.token);
    let (name, value) = bearer(&header.token);
    let both = [(name, value.as_str())];
    for (method, path) in [
        (Method::GET, "/me"),
        (Method::GET, "/admin"),
        (Method::POST, "/logout"),
        (Method::DELETE, "/sessions"),
    ] {
        let res = c.send(method, path, Some(&jar), None, &both).await;
        res.assert_error(400, "bad_request");
        assert!(res.set_cookies().is_empty(), "{path}: {:?}", res.headers);
    }
    // The same token in both: refused too, never guessed.
    let same = bearer(&cookie.token);
    c.send(
        Method::GET,
        "/me",
        Some(&jar),
        None,
        &[(same.0, same.1.as_str())],
    )
    .await
    .assert_error(400, "bad_request");
    // The refusals ended nothing (the logout and DELETE /sessions did not run).
    T::new(&c, Via::Cookie)
        .get("/me", &cookie)
        .await
        .assert_status(200);
    T::new(&c, Via::Header)
        .get("/me", &header)
        .await
        .assert_status(200);
    // A malformed session cookie next to a bearer token is no cookie: the bearer one counts.
    let junk = c.cookie("garbage");
    c.send(Method::GET, "/me", Some(&junk), None, &both)
        .await
        .assert_status(200);
}

#[tokio::test]
async fn csrf_is_skipped_for_a_bearer_token_and_enforced_for_the_cookie() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let cross_site: [(&str, &str); 2] = [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    for via in BOTH {
        let t = T::new(&c, via);
        let name = user("csrf", via);
        let cred = t.new_user(&name, "a-long-password-1").await;
        let res = t
            .send(
                Method::POST,
                "/reauth",
                Some(&cred),
                Some(json!({"password": "a-long-password-1"})),
                &cross_site,
            )
            .await;
        match via {
            Via::Cookie => {
                res.assert_error(403, "csrf");
                t.get("/me", &cred).await.assert_status(200);
            }
            Via::Header => {
                res.assert_status(200);
                let rotated = t.issued(&res).expect("a new token");
                let res = t
                    .send(Method::POST, "/logout", Some(&rotated), None, &cross_site)
                    .await;
                res.assert_status(204);
                assert_dead(&t.get("/me", &rotated).await, &rotated, Some("logged_out"));
            }
        }
    }
    // Neither a cookie nor a (well-formed) bearer token: checked, the login included.
    let login = json!({"username": ALICE.0, "password": ALICE.1, "transport": "header"});
    for extra in [&[][..], &[("authorization", "Bearer garbage")][..]] {
        let headers: Vec<_> = cross_site.iter().chain(extra).copied().collect();
        c.send(
            Method::POST,
            "/login",
            None,
            Some(Body::Json(login.clone())),
            &headers,
        )
        .await
        .assert_error(403, "csrf");
    }
}

#[tokio::test]
async fn a_header_login_sets_no_cookie_and_an_unknown_transport_is_a_bad_request() {
    let server = ServerBuilder::memory().start().await;
    let c = server.client();
    let res = c
        .post(
            "/login",
            None,
            json!({"username": ALICE.0, "password": ALICE.1, "transport": "header", "remember": true}),
        )
        .await;
    res.assert_status(200);
    assert!(res.headers.get("set-cookie").is_none(), "{:?}", res.headers);
    assert_eq!(res.body["token"].as_str().map(str::len), Some(TOKEN_LEN));
    // A bearer client's login (no "transport"): the header is its transport, so no cookie.
    let token = res.body["token"].as_str().unwrap().to_owned();
    let (name, value) = bearer(&token);
    let res = c
        .send(
            Method::POST,
            "/login",
            None,
            Some(Body::Json(
                json!({"username": ALICE.0, "password": ALICE.1}),
            )),
            &[(name, value.as_str())],
        )
        .await;
    res.assert_status(200);
    assert!(res.headers.get("set-cookie").is_none(), "{:?}", res.headers);
    let again = res.body["token"].as_str().expect("a token in the body");
    assert_ne!(again, token, "login always issues a new token");
    // The failed login's answer says nothing of a token.
    let res = c
        .post(
            "/login",
            None,
            json!({"username": ALICE.0, "password": "wrong-password", "transport": "header"}),
        )
        .await;
    res.assert_error(401, "invalid_credentials");
    assert!(res.body.get("token").is_none());
    c.post(
        "/login",
        None,
        json!({"username": ALICE.0, "password": ALICE.1, "transport": "pigeon"}),
    )
    .await
    .assert_error(400, "bad_request");
}

#[tokio::test]
async fn passkey_step_up_and_impersonation_hand_a_header_client_its_token_in_the_body() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    for via in BOTH {
        let t = T::new(&c, via);
        let name = user("pk", via);
        let by_password = t.new_user(&name, "a-long-password-1").await;
        t.get("/vault", &by_password)
            .await
            .assert_error(401, "reauthentication_required");
        let assertion = json!({ "assertion": format!("{name}-passkey") });
        let res = t.post("/reauth/passkey", &by_password, assertion).await;
        res.assert_status(200);
        let by_passkey = t.issued(&res).expect("a passkey re-authentication's token");
        assert_dead(&t.get("/me", &by_password).await, &by_password, None);
        t.get("/vault", &by_passkey).await.assert_status(200);

        // Impersonation and its end: each hands out a new session.
        let admin = t.login(ADMIN.0, ADMIN.1).await;
        let res = t
            .send(
                Method::POST,
                &format!("/admin/impersonate/{name}"),
                Some(&admin),
                None,
                &[],
            )
            .await;
        res.assert_status(200);
        let acting = t.issued(&res).expect("an impersonation session's token");
        let me = t.get("/me", &acting).await;
        assert_eq!(
            (
                me.body["username"].as_str(),
                me.body["impersonated_by"].as_str()
            ),
            (Some(name.as_str()), Some("admin"))
        );
        t.post("/reauth", &acting, json!({"password": "a-long-password-1"}))
            .await
            .assert_error(403, "forbidden");
        let res = t
            .send(
                Method::POST,
                "/impersonation/stop",
                Some(&acting),
                None,
                &[],
            )
            .await;
        res.assert_status(200);
        let back = t.issued(&res).expect("the admin's new session's token");
        assert_dead(&t.get("/me", &acting).await, &acting, Some("logged_out"));
        assert_eq!(t.get("/me", &back).await.body["username"], "admin");
    }
}
