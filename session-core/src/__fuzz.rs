//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the parsers of what a
//! client or Redis controls, which are otherwise crate-private. Not public API: it may change in
//! any release.

use crate::error::Result;
use crate::record::Record;
#[cfg(feature = "redis")]
use crate::record::SessionInfo;
use crate::token::{SessionKey, Token};

/// A stored record decoded and encoded again (see [`record_reencode`]).
pub struct Reencoded {
    /// The record's encoding.
    pub bytes: Vec<u8>,
    /// Where its application data begins (everything before is header and authorization).
    pub data_at: usize,
    /// Whether the encoding decodes to the same record as the original bytes did.
    pub same_record: bool,
}

/// Decodes stored bytes as a session record and, when they decode, encodes the record again:
/// `None` if the bytes were refused, else the re-encoding (or the error encoding gave).
pub fn record_reencode(bytes: &[u8]) -> Option<Result<Reencoded>> {
    let record = Record::decode(bytes).ok()?;
    Some(record.encode_parts().map(|parts| {
        let data_at = parts.head.len() + parts.authz.len();
        let bytes = [parts.head, parts.authz, parts.data].concat();
        let same_record = Record::decode(&bytes).is_ok_and(|again| again == record);
        Reencoded {
            bytes,
            data_at,
            same_record,
        }
    }))
}

/// The session token the layer would read from these `Cookie` headers.
pub fn token_from_cookie_headers(
    cookie: &crate::web::CookieConfig,
    headers: &http::HeaderMap,
) -> Option<Token> {
    cookie.token_from(
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .map(|v| v.as_bytes()),
    )
}

/// `list.lua`'s reply (member, record, pttl, ...) as `list_user_sessions` turns it into
/// listings for `user_id`, at `now` (ms) with an idle timeout of `idle` ms.
#[cfg(feature = "redis")]
pub fn list_reply(flat: Vec<redis::Value>, user_id: &str, now: u64, idle: u64) -> Vec<SessionInfo> {
    crate::store::redis::fuzz::list_reply(flat, user_id, now, idle)
}

/// A throttle script's reply ("remaining lock in ms, or -1") as the Redis throttle reads it.
#[cfg(all(feature = "redis", feature = "throttle"))]
pub fn throttle_reply(ttl_ms: i64) -> Option<std::time::Duration> {
    crate::store::redis::fuzz::throttle_reply(ttl_ms)
}

/// A write script's outcome (1 done, 0 no session, -1 not a record) as the store reads it.
#[cfg(feature = "redis")]
pub fn write_outcome(outcome: i64, key: SessionKey) -> Result<()> {
    crate::store::redis::fuzz::outcome(outcome, key)
}

/// `Token::parse`'s byte form (what the cookie scan calls): the token, if `bytes` are one.
pub fn token_parse_bytes(bytes: &[u8]) -> Option<Token> {
    Token::parse_bytes(bytes).ok()
}

/// The key a token's session is filed under.
pub fn session_key(token: &Token) -> SessionKey {
    token.key()
}

/// A DBSC `jwk` (JSON bytes) read as a key for `alg`, as a registration proof's is.
#[cfg(feature = "dbsc")]
pub fn dbsc_key_from_jwk(
    json: &[u8],
    alg: crate::dbsc::Algorithm,
) -> Option<crate::dbsc::BoundKey> {
    crate::dbsc::fuzz_key_from_jwk(json, alg)
}
