//! [`EndReason`]: why a session ended, as the client that used it is told (a 401's `reason`).
//!
//! A store keeps the reason under the ended session's key until the session's absolute
//! deadline (the Redis store as a one-byte key of its own, a [`Storage`](crate::Storage) as a
//! marker record in place of the session), so that a request still carrying the token learns
//! why it is refused. `Expired` needs nothing kept: the token carries its deadline. Nothing of
//! another session is ever told: the reason is found only by the ended session's own token.

use serde::Serialize;

/// Why a session ended ([`SessionStore::end_reason`](crate::SessionStore::end_reason)),
/// serialized in `snake_case` (`"password_changed"`): the `reason` of a 401
/// ([`Rejection::Unauthenticated`](crate::web::Rejection::Unauthenticated)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// Its own logout ([`SessionStore::delete`](crate::SessionStore::delete)).
    LoggedOut,
    /// Ended by its user or an admin: one session by its handle, or all of a user's.
    Revoked,
    /// Ended by the per-user limit when a newer login came.
    Evicted,
    /// Ended because the user's password changed.
    PasswordChanged,
    /// Past its absolute deadline (known from the token alone).
    Expired,
}

impl EndReason {
    const ALL: [Self; 5] = [
        Self::LoggedOut,
        Self::Revoked,
        Self::Evicted,
        Self::PasswordChanged,
        Self::Expired,
    ];

    /// The reason as the 401's `reason` says it (`"logged_out"`, `"revoked"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoggedOut => "logged_out",
            Self::Revoked => "revoked",
            Self::Evicted => "evicted",
            Self::PasswordChanged => "password_changed",
            Self::Expired => "expired",
        }
    }

    /// The one byte a store keeps (1-based: 0 is no reason).
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::LoggedOut => 1,
            Self::Revoked => 2,
            Self::Evicted => 3,
            Self::PasswordChanged => 4,
            Self::Expired => 5,
        }
    }

    /// The reason of a kept byte; `None` for any other byte.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_one_code_and_serializes_as_it_is_said() {
        for reason in EndReason::ALL {
            assert_eq!(EndReason::from_code(reason.code()), Some(reason));
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        assert_eq!(EndReason::from_code(0), None);
        assert_eq!(EndReason::from_code(6), None);
    }
}
