//! Connections: the three topologies and the few shared (pipelined) connections that every
//! call uses (what a failure means for a call and its connection: `failure.rs`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use deadpool::managed;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture,
    RedisResult, Value,
};

use super::failure::{timed_out, unavailable, Failure};
use crate::config::MAX_TIMEOUT;
use crate::error::{Error, Result, UnavailableKind};

/// Where a [`RedisStore`](crate::RedisStore) keeps its sessions.
///
/// A URL string converts to [`RedisTarget::Single`], so
/// [`RedisStore::new`](crate::RedisStore::new) takes either:
///
/// ```
/// use session_core::RedisTarget;
///
/// let target = RedisTarget::from("redis://127.0.0.1:6379");
/// assert_eq!(target, RedisTarget::Single("redis://127.0.0.1:6379".to_owned()));
/// ```
///
/// The URLs are not parsed here: [`RedisStore::new`](crate::RedisStore::new) parses them, and
/// answers [`Error::Config`] (naming the target, without its password) for one it cannot use.
///
/// Its `Debug` output hides the secrets in every URL it holds (passwords, as `***`), so a
/// target, or a settings struct that derives `Debug` over one, may be logged.
#[derive(Clone, PartialEq, Eq)]
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

/// One server, by its URL.
impl From<&str> for RedisTarget {
    fn from(url: &str) -> Self {
        RedisTarget::Single(url.to_owned())
    }
}

/// One server, by its URL.
impl From<String> for RedisTarget {
    fn from(url: String) -> Self {
        RedisTarget::Single(url)
    }
}

/// One server, by its URL.
impl From<&String> for RedisTarget {
    fn from(url: &String) -> Self {
        RedisTarget::Single(url.clone())
    }
}

/// Like the derived `Debug`, with every URL passed through `redact` (below).
impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |urls: &[String]| urls.iter().map(|u| redact(u)).collect::<Vec<_>>();
        match self {
            RedisTarget::Single(url) => f.debug_tuple("Single").field(&redact(url)).finish(),
            RedisTarget::Cluster(nodes) => {
                f.debug_tuple("Cluster").field(&redacted(nodes)).finish()
            }
            RedisTarget::Sentinel { sentinels, service } => f
                .debug_struct("Sentinel")
                .field("sentinels", &redacted(sentinels))
                .field("service", service)
                .finish(),
        }
    }
}

/// The kind of deployment a [`RedisTarget`] names: it decides the engine and what the write
/// path can offer (`writes.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topology {
    Single,
    Cluster,
    Sentinel,
}

impl RedisTarget {
    pub(crate) fn topology(&self) -> Topology {
        match self {
            RedisTarget::Single(_) => Topology::Single,
            RedisTarget::Cluster(_) => Topology::Cluster,
            RedisTarget::Sentinel { .. } => Topology::Sentinel,
        }
    }

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

/// A handle to one of the store's shared connections: a plain multiplexed connection (single
/// server, or the current primary behind Sentinel) or a cluster connection, for any `redis`
/// command (it implements [`redis::aio::ConnectionLike`]).
#[derive(Clone)]
pub(crate) enum Connection {
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

/// How the store talks to Redis, whatever the topology: set with
/// [`RedisStore::with_operation_timeout`](crate::RedisStore::with_operation_timeout),
/// [`with_pool_size`](crate::RedisStore::with_pool_size) and
/// [`with_max_in_flight`](crate::RedisStore::with_max_in_flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionSettings {
    /// The longest a call may take, connecting and a script's `NOSCRIPT` retry included.
    pub(super) operation_timeout: Duration,
    /// How many shared connections.
    pub(super) pool_size: usize,
    /// Most calls in flight at once.
    pub(super) max_in_flight: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(1),
            pool_size: 2,
            max_in_flight: 4096,
        }
    }
}

impl ConnectionSettings {
    /// Checks that each setting is in range.
    pub(super) fn check(&self) -> Result<()> {
        let timeout = self.operation_timeout;
        if timeout < Duration::from_millis(1) || timeout > MAX_TIMEOUT {
            return Err(Error::Config(format!(
                "operation_timeout must be between 1 ms and 100 years, got {timeout:?}"
            )));
        }
        if self.pool_size == 0 {
            return Err(Error::Config("pool_size must be at least 1".to_owned()));
        }
        if self.max_in_flight == 0 {
            return Err(Error::Config("max_in_flight must be at least 1".to_owned()));
        }
        Ok(())
    }
}

/// The shared connections of the chosen topology; deadpool-redis's managers create them.
pub(super) enum Pools {
    Single(Shared<deadpool_redis::Manager>),
    Cluster(Shared<deadpool_redis::cluster::Manager>),
    Sentinel(Shared<SentinelManager>),
}

impl Pools {
    /// The connections to `target`. No I/O.
    pub(super) fn new(target: &RedisTarget, settings: &ConnectionSettings) -> Result<Self> {
        let what = target.describe();
        let bad = |e: RedisError| Error::Config(format!("Redis target {what}: {e}"));
        let (size, limit) = (settings.pool_size, settings.max_in_flight);
        Ok(match target {
            RedisTarget::Single(url) => {
                // No response timeout of the connection's own: every call runs under the
                // store's operation timeout (one budget for the whole call, a script's
                // NOSCRIPT retry included), and one timer per call is enough.
                let connection = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(settings.operation_timeout))
                    .set_response_timeout(None);
                let manager = deadpool_redis::Manager::new_with_config(url.as_str(), connection)
                    .map_err(bad)?;
                Pools::Single(Shared::new(manager, None, size, limit))
            }
            RedisTarget::Cluster(nodes) => {
                if nodes.is_empty() {
                    return Err(Error::Config(
                        "a Redis Cluster target needs at least one node".into(),
                    ));
                }
                let manager =
                    deadpool_redis::cluster::Manager::new(nodes.clone(), false).map_err(bad)?;
                Pools::Cluster(Shared::new(manager, None, size, limit))
            }
            RedisTarget::Sentinel { sentinels, service } => {
                if sentinels.is_empty() || service.is_empty() {
                    return Err(Error::Config(
                        "a Sentinel target needs at least one sentinel and a service name".into(),
                    ));
                }
                let primary = Arc::new(Primary::new(sentinels, service).map_err(bad)?);
                let manager = SentinelManager {
                    primary: Arc::clone(&primary),
                    connection: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(settings.operation_timeout))
                        .set_response_timeout(None),
                };
                Pools::Sentinel(Shared::new(manager, Some(primary), size, limit))
            }
        })
    }

    /// Behind Sentinel, the primary the shared connections go to (the session cache tracks
    /// the same one); `None` on the other topologies.
    pub(super) fn primary(&self) -> Option<Arc<Primary>> {
        match self {
            Pools::Sentinel(p) => Some(Arc::clone(&p.manager.primary)),
            Pools::Single(_) | Pools::Cluster(_) => None,
        }
    }

    /// Runs `f` on a shared connection within `limit`. Called by `writes.rs` alone, whose
    /// `Link` owns the pools and decides what each call owes (reads, writes, the
    /// application's own keys).
    pub(super) async fn run<T, F, Fut>(&self, limit: Duration, target: &str, f: F) -> Result<T>
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

/// Behind Sentinel: the primary the sentinels name, as this store last learned it, shared by
/// the store's connections and its session cache.
///
/// Every new connection to the primary, a shared one or the cache's tracking connection, asks
/// the sentinels first ([`Primary::resolve`]: redis-rs asks them, then checks with `ROLE` that
/// the server named is a primary) and records the answer here. The **epoch** counts the
/// changes of that answer: a shared connection made to another server than before moves it
/// *before* the connection carries its first command, so the cache, which trusts its entries
/// only while the epoch is the one its tracking connection was made in, stops serving them
/// before any write can reach the new server (`cache.rs`, "Behind Sentinel").
pub(crate) struct Primary {
    /// redis-rs's Sentinel client (one lookup at a time: it keeps its sentinel connections).
    client: tokio::sync::Mutex<SentinelClient>,
    /// The sentinels' URLs and the service name, for the cache's heartbeat.
    sentinels: Vec<String>,
    service: String,
    /// The primary named last (host, port) and the epoch, changed together.
    known: Mutex<(u64, Option<(String, u16)>)>,
    /// The epoch, for the cache's lookups (a copy of `known.0`, read without the lock).
    epoch: AtomicU64,
}

impl Primary {
    fn new(sentinels: &[String], service: &str) -> RedisResult<Self> {
        let client = SentinelClient::build(
            sentinels.to_vec(),
            service.to_owned(),
            None,
            SentinelServerType::Master,
        )?;
        Ok(Self {
            client: tokio::sync::Mutex::new(client),
            sentinels: sentinels.to_vec(),
            service: service.to_owned(),
            known: Mutex::new((0, None)),
            epoch: AtomicU64::new(0),
        })
    }

    /// Asks the sentinels for the primary now, records the answer (a new server moves the
    /// epoch) and returns a client for it, its address and the epoch it was named in.
    pub(crate) async fn resolve(&self) -> RedisResult<(Client, (String, u16), u64)> {
        let client = self.client.lock().await.async_get_client().await?;
        let addr = host_port(client.get_connection_info().addr()).ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "the sentinels named a primary that is not a TCP address",
            ))
        })?;
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        // The first answer is epoch 0; each other server named after it, the next epoch.
        if known.1.as_ref().is_some_and(|before| *before != addr) {
            known.0 += 1;
            self.epoch.store(known.0, Ordering::SeqCst);
        }
        known.1 = Some(addr.clone());
        Ok((client, addr, known.0))
    }

    /// The current epoch (see the type's docs).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The sentinels' URLs, as given.
    pub(crate) fn sentinels(&self) -> &[String] {
        &self.sentinels
    }

    /// The name the sentinels know the primary by.
    pub(crate) fn service(&self) -> &str {
        &self.service
    }
}

/// Host and port of a TCP address (what a sentinel names a server by).
pub(crate) fn host_port(addr: &ConnectionAddr) -> Option<(String, u16)> {
    match addr {
        ConnectionAddr::Tcp(host, port) => Some((host.clone(), *port)),
        ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}

/// Makes the shared connections behind Sentinel: to the primary [`Primary::resolve`] names
/// (recorded there before the connection exists), configured like a single server's.
pub(crate) struct SentinelManager {
    primary: Arc<Primary>,
    connection: AsyncConnectionConfig,
}

impl managed::Manager for SentinelManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> RedisResult<MultiplexedConnection> {
        let (client, _, _) = self.primary.resolve().await?;
        client
            .get_multiplexed_async_connection_with_config(&self.connection)
            .await
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        _: &managed::Metrics,
    ) -> managed::RecycleResult<RedisError> {
        // Not called: `Shared` keeps its connections and never recycles (it only creates).
        redis::cmd("PING").query_async::<()>(conn).await?;
        Ok(())
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
/// - **Behind Sentinel**, a connection made before the store learned of another primary
///   ([`Primary`]'s epoch moved: another shared connection or the cache's tracking connection
///   was told of it) is not used again: the call connects anew, where the sentinels point.
///   Without it, once the cache (which reads over its own connection) had found the new
///   primary, the first writes after a failover still went to the old one and failed.
pub(crate) struct Shared<M: managed::Manager> {
    manager: M,
    /// Behind Sentinel, the primary as the store knows it.
    primary: Option<Arc<Primary>>,
    slots: Box<[Slot<M::Type>]>,
    next: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// One shared connection: the live one (with its generation and the [`Primary`] epoch it was
/// made in; 0 off Sentinel), or none until the next call connects.
struct Slot<C> {
    live: RwLock<Option<(u64, C, u64)>>,
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
    fn new(manager: M, primary: Option<Arc<Primary>>, size: usize, max_in_flight: usize) -> Self {
        let slots = (0..size.max(1))
            .map(|_| Slot {
                live: RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
            })
            .collect();
        Self {
            manager,
            primary,
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
        let (generation, conn, budget) = match self.current(slot) {
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
                if Failure::of(&e).replace {
                    slot.discard(generation);
                }
                Err(unavailable(&e, target))
            }
            Err(_) => {
                slot.discard(generation);
                Err(timed_out(limit, target))
            }
        }
    }

    /// The epoch of the primary as the store knows it (0 off Sentinel).
    fn epoch(&self) -> u64 {
        self.primary.as_ref().map_or(0, |p| p.epoch())
    }

    /// The slot's connection, unless it was made for a primary the store no longer names (then
    /// it is dropped).
    fn current(&self, slot: &Slot<M::Type>) -> Option<(u64, M::Type)> {
        let (generation, conn, made_in) = slot.current()?;
        if made_in != self.epoch() {
            slot.discard(generation);
            return None;
        }
        Some((generation, conn))
    }

    fn enter(&self, target: &str) -> Result<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let counted = InFlight(&self.in_flight);
        if before >= self.max_in_flight {
            return Err(Error::unavailable(
                UnavailableKind::PoolExhausted,
                format!(
                    "{} calls to Redis at {target} are already in flight; Redis is overloaded \
                     or slow (raise RedisStore::with_max_in_flight only if it is not)",
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
            if let Some(live) = self.current(slot) {
                return Ok(live);
            }
            // Read before `create` asks the sentinels (which may move it): a connection is
            // never taken for one of an epoch later than its own, at worst made once more.
            let epoch = self.epoch();
            let conn = self
                .manager
                .create()
                .await
                .map_err(|e| unavailable(&e, target))?;
            let generation = slot.generation.fetch_add(1, Ordering::Relaxed) + 1;
            *slot.live.write().unwrap_or_else(|e| e.into_inner()) =
                Some((generation, conn.clone(), epoch));
            Ok((generation, conn))
        };
        tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| Err(timed_out(limit, target)))
    }
}

impl<C: Clone> Slot<C> {
    fn current(&self) -> Option<(u64, C, u64)> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(g, c, e)| (*g, c.clone(), *e))
    }

    /// Drops the connection of `generation`, unless it was already replaced.
    fn discard(&self, generation: u64) {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if live.as_ref().is_some_and(|(g, _, _)| *g == generation) {
            *live = None;
        }
    }
}

/// The URL without its secrets, for messages (the startup line, every 503's warning).
///
/// A password can sit in the userinfo (`redis://user:pw@host`) or in the query: `?pass=` is how
/// redis-rs reads one from a `redis+unix://` or `unix:` URL, and `?password=` is what other
/// clients read and what people write. A password written without percent-encoding (a raw `/`,
/// `?`, `#`, `@` or `&`) makes the URL mean something other than what was meant, and the message
/// about such a URL must not show it either; so the rules do not parse the URL as redis-rs
/// does, they hide every part that might hold a secret:
///
/// - the userinfo: everything between `://` and the **last** `@` (a username too; an `@` in a
///   query value hides the host as well);
/// - in the query (from the first `?`): the value of `password` and `pass` (any case), and the
///   whole of every parameter other than those and the ones redis-rs reads that hold no secret
///   (`db`, `user`, `protocol`): an unknown name may be a secret, or the tail of a password with
///   a raw `&`; after the query, any fragment but `#insecure`.
///
/// Each hidden run shows as `***`.
pub(crate) fn redact(url: &str) -> String {
    let mut hidden = vec![false; url.len()];
    if let Some(start) = url.find("://").map(|i| i + 3) {
        if let Some(at) = url.rfind('@').filter(|&at| at >= start) {
            hidden[start..at].fill(true);
        }
    }
    if let Some(query) = url.find('?').map(|i| i + 1) {
        let end = url[query..].find('#').map_or(url.len(), |i| query + i);
        let mut at = query;
        for param in url[query..end].split('&') {
            let param_end = at + param.len();
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if is_password_name(name) {
                hidden[param_end - value.len()..param_end].fill(true);
            } else if !["db", "user", "protocol"].contains(&name) {
                hidden[at..param_end].fill(true);
            }
            at = param_end + 1;
        }
        if end < url.len() && url.get(end + 1..) != Some("insecure") {
            hidden[end + 1..].fill(true);
        }
    }
    let mut out = String::with_capacity(url.len());
    let mut in_hidden = false;
    for (i, c) in url.char_indices() {
        if hidden[i] {
            if !in_hidden {
                out.push_str("***");
            }
            in_hidden = true;
        } else {
            in_hidden = false;
            out.push(c);
        }
    }
    out
}

/// A query parameter that holds a password (`pass`: what redis-rs reads).
fn is_password_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("pass")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_messages() {
        for (url, shown) in [
            ("redis://:hunter2@db:6379/0", "redis://***@db:6379/0"),
            ("redis://app:hunter2@db:6379", "redis://***@db:6379"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://db:6379/?password=hunter2",
                "redis://db:6379/?password=***",
            ),
            ("redis://db:6379/?pass=hunter2", "redis://db:6379/?pass=***"),
            (
                "redis://db/?PassWord=hunter2&protocol=resp3",
                "redis://db/?PassWord=***&protocol=resp3",
            ),
            (
                "redis+unix:///run/redis.sock?db=1&user=app&pass=hunter2",
                "redis+unix:///run/redis.sock?db=1&user=app&pass=***",
            ),
            (
                "unix:/run/redis.sock?pass=hunter2",
                "unix:/run/redis.sock?pass=***",
            ),
            (
                "rediss://:hunter2@db:6380/#insecure",
                "rediss://***@db:6380/#insecure",
            ),
            (
                "rediss://db:6380/?password=hunter2#insecure",
                "rediss://db:6380/?password=***#insecure",
            ),
            (
                "redis+sentinel://s1:26379,s2:26379/main?password=hunter2",
                "redis+sentinel://s1:26379,s2:26379/main?password=***",
            ),
            // Names we do not know may be secrets: hidden whole (an encoded `pass` too).
            ("redis://db/?pa%73s=hunter2", "redis://db/?***"),
            ("redis://db/?db=2&token=hunter2&", "redis://db/?db=2&***&"),
            ("redis://db/?pass=", "redis://db/?pass="),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
        let s = RedisTarget::Sentinel {
            sentinels: vec!["redis://:pw@s1:26379".into()],
            service: "main".into(),
        };
        assert!(!s.describe().contains("pw"));
        let c = RedisTarget::Cluster(vec!["redis://n1:7000/?password=pw".into()]);
        assert!(!c.describe().contains("pw"));
    }

    #[test]
    fn debug_of_every_target_hides_its_passwords() {
        let targets = [
            RedisTarget::Single("redis://:hunter2@db:6379/0".into()),
            RedisTarget::Single("redis://app:hunter2@db:6379".into()),
            RedisTarget::Single("redis://db:6379/?password=hunter2".into()),
            RedisTarget::Single("redis+unix:///run/redis.sock?pass=hunter2".into()),
            RedisTarget::Cluster(vec![
                "redis://:hunter2@n1:7000".into(),
                "redis://n2:7000/?password=hunter2".into(),
            ]),
            RedisTarget::Sentinel {
                sentinels: vec![
                    "redis://:hunter2@s1:26379".into(),
                    "redis://app:hunter2@s2:26379".into(),
                ],
                service: "main".into(),
            },
        ];
        for target in &targets {
            for shown in [format!("{target:?}"), format!("{target:#?}")] {
                assert!(
                    !shown.contains("hunter2") && shown.contains("***"),
                    "{shown}"
                );
            }
        }
        // What stays: the variant, the hosts, the service name.
        assert_eq!(
            format!("{:?}", targets[0]),
            r#"Single("redis://***@db:6379/0")"#
        );
        assert_eq!(
            format!("{:?}", targets[4]),
            r#"Cluster(["redis://***@n1:7000", "redis://n2:7000/?password=***"])"#
        );
        assert_eq!(
            format!("{:?}", targets[5]),
            r#"Sentinel { sentinels: ["redis://***@s1:26379", "redis://***@s2:26379"], service: "main" }"#
        );
    }

    /// A target Redis refuses to parse (here: a bad database number) is named in the error
    /// without its password, for each topology.
    #[test]
    fn a_config_error_does_not_show_the_password() {
        for target in [
            RedisTarget::Single("redis://:hunter2@db:6379/nodb".into()),
            RedisTarget::Cluster(vec!["redis://:hunter2@n1:7000/nodb".into()]),
            RedisTarget::Sentinel {
                sentinels: vec!["redis://:hunter2@s1:26379/nodb".into()],
                service: "main".into(),
            },
        ] {
            let err = crate::RedisStore::new(target.clone(), crate::SessionConfig::default())
                .expect_err("a bad database number");
            assert!(matches!(err, Error::Config(_)), "{target:?}: {err:?}");
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(
                    !shown.contains("hunter2") && shown.contains("***"),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn connection_settings_are_checked_whatever_their_order() {
        let store = || {
            crate::RedisStore::new("redis://127.0.0.1:1", crate::SessionConfig::default())
                .expect("no I/O yet")
        };
        assert!(matches!(store().with_pool_size(0), Err(Error::Config(_))));
        assert!(matches!(
            store().with_max_in_flight(0),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            store().with_operation_timeout(Duration::ZERO),
            Err(Error::Config(_))
        ));
        // The WAIT timeout must stay below the operation timeout, whichever is set first.
        let half = Duration::from_millis(500);
        let acked = store()
            .with_replica_acks(1, half)
            .expect("below the default 1 s");
        assert!(matches!(
            acked.with_operation_timeout(half),
            Err(Error::Config(_))
        ));
        let short = store().with_operation_timeout(half).expect("in range");
        assert!(matches!(
            short.with_replica_acks(1, half),
            Err(Error::Config(_))
        ));
        let tuned = store()
            .with_pool_size(4)
            .and_then(|s| s.with_max_in_flight(16))
            .and_then(|s| s.with_operation_timeout(Duration::from_secs(3)))
            .expect("in range");
        let shown = format!("{tuned:?}");
        assert!(
            shown.contains("operation_timeout: 3s")
                && shown.contains("pool_size: 4")
                && shown.contains("max_in_flight: 16"),
            "{shown}"
        );
    }

    #[test]
    fn no_part_of_a_password_survives_wherever_it_is_written() {
        // Raw `/ ? # @ & =` in a password change what the URL means; the message must hide
        // the password all the same.
        let templates = [
            "redis://:{pw}@db:6379/0",
            "redis://app:{pw}@db:6379/0?protocol=resp3",
            "redis://db:6379/?password={pw}",
            "redis://db:6379/?db=1&PASS={pw}&protocol=3",
            "rediss://db:6379/?pass={pw}#insecure",
            "redis+unix:///run/redis.sock?user=a@b&pass={pw}",
            "redis://:{pw}@db/?pass={pw}#insecure",
        ];
        for pw in [
            "hun-ter", "hun/ter", "hun?ter", "hun#ter", "hun@ter", "hun&ter", "hun=ter", "hun%ter",
        ] {
            for template in templates {
                let url = template.replace("{pw}", pw);
                let shown = redact(&url);
                assert!(
                    !shown.contains("hun") && !shown.contains("ter"),
                    "{url} shows as {shown}"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_startup_line_and_a_503_do_not_show_a_query_password() {
        // Port 1: nothing listens, so the call fails at once with a connection error.
        let store = crate::RedisStore::new(
            "redis://127.0.0.1:1/?password=hunter2",
            crate::SessionConfig::default(),
        )
        .and_then(|store| store.with_operation_timeout(Duration::from_millis(500)))
        .expect("store");
        // What the demo logs at start (`redis = ?store`).
        let debug = format!("{store:?}");
        assert!(
            debug.contains("password=***") && !debug.contains("hunter2"),
            "{debug}"
        );
        let token = crate::Token::generate(std::time::SystemTime::now() + Duration::from_secs(60))
            .expect("token");
        let err = crate::SessionStore::load(&store, &token)
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("127.0.0.1:1") && !message.contains("hunter2"),
            "{message}"
        );
    }
}
