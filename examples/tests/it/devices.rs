//! Contract version 3, "Remember me" and "Devices": a remembered login's persistent cookie and
//! its own limits, and what `GET /sessions` shows of each device.

use crate::support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::*;

/// `POST /login` with `body` and a `User-Agent`; the answer.
async fn login_as(c: &Client, body: serde_json::Value, user_agent: &str) -> Resp {
    c.send(
        Method::POST,
        "/login",
        None,
        Some(Body::Json(body)),
        &[("user-agent", user_agent)],
    )
    .await
}

fn alice(remember: bool) -> serde_json::Value {
    json!({"username": ALICE.0, "password": ALICE.1, "remember": remember})
}

#[tokio::test]
async fn remembered_logins_get_a_persistent_cookie_and_their_own_limits() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("SESSION_IDLE_SECS", 2)
        .env("SESSION_ABSOLUTE_SECS", 60)
        .env("SESSION_REMEMBER_IDLE_SECS", 60)
        .env("SESSION_REMEMBER_ABSOLUTE_SECS", 4)
        .start()
        .await;
    let c = server.client();
    let ordinary = login_as(&c, alice(false), "test").await;
    ordinary.assert_status(200);
    let remembered = login_as(&c, alice(true), "test").await;
    remembered.assert_status(200);
    let start = Instant::now();
    let set = ordinary.set_cookies().into_iter().next().expect("a cookie");
    assert!(
        set.attr("Max-Age").is_none() && set.attr("Expires").is_none(),
        "an ordinary login's cookie must end with the browser: {}",
        set.raw
    );
    let set_r = remembered
        .set_cookies()
        .into_iter()
        .next()
        .expect("a cookie");
    let max_age: u64 = set_r
        .attr("Max-Age")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a remembered login's cookie has no Max-Age: {}", set_r.raw));
    assert!((1..=4).contains(&max_age), "{}", set_r.raw);
    let ordinary = c.new_cookie(&ordinary).expect("cookie");
    let remembered = c.new_cookie(&remembered).expect("cookie");

    // The ordinary session idles out after 2 s; the remembered one, used every 0.5 s, lives
    // until its own 4 s absolute deadline, and not past it.
    let mut checked_ordinary = false;
    let mut ended_at = None;
    while start.elapsed() < Duration::from_millis(6000) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = start.elapsed();
        if !checked_ordinary && t >= Duration::from_millis(2600) {
            c.get("/me", Some(&ordinary))
                .await
                .assert_error(401, "unauthenticated");
            checked_ordinary = true;
        }
        let res = c.get("/me", Some(&remembered)).await;
        match (res.status, ended_at) {
            (200, None) => assert!(
                t < Duration::from_millis(4300),
                "the remembered session was alive {t:?} after login (its absolute limit: 4 s)"
            ),
            (401, None) => {
                assert!(
                    t >= Duration::from_millis(3500),
                    "the remembered session ended at {t:?}, before its 4 s limit"
                );
                ended_at = Some(t);
            }
            (401, Some(_)) => break,
            (s, _) => panic!("unexpected {s} at {t:?}: {}", res.text),
        }
    }
    assert!(checked_ordinary && ended_at.is_some(), "{ended_at:?}");
}

#[tokio::test]
async fn the_session_list_shows_each_device_most_recently_used_first() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let agents = [
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", "Linux"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Windows"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "Safari", "iOS"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", "Safari", "Mac"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome", "Android"),
    ];
    // 100 logins from 5 devices (the per-user limit keeps the newest 10 sessions). The
    // first login ever is not from a new device; the first from each other device is.
    let mut last = None;
    let mut new_devices = Vec::new();
    for i in 0..100 {
        let (ua, _, _) = agents[i % agents.len()];
        let res = login_as(&c, alice(i % 2 == 0), ua).await;
        res.assert_status(200);
        if res.body["new_device"] == true {
            new_devices.push(i);
        }
        last = c.new_cookie(&res);
    }
    assert_eq!(new_devices, [1, 2, 3, 4], "new-device answers");
    let last = last.expect("a cookie");
    let list = c.get("/sessions", Some(&last)).await;
    list.assert_status(200);
    let entries = list.body.as_array().expect("an array");
    assert_eq!(entries.len(), 10, "{}", list.text);
    let devices: HashSet<(String, String, String)> = entries
        .iter()
        .map(|e| {
            let s = |k: &str| {
                e[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {e}"))
                    .to_owned()
            };
            (s("browser"), s("os"), s("network"))
        })
        .collect();
    assert_eq!(devices.len(), 5, "{devices:?}");
    for (_, browser, os) in agents {
        assert!(
            devices
                .iter()
                .any(|(b, o, _)| b.contains(browser) && o.contains(os)),
            "{browser} on {os} missing from {devices:?}"
        );
    }
    for e in entries {
        assert_eq!(e["network"], "127.0.0.0/24", "never the whole address: {e}");
        assert!(
            e["remembered"].is_boolean() && e["new_device"].is_boolean(),
            "{e}"
        );
    }
    // The newest login is the current session; the list runs from the most recently used.
    assert_eq!(entries[0]["current"], true, "{}", list.text);
    assert_eq!(entries.iter().filter(|e| e["current"] == true).count(), 1);
    let seen: Vec<&str> = entries
        .iter()
        .map(|e| e["last_seen_at"].as_str().expect("a time"))
        .collect();
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "not the most recently used first");
    // A login without a User-Agent has no browser or system.
    let bare = c.post("/login", None, alice(false)).await;
    bare.assert_status(200);
    let bare = c.new_cookie(&bare).expect("cookie");
    let list = c.get("/sessions", Some(&bare)).await;
    let this = list
        .body
        .as_array()
        .and_then(|a| a.iter().find(|e| e["current"] == true))
        .expect("the current session listed")
        .clone();
    assert!(this["browser"].is_null() && this["os"].is_null(), "{this}");
}

#[tokio::test]
async fn the_login_history_is_bounded_and_a_new_device_is_told_once() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("HISTORY_MAX", 30)
        .env("SESSION_MAX_PER_USER", 3)
        .start()
        .await;
    let c = server.client();
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    let mark = server.logs().len();
    let mut last = None;
    for _ in 0..20 {
        let res = login_as(&c, alice(false), firefox).await;
        res.assert_status(200);
        assert_eq!(res.body["new_device"], false, "{}", res.text);
        last = c.new_cookie(&res);
    }
    let wrong = json!({"username": ALICE.0, "password": "wrong-password"});
    login_as(&c, wrong, firefox)
        .await
        .assert_error(401, "invalid_credentials");
    // Another device: told once, on its first login only.
    let res = login_as(&c, alice(false), chrome).await;
    assert_eq!(res.body["new_device"], true, "{}", res.text);
    let res = login_as(&c, alice(false), chrome).await;
    assert_eq!(res.body["new_device"], false, "{}", res.text);
    let chrome_cookie = c.new_cookie(&res).expect("cookie");
    let logs = server.logs()[mark..].to_owned();
    let told = logs
        .lines()
        .filter(|l| l.contains("new device") && l.contains("alice"))
        .count();
    assert_eq!(told, 1, "one log line for the one new device:\n{logs}");

    // 20 + 2 logins, 19 evictions, 1 failure: more than 30; the newest 30, newest first.
    let history = c.get("/history", Some(&chrome_cookie)).await;
    history.assert_status(200);
    let entries = history.body.as_array().expect("an array").clone();
    assert_eq!(entries.len(), 30, "{}", history.text);
    let events: Vec<&str> = entries
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(events[0], "login", "{events:?}");
    assert!(events.contains(&"login_failed"), "{events:?}");
    assert!(events.contains(&"evicted"), "{events:?}");
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["at"].as_str().expect("a time"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    let failed = entries
        .iter()
        .find(|e| e["event"] == "login_failed")
        .expect("the failure");
    assert_eq!(failed["browser"], "Firefox", "{failed}");
    assert_eq!(failed["network"], "127.0.0.0/24", "{failed}");
    for e in &entries {
        let text = e.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("password"),
            "{text}"
        );
    }
    // A logout and a revocation are recorded too.
    c.post_empty("/logout", last.as_ref())
        .await
        .assert_status(204);
    let top = c.get("/history", Some(&chrome_cookie)).await;
    assert_eq!(top.body[0]["event"], "logout", "{}", top.text);

    // An admin reads it; a user cannot read another's; unknown users are 404.
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let seen = c.get("/admin/users/alice/history", Some(&admin)).await;
    seen.assert_status(200);
    assert_eq!(
        seen.body,
        c.get("/history", Some(&chrome_cookie)).await.body
    );
    c.get("/admin/users/nobody-here/history", Some(&admin))
        .await
        .assert_error(404, "not_found");
    c.get("/admin/users/admin/history", Some(&chrome_cookie))
        .await
        .assert_error(403, "forbidden");
    c.get("/history", None)
        .await
        .assert_error(401, "unauthenticated");
}
