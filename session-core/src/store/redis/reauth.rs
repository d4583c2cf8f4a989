//! Step-up re-authentication (a new token and a new auth time in one step) and "end the
//! user's other sessions" on Redis: one script each on one server or Sentinel, the split
//! sequences of `split.rs` on Redis Cluster.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::record::{check_user_id, now_ms, Session};
use crate::store::redis::keys::member_key;
use crate::store::redis::{decode_logged, outcome_to_result};
use crate::token::Token;
use crate::RedisStore;

impl RedisStore {
    /// [`SessionStore::reauthenticate`](crate::SessionStore::reauthenticate): `reauth.lua`
    /// (rotate and set the auth time, atomically), or on a cluster the split rotation with the
    /// auth time written into the copy.
    pub(super) async fn reauthenticate_session(&self, token: &Token) -> Result<(Token, Session)> {
        let old = token.key();
        // The same session, so the same deadline (the old token carries it).
        let new_token = Token::generate_until(token.deadline_ms())?;
        let new = new_token.key();
        let now = now_ms();
        let bytes = if self.is_cluster() {
            self.split_rotate(old, new, now, Some(now)).await?
        } else {
            let (old_key, new_key) = (self.keys.session(&old), self.keys.session(&new));
            let script = &self.scripts.reauth;
            let index_prefix = &self.keys.index_prefix;
            let outcome: redis::Value = self
                .write(|mut c| async move {
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
            match outcome {
                redis::Value::BulkString(bytes) => bytes,
                redis::Value::Int(n) => {
                    // 0: no session; -1: not a record of ours (logged, Corrupt).
                    outcome_to_result(n, old)?;
                    return Err(Error::NotFound);
                }
                _ => return Err(Error::NotFound),
            }
        };
        let record = decode_logged(new, &bytes).ok_or(Error::NotFound)?;
        Ok((
            new_token,
            Session {
                key: new,
                record: Arc::new(record),
            },
        ))
    }

    /// [`SessionStore::delete_other_user_sessions`](crate::SessionStore::delete_other_user_sessions):
    /// `delete_others.lua`, or on a cluster: read the index, then end the others (each in its
    /// own slot) and un-index them.
    pub(super) async fn delete_other_sessions(&self, user_id: &str, keep: &Token) -> Result<usize> {
        check_user_id(user_id)?;
        let keep = keep.key();
        if self.is_cluster() {
            let others: Vec<Vec<u8>> = self
                .index_members(user_id)
                .await?
                .into_iter()
                .filter(|m| member_key(m) != Some(keep))
                .collect();
            return self.split_delete_members(user_id, Some(others)).await;
        }
        let index = self.keys.index(user_id);
        let script = &self.scripts.delete_others;
        let session_prefix = &self.keys.session_prefix;
        let deleted: i64 = self
            .write(|mut c| async move {
                script
                    .key(&index)
                    .arg(session_prefix.as_slice())
                    .arg(keep.as_bytes().as_slice())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(0))
    }
}
