//! [`RedisStore`]: sessions in Redis, shared by every app server that points at it.
//!
//! # Layout
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `{prefix}:s:{sha256(token)}` (32 raw bytes) | string | the record ([`crate::record`] encoding) | the smaller of the idle timeout and the time left until the absolute deadline |
//! | `{prefix}:u:{user id}` | sorted set | member: the 32-byte key hash of each session; score: its creation time (ms) | the absolute timeout, renewed at each login |
//!
//! # Round trips
//! Every operation is a single Lua script (`EVALSHA`; the script body is sent again only after
//! Redis lost its script cache, for example after a restart) and so one round trip, except
//! [`SessionStore::delete_user_session`] (two: read the index, then delete). In particular
//! [`SessionStore::load`] reads the record, checks the absolute deadline, slides the TTL and, at
//! most once per touch interval, rewrites the last-seen time, all in one `EVALSHA`.
//!
//! # Connections
//! Connections come from a pool built on deadpool-redis (each one a multiplexed connection).
//! deadpool-redis checks a connection with a `PING` every time it leaves the pool, which would
//! double the round trips of every request; this store instead drops a connection from the pool
//! as soon as a call on it fails or times out, so a recycled connection costs nothing and a
//! broken one is never handed out twice. After Redis comes back, the next call connects anew.
//!
//! Requires Redis 6.2 or newer (tested with 7.0).

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool::managed::{self, Metrics, Object, Pool, PoolError, RecycleResult};
pub use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, RedisResult, Script};

use crate::config::SessionConfig;
use crate::error::{Error, Result, UnavailableKind};
use crate::record::{
    check_user_id, duration_ms, normalized, now_ms, Authz, NewSession, Record, Session,
    SessionData, SessionInfo,
};
use crate::store::SessionStore;
use crate::throttle::{Attempt, LoginThrottle, ThrottleConfig};
use crate::token::{SessionHandle, SessionKey, Token};

/// Sessions in Redis.
///
/// Cheap to share (`Arc<RedisStore>`); it holds the connection pool. Creating it does no I/O;
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
    pool: Pool<Manager>,
    keys: KeyLayout,
    scripts: Scripts,
    target: String,
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
    /// A store for the Redis at `url` (`redis://[:password@]host:port[/db]`). No I/O happens
    /// until the first call.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL cannot be parsed.
    pub fn new(url: &str, config: SessionConfig) -> Result<Self> {
        let target = redact(url);
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.operation_timeout()))
            .set_response_timeout(Some(config.operation_timeout()));
        let inner = deadpool_redis::Manager::new_with_config(url, connection)
            .map_err(|e| Error::Config(format!("Redis URL {target}: {e}")))?;
        let pool = Pool::builder(Manager { inner })
            .max_size(config.pool_size())
            .build()
            .map_err(|e| Error::Config(format!("Redis pool: {e}")))?;
        Ok(Self {
            keys: KeyLayout::new(config.key_prefix()),
            config,
            pool,
            scripts: Scripts::new(),
            target,
        })
    }

    /// Like [`RedisStore::new`], then checks that Redis answers.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL; [`Error::Unavailable`] when Redis does not answer.
    pub async fn connect(url: &str, config: SessionConfig) -> Result<Self> {
        let store = Self::new(url, config)?;
        store.ping().await?;
        Ok(store)
    }

    /// Runs `f` on one of the store's pooled connections, with the store's operation timeout
    /// and error mapping; for an application's own keys in the same Redis (accounts, say) or a
    /// benchmark's baseline. A connection whose call failed or timed out is dropped from the
    /// pool instead of being returned to it.
    ///
    /// ```no_run
    /// # async fn demo(store: &session_core::RedisStore) -> Result<(), session_core::Error> {
    /// let pong: String = store
    ///     .with_connection(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no connection could be had, the call failed or it timed out.
    pub async fn with_connection<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let limit = self.config.operation_timeout();
        let started = Instant::now();
        let object = match tokio::time::timeout(limit, self.pool.get()).await {
            Ok(Ok(object)) => object,
            Ok(Err(e)) => return Err(self.pool_error(e)),
            Err(_) => {
                let status = self.pool.status();
                return Err(if status.available == 0 && status.size >= status.max_size {
                    Error::unavailable(
                        UnavailableKind::PoolExhausted,
                        format!(
                            "all {} connections to {} stayed busy for {limit:?}; \
                             raise SessionConfig::pool_size",
                            status.max_size, self.target
                        ),
                    )
                } else {
                    self.timed_out(limit)
                });
            }
        };
        let conn = (*object).clone();
        let remaining = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, f(conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                drop(Object::take(object));
                Err(self.redis_error(&e))
            }
            Err(_) => {
                drop(Object::take(object));
                Err(self.timed_out(limit))
            }
        }
    }

    fn timed_out(&self, limit: Duration) -> Error {
        match Error::timed_out(limit) {
            Error::Unavailable { kind, detail } => Error::Unavailable {
                kind,
                detail: format!("Redis at {}: {detail}", self.target),
            },
            other => other,
        }
    }

    fn redis_error(&self, e: &RedisError) -> Error {
        let kind = if e.is_timeout() {
            UnavailableKind::TimedOut
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            UnavailableKind::Connection
        } else {
            UnavailableKind::Server
        };
        Error::unavailable(kind, format!("Redis at {}: {e}", self.target))
    }

    fn pool_error(&self, e: PoolError<RedisError>) -> Error {
        match e {
            PoolError::Backend(e) => self.redis_error(&e),
            PoolError::Timeout(_) => self.timed_out(self.config.operation_timeout()),
            other => Error::unavailable(
                UnavailableKind::Connection,
                format!("Redis at {}: {other}", self.target),
            ),
        }
    }

    fn decode_live(&self, key: SessionKey, bytes: &[u8], now: u64) -> Option<Session> {
        match Record::decode(bytes) {
            Ok(record) if record.deadline_ms > now => Some(Session { key, record }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(
                    target: "session_core::store",
                    session = %key.log_tag(),
                    error = %e,
                    "unreadable bytes under a session key; treated as no session \
                     (does another program write under this key prefix?)"
                );
                None
            }
        }
    }

    /// The user's index entries, oldest first.
    async fn index_members(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        let index = self.keys.index(user_id);
        let raw: Vec<Vec<u8>> = self
            .with_connection(|mut c| async move {
                redis::cmd("ZRANGE")
                    .arg(&index)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(raw.into_iter().filter_map(|m| member_key(&m)).collect())
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
            .with_connection(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        Ok(())
    }

    async fn create(&self, new: NewSession) -> Result<(Token, Session)> {
        check_user_id(&new.user_id)?;
        let now = now_ms();
        let absolute = duration_ms(self.config.absolute_timeout());
        let record = Record {
            deadline_ms: now + absolute,
            last_seen_ms: now,
            created_ms: now,
            user_id: new.user_id,
            authz: new.authz,
            data: new.data,
        };
        let value = record.encode()?;
        let token = Token::generate()?;
        let key = token.key();
        let ttl = duration_ms(self.config.idle_timeout()).min(absolute);
        let limit = self.config.max_sessions_per_user().unwrap_or(0);
        let session_key = self.keys.session(&key);
        let index = self.keys.index(&record.user_id);
        let script = &self.scripts.create;
        let session_prefix = &self.keys.session_prefix;
        let evicted: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&session_key)
                    .key(&index)
                    .arg(&value)
                    .arg(ttl)
                    .arg(key.as_bytes().as_slice())
                    .arg(now)
                    .arg(limit)
                    .arg(session_prefix.as_slice())
                    .arg(absolute)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if evicted > 0 {
            tracing::debug!(
                target: "session_core::store",
                evicted,
                "per-user session limit reached; oldest sessions ended"
            );
        }
        Ok((token, Session { key, record }))
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        let now = now_ms();
        let key = token.key();
        let session_key = self.keys.session(&key);
        let idle = duration_ms(self.config.idle_timeout());
        let touch = duration_ms(self.config.touch_interval());
        let script = &self.scripts.load;
        let bytes: Option<Vec<u8>> = self
            .with_connection(|mut c| async move {
                script
                    .key(&session_key)
                    .arg(now)
                    .arg(idle)
                    .arg(touch)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(bytes.and_then(|b| self.decode_live(key, &b, now)))
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        let bytes = data.encode()?;
        let key = token.key();
        let session_key = self.keys.session(&key);
        let script = &self.scripts.save_data;
        let outcome: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&session_key)
                    .arg(&bytes)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        outcome_to_result(outcome, key)
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        let old = token.key();
        let new_token = Token::generate()?;
        let new = new_token.key();
        let (old_key, new_key) = (self.keys.session(&old), self.keys.session(&new));
        let script = &self.scripts.rotate;
        let index_prefix = &self.keys.index_prefix;
        let now = now_ms();
        let outcome: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&old_key)
                    .key(&new_key)
                    .arg(index_prefix.as_slice())
                    .arg(old.as_bytes().as_slice())
                    .arg(new.as_bytes().as_slice())
                    .arg(now)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        outcome_to_result(outcome, old).map(|()| new_token)
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        let key = token.key();
        let session_key = self.keys.session(&key);
        let script = &self.scripts.delete;
        let index_prefix = &self.keys.index_prefix;
        let deleted: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&session_key)
                    .arg(index_prefix.as_slice())
                    .arg(key.as_bytes().as_slice())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted == 1)
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        check_user_id(user_id)?;
        let index = self.keys.index(user_id);
        let script = &self.scripts.list;
        let session_prefix = &self.keys.session_prefix;
        let flat: Vec<Vec<u8>> = self
            .with_connection(|mut c| async move {
                script
                    .key(&index)
                    .arg(session_prefix.as_slice())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let now = now_ms();
        Ok(flat
            .chunks_exact(2)
            .filter_map(|pair| {
                let key = member_key(&pair[0])?;
                let session = self.decode_live(key, &pair[1], now)?;
                (session.user_id() == user_id).then(|| session.info())
            })
            .collect())
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        check_user_id(user_id)?;
        let Some(key) = self
            .index_members(user_id)
            .await?
            .into_iter()
            .find(|k| k.handle() == *handle)
        else {
            return Ok(false);
        };
        let index = self.keys.index(user_id);
        let script = &self.scripts.delete_members;
        let session_prefix = &self.keys.session_prefix;
        let deleted: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&index)
                    .arg(session_prefix.as_slice())
                    .arg("some")
                    .arg(key.as_bytes().as_slice())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize> {
        check_user_id(user_id)?;
        let index = self.keys.index(user_id);
        let script = &self.scripts.delete_members;
        let session_prefix = &self.keys.session_prefix;
        let deleted: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&index)
                    .arg(session_prefix.as_slice())
                    .arg("all")
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(0))
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
        let index = self.keys.index(user_id);
        let script = &self.scripts.set_authz;
        let session_prefix = &self.keys.session_prefix;
        let changed: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&index)
                    .arg(session_prefix.as_slice())
                    .arg(&block)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(usize::try_from(changed).unwrap_or(0))
    }
}

#[async_trait]
impl LoginThrottle for RedisStore {
    async fn check_login(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt> {
        check_user_id(username)?;
        let key = self.keys.throttle(username);
        let script = &self.scripts.throttle_check;
        let ttl: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&key)
                    .arg(config.max_failures())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(attempt(ttl))
    }

    async fn record_failure(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt> {
        check_user_id(username)?;
        let key = self.keys.throttle(username);
        let script = &self.scripts.throttle_fail;
        let window = duration_ms(config.window());
        let ttl: i64 = self
            .with_connection(|mut c| async move {
                script
                    .key(&key)
                    .arg(config.max_failures())
                    .arg(window)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(attempt(ttl))
    }

    async fn clear_failures(&self, username: &str) -> Result<()> {
        check_user_id(username)?;
        let key = self.keys.throttle(username);
        self.with_connection(|mut c| async move {
            redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await
        })
        .await
    }
}

/// A script's "remaining lock in ms, or -1".
fn attempt(ttl_ms: i64) -> Attempt {
    match u64::try_from(ttl_ms) {
        Ok(ms) if ms > 0 => Attempt::Locked {
            retry_after: Duration::from_millis(ms),
        },
        _ => Attempt::Allowed,
    }
}

/// Script outcomes: 1 done, 0 no session, -1 bytes that are not a record of ours.
fn outcome_to_result(outcome: i64, key: SessionKey) -> Result<()> {
    match outcome {
        1 => Ok(()),
        -1 => {
            tracing::warn!(
                target: "session_core::store",
                session = %key.log_tag(),
                "unreadable bytes under a session key; left untouched"
            );
            Err(Error::Corrupt(
                "the value under this session key is not a session record".to_owned(),
            ))
        }
        _ => Err(Error::NotFound),
    }
}

fn member_key(member: &[u8]) -> Option<SessionKey> {
    <[u8; 32]>::try_from(member)
        .ok()
        .map(SessionKey::from_bytes)
}

/// The key names, built once from the prefix.
#[derive(Debug)]
struct KeyLayout {
    session_prefix: Vec<u8>,
    index_prefix: Vec<u8>,
    throttle_prefix: Vec<u8>,
}

impl KeyLayout {
    fn new(prefix: &str) -> Self {
        Self {
            session_prefix: format!("{prefix}:s:").into_bytes(),
            index_prefix: format!("{prefix}:u:").into_bytes(),
            throttle_prefix: format!("{prefix}:t:").into_bytes(),
        }
    }

    fn session(&self, key: &SessionKey) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.session_prefix.len() + 32);
        k.extend_from_slice(&self.session_prefix);
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn index(&self, user_id: &str) -> Vec<u8> {
        [self.index_prefix.as_slice(), user_id.as_bytes()].concat()
    }

    fn throttle(&self, username: &str) -> Vec<u8> {
        [self.throttle_prefix.as_slice(), username.as_bytes()].concat()
    }
}

struct Scripts {
    load: Script,
    create: Script,
    save_data: Script,
    rotate: Script,
    delete: Script,
    list: Script,
    delete_members: Script,
    set_authz: Script,
    throttle_check: Script,
    throttle_fail: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            load: Script::new(include_str!("redis/load.lua")),
            create: Script::new(include_str!("redis/create.lua")),
            save_data: Script::new(include_str!("redis/save_data.lua")),
            rotate: Script::new(include_str!("redis/rotate.lua")),
            delete: Script::new(include_str!("redis/delete.lua")),
            list: Script::new(include_str!("redis/list.lua")),
            delete_members: Script::new(include_str!("redis/delete_members.lua")),
            set_authz: Script::new(include_str!("redis/set_authz.lua")),
            throttle_check: Script::new(include_str!("redis/throttle_check.lua")),
            throttle_fail: Script::new(include_str!("redis/throttle_fail.lua")),
        }
    }
}

/// deadpool-redis's manager, minus the `PING` on every checkout (see the module docs).
struct Manager {
    inner: deadpool_redis::Manager,
}

impl managed::Manager for Manager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        managed::Manager::create(&self.inner).await
    }

    async fn recycle(
        &self,
        _: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        // Connections whose last call failed never come back to the pool (`RedisStore::call`
        // takes them out), so there is nothing to check here.
        Ok(())
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
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
    }
}
