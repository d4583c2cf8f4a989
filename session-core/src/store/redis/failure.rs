//! What a failed Redis command means, decided once for every connection of the store (the
//! shared ones in `conn.rs`, the cache's tracking connection in `cache.rs`): what the caller
//! is told ([`Error::Unavailable`] and its kind), and whether the connection may carry more
//! calls.

use std::time::Duration;

use redis::RedisError;

use crate::error::{Error, UnavailableKind};

/// One failed command, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    /// What the caller is told.
    pub(crate) kind: UnavailableKind,
    /// The connection should carry no more calls: it is broken or timed out, or it talks to
    /// a server that no longer holds the data (a demoted primary: `READONLY`; a moved slot:
    /// `MOVED`, `ASK`; a cluster or primary that is down or loading). The next call connects
    /// anew, where the topology now points.
    pub(crate) replace: bool,
    /// The connection was reset or closed under the command (a killed client, a proxy's
    /// reset, a restarted server): a new connection may well work at once.
    pub(crate) reset: bool,
}

impl Failure {
    pub(crate) fn of(e: &RedisError) -> Self {
        let kind = if e.is_timeout() {
            UnavailableKind::TimedOut
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            UnavailableKind::Connection
        } else {
            // An answer from the server, including READONLY, CLUSTERDOWN and MOVED after a
            // failover (then `replace` sends the next call where the topology now points).
            UnavailableKind::Server
        };
        let replace = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
            || matches!(
                e.code(),
                Some(
                    "READONLY"
                        | "MASTERDOWN"
                        | "LOADING"
                        | "CLUSTERDOWN"
                        | "MOVED"
                        | "ASK"
                        | "TRYAGAIN"
                )
            );
        Self {
            kind,
            replace,
            reset: e.is_connection_dropped(),
        }
    }
}

/// `e` as the caller sees it: [`Error::Unavailable`] naming `at` (the target, without
/// secrets).
pub(crate) fn unavailable(e: &RedisError, at: &str) -> Error {
    Error::unavailable(Failure::of(e).kind, format!("Redis at {at}: {e}"))
}

/// A call that did not finish within `limit`.
pub(crate) fn timed_out(limit: Duration, at: &str) -> Error {
    match Error::timed_out(limit) {
        Error::Unavailable { kind, detail } => Error::Unavailable {
            kind,
            detail: format!("Redis at {at}: {detail}"),
        },
        other => other,
    }
}

/// Redis refused a command because the key holds another type: foreign data under a session
/// key, not an outage.
///
/// Inside a pipeline or `MULTI` the refusal is one of the pipeline's errors, and redis-rs
/// (1.8) gives the pipeline's error no code of its own (`code()` is `None`): the errors of its
/// commands are looked at instead.
pub(crate) fn is_wrong_type(e: &RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
        || e.clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, s)| s.code() == "WRONGTYPE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of another type under a key read by a plain pipeline and by a `MULTI` (what
    /// the Cluster engine sends to list and to rotate) is recognised as such: not an outage.
    #[tokio::test]
    async fn wrong_type_is_recognised_inside_a_pipeline_and_a_transaction() {
        let server = redis_harness::RedisServer::start_local().expect("a redis-server of our own");
        let client = redis::Client::open(server.url()).expect("url");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        redis::cmd("HSET")
            .arg("h")
            .arg("f")
            .arg("v")
            .query_async::<()>(&mut c)
            .await
            .expect("HSET");
        let alone = redis::cmd("GET")
            .arg("h")
            .query_async::<Option<Vec<u8>>>(&mut c)
            .await
            .expect_err("GET of a hash");
        let piped = redis::pipe()
            .cmd("GET")
            .arg("h")
            .cmd("PTTL")
            .arg("h")
            .query_async::<(Option<Vec<u8>>, i64)>(&mut c)
            .await
            .expect_err("GET of a hash in a pipeline");
        let transaction = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg("h")
            .cmd("PTTL")
            .arg("h")
            .query_async::<(Option<Vec<u8>>, i64)>(&mut c)
            .await
            .expect_err("GET of a hash in MULTI");
        // Why `is_wrong_type` looks inside: the pipeline's own error has no code.
        assert_eq!(piped.code(), None, "{piped:?}");
        assert_eq!(transaction.code(), None, "{transaction:?}");
        for e in [&alone, &piped, &transaction] {
            assert!(is_wrong_type(e), "{e:?}");
            let failure = Failure::of(e);
            assert_eq!(failure.kind, UnavailableKind::Server, "{e:?}");
            assert!(!failure.replace, "{e:?}");
        }
        // Other errors are not taken for it.
        let other = redis::cmd("INCR")
            .arg("h")
            .query_async::<i64>(&mut c)
            .await
            .expect_err("INCR of a hash");
        assert!(
            is_wrong_type(&other),
            "INCR of a hash is WRONGTYPE too: {other:?}"
        );
        let syntax = redis::cmd("SET")
            .arg("k")
            .query_async::<()>(&mut c)
            .await
            .expect_err("SET without a value");
        assert!(!is_wrong_type(&syntax), "{syntax:?}");
    }
}
