//! [`RedisStore`]: sessions in Redis, shared by every app server that points at it.
//!
//! # Topologies
//! One server, a Redis Cluster, or a Sentinel-managed primary: pick with [`RedisTarget`].
//!
//! # Layout
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `{prefix}:s:{sha256(token)[..16]}` (16 raw bytes) | string | the record ([`crate::record`] encoding) | the smaller of the idle timeout and the time left until the absolute deadline |
//! | `{prefix}:u:{user id}` | sorted set | member: the 16-byte key hash of each session; score: its creation time (ms) | the absolute timeout, renewed at each login |
//! | `{prefix}:t:{username}` | string | failed logins ([`LoginThrottle`](crate::throttle::LoginThrottle)) | the throttle window |
//!
//! # Round trips
//! [`SessionStore::load`] knows the absolute deadline from the token ([`Token::deadline`])
//! before it asks anything: past it, there is no session and no round trip. Otherwise it is one
//! command: `GETEX key PX <idle>` (the record, and the idle expiry slid, for about what a `GET`
//! costs Redis) while the deadline is more than an idle timeout away, and in the session's last
//! idle period a Lua script that caps the expiry at the deadline. "Last seen" is read off the
//! key's TTL when listing, so nothing is rewritten per request. Every other
//! operation is one command, `MULTI` or Lua script (`EVALSHA`; the script body is sent again only
//! after Redis lost its script cache, for example after a restart), so one round trip, except
//! [`SessionStore::delete_user_session`] (two: read the index, then delete).
//!
//! On a Redis Cluster a script may only touch one hash slot. `load`, `save_data` and the
//! throttle use one key and stay one round trip (to the session's own node). Operations that
//! touch a session and its user's index have one implementation per topology: one atomic
//! script or `MULTI` on one server or Sentinel (`atomic.rs`), and on a Cluster sequences of
//! single-slot steps, ordered so that a failure half-way never leaves a usable session the
//! index cannot revoke (`split.rs`). The `SessionStore` methods here only choose between them.
//!
//! # Connections
//! Every call shares one of a few long-lived multiplexed connections
//! ([`SessionConfig::pool_size`], default 2): concurrent commands pipeline on them instead of
//! each call holding a connection for its round trip. A connection whose call failed with a
//! connection error or timed out is replaced by the next call; at most
//! [`SessionConfig::max_in_flight`] calls are in flight at once.
//!
//! Requires Redis 6.2 or newer (tested with 7.0).

mod atomic;
mod cache;
mod conn;
mod failure;
mod keys;
mod reauth;
mod scripts;
mod split;
mod throttle;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::RedisResult;

pub use self::cache::{CacheConfig, CacheStats};
use self::cache::{Lookup, Read, SessionCache};
use self::conn::Pools;
pub use self::conn::{Connection, RedisTarget};
pub(super) use self::failure::is_wrong_type;
use self::keys::{member_key, KeyLayout};
use self::scripts::Scripts;
use crate::changes::{DataChanges, DataUpdate};
use crate::config::SessionConfig;
use crate::epoch::LoginEpoch;
use crate::error::{Error, Result, UnavailableKind};
use crate::record::{
    check_user_id, duration_ms, normalized, now_ms, Authz, NewSession, Record, Session,
    SessionData, SessionInfo, MAX_DATA_LEN,
};
use crate::store::SessionStore;
use crate::token::{SessionHandle, SessionKey, Token};

/// Sessions in Redis.
///
/// Cheap to share (`Arc<RedisStore>`); it holds the shared connections. Creating it does no I/O;
/// [`RedisStore::connect`] also checks that Redis answers.
///
/// ```no_run
/// use session_core::{NewSession, RedisStore, SessionConfig, SessionStore};
///
/// # async fn demo() -> Result<(), session_core::Error> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379", SessionConfig::default()).await?;
/// let (token, _) = store.create(NewSession::new("alice").with_roles(["USER"])).await?;
/// // Put `token.as_cookie_value()` in the login cookie; later, on each request:
/// let session = store.load(&token).await?.expect("live");
/// assert_eq!(session.user_id(), "alice");
/// # Ok(()) }
/// ```
pub struct RedisStore {
    config: SessionConfig,
    pools: Pools,
    /// `WAIT` after each write: (replicas, timeout in ms).
    acks: Option<(usize, u64)>,
    keys: KeyLayout,
    scripts: Scripts,
    target: String,
    /// Where the store connects (kept to open the cache's tracking connection).
    redis_target: RedisTarget,
    cache: Option<SessionCache>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the single Redis server at `url` (`redis://[:password@]host:port[/db]`).
    /// No I/O happens until the first call.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL cannot be parsed.
    pub fn new(url: &str, config: SessionConfig) -> Result<Self> {
        Self::from_target(RedisTarget::Single(url.to_owned()), config)
    }

    /// A store for any topology: one server, a Redis Cluster or a Sentinel-managed primary.
    /// No I/O happens until the first call.
    ///
    /// ```no_run
    /// use session_core::{RedisStore, RedisTarget, SessionConfig};
    ///
    /// let cluster = RedisTarget::Cluster(vec![
    ///     "redis://10.0.0.1:7000".into(),
    ///     "redis://10.0.0.2:7000".into(),
    /// ]);
    /// let store = RedisStore::from_target(cluster, SessionConfig::default())?;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when a URL cannot be parsed or a list is empty.
    pub fn from_target(target: RedisTarget, config: SessionConfig) -> Result<Self> {
        Ok(Self {
            pools: Pools::new(&target, &config)?,
            acks: None,
            keys: KeyLayout::new(config.key_prefix()),
            config,
            scripts: Scripts::new(),
            target: target.describe(),
            redis_target: target,
            cache: None,
        })
    }

    /// Like [`RedisStore::new`], then checks that Redis answers.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL; [`Error::Unavailable`] when Redis does not answer.
    pub async fn connect(url: &str, config: SessionConfig) -> Result<Self> {
        Self::connect_to(RedisTarget::Single(url.to_owned()), config).await
    }

    /// Like [`RedisStore::from_target`], then checks that Redis answers.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad target; [`Error::Unavailable`] when Redis does not answer.
    pub async fn connect_to(target: RedisTarget, config: SessionConfig) -> Result<Self> {
        let store = Self::from_target(target, config)?;
        store.ping().await?;
        Ok(store)
    }

    /// Makes every write that matters (create, rotate, logout, revocation, role changes, data)
    /// wait until `replicas` replicas have it, for at most `timeout`; a write that is not
    /// acknowledged in time fails with [`Error::Unavailable`]
    /// ([`UnavailableKind::NotReplicated`]), so a login
    /// is only granted, and a logout only reported done, once it would survive a failover.
    ///
    /// Cost: the write's round trip plus the replication delay (a `WAIT` on the same
    /// connection). Loads are not affected: their only write, the sliding expiry, is allowed to
    /// be lost. Not available on Redis Cluster.
    ///
    /// # Errors
    /// [`Error::Config`] on a cluster, for `replicas == 0`, or when `timeout` is not below the
    /// operation timeout.
    pub fn with_replica_acks(mut self, replicas: usize, timeout: Duration) -> Result<Self> {
        if self.is_cluster() {
            return Err(Error::Config(
                "replica acknowledgements (WAIT) are not supported on Redis Cluster".to_owned(),
            ));
        }
        if replicas == 0 || timeout >= self.config.operation_timeout() {
            return Err(Error::Config(format!(
                "with_replica_acks needs replicas >= 1 and a timeout below the operation \
                 timeout ({:?})",
                self.config.operation_timeout()
            )));
        }
        self.acks = Some((replicas, duration_ms(timeout).max(1)));
        Ok(self)
    }

    /// Serves repeat loads of a hot session from memory, with no round trip, while a logout,
    /// revocation or role change made anywhere still reaches every server (Redis pushes an
    /// invalidation; see `ARCHITECTURE.md`, "Client-side caching").
    ///
    /// What changes with it:
    /// - a session revoked on **another** app server is refused here within the invalidation's
    ///   latency (measured: well under a millisecond on a quiet loopback; `benches/RESULTS.md`),
    ///   not atomically; this store's own writes wait for their invalidations before they
    ///   return, so it reads its own writes;
    /// - the idle expiry is slid at most once per [`SessionConfig::touch_interval`]: a session
    ///   ends between `idle − touch_interval` and `idle` after its last request, never later;
    /// - if the connection that receives invalidations is lost or silent for longer than
    ///   [`CacheConfig::staleness_bound`], the cache is emptied and every request asks Redis
    ///   again (503 while Redis does not answer).
    ///
    /// One Redis server only (Sentinel and Cluster keep working without the cache, and a
    /// warning says so: invalidations from a demoted primary or a migrating slot would need
    /// one tracking connection per node). Needs Redis 6 or newer (RESP3).
    ///
    /// ```no_run
    /// use session_core::{CacheConfig, RedisStore, SessionConfig};
    ///
    /// let store = RedisStore::new("redis://127.0.0.1:6379", SessionConfig::default())?
    ///     .with_cache(CacheConfig::default())?;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the URL cannot be used for the cache's connection.
    pub fn with_cache(mut self, cache: CacheConfig) -> Result<Self> {
        match &self.redis_target {
            RedisTarget::Single(url) => {
                self.cache = Some(SessionCache::new(
                    url,
                    cache,
                    self.keys.session_prefix.clone(),
                    self.config.operation_timeout(),
                )?);
            }
            other => tracing::warn!(
                target: "session_core::store",
                target_kind = if matches!(other, RedisTarget::Cluster(_)) { "cluster" } else { "sentinel" },
                "client-side session caching is off: it is supported on a single Redis server \
                 only (on Cluster and Sentinel a lost invalidation could not be detected per \
                 node); every load asks Redis"
            ),
        }
        Ok(self)
    }

    /// The cache's counters, when [`RedisStore::with_cache`] is on.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(SessionCache::stats)
    }

    /// Runs a write on a shared connection and, with [`RedisStore::with_replica_acks`], waits
    /// for the replicas on the same connection.
    async fn write<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let acks = self.acks;
        let (out, acked) = self
            .on_connection(|conn| async move {
                // A clone of a multiplexed connection is the same Redis client, which is what
                // WAIT counts writes for.
                let mut same = conn.clone();
                let out = f(conn).await?;
                let acked = match acks {
                    None => None,
                    Some((replicas, ms)) => {
                        let got: usize = redis::cmd("WAIT")
                            .arg(replicas)
                            .arg(ms)
                            .query_async(&mut same)
                            .await?;
                        (got < replicas).then_some((got, replicas))
                    }
                };
                Ok((out, acked))
            })
            .await?;
        if let Some(cache) = &self.cache {
            // Read our own writes: wait until Redis's invalidations for this write reached the
            // cache (a failure here empties the cache, which is as good).
            let _ = cache.barrier(&self.target).await;
        }
        if let Some((got, wanted)) = acked {
            return Err(Error::unavailable(
                UnavailableKind::NotReplicated,
                format!(
                    "Redis at {}: the write reached {got} of {wanted} replicas in time; it may \
                     be lost in a failover",
                    self.target
                ),
            ));
        }
        Ok(out)
    }

    /// True when the store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.pools.is_cluster()
    }

    /// How operations that touch a session and its user's index together run here.
    pub(super) fn strategy(&self) -> Strategy {
        if self.pools.is_cluster() {
            Strategy::Split
        } else {
            Strategy::Atomic
        }
    }

    /// Runs `f` on one of the store's shared connections, with the store's operation timeout
    /// and error mapping; for an application's own keys in the same Redis (accounts, say). The
    /// connection is shared with every other call (a multiplexed connection pipelines them), so
    /// `f` must not change its state (`SELECT`, `MULTI` without `EXEC`, subscriptions). A
    /// connection whose call failed with a connection error or timed out is replaced.
    ///
    /// ```no_run
    /// # async fn demo(store: &session_core::RedisStore) -> Result<(), session_core::Error> {
    /// use session_core::redis;
    ///
    /// let pong: String = store
    ///     .on_connection(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no connection could be had, the call failed or it timed out.
    pub async fn on_connection<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.pools
            .run(self.config.operation_timeout(), &self.target, f)
            .await
    }

    /// `load` with the client-side cache, while the absolute deadline is more than an idle
    /// timeout away (so sliding the expiry by `idle` cannot pass it).
    async fn load_cached(
        &self,
        cache: &SessionCache,
        key: SessionKey,
        session_key: Vec<u8>,
        now: u64,
        idle: u64,
    ) -> Result<Option<Session>> {
        let touch_every = duration_ms(self.config.touch_interval());
        let ticket = match cache.lookup(&key, now, idle, touch_every) {
            Lookup::Hit { record, touch } => {
                if touch && !cache.touch(&self.target, &session_key, idle).await? {
                    cache.forget(&key);
                    return Ok(None);
                }
                return Ok(Some(Session { key, record }));
            }
            Lookup::Miss { ticket } => ticket,
        };
        let (bytes, pttl) = match cache.read(&self.target, &session_key).await? {
            Read::Found { bytes, pttl } => (bytes, pttl),
            Read::Missing => return Ok(None),
            Read::OtherType => {
                log_unreadable(key, &"a value of another type");
                return Ok(None);
            }
        };
        let Some(mut record) = decode_logged(key, &bytes) else {
            return Ok(None);
        };
        let Ok(left) = u64::try_from(pttl) else {
            return Ok(None);
        };
        if record.deadline_ms <= now || left == 0 {
            return Ok(None);
        }
        let mut expires_ms = now + left;
        if idle.saturating_sub(left) >= touch_every {
            if !cache.touch(&self.target, &session_key, idle).await? {
                return Ok(None);
            }
            expires_ms = now + idle;
        }
        record.last_seen_ms = now;
        let record = Arc::new(record);
        cache.fill(key, ticket, Arc::clone(&record), expires_ms, bytes.len());
        Ok(Some(Session { key, record }))
    }

    /// The user's index entries, oldest first.
    async fn index_members(&self, user_id: &str) -> Result<Vec<Vec<u8>>> {
        let index = self.keys.index(user_id);
        self.on_connection(|mut c| async move {
            redis::cmd("ZRANGE")
                .arg(&index)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn config(&self) -> &SessionConfig {
        &self.config
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<()> {
        let _: String = self
            .on_connection(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        Ok(())
    }

    async fn create(&self, mut new: NewSession) -> Result<(Token, Session)> {
        new.check_owner()?;
        let epoch = new.login_epoch.take();
        let now = now_ms();
        let absolute = duration_ms(self.config.absolute_timeout());
        let mut record = Record::created(new, now, absolute);
        let parts = record.encode_parts()?;
        let token = Token::generate_until(record.deadline_ms)?;
        let key = token.key();
        let ttl = duration_ms(self.config.idle_timeout()).min(absolute);
        if record.is_anonymous() {
            // No user: no index, no limit, no role change to pick up. One SET.
            let session_key = self.keys.session(&key);
            let value = [parts.head.as_slice(), &parts.authz, &parts.data].concat();
            self.write(|mut c| {
                let (session_key, value) = (&session_key, &value);
                async move {
                    redis::cmd("SET")
                        .arg(session_key)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl)
                        .query_async::<()>(&mut c)
                        .await
                }
            })
            .await?;
            let session = Session {
                key,
                record: Arc::new(record),
            };
            return Ok((token, session));
        }
        let (evicted, role_change) = match self.strategy() {
            Strategy::Atomic => {
                self.atomic_create(key, parts, ttl, &record, absolute, epoch.as_ref())
                    .await?
            }
            Strategy::Split => {
                self.split_create(key, parts, ttl, &record, absolute, epoch.as_ref())
                    .await?
            }
        };
        log_evictions(evicted);
        if let Some(block) = role_change {
            // The session was stored with these roles; hand back what was stored.
            record.authz = Authz::decode_block(&block)?;
        }
        Ok((
            token,
            Session {
                key,
                record: Arc::new(record),
            },
        ))
    }

    async fn login_epoch(&self, user_id: &str) -> Result<LoginEpoch> {
        check_user_id(user_id)?;
        let key = self.keys.epoch(user_id);
        let value: Option<String> = self
            .on_connection(|mut c| {
                let key = &key;
                async move { redis::cmd("GET").arg(key).query_async(&mut c).await }
            })
            .await?;
        let value = match value {
            None => 0,
            Some(v) => v.parse().map_err(|_| {
                Error::Corrupt(format!(
                    "the login epoch under {} is not a number; check that no other program \
                     writes under the key prefix",
                    String::from_utf8_lossy(&key)
                ))
            })?,
        };
        Ok(LoginEpoch::new(user_id, value))
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        let now = now_ms();
        // The token carries the absolute deadline: past it, nothing to ask Redis.
        let Some(remaining) = token.deadline_ms().checked_sub(now).filter(|r| *r > 0) else {
            return Ok(None);
        };
        let key = token.key();
        let session_key = self.keys.session(&key);
        let idle = duration_ms(self.config.idle_timeout());
        if let (Some(cache), true) = (&self.cache, remaining >= idle) {
            return self.load_cached(cache, key, session_key, now, idle).await;
        }
        let fetched: Fetched = if remaining >= idle {
            // The common case: one native command reads the record and slides the idle expiry,
            // which cannot reach past the deadline. A script would cost Redis about five times
            // as much CPU (`benches/RESULTS.md`).
            self.on_connection(|mut c| async move {
                match redis::cmd("GETEX")
                    .arg(&session_key)
                    .arg("PX")
                    .arg(idle)
                    .query_async::<Option<Vec<u8>>>(&mut c)
                    .await
                {
                    Ok(Some(bytes)) => Ok(Fetched::Value(bytes)),
                    Ok(None) => Ok(Fetched::Missing),
                    Err(e) if is_wrong_type(&e) => Ok(Fetched::OtherType),
                    Err(e) => Err(e),
                }
            })
            .await?
        } else {
            // The session's last idle period: the expiry is capped at the deadline, and "last
            // seen" (no longer readable off the TTL) is written into the record once per touch
            // interval; one script, still one round trip.
            let touch = duration_ms(self.config.touch_interval());
            let script = &self.scripts.load;
            let bytes: Option<Vec<u8>> = self
                .on_connection(|mut c| async move {
                    script
                        .key(&session_key)
                        .arg(now)
                        .arg(idle)
                        .arg(touch)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            bytes.map_or(Fetched::Missing, Fetched::Value)
        };
        let bytes = match fetched {
            Fetched::Value(bytes) => bytes,
            Fetched::Missing => return Ok(None),
            Fetched::OtherType => {
                log_unreadable(key, &"a value of another type");
                return Ok(None);
            }
        };
        let Some(mut record) = decode_logged(key, &bytes) else {
            return Ok(None);
        };
        if record.deadline_ms <= now {
            return Ok(None);
        }
        // This load is a use of the session (Redis keeps it as the key's expiry, or the script
        // wrote it into the record).
        record.last_seen_ms = now;
        Ok(Some(Session {
            key,
            record: Arc::new(record),
        }))
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        let bytes = data.encode()?;
        let key = token.key();
        let session_key = self.keys.session(&key);
        let script = &self.scripts.save_data;
        let outcome: i64 = self
            .write(|mut c| async move {
                script
                    .key(&session_key)
                    .arg(&bytes)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        outcome_to_result(outcome, key)
    }

    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<DataUpdate> {
        let key = token.key();
        let session_key = self.keys.session(&key);
        let args = update_data_args(changes)?;
        let script = &self.scripts.update_data;
        let reply: Vec<redis::Value> = self
            .write(|mut c| async move {
                let mut call = script.key(&session_key);
                for arg in &args {
                    call.arg(arg.as_slice());
                }
                call.invoke_async(&mut c).await
            })
            .await?;
        updated_data(reply, key)
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        self.move_session(token, None).await.map(|(new, _)| new)
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        let key = token.key();
        match self.strategy() {
            Strategy::Atomic => self.atomic_delete(key).await,
            Strategy::Split => self.split_delete(key).await,
        }
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        check_user_id(user_id)?;
        let entries = match self.strategy() {
            Strategy::Atomic => self.atomic_list(user_id).await?,
            Strategy::Split => self.split_list(user_id).await?,
        };
        let idle = duration_ms(self.config.idle_timeout());
        Ok(listed_sessions(entries, user_id, now_ms(), idle))
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        check_user_id(user_id)?;
        let Some(key) = self
            .index_members(user_id)
            .await?
            .iter()
            .filter_map(|m| member_key(m))
            .find(|k| k.handle() == *handle)
        else {
            return Ok(false);
        };
        let deleted = match self.strategy() {
            Strategy::Atomic => self.atomic_delete_members(user_id, Some(key)).await?,
            Strategy::Split => {
                let member = key.as_bytes().to_vec();
                self.split_delete_members(user_id, Some(vec![member]))
                    .await?
            }
        };
        Ok(deleted > 0)
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize> {
        check_user_id(user_id)?;
        match self.strategy() {
            Strategy::Atomic => self.atomic_delete_members(user_id, None).await,
            Strategy::Split => self.split_delete_members(user_id, None).await,
        }
    }

    async fn set_user_authz(
        &self,
        user_id: &str,
        roles: &[String],
        permissions: &[String],
    ) -> Result<usize> {
        check_user_id(user_id)?;
        let block = Authz {
            roles: normalized(roles.iter().cloned()),
            permissions: normalized(permissions.iter().cloned()),
        }
        .encode_block()?;
        match self.strategy() {
            Strategy::Atomic => self.atomic_set_authz(user_id, &block).await,
            Strategy::Split => self.split_set_authz(user_id, &block).await,
        }
    }

    // Step-up re-authentication and "end my other sessions": `reauth.rs`.
    async fn reauthenticate(&self, token: &Token) -> Result<(Token, Session)> {
        self.reauthenticate_session(token).await
    }

    async fn delete_other_user_sessions(&self, user_id: &str, keep: &Token) -> Result<usize> {
        self.delete_other_sessions(user_id, keep).await
    }
}

/// A login's epoch as the scripts take it: its value, or `''` for a login that read none (then
/// nothing is checked).
pub(super) fn epoch_arg(epoch: Option<&LoginEpoch>) -> String {
    epoch.map(|e| e.value().to_string()).unwrap_or_default()
}

/// How an operation that touches a session and its user's index together (create, rotate,
/// delete, list, end some or all, set roles) runs: each has one implementation per strategy,
/// `atomic.rs` and `split.rs`, and the `SessionStore` methods only choose between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    /// One server or Sentinel's primary: one atomic script or `MULTI` per operation.
    Atomic,
    /// Redis Cluster: the keys lie in different slots; ordered single-slot steps.
    Split,
}

/// The arguments of `update_data.lua`: the number of expectations, the expectations and the
/// changes, keys and values in their serde_json encoding (`""`: absent, or remove).
fn update_data_args(changes: &DataChanges) -> Result<Vec<Vec<u8>>> {
    let expectations: Vec<_> = changes.expectations().collect();
    let mut args = Vec::with_capacity(1 + 2 * expectations.len());
    args.push(expectations.len().to_string().into_bytes());
    for (key, value) in expectations.into_iter().chain(changes.writes()) {
        args.push(json_bytes(key)?);
        args.push(value.map(json_bytes).transpose()?.unwrap_or_default());
    }
    Ok(args)
}

fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::InvalidInput(format!("session data: {e}")))
}

/// Reads `update_data.lua`'s answer.
fn updated_data(reply: Vec<redis::Value>, key: SessionKey) -> Result<DataUpdate> {
    let unexpected = |reply: &[redis::Value]| {
        Error::Internal(format!(
            "update_data.lua gave an unexpected answer: {reply:?}"
        ))
    };
    let data = |bytes: &[u8]| {
        SessionData::decode(bytes).inspect_err(|_| {
            unreadable_record(key);
        })
    };
    match reply.as_slice() {
        [redis::Value::Int(1), redis::Value::BulkString(bytes)] => {
            Ok(DataUpdate::Applied(data(bytes)?))
        }
        [redis::Value::Int(2), redis::Value::BulkString(bytes)] => {
            Ok(DataUpdate::Conflict(data(bytes)?))
        }
        [redis::Value::Int(3), redis::Value::Int(len)] => Err(Error::InvalidInput(format!(
            "session data would be {len} bytes encoded; the limit is {MAX_DATA_LEN}"
        ))),
        [redis::Value::Int(0)] => Err(Error::NotFound),
        // Not a record of ours, or data that is not a JSON object: left untouched.
        [redis::Value::Int(-1)] => Err(unreadable_record(key)),
        other => Err(unexpected(other)),
    }
}

pub(super) fn outcome_to_result(outcome: i64, key: SessionKey) -> Result<()> {
    match outcome {
        1 => Ok(()),
        -1 => Err(unreadable_record(key)),
        _ => Err(Error::NotFound),
    }
}

/// Logs and describes bytes under a session key that a script could not read.
fn unreadable_record(key: SessionKey) -> Error {
    tracing::warn!(
        target: "session_core::store",
        session = %key.log_tag(),
        "unreadable bytes under a session key; left untouched"
    );
    Error::Corrupt("the value under this session key is not a session record".to_owned())
}

fn log_evictions(evicted: usize) {
    if evicted > 0 {
        tracing::debug!(
            target: "session_core::store",
            evicted,
            "per-user session limit reached; oldest sessions ended"
        );
    }
}

/// What `GETEX` found under a session key.
enum Fetched {
    Value(Vec<u8>),
    Missing,
    OtherType,
}

/// One live entry of a user's index, as read for listing.
pub(super) struct ListedEntry {
    pub(super) member: Vec<u8>,
    pub(super) value: Vec<u8>,
    /// The session key's remaining TTL (ms).
    pub(super) pttl: i64,
}

/// `list.lua`'s flat reply (member, record, pttl, ...) as entries; anything malformed is
/// skipped.
pub(super) fn listed_entries(flat: Vec<redis::Value>) -> Vec<ListedEntry> {
    let mut items = flat.into_iter();
    let mut entries = Vec::new();
    while let (Some(member), Some(value), Some(pttl)) = (items.next(), items.next(), items.next()) {
        let (Ok(member), Ok(value), Ok(pttl)) = (
            redis::from_redis_value::<Vec<u8>>(member),
            redis::from_redis_value::<Vec<u8>>(value),
            redis::from_redis_value::<i64>(pttl),
        ) else {
            continue;
        };
        entries.push(ListedEntry {
            member,
            value,
            pttl,
        });
    }
    entries
}

/// The live sessions of `user_id` among listed entries; members that are not session keys,
/// unreadable records, ended sessions and other users' records are left out.
fn listed_sessions(
    entries: Vec<ListedEntry>,
    user_id: &str,
    now: u64,
    idle: u64,
) -> Vec<SessionInfo> {
    entries
        .into_iter()
        .filter_map(|entry| {
            let key = member_key(&entry.member)?;
            let mut record = decode_logged(key, &entry.value)?;
            if record.deadline_ms <= now || record.user_id != user_id {
                return None;
            }
            record.last_seen_ms = last_seen_from_ttl(&record, entry.pttl, idle, now);
            Some(
                Session {
                    key,
                    record: Arc::new(record),
                }
                .info(),
            )
        })
        .collect()
}

/// The parsers of what Redis sends back, for the fuzz targets (`crate::__fuzz`).
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz {
    use super::*;

    /// `list.lua`'s reply as `list_user_sessions` reads it.
    pub(crate) fn list_reply(
        flat: Vec<redis::Value>,
        user_id: &str,
        now: u64,
        idle: u64,
    ) -> Vec<SessionInfo> {
        listed_sessions(listed_entries(flat), user_id, now, idle)
    }

    /// A throttle script's "remaining lock in ms, or -1".
    pub(crate) fn throttle_reply(ttl_ms: i64) -> crate::throttle::Attempt {
        throttle::attempt(ttl_ms)
    }

    /// A write script's outcome (1 done, 0 no session, -1 not a record).
    pub(crate) fn outcome(outcome: i64, key: SessionKey) -> Result<()> {
        outcome_to_result(outcome, key)
    }
}

/// "Last seen" of a listed session. Every load sets the key's expiry to the idle timeout from
/// that moment, so the remaining TTL tells when it was last used, more precisely than the
/// record (rewritten only by writes). Never before the record's own figure (a TTL capped by
/// the absolute deadline would say earlier), never in the future.
fn last_seen_from_ttl(record: &Record, pttl: i64, idle: u64, now: u64) -> u64 {
    let from_ttl = u64::try_from(pttl)
        .ok()
        .map_or(0, |left| (now + left).saturating_sub(idle));
    from_ttl.max(record.last_seen_ms).min(now)
}

/// The record, or `None` (logged) for bytes that are not one.
fn decode_logged(key: SessionKey, bytes: &[u8]) -> Option<Record> {
    match Record::decode(bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            log_unreadable(key, &e);
            None
        }
    }
}

fn log_unreadable(key: SessionKey, what: &dyn std::fmt::Display) {
    tracing::warn!(
        target: "session_core::store",
        session = %key.log_tag(),
        error = %what,
        "unreadable bytes under a session key; treated as no session \
         (does another program write under this key prefix?)"
    );
}
