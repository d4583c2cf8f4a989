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
    /// Moves the session of `token` to a new token (`rotate.lua`, or on a cluster the split
    /// rotation), setting its auth time to `auth_time` when given (step-up
    /// re-authentication); returns the new token and the record as moved.
    pub(super) async fn move_session(
        &self,
        token: &Token,
        auth_time: Option<u64>,
    ) -> Result<(Token, Vec<u8>)> {
        let old = token.key();
        // The same session, so the same deadline (the old token carries it).
        let new_token = Token::generate_until(token.deadline_ms())?;
        let new = new_token.key();
        let now = now_ms();
        if self.is_cluster() {
            let bytes = self.split_rotate(old, new, now, auth_time).await?;
            return Ok((new_token, bytes));
        }
        let (old_key, new_key) = (self.keys.session(&old), self.keys.session(&new));
        let script = &self.scripts.rotate;
        let index_prefix = &self.keys.index_prefix;
        let auth_time = auth_time.map(|t| t.to_string()).unwrap_or_default();
        let outcome: redis::Value = self
            .write(|mut c| async move {
                script
                    .key(&old_key)
                    .key(&new_key)
                    .arg(index_prefix.as_slice())
                    .arg(old.as_bytes().as_slice())
                    .arg(new.as_bytes().as_slice())
                    .arg(now)
                    .arg(auth_time)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match outcome {
            redis::Value::BulkString(bytes) => Ok((new_token, bytes)),
            redis::Value::Int(n) => {
                // 0: no session; -1: not a record of ours (logged, Corrupt).
                outcome_to_result(n, old)?;
                Err(Error::NotFound)
            }
            _ => Err(Error::NotFound),
        }
    }

    /// [`SessionStore::reauthenticate`](crate::SessionStore::reauthenticate): the session moved
    /// to a new token with the auth time set to now, atomically.
    pub(super) async fn reauthenticate_session(&self, token: &Token) -> Result<(Token, Session)> {
        let (new_token, bytes) = self.move_session(token, Some(now_ms())).await?;
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
