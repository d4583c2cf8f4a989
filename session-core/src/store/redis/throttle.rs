//! [`LoginThrottle`] on Redis: one counter key per username (one slot: every topology).
//!
//! The counters are not sessions: they go over a raw shared connection
//! (`RedisStore::on_counters`), without the write path's replica acknowledgements (a count
//! lost in a failover gives a guesser a few more tries, as before the failover began) and
//! without its cache barrier (no counter is cached).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisResult, Script};

use super::conn::Connection;
use super::scripts::plain;
use crate::error::Result;
use crate::record::{check_user_id, duration_ms};
use crate::throttle::{LoginThrottle, ThrottleConfig, IN_FLIGHT_WAIT};
use crate::RedisStore;

impl RedisStore {
    /// Runs `f` on one of the store's shared connections, with the store's operation timeout
    /// and error mapping, for the counters. A connection whose call failed with a connection
    /// error or timed out is replaced.
    async fn on_counters<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.link.on_counters(&self.app, f).await
    }
}

/// The throttle's scripts.
pub(super) struct Scripts {
    check: Script,
    fail: Script,
    release: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            check: plain(include_str!("throttle_check.lua")),
            fail: plain(include_str!("throttle_fail.lua")),
            release: plain(include_str!("throttle_release.lua")),
        }
    }
}

#[async_trait]
impl LoginThrottle for RedisStore {
    async fn begin_login(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.throttle_script(&self.throttle.check, username, config)
            .await
    }

    async fn record_failure(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.throttle_script(&self.throttle.fail, username, config)
            .await
    }

    async fn release_attempt(&self, subject: &str) -> Result<()> {
        check_user_id(subject)?;
        let key = self.keys.throttle(subject);
        let script = &self.throttle.release;
        self.on_counters(|mut c| async move { script.key(&key).invoke_async::<()>(&mut c).await })
            .await
    }

    async fn clear_failures(&self, username: &str) -> Result<()> {
        check_user_id(username)?;
        let key = self.keys.throttle(username);
        self.on_counters(|mut c| async move {
            redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await
        })
        .await
    }
}

impl RedisStore {
    /// Runs a throttle script (`KEYS[1]` the counter, `ARGV` limit and window) and reads its
    /// "remaining lock in ms, or -1".
    async fn throttle_script(
        &self,
        script: &Script,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        check_user_id(username)?;
        let key = self.keys.throttle(username);
        let window = duration_ms(config.window());
        let ttl: i64 = self
            .on_counters(|mut c| async move {
                script
                    .key(&key)
                    .arg(config.max_failures())
                    .arg(window)
                    .arg(duration_ms(IN_FLIGHT_WAIT))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(attempt(ttl))
    }
}

/// A script's "remaining lock in ms, or -1".
pub(super) fn attempt(ttl_ms: i64) -> Option<Duration> {
    match u64::try_from(ttl_ms) {
        Ok(ms) if ms > 0 => Some(Duration::from_millis(ms)),
        _ => None,
    }
}
