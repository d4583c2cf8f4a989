//! `demo-server` (axum) and `demo-actix` (actix-web) on one Redis: a session made by one is
//! honoured by the other, and a logout on one ends it on both (same cookie, same keys, same
//! accounts).

use crate::support;

use std::time::{Duration, Instant};

use support::*;

/// The first answer to `GET /me` that is not 200, within the session cache's staleness bound
/// (a server that read the session just before the other one ended it may answer it from
/// memory until the invalidation arrives: at most 1 s).
async fn me_refused_within_a_second(server: &Server, cookie: &Cookie) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let res = server.client().get("/me", Some(cookie)).await;
        if res.status != 200 || Instant::now() > deadline {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn login_on_one_logout_on_the_other(first: Bin, second: Bin) {
    let redis = redis();
    let a = ServerBuilder::redis(redis.url()).bin(first).start().await;
    let b = ServerBuilder::redis(redis.url()).bin(second).start().await;
    let alice = a.client().login_ok(ALICE.0, ALICE.1).await;
    let admin = a.client().login_ok(ADMIN.0, ADMIN.1).await;

    let me = b.client().get("/me", Some(&alice)).await;
    me.assert_status(200);
    assert_eq!(me.body, json!({"username": "alice", "roles": ["USER"]}));
    b.client()
        .get("/admin", Some(&admin))
        .await
        .assert_status(200);
    b.client()
        .get("/admin", Some(&alice))
        .await
        .assert_error(403, "forbidden");
    a.client().get("/me", Some(&alice)).await.assert_status(200);

    // A logout on the second server ends the session on the first.
    let out = b.client().post_empty("/logout", Some(&alice)).await;
    out.assert_status(204);
    assert!(
        out.set_cookies().iter().any(|s| s.expires_cookie()),
        "{second:?}'s logout did not expire the cookie: {:?}",
        out.headers
    );
    me_refused_within_a_second(&a, &alice)
        .await
        .assert_error(401, "unauthenticated");
    b.client()
        .get("/me", Some(&alice))
        .await
        .assert_error(401, "unauthenticated");
    // The admin's session, untouched, still works on both.
    a.client()
        .get("/admin", Some(&admin))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_login_on_axum_works_on_actix_and_a_logout_on_actix_ends_it_on_axum() {
    login_on_one_logout_on_the_other(Bin::Axum, Bin::Actix).await;
}

#[tokio::test]
async fn a_login_on_actix_works_on_axum_and_a_logout_on_axum_ends_it_on_actix() {
    login_on_one_logout_on_the_other(Bin::Actix, Bin::Axum).await;
}
