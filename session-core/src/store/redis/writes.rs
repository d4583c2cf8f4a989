//! The one way the store's session operations reach Redis: [`Link`].
//!
//! - [`Link::write`] is the only path that hands out a connection for changing sessions,
//!   indexes or the per-user markers, and it applies afterwards what every write owes: the
//!   replica acknowledgements (`WAIT` on the same connection, with
//!   [`RedisStore::with_replica_acks`](crate::RedisStore::with_replica_acks)) and the cache's
//!   barrier (this server's cache has dropped what the write changed before the call returns).
//! - [`Link::read`] hands out [`Reads`], a connection that refuses, before anything is sent,
//!   every command but reads and the changes that may be lost (the expiry `GETEX` slides, and
//!   what a [`ReadScript`] does: `load.lua` rewrites last-seen, `list.lua` prunes dead index
//!   entries). A write sent there is a bug, and fails the first test that reaches it.
//!
//! Neither engine nor the one-key operations hold anything else that reaches Redis. The raw
//! connection for the login throttle's counters (`RedisStore::on_counters`) needs a
//! [`CounterKeys`], which only the store holds.
//!
//! What a topology offers on this path is decided here once ([`Link::offers`]): replica
//! acknowledgements everywhere but on Redis Cluster. The client-side cache works everywhere (behind
//! Sentinel it tracks the primary the store's own connections go to, `conn.rs`'s `Primary`; on
//! a cluster, every primary, by a slot map it proves at each heartbeat: `cache/cluster.rs`).

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult, Script,
    ScriptInvocation, ToRedisArgs, Value,
};

use super::cache::{CacheConfig, SessionCache, Source};
use super::conn::{Connection, ConnectionSettings, Pools, RedisTarget, Topology};
use crate::error::{Error, Result, UnavailableKind};
use crate::record::duration_ms;

/// The store's way to Redis: its shared connections, what each write owes afterwards, and the
/// client-side cache.
pub(super) struct Link {
    pools: Pools,
    target: RedisTarget,
    /// `target` for messages (no secrets).
    described: String,
    settings: ConnectionSettings,
    acks: Option<Acks>,
    cache: Option<SessionCache>,
    /// What the cache was made from, to make it again when the operation timeout changes.
    cache_setup: Option<(CacheConfig, Vec<u8>)>,
}

/// `WAIT` after each write.
#[derive(Debug, Clone, Copy)]
struct Acks {
    replicas: usize,
    timeout_ms: u64,
}

/// The right to a raw connection for the throttle's counters (which are not sessions): made
/// once, with the [`Link`], and kept by the store.
pub(super) struct CounterKeys(());

/// What the write path can add, on some topologies only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feature {
    /// `WAIT` after each write.
    ReplicaAcks,
}

/// A feature the topology does not offer; how the store answers it is the builder's choice
/// (an error, for replica acknowledgements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsupported {
    feature: Feature,
    topology: Topology,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = match self.topology {
            Topology::Single => "a single Redis server",
            Topology::Cluster => "Redis Cluster",
            Topology::Sentinel => "Sentinel",
        };
        match self.feature {
            Feature::ReplicaAcks => write!(
                f,
                "replica acknowledgements (WAIT) are not supported on {on}"
            ),
        }
    }
}

impl From<Unsupported> for Error {
    fn from(unsupported: Unsupported) -> Self {
        Error::Config(unsupported.to_string())
    }
}

impl Link {
    /// The link to `target` with the default [`ConnectionSettings`], and the right to its raw
    /// connections. No I/O.
    pub(super) fn new(target: RedisTarget) -> Result<(Self, CounterKeys)> {
        let settings = ConnectionSettings::default();
        let link = Self {
            pools: Pools::new(&target, &settings)?,
            described: target.describe(),
            target,
            settings,
            acks: None,
            cache: None,
            cache_setup: None,
        };
        Ok((link, CounterKeys(())))
    }

    /// The connection settings in use.
    pub(super) fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// Replaces the connection settings: new (unconnected) pools, and the cache made again
    /// with the new operation timeout. No I/O.
    pub(super) fn set_settings(&mut self, settings: ConnectionSettings) -> Result<()> {
        settings.check()?;
        if let Some(acks) = self.acks {
            if u128::from(acks.timeout_ms) >= settings.operation_timeout.as_millis() {
                return Err(Error::Config(format!(
                    "the operation timeout ({:?}) must stay above the timeout of \
                     with_replica_acks ({} ms)",
                    settings.operation_timeout, acks.timeout_ms
                )));
            }
        }
        self.pools = Pools::new(&self.target, &settings)?;
        // Behind Sentinel the cache follows the new pools' primary.
        let remake = settings.operation_timeout != self.settings.operation_timeout
            || self.pools.primary().is_some();
        self.settings = settings;
        if remake {
            if let Some((config, prefix)) = self.cache_setup.take() {
                self.set_cache(config, prefix)?;
            }
        }
        Ok(())
    }

    /// Where the link goes, without secrets.
    pub(super) fn target(&self) -> &str {
        &self.described
    }

    /// Whether this topology offers `feature`: the one place that decides.
    pub(super) fn offers(&self, feature: Feature) -> std::result::Result<(), Unsupported> {
        let topology = self.target.topology();
        let offered = match feature {
            // One WAIT on the connection of the write: on a cluster a call's writes reach
            // several primaries, each with its own replicas.
            Feature::ReplicaAcks => topology != Topology::Cluster,
            // Behind Sentinel the cache tracks the primary the store's connections go to, and
            // stops serving when they move (`cache.rs`, "Behind Sentinel"); on a cluster, every
            // primary, by a slot map proven at each heartbeat (`cache/cluster.rs`).
        };
        if offered {
            Ok(())
        } else {
            Err(Unsupported { feature, topology })
        }
    }

    /// Makes every write wait for `replicas` replicas, for at most `timeout`.
    pub(super) fn set_replica_acks(&mut self, replicas: usize, timeout: Duration) -> Result<()> {
        self.offers(Feature::ReplicaAcks)?;
        if replicas == 0 || timeout >= self.settings.operation_timeout {
            return Err(Error::Config(format!(
                "with_replica_acks needs replicas >= 1 and a timeout below the operation \
                 timeout ({:?})",
                self.settings.operation_timeout
            )));
        }
        self.acks = Some(Acks {
            replicas,
            timeout_ms: duration_ms(timeout).max(1),
        });
        Ok(())
    }

    /// Turns the client-side cache on (where [`Link::offers`] it).
    pub(super) fn set_cache(&mut self, config: CacheConfig, session_prefix: Vec<u8>) -> Result<()> {
        let source = match (&self.target, self.pools.primary()) {
            (RedisTarget::Single(url), _) => Source::Single(url),
            (RedisTarget::Sentinel { .. }, Some(primary)) => Source::Sentinel(primary),
            (RedisTarget::Cluster(nodes), _) => Source::Cluster(nodes),
            _ => {
                return Err(Error::Internal(
                    "behind Sentinel, the cache needs the store's record of the primary".to_owned(),
                ))
            }
        };
        self.cache = Some(SessionCache::new(
            source,
            config.clone(),
            session_prefix.clone(),
            self.settings.operation_timeout,
        )?);
        self.cache_setup = Some((config, session_prefix));
        Ok(())
    }

    /// The client-side cache, when it is on: loads read through it.
    pub(super) fn cache(&self) -> Option<&SessionCache> {
        self.cache.as_ref()
    }

    /// Runs reads (and changes that may be lost) on a shared connection that refuses every
    /// other command.
    pub(super) async fn read<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Reads) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.pools
            .run(self.settings.operation_timeout, &self.described, |c| {
                f(Reads(c))
            })
            .await
    }

    /// Runs a write on a shared connection, then waits for the replicas on the same
    /// connection (with replica acknowledgements) and for the cache's invalidations (with the
    /// cache).
    pub(super) async fn write<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let acks = self.acks;
        let (out, acked) = self
            .pools
            .run(
                self.settings.operation_timeout,
                &self.described,
                |conn| async move {
                    // A clone of a multiplexed connection is the same Redis client, which is what
                    // WAIT counts writes for.
                    let mut same = conn.clone();
                    let out = f(conn).await?;
                    let acked = match acks {
                        None => None,
                        Some(Acks {
                            replicas,
                            timeout_ms,
                        }) => {
                            let got: usize = redis::cmd("WAIT")
                                .arg(replicas)
                                .arg(timeout_ms)
                                .query_async(&mut same)
                                .await?;
                            (got < replicas).then_some((got, replicas))
                        }
                    };
                    Ok((out, acked))
                },
            )
            .await?;
        if let Some(cache) = &self.cache {
            // Read our own writes: wait until Redis's invalidations for this write reached the
            // cache (a failure here empties the cache, which is as good).
            let _ = cache.barrier(&self.described).await;
        }
        if let Some((got, wanted)) = acked {
            return Err(Error::unavailable(
                UnavailableKind::NotReplicated,
                format!(
                    "Redis at {}: the write reached {got} of {wanted} replicas in time; it may \
                     be lost in a failover",
                    self.described
                ),
            ));
        }
        Ok(out)
    }

    /// A raw shared connection, for the login throttle's counters (`RedisStore::on_counters`).
    #[cfg(feature = "throttle")]
    pub(super) async fn on_counters<T, F, Fut>(&self, _: &CounterKeys, f: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.pools
            .run(self.settings.operation_timeout, &self.described, f)
            .await
    }
}

/// A shared connection for reads: it sends [`READ_COMMANDS`] and [`ReadScript`]s, and refuses
/// anything else before it is sent.
pub(super) struct Reads(Connection);

/// What [`Reads`] sends: commands that change nothing but, for `GETEX`, the idle expiry (a
/// load's slide, allowed to be lost in a failover).
const READ_COMMANDS: [&str; 8] = [
    "GET", "GETEX", "PTTL", "ZRANGE", "LRANGE", "EXISTS", "TYPE", "PING",
];

/// Whether [`Reads`] may send `cmd`.
fn is_read(cmd: &Cmd) -> bool {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => READ_COMMANDS
            .iter()
            .any(|read| read.as_bytes().eq_ignore_ascii_case(name)),
        _ => false,
    }
}

/// The refusal of a command that is not a read: a bug in this crate, which goes through
/// [`Link::write`] for every change. The call fails (503, like any failed call: fail closed)
/// and says so.
fn refused(cmd: &Cmd) -> RedisError {
    let name = match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).into_owned(),
        _ => String::new(),
    };
    RedisError::from((
        ErrorKind::Client,
        "a command that is not a read was refused on the read path (a bug in session-core)",
        name,
    ))
}

impl ConnectionLike for Reads {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if !is_read(cmd) {
            let e = refused(cmd);
            return Box::pin(async move { Err(e) });
        }
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if let Some(cmd) = pipeline.cmd_iter().find(|c| !is_read(c)) {
            let e = refused(cmd);
            return Box::pin(async move { Err(e) });
        }
        self.0.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

/// A script that [`Reads`] may run: one that changes nothing that must survive a failover or
/// that this server's cache must see. Declared where the script is made, so that the choice
/// is made once, in sight.
pub(super) struct ReadScript(Script);

impl ReadScript {
    pub(super) fn new(script: Script) -> Self {
        Self(script)
    }

    /// A call of the script, with its first key.
    pub(super) fn key<K: ToRedisArgs>(&self, key: K) -> ReadCall<'_> {
        ReadCall(self.0.key(key))
    }
}

/// A [`ReadScript`] call being built.
pub(super) struct ReadCall<'a>(ScriptInvocation<'a>);

impl ReadCall<'_> {
    pub(super) fn arg<A: ToRedisArgs>(&mut self, arg: A) -> &mut Self {
        self.0.arg(arg);
        self
    }

    /// Runs the script (`EVALSHA`, and the body again after `NOSCRIPT`) on the read path.
    pub(super) async fn invoke_async<T: FromRedisValue>(
        &self,
        reads: &mut Reads,
    ) -> RedisResult<T> {
        self.0.invoke_async(&mut reads.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_path_sends_reads_only() {
        for read in ["GET", "getex", "PTTL", "ZRANGE", "EXISTS", "TYPE", "PING"] {
            assert!(is_read(&redis::cmd(read)), "{read}");
        }
        for write in [
            "SET", "DEL", "GETDEL", "ZADD", "ZREM", "PEXPIRE", "EXPIRE", "HSET", "EVALSHA", "EVAL",
            "SCRIPT", "FCALL", "MULTI", "EXEC", "WAIT", "FLUSHALL",
        ] {
            assert!(!is_read(&redis::cmd(write)), "{write}");
        }
    }

    #[tokio::test]
    async fn a_write_on_the_read_path_is_refused_before_it_is_sent() {
        let server = redis_harness::RedisServer::start_local().expect("a redis-server of our own");
        let (link, _) = Link::new(RedisTarget::from(server.url())).expect("link");
        let set = link
            .read(|mut c| async move {
                redis::cmd("SET")
                    .arg("k")
                    .arg("v")
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        let refusal = set.expect_err("SET on the read path").to_string();
        assert!(
            refusal.contains("not a read") && refusal.contains("SET"),
            "{refusal}"
        );
        let piped = link
            .read(|mut c| async move {
                redis::pipe()
                    .cmd("GET")
                    .arg("k")
                    .cmd("DEL")
                    .arg("k")
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        assert!(piped.is_err());
        let script = Script::new("return redis.call('SET', KEYS[1], 'v')");
        let scripted = link
            .read(|mut c| async move { script.key("k").invoke_async::<()>(&mut c).await })
            .await;
        assert!(scripted.is_err(), "a plain Script is not a ReadScript");
        let exists: bool = link
            .read(|mut c| async move { redis::cmd("EXISTS").arg("k").query_async(&mut c).await })
            .await
            .expect("a read");
        assert!(!exists, "nothing was written");
    }
}
