//! Session tokens, the keys the store derives from them, and public session handles.
//!
//! A [`Token`] is the secret a client holds (in a cookie). The store never sees or keeps it:
//! it keys the session by [`SessionKey`], the SHA-256 of the token, so a leaked Redis dump or
//! replica holds nothing a client could present. A [`SessionHandle`] is a second derivation,
//! safe to show to the user (for "your sessions" pages), that can neither be turned back into the
//! key nor the token.

use std::fmt;
use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::record::system_time_ms;

/// Bytes of entropy in a token.
pub const TOKEN_SECRET_BYTES: usize = 32;

/// Bytes of a token: the session's absolute deadline (6) and the secret.
pub const TOKEN_BYTES: usize = DEADLINE_BYTES + TOKEN_SECRET_BYTES;

/// Length of a token's text form: 38 bytes in base64url without padding.
pub const TOKEN_LEN: usize = 51;

const DEADLINE_BYTES: usize = 6;

/// The top bit of the deadline field: set for a remembered session
/// ([`NewSession::with_remember`](crate::NewSession::with_remember)), so a store knows the
/// session's idle timeout before any round trip. Deadlines stay below 2^47 ms (year 6429).
const REMEMBERED_BIT: u8 = 0x80;

/// Largest deadline a token carries (ms since the Unix epoch).
const MAX_DEADLINE_MS: u64 = (1 << 47) - 1;

/// The secret a client presents to name its session: 256 bits from the OS CSPRNG, after the
/// session's absolute deadline.
///
/// The deadline travels in the token so that a store knows, before any round trip, whether the
/// session can still be live and how long its expiry may be slid (never past the deadline);
/// one bit of it says whether the session is remembered (its idle timeout). It is not secret (the cookie's `Max-Age` says as much) and cannot be changed: the
/// [`SessionKey`] is the hash of all of the token's bytes, so an altered deadline names no
/// session.
///
/// Its text form ([`Token::as_cookie_value`]) is 51 characters of base64url without padding.
/// `Token` deliberately implements neither `Display` nor `Serialize`, and its `Debug` output is
/// redacted, so a token cannot end up in a log line by accident.
///
/// ```
/// use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore, Token};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new(SessionConfig::default());
/// let (token, _) = store.create(NewSession::new("alice")).await?;
/// let text = token.as_cookie_value();
/// assert_eq!(text.len(), 51);
/// assert_eq!(Token::parse(&text)?, token);
/// assert_eq!(format!("{token:?}"), "Token(<redacted>)");
/// # Ok::<(), session_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; TOKEN_BYTES]);

impl Token {
    /// Draws a new token from the operating system's random number generator, for a session
    /// that ends at `deadline` at the latest (stores call this when a session starts or
    /// rotates; tests may, for a well-formed token that names no session).
    ///
    /// # Errors
    /// [`Error::Entropy`] if the OS generator fails (it practically never does; the error exists
    /// so that a broken machine denies logins instead of issuing guessable tokens).
    pub fn generate(deadline: SystemTime) -> Result<Self, Error> {
        Self::issue(system_time_ms(deadline), false)
    }

    /// A new token for a session that ends at `deadline_ms` (ms since the Unix epoch), with
    /// the remembered bit as given.
    pub(crate) fn issue(deadline_ms: u64, remembered: bool) -> Result<Self, Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        bytes[..DEADLINE_BYTES]
            .copy_from_slice(&deadline_ms.min(MAX_DEADLINE_MS).to_be_bytes()[2..]);
        if remembered {
            bytes[0] |= REMEMBERED_BIT;
        }
        OsRng
            .try_fill_bytes(&mut bytes[DEADLINE_BYTES..])
            .map_err(|e| Error::Entropy(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// A new token for the same session (rotation): the same deadline and remembered bit, a
    /// new secret.
    pub(crate) fn successor(&self) -> Result<Self, Error> {
        Self::issue(self.deadline_ms(), self.remembered())
    }

    /// Parses a token presented by a client (the session layers do this with the cookie; call
    /// it for a token that arrives another way).
    ///
    /// Checks the length and the alphabet before anything else, so a malformed token is refused
    /// without any store access.
    ///
    /// ```
    /// use session_core::{Error, Token};
    ///
    /// let err = Token::parse("not-a-token").unwrap_err();
    /// assert!(matches!(err, Error::InvalidInput(_)));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid argument: session token must be 51 characters, got 11"
    /// );
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `text` is not exactly 51 characters of canonical base64url
    /// (the message says which: length or alphabet). As a rejection it is a 400; treat the
    /// client as having no session instead if that is what the route wants.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::parse_bytes(text.as_bytes()).map_err(|why| Error::InvalidInput(why.to_string()))
    }

    /// Like [`Token::parse`], for raw bytes (a cookie header need not be UTF-8), with the
    /// reason as a plain value (no allocation for a hostile client's garbage).
    pub(crate) fn parse_bytes(bytes: &[u8]) -> Result<Self, MalformedToken> {
        if bytes.len() != TOKEN_LEN {
            return Err(MalformedToken::Length(bytes.len()));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return Err(MalformedToken::Alphabet);
        }
        let mut out = [0u8; TOKEN_BYTES];
        // The engine rejects non-zero trailing bits, so each token has exactly one text form.
        match URL_SAFE_NO_PAD.decode_slice(bytes, &mut out) {
            Ok(TOKEN_BYTES) => Ok(Self(out)),
            _ => Err(MalformedToken::Alphabet),
        }
    }

    /// The token's text form, for the cookie (and nothing else: never a URL, never a log).
    pub fn as_cookie_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key the store files this token's session under: the first 128 bits of the SHA-256
    /// of the token's bytes.
    pub fn key(&self) -> SessionKey {
        let digest = Sha256::digest(self.0);
        let mut key = [0u8; SESSION_KEY_BYTES];
        key.copy_from_slice(&digest[..SESSION_KEY_BYTES]);
        SessionKey(key)
    }

    pub(crate) fn deadline_ms(&self) -> u64 {
        let mut be = [0u8; 8];
        be[8 - DEADLINE_BYTES..].copy_from_slice(&self.0[..DEADLINE_BYTES]);
        be[8 - DEADLINE_BYTES] &= !REMEMBERED_BIT;
        u64::from_be_bytes(be)
    }

    /// Whether the session is remembered: it has the longer idle timeout, and its cookie a
    /// `Max-Age`.
    pub(crate) fn remembered(&self) -> bool {
        self.0[0] & REMEMBERED_BIT != 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a presented token was refused before any store access ([`Token::parse`] gives it as
/// [`Error::InvalidInput`]'s message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MalformedToken {
    /// Not 51 characters long.
    #[error("session token must be {TOKEN_LEN} characters, got {0}")]
    Length(usize),
    /// Characters outside base64url, or a non-canonical last character.
    #[error("session token is not canonical base64url")]
    Alphabet,
}

/// Length of a [`SessionKey`] in bytes.
///
/// 128 bits of SHA-256: finding a token for a given key (or any two sessions with one key) would
/// take about 2^128 (2^64) hashes, while every byte less is a byte less per session in Redis,
/// twice (the key name and the user's index entry).
pub const SESSION_KEY_BYTES: usize = 16;

/// The first 128 bits of the SHA-256 of a [`Token`]: what the store keys a session by. Not
/// secret on its own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionKey([u8; SESSION_KEY_BYTES]);

/// Hashes 8 of the 16 bytes: they are already uniformly distributed (a SHA-256 output), and
/// nobody can choose them without breaking SHA-256.
impl std::hash::Hash for SessionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

impl SessionKey {
    /// The raw 16 bytes (they appear, binary, in the Redis key name).
    pub fn as_bytes(&self) -> &[u8; SESSION_KEY_BYTES] {
        &self.0
    }

    /// Rebuilds a key from its 16 bytes (as read back from a store's per-user index).
    pub fn from_bytes(bytes: [u8; SESSION_KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// The public handle of the session filed under this key.
    pub(crate) fn handle(&self) -> SessionHandle {
        let mut h = Sha256::new();
        h.update(b"session-core/handle\0");
        h.update(self.0);
        let digest = h.finalize();
        SessionHandle(URL_SAFE_NO_PAD.encode(&digest[..12]))
    }

    /// A short, non-reversible tag for log lines (8 hex digits of a hash of the key).
    pub(crate) fn log_tag(&self) -> String {
        let digest = Sha256::digest(self.0);
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({})", self.log_tag())
    }
}

/// A public name for one session, safe to show its owner: 16 characters of base64url.
///
/// It is derived from the session key by another hash, so it reveals neither the key nor the
/// token. Rotating a session's token ([`crate::SessionStore::rotate`]) gives it a new handle.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SessionHandle(String);

impl SessionHandle {
    /// Wraps a handle received from a client (for example a path segment). Any string is
    /// accepted: an unknown handle simply matches no session.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The handle's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.0)
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token::issue(1_800_000_000_000, false).unwrap()
    }

    #[test]
    fn generated_tokens_round_trip_and_differ() {
        let a = token();
        let b = token();
        assert_ne!(a, b);
        let text = a.as_cookie_value();
        assert_eq!(text.len(), TOKEN_LEN);
        assert_eq!(Token::parse(&text).unwrap(), a);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token().as_cookie_value();
        let parse = |text: &str| Token::parse_bytes(text.as_bytes());
        assert_eq!(parse(""), Err(MalformedToken::Length(0)));
        assert_eq!(parse(&good[..50]), Err(MalformedToken::Length(50)));
        // The length a token had before it carried its deadline.
        assert_eq!(parse(&good[..43]), Err(MalformedToken::Length(43)));
        assert!(Token::parse(&format!("{good}A")).is_err());
        let plus = format!("+{}", &good[1..]);
        assert_eq!(parse(&plus), Err(MalformedToken::Alphabet));
        let nul = format!("\0{}", &good[1..]);
        assert_eq!(parse(&nul), Err(MalformedToken::Alphabet));
        // What a caller of `parse` sees: the crate's error, saying what is wrong.
        match Token::parse(&plus) {
            Err(Error::InvalidInput(why)) => assert!(why.contains("base64url"), "{why}"),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
        assert!(Token::parse_bytes(&[0xff; TOKEN_LEN]).is_err());
        assert!(Token::parse(&"x".repeat(8192)).is_err());
    }

    #[test]
    fn non_canonical_last_character_is_refused() {
        // 51 chars encode 306 bits; the last 2 must be zero. 'B' sets one of them.
        let good = Token([0u8; TOKEN_BYTES]).as_cookie_value();
        assert!(good.ends_with('A'));
        let bad = format!("{}B", &good[..50]);
        assert_eq!(
            Token::parse_bytes(bad.as_bytes()),
            Err(MalformedToken::Alphabet)
        );
    }

    #[test]
    fn debug_never_prints_the_token() {
        let t = token();
        let text = t.as_cookie_value();
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(&text));
        let key_dbg = format!("{:?}", t.key());
        assert!(!key_dbg.contains(&text));
    }

    #[test]
    fn key_and_handle_are_stable_and_distinct() {
        let t = token();
        assert_eq!(t.key(), t.key());
        assert_eq!(t.key().handle(), t.key().handle());
        assert_eq!(t.key().handle().as_str().len(), 16);
        let other = token();
        assert_ne!(t.key().handle(), other.key().handle());
    }

    #[test]
    fn the_deadline_travels_in_the_token_and_is_bound_to_the_key() {
        let t = token();
        assert_eq!(t.deadline_ms(), 1_800_000_000_000);
        let back = Token::parse(&t.as_cookie_value()).unwrap();
        assert_eq!(back.deadline_ms(), 1_800_000_000_000);
        // Another deadline with the same secret is another key: a client cannot extend it.
        let mut moved = t.clone();
        moved.0[5] ^= 1;
        assert_ne!(moved.deadline_ms(), t.deadline_ms());
        assert_ne!(moved.key(), t.key());
        let via_time = Token::generate(crate::record::to_system_time(1_800_000_000_000)).unwrap();
        assert_eq!(via_time.deadline_ms(), 1_800_000_000_000);
    }
}
