//! The least-privilege Redis ACL of SECURITY.md ("Who may write session records") is enough
//! for the store: the whole conformance suite passes as that user, with and without the
//! client-side cache. And the application's other Redis user of the recipe cannot write, read
//! or delete a session key, so write access to the application's data does not mint sessions.

use redis_harness::RedisServer;
use session_core::testing::conformance;
use session_core::{CacheConfig, RedisStore};

/// The documented rule for the sessions user, with `conformance-*` for the key prefix (the
/// suite gives each case a prefix of its own under it).
const SESSIONS_USER: &str = "on >sessions-secret resetkeys ~conformance-* resetchannels \
     -@all +@read +@write +@keyspace +@string +@sortedset +@scripting +@transaction \
     +@connection -@dangerous";

/// The documented rule for the rest of the application: everything but the session prefix.
const APP_USER: &str =
    "on >app-secret resetkeys ~app:* resetchannels +@all -@dangerous +client|tracking";

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

async fn run_as_sessions_user(with_cache: bool) {
    let server = RedisServer::start_local().expect("a Redis server of the test's own");
    acl(server.url(), "sessions", SESSIONS_USER);
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
        let store = make(config).await;
        let (token, _) = store.create(NewSession::new("ada")).await.expect("create");
        for _ in 0..3 {
            store.load(&token).await.expect("load").expect("live");
        }
        let stats = store.cache_stats().expect("the cache is on");
        assert!(
            stats.hits >= 1,
            "no cache hit as the sessions user: {stats:?}"
        );
    }
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
async fn the_apps_other_user_cannot_touch_session_keys() {
    let server = RedisServer::start_local().expect("a Redis server of the test's own");
    acl(server.url(), "app", APP_USER);
    let client = redis::Client::open(url_as(&server, "app", "app-secret")).expect("URL");
    let mut app = client.get_connection().expect("connect as the app user");
    // Its own keys: fine.
    redis::cmd("SET")
        .arg("app:greeting")
        .arg("hello")
        .query::<()>(&mut app)
        .expect("the app user writes its own keys");
    // A session key (what minting a session takes), reading one, ending one: refused.
    for (what, cmd) in [
        (
            "SET",
            redis::cmd("SET")
                .arg("conformance-x:s:key")
                .arg("v")
                .clone(),
        ),
        ("GET", redis::cmd("GET").arg("conformance-x:s:key").clone()),
        ("DEL", redis::cmd("DEL").arg("conformance-x:s:key").clone()),
    ] {
        let err = cmd
            .query::<redis::Value>(&mut app)
            .expect_err("the app user touched a session key");
        assert_eq!(err.code(), Some("NOPERM"), "{what}: {err}");
    }
    // Nor through a script.
    let err = redis::cmd("EVAL")
        .arg("return redis.call('SET', KEYS[1], 'v')")
        .arg(1)
        .arg("conformance-x:s:key")
        .query::<redis::Value>(&mut app)
        .expect_err("a script of the app user wrote a session key");
    assert_eq!(err.code(), Some("NOPERM"), "EVAL: {err}");
}
