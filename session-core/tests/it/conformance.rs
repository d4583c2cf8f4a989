//! The public conformance suite, run on both stores that ship with the crate.

use redis_harness::RedisServer;
use session_core::testing::conformance;
use session_core::{MemoryStore, RedisStore, Result, Session, SessionConfig, SessionKey, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    conformance::run(|config| async move { MemoryStore::new(config) }).await;
    conformance::run_throttle(|config| async move { MemoryStore::new(config) }).await;
}

/// A backend that retries every transaction once, as an optimistic one does on a conflict:
/// `Storage` allows it (`change` may run again; only the last run's result is written), so the
/// rules must give the same answer when their change function runs twice.
struct RetriesOnce(MemoryStore);

impl Storage for RetriesOnce {
    fn config(&self) -> &SessionConfig {
        Storage::config(&self.0)
    }

    async fn session(
        &self,
        key: &SessionKey,
        change: &mut (dyn FnMut(&mut Vec<Session>) -> Result<()> + Send),
    ) -> Result<()> {
        self.0
            .session(key, &mut |list| {
                change(&mut list.clone())?;
                change(list)
            })
            .await
    }

    async fn user(
        &self,
        user_id: &str,
        change: &mut (dyn FnMut(&mut Vec<Session>, &mut Vec<u8>) -> Result<()> + Send),
    ) -> Result<()> {
        self.0
            .user(user_id, &mut |list, value| {
                change(&mut list.clone(), &mut value.clone())?;
                change(list, value)
            })
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_that_retries_its_transactions_passes_the_conformance_suite() {
    conformance::run(|config| async move { RetriesOnce(MemoryStore::new(config)) }).await;
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
