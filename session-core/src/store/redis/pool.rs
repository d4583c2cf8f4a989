//! Connections: the three topologies, the pools that hold their connections, and the mapping
//! of Redis and pool errors to [`Error::Unavailable`].

use std::future::Future;
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, Object, Pool, PoolError, RecycleResult};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::config::SessionConfig;
use crate::error::{Error, Result, UnavailableKind};

/// Where a [`RedisStore`](crate::RedisStore) keeps its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis server: `redis://[:password@]host:port[/db]`.
    Single(String),
    /// A Redis Cluster, given some of its nodes (`redis://host:port` each); the client learns
    /// the rest of the cluster from them and follows slot migrations and failovers.
    Cluster(Vec<String>),
    /// A primary managed by Redis Sentinel: the sentinels' URLs and the service (master) name.
    /// Connections go to whichever server the sentinels currently name as primary.
    Sentinel {
        /// `redis://host:port` of each sentinel.
        sentinels: Vec<String>,
        /// The name the sentinels monitor the primary under (`sentinel monitor <name> ...`).
        service: String,
    },
}

impl RedisTarget {
    /// The target for messages: URLs without passwords.
    pub(crate) fn describe(&self) -> String {
        match self {
            RedisTarget::Single(url) => redact(url),
            RedisTarget::Cluster(nodes) => format!(
                "cluster [{}]",
                nodes
                    .iter()
                    .map(|n| redact(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            RedisTarget::Sentinel { sentinels, service } => format!(
                "sentinel service {service:?} via [{}]",
                sentinels
                    .iter()
                    .map(|n| redact(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A connection of the store's pool: a plain multiplexed connection (single server, or the
/// current primary behind Sentinel) or a cluster connection. Use it with any `redis` command:
/// it implements [`redis::aio::ConnectionLike`].
#[derive(Clone)]
pub enum Connection {
    /// One server.
    Single(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A deadpool-redis manager minus the `PING` it sends on every checkout (a second round trip
/// per request). Connections whose call failed never come back to the pool
/// ([`Pools::run`] takes them out), so there is nothing to check on recycle.
pub(crate) struct Fast<M>(M);

impl<M> managed::Manager for Fast<M>
where
    M: managed::Manager<Error = RedisError>,
{
    type Type = M::Type;
    type Error = RedisError;

    async fn create(&self) -> Result<M::Type, RedisError> {
        self.0.create().await
    }

    async fn recycle(&self, _: &mut M::Type, _: &Metrics) -> RecycleResult<RedisError> {
        Ok(())
    }
}

/// The pool of the chosen topology.
pub(crate) enum Pools {
    Single(Pool<Fast<deadpool_redis::Manager>>),
    Cluster(Pool<Fast<deadpool_redis::cluster::Manager>>),
    Sentinel(Pool<Fast<deadpool_redis::sentinel::Manager>>),
}

impl Pools {
    pub(crate) fn new(target: &RedisTarget, config: &SessionConfig) -> Result<Self> {
        let what = target.describe();
        let bad = |e: RedisError| Error::Config(format!("Redis target {what}: {e}"));
        let size = config.pool_size();
        let built = match target {
            RedisTarget::Single(url) => {
                let connection = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.operation_timeout()))
                    .set_response_timeout(Some(config.operation_timeout()));
                let manager = deadpool_redis::Manager::new_with_config(url.as_str(), connection)
                    .map_err(bad)?;
                Pool::builder(Fast(manager))
                    .max_size(size)
                    .build()
                    .map(Pools::Single)
            }
            RedisTarget::Cluster(nodes) => {
                if nodes.is_empty() {
                    return Err(Error::Config(
                        "a Redis Cluster target needs at least one node".into(),
                    ));
                }
                let manager =
                    deadpool_redis::cluster::Manager::new(nodes.clone(), false).map_err(bad)?;
                Pool::builder(Fast(manager))
                    .max_size(size)
                    .build()
                    .map(Pools::Cluster)
            }
            RedisTarget::Sentinel { sentinels, service } => {
                if sentinels.is_empty() || service.is_empty() {
                    return Err(Error::Config(
                        "a Sentinel target needs at least one sentinel and a service name".into(),
                    ));
                }
                let manager = deadpool_redis::sentinel::Manager::new(
                    sentinels.clone(),
                    service.clone(),
                    None,
                    deadpool_redis::sentinel::SentinelServerType::Master,
                )
                .map_err(bad)?;
                Pool::builder(Fast(manager))
                    .max_size(size)
                    .build()
                    .map(Pools::Sentinel)
            }
        };
        built.map_err(|e| Error::Config(format!("Redis pool: {e}")))
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Pools::Cluster(_))
    }

    /// Runs `f` on a pooled connection within `limit`; see
    /// [`RedisStore::with_connection`](crate::RedisStore::with_connection).
    pub(crate) async fn run<T, F, Fut>(&self, limit: Duration, target: &str, f: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match self {
            Pools::Single(p) => run_on(p, Connection::Single, limit, target, f).await,
            Pools::Sentinel(p) => run_on(p, Connection::Single, limit, target, f).await,
            Pools::Cluster(p) => run_on(p, Connection::Cluster, limit, target, f).await,
        }
    }
}

async fn run_on<M, T, F, Fut>(
    pool: &Pool<Fast<M>>,
    wrap: fn(M::Type) -> Connection,
    limit: Duration,
    target: &str,
    f: F,
) -> Result<T>
where
    M: managed::Manager<Error = RedisError>,
    M::Type: Clone,
    F: FnOnce(Connection) -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    let started = Instant::now();
    // Decided before waiting: every connection was busy when this call asked for one.
    let busy = {
        let status = pool.status();
        status.available == 0 && status.size >= status.max_size
    };
    // Boxed: deadpool's `get` future is ~7 KB (it can create a connection), and every call
    // of every operation would otherwise carry and copy it through each layer of futures;
    // one allocation is cheaper (`benches/RESULTS.md`, finding 8).
    let object = match tokio::time::timeout(limit, Box::pin(pool.get())).await {
        Ok(Ok(object)) => object,
        Ok(Err(PoolError::Backend(e))) => return Err(redis_error(&e, target)),
        Ok(Err(other)) => {
            return Err(Error::unavailable(
                UnavailableKind::Connection,
                format!("Redis at {target}: {other}"),
            ))
        }
        Err(_) if busy => {
            return Err(Error::unavailable(
                UnavailableKind::PoolExhausted,
                format!(
                    "all {} connections to {target} stayed busy for {limit:?}; \
                     raise SessionConfig::pool_size",
                    pool.status().max_size
                ),
            ))
        }
        Err(_) => return Err(timed_out(limit, target)),
    };
    let conn = wrap((*object).clone());
    let remaining = limit.saturating_sub(started.elapsed());
    match tokio::time::timeout(remaining, f(conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            drop(Object::take(object));
            Err(redis_error(&e, target))
        }
        Err(_) => {
            drop(Object::take(object));
            Err(timed_out(limit, target))
        }
    }
}

fn timed_out(limit: Duration, target: &str) -> Error {
    match Error::timed_out(limit) {
        Error::Unavailable { kind, detail } => Error::Unavailable {
            kind,
            detail: format!("Redis at {target}: {detail}"),
        },
        other => other,
    }
}

fn redis_error(e: &RedisError, target: &str) -> Error {
    let kind = if e.is_timeout() {
        UnavailableKind::TimedOut
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        UnavailableKind::Connection
    } else {
        // Includes READONLY (a demoted primary), CLUSTERDOWN, MOVED after a failover: the
        // connection is dropped and the next one goes where the topology now points.
        UnavailableKind::Server
    };
    Error::unavailable(kind, format!("Redis at {target}: {e}"))
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_messages() {
        assert_eq!(
            redact("redis://:hunter2@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let s = RedisTarget::Sentinel {
            sentinels: vec!["redis://:pw@s1:26379".into()],
            service: "main".into(),
        };
        assert!(!s.describe().contains("pw"));
    }
}
