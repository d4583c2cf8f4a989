//! The rules of a session store, written once over [`Storage`]'s primitives: every `Storage`
//! is a [`SessionStore`]. The Redis store keeps the same rules in its scripts (one round trip
//! per operation, which a generic transaction cannot give); the conformance suite holds both
//! to them.

use std::sync::Arc;

use async_trait::async_trait;

use crate::binding::DeviceBinding;
use crate::changes::DataChanges;
use crate::config::SessionConfig;
use crate::device::check_proof_method;
use crate::ended::EndReason;
use crate::epoch::LoginEpoch;
use crate::error::{Error, Result};
use crate::history::{HistoryEntry, LoginEvent};
use crate::record::{
    check_user_id, duration_ms, normalized, Authz, NewSession, Record, Session, SessionData,
    SessionInfo,
};
use crate::store::storage::Storage;
use crate::store::SessionStore;
use crate::token::{SessionHandle, SessionKey, Token};

/// Live at `now` (ms): not ended, before its deadline, and used within the idle timeout.
pub(crate) fn is_live(record: &Record, now: u64, config: &SessionConfig) -> bool {
    record.ended.is_none()
        && now < record.deadline_ms
        && now
            < record
                .last_seen_ms
                .saturating_add(config.idle_ms(record.device.remembered))
}

/// Worth keeping at `now` (ms): a live session, or an ended session's marker (its
/// [`EndReason`], see [`crate::ended`]) until the session's deadline.
pub(crate) fn is_kept(record: &Record, now: u64, config: &SessionConfig) -> bool {
    match record.ended {
        Some(_) => now < record.deadline_ms,
        None => is_live(record, now, config),
    }
}

/// Takes the live sessions out of `sessions`, oldest first (by creation, then key: one order
/// for every backend), and leaves the ended sessions' markers still kept; drops the rest.
fn take_live_oldest_first(
    sessions: &mut Vec<Session>,
    now: u64,
    config: &SessionConfig,
) -> Vec<Session> {
    sessions.retain(|s| is_kept(&s.record, now, config));
    let (mut live, markers) = std::mem::take(sessions)
        .into_iter()
        .partition(|s| s.record.ended.is_none());
    *sessions = markers;
    live.sort_by(|a: &Session, b: &Session| {
        (a.record.created_ms, a.key.as_bytes()).cmp(&(b.record.created_ms, b.key.as_bytes()))
    });
    live
}

/// What the rules keep per user besides the sessions, each with the time (ms) it stops
/// applying: the login epoch ([`LoginEpoch`]) and the roles of the last role change.
/// Encoded as the user's opaque value of [`Storage::user`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Marks {
    epoch: Option<(u64, u64)>,
    roles: Option<(Authz, u64)>,
    /// The login history, oldest first, each entry as [`HistoryEntry::encode`] wrote it.
    history: Vec<Vec<u8>>,
}

/// Bytes of the fixed part: epoch value, epoch end, roles end (0: none).
const MARKS_HEAD: usize = 24;

impl Marks {
    /// The marks in `bytes` that still apply at `now` (empty bytes: none).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for bytes this code did not write: a store holding them is refused
    /// rather than read as "no role change".
    pub(crate) fn decode(bytes: &[u8], now: u64) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let corrupt = || Error::Corrupt("a user's stored marks".into());
        let word = |i: usize| -> Result<u64> {
            let b = bytes.get(i * 8..i * 8 + 8).ok_or_else(corrupt)?;
            Ok(u64::from_be_bytes(b.try_into().map_err(|_| corrupt())?))
        };
        let (epoch, epoch_until, roles_until) = (word(0)?, word(1)?, word(2)?);
        let mut rest = bytes.get(MARKS_HEAD..).ok_or_else(corrupt)?;
        let mut roles = None;
        if roles_until != 0 {
            let (len, _) = rest.split_first_chunk::<2>().ok_or_else(corrupt)?;
            let (block, tail) = rest
                .split_at_checked(2 + usize::from(u16::from_be_bytes(*len)))
                .ok_or_else(corrupt)?;
            if roles_until > now {
                roles = Some((Authz::decode_block(block)?, roles_until));
            }
            rest = tail;
        }
        let mut history = Vec::new();
        while let Some((&len, tail)) = rest.split_first() {
            let (entry, tail) = tail
                .split_at_checked(usize::from(len))
                .ok_or_else(corrupt)?;
            history.push(entry.to_vec());
            rest = tail;
        }
        Ok(Self {
            epoch: (epoch_until > now).then_some((epoch, epoch_until)),
            roles,
            history,
        })
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        if *self == Self::default() {
            return Ok(Vec::new());
        }
        let (epoch, epoch_until) = self.epoch.unwrap_or((0, 0));
        let mut bytes = Vec::with_capacity(MARKS_HEAD + 16);
        bytes.extend_from_slice(&epoch.to_be_bytes());
        bytes.extend_from_slice(&epoch_until.to_be_bytes());
        match &self.roles {
            Some((authz, until)) => {
                bytes.extend_from_slice(&until.to_be_bytes());
                bytes.extend_from_slice(&authz.encode_block()?);
            }
            None => bytes.extend_from_slice(&0u64.to_be_bytes()),
        }
        for entry in &self.history {
            // An encoded entry is at most 1 + 6 + 3 × 65 bytes.
            bytes.push(entry.len() as u8);
            bytes.extend_from_slice(entry);
        }
        Ok(bytes)
    }

    /// Appends `entry` to the history at `now`, then drops what is past the config's bounds
    /// (the oldest first).
    fn record(&mut self, entry: &HistoryEntry, now: u64, config: &SessionConfig) {
        self.history.push(entry.encode(now));
        let oldest = now.saturating_sub(config.history_max_age_ms());
        self.history.retain(|e| entry_time(e) >= oldest);
        let excess = self.history.len().saturating_sub(config.history_max());
        self.history.drain(..excess);
    }

    /// What of a stored value still applies at `now` (expired marks and history entries past
    /// the age bound dropped), re-encoded; `None` when nothing does, so a backend that sweeps
    /// can forget the user. Bytes this code did not write are kept as they are.
    pub(crate) fn sweep(bytes: &[u8], now: u64, config: &SessionConfig) -> Option<Vec<u8>> {
        let Ok(mut marks) = Self::decode(bytes, now) else {
            return Some(bytes.to_vec());
        };
        let oldest = now.saturating_sub(config.history_max_age_ms());
        marks.history.retain(|e| entry_time(e) >= oldest);
        if marks == Self::default() {
            None
        } else {
            marks.encode().ok()
        }
    }

    /// The history within the age bound at `now`, newest first.
    fn history(&self, now: u64, config: &SessionConfig) -> Result<Vec<HistoryEntry>> {
        let oldest = now.saturating_sub(config.history_max_age_ms());
        self.history
            .iter()
            .rev()
            .filter(|e| entry_time(e) >= oldest)
            .map(|e| HistoryEntry::decode(e))
            .collect()
    }

    /// The epoch a login reads (0: none recorded, or its window has passed).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.map_or(0, |(value, _)| value)
    }

    /// A new epoch until `until`: logins that began before now get no session.
    fn new_epoch(&mut self, until: u64) {
        self.epoch = Some((LoginEpoch::next_value(), until));
    }
}

/// The time (ms) of an encoded history entry (0 for a malformed one, which the age bound then
/// drops).
fn entry_time(entry: &[u8]) -> u64 {
    entry.get(1..7).map_or(0, |b| {
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(b);
        u64::from_be_bytes(ms)
    })
}

/// Runs `change` on the user's live sessions (oldest first) and marks, through the backend.
/// The sessions `change` removes end for `ending`: each leaves a marker with that reason until
/// its deadline (with `None`, nothing: `change` removes none).
async fn with_user<S: Storage, T: Send>(
    storage: &S,
    user_id: &str,
    ending: Option<EndReason>,
    mut change: impl FnMut(&mut Vec<Session>, &mut Marks, u64) -> Result<T> + Send,
) -> Result<T> {
    check_user_id(user_id)?;
    let config = Storage::config(storage);
    let mut out = None;
    storage
        .user(user_id, &mut |sessions, value| {
            let now = config.clock().now_ms();
            let mut marks = Marks::decode(value, now)?;
            let mut live = take_live_oldest_first(sessions, now, config);
            let before = ending.map(|_| live.clone()).unwrap_or_default();
            out = Some(change(&mut live, &mut marks, now)?);
            if let Some(reason) = ending {
                let ended = before
                    .into_iter()
                    .filter(|b| !live.iter().any(|s| s.key == b.key));
                sessions.extend(ended.map(|s| Session {
                    key: s.key,
                    record: Arc::new(s.record.ended_for(reason)),
                }));
            }
            sessions.append(&mut live);
            *value = marks.encode()?;
            Ok(())
        })
        .await?;
    out.ok_or_else(change_not_run)
}

/// Runs `change` on the live session of `key` (`NotFound` when there is none, and nothing is
/// written), through the backend.
async fn with_live_session<S: Storage, T: Send>(
    storage: &S,
    key: &SessionKey,
    mut change: impl FnMut(&mut Session, u64) -> Result<T> + Send,
) -> Result<T> {
    let config = Storage::config(storage);
    let mut out = None;
    storage
        .session(key, &mut |list| {
            let now = config.clock().now_ms();
            list.retain(|s| s.key == *key && is_live(&s.record, now, config));
            let session = list.first_mut().ok_or(Error::NotFound)?;
            out = Some(change(session, now)?);
            Ok(())
        })
        .await?;
    out.ok_or_else(change_not_run)
}

/// A backend answered `Ok` without running the change it was given: a broken `Storage`, never
/// "no session".
fn change_not_run() -> Error {
    Error::Internal("the storage answered without running the change it was given".into())
}

/// Moves the session of `token` under a new token (same deadline), applying `change` on the
/// way; the old token stops working at once.
async fn move_to_new_token<S: Storage>(
    storage: &S,
    token: &Token,
    change: impl Fn(&mut Record, u64) + Send + Sync,
) -> Result<(Token, Session)> {
    // The same session, so the same deadline (the old token carries it).
    let new_token = token.successor()?;
    let new_key = new_token.key();
    let session = with_live_session(storage, &token.key(), |session, now| {
        change(Arc::make_mut(&mut session.record), now);
        session.key = new_key;
        Ok(session.clone())
    })
    .await?;
    Ok((new_token, session))
}

#[async_trait]
impl<S: Storage> SessionStore for S {
    fn config(&self) -> &SessionConfig {
        Storage::config(self)
    }

    fn backend_name(&self) -> &'static str {
        Storage::backend_name(self)
    }

    async fn ping(&self) -> Result<()> {
        Storage::ping(self).await
    }

    async fn create(&self, mut new: NewSession) -> Result<(Token, Session)> {
        new.check_owner()?;
        let epoch = new.login_epoch.take();
        let config = Storage::config(self);
        let now = config.clock().now_ms();
        let absolute = config.lifetime_ms(&new.device);
        let record = Record::created(new, now, absolute);
        // Same size limits as at rest in Redis.
        record.encode()?;
        let token = Token::issue(record.deadline_ms, record.device.remembered)?;
        let key = token.key();
        let created = Session {
            key,
            record: Arc::new(record),
        };
        // An anonymous session has no user: no role change to pick up, no index, no limit.
        if created.is_anonymous() {
            self.session(&key, &mut |list| {
                list.clear();
                list.push(created.clone());
                Ok(())
            })
            .await?;
            return Ok((token, created));
        }
        let user_id = created.user_id().to_owned();
        let session = with_user(
            self,
            &user_id,
            Some(EndReason::Evicted),
            |sessions, marks, now| {
                // The user's sessions were ended after this login began: no session.
                if epoch.as_ref().is_some_and(|e| e.value() != marks.epoch()) {
                    return Err(Error::LoginSuperseded);
                }
                let mut session = created.clone();
                // A role change made while this login was in flight wins over the roles it read.
                if let Some((authz, _)) = &marks.roles {
                    Arc::make_mut(&mut session.record).authz = authz.clone();
                }
                sessions.push(session.clone());
                if let Some(limit) = config.max_sessions_per_user() {
                    // Oldest first, and the new one (last) is never among the evicted.
                    let excess = sessions.len().saturating_sub(limit.max(1));
                    for evicted in sessions.drain(..excess) {
                        let entry =
                            HistoryEntry::of_device(LoginEvent::Evicted, &evicted.record.device);
                        marks.record(&entry, now, config);
                    }
                }
                Ok(session)
            },
        )
        .await?;
        Ok((token, session))
    }

    async fn new_login(&self, user_id: &str) -> Result<NewSession> {
        let value = with_user(self, user_id, None, |_, marks, _| Ok(marks.epoch())).await?;
        Ok(NewSession::new(user_id).with_login_epoch(LoginEpoch::new(user_id, value)))
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        let config = Storage::config(self);
        if token.deadline_ms() <= config.clock().now_ms() {
            return Ok(None);
        }
        let loaded = with_live_session(self, &token.key(), |session, now| {
            // Loads within the same millisecond leave the record shared (no copy).
            if session.record.last_seen_ms != now {
                Arc::make_mut(&mut session.record).last_seen_ms = now;
            }
            Ok(session.clone())
        })
        .await;
        match loaded {
            Ok(session) => Ok(Some(session)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        data.encode()?;
        with_live_session(self, &token.key(), |session, _| {
            Arc::make_mut(&mut session.record).data = data.clone();
            Ok(())
        })
        .await
    }

    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<SessionData> {
        with_live_session(self, &token.key(), |session, _| {
            let mut data = session.record.data.clone();
            if !changes.apply_to(&mut data)? {
                return Err(Error::Conflict { data });
            }
            Arc::make_mut(&mut session.record).data = data.clone();
            Ok(data)
        })
        .await
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        let (new_token, _) = move_to_new_token(self, token, |_, _| {}).await?;
        Ok(new_token)
    }

    async fn reauthenticate(&self, token: &Token, method: &str) -> Result<(Token, Session)> {
        check_proof_method(method)?;
        move_to_new_token(self, token, |record, now| record.prove(now, method)).await
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        let config = Storage::config(self);
        let key = token.key();
        let mut was_live = false;
        self.session(&key, &mut |list| {
            let now = config.clock().now_ms();
            list.retain(|s| s.key == key && is_kept(&s.record, now, config));
            let live = list.iter_mut().find(|s| is_live(&s.record, now, config));
            was_live = live.is_some();
            if let Some(session) = live {
                session.record = Arc::new(session.record.ended_for(EndReason::LoggedOut));
            }
            Ok(())
        })
        .await?;
        Ok(was_live)
    }

    async fn bind_device(
        &self,
        token: &Token,
        read: &Session,
        binding: &DeviceBinding,
    ) -> Result<bool> {
        let config = Storage::config(self);
        let key = token.key();
        let expected = &read.record.device.binding;
        let mut bound = false;
        self.session(&key, &mut |list| {
            let now = config.clock().now_ms();
            bound = false;
            let live = list
                .iter_mut()
                .find(|s| s.key == key && is_live(&s.record, now, config));
            if let Some(session) = live.filter(|s| s.record.device.binding == *expected) {
                let mut record = (*session.record).clone();
                record.device.binding = Some(binding.clone());
                session.record = Arc::new(record);
                bound = true;
            }
            Ok(())
        })
        .await?;
        Ok(bound)
    }

    async fn end_reason(&self, token: &Token) -> Result<Option<EndReason>> {
        let config = Storage::config(self);
        if token.deadline_ms() <= config.clock().now_ms() {
            return Ok(Some(EndReason::Expired));
        }
        let key = token.key();
        let mut reason = None;
        self.session(&key, &mut |list| {
            let now = config.clock().now_ms();
            reason = list
                .iter()
                .find(|s| s.key == key && is_kept(&s.record, now, config))
                .and_then(|s| s.record.ended);
            Ok(())
        })
        .await?;
        Ok(reason)
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        let mut listed: Vec<SessionInfo> = with_user(self, user_id, None, |sessions, _, _| {
            Ok(sessions.iter().map(Session::info).collect())
        })
        .await?;
        crate::record::most_recent_first(&mut listed);
        Ok(listed)
    }

    async fn record_event(&self, user_id: &str, entry: HistoryEntry) -> Result<()> {
        let config = Storage::config(self);
        with_user(self, user_id, None, |_, marks, now| {
            marks.record(&entry, now, config);
            Ok(())
        })
        .await
    }

    async fn login_history(&self, user_id: &str) -> Result<Vec<HistoryEntry>> {
        let config = Storage::config(self);
        with_user(self, user_id, None, |_, marks, now| {
            marks.history(now, config)
        })
        .await
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        with_user(self, user_id, Some(EndReason::Revoked), |sessions, _, _| {
            let before = sessions.len();
            sessions.retain(|s| s.handle() != *handle);
            Ok(sessions.len() < before)
        })
        .await
    }

    async fn delete_user_sessions(&self, user_id: &str, why: EndReason) -> Result<usize> {
        let window = duration_ms(Storage::config(self).role_change_window());
        with_user(self, user_id, Some(why), |sessions, marks, now| {
            marks.new_epoch(now + window);
            let ended = sessions.len();
            sessions.clear();
            Ok(ended)
        })
        .await
    }

    async fn delete_other_user_sessions(
        &self,
        user_id: &str,
        keep: &Token,
        why: EndReason,
    ) -> Result<usize> {
        let window = duration_ms(Storage::config(self).role_change_window());
        let keep = keep.key();
        with_user(self, user_id, Some(why), |sessions, marks, now| {
            marks.new_epoch(now + window);
            let before = sessions.len();
            sessions.retain(|s| s.key == keep);
            Ok(before - sessions.len())
        })
        .await
    }

    async fn set_user_authz(
        &self,
        user_id: &str,
        roles: &[String],
        permissions: &[String],
    ) -> Result<usize> {
        let authz = Authz {
            roles: normalized(roles.iter().cloned()),
            permissions: normalized(permissions.iter().cloned()),
        };
        // Checked before anything is written: oversized lists change nothing.
        authz.encode_block()?;
        let window = duration_ms(Storage::config(self).role_change_window());
        with_user(self, user_id, None, |sessions, marks, now| {
            marks.roles = Some((authz.clone(), now + window));
            for session in sessions.iter_mut() {
                Arc::make_mut(&mut session.record).authz = authz.clone();
            }
            Ok(sessions.len())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_lapse_at_their_ends() {
        let authz = Authz {
            roles: vec!["USER".into()],
            permissions: vec!["orders:read".into()],
        };
        let history = vec![HistoryEntry::new(LoginEvent::Login).encode(500)];
        let marks = Marks {
            epoch: Some((7, 1_000)),
            roles: Some((authz.clone(), 2_000)),
            history: history.clone(),
        };
        let bytes = marks.encode().unwrap();
        assert_eq!(Marks::decode(&bytes, 999).unwrap(), marks);
        let later = Marks::decode(&bytes, 1_000).unwrap();
        assert_eq!(later.epoch(), 0, "the epoch lapsed at its end");
        assert_eq!(later.roles, Some((authz, 2_000)));
        // Past both ends only the history is left, and it still reads (after the lapsed
        // roles block).
        let lapsed = Marks::decode(&bytes, 2_000).unwrap();
        assert_eq!(
            lapsed,
            Marks {
                history,
                ..Marks::default()
            }
        );
        assert!(Marks::default().encode().unwrap().is_empty());
    }

    #[test]
    fn foreign_marks_are_corrupt_not_a_panic() {
        for bytes in [&b"x"[..], &[0u8; 23][..], &[0xff; 40][..]] {
            assert!(matches!(Marks::decode(bytes, 0), Err(Error::Corrupt(_))));
        }
    }
}
