//! Operations: a burst of concurrent traffic, the audit log, no tokens in the output, graceful
//! shutdown, request logging, and the in-memory store.

use crate::support;

use std::time::Duration;

use support::*;

fn is_audit(line: &str) -> bool {
    line.to_ascii_lowercase().contains("audit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_of_50_logins_and_200_requests_has_no_5xx() {
    let redis = redis();
    // All 50 logins come from one address here (as from users behind one proxy): the share of
    // the password queue one client may hold is lifted to the whole queue, which is what this
    // test is not about (`security::one_client_flooding_logins_leaves_places_for_everyone_else`).
    let server = ServerBuilder::redis(redis.url())
        .env("LOGIN_QUEUE_PER_CLIENT", 64)
        .start()
        .await;
    let c = server.client();
    // 25 users with 2 logins each: login attempts are counted per username before the
    // password is checked (so parallel guesses cannot beat the lockout), hence more than
    // LOGIN_MAX_FAILURES simultaneous logins of ONE user would be refused with 429 by design.
    let users: Vec<String> = (0..25).map(|i| format!("burst{i}")).collect();
    for u in &users {
        c.register(u, "burst-password").await.assert_status(201);
    }
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let c = c.clone();
        let user = users[i % users.len()].clone();
        tasks.spawn(async move {
            let res = c
                .post(
                    "/login",
                    None,
                    json!({"username": user, "password": "burst-password"}),
                )
                .await;
            (format!("login {user}"), res)
        });
    }
    for _ in 0..200 {
        let c = c.clone();
        let admin = admin.clone();
        tasks.spawn(async move { ("GET /me".to_owned(), c.get("/me", Some(&admin)).await) });
    }
    let mut cookies = Vec::new();
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (what, res) = joined.expect("request task");
        if res.status != 200 {
            failures.push(format!("{what}: {} {}", res.status, res.text));
        } else if what.starts_with("login") {
            cookies.push(Cookie {
                name: "session".into(),
                value: res.set_cookies().into_iter().next().expect("cookie").value,
            });
        }
    }
    let server_errors: Vec<&String> = failures.iter().filter(|f| f.contains(": 5")).collect();
    assert!(
        server_errors.is_empty(),
        "{} 5xx answers in the burst: {server_errors:#?}",
        server_errors.len()
    );
    assert!(
        failures.is_empty(),
        "{} non-200 answers in the burst: {failures:#?}",
        failures.len()
    );
    assert_eq!(cookies.len(), 50);
    let distinct: std::collections::BTreeSet<&String> = cookies.iter().map(|c| &c.value).collect();
    assert_eq!(distinct.len(), 50, "two logins got the same token");
    // Each user logged in 10 times (the default limit): every session is alive.
    for cookie in &cookies {
        c.get("/me", Some(cookie)).await.assert_status(200);
    }
    let mut tokens: Vec<String> = cookies.into_iter().map(|c| c.value).collect();
    tokens.push(admin.value);
    assert_no_tokens_in_logs(&server, &tokens);
}

#[tokio::test]
async fn audit_lines_name_the_user_for_login_failure_lockout_logout_revocation_and_denial() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("LOGIN_MAX_FAILURES", 2)
        .env("LOGIN_LOCKOUT_SECS", 60)
        .start()
        .await;
    let c = server.client();
    for u in [
        "ann_x", "bea_x", "cid_x", "dan_x", "eve_x", "fay_x", "gus_x",
    ] {
        c.register(u, "audit-password").await.assert_status(201);
    }
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let mut tokens = vec![admin.value.clone()];
    let wait = Duration::from_secs(3);

    // Each step: mark the log, act, expect a new audit line naming the user and the event
    // (one of `words`, case-insensitive).
    macro_rules! expect_audit {
        ($event:expr, $user:expr, $words:expr, $act:expr) => {{
            let mark = server.logs().len();
            $act;
            let words: &[&str] = $words;
            let line = server
                .wait_for_line(mark, wait, |l| {
                    let lower = l.to_ascii_lowercase();
                    is_audit(l) && l.contains($user) && words.iter().any(|w| lower.contains(w))
                })
                .await;
            assert!(
                line.is_some(),
                "no audit line naming {} for {} (words {:?}); output since:\n{}",
                $user,
                $event,
                words,
                server.logs_since(mark)
            );
        }};
    }

    expect_audit!("a login", "ann_x", &["login"], {
        tokens.push(c.login_ok("ann_x", "audit-password").await.value);
    });
    expect_audit!("a failed login", "bea_x", &["fail"], {
        c.login("bea_x", "wrong-password")
            .await
            .unwrap_err()
            .assert_status(401);
    });
    c.login("cid_x", "wrong-password")
        .await
        .unwrap_err()
        .assert_status(401);
    c.login("cid_x", "wrong-password")
        .await
        .unwrap_err()
        .assert_status(401);
    expect_audit!("a lockout", "cid_x", &["lock"], {
        c.login("cid_x", "audit-password")
            .await
            .unwrap_err()
            .assert_status(429);
    });
    let bye = c.login_ok("dan_x", "audit-password").await;
    tokens.push(bye.value.clone());
    expect_audit!("a logout", "dan_x", &["logout", "ended"], {
        c.post_empty("/logout", Some(&bye)).await.assert_status(204);
    });
    let r1 = c.login_ok("eve_x", "audit-password").await;
    let r2 = c.login_ok("eve_x", "audit-password").await;
    tokens.push(r1.value.clone());
    tokens.push(r2.value.clone());
    let list = c.get("/sessions", Some(&r2)).await;
    let id = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_audit!("a revocation by id", "eve_x", &["revo", "ended"], {
        c.delete(&format!("/sessions/{id}"), Some(&r2))
            .await
            .assert_status(204);
    });
    let b = c.login_ok("fay_x", "audit-password").await;
    tokens.push(b.value.clone());
    expect_audit!("an admin revocation", "fay_x", &["revo", "ended"], {
        c.delete("/admin/users/fay_x/sessions", Some(&admin))
            .await
            .assert_status(204);
    });
    let d = c.login_ok("gus_x", "audit-password").await;
    tokens.push(d.value.clone());
    expect_audit!("a denial", "gus_x", &["den", "refus", "forbid"], {
        c.get("/admin", Some(&d)).await.assert_status(403);
    });

    let logs = server.logs();
    assert!(logs.lines().any(is_audit), "no audit lines at all");
    assert_no_tokens_in_logs(&server, &tokens);
}

#[tokio::test]
async fn no_token_ever_appears_in_the_server_output() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let mut tokens = Vec::new();
    // Values a client sent, including a planted one: request logging must not echo cookies.
    let planted = c.cookie(&"PlantedToken".repeat(5)[..TOKEN_LEN]);
    assert_eq!(planted.value.len(), TOKEN_LEN);
    tokens.push(planted.value.clone());
    let a = c
        .login_with(ALICE.0, ALICE.1, Some(&planted))
        .await
        .unwrap();
    tokens.push(a.value.clone());
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    tokens.push(admin.value.clone());
    c.get("/me", Some(&a)).await.assert_status(200);
    c.get("/admin", Some(&a)).await.assert_status(403);
    c.get("/sessions", Some(&a)).await.assert_status(200);
    c.get("/me", Some(&planted)).await.assert_status(401);
    c.put(
        "/admin/users/alice/roles",
        Some(&admin),
        json!({"roles": ["USER", "ADMIN"]}),
    )
    .await
    .assert_status(204);
    c.get("/admin", Some(&a)).await.assert_status(200);
    c.post_empty("/logout", Some(&a)).await.assert_status(204);
    c.get("/me", Some(&a)).await.assert_status(401);
    c.delete("/admin/users/admin/sessions", Some(&admin))
        .await
        .assert_status(204);
    c.get("/me", Some(&admin)).await.assert_status(401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_no_tokens_in_logs(&server, &tokens);
}

#[tokio::test]
async fn each_request_is_logged() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let mark = server.logs().len();
    c.get("/a-path-to-find-in-the-log", None)
        .await
        .assert_status(404);
    let line = server
        .wait_for_line(mark, Duration::from_secs(3), |l| {
            l.contains("/a-path-to-find-in-the-log")
        })
        .await;
    assert!(
        line.is_some(),
        "the request was not logged; output:\n{}",
        server.logs_since(mark)
    );
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_with_exit_0() {
    let (_redis, mut server) = redis_and_server().await;
    let c = server.client();
    // Leave a keep-alive connection open in the client's pool: shutdown must not wait on it.
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&alice)).await.assert_status(200);
    let status = server.terminate(Duration::from_secs(5)).await;
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running 5 s after SIGTERM; output:\n{}",
            server.log_tail(30)
        )
    });
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}; output:\n{}",
        server.log_tail(30)
    );
    assert!(
        c.try_send(Method::GET, "/health", None, None, &[])
            .await
            .is_err(),
        "still answering after exit"
    );
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let redis = redis();
    let mut server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    // A frozen Redis keeps /me busy until the store's timeout: a request surely in flight.
    redis.pause();
    let in_flight = {
        let c = c.clone();
        let alice = alice.clone();
        tokio::spawn(async move {
            c.try_send(Method::GET, "/me", Some(&alice), None, &[])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("-TERM");
    let res = in_flight
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the request in flight was cut off by SIGTERM: {e}"));
    res.assert_error(503, "store_unavailable");
    redis.resume();
    let status = server.wait_exit(Duration::from_secs(5)).await;
    let status = status
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{}", server.log_tail(30)));
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn sigint_shuts_down_gracefully_with_exit_0() {
    let (_redis, mut server) = redis_and_server().await;
    server
        .client()
        .get("/health", None)
        .await
        .assert_status(200);
    server.signal("-INT");
    let status = server.wait_exit(Duration::from_secs(5)).await;
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running 5 s after SIGINT; output:\n{}",
            server.log_tail(30)
        )
    });
    assert!(status.success(), "exit status after SIGINT: {status}");
}

#[tokio::test]
async fn without_redis_url_the_memory_store_serves_and_says_so() {
    let mut server = ServerBuilder::memory()
        .env("LOGIN_MAX_FAILURES", 2)
        .env("LOGIN_LOCKOUT_SECS", 60)
        .start()
        .await;
    let c = server.client();
    let health = c.get("/health", None).await;
    health.assert_status(200);
    assert_eq!(health.body, json!({"status": "ok", "store": "memory"}));
    let logs = server.logs().to_lowercase();
    assert!(
        logs.lines()
            .any(|l| l.contains("memory") && (l.contains("warn") || l.contains("error"))),
        "no loud (WARN) notice of the in-memory store at start:\n{}",
        server.logs()
    );

    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&alice)).await.assert_status(200);
    c.get("/admin", Some(&alice))
        .await
        .assert_error(403, "forbidden");
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.get("/admin", Some(&admin)).await.assert_status(200);
    c.register("mem_user", "mem-password")
        .await
        .assert_status(201);
    c.login_ok("mem_user", "mem-password").await;
    c.post_empty("/logout", Some(&alice))
        .await
        .assert_status(204);
    c.get("/me", Some(&alice))
        .await
        .assert_error(401, "unauthenticated");
    for _ in 0..2 {
        c.login("alice", "wrong-password")
            .await
            .unwrap_err()
            .assert_status(401);
    }
    c.login(ALICE.0, ALICE.1)
        .await
        .unwrap_err()
        .assert_error(429, "too_many_attempts");
    let status = server.terminate(Duration::from_secs(5)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "memory server did not exit cleanly: {status:?}"
    );
}

/// One sample of the Prometheus text format: `name{label="value",...} number`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (0.0.4): comment lines skipped, every other line must be
/// one sample; label values unescaped (`\\`, `\"`, `\n`).
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("value of {line:?}: {e}"));
        let mut labels = std::collections::BTreeMap::new();
        let name = match series.split_once('{') {
            None => series.to_owned(),
            Some((name, rest)) => {
                let mut rest = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                while !rest.is_empty() {
                    let (key, after) = rest
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label in {line:?}"));
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next() {
                            Some((_, '\\')) => match chars.next() {
                                Some((_, 'n')) => value.push('\n'),
                                Some((_, c)) => value.push(c),
                                None => panic!("bad escape in {line:?}"),
                            },
                            Some((i, '"')) => break i,
                            Some((_, c)) => value.push(c),
                            None => panic!("unterminated label value in {line:?}"),
                        }
                    };
                    labels.insert(key.trim_start_matches(',').to_owned(), value);
                    rest = after[end + 1..].trim_start_matches(',');
                }
                name.to_owned()
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The value of the one sample named `name` with exactly `labels`, if there is one.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: std::collections::BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} twice: {found:?}");
    found.first().copied()
}

#[tokio::test]
async fn metrics_count_store_calls_refusals_and_the_session_cache() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&alice)).await.assert_status(200);
    c.get("/me", None)
        .await
        .assert_error(401, "unauthenticated");

    let res = c.get("/metrics", None).await;
    res.assert_status(200);
    assert_eq!(res.content_type(), "text/plain; version=0.0.4");
    let samples = parse_prometheus(&res.text);
    let loads = sample(
        &samples,
        "session_store_operations_total",
        &[("op", "load"), ("outcome", "ok")],
    );
    assert!(
        loads.is_some_and(|n| n > 0.0),
        "load ok: {loads:?} in\n{}",
        res.text
    );
    let refused = sample(
        &samples,
        "session_rejections_total",
        &[("reason", "unauthenticated")],
    );
    assert!(
        refused.is_some_and(|n| n >= 1.0),
        "unauthenticated: {refused:?} in\n{}",
        res.text
    );
    // The session cache is on by default, and reports its counters as they happen.
    for name in [
        "session_cache_hits_total",
        "session_cache_misses_total",
        "session_cache_entries",
    ] {
        assert!(
            sample(&samples, name, &[]).is_some(),
            "no {name} in\n{}",
            res.text
        );
    }
}
