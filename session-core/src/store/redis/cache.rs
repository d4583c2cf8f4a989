//! Client-side caching of hot sessions: zero round trips for a repeat request, while a
//! revocation anywhere still ends the session everywhere.
//!
//! Redis tracks which keys a client has read (`CLIENT TRACKING`, RESP3) and pushes an
//! invalidation to that client when any client changes or deletes one of them. The cache keeps
//! one dedicated **tracking connection** per store, in `OPTIN` mode: Redis tracks only the keys
//! of a command right after `CLIENT CACHING YES`, so only sessions that exist cost Redis memory.
//!
//! - a miss first asks, untracked, whether the key exists (`TYPE`). A made-up token ends there:
//!   no session, nothing cached and nothing in Redis's tracking table (which would otherwise
//!   grow by one key, about 140 bytes, per request with a random token, and keep it after the
//!   connection is gone). For a key that exists, `CLIENT CACHING YES` + `GET` + `PTTL` (one
//!   pipeline, one write: no other caller's command can come between the opt-in and the `GET`)
//!   reads it tracked; the record is decoded and kept with the key's expiry;
//! - a hit answers from memory: no round trip. It also slides the idle expiry at most once per
//!   touch interval (`CLIENT CACHING YES` + `MULTI` `PEXPIRE` `PTTL` `EXEC` on the tracking
//!   connection: `NOLOOP` spares its own copy the invalidation, but Redis forgets that the
//!   connection tracks a key it changed, so the `PTTL` in the same transaction, opted in, makes
//!   Redis track it again; every other server's copy is invalidated once and refilled by its
//!   next request);
//! - every change to the key by anybody else (logout, revocation, role change, data, eviction,
//!   expiry, `FLUSHALL`) arrives as an invalidation push, handled on the connection's reader
//!   task before any later reply, and drops the entry;
//! - a **heartbeat** (`PING` on the tracking connection; behind Sentinel more, below) proves that invalidations still arrive:
//!   entries are trusted only while the last heartbeat answered within the staleness bound. A
//!   lost, silent or restarted connection therefore empties the cache, and until Redis answers
//!   again every request goes to Redis, which fails closed (503) exactly as without a cache;
//! - a command that finds its connection reset or closed (before the reader noticed) is tried
//!   once more on a new connection (the cache was emptied when the old one was given up), so a
//!   reset alone does not answer 503 while Redis is up. Timeouts, refused connections and error
//!   replies are not retried.
//!
//! A fill races its own invalidation: the reply can reach the caller after the push that
//! invalidates it was handled. Each shard counts the invalidations it has seen; a fill is kept
//! only if its shard saw none since the read was sent.
//!
//! # Behind Sentinel
//!
//! The tracking connection goes to the primary the sentinels name, found the way the store's
//! shared connections find it (`conn.rs`'s `Primary`: redis-rs asks the sentinels, then checks
//! `ROLE` on the server named). Invalidations come only from the server tracked, so the cache
//! may serve an entry only while every write that could change it reaches that server. Four
//! things end the trust, and each empties the cache before a read of another server is trusted:
//!
//! - **the store's own connections move.** `Primary` records each answer of the sentinels and
//!   counts its changes (the *epoch*); a shared connection made to another server moves the
//!   epoch *before* it carries its first command. Every lookup compares the epoch with the one
//!   the tracking connection was made in, and on a difference empties the cache and gives the
//!   tracking connection up (the next miss connects where the sentinels point). So once a
//!   write of this store can go to a new primary, no entry cached from the old one is served;
//!   the write's barrier (below) then runs against a connection made in the new epoch.
//! - **the tracked server stops being the primary.** The heartbeat and each write's barrier
//!   send `ROLE` instead of `PING`: a demoted server answers as a replica (Sentinel also kills
//!   its clients when it demotes it: the connection drops), a killed one does not answer.
//!   `ROLE`'s answer comes after every invalidation the server sent before it, as `PING`'s did.
//! - **the sentinels name another server.** Each heartbeat also asks every sentinel
//!   (`SENTINEL GET-MASTER-ADDR-BY-NAME`, all at once). Trust is extended only when a majority
//!   answered and every answer names the tracked server; another name gives the connection
//!   up, and fewer answers (the sentinels unreachable) empty the cache and leave it untrusted
//!   until a heartbeat proves the primary again (loads then read Redis; the connection stays
//!   for the misses). This is what covers a split brain: an old primary cut off from the
//!   sentinels but not from us still answers `ROLE` as a primary, while other app servers
//!   write to the promoted replica.
//! - **the connection is lost or silent**, as on one server.
//!
//! The bound this gives: another server's write to a new primary can only follow a sentinel
//! naming it; the heartbeat that last extended the trust saw the sentinels name the tracked
//! server, and the trust ends one staleness bound after that heartbeat was sent. So such a
//! write is honoured here within the staleness bound, like a silent connection on one server
//! (sooner in the usual cases: a killed or demoted primary drops the tracking connection at
//! once). What it does not cover is Sentinel's own limit: a sentinel that has not yet heard of
//! a failover its leader made still names the old primary (sentinels tell each other within
//! about two seconds), and a write acknowledged by a cut-off old primary is lost when it
//! rejoins (`with_replica_acks` narrows that; the cache follows the primary whose data
//! survives).
//!
//! # On Redis Cluster
//!
//! A cache per primary (this module's [`NodeCache`], its heartbeat and barrier `ROLE`), on one
//! shared driver thread, and a slot map proven at each heartbeat: `cache/cluster.rs`.
//!
//! With the `metrics` feature the cache counts its hits, misses, invalidations and flushes, and
//! the sessions it holds, straight into the `metrics` facade (the names are in
//! `session_core::metrics`), through handles taken from the recorder in effect when the cache
//! is made: the driver thread's counts reach the same recorder as the callers'.

mod cluster;
mod sentinel;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use lru::LruCache;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, PushInfo,
    PushKind, RedisError, RedisResult, Role, Value,
};

use self::cluster::ClusterCache;
use self::sentinel::{is_primary, Tracking, Verdict};
use super::conn::Primary;
use super::failure::{timed_out, unavailable, Failure};
use crate::error::{Error, Result, UnavailableKind};
use crate::record::{duration_ms, now_ms, Record};
use crate::token::{SessionKey, SESSION_KEY_BYTES};

const SHARDS: usize = 16;

/// The tracking connection's name in `CLIENT LIST`.
const CLIENT_NAME: &str = "session-core-cache";

/// Settings of the client-side session cache ([`RedisStore::with_cache`](crate::RedisStore::with_cache)).
///
/// ```
/// use std::time::Duration;
/// use session_core::CacheConfig;
///
/// let cache = CacheConfig::default()
///     .with_max_entries(50_000)
///     .with_max_bytes(32 << 20)
///     .with_staleness_bound(Duration::from_millis(500));
/// assert_ne!(cache, CacheConfig::default());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    max_entries: usize,
    max_bytes: usize,
    staleness_bound: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_bytes: 64 << 20,
            staleness_bound: Duration::from_secs(1),
        }
    }
}

impl CacheConfig {
    /// Most sessions kept (default 100 000, at least 1); beyond it the least recently used go
    /// first.
    #[must_use]
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// Most bytes of records kept, roughly (default 64 MiB).
    #[must_use]
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// How long after the last answered heartbeat cached sessions are still trusted (default
    /// 1 s, at least 20 ms). The heartbeat runs four times per bound. After a silent network
    /// or a stopped Redis, cached sessions stop being served within this bound.
    ///
    /// **Security:** a longer bound lets a server whose connection to Redis went silent keep
    /// serving sessions that were revoked meanwhile for that long.
    #[must_use]
    pub fn with_staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound.max(Duration::from_millis(20));
        self
    }
}

/// What the cache reports to the `metrics` facade (feature `metrics`; without it, nothing).
/// The handles are taken once, from the recorder in effect when the cache is made, so that
/// counts made on the driver thread (invalidations, flushes) reach the same recorder as the
/// callers' (hits, misses). A cluster cache takes them once and hands clones to its nodes.
#[derive(Clone)]
struct Meters {
    /// `session_cache_hits_total`: loads answered from memory.
    #[cfg(feature = "metrics")]
    hits: ::metrics::Counter,
    /// `session_cache_misses_total`: loads that asked Redis.
    #[cfg(feature = "metrics")]
    misses: ::metrics::Counter,
    /// `session_cache_invalidations_total`: entries dropped because Redis said the key
    /// changed (or everything: a flush).
    #[cfg(feature = "metrics")]
    invalidations: ::metrics::Counter,
    /// `session_cache_flushes_total`: times the whole cache was emptied (lost connection,
    /// missed heartbeat, `FLUSHALL`).
    #[cfg(feature = "metrics")]
    flushes: ::metrics::Counter,
    /// `session_cache_entries`: sessions held now.
    #[cfg(feature = "metrics")]
    entries: ::metrics::Gauge,
}

impl Meters {
    /// The handles, from the recorder in effect now.
    fn new() -> Self {
        #[cfg(feature = "metrics")]
        {
            use crate::metrics::{
                CACHE_ENTRIES, CACHE_FLUSHES_TOTAL, CACHE_HITS_TOTAL, CACHE_INVALIDATIONS_TOTAL,
                CACHE_MISSES_TOTAL,
            };
            Self {
                hits: ::metrics::counter!(CACHE_HITS_TOTAL),
                misses: ::metrics::counter!(CACHE_MISSES_TOTAL),
                invalidations: ::metrics::counter!(CACHE_INVALIDATIONS_TOTAL),
                flushes: ::metrics::counter!(CACHE_FLUSHES_TOTAL),
                entries: ::metrics::gauge!(CACHE_ENTRIES),
            }
        }
        #[cfg(not(feature = "metrics"))]
        Self {}
    }

    fn hit(&self) {
        #[cfg(feature = "metrics")]
        self.hits.increment(1);
    }

    fn miss(&self) {
        #[cfg(feature = "metrics")]
        self.misses.increment(1);
    }

    /// `n` entries dropped by invalidations.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn invalidated(&self, n: usize) {
        #[cfg(feature = "metrics")]
        if n > 0 {
            self.invalidations.increment(n as u64);
            self.entries.decrement(n as f64);
        }
    }

    fn flushed(&self) {
        #[cfg(feature = "metrics")]
        self.flushes.increment(1);
    }

    /// `added` entries more, `removed` fewer (other than by invalidations).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn held(&self, added: usize, removed: usize) {
        #[cfg(feature = "metrics")]
        if added != removed {
            self.entries.increment(added as f64 - removed as f64);
        }
    }
}

struct Entry {
    record: Arc<Record>,
    /// When the key expires in Redis (ms), as of the fill or our last touch.
    expires_ms: u64,
    bytes: usize,
}

struct Shard {
    entries: LruCache<SessionKey, Entry>,
    bytes: usize,
    /// Invalidations this shard has seen (see the module docs: fills that raced one are dropped).
    seen: u64,
}

/// What a cache lookup found.
pub(crate) enum Lookup {
    /// A live cached record; `touch` when the key's expiry should be slid now.
    Hit { record: Arc<Record>, touch: bool },
    /// Ask Redis; `ticket` makes the fill safe against a racing invalidation.
    Miss { ticket: Ticket },
}

/// What a miss found in Redis ([`SessionCache::read`]).
pub(crate) enum Read {
    /// No such key; nothing was tracked.
    Missing,
    /// A key of another type than a record's (a string); nothing was tracked.
    OtherType,
    /// The stored bytes and the key's `PTTL` (ms), read tracked.
    Found { bytes: Vec<u8>, pttl: i64 },
}

/// A failed try on the tracking connection.
struct Failed {
    /// The connection was reset or closed under the command: worth one more try.
    reset: bool,
    /// A cluster node sent the command elsewhere (`MOVED`, `ASK`).
    redirect: Option<Redirect>,
    error: Error,
}

/// A cluster node's `MOVED` or `ASK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// `ASK`: the slot is being migrated and the key is on `to` already; `MOVED`: the slot is
    /// `to`'s now.
    ask: bool,
    /// `host:port`.
    to: String,
}

impl Redirect {
    fn of(e: &RedisError) -> Option<Self> {
        let ask = match e.code() {
            Some("ASK") => true,
            Some("MOVED") => false,
            _ => return None,
        };
        let (to, _slot) = e.redirect_node()?;
        Some(Self {
            ask,
            to: to.to_owned(),
        })
    }
}

/// Taken before a read that may fill the cache.
pub(crate) struct Ticket {
    shard: usize,
    seen: u64,
    /// On a cluster: the node the read goes to and the slot map it was chosen by.
    node: usize,
    map: u64,
}

/// The client-side session cache of a store: one tracking connection (one server, Sentinel)
/// or one per primary node (Cluster).
pub(crate) struct SessionCache(Kind);

enum Kind {
    One(NodeCache),
    Cluster(ClusterCache),
}

/// The cache of one server (a single server, the primary behind Sentinel, or one node of a
/// cluster).
pub(crate) struct NodeCache {
    inner: Arc<Inner>,
    /// Dropping it stops the driver thread (and with it the tracking connection and the
    /// heartbeat); none when the driver is a cluster cache's, shared by its nodes.
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Where the tracking connection goes.
pub(crate) enum Source<'a> {
    /// One server, by its URL.
    Single(&'a str),
    /// The primary the sentinels name, as the store's own connections learn it.
    Sentinel(Arc<Primary>),
    /// A Redis Cluster, by some of its nodes' URLs: a tracking connection per primary.
    Cluster(&'a [String]),
}

impl SessionCache {
    /// A cache for the server(s) of `source`. No I/O until the first load.
    pub(crate) fn new(
        source: Source<'_>,
        config: CacheConfig,
        session_prefix: Vec<u8>,
        operation_timeout: Duration,
    ) -> Result<Self> {
        Ok(Self(match source {
            Source::Cluster(nodes) => Kind::Cluster(ClusterCache::new(
                nodes,
                config,
                session_prefix,
                operation_timeout,
            )?),
            Source::Single(url) => {
                let info = url
                    .into_connection_info()
                    .map_err(|e| Error::Config(format!("Redis URL for the session cache: {e}")))?;
                Kind::One(NodeCache::new(
                    Tracked::Single(resp3(info)?),
                    None,
                    config,
                    session_prefix,
                    operation_timeout,
                )?)
            }
            Source::Sentinel(primary) => Kind::One(NodeCache::new(
                Tracked::Sentinel {
                    tracking: Tracking::new(primary).map_err(|e| {
                        Error::Config(format!("Redis URL for the session cache: {e}"))
                    })?,
                    addr: Mutex::new(None),
                },
                None,
                config,
                session_prefix,
                operation_timeout,
            )?),
        }))
    }

    /// Looks `key` up: see [`NodeCache::lookup`].
    pub(crate) fn lookup(&self, key: &SessionKey, now: u64, idle: u64, touch_every: u64) -> Lookup {
        match &self.0 {
            Kind::One(c) => c.lookup(key, now, idle, touch_every),
            Kind::Cluster(c) => c.lookup(key, now, idle, touch_every),
        }
    }

    /// Keeps a record read under `ticket`: see [`NodeCache::fill`].
    pub(crate) fn fill(
        &self,
        key: SessionKey,
        ticket: Ticket,
        record: Arc<Record>,
        expires_ms: u64,
        stored_len: usize,
    ) {
        match &self.0 {
            Kind::One(c) => c.fill(key, ticket, record, expires_ms, stored_len),
            Kind::Cluster(c) => c.fill(key, ticket, record, expires_ms, stored_len),
        }
    }

    /// Forgets `key` (this store changed or ended it).
    pub(crate) fn forget(&self, key: &SessionKey) {
        match &self.0 {
            Kind::One(c) => c.forget(key),
            Kind::Cluster(c) => c.forget(key),
        }
    }

    /// Reads `session_key` for a miss: see [`NodeCache::read`].
    pub(crate) async fn read(&self, target: &str, session_key: &[u8]) -> Result<Read> {
        match &self.0 {
            Kind::One(c) => c.read(target, session_key).await,
            Kind::Cluster(c) => c.read(target, session_key).await,
        }
    }

    /// Slides the idle expiry of `session_key`: see [`NodeCache::touch`].
    pub(crate) async fn touch(&self, target: &str, session_key: &[u8], idle: u64) -> Result<bool> {
        match &self.0 {
            Kind::One(c) => c.touch(target, session_key, idle).await,
            Kind::Cluster(c) => c.touch(target, session_key, idle).await,
        }
    }

    /// Waits for the invalidations of the writes done so far: see [`NodeCache::barrier`].
    pub(crate) async fn barrier(&self, target: &str) -> Result<()> {
        match &self.0 {
            Kind::One(c) => c.barrier(target).await,
            Kind::Cluster(c) => c.barrier(target).await,
        }
    }
}

/// A client for `info` that speaks RESP3 (invalidation pushes need it).
fn resp3(info: ConnectionInfo) -> Result<Client> {
    let redis = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(redis))
        .map_err(|e| Error::Config(format!("Redis URL for the session cache: {e}")))
}

/// How the tracking connection is made, and what a heartbeat proves, per topology.
enum Tracked {
    /// One server: it is the data, a `PING` answered shows invalidations still arrive.
    Single(Client),
    /// A primary of a cluster: `ROLE` at each heartbeat and barrier (the slot map is the
    /// cluster cache's, `cluster.rs`).
    Node(Client),
    /// Behind Sentinel: the server the sentinels name, and `ROLE` plus the sentinels'
    /// agreement at each heartbeat (`sentinel.rs`).
    Sentinel {
        tracking: Tracking,
        /// The address the live tracking connection goes to.
        addr: Mutex<Option<(String, u16)>>,
    },
}

struct Inner {
    /// A runtime on a thread of its own that reads the tracking connection and runs the
    /// heartbeat: invalidations are handled as soon as they arrive, however busy the
    /// application's own runtime is.
    driver: tokio::runtime::Handle,
    config: CacheConfig,
    tracked: Tracked,
    session_prefix: Vec<u8>,
    shards: Box<[Mutex<Shard>]>,
    per_shard_bytes: usize,
    /// The tracking connection, with its generation.
    conn: RwLock<Option<(u64, MultiplexedConnection)>>,
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Cached entries may be served until this moment (ms): last answered heartbeat + bound.
    trusted_until_ms: AtomicU64,
    operation_timeout: Duration,
    meters: Meters,
}

impl NodeCache {
    /// A cache tracking `tracked`, on `driver` (a cluster cache's, shared by its nodes) or on a
    /// driver thread of its own. No I/O until the first load.
    fn new(
        tracked: Tracked,
        driver: Option<(tokio::runtime::Handle, Meters)>,
        config: CacheConfig,
        session_prefix: Vec<u8>,
        operation_timeout: Duration,
    ) -> Result<Self> {
        let per_shard_entries = NonZeroUsize::new(config.max_entries.div_ceil(SHARDS).max(1))
            .unwrap_or(NonZeroUsize::MIN);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    entries: LruCache::new(per_shard_entries),
                    bytes: 0,
                    seen: 0,
                })
            })
            .collect();
        let (driver, stop, meters) = match driver {
            Some((shared, meters)) => (shared, None, meters),
            None => {
                let (own, stop) = spawn_driver()?;
                (own, Some(stop), Meters::new())
            }
        };
        let inner = Arc::new(Inner {
            driver,
            per_shard_bytes: config.max_bytes / SHARDS,
            config,
            tracked,
            session_prefix,
            shards,
            conn: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            trusted_until_ms: AtomicU64::new(0),
            operation_timeout,
            meters,
        });
        let weak = Arc::downgrade(&inner);
        let every = inner.config.staleness_bound / 4;
        inner.driver.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.beat(every * 2).await;
            }
        });
        Ok(Self { inner, _stop: stop })
    }

    /// Looks `key` up. `idle` and `touch_every` (ms) decide whether a hit should slide the
    /// expiry now. `now` is the store's clock; the trust in the entries is the heartbeat's, in
    /// real time.
    pub(crate) fn lookup(&self, key: &SessionKey, now: u64, idle: u64, touch_every: u64) -> Lookup {
        let inner = &self.inner;
        let shard_no = shard_of(key);
        if !inner.tracks_the_primary() {
            inner.moved();
        }
        let mut shard = lock(&inner.shards[shard_no]);
        if now_ms() < inner.trusted_until_ms.load(Ordering::Acquire) {
            if let Some(entry) = shard.entries.get_mut(key) {
                if now < entry.expires_ms && now < entry.record.deadline_ms {
                    // The key's expiry was last slid `idle - left` ago (by any server).
                    let touch = idle.saturating_sub(entry.expires_ms - now) >= touch_every;
                    if touch {
                        entry.expires_ms = now + idle;
                    }
                    inner.meters.hit();
                    return Lookup::Hit {
                        record: Arc::clone(&entry.record),
                        touch,
                    };
                }
                if let Some(gone) = shard.entries.pop(key) {
                    shard.bytes -= gone.bytes;
                    inner.meters.held(0, 1);
                }
            }
        }
        inner.meters.miss();
        Lookup::Miss {
            ticket: Ticket {
                shard: shard_no,
                seen: shard.seen,
                node: 0,
                map: 0,
            },
        }
    }

    /// Keeps a record read under `ticket`, unless an invalidation may have raced the read.
    pub(crate) fn fill(
        &self,
        key: SessionKey,
        ticket: Ticket,
        record: Arc<Record>,
        expires_ms: u64,
        stored_len: usize,
    ) {
        let inner = &self.inner;
        // The stored bytes, decoded into strings and a map: roughly twice, plus the entry.
        let bytes = 128 + 2 * stored_len;
        let mut shard = lock(&inner.shards[ticket.shard]);
        if shard.seen != ticket.seen || now_ms() >= inner.trusted_until_ms.load(Ordering::Acquire) {
            return;
        }
        // `push` hands back the entry it replaced or, when full, the one it evicted.
        match shard.entries.push(
            key,
            Entry {
                record,
                expires_ms,
                bytes,
            },
        ) {
            Some((_, old)) => shard.bytes -= old.bytes,
            None => inner.meters.held(1, 0),
        }
        shard.bytes += bytes;
        while shard.bytes > inner.per_shard_bytes {
            match shard.entries.pop_lru() {
                Some((_, old)) => {
                    shard.bytes -= old.bytes;
                    inner.meters.held(0, 1);
                }
                None => break,
            }
        }
    }

    /// Forgets `key` (this store changed or ended it).
    pub(crate) fn forget(&self, key: &SessionKey) {
        self.inner.invalidate(key);
    }

    /// Runs `f` on the tracking connection: see [`Inner::on_tracking`] (`f` may run twice).
    async fn on_tracking<T, F, Fut>(&self, target: &str, f: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        self.inner.on_tracking(target, f).await
    }

    /// Reads `session_key` for a miss, making Redis track it only if it exists.
    ///
    /// Two round trips for a session that exists (once per session and server, and again after
    /// each invalidation), one for a key that does not.
    pub(crate) async fn read(&self, target: &str, session_key: &[u8]) -> Result<Read> {
        self.read_redirectable(target, session_key)
            .await
            .map_err(|failed| failed.error)
    }

    /// [`NodeCache::read`], telling a cluster node's `MOVED` or `ASK` apart.
    async fn read_redirectable(
        &self,
        target: &str,
        session_key: &[u8],
    ) -> std::result::Result<Read, Failed> {
        self.inner
            .on_tracking_redirectable(target, |mut c| async move {
                // Untracked: the connection is OPTIN and this command is not opted in.
                let kind: String = redis::cmd("TYPE")
                    .arg(session_key)
                    .query_async(&mut c)
                    .await?;
                match kind.as_str() {
                    "none" => return Ok(Read::Missing),
                    "string" => {}
                    _ => return Ok(Read::OtherType),
                }
                // `CLIENT CACHING YES` opts in the next command of this connection, the `GET`
                // (tracking the key once is enough; the `PTTL` is not opted in). A pipeline is one
                // write on the multiplexed connection, so no other caller's command comes between.
                // A change between the `GET` and the fill is caught by the caller's ticket.
                let (bytes, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
                    .cmd("CLIENT")
                    .arg("CACHING")
                    .arg("YES")
                    .ignore()
                    .cmd("GET")
                    .arg(session_key)
                    .cmd("PTTL")
                    .arg(session_key)
                    .query_async(&mut c)
                    .await?;
                Ok(match bytes {
                    Some(bytes) => Read::Found { bytes, pttl },
                    // Ended between the two reads (the key stays in the tracking table until it is
                    // written again: one entry, for a key that existed).
                    None => Read::Missing,
                })
            })
            .await
    }

    /// Slides the idle expiry of `session_key` to `idle` ms; false when the key is gone.
    ///
    /// Our own write ends our tracking of the key: Redis drops a key from its tracking table
    /// when it invalidates it, and `NOLOOP` only spares us the push. A bare `PEXPIRE` therefore
    /// left the cached copy untracked, and a later demotion (or, until the next slide, a
    /// logout) made through another server never reached it. So the slide and a read that
    /// tracks the key again (`PTTL`) run as one transaction: no change by another client can
    /// fall between them. `CLIENT CACHING YES` before `MULTI` opts in the whole transaction
    /// (Redis keeps the opt-in until `EXEC`). The pipeline is one write on the connection, so no
    /// other caller's command lands between the opt-in and `EXEC`. Only keys this cache holds
    /// (so keys that existed) are slid.
    pub(crate) async fn touch(&self, target: &str, session_key: &[u8], idle: u64) -> Result<bool> {
        self.touch_redirectable(target, session_key, idle)
            .await
            .map_err(|failed| failed.error)
    }

    /// [`NodeCache::touch`], telling a cluster node's `MOVED` or `ASK` apart.
    async fn touch_redirectable(
        &self,
        target: &str,
        session_key: &[u8],
        idle: u64,
    ) -> std::result::Result<bool, Failed> {
        let ((slid, _left),): ((i64, i64),) = self
            .inner
            .on_tracking_redirectable(target, |mut c| async move {
                redis::pipe()
                    .cmd("CLIENT")
                    .arg("CACHING")
                    .arg("YES")
                    .ignore()
                    .cmd("MULTI")
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(session_key)
                    .arg(idle)
                    .ignore()
                    .cmd("PTTL")
                    .arg(session_key)
                    .ignore()
                    .cmd("EXEC")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(slid == 1)
    }

    /// Reads `session_key` on a cluster node that answered `ASK` for it (the key migrated
    /// there, its slot not yet): `ASKING` before each command, and nothing tracked (`ASKING`
    /// would end the opt-in), so the caller must not keep what it read.
    async fn read_asking(&self, target: &str, session_key: &[u8]) -> Result<Read> {
        self.on_tracking(target, |mut c| async move {
            let (bytes, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
                .cmd("ASKING")
                .ignore()
                .cmd("GET")
                .arg(session_key)
                .cmd("ASKING")
                .ignore()
                .cmd("PTTL")
                .arg(session_key)
                .query_async(&mut c)
                .await?;
            Ok(match bytes {
                Some(bytes) => Read::Found { bytes, pttl },
                None => Read::Missing,
            })
        })
        .await
    }

    /// Slides the idle expiry of `session_key` on a cluster node that answered `ASK` for it.
    async fn touch_asking(&self, target: &str, session_key: &[u8], idle: u64) -> Result<bool> {
        let slid: i64 = self
            .on_tracking(target, |mut c| async move {
                let (slid,): (i64,) = redis::pipe()
                    .cmd("ASKING")
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(session_key)
                    .arg(idle)
                    .query_async(&mut c)
                    .await?;
                Ok(slid)
            })
            .await?;
        Ok(slid == 1)
    }

    /// Runs `cmd` on the tracking connection (a cluster cache asks each node for its slots).
    async fn query<T: redis::FromRedisValue>(&self, target: &str, cmd: &redis::Cmd) -> Result<T> {
        self.on_tracking(target, |mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Empties the cache (a cluster cache's topology changed).
    fn flush(&self) {
        self.inner.flush();
    }

    /// Waits until every invalidation for writes that completed before this call has been
    /// handled: a `PING` on the tracking connection is answered after them. If that cannot be
    /// shown, the cache is emptied instead, which serves the caller as well: a reset
    /// connection is replaced (emptying the cache) and pinged again; any other failure empties
    /// it here and is returned for the record.
    ///
    /// Behind Sentinel it is `ROLE`, and an answer other than a primary's empties the cache
    /// too; and if the store's connections have moved to another server since the tracking
    /// connection was made (the write may have gone there), the cache is emptied first.
    pub(crate) async fn barrier(&self, target: &str) -> Result<()> {
        if !self.inner.tracks_the_primary() {
            // Behind Sentinel, the write may have gone over a connection to a new primary:
            // nothing the old one's connection tracked is trusted any more.
            self.inner.moved();
        }
        if self.inner.conn_if_any().is_none() {
            // No tracking connection: nothing is cached.
            return Ok(());
        }
        let pinged = match &self.inner.tracked {
            Tracked::Single(_) => {
                self.on_tracking(target, |mut c| async move {
                    redis::cmd("PING").query_async::<()>(&mut c).await
                })
                .await
            }
            // Behind Sentinel and on a cluster node, `ROLE`: a demoted server answers as a
            // replica, and the write may then have gone to the new primary, whose
            // invalidations never reach us.
            Tracked::Sentinel { .. } | Tracked::Node(_) => self
                .on_tracking(target, |mut c| async move {
                    redis::cmd("ROLE").query_async::<Role>(&mut c).await
                })
                .await
                .and_then(|role| {
                    if is_primary(&role) {
                        Ok(())
                    } else {
                        self.inner.lost(None);
                        Err(Error::unavailable(
                            UnavailableKind::Server,
                            format!("Redis at {target} (session cache): no longer the primary"),
                        ))
                    }
                }),
        };
        if pinged.is_err() {
            self.inner.flush();
        }
        pinged
    }
}

impl Inner {
    fn conn_if_any(&self) -> Option<(u64, MultiplexedConnection)> {
        self.conn
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(g, c)| (*g, c.clone()))
    }

    /// Runs `f` on the tracking connection (connecting it if needed), each try within the
    /// operation timeout. A failure that leaves the connection unfit for more calls (the one
    /// classification of `failure.rs`, as for the shared connections) gives it up and empties
    /// the cache.
    ///
    /// A command that failed because its connection was reset or closed under it (a killed
    /// client, a reset from a proxy or firewall, a restarted Redis, noticed by the next request
    /// before the reader saw the end of the stream) is tried once more, on a fresh connection:
    /// Redis may well be up, and answering 503 there failed requests (a logout among them)
    /// that Redis could serve. A timeout, a refused connection or an error reply is not retried,
    /// and a failed second try is the answer: fail closed. `f` may therefore run twice; every
    /// command the cache sends may (reads, `PING`, a slide to the same expiry).
    async fn on_tracking<T, F, Fut>(self: &Arc<Self>, target: &str, f: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        self.on_tracking_redirectable(target, f)
            .await
            .map_err(|failed| failed.error)
    }

    /// [`Inner::on_tracking`], telling a cluster node's `MOVED` or `ASK` apart.
    async fn on_tracking_redirectable<T, F, Fut>(
        self: &Arc<Self>,
        target: &str,
        f: F,
    ) -> std::result::Result<T, Failed>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        match self.try_on_tracking(target, &f).await {
            Err(Failed { reset: true, .. }) => self.try_on_tracking(target, &f).await,
            done => done,
        }
    }

    /// One try of [`Inner::on_tracking`].
    async fn try_on_tracking<T, F, Fut>(
        self: &Arc<Self>,
        target: &str,
        f: &F,
    ) -> std::result::Result<T, Failed>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let limit = self.operation_timeout;
        let run = async {
            let (generation, conn) = match self.conn_if_any() {
                Some(live) => live,
                None => Box::pin(self.connect()).await?,
            };
            f(conn).await.map_err(|e| (Some(generation), e))
        };
        match tokio::time::timeout(limit, run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err((generation, e))) => {
                let failure = Failure::of(&e);
                if failure.replace {
                    self.lost(generation);
                }
                Err(Failed {
                    // A connection we had, gone (not a connect that failed: then Redis is
                    // unreachable, and trying again at once would not change that).
                    reset: generation.is_some() && failure.reset,
                    redirect: Redirect::of(&e),
                    error: unavailable(&e, &format!("{target} (session cache)")),
                })
            }
            Err(_) => {
                self.lost(None);
                Err(Failed {
                    reset: false,
                    redirect: None,
                    error: timed_out(limit, &format!("{target} (session cache)")),
                })
            }
        }
    }

    /// Opens the tracking connection: RESP3, invalidation pushes handled on its reader task,
    /// `CLIENT TRACKING ON OPTIN NOLOOP` (see the module docs: only keys read right after
    /// `CLIENT CACHING YES` are tracked).
    async fn connect(
        self: &Arc<Self>,
    ) -> std::result::Result<(u64, MultiplexedConnection), (Option<u64>, RedisError)> {
        let _one = self.connecting.lock().await;
        if let Some(live) = self.conn_if_any() {
            return Ok(live);
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let weak: Weak<Inner> = Arc::downgrade(self);
        let pushes = move |push: PushInfo| {
            if let Some(inner) = weak.upgrade() {
                inner.on_push(generation, push);
            }
            Ok::<(), redis::aio::SendError>(())
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.operation_timeout))
            .set_response_timeout(None)
            .set_push_sender(pushes);
        // Opened on the driver's runtime, so that its reader task runs there. Behind Sentinel
        // the sentinels are asked first, as for every new connection of the store.
        let me = Arc::clone(self);
        let (mut conn, named) = self
            .driver
            .spawn(async move {
                let (client, named) = match &me.tracked {
                    Tracked::Single(client) | Tracked::Node(client) => (client.clone(), None),
                    Tracked::Sentinel { tracking, .. } => {
                        let (client, addr, epoch) = tracking.client().await?;
                        (client, Some((addr, epoch)))
                    }
                };
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok::<_, RedisError>((conn, named))
            })
            .await
            .map_err(|_| {
                (
                    None,
                    RedisError::from(std::io::Error::other(
                        "the session cache's driver thread stopped",
                    )),
                )
            })?
            .map_err(|e| (None, e))?;
        redis::pipe()
            // Named, so that operators (and tests) find it in `CLIENT LIST`.
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg(CLIENT_NAME)
            .ignore()
            .cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("OPTIN")
            .arg("NOLOOP")
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| (None, e))?;
        if let (Tracked::Sentinel { tracking, addr }, Some((named, epoch))) = (&self.tracked, named)
        {
            // Before the connection is seen: a lookup compares this epoch with the store's.
            *addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(named);
            tracking.made_in(epoch);
        }
        // The previous connection (if any) was given up by `lost`, which emptied the cache and
        // voided every fill then in flight.
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some((generation, conn.clone()));
        self.trusted_until_ms.store(
            now_ms() + duration_ms(self.config.staleness_bound),
            Ordering::Release,
        );
        Ok((generation, conn))
    }

    /// The tracking connection (of `generation`, or whichever) failed: nothing cached can be
    /// trusted any more.
    fn lost(&self, generation: Option<u64>) {
        // Distrust and empty the cache *before* the connection is seen to be gone, under the
        // connection's lock: a barrier that finds no connection takes it that nothing is
        // cached. (Clearing the connection first left a moment in which a write's barrier
        // returned at once while the cache still served the session the write had just
        // ended: `redis_cache::a_reset_tracking_connection_is_replaced_without_a_503` caught
        // it, rarely, on a busy machine.)
        let mut conn = self.conn.write().unwrap_or_else(|e| e.into_inner());
        self.trusted_until_ms.store(0, Ordering::Release);
        self.flush();
        if generation.is_none() || conn.as_ref().map(|(g, _)| *g) == generation {
            *conn = None;
        }
    }

    /// Whether the store's connections go where the tracking connection goes (always on one
    /// server; behind Sentinel, as long as no connection of the store was made to another
    /// server since the tracking connection was).
    fn tracks_the_primary(&self) -> bool {
        match &self.tracked {
            Tracked::Single(_) | Tracked::Node(_) => true,
            Tracked::Sentinel { tracking, .. } => tracking.current(),
        }
    }

    /// The store's connections now go to another server than the tracking connection: give
    /// it up and empty the cache (the next miss or heartbeat connects where they go), unless
    /// a connection made since already tracks the right server.
    fn moved(&self) {
        let mut conn = self.conn.write().unwrap_or_else(|e| e.into_inner());
        // No connection: given up already (the cache emptied, fills refused until a
        // connection is made), or none yet.
        if conn.is_none() || self.tracks_the_primary() {
            return;
        }
        self.trusted_until_ms.store(0, Ordering::Release);
        self.flush();
        *conn = None;
    }

    fn on_push(&self, generation: u64, push: PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for k in keys {
                        if let Value::BulkString(name) = k {
                            if let Some(key) = self.session_key_of(name) {
                                self.invalidate(&key);
                            }
                        }
                    }
                }
                // A null key list: Redis flushed everything (`FLUSHALL`, `FLUSHDB`).
                _ => self.flush(),
            },
            PushKind::Disconnection => {
                let current = self.conn_if_any().map(|(g, _)| g);
                if current == Some(generation) || current.is_none() {
                    self.lost(Some(generation));
                }
            }
            _ => {}
        }
    }

    fn session_key_of(&self, name: &[u8]) -> Option<SessionKey> {
        let raw = name.strip_prefix(self.session_prefix.as_slice())?;
        let bytes: [u8; SESSION_KEY_BYTES] = raw.try_into().ok()?;
        Some(SessionKey::from_bytes(bytes))
    }

    fn invalidate(&self, key: &SessionKey) {
        let mut shard = lock(&self.shards[shard_of(key)]);
        shard.seen += 1;
        if let Some(gone) = shard.entries.pop(key) {
            shard.bytes -= gone.bytes;
            self.meters.invalidated(1);
        }
    }

    fn flush(&self) {
        self.meters.flushed();
        for s in self.shards.iter() {
            let mut shard = lock(s);
            shard.seen += 1;
            let n = shard.entries.len();
            shard.entries.clear();
            shard.bytes = 0;
            self.meters.invalidated(n);
        }
    }

    /// One heartbeat: a `PING` answered within `limit` extends the trust; anything else ends
    /// it and empties the cache.
    async fn beat(self: &Arc<Self>, limit: Duration) {
        let Some((generation, mut conn)) = self.conn_if_any() else {
            // No tracking connection (none yet, or lost): connect, so hits resume after an
            // outage without waiting for a miss.
            let _ = tokio::time::timeout(limit, self.connect()).await;
            return;
        };
        let sent = now_ms();
        let trust = || {
            self.trusted_until_ms.store(
                sent + duration_ms(self.config.staleness_bound),
                Ordering::Release,
            );
        };
        let (tracking, addr) = match &self.tracked {
            Tracked::Single(_) => {
                let ping = redis::cmd("PING");
                match tokio::time::timeout(limit, ping.query_async::<()>(&mut conn)).await {
                    Ok(Ok(())) => trust(),
                    _ => self.lost(Some(generation)),
                }
                return;
            }
            Tracked::Node(_) => {
                let role = redis::cmd("ROLE");
                match tokio::time::timeout(limit, role.query_async::<Role>(&mut conn)).await {
                    Ok(Ok(role)) if is_primary(&role) => trust(),
                    _ => self.lost(Some(generation)),
                }
                return;
            }
            Tracked::Sentinel { tracking, addr } => (tracking, addr),
        };
        if !tracking.current() {
            self.moved();
            return;
        }
        let Some(tracked) = addr.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return;
        };
        // Both at once: the tracked server says it is the primary (its answer comes after
        // every invalidation it sent before), and the sentinels name it.
        let role_cmd = redis::cmd("ROLE");
        let role = tokio::time::timeout(limit, role_cmd.query_async::<Role>(&mut conn));
        let (role, verdict) = tokio::join!(role, tracking.ask_sentinels(&tracked, limit));
        match (role, verdict) {
            (Ok(Ok(role)), Verdict::Confirmed) if is_primary(&role) && tracking.current() => {
                trust();
            }
            // Not proven, but the connection is fine: stop serving (what was cached may be
            // served again only after a heartbeat that proves the server is the primary, so
            // empty it too) and keep the connection for the misses.
            (Ok(Ok(role)), Verdict::NoQuorum) if is_primary(&role) => {
                self.trusted_until_ms.store(0, Ordering::Release);
                self.flush();
            }
            // A demoted server, another server named, a failed or silent connection.
            _ => self.lost(Some(generation)),
        }
    }
}

fn shard_of(key: &SessionKey) -> usize {
    usize::from(key.as_bytes()[0]) % SHARDS
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the driver: a current-thread runtime on a thread of its own, running until the
/// returned sender is dropped.
fn spawn_driver() -> Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the session cache's runtime: {e}")))?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("session-cache".to_owned())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })
        .map_err(|e| Error::Config(format!("cannot start the session cache's thread: {e}")))?;
    Ok((handle, stop))
}
