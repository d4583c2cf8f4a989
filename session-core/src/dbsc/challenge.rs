//! Challenges: the single-use values a proof must sign (its `jti`).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::TryRngCore as _;

use super::DbscError;

/// Bytes of entropy in a challenge.
pub const CHALLENGE_BYTES: usize = 32;

/// A challenge for a DBSC proof: 256 bits from the OS CSPRNG, as 43 characters of base64url
/// without padding (so it is a valid structured-field string as it is).
///
/// A challenge is not secret (it travels in a response header), but it must be used once and
/// soon: the caller keeps it with the session, checks a proof's `jti` against it
/// ([`verify_registration`](super::verify_registration),
/// [`verify_refresh`](super::verify_refresh)) and forgets it once answered or stale.
///
/// ```
/// use session_core::dbsc::Challenge;
///
/// let a = Challenge::generate()?;
/// let b = Challenge::generate()?;
/// assert_eq!(a.as_str().len(), 43);
/// assert_ne!(a, b);
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Challenge(pub(super) String);

impl Challenge {
    /// Draws a new challenge from the operating system's random number generator.
    ///
    /// # Errors
    /// [`DbscError::Entropy`] if the OS generator fails (it practically never does; the error
    /// exists so that a broken machine issues no guessable challenges).
    pub fn generate() -> Result<Self, DbscError> {
        let mut bytes = [0u8; CHALLENGE_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| DbscError::Entropy(e.to_string()))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A challenge made elsewhere in the crate (a session's timed challenges, `binding.rs`).
    pub(crate) fn from_issued(text: String) -> Self {
        Self(text)
    }

    /// The challenge's text, as sent in the headers and expected in a proof's `jti`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The challenge's text, owned (to keep it with the session).
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Challenge").field(&self.0).finish()
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Challenge {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
