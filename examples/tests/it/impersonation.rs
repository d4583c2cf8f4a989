//! Contract version 3, "Impersonation": an admin acts as a user in a new, marked, time-boxed
//! session; no chaining, no sensitive routes, no rights the admin lacks; stopping returns to the
//! admin's own (new) session; both histories record start and end.

use crate::support;

use std::time::Duration;

use support::*;

/// `POST /admin/impersonate/{user}` with the admin's cookie.
async fn impersonate(c: &Client, admin: &Cookie, user: &str) -> Resp {
    c.post_empty(&format!("/admin/impersonate/{user}"), Some(admin))
        .await
}

/// The events of `cookie`'s user's history, newest first.
async fn events(c: &Client, cookie: &Cookie) -> Vec<String> {
    let res = c.get("/history", Some(cookie)).await;
    res.assert_status(200);
    res.body
        .as_array()
        .expect("a history")
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_admin_impersonates_a_user_is_refused_what_only_the_user_may_do_and_stops() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url()).start().await;
    let c = server.client();
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    impersonate(&c, &admin, "nobody")
        .await
        .assert_error(404, "not_found");

    let res = impersonate(&c, &admin, ALICE.0).await;
    res.assert_status(200);
    assert_eq!(res.body["username"], "alice");
    assert_eq!(res.body["impersonated_by"], "admin");
    assert_eq!(res.body["roles"], json!(["USER"]));
    let acting = c
        .new_cookie(&res)
        .expect("a new session for the impersonation");
    // The admin's own session ended with it.
    c.get("/me", Some(&admin)).await.assert_status(401);

    let me = c.get("/me", Some(&acting)).await;
    me.assert_status(200);
    assert_eq!(
        (
            me.body["username"].as_str(),
            me.body["impersonated_by"].as_str()
        ),
        (Some("alice"), Some("admin"))
    );
    let listed = c.get("/sessions", Some(&acting)).await;
    listed.assert_status(200);
    let current = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session is listed");
    assert_eq!(current["impersonated_by"], "admin", "{}", listed.body);

    // What only the user may do: refused, and nothing changes.
    let password = json!({"current_password": ALICE.1, "new_password": "stolen-password-1"});
    c.put("/password", Some(&acting), password)
        .await
        .assert_error(403, "forbidden");
    c.delete("/sessions/others", Some(&acting))
        .await
        .assert_error(403, "forbidden");
    c.post("/reauth", Some(&acting), json!({"password": ALICE.1}))
        .await
        .assert_error(403, "forbidden");
    c.post(
        "/reauth/passkey",
        Some(&acting),
        json!({"assertion": "alice-passkey"}),
    )
    .await
    .assert_error(403, "forbidden");
    // No chaining (alice is no admin, so the role guard refuses first; an admin target is
    // refused as an impersonation below).
    impersonate(&c, &acting, ADMIN.0)
        .await
        .assert_error(403, "forbidden");
    c.login_ok(ALICE.0, ALICE.1).await; // the password did not change

    let res = c.post_empty("/impersonation/stop", Some(&acting)).await;
    res.assert_status(200);
    assert_eq!(res.body["username"], "admin");
    let back = c.new_cookie(&res).expect("a new session of the admin");
    c.get("/me", Some(&acting)).await.assert_status(401);
    let me = c.get("/me", Some(&back)).await;
    me.assert_status(200);
    assert_eq!(me.body["username"], "admin");
    assert!(me.body.get("impersonated_by").is_none(), "{}", me.body);
    c.post_empty("/impersonation/stop", Some(&back))
        .await
        .assert_error(403, "forbidden");

    // Both histories say it.
    let alice = c.login_ok(ALICE.0, ALICE.1).await;
    for who in [&alice, &back] {
        let events = events(&c, who).await;
        for event in ["impersonation_started", "impersonation_ended"] {
            assert!(
                events.iter().any(|e| e == event),
                "{event} missing: {events:?}"
            );
        }
    }
}

#[tokio::test]
async fn impersonation_is_time_boxed_fresh_only_and_never_gains_rights() {
    let redis = redis();
    let server = ServerBuilder::redis(redis.url())
        .env("IMPERSONATION_SECS", 2)
        .env("STEP_UP_SECS", 1)
        .start()
        .await;
    let c = server.client();

    // A user with a role the admin lacks cannot be impersonated.
    c.register("boss", "a-long-password-1")
        .await
        .assert_status(201);
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    c.put(
        "/admin/users/boss/roles",
        Some(&admin),
        json!({"roles": ["USER", "ADMIN", "AUDITOR"]}),
    )
    .await
    .assert_status(204);
    impersonate(&c, &admin, "boss")
        .await
        .assert_error(403, "forbidden");

    // Chaining: an admin impersonating another admin cannot impersonate again.
    c.register("deputy", "a-long-password-1")
        .await
        .assert_status(201);
    c.put(
        "/admin/users/deputy/roles",
        Some(&admin),
        json!({"roles": ["USER", "ADMIN"]}),
    )
    .await
    .assert_status(204);
    let res = impersonate(&c, &admin, "deputy").await;
    res.assert_status(200);
    let as_deputy = c.new_cookie(&res).expect("impersonation cookie");
    impersonate(&c, &as_deputy, ALICE.0)
        .await
        .assert_error(403, "forbidden");

    // Not fresh: a re-authentication is asked for.
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    impersonate(&c, &admin, ALICE.0)
        .await
        .assert_error(401, "reauthentication_required");

    // Stopping proves nothing: back in their own session the admin is as fresh as when the
    // impersonation began (1.2 s ago here: stale), not renewed.
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let res = impersonate(&c, &admin, ALICE.0).await;
    res.assert_status(200);
    let acting = c.new_cookie(&res).expect("impersonation cookie");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let res = c.post_empty("/impersonation/stop", Some(&acting)).await;
    res.assert_status(200);
    let back = c.new_cookie(&res).expect("the admin's own session");
    impersonate(&c, &back, ALICE.0)
        .await
        .assert_error(401, "reauthentication_required");

    // Time-boxed: 2 s after it started, the impersonation session is over.
    let admin = c.login_ok(ADMIN.0, ADMIN.1).await;
    let res = impersonate(&c, &admin, ALICE.0).await;
    res.assert_status(200);
    let acting = c.new_cookie(&res).expect("impersonation cookie");
    c.get("/me", Some(&acting)).await.assert_status(200);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let res = c.get("/me", Some(&acting)).await;
    res.assert_error(401, "unauthenticated");
    assert_eq!(res.body["reason"], "expired", "{}", res.body);
}
