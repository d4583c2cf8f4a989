//! The engine for one server or Sentinel's primary: every key lies in one place, so each
//! operation that touches a session and its user's index together is one atomic script or
//! `MULTI` (one round trip). Redis Cluster runs the same operations as ordered single-slot
//! steps (`cluster.rs`).

use async_trait::async_trait;
use redis::Script;

use super::engine::{epoch_arg, Created, Engine, Login};
use super::keys::KeyLayout;
use super::replies::{listed_entries, outcome_to_result, ListedEntry};
use super::scripts::{plain, reading_records};
use super::writes::{Link, ReadScript};
use crate::config::SessionConfig;
use crate::ended::EndReason;
use crate::epoch::LoginEpoch;
use crate::error::{Error, Result};
use crate::record::duration_ms;
use crate::token::SessionKey;

/// One script (or `MULTI`) per operation.
pub(super) struct Single {
    keys: KeyLayout,
    config: SessionConfig,
    scripts: Scripts,
}

struct Scripts {
    create: Script,
    evict: Script,
    delete: Script,
    /// Prunes index entries whose session ended: nothing that must survive a failover (the
    /// next listing prunes them again), nothing a cache holds.
    list: ReadScript,
    delete_members: Script,
    delete_others: Script,
    set_authz: Script,
    rotate: Script,
}

impl Single {
    pub(super) fn new(keys: KeyLayout, config: SessionConfig) -> Self {
        Self {
            keys,
            config,
            scripts: Scripts {
                create: plain(include_str!("create.lua")),
                evict: reading_records(include_str!("evict.lua")),
                delete: reading_records(include_str!("delete.lua")),
                list: ReadScript::new(plain(include_str!("list.lua"))),
                delete_members: reading_records(include_str!("delete_members.lua")),
                delete_others: reading_records(include_str!("delete_others.lua")),
                set_authz: reading_records(include_str!("set_authz.lua")),
                rotate: reading_records(include_str!("rotate.lua")),
            },
        }
    }
}

#[async_trait]
impl Engine for Single {
    fn name(&self) -> &'static str {
        "single"
    }

    /// One round trip in the common case: `create.lua` checks the login's epoch (no session
    /// for a login that began before the user's sessions were ended), takes the roles of a
    /// role change made while the login was in flight (atomically with `set_authz.lua`, so a
    /// later change is never undone), writes the session, indexes it (the index lives as long
    /// as the newest session can) and counts the index. Past the per-user limit (or every 32nd
    /// login without one) a second script prunes the index and evicts the oldest sessions.
    async fn create(&self, io: &Link, login: Login<'_>) -> Result<Created> {
        let Login {
            key,
            parts,
            ttl_ms: ttl,
            record,
            index_ttl_ms: absolute,
            epoch,
        } = login;
        let session_key = self.keys.session(&key);
        let index = self.keys.index(&record.user_id);
        let member = key.as_bytes().as_slice();
        let script = &self.scripts.create;
        let created: Option<(usize, Option<Vec<u8>>)> = io
            .write(|mut c| {
                let (session_key, index, parts) = (&session_key, &index, &parts);
                async move {
                    script
                        .key(session_key)
                        .key(index)
                        .key(self.keys.role_change(&record.user_id))
                        .key(self.keys.epoch(&record.user_id))
                        .arg(&parts.head)
                        .arg(&parts.authz)
                        .arg(&parts.data)
                        .arg(ttl)
                        .arg(record.created_ms)
                        .arg(member)
                        .arg(absolute)
                        .arg(epoch_arg(epoch))
                        .invoke_async(&mut c)
                        .await
                }
            })
            .await?;
        let Some((count, applied)) = created else {
            return Err(Error::LoginSuperseded);
        };
        let limit = self.config.max_sessions_per_user().unwrap_or(0);
        let evict = if limit > 0 {
            count > limit
        } else {
            count % 32 == 0
        };
        let mut evicted = 0;
        if evict {
            let script = &self.scripts.evict;
            let (prefix, ended) = (&self.keys.session_prefix, &self.keys.ended_prefix);
            let n: i64 = io
                .write(|mut c| {
                    let index = &index;
                    async move {
                        script
                            .key(index)
                            .arg(prefix.as_slice())
                            .arg(limit)
                            .arg(member)
                            .arg(ended.as_slice())
                            .arg(EndReason::Evicted.code())
                            .invoke_async(&mut c)
                            .await
                    }
                })
                .await?;
            evicted = usize::try_from(n).unwrap_or(0);
        }
        Ok(Created {
            evicted,
            role_change: applied,
        })
    }

    /// `delete.lua`.
    async fn delete(&self, io: &Link, key: SessionKey) -> Result<bool> {
        let (session_key, ended) = (self.keys.session(&key), self.keys.ended(&key));
        let script = &self.scripts.delete;
        let index_prefix = &self.keys.index_prefix;
        let deleted: i64 = io
            .write(|mut c| async move {
                script
                    .key(&session_key)
                    .key(&ended)
                    .arg(index_prefix.as_slice())
                    .arg(key.as_bytes().as_slice())
                    .arg(EndReason::LoggedOut.code())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted == 1)
    }

    /// `list.lua`.
    async fn list(&self, io: &Link, user_id: &str) -> Result<Vec<ListedEntry>> {
        let index = self.keys.index(user_id);
        let script = &self.scripts.list;
        let session_prefix = &self.keys.session_prefix;
        let flat: Vec<redis::Value> = io
            .read(|mut c| async move {
                script
                    .key(&index)
                    .arg(session_prefix.as_slice())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(listed_entries(flat))
    }

    /// `delete_members.lua`.
    async fn delete_members(
        &self,
        io: &Link,
        user_id: &str,
        only: Option<SessionKey>,
        why: EndReason,
    ) -> Result<usize> {
        let index = self.keys.index(user_id);
        let epoch = self.keys.epoch(user_id);
        let window = duration_ms(self.config.role_change_window());
        let script = &self.scripts.delete_members;
        let (session_prefix, ended) = (&self.keys.session_prefix, &self.keys.ended_prefix);
        let deleted: i64 = io
            .write(|mut c| async move {
                let mut call = script.key(&index);
                call.key(&epoch)
                    .arg(session_prefix.as_slice())
                    .arg(ended.as_slice())
                    .arg(why.code());
                match &only {
                    Some(key) => call.arg("some").arg(key.as_bytes().as_slice()),
                    None => call.arg("all").arg(LoginEpoch::next_value()).arg(window),
                };
                call.invoke_async(&mut c).await
            })
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(0))
    }

    /// `set_authz.lua`.
    async fn set_authz(&self, io: &Link, user_id: &str, block: &[u8]) -> Result<usize> {
        let index = self.keys.index(user_id);
        let role_change = self.keys.role_change(user_id);
        let window = duration_ms(self.config.role_change_window());
        let script = &self.scripts.set_authz;
        let session_prefix = &self.keys.session_prefix;
        let changed: i64 = io
            .write(|mut c| async move {
                script
                    .key(&index)
                    .key(&role_change)
                    .arg(session_prefix.as_slice())
                    .arg(block)
                    .arg(window)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(usize::try_from(changed).unwrap_or(0))
    }

    /// `rotate.lua`: the index keeps the session's score.
    async fn rotate(
        &self,
        io: &Link,
        old: SessionKey,
        new: SessionKey,
        now: u64,
        proof: Option<(u64, &str)>,
    ) -> Result<Vec<u8>> {
        let (old_key, new_key) = (self.keys.session(&old), self.keys.session(&new));
        let script = &self.scripts.rotate;
        let index_prefix = &self.keys.index_prefix;
        let (auth_time, method) = match proof {
            Some((ms, method)) => (ms.to_string(), method),
            None => (String::new(), ""),
        };
        let outcome: redis::Value = io
            .write(|mut c| async move {
                script
                    .key(&old_key)
                    .key(&new_key)
                    .arg(index_prefix.as_slice())
                    .arg(old.as_bytes().as_slice())
                    .arg(new.as_bytes().as_slice())
                    .arg(now)
                    .arg(auth_time)
                    .arg(method)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match outcome {
            redis::Value::BulkString(bytes) => Ok(bytes),
            redis::Value::Int(n) => {
                // 0: no session; -1: not a record of ours (logged, Corrupt).
                outcome_to_result(n, old)?;
                Err(Error::NotFound)
            }
            _ => Err(Error::NotFound),
        }
    }

    /// `delete_others.lua`.
    async fn delete_others(
        &self,
        io: &Link,
        user_id: &str,
        keep: SessionKey,
        why: EndReason,
    ) -> Result<usize> {
        let index = self.keys.index(user_id);
        let epoch = self.keys.epoch(user_id);
        let window = duration_ms(self.config.role_change_window());
        let script = &self.scripts.delete_others;
        let (session_prefix, ended) = (&self.keys.session_prefix, &self.keys.ended_prefix);
        let deleted: i64 = io
            .write(|mut c| async move {
                script
                    .key(&index)
                    .key(&epoch)
                    .arg(session_prefix.as_slice())
                    .arg(keep.as_bytes().as_slice())
                    .arg(LoginEpoch::next_value())
                    .arg(window)
                    .arg(ended.as_slice())
                    .arg(why.code())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(0))
    }
}
