//! Every route of the demo server against a real Redis: the answers, the cookie, the guards.

use crate::support;

use support::*;

fn roles(body: &Value) -> Vec<String> {
    body.get("roles")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no roles array in {body}"))
        .iter()
        .map(|r| r.as_str().expect("role is a string").to_owned())
        .collect()
}

// ---------- /health ----------

#[tokio::test]
async fn health_reports_ok_and_the_redis_store() {
    let (_redis, server) = redis_and_server().await;
    let res = server.client().get("/health", None).await;
    res.assert_status(200);
    assert!(
        res.content_type().starts_with("application/json"),
        "{:?}",
        res.headers
    );
    assert_eq!(res.body, json!({"status": "ok", "store": "redis"}));
}

// ---------- /register ----------

#[tokio::test]
async fn register_creates_a_user_who_can_then_log_in() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let res = c.register("bob", "bob-password").await;
    res.assert_status(201);
    assert_eq!(res.body, json!({"username": "bob", "roles": ["USER"]}));

    let login = c
        .post(
            "/login",
            None,
            json!({"username": "bob", "password": "bob-password"}),
        )
        .await;
    login.assert_status(200);
    assert_eq!(
        login.body,
        json!({"username": "bob", "roles": ["USER"], "new_device": false})
    );
    let cookie = c.login_ok("bob", "bob-password").await;
    let me = c.get("/me", Some(&cookie)).await;
    me.assert_status(200);
    assert_eq!(me.body, json!({"username": "bob", "roles": ["USER"]}));
    // A wrong password for the new account is still refused.
    c.login("bob", "not-bobs-password")
        .await
        .unwrap_err()
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn register_refuses_a_taken_username_with_409() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    c.register("bob", "bob-password").await.assert_status(201);
    c.register("bob", "another-password")
        .await
        .assert_error(409, "conflict");
    // The seeded accounts are taken too.
    c.register("alice", "whatever-password")
        .await
        .assert_error(409, "conflict");
    c.register("admin", "whatever-password")
        .await
        .assert_error(409, "conflict");
    // Names differ by more than case: `Admin` and `ALICE` are the same accounts (security round
    // 3), so they cannot be registered by someone else.
    for taken in ["Admin", "ALICE", "Bob"] {
        c.register(taken, "whatever-password")
            .await
            .assert_error(409, "conflict");
    }
    // The original password still works: the 409 changed nothing.
    c.login_ok("bob", "bob-password").await;
    c.login_ok(ALICE.0, ALICE.1).await;
}

#[tokio::test]
async fn a_username_in_any_case_is_one_account_with_one_lockout() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("LOGIN_MAX_FAILURES", 3)
        .start()
        .await;
    let c = server.client();
    let res = c.register("CaseUser", "case-password").await;
    res.assert_status(201);
    assert_eq!(res.body["username"], "caseuser");
    let cookie = c.login_ok("CASEUSER", "case-password").await;
    assert_eq!(
        c.get("/me", Some(&cookie)).await.body["username"],
        "caseuser"
    );
    // Failures under other spellings count for the one account: no extra guesses by case.
    for spelling in ["Caseuser", "cASEUSER", "CaSeUsEr"] {
        c.login(spelling, "wrong-password")
            .await
            .unwrap_err()
            .assert_error(401, "invalid_credentials");
    }
    c.login("caseuser", "case-password")
        .await
        .unwrap_err()
        .assert_error(429, "too_many_attempts");
}

#[tokio::test]
async fn concurrent_registrations_of_one_username_create_it_once() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let c = c.clone();
        tasks.spawn(async move { (i, c.register("racer", &format!("racer-password-{i}")).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, res) = joined.unwrap();
        match res.status {
            201 => winners.push(i),
            _ => res.assert_error(409, "conflict"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "one username registered {} times",
        winners.len()
    );
    // The winner's password is the account's.
    c.login_ok("racer", &format!("racer-password-{}", winners[0]))
        .await;
}

#[tokio::test]
async fn register_accepts_usernames_of_3_to_64_characters_only() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    c.register("ab", "good-password")
        .await
        .assert_error(400, "bad_request");
    c.register("", "good-password")
        .await
        .assert_error(400, "bad_request");
    c.register("abc", "good-password").await.assert_status(201);
    c.register(&"u".repeat(64), "good-password")
        .await
        .assert_status(201);
    c.register(&"v".repeat(65), "good-password")
        .await
        .assert_error(400, "bad_request");
    c.login_ok("abc", "good-password").await;
    c.login_ok(&"u".repeat(64), "good-password").await;
}

#[tokio::test]
async fn register_accepts_only_letters_digits_underscore_dot_dash_in_usernames() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    for bad in [
        "ab c",
        "abc/",
        "h\u{e9}llo",
        "abc!",
        "abc\n",
        "<script>",
        "a@b.c",
        "abc\u{0}",
        "ab\u{3000}c",
    ] {
        c.register(bad, "good-password")
            .await
            .assert_error(400, "bad_request");
    }
    c.register("Az09_.-x", "good-password")
        .await
        .assert_status(201);
    c.login_ok("Az09_.-x", "good-password").await;
}

#[tokio::test]
async fn register_accepts_passwords_of_8_to_128_characters_only() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    c.register("pw7", &"p".repeat(7))
        .await
        .assert_error(400, "bad_request");
    c.register("pw8", &"p".repeat(8)).await.assert_status(201);
    c.register("pw128", &"p".repeat(128))
        .await
        .assert_status(201);
    c.register("pw129", &"p".repeat(129))
        .await
        .assert_error(400, "bad_request");
    c.login_ok("pw8", &"p".repeat(8)).await;
    c.login_ok("pw128", &"p".repeat(128)).await;
    // The refused registrations created nothing.
    c.login("pw7", &"p".repeat(7))
        .await
        .unwrap_err()
        .assert_error(401, "invalid_credentials");
    c.login("pw129", &"p".repeat(129))
        .await
        .unwrap_err()
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn register_counts_password_length_in_characters_not_bytes() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    // 7 characters, 14 bytes: too short.
    c.register("multi7", &"\u{e9}".repeat(7))
        .await
        .assert_error(400, "bad_request");
    // 8 characters, 16 bytes; 128 characters, 256 bytes: fine.
    c.register("multi8", &"\u{e9}".repeat(8))
        .await
        .assert_status(201);
    c.register("multi128", &"\u{e9}".repeat(128))
        .await
        .assert_status(201);
    c.login_ok("multi128", &"\u{e9}".repeat(128)).await;
}

#[tokio::test]
async fn register_refuses_bodies_of_the_wrong_shape_with_400() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    for body in [
        json!({}),
        json!({"username": "carol"}),
        json!({"password": "good-password"}),
        json!({"username": 5, "password": "good-password"}),
        json!({"username": "carol", "password": null}),
        json!("carol"),
        json!(null),
    ] {
        let res = c.post("/register", None, body.clone()).await;
        assert_ne!(res.status, 422, "{body} gave axum's 422");
        res.assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn register_and_login_refuse_a_json_array_instead_of_the_object() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    // The body is `{"username","password"}`; serde's derived structs also accept a positional
    // array, which is not the documented shape.
    c.post("/register", None, json!(["carol", "good-password"]))
        .await
        .assert_error(400, "bad_request");
    let res = c
        .post("/login", None, json!(["alice", "alice-password"]))
        .await;
    res.assert_error(400, "bad_request");
    assert!(res.set_cookies().is_empty());
}

// ---------- /login ----------

#[tokio::test]
async fn login_answers_the_user_and_sets_an_httponly_samesite_cookie_on_path_root() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let res = c
        .post(
            "/login",
            None,
            json!({"username": "alice", "password": "alice-password"}),
        )
        .await;
    res.assert_status(200);
    assert_eq!(
        res.body,
        json!({"username": "alice", "roles": ["USER"], "new_device": false})
    );
    let cookies = res.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let set = &cookies[0];
    assert_eq!(set.name, "session", "{}", set.raw);
    assert!(!set.value.is_empty());
    assert!(set.has("HttpOnly"), "{}", set.raw);
    let same_site = set
        .attr("SameSite")
        .unwrap_or_else(|| panic!("no SameSite: {}", set.raw));
    assert!(
        same_site.eq_ignore_ascii_case("Lax") || same_site.eq_ignore_ascii_case("Strict"),
        "{}",
        set.raw
    );
    assert_eq!(set.attr("Path"), Some("/"), "{}", set.raw);
    assert!(
        !set.has("Secure"),
        "COOKIE_SECURE=false yet Secure: {}",
        set.raw
    );
    assert!(!set.has("Domain"), "{}", set.raw);

    let cookie = Cookie {
        name: set.name.clone(),
        value: set.value.clone(),
    };
    let me = c.get("/me", Some(&cookie)).await;
    me.assert_status(200);
    assert_eq!(me.body, json!({"username": "alice", "roles": ["USER"]}));
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let me = c.get("/me", Some(&admin)).await;
    assert_eq!(me.body["username"], "admin");
    let mut r = roles(&me.body);
    r.sort();
    assert_eq!(r, ["ADMIN", "USER"]);
}

#[tokio::test]
async fn default_cookie_is_host_prefixed_and_secure() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .cookie_secure_default()
        .start()
        .await;
    let c = server.client();
    let res = c
        .post(
            "/login",
            None,
            json!({"username": "alice", "password": "alice-password"}),
        )
        .await;
    res.assert_status(200);
    let set = res.set_cookies().into_iter().next().expect("a Set-Cookie");
    assert_eq!(set.name, "__Host-session", "{}", set.raw);
    assert!(set.has("Secure"), "{}", set.raw);
    assert!(set.has("HttpOnly"), "{}", set.raw);
    assert_eq!(set.attr("Path"), Some("/"), "{}", set.raw);
    assert!(
        !set.has("Domain"),
        "__Host- cookies must not carry Domain: {}",
        set.raw
    );
    let cookie = Cookie {
        name: set.name,
        value: set.value,
    };
    c.get("/me", Some(&cookie)).await.assert_status(200);
    // The same token under the dev name is not this server's cookie.
    let wrong_name = Cookie {
        name: "session".into(),
        value: cookie.value.clone(),
    };
    c.get("/me", Some(&wrong_name))
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn login_failure_is_identical_for_unknown_user_and_wrong_password_and_sets_no_cookie() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let unknown = c.login("nobody", "alice-password").await.unwrap_err();
    let wrong = c.login("alice", "wrong-password").await.unwrap_err();
    unknown.assert_error(401, "invalid_credentials");
    wrong.assert_error(401, "invalid_credentials");
    assert_eq!(
        unknown.body, wrong.body,
        "the two failures must be indistinguishable"
    );
    assert!(unknown.set_cookies().is_empty(), "{:?}", unknown.headers);
    assert!(wrong.set_cookies().is_empty(), "{:?}", wrong.headers);
    // Empty password, and a password that is right for another account.
    c.login("alice", "")
        .await
        .unwrap_err()
        .assert_error(401, "invalid_credentials");
    c.login("alice", "admin-password")
        .await
        .unwrap_err()
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn unknown_user_login_takes_about_as_long_as_a_wrong_password() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("LOGIN_MAX_FAILURES", 1000)
        .start()
        .await;
    let c = server.client();
    // Warm up (connections, scripts).
    let _ = c.login("alice", "warm-up-password").await;
    let _ = c.login("nobody-warm", "warm-up-password").await;
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    // Interleaved, so both kinds see the same load.
    for i in 0..9 {
        let t = std::time::Instant::now();
        c.login(&format!("nobody{i}"), "some-password")
            .await
            .unwrap_err()
            .assert_status(401);
        unknown.push(t.elapsed());
        let t = std::time::Instant::now();
        c.login("alice", "some-password")
            .await
            .unwrap_err()
            .assert_status(401);
        wrong.push(t.elapsed());
    }
    unknown.sort();
    wrong.sort();
    let (u, w) = (unknown[4], wrong[4]);
    let (u_min, w_min) = (unknown[0], wrong[0]);
    eprintln!(
        "login time (median, min): unknown user {u:?} {u_min:?}, wrong password {w:?} {w_min:?}"
    );
    // Without a dummy hash an unknown user answers in ~1 ms against tens of ms for a real
    // Argon2 verification. Compare each median with the other kind's fastest answer (the one
    // least disturbed by other tests on this machine), allowing a factor 3.
    assert!(
        u * 3 >= w_min && w * 3 >= u_min,
        "unknown-user logins (median {u:?}) vs wrong-password logins (median {w:?}): a timing \
         oracle for user names (unknown {unknown:?}, wrong {wrong:?})"
    );
}

#[tokio::test]
async fn login_never_reuses_a_token_the_client_sent() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    // A planted token of the right shape (session fixation).
    let planted = c.cookie(&unknown_token());
    let issued = c
        .login_with("alice", "alice-password", Some(&planted))
        .await
        .unwrap();
    assert_ne!(issued.value, planted.value);
    c.get("/me", Some(&planted))
        .await
        .assert_error(401, "unauthenticated");
    c.get("/me", Some(&issued)).await.assert_status(200);

    // A live token sent to /login is not reused either.
    let again = c
        .login_with("alice", "alice-password", Some(&issued))
        .await
        .unwrap();
    assert_ne!(again.value, issued.value);
    c.get("/me", Some(&again)).await.assert_status(200);

    // Nor garbage.
    let junk = c.cookie("junk");
    let third = c
        .login_with("admin", "admin-password", Some(&junk))
        .await
        .unwrap();
    assert_ne!(third.value, "junk");
    assert_ne!(third.value, again.value);
}

#[tokio::test]
async fn login_refuses_bodies_of_the_wrong_shape_with_400() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    for body in [
        json!({}),
        json!({"username": "alice"}),
        json!({"username": ["alice"], "password": "alice-password"}),
        json!([1, 2]),
        json!(42),
    ] {
        let res = c.post("/login", None, body.clone()).await;
        assert_ne!(res.status, 422, "{body} gave axum's 422");
        res.assert_error(400, "bad_request");
        assert!(res.set_cookies().is_empty());
    }
}

// ---------- /logout ----------

#[tokio::test]
async fn logout_answers_204_expires_the_cookie_and_the_old_cookie_gets_401() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    let other = c.login_ok(ALICE.0, ALICE.1).await;
    let res = c.post_empty("/logout", Some(&cookie)).await;
    res.assert_status(204);
    let set = res
        .set_cookies()
        .into_iter()
        .find(|s| s.name == "session")
        .unwrap_or_else(|| {
            panic!(
                "logout sent no Set-Cookie for the session: {:?}",
                res.headers
            )
        });
    assert!(
        set.expires_cookie(),
        "logout's Set-Cookie does not expire the cookie: {}",
        set.raw
    );
    assert_ne!(set.value, cookie.value, "{}", set.raw);
    assert_eq!(set.attr("Path"), Some("/"), "{}", set.raw);

    c.get("/me", Some(&cookie))
        .await
        .assert_error(401, "unauthenticated");
    c.post_empty("/logout", Some(&cookie))
        .await
        .assert_error(401, "unauthenticated");
    // Only that session ended.
    c.get("/me", Some(&other)).await.assert_status(200);
}

#[tokio::test]
async fn logout_without_a_session_is_401() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    c.post_empty("/logout", None)
        .await
        .assert_error(401, "unauthenticated");
    c.post_empty("/logout", Some(&c.cookie("garbage")))
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn logout_and_revocations_leave_no_session_keys_in_redis() {
    let (redis, server) = redis_and_server().await;
    let c = server.client();
    let before = redis_keys(redis.url()).await;

    // The user's login history (`{prefix}:h:{…}`) stays: it outlives sessions by design.
    let check = |label: &'static str,
                 created: std::collections::BTreeSet<Vec<u8>>,
                 now: std::collections::BTreeSet<Vec<u8>>| {
        let left: Vec<String> = created
            .intersection(&now)
            .filter(|k| !k.windows(4).any(|w| w == b":h:{"))
            .map(|k| show_key(k))
            .collect();
        assert!(
            left.is_empty(),
            "{label} left keys behind in Redis: {left:?}"
        );
    };

    // Logout.
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    let after_login = redis_keys(redis.url()).await;
    let created: std::collections::BTreeSet<_> = after_login.difference(&before).cloned().collect();
    assert!(!created.is_empty(), "login stored nothing new in Redis");
    c.post_empty("/logout", Some(&cookie))
        .await
        .assert_status(204);
    check("logout", created, redis_keys(redis.url()).await);

    // DELETE /sessions/{id} (from another session of the same user).
    let before = redis_keys(redis.url()).await;
    let keep = c.login_ok(ALICE.0, ALICE.1).await;
    let mid = redis_keys(redis.url()).await;
    let victim = c.login_ok(ALICE.0, ALICE.1).await;
    let created: std::collections::BTreeSet<_> = redis_keys(redis.url())
        .await
        .difference(&mid)
        .cloned()
        .collect();
    c.end_other_session(&keep).await;
    c.get("/me", Some(&victim)).await.assert_status(401);
    check(
        "DELETE /sessions/{id}",
        created,
        redis_keys(redis.url()).await,
    );

    // DELETE /sessions and the admin revocation.
    let second = c.login_ok(ALICE.0, ALICE.1).await;
    c.delete("/sessions", Some(&second))
        .await
        .assert_status(204);
    c.get("/me", Some(&keep)).await.assert_status(401);
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let with_admin = redis_keys(redis.url()).await;
    c.login_ok(ALICE.0, ALICE.1).await;
    c.login_ok(ALICE.0, ALICE.1).await;
    let created: std::collections::BTreeSet<_> = redis_keys(redis.url())
        .await
        .difference(&with_admin)
        .cloned()
        .collect();
    c.delete("/admin/users/alice/sessions", Some(&admin))
        .await
        .assert_status(204);
    check(
        "DELETE /admin/users/alice/sessions",
        created,
        redis_keys(redis.url()).await,
    );
    // Every alice session key is gone: what is left is what existed before plus admin's, and
    // why each of the two revoked sessions ended (`{prefix}:x:…`, one byte until its deadline).
    let now = redis_keys(redis.url()).await;
    let (reasons, extra): (Vec<_>, Vec<_>) = now
        .difference(&with_admin)
        .partition(|k| k.starts_with(b"demo:x:"));
    let extra: Vec<String> = extra.into_iter().map(|k| show_key(k)).collect();
    assert!(
        extra.is_empty(),
        "keys left after revoking all of alice's sessions: {extra:?}"
    );
    assert_eq!(reasons.len(), 2, "one end reason per revoked session");
    let _ = before;
}

// ---------- /me ----------

#[tokio::test]
async fn me_is_401_anonymous_and_200_with_the_session() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    c.get("/me", None)
        .await
        .assert_error(401, "unauthenticated");
    let cookie = c.login_ok(ALICE.0, ALICE.1).await;
    let me = c.get("/me", Some(&cookie)).await;
    me.assert_status(200);
    assert!(me.content_type().starts_with("application/json"));
    assert_eq!(me.body, json!({"username": "alice", "roles": ["USER"]}));
}

// ---------- /admin ----------

#[tokio::test]
async fn admin_is_401_anonymous_403_for_alice_and_200_for_admin() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    c.get("/admin", None)
        .await
        .assert_error(401, "unauthenticated");
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/admin", Some(&alice))
        .await
        .assert_error(403, "forbidden");
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let res = c.get("/admin", Some(&admin)).await;
    res.assert_status(200);
    assert!(
        res.body.get("message").is_some_and(Value::is_string),
        "{}",
        res.text
    );
}

// ---------- /sessions ----------

#[tokio::test]
async fn sessions_lists_the_callers_sessions_with_public_ids_never_tokens() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let first = c.login_ok(ALICE.0, ALICE.1).await;
    let second = c.login_ok(ALICE.0, ALICE.1).await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;

    c.get("/sessions", None)
        .await
        .assert_error(401, "unauthenticated");

    let res = c.get("/sessions", Some(&second)).await;
    res.assert_status(200);
    let list = res
        .body
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", res.text))
        .clone();
    assert_eq!(list.len(), 2, "alice has two sessions: {}", res.text);
    for s in &list {
        for field in ["id", "created_at", "last_seen_at", "current"] {
            assert!(
                s.get(field).is_some_and(|v| !v.is_null()),
                "{field} missing in {s}"
            );
        }
        let id = s["id"]
            .as_str()
            .unwrap_or_else(|| panic!("id is not a string: {s}"));
        assert!(!id.is_empty());
        for token in [&first.value, &second.value, &admin.value] {
            assert_ne!(id, token.as_str(), "a session id equals a token");
            assert!(
                !id.contains(token.as_str()) && !token.contains(id),
                "id {id} overlaps a token"
            );
        }
        assert!(s["current"].is_boolean(), "{s}");
    }
    assert!(!res.text.contains(&first.value) && !res.text.contains(&second.value));
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(
        current.len(),
        1,
        "exactly one current session: {}",
        res.text
    );
    let ids: std::collections::BTreeSet<&str> =
        list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "ids are distinct");

    // Seen from the other cookie, the other entry is current.
    let res1 = c.get("/sessions", Some(&first)).await;
    let list1 = res1.body.as_array().unwrap();
    let current1 = list1.iter().find(|s| s["current"] == true).unwrap();
    assert_ne!(current1["id"], current[0]["id"]);
    let ids1: std::collections::BTreeSet<&str> =
        list1.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ids1, "the same sessions, with stable ids");

    // Admin sees only their own.
    let res = c.get("/sessions", Some(&admin)).await;
    let list = res.body.as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", res.text);
    assert_eq!(list[0]["current"], true);
    assert!(!ids.contains(list[0]["id"].as_str().unwrap()));
}

async fn session_ids(c: &Client, cookie: &Cookie) -> (String, Vec<String>) {
    let res = c.get("/sessions", Some(cookie)).await;
    res.assert_status(200);
    let list = res.body.as_array().unwrap();
    let current = list
        .iter()
        .find(|s| s["current"] == true)
        .expect("a current session");
    (
        current["id"].as_str().unwrap().to_owned(),
        list.iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect(),
    )
}

#[tokio::test]
async fn delete_session_by_id_ends_only_that_session() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let laptop = c.login_ok(ALICE.0, ALICE.1).await;
    let phone = c.login_ok(ALICE.0, ALICE.1).await;
    let (laptop_id, _) = session_ids(&c, &laptop).await;
    let res = c
        .delete(&format!("/sessions/{laptop_id}"), Some(&phone))
        .await;
    res.assert_status(204);
    c.get("/me", Some(&laptop))
        .await
        .assert_error(401, "unauthenticated");
    c.get("/me", Some(&phone)).await.assert_status(200);
    let (_, ids) = session_ids(&c, &phone).await;
    assert_eq!(ids.len(), 1);
    assert!(!ids.contains(&laptop_id));
    // Deleting it again: it is no longer one of the caller's sessions.
    c.delete(&format!("/sessions/{laptop_id}"), Some(&phone))
        .await
        .assert_error(404, "not_found");
    // Deleting one's own current session by id works and ends this session.
    let (phone_id, _) = session_ids(&c, &phone).await;
    c.delete(&format!("/sessions/{phone_id}"), Some(&phone))
        .await
        .assert_status(204);
    c.get("/me", Some(&phone))
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn delete_session_of_another_user_is_404_and_leaves_it_alive() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let (admin_id, _) = session_ids(&c, &admin).await;
    c.delete(&format!("/sessions/{admin_id}"), Some(&alice))
        .await
        .assert_error(404, "not_found");
    c.get("/admin", Some(&admin)).await.assert_status(200);
    for bogus in ["does-not-exist", "0", &unknown_token(), &alice.value] {
        c.delete(&format!("/sessions/{bogus}"), Some(&alice))
            .await
            .assert_error(404, "not_found");
    }
    // Using the token itself as the id deletes nothing.
    c.get("/me", Some(&alice)).await.assert_status(200);
    c.delete(&format!("/sessions/{admin_id}"), None)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn delete_all_sessions_ends_every_session_of_the_caller_including_this_one() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let a1 = c.login_ok(ALICE.0, ALICE.1).await;
    let a2 = c.login_ok(ALICE.0, ALICE.1).await;
    let a3 = c.login_ok(ALICE.0, ALICE.1).await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.delete("/sessions", None)
        .await
        .assert_error(401, "unauthenticated");
    c.delete("/sessions", Some(&a2)).await.assert_status(204);
    for cookie in [&a1, &a2, &a3] {
        c.get("/me", Some(cookie))
            .await
            .assert_error(401, "unauthenticated");
    }
    c.get("/me", Some(&admin)).await.assert_status(200);
    // Alice can log in again afterwards.
    let fresh = c.login_ok(ALICE.0, ALICE.1).await;
    let (_, ids) = session_ids(&c, &fresh).await;
    assert_eq!(ids.len(), 1);
}

// ---------- PUT /admin/users/{username}/roles ----------

#[tokio::test]
async fn promoting_alice_to_admin_applies_to_her_existing_session() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.get("/admin", Some(&alice))
        .await
        .assert_error(403, "forbidden");
    let res = c
        .put(
            "/admin/users/alice/roles",
            Some(&admin),
            json!({"roles": ["USER", "ADMIN"]}),
        )
        .await;
    res.assert_status(204);
    // The old cookie, next request: the new roles.
    c.get("/admin", Some(&alice)).await.assert_status(200);
    let me = c.get("/me", Some(&alice)).await;
    let mut r = roles(&me.body);
    r.sort();
    assert_eq!(r, ["ADMIN", "USER"]);
    // And a new login carries them too (the account changed, not only the sessions).
    let again = c
        .post(
            "/login",
            None,
            json!({"username": "alice", "password": "alice-password"}),
        )
        .await;
    again.assert_status(200);
    let mut r = roles(&again.body);
    r.sort();
    assert_eq!(r, ["ADMIN", "USER"]);
}

#[tokio::test]
async fn removed_role_is_refused_on_the_next_request() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.put(
        "/admin/users/alice/roles",
        Some(&admin),
        json!({"roles": ["USER", "ADMIN"]}),
    )
    .await
    .assert_status(204);
    let alice1 = c.login_ok(ALICE.0, ALICE.1).await;
    let alice2 = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/admin", Some(&alice1)).await.assert_status(200);
    c.get("/admin", Some(&alice2)).await.assert_status(200);

    c.put(
        "/admin/users/alice/roles",
        Some(&admin),
        json!({"roles": ["USER"]}),
    )
    .await
    .assert_status(204);
    c.get("/admin", Some(&alice1))
        .await
        .assert_error(403, "forbidden");
    c.get("/admin", Some(&alice2))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        c.get("/me", Some(&alice1)).await.body,
        json!({"username": "alice", "roles": ["USER"]})
    );
    // Her sessions stay logged in, just without the role.
    c.get("/me", Some(&alice2)).await.assert_status(200);
    // An admin revoking their own ADMIN role loses it at once too (with another admin
    // around: the last admin cannot give it up, see stepup.rs).
    c.register("second-admin", "second-password")
        .await
        .assert_status(201);
    c.put(
        "/admin/users/second-admin/roles",
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
    c.get("/admin", Some(&admin))
        .await
        .assert_error(403, "forbidden");
    c.put(
        "/admin/users/alice/roles",
        Some(&admin),
        json!({"roles": ["USER", "ADMIN"]}),
    )
    .await
    .assert_error(403, "forbidden");
}

#[tokio::test]
async fn changing_roles_requires_the_admin_role() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let body = json!({"roles": ["USER", "ADMIN"]});
    c.put("/admin/users/alice/roles", None, body.clone())
        .await
        .assert_error(401, "unauthenticated");
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.put("/admin/users/alice/roles", Some(&alice), body)
        .await
        .assert_error(403, "forbidden");
    c.get("/admin", Some(&alice))
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn changing_roles_with_a_malformed_body_is_400() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    for body in [
        json!({}),
        json!({"roles": "ADMIN"}),
        json!({"roles": [1, 2]}),
        json!({"roles": null}),
    ] {
        let res = c
            .put("/admin/users/alice/roles", Some(&admin), body.clone())
            .await;
        assert_ne!(res.status, 422, "{body}");
        res.assert_error(400, "bad_request");
    }
    let res = c
        .send(
            Method::PUT,
            "/admin/users/alice/roles",
            Some(&admin),
            Some(Body::Raw(
                b"{\"roles\":[".to_vec(),
                Some("application/json"),
            )),
            &[],
        )
        .await;
    res.assert_error(400, "bad_request");
    // Nothing changed.
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/admin", Some(&alice))
        .await
        .assert_error(403, "forbidden");
}

// ---------- DELETE /admin/users/{username}/sessions ----------

#[tokio::test]
async fn admin_revoking_a_users_sessions_ends_all_of_them() {
    let (_redis, server) = redis_and_server().await;
    let c = server.client();
    let a1 = c.login_ok(ALICE.0, ALICE.1).await;
    let a2 = c.login_ok(ALICE.0, ALICE.1).await;
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.delete("/admin/users/alice/sessions", None)
        .await
        .assert_error(401, "unauthenticated");
    c.delete("/admin/users/admin/sessions", Some(&a1))
        .await
        .assert_error(403, "forbidden");
    c.get("/me", Some(&admin)).await.assert_status(200);

    c.delete("/admin/users/alice/sessions", Some(&admin))
        .await
        .assert_status(204);
    c.get("/me", Some(&a1))
        .await
        .assert_error(401, "unauthenticated");
    c.get("/me", Some(&a2))
        .await
        .assert_error(401, "unauthenticated");
    c.get("/admin", Some(&admin)).await.assert_status(200);
    // Revocation ends sessions, not the account.
    let fresh = c.login_ok(ALICE.0, ALICE.1).await;
    c.get("/me", Some(&fresh)).await.assert_status(200);
}
