//! A session's device binding (DBSC) as its record keeps it: the registered public key, the
//! short-lived **bound credential** (a cookie whose value rotates at every refresh), and what
//! makes this session's refresh challenges verifiable and single-use, with no Redis call to
//! issue one.
//!
//! - The bound credential: 128 random bits sent as a cookie, kept as the first 128 bits of its
//!   SHA-256 with the moment it stops counting (`until_ms`). A request of a bound session counts
//!   only with the current credential before that moment; a refresh draws a new one, so a copied
//!   credential dies at the next refresh of the device it was copied from, or at `until_ms`.
//! - A refresh challenge is `issued_ms (6) ‖ nonce (10) ‖ HMAC-SHA-256(secret, issued_ms ‖ nonce)`
//!   truncated to 16 bytes, in base64url (43 characters): the per-session `secret` never leaves
//!   the server, so only the server makes challenges for this session; one is accepted while it
//!   is younger than [`CHALLENGE_LIFETIME_MS`] and newer than the last one accepted
//!   (`floor_ms`), so each is used at most once, and a new proof makes every older challenge
//!   stale.
//! - A registration challenge (sent with the login's answer, before the session has a secret)
//!   is `issued_ms ‖ 26 random bytes`: it only makes the self-signed registration proof fresh.
//!   What protects registration is that a session is bound once: a second registration is
//!   refused, so the holder of a copied cookie cannot bind someone's session to a key of theirs.
//!
//! Without the `dbsc` feature nothing binds a session, but a record another server bound
//! decodes, and its credential is checked all the same (so most of this module is unused then).
#![cfg_attr(not(feature = "dbsc"), allow(dead_code))]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How long a challenge is accepted after it was issued.
pub(crate) const CHALLENGE_LIFETIME_MS: u64 = 5 * 60 * 1000;
/// How long after its registration a session that has not refreshed yet counts without any
/// credential: Chromium sends its registration together with the login's next request (the
/// redirect), which may reach the server after the binding is stored, without the credential
/// the registration's answer sets.
const REGISTRATION_GRACE_MS: u64 = 2_000;
/// How far ahead of this server's clock a challenge's issue time may be (another server's
/// clock).
const CLOCK_SKEW_MS: u64 = 5_000;
/// Bytes of the bound credential (the cookie's value, before base64url).
const CREDENTIAL_BYTES: usize = 16;
/// Bytes of a challenge (as [`dbsc::CHALLENGE_BYTES`](crate::dbsc) says: 43 characters).
const CHALLENGE_BYTES: usize = 32;
const TIME_BYTES: usize = 6;
/// The latest time 6 bytes hold (ms; the year 10889): times are clamped to it when made, so a
/// binding reads back as written.
const MAX_TIME_MS: u64 = (1 << 48) - 1;
const NONCE_BYTES: usize = 10;
const MAC_BYTES: usize = 16;
const SECRET_BYTES: usize = 16;
const HASH_BYTES: usize = 16;
/// Longest key kept (an RS256 key of 4096 bits is about 530 bytes as `BoundKey::to_bytes`).
const MAX_KEY_BYTES: usize = 1024;

/// A session's device binding (DBSC) as its store keeps it: the registered public key and the
/// current bound credential. Opaque: the request core's DBSC endpoints make one and hand it to
/// [`SessionStore::bind_device`](crate::SessionStore::bind_device); an application asks
/// [`Session::is_device_bound`](crate::Session::is_device_bound).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceBinding {
    /// The registered public key (`dbsc::BoundKey::to_bytes`).
    pub(crate) key: Vec<u8>,
    /// Makes (and checks) this session's refresh challenges; never sent.
    secret: [u8; SECRET_BYTES],
    /// The first 128 bits of the current bound credential's SHA-256.
    credential: [u8; HASH_BYTES],
    /// When the current credential stops counting (ms).
    pub(crate) until_ms: u64,
    /// The issue time of the last challenge a proof was accepted for (ms): no older one counts.
    floor_ms: u64,
    /// When the browser registered (ms).
    registered_ms: u64,
}

impl std::fmt::Debug for DeviceBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBinding")
            .field("key_bytes", &self.key.len())
            .field("until_ms", &self.until_ms)
            .field("floor_ms", &self.floor_ms)
            .finish_non_exhaustive()
    }
}

/// A new bound credential: the cookie's value (to send once) and the binding that accepts it.
pub(crate) struct Issued {
    pub(crate) binding: DeviceBinding,
    /// The cookie's value: 22 characters of base64url.
    pub(crate) credential: String,
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Entropy(e.to_string()))?;
    Ok(bytes)
}

fn credential_hash(value: &[u8]) -> [u8; HASH_BYTES] {
    let digest = Sha256::digest(value);
    let mut out = [0u8; HASH_BYTES];
    out.copy_from_slice(&digest[..HASH_BYTES]);
    out
}

fn time_bytes(ms: u64) -> [u8; TIME_BYTES] {
    let mut out = [0u8; TIME_BYTES];
    out.copy_from_slice(&ms.to_be_bytes()[8 - TIME_BYTES..]);
    out
}

fn read_time(bytes: &[u8]) -> u64 {
    let mut wide = [0u8; 8];
    wide[8 - TIME_BYTES..].copy_from_slice(&bytes[..TIME_BYTES]);
    u64::from_be_bytes(wide)
}

/// A challenge's issue time, if it is of our shape and still fresh at `now`.
fn fresh_issue_time(challenge: &str, now: u64) -> Option<(u64, [u8; CHALLENGE_BYTES])> {
    let mut bytes = [0u8; CHALLENGE_BYTES];
    let len = URL_SAFE_NO_PAD
        .decode_slice(challenge.as_bytes(), &mut bytes)
        .ok()?;
    if len != CHALLENGE_BYTES || challenge.len() != 43 {
        return None;
    }
    let issued = read_time(&bytes);
    let fresh =
        issued <= now + CLOCK_SKEW_MS && now.saturating_sub(issued) <= CHALLENGE_LIFETIME_MS;
    fresh.then_some((issued, bytes))
}

/// A registration challenge issued at `now`.
pub(crate) fn registration_challenge(now: u64) -> Result<String> {
    let mut bytes: [u8; CHALLENGE_BYTES] = random()?;
    bytes[..TIME_BYTES].copy_from_slice(&time_bytes(now));
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `challenge` is a registration challenge still fresh at `now`.
pub(crate) fn registration_challenge_is_fresh(challenge: &str, now: u64) -> bool {
    fresh_issue_time(challenge, now).is_some()
}

impl DeviceBinding {
    /// The binding of a session that just registered `key` at `now`, with its first credential
    /// counting for `lifetime_ms`.
    pub(crate) fn register(key: Vec<u8>, now: u64, lifetime_ms: u64) -> Result<Issued> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(Error::InvalidInput(format!(
                "a bound key is 1 to {MAX_KEY_BYTES} bytes"
            )));
        }
        let binding = Self {
            key,
            secret: random()?,
            credential: [0; HASH_BYTES],
            until_ms: 0,
            floor_ms: now.min(MAX_TIME_MS),
            registered_ms: now.min(MAX_TIME_MS),
        };
        binding.refreshed(now, now, lifetime_ms)
    }

    /// This binding after a proof over a challenge issued at `issued_ms` was accepted at
    /// `now`: a new credential until `now + lifetime_ms`, and no challenge up to `issued_ms`
    /// counts any more.
    pub(crate) fn refreshed(&self, issued_ms: u64, now: u64, lifetime_ms: u64) -> Result<Issued> {
        let value = URL_SAFE_NO_PAD.encode(random::<CREDENTIAL_BYTES>()?);
        let binding = Self {
            credential: credential_hash(value.as_bytes()),
            until_ms: now.saturating_add(lifetime_ms).min(MAX_TIME_MS),
            floor_ms: self.floor_ms.max(issued_ms).min(MAX_TIME_MS),
            ..self.clone()
        };
        Ok(Issued {
            binding,
            credential: value,
        })
    }

    /// Whether `presented` (the bound cookie's value, if the request carried one) is the
    /// current credential, at `now`.
    pub(crate) fn accepts(&self, presented: Option<&[u8]>, now: u64) -> bool {
        match presented {
            Some(value) => now < self.until_ms && credential_hash(value) == self.credential,
            // No credential at all: only the moment after registering (see
            // REGISTRATION_GRACE_MS), before any refresh (each raises the floor).
            None => {
                self.floor_ms == self.registered_ms
                    && now < self.registered_ms.saturating_add(REGISTRATION_GRACE_MS)
            }
        }
    }

    fn mac(&self, head: &[u8]) -> [u8; MAC_BYTES] {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(head);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    /// A refresh challenge for this session, issued at `now`.
    pub(crate) fn challenge(&self, now: u64) -> Result<String> {
        let mut bytes = [0u8; CHALLENGE_BYTES];
        bytes[..TIME_BYTES].copy_from_slice(&time_bytes(now));
        bytes[TIME_BYTES..TIME_BYTES + NONCE_BYTES].copy_from_slice(&random::<NONCE_BYTES>()?);
        let mac = self.mac(&bytes[..TIME_BYTES + NONCE_BYTES]);
        bytes[TIME_BYTES + NONCE_BYTES..].copy_from_slice(&mac);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The issue time of `challenge` if it is one of this session's, fresh at `now` and not
    /// used (newer than the last one accepted).
    pub(crate) fn check_challenge(&self, challenge: &str, now: u64) -> Option<u64> {
        let (issued, bytes) = fresh_issue_time(challenge, now)?;
        let (head, mac) = bytes.split_at(TIME_BYTES + NONCE_BYTES);
        let expected = self.mac(head);
        // Constant time: the comparison does not say how much of a guess was right.
        let same = mac
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        (same && issued > self.floor_ms).then_some(issued)
    }

    /// The block's bytes: `until (6) ‖ floor (6) ‖ registered (6) ‖ credential hash (16) ‖
    /// secret (16) ‖ key length (2) ‖ key`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&time_bytes(self.until_ms));
        out.extend_from_slice(&time_bytes(self.floor_ms));
        out.extend_from_slice(&time_bytes(self.registered_ms));
        out.extend_from_slice(&self.credential);
        out.extend_from_slice(&self.secret);
        // At most MAX_KEY_BYTES (checked when registered, and when decoded).
        out.extend_from_slice(&(self.key.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.key);
    }

    /// Reads a block [`DeviceBinding::encode`] wrote at the start of `bytes`; the rest after it.
    pub(crate) fn decode(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let (until, rest) = bytes.split_at_checked(TIME_BYTES)?;
        let (floor, rest) = rest.split_at_checked(TIME_BYTES)?;
        let (registered, rest) = rest.split_at_checked(TIME_BYTES)?;
        let (credential, rest) = rest.split_first_chunk::<HASH_BYTES>()?;
        let (secret, rest) = rest.split_first_chunk::<SECRET_BYTES>()?;
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if len == 0 || len > MAX_KEY_BYTES {
            return None;
        }
        let (key, rest) = rest.split_at_checked(len)?;
        let binding = Self {
            key: key.to_vec(),
            secret: *secret,
            credential: *credential,
            until_ms: read_time(until),
            floor_ms: read_time(floor),
            registered_ms: read_time(registered),
        };
        Some((binding, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;
    const LIFETIME: u64 = 600_000;

    fn bound() -> Issued {
        DeviceBinding::register(vec![4; 65], NOW, LIFETIME).unwrap()
    }

    #[test]
    fn the_credential_counts_until_its_end_and_only_the_current_one() {
        let first = bound();
        let value = first.credential.as_bytes();
        assert_eq!(first.credential.len(), 22);
        assert!(first.binding.accepts(Some(value), NOW));
        assert!(first.binding.accepts(Some(value), NOW + LIFETIME - 1));
        assert!(!first.binding.accepts(Some(value), NOW + LIFETIME));
        assert!(!first.binding.accepts(Some(b"AAAAAAAAAAAAAAAAAAAAAA"), NOW));
        // Without any credential: only just after registering, and never after a refresh.
        assert!(first.binding.accepts(None, NOW + REGISTRATION_GRACE_MS - 1));
        assert!(!first.binding.accepts(None, NOW + REGISTRATION_GRACE_MS));
        let next = first
            .binding
            .refreshed(NOW + 1, NOW + 10, LIFETIME)
            .unwrap();
        assert!(next
            .binding
            .accepts(Some(next.credential.as_bytes()), NOW + 10));
        assert!(!next.binding.accepts(Some(value), NOW + 10), "the old one");
        assert!(
            !next.binding.accepts(None, NOW + 10),
            "no grace after a refresh"
        );
    }

    #[test]
    fn a_challenge_counts_once_for_its_session_while_fresh() {
        let binding = bound().binding;
        let c = binding.challenge(NOW + 1_000).unwrap();
        assert_eq!(c.len(), 43);
        assert_eq!(binding.check_challenge(&c, NOW + 2_000), Some(NOW + 1_000));
        // Stale, or from the future beyond the skew.
        assert_eq!(
            binding.check_challenge(&c, NOW + 1_000 + CHALLENGE_LIFETIME_MS + 1),
            None
        );
        assert_eq!(
            binding.check_challenge(&c, NOW + 1_000 - CLOCK_SKEW_MS - 1),
            None
        );
        // Used: after a refresh over it, it and every older one are refused.
        let older = binding.challenge(NOW + 500).unwrap();
        let after = binding
            .refreshed(NOW + 1_000, NOW + 2_000, LIFETIME)
            .unwrap()
            .binding;
        assert_eq!(after.check_challenge(&c, NOW + 2_000), None);
        assert_eq!(after.check_challenge(&older, NOW + 2_000), None);
        // Another session's, a registration challenge, a forged one: refused.
        let other = bound().binding;
        assert_eq!(other.check_challenge(&c, NOW + 2_000), None);
        let registration = registration_challenge(NOW + 1_000).unwrap();
        assert!(registration_challenge_is_fresh(&registration, NOW + 2_000));
        assert_eq!(binding.check_challenge(&registration, NOW + 2_000), None);
        for bad in ["", "x", &"A".repeat(43), &format!("{c}A"), &c[..42]] {
            assert_eq!(binding.check_challenge(bad, NOW + 2_000), None, "{bad:?}");
        }
    }

    #[test]
    fn a_binding_reads_back_as_written() {
        let binding = bound().binding;
        let mut bytes = Vec::new();
        binding.encode(&mut bytes);
        bytes.extend_from_slice(b"rest");
        let (read, rest) = DeviceBinding::decode(&bytes).unwrap();
        assert_eq!(read, binding);
        assert_eq!(rest, b"rest");
        assert!(DeviceBinding::decode(&bytes[..40]).is_none());
        // At the end of time too (times are clamped when made, so they fit their 6 bytes).
        let late = DeviceBinding::register(vec![9], MAX_TIME_MS, LIFETIME)
            .unwrap()
            .binding;
        let mut bytes = Vec::new();
        late.encode(&mut bytes);
        assert_eq!(DeviceBinding::decode(&bytes).map(|(b, _)| b), Some(late));
        assert!(DeviceBinding::register(Vec::new(), NOW, LIFETIME).is_err());
    }
}
