//! Version 2 of the contract: step-up re-authentication (`POST /reauth`, `STEP_UP_SECS`), the
//! password change, "end my other sessions", the `user_agent` of each listed session, and the
//! last admin keeping ADMIN.

use crate::support;

use std::time::Duration;

use support::*;

/// A server on its own Redis whose sessions stay fresh for `step_up` seconds.
async fn server(redis: &RedisServer, step_up: u64) -> Server {
    ServerBuilder::redis(redis.url())
        .env("STEP_UP_SECS", step_up)
        .env("LOGIN_MAX_FAILURES", 3)
        .env("LOGIN_LOCKOUT_SECS", 30)
        .start()
        .await
}

async fn reauth(c: &Client, cookie: &Cookie, password: &str) -> Resp {
    c.post("/reauth", Some(cookie), json!({ "password": password }))
        .await
}

async fn change_password(c: &Client, cookie: &Cookie, current: &str, new: &str) -> Resp {
    c.put(
        "/password",
        Some(cookie),
        json!({ "current_password": current, "new_password": new }),
    )
    .await
}

#[tokio::test]
async fn reauth_gives_a_new_token_and_the_old_one_stops_working() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    let old = c.login_ok(ALICE.0, ALICE.1).await;
    let res = reauth(&c, &old, ALICE.1).await;
    res.assert_status(200);
    assert_eq!(res.body["username"], "alice");
    assert_eq!(res.body["roles"], json!(["USER"]));
    let new = c
        .new_cookie(&res)
        .expect("reauth sets a new session cookie");
    assert_ne!(new.value, old.value, "reauth kept the token");
    assert_eq!(
        res.header("cache-control").as_deref(),
        Some("no-store"),
        "a cookie-setting answer must not be cached"
    );
    c.get("/me", Some(&old))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(c.me_status(&new).await, 200);
    // One session, under its new handle.
    let list = c.get("/sessions", Some(&new)).await;
    list.assert_status(200);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    assert_eq!(list.body[0]["current"], true);
}

#[tokio::test]
async fn reauth_needs_a_login() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    c.post("/reauth", None, json!({ "password": ALICE.1 }))
        .await
        .assert_error(401, "unauthenticated");
    let forged = c.cookie(&unknown_token());
    reauth(&c, &forged, ALICE.1)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn reauth_with_a_wrong_password_is_refused_and_counts_toward_the_lockout() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    for _ in 0..3 {
        let res = reauth(&c, &cookie, "wrong-password").await;
        res.assert_error(401, "invalid_credentials");
        assert!(c.new_cookie(&res).is_none(), "a failed reauth set a cookie");
    }
    // Locked now: the right password too, on /reauth and on /login.
    let res = reauth(&c, &cookie, ALICE.1).await;
    res.assert_error(429, "too_many_attempts");
    assert!(res.header("retry-after").is_some());
    let res = c.login(ALICE.0, ALICE.1).await.unwrap_err();
    res.assert_error(429, "too_many_attempts");
    // The session itself is not ended by failed re-authentications.
    assert_eq!(c.me_status(&cookie).await, 200);
}

#[tokio::test]
async fn password_change_needs_a_fresh_session_and_changes_nothing_without_one() {
    let redis = redis();
    let server = server(&redis, 1).await;
    let c = server.client();
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let res = change_password(&c, &cookie, ALICE.1, "brand-new-password").await;
    res.assert_error(401, "reauthentication_required");
    assert!(c.new_cookie(&res).is_none());
    // Nothing changed: the session lives, the old password still logs in.
    assert_eq!(c.me_status(&cookie).await, 200);
    let other = c.login_ok(ALICE.0, ALICE.1).await;
    // Re-authenticating makes it fresh again.
    let res = reauth(&c, &cookie, ALICE.1).await;
    res.assert_status(200);
    let fresh = c.new_cookie(&res).expect("new cookie");
    change_password(&c, &fresh, ALICE.1, "brand-new-password")
        .await
        .assert_status(204);
    assert_eq!(c.me_status(&other).await, 401);
}

#[tokio::test]
async fn password_change_ends_every_other_session_and_the_old_password_stops_working() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    let mine = c.login_ok(ALICE.0, ALICE.1).await;
    let phone = c.login_ok(ALICE.0, ALICE.1).await;
    let laptop = c.login_ok(ALICE.0, ALICE.1).await;
    let bob = {
        c.register("bob-the-user", "bob-password")
            .await
            .assert_status(201);
        c.login_ok("bob-the-user", "bob-password").await
    };
    let res = change_password(&c, &mine, ALICE.1, "alice-new-password").await;
    res.assert_status(204);
    let new = c.new_cookie(&res).expect("204 with a new session cookie");
    assert_ne!(new.value, mine.value);
    assert_eq!(c.me_status(&mine).await, 401, "the old token still works");
    assert_eq!(c.me_status(&new).await, 200);
    for other in [&phone, &laptop] {
        assert_eq!(c.me_status(other).await, 401, "another session survived");
    }
    assert_eq!(c.me_status(&bob).await, 200, "another user's session ended");
    let list = c.get("/sessions", Some(&new)).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    c.login(ALICE.0, ALICE.1)
        .await
        .unwrap_err()
        .assert_error(401, "invalid_credentials");
    c.login_ok(ALICE.0, "alice-new-password").await;
}

#[tokio::test]
async fn password_change_refuses_a_wrong_current_password_and_a_bad_new_one() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    let other = c.login_ok(ALICE.0, ALICE.1).await;
    change_password(&c, &cookie, "wrong-password", "alice-new-password")
        .await
        .assert_error(401, "invalid_credentials");
    change_password(&c, &cookie, ALICE.1, "short")
        .await
        .assert_error(400, "bad_request");
    change_password(&c, &cookie, ALICE.1, &"x".repeat(129))
        .await
        .assert_error(400, "bad_request");
    // Nothing changed.
    assert_eq!(c.me_status(&other).await, 200);
    assert_eq!(c.me_status(&cookie).await, 200);
    c.login_ok(ALICE.0, ALICE.1).await;
    c.put(
        "/password",
        None,
        json!({"current_password": ALICE.1, "new_password": "whatever-123"}),
    )
    .await
    .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn ending_the_other_sessions_needs_freshness_and_keeps_this_one() {
    let redis = redis();
    let server = server(&redis, 1).await;
    let c = server.client();
    let mine = c.login_ok(ALICE.0, ALICE.1).await;
    let other = c.login_ok(ALICE.0, ALICE.1).await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    c.delete("/sessions/others", Some(&mine))
        .await
        .assert_error(401, "reauthentication_required");
    assert_eq!(
        c.me_status(&other).await,
        200,
        "a stale session ended others"
    );
    let res = reauth(&c, &mine, ALICE.1).await;
    let mine = c.new_cookie(&res).expect("new cookie");
    c.delete("/sessions/others", Some(&mine))
        .await
        .assert_status(204);
    assert_eq!(c.me_status(&other).await, 401);
    assert_eq!(c.me_status(&mine).await, 200);
    assert_eq!(c.me_status(&admin).await, 200);
    c.delete("/sessions/others", None)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn sessions_list_the_user_agent_of_their_login_cut_to_256_characters() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    let long = format!("Mozilla/5.0 (Test) {}", "x".repeat(400));
    let login = |ua: Option<String>| {
        let c = c.clone();
        async move {
            let headers: Vec<(&str, &str)> = match &ua {
                Some(ua) => vec![("user-agent", ua.as_str())],
                None => vec![],
            };
            let body = Body::Json(json!({"username": ALICE.0, "password": ALICE.1}));
            let res = c
                .send(Method::POST, "/login", None, Some(body), &headers)
                .await;
            res.assert_status(200);
            c.new_cookie(&res).expect("cookie")
        }
    };
    let without = login(None).await;
    let _short = login(Some("curl/8.5.0".to_owned())).await;
    let _long = login(Some(long.clone())).await;
    let list = c.get("/sessions", Some(&without)).await;
    list.assert_status(200);
    let mut agents: Vec<String> = list
        .body
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["user_agent"].to_string())
        .collect();
    agents.sort();
    let cut: String = long.chars().take(256).collect();
    let mut expected = [Value::Null, json!("curl/8.5.0"), json!(cut)].map(|v| v.to_string());
    expected.sort();
    assert_eq!(agents, expected);
}

#[tokio::test]
async fn the_last_admin_cannot_remove_their_own_admin_role() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let res = c
        .put(
            "/admin/users/admin/roles",
            Some(&admin),
            json!({"roles": ["USER"]}),
        )
        .await;
    res.assert_error(409, "conflict");
    assert_eq!(c.get("/admin", Some(&admin)).await.status, 200);
    let fresh_login = c.login_ok(ADMIN.0, ADMIN.1).await;
    assert_eq!(c.get("/admin", Some(&fresh_login)).await.status, 200);
    // With a second admin, giving it up is allowed.
    c.put(
        "/admin/users/alice/roles",
        Some(&admin),
        json!({"roles": ["USER", "ADMIN"]}),
    )
    .await
    .assert_status(204);
    c.put(
        "/admin/users/admin/roles",
        Some(&admin),
        json!({"roles": ["USER"]}),
    )
    .await
    .assert_status(204);
    assert_eq!(c.get("/admin", Some(&admin)).await.status, 403);
    // Now alice is the last admin.
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.put(
        "/admin/users/alice/roles",
        Some(&alice),
        json!({"roles": []}),
    )
    .await
    .assert_error(409, "conflict");
}

/// Security round 3: two admins demoting themselves at the same moment left no admin in 9 of
/// 10 rounds. The rule is now one atomic step: in every round exactly one of them succeeds.
#[tokio::test]
async fn two_admins_demoting_themselves_at_once_leave_one_admin() {
    let redis = redis();
    let server = server(&redis, 300).await;
    let c = server.client();
    let admin = c.login_ok("admin", "admin-password").await;
    let admin_roles = json!({"roles": ["USER", "ADMIN"]});
    c.put(
        "/admin/users/alice/roles",
        Some(&admin),
        admin_roles.clone(),
    )
    .await
    .assert_status(204);
    for round in 0..10 {
        let (a, b) = (
            c.login_ok("admin", "admin-password").await,
            c.login_ok(ALICE.0, ALICE.1).await,
        );
        let demote = |cookie: Cookie, user: &'static str| {
            let c = c.clone();
            async move {
                c.put(
                    &format!("/admin/users/{user}/roles"),
                    Some(&cookie),
                    json!({"roles": ["USER"]}),
                )
                .await
                .status
            }
        };
        let (sa, sb) = tokio::join!(demote(a.clone(), "admin"), demote(b.clone(), "alice"));
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(
            statuses,
            [204, 409],
            "round {round}: both or neither demoted"
        );
        // The one still an admin gives ADMIN back to the other.
        let (keeper, other) = if sa == 409 {
            (a, "alice")
        } else {
            (b, "admin")
        };
        c.put(
            &format!("/admin/users/{other}/roles"),
            Some(&keeper),
            admin_roles.clone(),
        )
        .await
        .assert_status(204);
    }
}

/// The race of the third security round: clients loop `POST /login` with the old password
/// while the victim changes it. Every login that answered 200 (before or after the change) must
/// name no session once `PUT /password` has answered: the change ends the sessions that exist
/// and gives the user a new login epoch, which refuses the sessions of logins still checking
/// the old password. 100 trials, with the session cache and without (the binary under test:
/// `DEMO_BIN` picks the framework).
#[tokio::test]
async fn no_login_with_the_old_password_outlives_a_password_change() {
    let redis = redis();
    for cache in ["on", "off"] {
        let server = ServerBuilder::redis(redis.url())
            .env("SESSION_CACHE", cache)
            .env("LOGIN_MAX_FAILURES", 1_000_000)
            .start()
            .await;
        let c = server.client();
        let mut logins_seen = 0;
        for trial in 0..50 {
            let user = format!("victim-{cache}-{trial}");
            let old = "old-password-1";
            c.register(&user, old).await.assert_status(201);
            let victim = c.login_ok(&user, old).await;
            let changed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let loopers: Vec<_> = (0..2)
                .map(|_| {
                    let (c, user, changed) = (c.clone(), user.clone(), changed.clone());
                    tokio::spawn(async move {
                        let mut cookies = Vec::new();
                        // Until a login refused after the change: from then on the old
                        // password is known to be dead.
                        for _ in 0..200 {
                            let after = changed.load(std::sync::atomic::Ordering::SeqCst);
                            match c.login(&user, old).await {
                                Ok(cookie) => cookies.push(cookie),
                                Err(res) => {
                                    res.assert_error(401, "invalid_credentials");
                                    if after {
                                        break;
                                    }
                                }
                            }
                        }
                        cookies
                    })
                })
                .collect();
            // Let the loopers get going, so that some of their logins are in flight.
            tokio::time::sleep(Duration::from_millis(20 + trial % 7 * 10)).await;
            change_password(&c, &victim, old, "new-password-1")
                .await
                .assert_status(204);
            changed.store(true, std::sync::atomic::Ordering::SeqCst);
            for looper in loopers {
                for cookie in looper.await.expect("looper") {
                    logins_seen += 1;
                    let me = c.get("/me", Some(&cookie)).await;
                    assert_eq!(
                        me.status, 401,
                        "trial {trial} (cache {cache}): a session of a login with the old \
                         password outlived the password change"
                    );
                }
            }
        }
        assert!(
            logins_seen > 0,
            "the loopers never logged in: no race was run"
        );
    }
}

/// Contract version 3, "Step-up by method": `GET /vault` opens only for a session whose last
/// proof within `STEP_UP_SECS` was a passkey. A fresh login by password and a fresh password
/// re-authentication are refused with 401 `reauthentication_required` naming `passkey`; a
/// wrong assertion is `invalid_credentials`; a right one gives a new token (the old one stops
/// working) and opens the vault, until the step-up window has passed.
#[tokio::test]
async fn a_route_that_asks_for_a_passkey_refuses_a_password_and_accepts_a_passkey() {
    let redis = redis();
    let server = server(&redis, 2).await;
    let c = server.client();
    let by_password = c.login_ok(ALICE.0, ALICE.1).await;
    let refused = c.get("/vault", Some(&by_password)).await;
    refused.assert_error(401, "reauthentication_required");
    assert_eq!(
        refused.body["methods"],
        json!(["passkey"]),
        "{}",
        refused.body
    );

    let res = reauth(&c, &by_password, ALICE.1).await;
    res.assert_status(200);
    let reauthed = c
        .new_cookie(&res)
        .expect("a new token at re-authentication");
    let refused = c.get("/vault", Some(&reauthed)).await;
    refused.assert_error(401, "reauthentication_required");
    assert_eq!(refused.body["methods"], json!(["passkey"]));

    let passkey = |cookie: &Cookie, assertion: &str| {
        let body = json!({ "assertion": assertion });
        let cookie = cookie.clone();
        let c = &c;
        async move { c.post("/reauth/passkey", Some(&cookie), body).await }
    };
    passkey(&reauthed, "bob-passkey")
        .await
        .assert_error(401, "invalid_credentials");
    let res = passkey(&reauthed, "alice-passkey").await;
    res.assert_status(200);
    assert_eq!(res.body["username"], "alice");
    let by_passkey = c
        .new_cookie(&res)
        .expect("a new token at the passkey re-authentication");
    assert_ne!(by_passkey.value, reauthed.value);
    c.get("/me", Some(&reauthed)).await.assert_status(401);
    let opened = c.get("/vault", Some(&by_passkey)).await;
    opened.assert_status(200);
    assert_eq!(opened.body["username"], "alice");

    // Not for ever: the step-up window (2 s) passes.
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    c.get("/vault", Some(&by_passkey))
        .await
        .assert_error(401, "reauthentication_required");
    c.get("/me", Some(&by_passkey)).await.assert_status(200);
    // The history records both re-authentications and the failed passkey.
    let history = c.get("/history", Some(&by_passkey)).await;
    let events: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "reauth").count(),
        2,
        "{events:?}"
    );
    assert!(events.contains(&"reauth_failed"), "{events:?}");
}
