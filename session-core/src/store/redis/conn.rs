//! Connections: the three topologies, the few shared (pipelined) connections that every call
//! uses, and the mapping of Redis errors to [`Error::Unavailable`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use deadpool::managed;
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

/// A handle to one of the store's shared connections: a plain multiplexed connection (single server, or the
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

/// The shared connections of the chosen topology; deadpool-redis's managers create them.
pub(crate) enum Pools {
    Single(Shared<deadpool_redis::Manager>),
    Cluster(Shared<deadpool_redis::cluster::Manager>),
    Sentinel(Shared<deadpool_redis::sentinel::Manager>),
}

impl Pools {
    pub(crate) fn new(target: &RedisTarget, config: &SessionConfig) -> Result<Self> {
        let what = target.describe();
        let bad = |e: RedisError| Error::Config(format!("Redis target {what}: {e}"));
        let (size, limit) = (config.pool_size(), config.max_in_flight());
        Ok(match target {
            RedisTarget::Single(url) => {
                // No response timeout of the connection's own: every call runs under the
                // store's operation timeout (one budget for the whole call, a script's
                // NOSCRIPT retry included), and one timer per call is enough.
                let connection = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.operation_timeout()))
                    .set_response_timeout(None);
                let manager = deadpool_redis::Manager::new_with_config(url.as_str(), connection)
                    .map_err(bad)?;
                Pools::Single(Shared::new(manager, size, limit))
            }
            RedisTarget::Cluster(nodes) => {
                if nodes.is_empty() {
                    return Err(Error::Config(
                        "a Redis Cluster target needs at least one node".into(),
                    ));
                }
                let manager =
                    deadpool_redis::cluster::Manager::new(nodes.clone(), false).map_err(bad)?;
                Pools::Cluster(Shared::new(manager, size, limit))
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
                Pools::Sentinel(Shared::new(manager, size, limit))
            }
        })
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Pools::Cluster(_))
    }

    /// Runs `f` on a shared connection within `limit`; see
    /// [`RedisStore::on_connection`](crate::RedisStore::on_connection).
    pub(crate) async fn run<T, F, Fut>(&self, limit: Duration, target: &str, f: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match self {
            Pools::Single(p) => p.run(Connection::Single, limit, target, f).await,
            Pools::Sentinel(p) => p.run(Connection::Single, limit, target, f).await,
            Pools::Cluster(p) => p.run(Connection::Cluster, limit, target, f).await,
        }
    }
}

/// A few long-lived multiplexed connections that every call shares.
///
/// A multiplexed connection pipelines: commands from concurrent calls are written back to back
/// and their replies matched in order, so one connection carries many calls at once. Checking a
/// connection out for a call's whole round trip (a classic pool) would throw that away: each
/// call would wait for its own reply before the connection could carry the next. So a call
/// takes no connection for itself; it clones a handle to one of `pool_size` shared connections
/// (round robin) and sends its command.
///
/// - **Broken connections** are replaced: a call that fails with a connection error, times
///   out, or meets a server that is no longer the primary (`READONLY`, `MOVED`, ...) marks its
///   connection dead, and the next call on that slot connects anew (one caller connects, the
///   others wait for it within their own time budget). In-flight calls on the dead connection
///   fail like it (503).
/// - **Overload** is bounded: at most `max_in_flight` calls at once; beyond that a call fails
///   at once with [`UnavailableKind::PoolExhausted`] instead of queueing without end.
pub(crate) struct Shared<M: managed::Manager> {
    manager: M,
    slots: Box<[Slot<M::Type>]>,
    next: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// One shared connection: the live one (with its generation), or none until the next call
/// connects.
struct Slot<C> {
    live: RwLock<Option<(u64, C)>>,
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

/// Counts a call in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<M> Shared<M>
where
    M: managed::Manager<Error = RedisError>,
    M::Type: Clone,
{
    fn new(manager: M, size: usize, max_in_flight: usize) -> Self {
        let slots = (0..size.max(1))
            .map(|_| Slot {
                live: RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
            })
            .collect();
        Self {
            manager,
            slots,
            next: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight,
        }
    }

    async fn run<T, F, Fut>(
        &self,
        wrap: fn(M::Type) -> Connection,
        limit: Duration,
        target: &str,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let _counted = self.enter(target)?;
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let (generation, conn, budget) = match slot.current() {
            Some((generation, conn)) => (generation, conn, limit),
            None => {
                // Boxed: connecting is a large future that the common path never needs.
                let started = Instant::now();
                let (generation, conn) = Box::pin(self.connect(slot, limit, target)).await?;
                (generation, conn, limit.saturating_sub(started.elapsed()))
            }
        };
        match tokio::time::timeout(budget, f(wrap(conn))).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if breaks_connection(&e) {
                    slot.discard(generation);
                }
                Err(redis_error(&e, target))
            }
            Err(_) => {
                slot.discard(generation);
                Err(timed_out(limit, target))
            }
        }
    }

    fn enter(&self, target: &str) -> Result<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let counted = InFlight(&self.in_flight);
        if before >= self.max_in_flight {
            return Err(Error::unavailable(
                UnavailableKind::PoolExhausted,
                format!(
                    "{} calls to Redis at {target} are already in flight; Redis is overloaded \
                     or slow (raise SessionConfig::max_in_flight only if it is not)",
                    self.max_in_flight
                ),
            ));
        }
        Ok(counted)
    }

    /// The slot's connection, connecting it if it has none (one caller connects; the others
    /// wait for that within their budget).
    async fn connect(
        &self,
        slot: &Slot<M::Type>,
        limit: Duration,
        target: &str,
    ) -> Result<(u64, M::Type)> {
        let attempt = async {
            let _one = slot.connecting.lock().await;
            if let Some(live) = slot.current() {
                return Ok(live);
            }
            let conn = self
                .manager
                .create()
                .await
                .map_err(|e| redis_error(&e, target))?;
            let generation = slot.generation.fetch_add(1, Ordering::Relaxed) + 1;
            *slot.live.write().unwrap_or_else(|e| e.into_inner()) =
                Some((generation, conn.clone()));
            Ok((generation, conn))
        };
        tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| Err(timed_out(limit, target)))
    }
}

impl<C: Clone> Slot<C> {
    fn current(&self) -> Option<(u64, C)> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(g, c)| (*g, c.clone()))
    }

    /// Drops the connection of `generation`, unless it was already replaced.
    fn discard(&self, generation: u64) {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if live.as_ref().is_some_and(|(g, _)| *g == generation) {
            *live = None;
        }
    }
}

/// Whether an error means the connection should not carry more calls: it is broken, timed out,
/// or talks to a server that no longer holds the data (a demoted primary, a moved slot).
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error()
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
        )
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
