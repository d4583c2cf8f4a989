//! Reading what Redis answers: records under session keys (never a panic, a foreign value is
//! no session and a warning), script outcomes, `update_data.lua`'s answer and the listings.
//! Fuzzed through `crate::__fuzz`.

use std::sync::Arc;

use super::keys::member_key;
use crate::error::{Error, Result};
use crate::record::{Record, Session, SessionData, SessionInfo, MAX_DATA_LEN};
use crate::token::SessionKey;

/// A write script's outcome: 1 done, 0 no session, -1 bytes that are not a record of ours.
pub(super) fn outcome_to_result(outcome: i64, key: SessionKey) -> Result<()> {
    match outcome {
        1 => Ok(()),
        -1 => Err(unreadable_record(key)),
        _ => Err(Error::NotFound),
    }
}

/// Reads `update_data.lua`'s answer.
pub(super) fn updated_data(reply: Vec<redis::Value>, key: SessionKey) -> Result<SessionData> {
    let unexpected = |reply: &[redis::Value]| {
        Error::Internal(format!(
            "update_data.lua gave an unexpected answer: {reply:?}"
        ))
    };
    let data = |bytes: &[u8]| {
        SessionData::decode(bytes).inspect_err(|_| {
            unreadable_record(key);
        })
    };
    match reply.as_slice() {
        [redis::Value::Int(1), redis::Value::BulkString(bytes)] => data(bytes),
        [redis::Value::Int(2), redis::Value::BulkString(bytes)] => {
            Err(Error::Conflict { data: data(bytes)? })
        }
        [redis::Value::Int(3), redis::Value::Int(len)] => Err(Error::InvalidInput(format!(
            "session data would be {len} bytes encoded; the limit is {MAX_DATA_LEN}"
        ))),
        [redis::Value::Int(0)] => Err(Error::NotFound),
        // Not a record of ours, or data that is not a JSON object: left untouched.
        [redis::Value::Int(-1)] => Err(unreadable_record(key)),
        other => Err(unexpected(other)),
    }
}

/// Logs and describes bytes under a session key that a script could not read.
pub(super) fn unreadable_record(key: SessionKey) -> Error {
    tracing::warn!(
        target: "session_core::store",
        session = %key.log_tag(),
        "unreadable bytes under a session key; left untouched"
    );
    Error::Corrupt("the value under this session key is not a session record".to_owned())
}

/// One live entry of a user's index, as read for listing.
pub(super) struct ListedEntry {
    pub(super) member: Vec<u8>,
    pub(super) value: Vec<u8>,
    /// The session key's remaining TTL (ms).
    pub(super) pttl: i64,
}

/// `list.lua`'s flat reply (member, record, pttl, ...) as entries; anything malformed is
/// skipped.
pub(super) fn listed_entries(flat: Vec<redis::Value>) -> Vec<ListedEntry> {
    let mut items = flat.into_iter();
    let mut entries = Vec::new();
    while let (Some(member), Some(value), Some(pttl)) = (items.next(), items.next(), items.next()) {
        let (Ok(member), Ok(value), Ok(pttl)) = (
            redis::from_redis_value::<Vec<u8>>(member),
            redis::from_redis_value::<Vec<u8>>(value),
            redis::from_redis_value::<i64>(pttl),
        ) else {
            continue;
        };
        entries.push(ListedEntry {
            member,
            value,
            pttl,
        });
    }
    entries
}

/// The live sessions of `user_id` among listed entries; members that are not session keys,
/// unreadable records, ended sessions and other users' records are left out.
pub(super) fn listed_sessions(
    entries: Vec<ListedEntry>,
    user_id: &str,
    now: u64,
    idle: impl Fn(bool) -> u64,
) -> Vec<SessionInfo> {
    let mut listed: Vec<SessionInfo> = entries
        .into_iter()
        .filter_map(|entry| {
            let key = member_key(&entry.member)?;
            let mut record = decode_logged(key, &entry.value)?;
            if record.deadline_ms <= now || record.user_id != user_id {
                return None;
            }
            let idle = idle(record.device.remembered);
            record.last_seen_ms = last_seen_from_ttl(&record, entry.pttl, idle, now);
            Some(
                Session {
                    key,
                    record: Arc::new(record),
                }
                .info(),
            )
        })
        .collect();
    crate::record::most_recent_first(&mut listed);
    listed
}

/// "Last seen" of a listed session. Every load sets the key's expiry to the idle timeout from
/// that moment, so the remaining TTL tells when it was last used, more precisely than the
/// record (rewritten only by writes). Never before the record's own figure (a TTL capped by
/// the absolute deadline would say earlier), never in the future.
fn last_seen_from_ttl(record: &Record, pttl: i64, idle: u64, now: u64) -> u64 {
    let from_ttl = u64::try_from(pttl)
        .ok()
        .map_or(0, |left| (now + left).saturating_sub(idle));
    from_ttl.max(record.last_seen_ms).min(now)
}

/// The record, or `None` (logged) for bytes that are not one.
pub(super) fn decode_logged(key: SessionKey, bytes: &[u8]) -> Option<Record> {
    match Record::decode(bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            log_unreadable(key, &e);
            None
        }
    }
}

pub(super) fn log_unreadable(key: SessionKey, what: &dyn std::fmt::Display) {
    tracing::warn!(
        target: "session_core::store",
        session = %key.log_tag(),
        error = %what,
        "unreadable bytes under a session key; treated as no session \
         (does another program write under this key prefix?)"
    );
}

/// The parsers of what Redis sends back, for the fuzz targets (`crate::__fuzz`).
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz {
    use super::*;

    /// `list.lua`'s reply as `list_user_sessions` reads it.
    pub(crate) fn list_reply(
        flat: Vec<redis::Value>,
        user_id: &str,
        now: u64,
        idle: u64,
    ) -> Vec<SessionInfo> {
        listed_sessions(listed_entries(flat), user_id, now, |_| idle)
    }

    /// A throttle script's "remaining lock in ms, or -1".
    #[cfg(feature = "throttle")]
    pub(crate) fn throttle_reply(ttl_ms: i64) -> Option<std::time::Duration> {
        super::super::throttle::attempt(ttl_ms)
    }

    /// A write script's outcome (1 done, 0 no session, -1 not a record).
    pub(crate) fn outcome(outcome: i64, key: SessionKey) -> Result<()> {
        outcome_to_result(outcome, key)
    }
}
