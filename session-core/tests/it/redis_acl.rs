//! The least-privilege Redis ACL of SECURITY.md ("Who may write session records"), as tested
//! rules:
//!
//! - the sessions user gets only the commands the store runs, in two variants: without the
//!   client-side cache (no `CLIENT TRACKING`) and with it. The whole conformance suite passes as
//!   that user under each, and the commands the store does not need are refused: keyspace
//!   enumeration (`SCAN`, `KEYS`, `RANDOMKEY`), `SCRIPT FLUSH`/`KILL`, and `CLIENT TRACKING`
//!   (whose `BCAST PREFIX` mode is a live feed of key names that no key pattern limits) when the
//!   cache is off;
//! - the application's other user can neither write, read nor delete a session key (so write
//!   access to the application's data does not mint sessions), nor list session keys or watch
//!   them change.

use crate::common::conformance;
use redis_harness::RedisServer;
use session_core::{CacheConfig, RedisStore};

/// The documented rule for the sessions user (single server, cache off), with `conformance-*`
/// for the key prefix (the suite gives each case a prefix of its own under it): exactly the
/// commands the store runs, itself and inside its scripts (`EVALSHA`, and `SCRIPT LOAD` when
/// Redis answers `NOSCRIPT`: never `EVAL`). `GETDEL` is for Redis Cluster's split steps, `WAIT`
/// for `with_replica_acks`, `SELECT` for a URL that names a database.
const SESSIONS_USER: &str = "on >sessions-secret resetkeys ~conformance-* resetchannels -@all \
     +get +set +getex +getdel +del +exists +type +pttl +pexpire +hget +hincrby \
     +zadd +zrange +zrem +zcard +zscore +multi +exec +lpush +ltrim +lrange \
     +evalsha +script|load +ping +wait +select";

/// What the cache-on variant adds: the tracking connection of `RedisStore::with_cache`.
const CACHE_ON: &str = "+client|tracking +client|caching +client|setname";

/// The documented rule for the rest of the application: everything but the session prefix,
/// the dangerous commands, and the ways to learn session key names without reading a key.
const APP_USER: &str = "on >app-secret resetkeys ~app:* resetchannels +@all -@dangerous \
     -scan -keys -randomkey -cluster|getkeysinslot -cluster|countkeysinslot \
     -client|tracking -script|flush -script|kill";

fn acl(url: &str, user: &str, rule: &str) {
    let client = redis::Client::open(url).expect("test Redis URL");
    let mut admin = client
        .get_connection()
        .expect("connect as the default user");
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg(user);
    for word in rule.split_whitespace() {
        cmd.arg(word);
    }
    cmd.query::<()>(&mut admin).expect("ACL SETUSER");
}

fn url_as(server: &RedisServer, user: &str, password: &str) -> String {
    format!("redis://{user}:{password}@127.0.0.1:{}", server.port())
}

/// Runs `cmd` as whoever `conn` is and expects `NOPERM`.
fn refused(conn: &mut redis::Connection, who: &str, cmd: &redis::Cmd) {
    let what: Vec<String> = cmd
        .args_iter()
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => "<cursor>".to_owned(),
        })
        .collect();
    let what = what.join(" ");
    match cmd.query::<redis::Value>(conn) {
        Ok(reply) => panic!("{who} ran {what}: {reply:?}"),
        Err(err) => assert_eq!(err.code(), Some("NOPERM"), "{who}: {what}: {err}"),
    }
}

/// The commands that name keys without reading one, or disturb the store's scripts: refused
/// to both users of the recipe (`CLIENT TRACKING` too, unless `tracking_allowed`).
fn assert_no_enumeration(conn: &mut redis::Connection, who: &str, tracking_allowed: bool) {
    let mut cmds = vec![
        redis::cmd("SCAN").arg(0).clone(),
        redis::cmd("KEYS").arg("*").clone(),
        redis::cmd("RANDOMKEY").clone(),
        redis::cmd("SCRIPT").arg("FLUSH").clone(),
        redis::cmd("SCRIPT").arg("KILL").clone(),
    ];
    if !tracking_allowed {
        cmds.push(
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("BCAST")
                .arg("PREFIX")
                .arg("conformance-")
                .clone(),
        );
    }
    for cmd in &cmds {
        refused(conn, who, cmd);
    }
}

async fn run_as_sessions_user(with_cache: bool) {
    let server = RedisServer::start_local().expect("a Redis server of the test's own");
    let rule = if with_cache {
        format!("{SESSIONS_USER} {CACHE_ON}")
    } else {
        SESSIONS_USER.to_owned()
    };
    acl(server.url(), "sessions", &rule);
    let url = url_as(&server, "sessions", "sessions-secret");
    let make = |config| {
        let url = url.clone();
        async move {
            let store = RedisStore::connect(&url, config)
                .await
                .expect("connect as the sessions user");
            if with_cache {
                store.with_cache(CacheConfig::default()).expect("cache")
            } else {
                store
            }
        }
    };
    conformance::run(make).await;
    conformance::run_throttle(make).await;
    if with_cache {
        // The cache really ran as this user (CLIENT TRACKING allowed), not silently off.
        use session_core::{NewSession, SessionConfig, SessionStore};
        let config = SessionConfig::builder()
            .key_prefix(conformance::unique_prefix())
            .build()
            .expect("config");
        let store = RedisStore::connect(&url, config)
            .await
            .expect("connect as the sessions user");
        let (store, meter) = crate::common::CacheMeter::made(|| {
            store.with_cache(CacheConfig::default()).expect("cache")
        });
        let (token, _) = store.create(NewSession::new("ada")).await.expect("create");
        for _ in 0..3 {
            store.load(&token).await.expect("load").expect("live");
        }
        let counts = meter.counts();
        assert!(
            counts.hits >= 1,
            "no cache hit as the sessions user: {counts:?}"
        );
    }
    if !with_cache {
        the_grants_for_a_database_and_replica_acks_work(&server).await;
    }
    let client = redis::Client::open(url).expect("URL");
    let mut conn = client
        .get_connection()
        .expect("connect as the sessions user");
    assert_no_enumeration(&mut conn, "the sessions user", with_cache);
    // The store's commands stop at its prefix.
    refused(
        &mut conn,
        "the sessions user",
        redis::cmd("GET").arg("app:greeting"),
    );
}

/// What the conformance suite does not reach on one server: a URL naming a database
/// (`SELECT`) and replica acknowledgements (`WAIT`; with no replica, the write is reported
/// not replicated, which is `WAIT` answering, not `NOPERM`).
async fn the_grants_for_a_database_and_replica_acks_work(server: &RedisServer) {
    use session_core::{Error, NewSession, SessionConfig, SessionStore, UnavailableKind};
    use std::time::Duration;
    let config = || {
        SessionConfig::builder()
            .key_prefix(conformance::unique_prefix())
            .build()
            .expect("config")
    };
    let db1 = format!("{}/1", url_as(server, "sessions", "sessions-secret"));
    let store = RedisStore::connect(&db1, config())
        .await
        .expect("connect to database 1 as the sessions user");
    let (token, _) = store.create(NewSession::new("ada")).await.expect("create");
    assert!(store.load(&token).await.expect("load").is_some());
    let acked = RedisStore::connect(&url_as(server, "sessions", "sessions-secret"), config())
        .await
        .expect("connect as the sessions user")
        .with_replica_acks(1, Duration::from_millis(50))
        .expect("replica acks");
    let err = acked
        .create(NewSession::new("ada"))
        .await
        .expect_err("no replica to acknowledge");
    assert!(
        matches!(
            err,
            Error::Unavailable {
                kind: UnavailableKind::NotReplicated,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_as_the_least_privilege_sessions_user() {
    run_as_sessions_user(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_store_works_as_the_least_privilege_sessions_user() {
    run_as_sessions_user(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_other_user_cannot_touch_or_list_session_keys() {
    let server = RedisServer::start_local().expect("a Redis server of the test's own");
    acl(server.url(), "app", APP_USER);
    // A session key for it to find.
    let admin = redis::Client::open(server.url()).expect("URL");
    let mut admin = admin.get_connection().expect("connect as the default user");
    redis::cmd("SET")
        .arg("conformance-x:s:key")
        .arg("v")
        .query::<()>(&mut admin)
        .expect("SET as the default user");
    let client = redis::Client::open(url_as(&server, "app", "app-secret")).expect("URL");
    let mut app = client.get_connection().expect("connect as the app user");
    // Its own keys: fine.
    redis::cmd("SET")
        .arg("app:greeting")
        .arg("hello")
        .query::<()>(&mut app)
        .expect("the app user writes its own keys");
    // A session key (what minting a session takes), reading one, ending one: refused.
    for cmd in [
        redis::cmd("SET")
            .arg("conformance-x:s:key")
            .arg("v")
            .clone(),
        redis::cmd("GET").arg("conformance-x:s:key").clone(),
        redis::cmd("DEL").arg("conformance-x:s:key").clone(),
        // Nor through a script.
        redis::cmd("EVAL")
            .arg("return redis.call('SET', KEYS[1], 'v')")
            .arg(1)
            .arg("conformance-x:s:key")
            .clone(),
    ] {
        refused(&mut app, "the app user", &cmd);
    }
    // Nor learn the session keys' names (which name users: `{prefix}:u:alice`).
    assert_no_enumeration(&mut app, "the app user", false);
    refused(
        &mut app,
        "the app user",
        redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(0).arg(10),
    );
}
