//! Step-up re-authentication (a new token and a new auth time in one step) and "end the
//! user's other sessions" on Redis: one script each on one server or Sentinel, the split
//! sequences of `split.rs` on Redis Cluster.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::record::{check_user_id, Session};
use crate::store::redis::{decode_logged, Strategy};
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
        let now = self.now_ms();
        let bytes = match self.strategy() {
            Strategy::Atomic => self.atomic_rotate(old, new, now, auth_time).await?,
            Strategy::Split => self.split_rotate(old, new, now, auth_time).await?,
        };
        Ok((new_token, bytes))
    }

    /// [`SessionStore::reauthenticate`](crate::SessionStore::reauthenticate): the session moved
    /// to a new token with the auth time set to now, atomically.
    pub(super) async fn reauthenticate_session(&self, token: &Token) -> Result<(Token, Session)> {
        let (new_token, bytes) = self.move_session(token, Some(self.now_ms())).await?;
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
        match self.strategy() {
            Strategy::Atomic => self.atomic_delete_others(user_id, keep).await,
            Strategy::Split => self.split_delete_others(user_id, keep).await,
        }
    }
}
