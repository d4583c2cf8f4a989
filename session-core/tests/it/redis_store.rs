//! What only the Redis store can show: round trips, what is at rest in Redis, foreign data under
//! its keys, and outages (killed, hung, restarted).

use crate::common;

use std::time::Duration;

use crate::common::unique_prefix;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redis::AsyncCommands;
use redis_harness::RedisServer;
use session_core::{
    Clock, EndReason, Error, NewSession, RedisStore, SessionConfig, SessionData, SessionStore,
    Token, UnavailableKind,
};

fn config() -> SessionConfig {
    with_prefix(&unique_prefix())
}

/// The default configuration with `prefix`: a test that reads the store's keys knows it.
fn with_prefix(prefix: &str) -> SessionConfig {
    SessionConfig::builder().key_prefix(prefix).build().unwrap()
}

/// A server (own or `REDIS_URL`), a fresh configuration and a store connected to it.
async fn started() -> (RedisServer, String, RedisStore) {
    let server = RedisServer::start().unwrap();
    let prefix = unique_prefix();
    let store = RedisStore::connect(server.url(), with_prefix(&prefix))
        .await
        .unwrap()
        .with_operation_timeout(Duration::from_millis(500))
        .unwrap();
    (server, prefix, store)
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn session_key(prefix: &str, token: &Token) -> Vec<u8> {
    let mut k = format!("{prefix}:s:").into_bytes();
    k.extend_from_slice(token.key().as_bytes());
    k
}

#[tokio::test]
async fn load_and_touch_is_one_round_trip() {
    let server = RedisServer::start_local().unwrap();
    // The store's clock moves between loads (as real requests come apart), without a sleep.
    let clock = Clock::manual(std::time::SystemTime::now());
    let prefix = unique_prefix();
    let config = SessionConfig::builder()
        .key_prefix(prefix.as_str())
        .clock(clock.clone())
        .build()
        .unwrap();
    let store = RedisStore::connect(server.url(), config).await.unwrap();
    let (token, _) = store
        .create(NewSession::new("alice").with_roles(["USER"]))
        .await
        .unwrap();
    store.load(&token).await.unwrap().unwrap(); // the pool's connection is open from here on

    let commands = common::monitored(server.port(), async {
        for _ in 0..50 {
            clock.advance(Duration::from_millis(2)).unwrap();
            assert!(store.load(&token).await.unwrap().is_some());
        }
    })
    .await;
    common::assert_each_is(&commands, 50, "getex");
}

#[tokio::test]
async fn no_key_or_value_in_redis_holds_the_token() {
    let (server, prefix, store) = started().await;
    let mut tokens = Vec::new();
    for user in ["alice", "bob"] {
        let mut data = SessionData::new();
        data.insert("note", "hello").unwrap();
        let (t, _) = store
            .create(NewSession::new(user).with_roles(["USER"]).with_data(data))
            .await
            .unwrap();
        store.load(&t).await.unwrap();
        tokens.push(t);
    }
    let rotated = store.rotate(&tokens[0]).await.unwrap();
    tokens.push(rotated);

    let mut conn = raw(&server).await;
    let keys: Vec<Vec<u8>> = conn.keys(format!("{prefix}:*")).await.unwrap();
    assert_eq!(keys.len(), 4, "2 sessions + 2 user indexes");
    let mut at_rest: Vec<Vec<u8>> = keys.clone();
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![conn.get(key).await.unwrap()],
            "zset" => conn.zrange(key, 0, -1).await.unwrap(),
            other => panic!("unexpected key type {other}"),
        };
        at_rest.extend(values);
    }
    for token in &tokens {
        let text = token.as_cookie_value();
        let raw_token = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for blob in &at_rest {
            assert!(
                !blob.windows(text.len()).any(|w| w == text.as_bytes()),
                "token text found at rest"
            );
            assert!(
                !blob
                    .windows(raw_token.len())
                    .any(|w| w == raw_token.as_slice()),
                "raw token bytes found at rest"
            );
        }
        // Keys are SHA-256 of the token instead.
        assert!(keys.contains(&session_key(&prefix, token)) || token == &tokens[0]);
    }
}

#[tokio::test]
async fn foreign_or_corrupt_values_under_a_session_key_are_no_session() {
    let (server, prefix, store) = started().await;
    let mut conn = raw(&server).await;

    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
    let key = session_key(&prefix, &token);
    let good: Vec<u8> = conn.get(&key).await.unwrap();
    let truncated = good[..good.len() - 3].to_vec();
    let mut wrong_version = good.clone();
    wrong_version[0] = 99;
    for bad in [
        b"not a session".to_vec(),
        Vec::new(),
        truncated,
        wrong_version,
        vec![0xff; 300],
        b"\x01".to_vec(),
    ] {
        let _: () = conn.set(&key, &bad).await.unwrap();
        assert!(
            store.load(&token).await.unwrap().is_none(),
            "{bad:?} loaded"
        );
        assert!(matches!(
            store.save_data(&token, &SessionData::new()).await,
            Err(Error::Corrupt(_) | Error::NotFound)
        ));
        let after: Vec<u8> = conn.get(&key).await.unwrap();
        assert_eq!(after, bad, "foreign bytes were changed");
    }
    assert!(matches!(store.rotate(&token).await, Err(Error::Corrupt(_))));
    assert!(store.list_user_sessions("alice").await.unwrap().is_empty());

    // A value of another type under the key is foreign data too, not an outage.
    let _: () = conn.del(&key).await.unwrap();
    let _: () = conn.hset(&key, "f", "v").await.unwrap();
    assert!(store.load(&token).await.unwrap().is_none());
    assert!(matches!(store.rotate(&token).await, Err(Error::Corrupt(_))));
    assert!(store.list_user_sessions("alice").await.unwrap().is_empty());
    // The store keeps working for everyone else.
    let (other, _) = store.create(NewSession::new("bob")).await.unwrap();
    assert!(store.load(&other).await.unwrap().is_some());
}

#[tokio::test]
async fn user_index_has_a_ttl_and_disappears_with_the_last_session() {
    let (server, prefix, store) = started().await;
    let mut conn = raw(&server).await;
    let index = format!("{prefix}:u:alice");

    let (t1, _) = store.create(NewSession::new("alice")).await.unwrap();
    let (t2, _) = store.create(NewSession::new("alice")).await.unwrap();
    let ttl: i64 = conn.pttl(&index).await.unwrap();
    let absolute = 12 * 3600 * 1000; // the default absolute timeout, ms
    assert!(ttl > 0 && ttl <= absolute, "index TTL {ttl}");
    let session_ttl: i64 = conn.pttl(session_key(&prefix, &t1)).await.unwrap();
    assert!(session_ttl > 0 && session_ttl <= 30 * 60 * 1000); // the default idle timeout

    // Rotation swaps the index entry (the old member must not linger until a prune).
    let t1 = store.rotate(&t1).await.unwrap();
    let members: Vec<Vec<u8>> = conn.zrange(&index, 0, -1).await.unwrap();
    assert_eq!(members.len(), 2, "rotation left a stale index entry");
    assert!(members.contains(&t1.key().as_bytes().to_vec()));

    store.delete(&t1).await.unwrap();
    let members: Vec<Vec<u8>> = conn.zrange(&index, 0, -1).await.unwrap();
    assert_eq!(
        members,
        vec![t2.key().as_bytes().to_vec()],
        "logout left its index entry"
    );
    store.delete(&t2).await.unwrap();
    let exists: bool = conn.exists(&index).await.unwrap();
    assert!(!exists, "empty index left behind");
}

#[tokio::test]
async fn key_prefixes_keep_applications_apart() {
    let server = RedisServer::start().unwrap();
    let a = RedisStore::connect(server.url(), config()).await.unwrap();
    let b = RedisStore::connect(server.url(), config()).await.unwrap();
    let (token, _) = a.create(NewSession::new("alice")).await.unwrap();
    assert!(b.load(&token).await.unwrap().is_none());
    assert!(b.list_user_sessions("alice").await.unwrap().is_empty());
    assert_eq!(
        b.delete_user_sessions("alice", EndReason::Revoked)
            .await
            .unwrap(),
        0
    );
    assert!(a.load(&token).await.unwrap().is_some());
}

#[tokio::test]
async fn lost_script_cache_is_reloaded_transparently() {
    let server = RedisServer::start_local().unwrap();
    let store = RedisStore::connect(server.url(), config()).await.unwrap();
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Writes are scripts; `load` is a plain GETEX and needs none.
    store.save_data(&token, &SessionData::new()).await.unwrap();
    let token = store.rotate(&token).await.unwrap();
    assert!(store.load(&token).await.unwrap().is_some());
}

#[tokio::test]
async fn the_expiry_never_outlives_the_absolute_deadline() {
    let server = RedisServer::start_local().unwrap();
    // The store's "now" is a manual clock, so the test can put a load just before the deadline
    // (Redis's TTLs still pass in real time).
    let clock = Clock::manual(std::time::SystemTime::now());
    let prefix = unique_prefix();
    let config = SessionConfig::builder()
        .key_prefix(prefix.as_str())
        .clock(clock.clone())
        .idle_timeout(Duration::from_secs(60))
        .absolute_timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let store = RedisStore::connect(server.url(), config.clone())
        .await
        .unwrap();
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
    let key = session_key(&prefix, &token);
    let mut conn = raw(&server).await;
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 1500, "TTL {ttl} ms at creation");

    // Within the last idle period before the deadline each load is one script that slides the
    // expiry only up to the deadline (the first load also puts the script into Redis's cache).
    assert!(store.load(&token).await.unwrap().is_some());
    let commands = common::monitored(server.port(), async {
        for _ in 0..5 {
            assert!(store.load(&token).await.unwrap().is_some());
        }
    })
    .await;
    common::assert_each_is(&commands, 5, "evalsha");
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 1500, "TTL {ttl} ms after loads");

    // 30 ms before the deadline (by the store's clock), a load slides the expiry only up to it:
    // Redis's TTL is what is left, at most 30 ms.
    clock.advance(Duration::from_millis(1470)).unwrap();
    assert!(store.load(&token).await.unwrap().is_some());
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!(
        ttl > 0 && ttl <= 30,
        "TTL {ttl} ms 30 ms before the deadline"
    );

    // Redis drops the key itself once that TTL passes (polled: a normal run waits about 30 ms;
    // the 5 s limit is for a busy machine, not for the store).
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let exists: bool = conn.exists(&key).await.unwrap();
            if !exists {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the key outlived the absolute deadline");

    // Past the deadline the token alone tells the store so: no command at all.
    clock.advance(Duration::from_millis(30)).unwrap();
    let commands = common::monitored(server.port(), async {
        assert!(store.load(&token).await.unwrap().is_none());
    })
    .await;
    assert!(commands.is_empty(), "{commands:#?}");
}

#[tokio::test]
async fn killed_redis_is_unavailable_and_the_same_store_recovers_after_restart() {
    let mut server = RedisServer::start_local().unwrap();
    let store = RedisStore::connect(server.url(), config()).await.unwrap();
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();

    server.kill();
    for _ in 0..3 {
        match store.load(&token).await {
            Err(Error::Unavailable { kind, detail }) => {
                assert_eq!(kind, UnavailableKind::Connection, "{detail}");
                assert!(detail.contains(server.url()), "{detail}");
            }
            other => panic!("a dead Redis must be unavailable, got {other:?}"),
        }
    }
    assert!(matches!(
        store.create(NewSession::new("bob")).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(store.ping().await, Err(Error::Unavailable { .. })));

    server.restart().unwrap();
    // Nothing was persisted, so the old session is gone; the store itself works again.
    assert!(store.load(&token).await.unwrap().is_none());
    let (fresh, _) = store.create(NewSession::new("alice")).await.unwrap();
    assert_eq!(
        store.load(&fresh).await.unwrap().unwrap().user_id(),
        "alice"
    );
}

#[tokio::test]
async fn hung_redis_times_out_and_recovers() {
    let server = RedisServer::start_local().unwrap();
    let store = RedisStore::connect(server.url(), config()).await.unwrap();
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();

    server.pause();
    match store.load(&token).await {
        Err(Error::Unavailable {
            kind: UnavailableKind::TimedOut,
            ..
        }) => {}
        other => panic!("a hung Redis must time out, got {other:?}"),
    }
    assert!(matches!(
        store.create(NewSession::new("bob")).await,
        Err(Error::Unavailable { .. })
    ));
    server.resume();
    assert!(
        store.load(&token).await.unwrap().is_some(),
        "session lost after the hang"
    );
}

#[tokio::test]
async fn unreachable_url_fails_fast_with_a_clear_error() {
    // Nothing listens on the port of a server we just killed.
    let mut server = RedisServer::start_local().unwrap();
    server.kill();
    let err = RedisStore::connect(server.url(), config())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("is Redis running") || err.to_string().contains("Redis at"));
    let bad = RedisStore::new("not a url", config()).unwrap_err();
    assert!(matches!(bad, Error::Config(_)), "{bad}");
}

#[tokio::test]
async fn writes_fail_closed_when_replicas_do_not_acknowledge() {
    let server = RedisServer::start_local().unwrap();
    // A server without replicas can never acknowledge: logins must fail, not half-succeed.
    let store = RedisStore::connect(server.url(), config())
        .await
        .unwrap()
        .with_replica_acks(1, Duration::from_millis(50))
        .unwrap();
    match store.create(NewSession::new("alice")).await {
        Err(Error::Unavailable {
            kind: UnavailableKind::NotReplicated,
            ..
        }) => {}
        other => panic!("expected NotReplicated, got {other:?}"),
    }
    let plain = RedisStore::connect(server.url(), config()).await.unwrap();
    assert!(
        plain.with_replica_acks(1, Duration::from_secs(5)).is_err(),
        "a WAIT timeout above the operation timeout must be refused"
    );
}

#[tokio::test]
async fn calls_beyond_the_in_flight_bound_fail_at_once_as_exhausted() {
    let server = RedisServer::start_local().unwrap();
    let store = RedisStore::connect(server.url(), config())
        .await
        .unwrap()
        .with_pool_size(1)
        .unwrap()
        .with_max_in_flight(3)
        .unwrap()
        .with_operation_timeout(Duration::from_millis(400))
        .unwrap();
    let store = std::sync::Arc::new(store);
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
    // A hung Redis: three loads wait on the shared connection until they time out; the ones
    // beyond the bound of three in flight are refused at once instead of queueing.
    server.pause();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let store = std::sync::Arc::clone(&store);
        let token = token.clone();
        tasks.spawn(async move { store.load(&token).await });
    }
    // On this single-threaded runtime the three tasks run when the test yields: each counts
    // itself in flight before its first wait (on the hung connection). Were one not yet in
    // flight, the call below would take its place and time out, and the test would fail.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let started = std::time::Instant::now();
    match store.load(&token).await {
        Err(Error::Unavailable {
            kind: UnavailableKind::PoolExhausted,
            ..
        }) => {}
        other => panic!("a call beyond the bound must be refused as exhausted, got {other:?}"),
    }
    // "At once": well under the 400 ms a call waiting for the hung connection would take
    // (generous for a busy CI machine; the kind above already says it did not wait).
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "refused at once, not after waiting ({:?})",
        started.elapsed()
    );
    while let Some(res) = tasks.join_next().await {
        match res.unwrap() {
            Err(Error::Unavailable {
                kind: UnavailableKind::TimedOut,
                ..
            }) => {}
            other => panic!("a hung Redis must time out, got {other:?}"),
        }
    }
    server.resume();
    assert!(
        store.load(&token).await.unwrap().is_some(),
        "the store recovers: the timed-out connection was replaced"
    );
}

/// The record layout is known to Rust (`record.rs`) and to the Lua scripts, which read and
/// splice it by offset. Every script that rewrites a record must leave every field as Rust
/// reads it: user, auth time, times, roles, permissions, label and data. The configuration
/// keeps every load in the session's last idle period (absolute < idle), so each load is
/// `load.lua`, which rewrites last-seen in place (touch interval 1 ms).
#[tokio::test]
async fn scripts_and_rust_read_every_field_of_the_record_alike() {
    let server = RedisServer::start().unwrap();
    // Time passes by the store's clock (the records' times), not by sleeping.
    let clock = Clock::manual(std::time::SystemTime::now());
    let prefix = unique_prefix();
    let config = SessionConfig::builder()
        .key_prefix(prefix.as_str())
        .clock(clock.clone())
        .idle_timeout(Duration::from_secs(120))
        .absolute_timeout(Duration::from_secs(60))
        .touch_interval(Duration::from_millis(1))
        .build()
        .unwrap();
    let store = RedisStore::connect(server.url(), config.clone())
        .await
        .unwrap();
    let label = "Mozilla/5.0 (X11; Linux) é – ünïcode";
    let mut data = SessionData::new();
    data.insert("cart", &[1, 2, 3]).unwrap();
    let (token, created) = store
        .create(
            NewSession::new("zoë")
                .with_roles(["USER", "ADMIN"])
                .with_permissions(["orders:read"])
                .with_user_agent(label)
                .with_client_ip("2001:db8:5:6::7".parse().unwrap())
                .with_method("password")
                .with_data(data.clone()),
        )
        .await
        .unwrap();
    let same = |s: &session_core::Session, roles: &[&str], perms: &[&str], step: &str| {
        assert_eq!(s.user_id(), "zoë", "{step}");
        assert_eq!(s.roles(), roles, "{step}");
        assert_eq!(s.permissions(), perms, "{step}");
        assert_eq!(s.user_agent(), Some(label), "{step}");
        assert_eq!(s.data(), &data, "{step}");
        assert_eq!(s.created_at(), created.created_at(), "{step}");
        assert_eq!(s.expires_at(), created.expires_at(), "{step}");
        assert!(s.last_seen_at() >= created.created_at(), "{step}");
    };
    clock.advance(Duration::from_millis(5)).unwrap();
    let loaded = store.load(&token).await.unwrap().expect("load.lua");
    same(&loaded, &["ADMIN", "USER"], &["orders:read"], "load.lua");
    assert_eq!(loaded.auth_time(), created.auth_time(), "load.lua");

    // set_authz.lua splices the roles block after the label.
    store
        .set_user_authz("zoë", &["USER".to_owned()], &["x".to_owned()])
        .await
        .unwrap();
    clock.advance(Duration::from_millis(5)).unwrap();
    let loaded = store
        .load(&token)
        .await
        .unwrap()
        .expect("after set_authz.lua");
    same(&loaded, &["USER"], &["x"], "set_authz.lua");
    assert_eq!(loaded.auth_time(), created.auth_time(), "set_authz.lua");

    // save_data.lua keeps the head and roles, replaces the data.
    store.save_data(&token, &data).await.unwrap();
    let loaded = store
        .load(&token)
        .await
        .unwrap()
        .expect("after save_data.lua");
    same(&loaded, &["USER"], &["x"], "save_data.lua");

    // update_data.lua finds the data after the label and the roles block, and keeps both.
    let mut changes = session_core::DataChanges::new();
    changes.set("cart", &[1, 2, 3]).unwrap();
    let update = store.update_data(&token, &changes).await.unwrap();
    assert_eq!(update, data);
    let loaded = store
        .load(&token)
        .await
        .unwrap()
        .expect("after update_data.lua");
    same(&loaded, &["USER"], &["x"], "update_data.lua");

    // rotate.lua reads the user and the created time from the header.
    let rotated = store.rotate(&token).await.unwrap();
    let loaded = store
        .load(&rotated)
        .await
        .unwrap()
        .expect("after rotate.lua");
    same(&loaded, &["USER"], &["x"], "rotate.lua");
    assert_eq!(loaded.auth_time(), created.auth_time(), "rotate.lua");

    // reauth.lua writes the auth time and nothing else.
    clock.advance(Duration::from_millis(20)).unwrap();
    let (fresh, returned) = store.reauthenticate(&rotated, "password").await.unwrap();
    let loaded = store.load(&fresh).await.unwrap().expect("after reauth.lua");
    same(&loaded, &["USER"], &["x"], "reauth.lua");
    assert!(loaded.auth_time() > created.auth_time(), "reauth.lua");
    assert_eq!(loaded.auth_time(), returned.auth_time(), "reauth.lua");

    // list.lua hands the records to Rust; the index names the session once.
    let listed = store.list_user_sessions("zoë").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, loaded.handle());
    assert_eq!(listed[0].user_agent.as_deref(), Some(label));
    assert_eq!(listed[0].network.as_deref(), Some("2001:db8:5::/48"));
    assert_eq!(listed[0].method.as_deref(), Some("password"));

    // delete.lua reads the user id to un-index the session.
    assert!(store.delete(&fresh).await.unwrap());
    let mut conn = raw(&server).await;
    let index = format!("{prefix}:u:zoë");
    let members: i64 = conn.zcard(&index).await.unwrap();
    assert_eq!(members, 0, "delete.lua left the session indexed");
}

/// `update_data.lua` reads any JSON object in the data part (whitespace included, as another
/// encoder might write it) and keeps the untouched members as they are; bytes that are not a
/// JSON object there make the call `Corrupt` and stay untouched.
#[tokio::test]
async fn update_data_reads_any_json_object_and_leaves_foreign_data_alone() {
    let (server, prefix, store) = started().await;
    let mut data = SessionData::new();
    data.insert("a", &[1, 2]).unwrap();
    data.insert("b", "x y").unwrap();
    data.insert("c", &serde_json::json!({"d": [true, null]}))
        .unwrap();
    let (token, _) = store
        .create(NewSession::new("ivan").with_data(data.clone()))
        .await
        .unwrap();
    let key = session_key(&prefix, &token);
    let mut conn = raw(&server).await;
    let stored: Vec<u8> = conn.get(&key).await.unwrap();
    let compact = serde_json::to_vec(&serde_json::json!({
        "a": [1, 2], "b": "x y", "c": {"d": [true, null]}
    }))
    .unwrap();
    assert!(stored.ends_with(&compact), "the data part is compact JSON");
    let head = &stored[..stored.len() - compact.len()];
    let with_data = |json: &[u8]| [head, json].concat();

    let pretty =
        b" {\n  \"a\" : [ 1, 2 ] ,\n\t\"b\":\"x y\",\r\n  \"c\": { \"d\": [true, null] }\n} ";
    let () = conn.set(&key, with_data(pretty)).await.unwrap();
    let mut changes = session_core::DataChanges::new();
    changes
        .expect("b", Some("x y"))
        .unwrap()
        .set("b", "z")
        .unwrap()
        .set("e", &5)
        .unwrap();
    let update = store.update_data(&token, &changes).await.unwrap();
    let mut want = data.clone();
    want.insert("b", "z").unwrap();
    want.insert("e", &5).unwrap();
    assert_eq!(update, want);
    assert_eq!(store.load(&token).await.unwrap().unwrap().data(), &want);

    // No expectations: what refuses the foreign bytes is the script's reading, not a conflict.
    let mut blind = session_core::DataChanges::new();
    blind.set("b", "z").unwrap();
    for foreign in [
        &b"[1,2]"[..],
        b"{\"a\":1",
        b"{\"a\" 1}",
        b"not json",
        b"{\"a\":1}x",
        b"{}x",
        b"{\"a\":1,}",
    ] {
        let bytes = with_data(foreign);
        let () = conn.set(&key, &bytes).await.unwrap();
        assert!(
            matches!(
                store.update_data(&token, &blind).await,
                Err(Error::Corrupt(_))
            ),
            "{}",
            String::from_utf8_lossy(foreign)
        );
        let after: Vec<u8> = conn.get(&key).await.unwrap();
        assert_eq!(after, bytes, "foreign data rewritten");
    }
}

/// An anonymous session is one key and nothing else: no user index is made or touched by its
/// creation, writes, rotation, re-authentication or deletion, and its record says "no user".
#[tokio::test]
async fn anonymous_session_is_one_key_and_touches_no_index() {
    let (server, prefix, store) = started().await;
    let mut conn = raw(&server).await;
    let keys = |mut conn: redis::aio::MultiplexedConnection, prefix: String| async move {
        let mut all: Vec<Vec<u8>> = conn.keys(format!("{prefix}:*")).await.unwrap();
        all.sort();
        all
    };
    let (token, _) = store
        .create(NewSession::anonymous().with_data(SessionData::new()))
        .await
        .unwrap();
    assert_eq!(
        keys(conn.clone(), prefix.clone()).await,
        vec![session_key(&prefix, &token)]
    );
    let mut changes = session_core::DataChanges::new();
    changes.set("cart", &["apple"]).unwrap();
    store.update_data(&token, &changes).await.unwrap();
    let rotated = store.rotate(&token).await.unwrap();
    let (reauthed, session) = store.reauthenticate(&rotated, "password").await.unwrap();
    assert!(session.is_anonymous());
    assert_eq!(
        keys(conn.clone(), prefix.clone()).await,
        vec![session_key(&prefix, &reauthed)],
        "an index or a stale key appeared"
    );
    let ttl: i64 = conn.pttl(session_key(&prefix, &reauthed)).await.unwrap();
    assert!(ttl > 0 && ttl <= 30 * 60 * 1000, "TTL {ttl}");
    assert!(store.delete(&reauthed).await.unwrap());
    // Only why it ended is kept (for its token's next request), until its deadline.
    let left = keys(conn.clone(), prefix.clone()).await;
    let mut ended = format!("{prefix}:x:").into_bytes();
    ended.extend_from_slice(reauthed.key().as_bytes());
    assert_eq!(left, vec![ended]);
    assert_eq!(
        store.end_reason(&reauthed).await.unwrap(),
        Some(EndReason::LoggedOut)
    );
}
