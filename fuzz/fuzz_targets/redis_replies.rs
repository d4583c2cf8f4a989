//! What Redis sends back and the store parses: `list.lua`'s reply (index members, records and
//! TTLs), the throttle scripts' lock time and the write scripts' outcome. Input: a RESP reply (as
//! redis-rs parses it off the socket), then 16 bytes of figures. Never a panic; a listing only
//! holds sessions of the user asked for that have not ended.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::{list_reply, throttle_reply, write_outcome};
use session_core::SessionKey;

fuzz_target!(|data: &[u8]| {
    let (figures, resp) = data.split_at(data.len().min(16));
    let mut f = [0u8; 16];
    f[..figures.len()].copy_from_slice(figures);
    let a = i64::from_le_bytes(f[..8].try_into().unwrap_or_default());
    let b = i64::from_le_bytes(f[8..].try_into().unwrap_or_default());

    match throttle_reply(a) {
        Some(retry_after) => {
            assert!(a > 0 && retry_after == Duration::from_millis(a as u64))
        }
        None => assert!(a <= 0),
    }
    let outcome = write_outcome(b, SessionKey::from_bytes([7; 16]));
    assert_eq!(outcome.is_ok(), b == 1);

    let Ok(value) = redis::parse_redis_value(resp) else {
        return;
    };
    let flat = match value {
        redis::Value::Array(items) | redis::Value::Set(items) => items,
        other => vec![other],
    };
    // A "now" in the 6-byte range the records use, and an idle timeout up to a day.
    let now = (a as u64) & ((1 << 48) - 1);
    let idle = (b as u64) % 86_400_000;
    for user in ["alice", "bob"] {
        for info in list_reply(flat.clone(), user, now, idle) {
            let expires = info
                .expires_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            assert!(expires > u128::from(now), "an ended session was listed");
            let seen = info
                .last_seen_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            assert!(seen <= u128::from(now), "last seen in the future");
        }
    }
});
