//! The demo's user accounts (username, Argon2id hash, roles), kept in the same backend as the
//! sessions: in the same Redis (through a client of the demo's own, under a prefix of its own,
//! never the session store's connections or keys), or in memory.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{cluster, sentinel, Runtime};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use session_core::{Error, RedisTarget, UnavailableKind};

/// The role that may manage others; at least one account keeps it (see
/// [`AccountStore::release_admin`]).
pub const ADMIN: &str = "ADMIN";

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Roles, granted at login.
    pub roles: Vec<String>,
}

/// Where accounts live.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The account of `username`, if any.
    async fn get(&self, username: &str) -> Result<Option<Account>, Error>;
    /// Adds `account` unless the username is taken; true when added.
    async fn create(&self, account: &Account) -> Result<bool, Error>;
    /// Replaces the roles of `username`; false when there is no such account.
    async fn set_roles(&self, username: &str, roles: &[String]) -> Result<bool, Error>;
    /// Before [`ADMIN`] is taken from `username`: takes the account out of the admins unless
    /// it is the last one, in one atomic step, so that two admins demoting themselves at once
    /// cannot both succeed. True when the account is no admin now (or was none); false when
    /// it is the last admin (nothing changes).
    async fn release_admin(&self, username: &str) -> Result<bool, Error>;
    /// Replaces the password hash of `username`; false when there is no such account.
    async fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool, Error>;
}

/// Accounts in memory.
#[derive(Debug, Default)]
pub struct MemoryAccounts(Mutex<HashMap<String, Account>>);

impl MemoryAccounts {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl AccountStore for MemoryAccounts {
    async fn get(&self, username: &str) -> Result<Option<Account>, Error> {
        Ok(self.map().get(username).cloned())
    }

    async fn create(&self, account: &Account) -> Result<bool, Error> {
        let mut map = self.map();
        if map.contains_key(&account.username) {
            return Ok(false);
        }
        map.insert(account.username.clone(), account.clone());
        Ok(true)
    }

    async fn set_roles(&self, username: &str, roles: &[String]) -> Result<bool, Error> {
        Ok(self
            .map()
            .get_mut(username)
            .map(|a| a.roles = roles.to_vec())
            .is_some())
    }

    async fn release_admin(&self, username: &str) -> Result<bool, Error> {
        let mut map = self.map();
        let is_admin = |a: &Account| a.roles.iter().any(|r| r == ADMIN);
        let admins = map.values().filter(|a| is_admin(a)).count();
        let Some(account) = map.get_mut(username).filter(|a| is_admin(a)) else {
            return Ok(true);
        };
        if admins <= 1 {
            return Ok(false);
        }
        // Under the same lock as the count: the next caller counts one admin fewer.
        account.roles.retain(|r| r != ADMIN);
        Ok(true)
    }

    async fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool, Error> {
        Ok(self
            .map()
            .get_mut(username)
            .map(|a| a.password_hash = hash.to_owned())
            .is_some())
    }
}

/// Accounts in Redis: one hash per account at `{prefix}:acct:{username}` with fields `hash`
/// and `roles` (a JSON array), and the set `{prefix}:admins` of the usernames holding
/// [`ADMIN`] (kept by `create` and `set_roles`; separate commands, so that it works on a Redis
/// Cluster too, where it lies in another slot than the accounts), over connections of their
/// own to the same [`RedisTarget`] as the session store.
pub struct RedisAccounts {
    pool: Pool,
    timeout: Duration,
    prefix: String,
    admins: String,
    create: redis::Script,
    set_roles: redis::Script,
    set_hash: redis::Script,
    release_admin: redis::Script,
}

impl RedisAccounts {
    /// Accounts under `{prefix}:acct:` in the Redis that `target` names (connected on first
    /// use), each call given at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Config`] for a target the client cannot use (a malformed URL, no nodes).
    pub fn connect(target: &RedisTarget, prefix: &str, timeout: Duration) -> Result<Self, Error> {
        Ok(Self {
            pool: Pool::new(target)?,
            timeout,
            prefix: format!("{prefix}:acct:"),
            admins: format!("{prefix}:admins"),
            // Atomic "create unless taken": HSETNX on the hash field decides.
            create: redis::Script::new(
                "if redis.call('HSETNX', KEYS[1], 'hash', ARGV[1]) == 0 then return 0 end \
                 redis.call('HSET', KEYS[1], 'roles', ARGV[2]) return 1",
            ),
            set_roles: redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
                 redis.call('HSET', KEYS[1], 'roles', ARGV[1]) return 1",
            ),
            // The last-admin rule in one step on the set of admins (one key: one slot).
            release_admin: redis::Script::new(
                "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 1 end \
                 if redis.call('SCARD', KEYS[1]) <= 1 then return 0 end \
                 redis.call('SREM', KEYS[1], ARGV[1]) return 1",
            ),
            set_hash: redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
                 redis.call('HSET', KEYS[1], 'hash', ARGV[1]) return 1",
            ),
        })
    }

    /// Runs `f` on a connection within the timeout; a Redis that cannot be reached is
    /// [`Error::Unavailable`] (503), like the session store's.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let call = async {
            let conn = self.pool.get().await?;
            f(conn)
                .await
                .map_err(|e| unavailable(UnavailableKind::Server, e))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(unavailable(
                    UnavailableKind::TimedOut,
                    format!("no answer within {:?}", self.timeout),
                ))
            })
    }

    fn key(&self, username: &str) -> String {
        format!("{}{username}", self.prefix)
    }

    /// Adds `username` to the admins set, or removes it, as `roles` say.
    async fn note_admin(&self, username: &str, roles: &[String]) -> Result<(), Error> {
        let admin = roles.iter().any(|r| r == ADMIN);
        let key = &self.admins;
        self.run(|mut c| async move {
            redis::cmd(if admin { "SADD" } else { "SREM" })
                .arg(key)
                .arg(username)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}

fn roles_json(roles: &[String]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

#[async_trait]
impl AccountStore for RedisAccounts {
    async fn get(&self, username: &str) -> Result<Option<Account>, Error> {
        let key = self.key(username);
        let (hash, roles): (Option<String>, Option<String>) = self
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("hash")
                    .arg("roles")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let Some(password_hash) = hash else {
            return Ok(None);
        };
        let roles = roles
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        Ok(Some(Account {
            username: username.to_owned(),
            password_hash,
            roles,
        }))
    }

    async fn create(&self, account: &Account) -> Result<bool, Error> {
        let key = self.key(&account.username);
        let roles = roles_json(&account.roles);
        let hash = account.password_hash.clone();
        let script = &self.create;
        let created: i64 = self
            .run(|mut c| async move {
                script
                    .key(&key)
                    .arg(&hash)
                    .arg(&roles)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if created == 1 {
            self.note_admin(&account.username, &account.roles).await?;
        }
        Ok(created == 1)
    }

    async fn set_roles(&self, username: &str, roles: &[String]) -> Result<bool, Error> {
        let key = self.key(username);
        let roles_text = roles_json(roles);
        let script = &self.set_roles;
        let updated: i64 = self
            .run(
                |mut c| async move { script.key(&key).arg(&roles_text).invoke_async(&mut c).await },
            )
            .await?;
        if updated == 1 {
            self.note_admin(username, roles).await?;
        }
        Ok(updated == 1)
    }

    async fn release_admin(&self, username: &str) -> Result<bool, Error> {
        let key = &self.admins;
        let script = &self.release_admin;
        let released: i64 = self
            .run(|mut c| async move { script.key(key).arg(username).invoke_async(&mut c).await })
            .await?;
        Ok(released == 1)
    }

    async fn set_password_hash(&self, username: &str, hash: &str) -> Result<bool, Error> {
        let key = self.key(username);
        let script = &self.set_hash;
        let updated: i64 = self
            .run(|mut c| async move { script.key(&key).arg(hash).invoke_async(&mut c).await })
            .await?;
        Ok(updated == 1)
    }
}

fn unavailable(kind: UnavailableKind, detail: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        kind,
        detail: format!("accounts: {detail}"),
    }
}

/// The accounts' connection pools, one kind per topology (deadpool-redis's).
enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(cluster::Pool),
    Sentinel(sentinel::Pool),
}

impl Pool {
    fn new(target: &RedisTarget) -> Result<Self, Error> {
        let bad = |e: &dyn std::fmt::Display| Error::Config(format!("accounts' Redis: {e}"));
        let runtime = Some(Runtime::Tokio1);
        Ok(match target {
            RedisTarget::Single(url) => Pool::Single(
                deadpool_redis::Config::from_url(url.as_str())
                    .create_pool(runtime)
                    .map_err(|e| bad(&e))?,
            ),
            RedisTarget::Cluster(nodes) => Pool::Cluster(
                cluster::Config::from_urls(nodes.clone())
                    .create_pool(runtime)
                    .map_err(|e| bad(&e))?,
            ),
            RedisTarget::Sentinel { sentinels, service } => Pool::Sentinel(
                sentinel::Config::from_urls(
                    sentinels.clone(),
                    service.clone(),
                    sentinel::SentinelServerType::Master,
                )
                .create_pool(runtime)
                .map_err(|e| bad(&e))?,
            ),
        })
    }

    async fn get(&self) -> Result<Conn, Error> {
        let failed = |e: &dyn std::fmt::Display| unavailable(UnavailableKind::Connection, e);
        Ok(match self {
            Pool::Single(p) => Conn::Single(p.get().await.map_err(|e| failed(&e))?),
            Pool::Cluster(p) => Conn::Cluster(p.get().await.map_err(|e| failed(&e))?),
            Pool::Sentinel(p) => Conn::Sentinel(p.get().await.map_err(|e| failed(&e))?),
        })
    }
}

/// A pooled connection of any topology, for any `redis` command.
enum Conn {
    Single(deadpool_redis::Connection),
    Cluster(cluster::Connection),
    Sentinel(sentinel::Connection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}
