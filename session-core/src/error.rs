//! The one error type of the crate, and what each variant asks the caller to do.

use std::time::Duration;

use crate::record::SessionData;

/// Everything a session operation can fail with.
///
/// The variants that matter at the HTTP edge are kept apart on purpose: a store that cannot be
/// reached ([`Error::Unavailable`], answer 503 and deny) is not a missing session
/// ([`Error::NotFound`], answer 401), and neither is a record that cannot be read
/// ([`Error::Corrupt`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store could not be reached in time. Deny the request (fail closed) and retry later.
    #[error("session store unavailable ({kind}): {detail}")]
    Unavailable {
        /// What went wrong.
        kind: UnavailableKind,
        /// Details for the operator (never contains a token).
        detail: String,
    },
    /// No live session under that token or handle: it expired, was logged out, or never existed.
    #[error("no such session (expired, logged out or never issued)")]
    NotFound,
    /// The bytes stored under a session key are not a session record of this crate. The session
    /// is treated as absent; check that no other program writes under the configured key prefix.
    #[error("corrupt session record: {0}")]
    Corrupt(String),
    /// An argument the caller passed is not acceptable (for example an empty user id).
    #[error("invalid argument: {0}")]
    InvalidInput(String),
    /// An expectation of the changes ([`DataChanges::expect`](crate::DataChanges::expect))
    /// did not hold when the store applied them
    /// ([`SessionStore::update_data`](crate::SessionStore::update_data)): nothing was changed.
    /// `data` is the session's whole application data as stored then, to compute the change
    /// again from (a compare-and-set that lost the race). At the HTTP edge, 409.
    #[error("session data changed meanwhile: an expectation of the update did not hold; nothing was written")]
    Conflict {
        /// The application data as stored when the store refused the changes.
        data: SessionData,
    },
    /// A read-modify-write of one key of the session data (`AuthSession::update`) found the
    /// key changed by another writer on every try. Nothing was written by this call. Many requests of one
    /// session write this key at once: retry later, or keep such a value outside the session.
    #[error(
        "session data key {key:?} was changed by other writers during each of {attempts} tries; \
         nothing was written (retry later, or keep a value this contended outside the session)"
    )]
    Contended {
        /// The key.
        key: String,
        /// How many times it was tried.
        attempts: u32,
    },
    /// The user's sessions were ended (a password change, "sign out everywhere", an account
    /// disabled) after this login began
    /// ([`SessionStore::new_login`](crate::SessionStore::new_login)): the credentials it
    /// checked may be the old ones, so no session was created. Answer as for wrong
    /// credentials; the user logs in again.
    #[error(
        "the user's sessions were ended after this login began (a password change or a sign-out \
         everywhere); no session was created: check the credentials again"
    )]
    LoginSuperseded,
    /// The session may not do this; the message says what it would need (for example "a
    /// session that is not an impersonation"). At the HTTP edge, 403.
    #[error("not allowed: this needs {0}")]
    Forbidden(String),
    /// The configuration is not usable; the message says which setting to fix.
    #[error("invalid session configuration: {0}")]
    Config(String),
    /// Something failed that should not (a background task died, say). Details are in the
    /// message; report it as a bug.
    #[error("internal error: {0}")]
    Internal(String),
    /// The operating system's random number generator failed; no token can be issued safely.
    #[error("the OS random number generator failed: {0}")]
    Entropy(String),
}

impl Error {
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the Redis store's errors
    pub(crate) fn unavailable(kind: UnavailableKind, detail: impl Into<String>) -> Self {
        Error::Unavailable {
            kind,
            detail: detail.into(),
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the Redis store's errors
    pub(crate) fn timed_out(limit: Duration) -> Self {
        Self::unavailable(
            UnavailableKind::TimedOut,
            format!(
                "no answer within {limit:?}; is Redis running and reachable? \
                 (raise RedisStore::with_operation_timeout if it is merely slow)"
            ),
        )
    }
}

/// Why the store was unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnavailableKind {
    /// The connection was refused, reset or dropped.
    Connection,
    /// The store did not answer within the operation timeout.
    TimedOut,
    /// More store calls were in flight than `RedisStore::with_max_in_flight` allows: Redis is
    /// overloaded or too slow to answer. The call was refused at once instead of queueing.
    PoolExhausted,
    /// A write was not acknowledged by the required number of replicas in time
    /// (`RedisStore::with_replica_acks`).
    NotReplicated,
    /// The store answered with an error it should not give (for example out of memory, or a
    /// read-only replica).
    Server,
}

impl std::fmt::Display for UnavailableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnavailableKind::Connection => "connection failed",
            UnavailableKind::TimedOut => "timed out",
            UnavailableKind::PoolExhausted => "too many calls in flight",
            UnavailableKind::NotReplicated => "not replicated in time",
            UnavailableKind::Server => "server error",
        })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
