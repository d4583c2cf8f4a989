//! The public conformance suite, run on both stores that ship with the crate.

use redis_harness::RedisServer;
use session_core::testing::conformance;
use session_core::{MemoryStore, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    conformance::run(|config| async move { MemoryStore::new(config) }).await;
    conformance::run_throttle(|config| async move { MemoryStore::new(config) }).await;
}

/// Runs the suite on Redis stores made by `finish` from a connected store.
async fn run_on_redis(finish: fn(RedisStore) -> RedisStore) {
    let server = RedisServer::start().expect("a Redis server for the tests");
    let url = server.url().to_owned();
    let make = |config| {
        let url = url.clone();
        async move {
            finish(
                RedisStore::connect(&url, config)
                    .await
                    .expect("connect to the test Redis"),
            )
        }
    };
    conformance::run(make).await;
    conformance::run_throttle(make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_passes_the_conformance_suite() {
    run_on_redis(|store| store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_with_the_client_side_cache_passes_the_conformance_suite() {
    run_on_redis(|store| {
        store
            .with_cache(session_core::CacheConfig::default())
            .expect("cache on a single server")
    })
    .await;
}
