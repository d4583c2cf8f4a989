//! The operations that touch one key alone (a session's, or a user's index or login epoch):
//! one command or script in one hash slot, so alike on every topology and one round trip on
//! each. Loads read through the client-side cache when it is on.

use std::sync::Arc;

use super::cache::{Lookup, Read, SessionCache};
use super::failure::is_wrong_type;
use super::keys::KeyLayout;
use super::replies::{decode_logged, log_unreadable, outcome_to_result, updated_data};
use super::scripts::{plain, reading_records};
use super::writes::{Link, ReadScript};
use crate::changes::DataChanges;
use crate::config::SessionConfig;
use crate::ended::EndReason;
use crate::epoch::LoginEpoch;
use crate::error::{Error, Result};
use crate::record::{duration_ms, EncodedParts, Session, SessionData};
use crate::token::{SessionKey, Token};

/// The one-key operations, with their scripts.
pub(super) struct OneKey {
    keys: KeyLayout,
    config: SessionConfig,
    scripts: Scripts,
}

struct Scripts {
    /// Slides the expiry and rewrites last-seen in place: nothing that must survive a
    /// failover, and the cache is not used in a session's last idle period.
    load: ReadScript,
    save_data: redis::Script,
    update_data: redis::Script,
    bind_device: redis::Script,
    history_add: redis::Script,
}

/// What `GETEX` found under a session key.
enum Fetched {
    Value(Vec<u8>),
    Missing,
    OtherType,
}

impl OneKey {
    pub(super) fn new(keys: KeyLayout, config: SessionConfig) -> Self {
        Self {
            keys,
            config,
            scripts: Scripts {
                load: ReadScript::new(plain(include_str!("load.lua"))),
                save_data: reading_records(include_str!("save_data.lua")),
                update_data: reading_records(include_str!("update_data.lua")),
                bind_device: reading_records(include_str!("bind_device.lua")),
                history_add: redis::Script::new(include_str!("history_add.lua")),
            },
        }
    }

    /// The reason kept for the ended session of `key`, if one is (see `crate::ended`).
    pub(super) async fn end_reason(&self, io: &Link, key: SessionKey) -> Result<Option<EndReason>> {
        let ended = self.keys.ended(&key);
        let kept: Option<Vec<u8>> = io
            .read(|mut c| {
                let ended = &ended;
                async move { redis::cmd("GET").arg(ended).query_async(&mut c).await }
            })
            .await?;
        // The code as written (`SET` of a number: its digits); anything else is no reason.
        let code = kept.and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u8>().ok());
        Ok(code.and_then(EndReason::from_code))
    }

    pub(super) async fn ping(&self, io: &Link) -> Result<()> {
        let _: String = io
            .read(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        Ok(())
    }

    /// The session of `token` as of `now` (ms), its use recorded.
    pub(super) async fn load(&self, io: &Link, token: &Token, now: u64) -> Result<Option<Session>> {
        // The token carries the absolute deadline: past it, nothing to ask Redis.
        let Some(remaining) = token.deadline_ms().checked_sub(now).filter(|r| *r > 0) else {
            return Ok(None);
        };
        let key = token.key();
        let session_key = self.keys.session(&key);
        let idle = self.config.idle_ms(token.remembered());
        if let (Some(cache), true) = (io.cache(), remaining >= idle) {
            return self
                .load_cached(io, cache, key, session_key, now, idle)
                .await;
        }
        let fetched: Fetched = if remaining >= idle {
            // The common case: one native command reads the record and slides the idle expiry,
            // which cannot reach past the deadline. A script would cost Redis about five times
            // as much CPU (`benches/RESULTS.md`).
            io.read(|mut c| async move {
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
            let bytes: Option<Vec<u8>> = io
                .read(|mut c| async move {
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

    /// `load` with the client-side cache, while the absolute deadline is more than an idle
    /// timeout away (so sliding the expiry by `idle` cannot pass it).
    async fn load_cached(
        &self,
        io: &Link,
        cache: &SessionCache,
        key: SessionKey,
        session_key: Vec<u8>,
        now: u64,
        idle: u64,
    ) -> Result<Option<Session>> {
        let target = io.target();
        let touch_every = duration_ms(self.config.touch_interval());
        let ticket = match cache.lookup(&key, now, idle, touch_every) {
            Lookup::Hit { record, touch } => {
                if touch && !cache.touch(target, &session_key, idle).await? {
                    cache.forget(&key);
                    return Ok(None);
                }
                return Ok(Some(Session { key, record }));
            }
            Lookup::Miss { ticket } => ticket,
        };
        let (bytes, pttl) = match cache.read(target, &session_key).await? {
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
            if !cache.touch(target, &session_key, idle).await? {
                return Ok(None);
            }
            expires_ms = now + idle;
        }
        record.last_seen_ms = now;
        let record = Arc::new(record);
        cache.fill(key, ticket, Arc::clone(&record), expires_ms, bytes.len());
        Ok(Some(Session { key, record }))
    }

    /// An anonymous session: no user, so no index, no limit, no role change to pick up. One
    /// `SET`.
    pub(super) async fn create_anonymous(
        &self,
        io: &Link,
        key: SessionKey,
        parts: EncodedParts,
        ttl: u64,
    ) -> Result<()> {
        let session_key = self.keys.session(&key);
        let value = [parts.head.as_slice(), &parts.authz, &parts.data].concat();
        io.write(|mut c| {
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
        .await
    }

    pub(super) async fn save_data(
        &self,
        io: &Link,
        token: &Token,
        data: &SessionData,
    ) -> Result<()> {
        let bytes = data.encode()?;
        let key = token.key();
        let session_key = self.keys.session(&key);
        let script = &self.scripts.save_data;
        let outcome: i64 = io
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

    /// Replaces the device block of `token`'s session, `read` as the caller read it, by
    /// `new`: `false` when the session is gone or its block changed meanwhile.
    pub(super) async fn bind_device(
        &self,
        io: &Link,
        token: &Token,
        read: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let key = token.key();
        let session_key = self.keys.session(&key);
        let script = &self.scripts.bind_device;
        let outcome: i64 = io
            .write(|mut c| async move {
                script
                    .key(&session_key)
                    .arg(read)
                    .arg(new)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match outcome_to_result(outcome, key) {
            Ok(()) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn update_data(
        &self,
        io: &Link,
        token: &Token,
        changes: &DataChanges,
    ) -> Result<SessionData> {
        let key = token.key();
        let session_key = self.keys.session(&key);
        let args = update_data_args(changes)?;
        let script = &self.scripts.update_data;
        let reply: Vec<redis::Value> = io
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

    /// The user's login epoch (`0` when none is stored).
    pub(super) async fn login_epoch(&self, io: &Link, user_id: &str) -> Result<LoginEpoch> {
        let key = self.keys.epoch(user_id);
        let value: Option<String> = io
            .read(|mut c| {
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

    /// The user's index entries, oldest first.
    /// Appends an entry (its bytes) to the user's login history, trimmed to the config's
    /// bounds.
    pub(super) async fn record_event(
        &self,
        io: &Link,
        user_id: &str,
        entry: Vec<u8>,
    ) -> Result<()> {
        if self.config.history_max() == 0 {
            return Ok(());
        }
        let max_age = self.config.history_max_age_ms();
        let key = self.keys.history(user_id);
        let script = &self.scripts.history_add;
        let max = self.config.history_max();
        let _: i64 = io
            .write(|mut c| async move {
                script
                    .key(&key)
                    .arg(&entry)
                    .arg(max)
                    .arg(max_age.max(1))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    /// The user's login history entries (their bytes), newest first, at most the config's
    /// count.
    pub(super) async fn login_history(&self, io: &Link, user_id: &str) -> Result<Vec<Vec<u8>>> {
        let key = self.keys.history(user_id);
        let count = self.config.history_max();
        if count == 0 {
            return Ok(Vec::new());
        }
        io.read(|mut c| async move {
            redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(count - 1)
                .query_async(&mut c)
                .await
        })
        .await
    }

    pub(super) async fn index_members(&self, io: &Link, user_id: &str) -> Result<Vec<Vec<u8>>> {
        let index = self.keys.index(user_id);
        io.read(|mut c| async move {
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
