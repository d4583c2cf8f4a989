//! `Metered` records one counter and one histogram sample per store call, labelled with the
//! operation and its outcome, around any store (here the Redis store on a real server).

use std::sync::Arc;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use redis_harness::RedisServer;
use session_core::metrics::{record_rejection, Metered, OPERATIONS_TOTAL, OPERATION_SECONDS};
use session_core::testing::conformance::unique_prefix;
use session_core::{Error, NewSession, RedisStore, SessionConfig, SessionStore, Token};

fn label_of<'a>(key: &'a CompositeKey, name: &str) -> Option<&'a str> {
    key.key()
        .labels()
        .find(|l| l.key() == name)
        .map(|l| l.value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_call_is_counted_by_operation_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let server = RedisServer::start().expect("a Redis server for the tests");
    let config = SessionConfig::builder()
        .key_prefix(unique_prefix())
        .build()
        .expect("config");
    let store = Arc::new(Metered::new(
        RedisStore::connect(server.url(), config)
            .await
            .expect("connect"),
    ));
    let (token, _) = store.create(NewSession::new("mia")).await.expect("create");
    assert!(store.load(&token).await.expect("load").is_some());
    let stranger =
        Token::generate(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .expect("token");
    assert!(store.load(&stranger).await.expect("load").is_none());
    assert!(matches!(
        store.create(NewSession::new("")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.rotate(&stranger).await,
        Err(Error::NotFound)
    ));
    record_rejection("forbidden");

    let mut counts = std::collections::BTreeMap::new();
    let mut durations = 0usize;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        match (key.kind(), key.key().name(), value) {
            (MetricKind::Counter, OPERATIONS_TOTAL, DebugValue::Counter(n)) => {
                let op = label_of(&key, "op").expect("op label").to_owned();
                let outcome = label_of(&key, "outcome").expect("outcome label").to_owned();
                counts.insert((op, outcome), n);
            }
            (MetricKind::Histogram, OPERATION_SECONDS, DebugValue::Histogram(samples)) => {
                durations += samples.len();
            }
            (MetricKind::Counter, "session_rejections_total", DebugValue::Counter(n)) => {
                assert_eq!(label_of(&key, "reason"), Some("forbidden"));
                assert_eq!(n, 1);
            }
            _ => {}
        }
    }
    let expected: std::collections::BTreeMap<(String, String), u64> = [
        (("create", "ok"), 1),
        (("create", "invalid_input"), 1),
        (("load", "ok"), 1),
        (("load", "none"), 1),
        (("rotate", "not_found"), 1),
    ]
    .into_iter()
    .map(|((op, outcome), n)| ((op.to_owned(), outcome.to_owned()), n))
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(durations, 5, "one duration sample per call");
}
