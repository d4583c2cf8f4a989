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
//! | `{prefix}:t:{username}` | string | failed logins (`LoginThrottle`, feature `throttle`) | the throttle window |
//!
//! # Round trips
//! [`SessionStore::load`] knows the absolute deadline from the token
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
//! throttle use one key and stay one round trip (to the session's own node; `one_key.rs`).
//! Operations that touch a session and its user's index have one engine per topology behind
//! one interface (`engine.rs`), chosen when the store is made: one atomic script or `MULTI`
//! per operation on one server or Sentinel (`single.rs`), and on a Cluster sequences of
//! single-slot steps, ordered so that a failure half-way never leaves a usable session the
//! index cannot revoke (`cluster.rs`). The `SessionStore` methods here only call them.
//!
//! Every change to a session, an index or a user's markers goes through one write path
//! (`writes.rs`), which applies [`RedisStore::with_replica_acks`] and the cache's barrier
//! after it; reads (and the changes that may be lost: an expiry slid, an index pruned) go
//! through a connection that refuses anything else. The throttle's counters use a raw shared
//! connection of their own (`RedisStore::on_counters`). The store hands no connection to the
//! application: an application's own keys go over a Redis client of its own, under another
//! prefix and, with ACLs, another Redis user (SECURITY.md).
//!
//! # Connections
//! Every call shares one of a few long-lived multiplexed connections
//! ([`RedisStore::with_pool_size`], default 2): concurrent commands pipeline on them instead of
//! each call holding a connection for its round trip. A connection whose call failed with a
//! connection error or timed out ([`RedisStore::with_operation_timeout`], default 1 s) is
//! replaced by the next call; at most [`RedisStore::with_max_in_flight`] calls are in flight at
//! once.
//!
//! Requires Redis 6.2 or newer (tested with 7.0).

mod cache;
mod cluster;
mod conn;
mod engine;
mod failure;
mod keys;
mod one_key;
mod replies;
mod scripts;
mod single;
#[cfg(feature = "throttle")]
mod throttle;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::cache::CacheConfig;
use self::conn::ConnectionSettings;
pub use self::conn::RedisTarget;
use self::engine::{Engine, Login};
use self::keys::{member_key, KeyLayout};
use self::one_key::OneKey;
#[cfg(feature = "fuzzing")]
pub(crate) use self::replies::fuzz;
use self::replies::{decode_logged, listed_sessions};
#[cfg(feature = "throttle")]
use self::writes::CounterKeys;
use self::writes::Link;
use crate::binding::DeviceBinding;
use crate::changes::DataChanges;
use crate::config::SessionConfig;
use crate::device::{check_proof_method, Device};
use crate::ended::EndReason;
use crate::error::{Error, Result};
use crate::history::{HistoryEntry, LoginEvent};
use crate::record::{
    check_user_id, normalized, Authz, NewSession, Record, Session, SessionData, SessionInfo,
};
use crate::store::SessionStore;
use crate::token::{SessionHandle, Token};

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
    /// The only way the session operations reach Redis.
    link: Link,
    /// The raw connections, for the throttle's counters alone.
    #[cfg(feature = "throttle")]
    app: CounterKeys,
    keys: KeyLayout,
    one_key: OneKey,
    /// Chosen by topology, once.
    engine: Box<dyn Engine>,
    #[cfg(feature = "throttle")]
    throttle: throttle::Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.link.target())
            .field("engine", &self.engine.name())
            .field("config", &self.config)
            .field("connections", self.link.settings())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `target`: one server (a URL, `redis://[:password@]host:port[/db]`), a Redis
    /// Cluster or a Sentinel-managed primary ([`RedisTarget`]). No I/O happens until the first
    /// call; [`RedisStore::connect`] also checks that Redis answers.
    ///
    /// ```no_run
    /// use session_core::{RedisStore, RedisTarget, SessionConfig};
    ///
    /// let single = RedisStore::new("redis://127.0.0.1:6379", SessionConfig::default())?;
    /// let cluster = RedisTarget::Cluster(vec![
    ///     "redis://10.0.0.1:7000".into(),
    ///     "redis://10.0.0.2:7000".into(),
    /// ]);
    /// let clustered = RedisStore::new(cluster, SessionConfig::default())?;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// The connections start with a 1 s operation timeout, 2 shared connections and at most
    /// 4096 calls in flight: [`with_operation_timeout`](RedisStore::with_operation_timeout),
    /// [`with_pool_size`](RedisStore::with_pool_size) and
    /// [`with_max_in_flight`](RedisStore::with_max_in_flight) change them.
    ///
    /// # Errors
    /// [`Error::Config`] when a URL cannot be parsed or a list is empty (the message names the
    /// target, without its password).
    pub fn new(target: impl Into<RedisTarget>, config: SessionConfig) -> Result<Self> {
        let target = target.into();
        let keys = KeyLayout::new(config.key_prefix());
        let engine = engine::for_topology(target.topology(), &keys, &config);
        #[cfg_attr(not(feature = "throttle"), allow(unused_variables))]
        let (link, app) = Link::new(target)?;
        Ok(Self {
            one_key: OneKey::new(keys.clone(), config.clone()),
            engine,
            link,
            #[cfg(feature = "throttle")]
            app,
            keys,
            config,
            #[cfg(feature = "throttle")]
            throttle: throttle::Scripts::new(),
        })
    }

    /// Like [`RedisStore::new`], then checks that Redis answers (within the default 1 s
    /// operation timeout). To check with other connection settings, chain them on
    /// [`RedisStore::new`] and call [`SessionStore::ping`].
    ///
    /// # Errors
    /// [`Error::Config`] for a bad target; [`Error::Unavailable`] when Redis does not answer.
    pub async fn connect(target: impl Into<RedisTarget>, config: SessionConfig) -> Result<Self> {
        let store = Self::new(target, config)?;
        store.ping().await?;
        Ok(store)
    }

    /// The longest any single store call may take, connecting and a script's reload included
    /// (default 1 s); a call that takes longer fails with [`Error::Unavailable`]
    /// ([`UnavailableKind::TimedOut`](crate::UnavailableKind::TimedOut), 503) and its
    /// connection is replaced.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::{RedisStore, SessionConfig};
    ///
    /// let store = RedisStore::new("redis://127.0.0.1:6379", SessionConfig::default())?
    ///     .with_operation_timeout(Duration::from_millis(300))?;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when `timeout` is not between 1 ms and 100 years, or not above the
    /// timeout of [`with_replica_acks`](RedisStore::with_replica_acks).
    pub fn with_operation_timeout(self, timeout: Duration) -> Result<Self> {
        self.with_settings(|s| s.operation_timeout = timeout)
    }

    /// How many Redis connections the store keeps open and shares among all calls (default
    /// 2). Each one pipelines the commands of every call that uses it (ARCHITECTURE.md,
    /// "Connections"), so more rarely help; measure before raising it.
    ///
    /// ```
    /// use session_core::{RedisStore, SessionConfig};
    ///
    /// let store = RedisStore::new("redis://127.0.0.1:6379", SessionConfig::default())?
    ///     .with_pool_size(4)?;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for `size == 0`.
    pub fn with_pool_size(self, size: usize) -> Result<Self> {
        self.with_settings(|s| s.pool_size = size)
    }

    /// Most store calls in flight at once (default 4096); one more fails at once with
    /// [`UnavailableKind::PoolExhausted`](crate::UnavailableKind::PoolExhausted) (503) rather
    /// than queueing behind a Redis that cannot keep up.
    ///
    /// ```
    /// use session_core::{RedisStore, SessionConfig};
    ///
    /// let store = RedisStore::new("redis://127.0.0.1:6379", SessionConfig::default())?
    ///     .with_max_in_flight(1024)?;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for `limit == 0`.
    pub fn with_max_in_flight(self, limit: usize) -> Result<Self> {
        self.with_settings(|s| s.max_in_flight = limit)
    }

    /// The connection settings changed by `change`, checked, and the unconnected pools rebuilt.
    fn with_settings(mut self, change: impl FnOnce(&mut ConnectionSettings)) -> Result<Self> {
        let mut settings = *self.link.settings();
        change(&mut settings);
        self.link.set_settings(settings)?;
        Ok(self)
    }

    /// Makes every write that matters (create, rotate, logout, revocation, role changes, data)
    /// wait until `replicas` replicas have it, for at most `timeout`; a write that is not
    /// acknowledged in time fails with [`Error::Unavailable`]
    /// ([`UnavailableKind::NotReplicated`](crate::UnavailableKind::NotReplicated)), so a login
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
        self.link.set_replica_acks(replicas, timeout)?;
        Ok(self)
    }

    /// Serves repeat loads of a hot session from memory, with no round trip, while a logout,
    /// revocation or role change made anywhere still reaches every server (Redis pushes an
    /// invalidation; see `ARCHITECTURE.md`, "Client-side caching").
    ///
    /// Round trips of a load (the tracking connection's; ARCHITECTURE.md, "Client-side
    /// caching"):
    /// - a **hit** (the session is cached and the cache trusted): none; at most once per
    ///   [`SessionConfigBuilder::touch_interval`](crate::SessionConfigBuilder::touch_interval), one to slide the idle expiry (`CLIENT CACHING YES` +
    ///   `MULTI` `PEXPIRE` `PTTL` `EXEC`, one pipeline);
    /// - a **miss** for a session that exists: **two**, where a load without the cache costs one:
    ///   `TYPE` (untracked, so a made-up token is never tracked), then `CLIENT CACHING YES` +
    ///   `GET` + `PTTL` as one pipeline; a third (the slide above) when the expiry is due to be
    ///   slid. A session misses on its first load on each app server, and again after each change
    ///   to it and after the cache dropped it (full, or emptied: see below);
    /// - a miss for a key that does not exist (a made-up or ended token): one, the `TYPE`;
    /// - in a session's last idle period the cache is not used: one, as without it.
    ///
    /// What changes with it:
    /// - a session revoked on **another** app server is refused here within the invalidation's
    ///   latency (measured: well under a millisecond on a quiet loopback; `benches/RESULTS.md`),
    ///   not atomically; this store's own writes wait for their invalidations before they
    ///   return, so it reads its own writes;
    /// - the idle expiry is slid at most once per [`SessionConfigBuilder::touch_interval`](crate::SessionConfigBuilder::touch_interval): a session
    ///   ends between `idle − touch_interval` and `idle` after its last request, never later;
    /// - if the connection that receives invalidations is lost or silent for longer than
    ///   [`CacheConfig::with_staleness_bound`], the cache is emptied and every request asks Redis
    ///   again (503 while Redis does not answer).
    ///
    /// With the `metrics` feature the cache reports its hits, misses, invalidations, flushes and
    /// size to the `metrics` facade as they happen (`session_cache_*`; see
    /// `session_core::metrics`), to the recorder in effect when this is called: install the
    /// recorder first.
    ///
    /// What it does on each topology:
    /// - **one server**: as above;
    /// - **Sentinel**: the same, on the primary the sentinels name. The cache trusts its
    ///   entries only while it can show that writes go where it tracks: each heartbeat asks
    ///   the tracked server `ROLE` (a primary still) and the sentinels which server is the
    ///   primary (a majority must answer and name it), and the cache is emptied before any
    ///   entry is served once this store's connections have moved to another server, the
    ///   tracked one answers as a replica or drops, or a sentinel names another. After a
    ///   failover every entry is dropped before a read of the new primary is trusted; a change
    ///   made on the new primary by another app server is honoured here within the staleness
    ///   bound (at once when the old primary was killed or demoted). The sentinels'
    ///   `GET-MASTER-ADDR-BY-NAME` costs them a few commands per heartbeat, four per bound;
    /// - **Cluster**: a tracking connection per primary, and a slot map that says which
    ///   primary a session is read from and cached by. Entries are served only while the map
    ///   is proven: each heartbeat asks every primary for its `CLUSTER SLOTS`, and all must
    ///   answer the map. A `MOVED` or `ASK`, a primary whose view differs or that does not
    ///   answer, a demoted primary (`ROLE`) or a lost connection empties the cache before any
    ///   read of the new owner is trusted; so a record cached from a node that no longer owns
    ///   its slot is never served past the staleness bound (a migration's `MIGRATE` and a
    ///   killed primary end it at once). A miss during a slot migration is read from the node
    ///   `ASK` names, and not kept.
    ///
    /// Needs Redis 6 or newer (RESP3).
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
        self.link
            .set_cache(cache, self.keys.session_prefix.clone())?;
        Ok(self)
    }

    /// Now (ms), by the configuration's clock ([`SessionConfig::clock`]).
    fn now_ms(&self) -> u64 {
        self.config.clock().now_ms()
    }

    /// Moves the session of `token` to a new token, with a proof `(auth time, method)` setting
    /// both (step-up re-authentication); returns the new token and the record as moved.
    async fn move_session(
        &self,
        token: &Token,
        proof: Option<(u64, &str)>,
    ) -> Result<(Token, Vec<u8>)> {
        let old = token.key();
        // The same session, so the same deadline (the old token carries it).
        let new_token = token.successor()?;
        let new = new_token.key();
        let now = self.now_ms();
        let bytes = self.engine.rotate(&self.link, old, new, now, proof).await?;
        Ok((new_token, bytes))
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
        self.one_key.ping(&self.link).await
    }

    async fn create(&self, mut new: NewSession) -> Result<(Token, Session)> {
        new.check_owner()?;
        let epoch = new.login_epoch.take();
        let now = self.now_ms();
        let remembered = new.device.remembered;
        let absolute = self.config.lifetime_ms(&new.device);
        let mut record = Record::created(new, now, absolute);
        let parts = record.encode_parts()?;
        let token = Token::issue(record.deadline_ms, remembered)?;
        let key = token.key();
        let ttl = self.config.idle_ms(remembered).min(absolute);
        if record.is_anonymous() {
            self.one_key
                .create_anonymous(&self.link, key, parts, ttl)
                .await?;
            let session = Session {
                key,
                record: Arc::new(record),
            };
            return Ok((token, session));
        }
        let login = Login {
            key,
            parts,
            ttl_ms: ttl,
            record: &record,
            index_ttl_ms: absolute,
            epoch: epoch.as_ref(),
        };
        let created = self.engine.create(&self.link, login).await?;
        if created.evicted > 0 {
            tracing::debug!(
                target: "session_core::store",
                evicted = created.evicted,
                "per-user session limit reached; oldest sessions ended"
            );
            // The sessions are gone; their devices are not known here.
            let evicted = HistoryEntry::new(LoginEvent::Evicted).encode(now);
            for _ in 0..created.evicted {
                // The login stands whatever happens to its history entry.
                let recorded = self
                    .one_key
                    .record_event(&self.link, &record.user_id, evicted.clone())
                    .await;
                if let Err(e) = recorded {
                    tracing::warn!(target: "session_core::store", error = %e, "eviction not recorded in the login history");
                }
            }
        }
        if let Some(block) = created.role_change {
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

    async fn new_login(&self, user_id: &str) -> Result<NewSession> {
        check_user_id(user_id)?;
        let epoch = self.one_key.login_epoch(&self.link, user_id).await?;
        Ok(NewSession::new(user_id).with_login_epoch(epoch))
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        self.one_key.load(&self.link, token, self.now_ms()).await
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        self.one_key.save_data(&self.link, token, data).await
    }

    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<SessionData> {
        self.one_key.update_data(&self.link, token, changes).await
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        self.move_session(token, None).await.map(|(new, _)| new)
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        self.engine.delete(&self.link, token.key()).await
    }

    async fn bind_device(
        &self,
        token: &Token,
        read: &Session,
        binding: &DeviceBinding,
    ) -> Result<bool> {
        if token.deadline_ms() <= self.now_ms() {
            return Ok(false);
        }
        let device = &read.record.device;
        let bound = Device {
            binding: Some(binding.clone()),
            ..device.clone()
        };
        self.one_key
            .bind_device(&self.link, token, &device.encode(), &bound.encode())
            .await
    }

    async fn end_reason(&self, token: &Token) -> Result<Option<EndReason>> {
        if token.deadline_ms() <= self.now_ms() {
            return Ok(Some(EndReason::Expired));
        }
        self.one_key.end_reason(&self.link, token.key()).await
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        check_user_id(user_id)?;
        let entries = self.engine.list(&self.link, user_id).await?;
        let idle = |remembered| self.config.idle_ms(remembered);
        Ok(listed_sessions(entries, user_id, self.now_ms(), idle))
    }

    async fn record_event(&self, user_id: &str, entry: HistoryEntry) -> Result<()> {
        check_user_id(user_id)?;
        let now = self.now_ms();
        self.one_key
            .record_event(&self.link, user_id, entry.encode(now))
            .await
    }

    async fn login_history(&self, user_id: &str) -> Result<Vec<HistoryEntry>> {
        check_user_id(user_id)?;
        let oldest = self
            .now_ms()
            .saturating_sub(self.config.history_max_age_ms());
        let mut history = Vec::new();
        for bytes in self.one_key.login_history(&self.link, user_id).await? {
            let entry = HistoryEntry::decode(&bytes)?;
            if entry.at_ms() >= oldest {
                history.push(entry);
            }
        }
        Ok(history)
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        check_user_id(user_id)?;
        let Some(key) = self
            .one_key
            .index_members(&self.link, user_id)
            .await?
            .iter()
            .filter_map(|m| member_key(m))
            .find(|k| k.handle() == *handle)
        else {
            return Ok(false);
        };
        let deleted = self
            .engine
            .delete_members(&self.link, user_id, Some(key), EndReason::Revoked)
            .await?;
        Ok(deleted > 0)
    }

    async fn delete_user_sessions(&self, user_id: &str, why: EndReason) -> Result<usize> {
        check_user_id(user_id)?;
        self.engine
            .delete_members(&self.link, user_id, None, why)
            .await
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
        self.engine.set_authz(&self.link, user_id, &block).await
    }

    /// The session moved to a new token with the auth time set to now, atomically.
    async fn reauthenticate(&self, token: &Token, method: &str) -> Result<(Token, Session)> {
        check_proof_method(method)?;
        let proof = Some((self.now_ms(), method));
        let (new_token, bytes) = self.move_session(token, proof).await?;
        let new = new_token.key();
        let record = decode_logged(new, &bytes).ok_or(Error::NotFound)?;
        Ok((
            new_token,
            Session {
                key: new,
                record: Arc::new(record),
            },
        ))
    }

    async fn delete_other_user_sessions(
        &self,
        user_id: &str,
        keep: &Token,
        why: EndReason,
    ) -> Result<usize> {
        check_user_id(user_id)?;
        self.engine
            .delete_others(&self.link, user_id, keep.key(), why)
            .await
    }
}
