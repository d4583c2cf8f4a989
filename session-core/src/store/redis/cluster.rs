//! The engine for Redis Cluster: the cross-slot operations as sequences of single-slot steps.
//!
//! On a cluster a script may only touch keys of one hash slot, and a session key and its user's
//! index live in different slots (the session key is named by the token's hash alone, so that
//! a request can find it with one command). Each operation below is therefore several steps,
//! ordered so that stopping half-way (an error, a failover) never leaves a session that a
//! client can use but the index cannot revoke:
//!
//! - **create** writes the session first, then indexes it. If indexing fails the call fails,
//!   the token is never handed out, and the orphan expires on its own TTL.
//! - **rotate** writes the new key, indexes it, then deletes the old key only if it still holds
//!   what was copied (a concurrent role change or last-seen update is copied over and retried),
//!   then un-indexes the old member. Stopping early leaves both keys live and both indexed.
//!   **Re-authentication** is the same sequence with the new auth time written into the copy.
//! - **delete** / **revoke** delete the session key first (`GETDEL`), then keep why it ended
//!   under its ended key (another slot: a request in between gets its 401 without a reason),
//!   then the index entry. Stopping early leaves an index entry without a key, which every
//!   index read prunes.
//!
//! Index entries whose key is gone are pruned whenever the index is read.
//!
//! Every step that changes something is a [`Link::write`], as on one server (on a cluster it
//! adds nothing today: replica acknowledgements and the cache are not offered there).

use async_trait::async_trait;
use futures_util::future::join_all;
use redis::Script;

use super::engine::{epoch_arg, Created, Engine, Login};
use super::failure::is_wrong_type;
use super::keys::{member_key, KeyLayout};
use super::replies::ListedEntry;
use super::scripts::{plain, reading_records};
use super::writes::Link;
use crate::config::SessionConfig;
use crate::ended::EndReason;
use crate::epoch::LoginEpoch;
use crate::error::{Error, Result, UnavailableKind};
use crate::record::{duration_ms, with_proof, Record, FORMAT_VERSION};
use crate::token::SessionKey;

/// Ordered single-slot steps per operation.
pub(super) struct Cluster {
    keys: KeyLayout,
    config: SessionConfig,
    scripts: Scripts,
}

struct Scripts {
    index_add: Script,
    mark_and_list: Script,
    splice_authz: Script,
    compare_delete: Script,
}

/// How often rotation copies a concurrently changed record before giving up.
const ROTATE_ATTEMPTS: usize = 5;
/// What `index_add.lua` answers: the index's members, oldest first, and the user's last role
/// change.
type IndexedMembers = (Vec<Vec<u8>>, Option<Vec<u8>>);
/// How many role changes during one login a cluster create applies before giving up.
const ROLE_CHANGE_ATTEMPTS: usize = 5;

impl Cluster {
    pub(super) fn new(keys: KeyLayout, config: SessionConfig) -> Self {
        Self {
            keys,
            config,
            scripts: Scripts {
                index_add: plain(include_str!("index_add.lua")),
                mark_and_list: plain(include_str!("mark_and_list.lua")),
                splice_authz: reading_records(include_str!("splice_authz.lua")),
                compare_delete: plain(include_str!("compare_delete.lua")),
            },
        }
    }

    async fn zrange(&self, io: &Link, index: &[u8]) -> Result<Vec<Vec<u8>>> {
        io.read(|mut c| async move {
            redis::cmd("ZRANGE")
                .arg(index)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await
    }

    async fn zrem(&self, io: &Link, index: &[u8], members: &[Vec<u8>]) -> Result<()> {
        if members.is_empty() {
            return Ok(());
        }
        io.write(|mut c| async move {
            redis::cmd("ZREM")
                .arg(index)
                .arg(members)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn set_px(&self, io: &Link, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<()> {
        io.write(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// `index_add.lua`: adds `member` (score `created_ms`) to `user_id`'s index, keeps the index
    /// alive for at least `ttl_ms`; returns every member, oldest first, and the user's last
    /// role change (its roles block), if one is within its window. `None`, and nothing
    /// indexed, when the login's epoch is no longer the user's.
    async fn index_add(
        &self,
        io: &Link,
        user_id: &str,
        member: &[u8],
        created_ms: u64,
        ttl_ms: u64,
        epoch: Option<&LoginEpoch>,
    ) -> Result<Option<IndexedMembers>> {
        let script = &self.scripts.index_add;
        let index = self.keys.index(user_id);
        let role_change = self.keys.role_change(user_id);
        let epoch_key = self.keys.epoch(user_id);
        let epoch = epoch_arg(epoch);
        io.write(|mut c| async move {
            script
                .key(&index)
                .key(&role_change)
                .key(&epoch_key)
                .arg(member)
                .arg(created_ms)
                .arg(ttl_ms)
                .arg(&epoch)
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    async fn del(&self, io: &Link, key: &[u8]) -> Result<bool> {
        let n: i64 = io
            .write(|mut c| async move { redis::cmd("DEL").arg(key).query_async(&mut c).await })
            .await?;
        Ok(n > 0)
    }

    /// Ends the oldest live sessions beyond the per-user limit (never `member`, the new one),
    /// pruning dead index entries on the way; returns how many were ended.
    async fn evict_over_limit(
        &self,
        io: &Link,
        user_id: &str,
        member: &[u8],
        members: Vec<Vec<u8>>,
    ) -> Result<usize> {
        let Some(limit) = self.config.max_sessions_per_user() else {
            return Ok(0);
        };
        if members.len() <= limit {
            return Ok(0);
        }
        let index = self.keys.index(user_id);
        // Which of the others are still live (oldest first)?
        let others: Vec<Vec<u8>> = members.into_iter().filter(|m| m != member).collect();
        let live = self.existing(io, &others).await?;
        let (live, dead): (Vec<_>, Vec<_>) = others.into_iter().zip(live).partition(|(_, l)| *l);
        let dead: Vec<Vec<u8>> = dead.into_iter().map(|(m, _)| m).collect();
        self.zrem(io, &index, &dead).await?;
        let excess = (live.len() + 1).saturating_sub(limit);
        let mut evicted = Vec::new();
        for (m, _) in live.into_iter().take(excess) {
            if let Some(k) = member_key(&m) {
                self.end(io, k, EndReason::Evicted).await?;
            }
            evicted.push(m);
        }
        self.zrem(io, &index, &evicted).await?;
        Ok(evicted.len())
    }

    /// `mark_and_list.lua`: records `value` under `marker` (a role change or a login epoch, in
    /// the index's slot) for the role-change window and returns the index's members, in one
    /// step: a create whose indexing step runs after it sees the marker, and one whose
    /// indexing step ran before it is among the members returned.
    async fn mark_and_list(
        &self,
        io: &Link,
        index: &[u8],
        marker: &[u8],
        value: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        let window = duration_ms(self.config.role_change_window());
        let script = &self.scripts.mark_and_list;
        io.write(|mut c| async move {
            script
                .key(index)
                .key(marker)
                .arg(value)
                .arg(window)
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    /// Gives the user a new login epoch and returns the index's members (one step): a login
    /// that began before gets no session, and every session indexed before is returned.
    async fn new_epoch_and_members(&self, io: &Link, user_id: &str) -> Result<Vec<Vec<u8>>> {
        let value = LoginEpoch::next_value().to_string();
        let (index, epoch) = (self.keys.index(user_id), self.keys.epoch(user_id));
        self.mark_and_list(io, &index, &epoch, value.as_bytes())
            .await
    }

    async fn get(&self, io: &Link, key: &[u8]) -> Result<Option<Vec<u8>>> {
        io.read(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await
    }

    /// `splice_authz.lua` on one session: 1 changed, 0 gone, -1 not a record of ours.
    async fn splice_authz(&self, io: &Link, session_key: &[u8], block: &[u8]) -> Result<i64> {
        let splice = &self.scripts.splice_authz;
        io.write(|mut c| async move {
            splice
                .key(session_key)
                .arg(block)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
    }

    /// Whether each member's session key exists.
    async fn existing(&self, io: &Link, members: &[Vec<u8>]) -> Result<Vec<bool>> {
        let checks = members.iter().map(|m| async move {
            let Some(k) = member_key(m) else {
                return Ok(false);
            };
            let key = self.keys.session(&k);
            let n: i64 = io
                .read(
                    |mut c| async move { redis::cmd("EXISTS").arg(&key).query_async(&mut c).await },
                )
                .await?;
            Ok(n > 0)
        });
        join_all(checks).await.into_iter().collect()
    }

    /// Ends the session under `key` for `why` and returns the value it had: `GETDEL` (a
    /// value of another type is deleted all the same, as an empty value), then, for a record
    /// of ours, `why` kept under the ended key until the session's deadline.
    async fn end(&self, io: &Link, key: SessionKey, why: EndReason) -> Result<Option<Vec<u8>>> {
        let session_key = self.keys.session(&key);
        let value: Option<Vec<u8>> = io
            .write(|mut c| {
                let session_key = &session_key;
                async move {
                    match redis::cmd("GETDEL")
                        .arg(session_key)
                        .query_async(&mut c)
                        .await
                    {
                        Err(e) if is_wrong_type(&e) => {
                            redis::cmd("DEL")
                                .arg(session_key)
                                .query_async::<()>(&mut c)
                                .await?;
                            Ok(Some(Vec::new()))
                        }
                        other => other,
                    }
                }
            })
            .await?;
        if let Some(record) = value.as_deref().and_then(|v| Record::decode(v).ok()) {
            let ended = self.keys.ended(&key);
            io.write(|mut c| {
                let ended = &ended;
                async move {
                    redis::cmd("SET")
                        .arg(ended)
                        .arg(why.code())
                        .arg("PXAT")
                        .arg(record.deadline_ms)
                        .query_async::<()>(&mut c)
                        .await
                }
            })
            .await?;
        }
        Ok(value)
    }

    /// Ends the given members' sessions for `why` (all of the user's when `members` is
    /// `None`: then the user also gets a new epoch, in the step that reads the index), each in
    /// its own slot, then un-indexes them. Returns how many were live.
    async fn delete_listed(
        &self,
        io: &Link,
        user_id: &str,
        members: Option<Vec<Vec<u8>>>,
        why: EndReason,
    ) -> Result<usize> {
        let index = self.keys.index(user_id);
        let members = match members {
            Some(m) => m,
            None => self.new_epoch_and_members(io, user_id).await?,
        };
        let deletions = members.iter().map(|m| async move {
            match member_key(m) {
                Some(k) => Ok(self.end(io, k, why).await?.is_some()),
                None => Ok(false),
            }
        });
        let deleted = join_all(deletions)
            .await
            .into_iter()
            .collect::<Result<Vec<bool>>>()?;
        // Only the members handled here: a session created meanwhile stays indexed.
        self.zrem(io, &index, &members).await?;
        Ok(deleted.into_iter().filter(|d| *d).count())
    }
}

#[async_trait]
impl Engine for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    /// The session is written first, then indexed; the indexing step also checks the login's
    /// epoch (a login that began before the user's sessions were ended indexes nothing, and
    /// its session is deleted: see `new_epoch_and_members`) and reads the user's last role
    /// change (same slot). A role change that the indexing step does not see comes after it,
    /// so it finds the session in the index and rewrites it itself. One that it does see is
    /// applied here, again until the role change read back is the one applied (a second
    /// change may land in between). Until `create` returns nobody holds the token, so the
    /// session is never loaded with the roles it was first written with.
    async fn create(&self, io: &Link, login: Login<'_>) -> Result<Created> {
        let Login {
            key,
            parts,
            ttl_ms,
            record,
            index_ttl_ms,
            epoch,
        } = login;
        let session_key = self.keys.session(&key);
        let value = [parts.head.as_slice(), &parts.authz, &parts.data].concat();
        self.set_px(io, &session_key, &value, ttl_ms).await?;
        let member = key.as_bytes().to_vec();
        let indexed = self
            .index_add(
                io,
                &record.user_id,
                &member,
                record.created_ms,
                index_ttl_ms,
                epoch,
            )
            .await?;
        let Some((members, mut role_change)) = indexed else {
            // The user's sessions were ended after the login began. Nobody holds the token;
            // the unindexed key would also expire on its own.
            self.del(io, &session_key).await?;
            return Err(Error::LoginSuperseded);
        };
        let original = parts.authz;
        let mut applied = original.clone();
        for _ in 0..ROLE_CHANGE_ATTEMPTS {
            match role_change {
                Some(block) if block != applied => {
                    self.splice_authz(io, &session_key, &block).await?;
                    applied = block;
                    role_change = self
                        .get(io, &self.keys.role_change(&record.user_id))
                        .await?;
                }
                _ => break,
            }
        }
        if role_change.is_some_and(|block| block != applied) {
            // Roles changed five times during one login: refuse it rather than guess.
            self.del(io, &session_key).await?;
            return Err(Error::unavailable(
                UnavailableKind::Server,
                "the user's roles kept changing during the login; try again",
            ));
        }
        let evicted = self
            .evict_over_limit(io, &record.user_id, &member, members)
            .await?;
        Ok(Created {
            evicted,
            role_change: (applied != original).then_some(applied),
        })
    }

    /// Rotate, cluster-safe; with a proof, also sets the record's auth time and method (a
    /// re-authentication). Returns the record as the new key holds it.
    async fn rotate(
        &self,
        io: &Link,
        old: SessionKey,
        new: SessionKey,
        now: u64,
        proof: Option<(u64, &str)>,
    ) -> Result<Vec<u8>> {
        let not_ours = || {
            Error::Corrupt("the value under this session key is not a session record".to_owned())
        };
        // The old record as copied, and what the new key gets (the same, or with the new auth
        // time and method): the old key is deleted only while it still holds `seen`.
        let patch = |seen: &[u8]| match proof {
            None => Some(seen.to_vec()),
            Some((ms, method)) => with_proof(seen, ms, method),
        };
        let old_key = self.keys.session(&old);
        let new_key = self.keys.session(&new);
        // GET and PTTL of one key in one MULTI: the value and the TTL it had.
        let read: (Option<Vec<u8>>, i64) = io
            .read(|mut c| {
                let old_key = &old_key;
                async move {
                    let read = redis::pipe()
                        .atomic()
                        .cmd("GET")
                        .arg(old_key)
                        .cmd("PTTL")
                        .arg(old_key)
                        .query_async(&mut c)
                        .await;
                    // A value of another type: not a session of ours (refused below).
                    match read {
                        Err(e) if is_wrong_type(&e) => Ok((Some(Vec::new()), 0)),
                        other => other,
                    }
                }
            })
            .await?;
        let (Some(mut seen), ttl) = read else {
            return Err(Error::NotFound);
        };
        if seen.first() != Some(&FORMAT_VERSION) {
            return Err(not_ours());
        }
        if ttl <= 0 {
            return Err(Error::NotFound);
        }
        let record = Record::decode(&seen)?;
        let mut written = patch(&seen).ok_or_else(not_ours)?;
        let ttl_ms = u64::try_from(ttl).unwrap_or(1);
        self.set_px(io, &new_key, &written, ttl_ms).await?;
        // An anonymous session is in no index.
        let indexed = !record.is_anonymous();
        let index = self.keys.index(&record.user_id);
        let remaining = record.deadline_ms.saturating_sub(now).max(1);
        let new_member = new.as_bytes().to_vec();
        if indexed {
            // No epoch: a rotation is no login, and always indexes.
            self.index_add(
                io,
                &record.user_id,
                &new_member,
                record.created_ms,
                remaining,
                None,
            )
            .await?;
        }
        let cad = &self.scripts.compare_delete;
        for _ in 0..ROTATE_ATTEMPTS {
            let outcome: redis::Value = io
                .write(|mut c| {
                    let (old_key, seen) = (&old_key, &seen);
                    async move { cad.key(old_key).arg(seen).invoke_async(&mut c).await }
                })
                .await?;
            match outcome {
                redis::Value::Int(1) => {
                    if indexed {
                        self.zrem(io, &index, &[old.as_bytes().to_vec()]).await?;
                    }
                    return Ok(written);
                }
                redis::Value::BulkString(changed) => {
                    // Changed meanwhile (roles, data, last seen): carry the change over.
                    written = patch(&changed).ok_or_else(not_ours)?;
                    seen = changed;
                    io.write(|mut c| {
                        let (new_key, written) = (&new_key, &written);
                        async move {
                            redis::cmd("SET")
                                .arg(new_key)
                                .arg(written)
                                .arg("KEEPTTL")
                                .query_async::<()>(&mut c)
                                .await
                        }
                    })
                    .await?;
                }
                _ => {
                    // The old session ended meanwhile (logout, revocation): so does this one.
                    self.del(io, &new_key).await?;
                    if indexed {
                        self.zrem(io, &index, &[new_member.clone(), old.as_bytes().to_vec()])
                            .await?;
                    }
                    return Err(Error::NotFound);
                }
            }
        }
        Err(Error::unavailable(
            UnavailableKind::Server,
            "the session kept changing during rotation; try again",
        ))
    }

    /// Ends every session of the user but `keep`: give the user a new epoch and read the index
    /// (one step), then end the others (each in its own slot) and un-index them.
    async fn delete_others(
        &self,
        io: &Link,
        user_id: &str,
        keep: SessionKey,
        why: EndReason,
    ) -> Result<usize> {
        let others: Vec<Vec<u8>> = self
            .new_epoch_and_members(io, user_id)
            .await?
            .into_iter()
            .filter(|m| member_key(m) != Some(keep))
            .collect();
        self.delete_listed(io, user_id, Some(others), why).await
    }

    /// Delete one session by token key, cluster-safe. True when there was one.
    async fn delete(&self, io: &Link, key: SessionKey) -> Result<bool> {
        let Some(value) = self.end(io, key, EndReason::LoggedOut).await? else {
            return Ok(false);
        };
        if let Some(record) = Record::decode(&value).ok().filter(|r| !r.is_anonymous()) {
            self.zrem(
                io,
                &self.keys.index(&record.user_id),
                &[key.as_bytes().to_vec()],
            )
            .await?;
        }
        Ok(true)
    }

    /// The user's live records (member, value), pruning dead members, cluster-safe.
    async fn list(&self, io: &Link, user_id: &str) -> Result<Vec<ListedEntry>> {
        let index = self.keys.index(user_id);
        let members = self.zrange(io, &index).await?;
        let reads = members.iter().map(|m| async move {
            let Some(k) = member_key(m) else {
                return Ok(None);
            };
            let key = self.keys.session(&k);
            let v: Option<(Vec<u8>, i64)> = io
                .read(|mut c| async move {
                    // GET and PTTL of one key: one slot, one round trip.
                    let read = redis::pipe()
                        .cmd("GET")
                        .arg(&key)
                        .cmd("PTTL")
                        .arg(&key)
                        .query_async::<(Option<Vec<u8>>, i64)>(&mut c)
                        .await;
                    match read {
                        Ok((value, pttl)) => Ok(value.map(|v| (v, pttl))),
                        // A value of another type is not a session.
                        Err(e) if is_wrong_type(&e) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .await?;
            Ok::<_, Error>(v)
        });
        let values = join_all(reads).await;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (member, v) in members.into_iter().zip(values) {
            match v? {
                Some((value, pttl)) => live.push(ListedEntry {
                    member,
                    value,
                    pttl,
                }),
                None => dead.push(member),
            }
        }
        self.zrem(io, &index, &dead).await?;
        Ok(live)
    }

    /// Reads the index first when ending all (with the new epoch), or ends the one given.
    async fn delete_members(
        &self,
        io: &Link,
        user_id: &str,
        only: Option<SessionKey>,
        why: EndReason,
    ) -> Result<usize> {
        let only = only.map(|key| vec![key.as_bytes().to_vec()]);
        self.delete_listed(io, user_id, only, why).await
    }

    /// Replace roles and permissions on every live session of the user, cluster-safe: the
    /// role change is recorded in the index's slot first (so logins in flight apply it to the
    /// sessions they create, see [`Engine::create`]), then every indexed session is
    /// rewritten in its own slot.
    async fn set_authz(&self, io: &Link, user_id: &str, block: &[u8]) -> Result<usize> {
        let index = self.keys.index(user_id);
        let role_change = self.keys.role_change(user_id);
        let members = self.mark_and_list(io, &index, &role_change, block).await?;
        let updates = members.iter().map(|m| async move {
            let Some(k) = member_key(m) else {
                return Ok(0);
            };
            self.splice_authz(io, &self.keys.session(&k), block).await
        });
        let outcomes = join_all(updates)
            .await
            .into_iter()
            .collect::<Result<Vec<i64>>>()?;
        let dead: Vec<Vec<u8>> = members
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == 0)
            .map(|(m, _)| m.clone())
            .collect();
        self.zrem(io, &index, &dead).await?;
        Ok(outcomes.iter().filter(|o| **o == 1).count())
    }
}
