//! [`LoginEpoch`]: what a login saw of its user's sessions before it checked the credentials,
//! so that an account change made meanwhile (a password change, "sign out everywhere", an
//! account disabled) also refuses the logins that were in flight.
//!
//! A login reads the password hash, spends tens of milliseconds in the hash, then creates the
//! session. A password change that ends the user's other sessions in between cannot end a
//! session that does not exist yet, so without more the login's session, made with the old
//! password, would outlive the change. Therefore every store keeps, per user, an **epoch**
//! that [`delete_user_sessions`](crate::SessionStore::delete_user_sessions) and
//! [`delete_other_user_sessions`](crate::SessionStore::delete_other_user_sessions) replace with
//! a new value, and [`create`](crate::SessionStore::create) refuses a session whose
//! [`NewSession::with_login_epoch`](crate::NewSession::with_login_epoch) no longer matches,
//! checked atomically with the write ([`Error::LoginSuperseded`](crate::Error::LoginSuperseded)).
//!
//! The order that makes it work: read the epoch **before** reading what the credentials are
//! checked against.
//!
//! ```
//! use session_core::{Error, MemoryStore, NewSession, SessionConfig, SessionStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new(SessionConfig::default());
//! // A login begins: the epoch first, then the password hash and its check.
//! let epoch = store.login_epoch("alice").await?;
//! // Meanwhile the password changes and the user's sessions are ended.
//! store.delete_user_sessions("alice").await?;
//! // The login that checked the old password gets no session.
//! let late = store.create(NewSession::new("alice").with_login_epoch(epoch)).await;
//! assert!(matches!(late, Err(Error::LoginSuperseded)));
//! // A login that begins after the change is not affected.
//! let epoch = store.login_epoch("alice").await?;
//! assert!(store.create(NewSession::new("alice").with_login_epoch(epoch)).await.is_ok());
//! # Ok::<(), session_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! The epoch is kept for [`SessionConfig::role_change_window`](crate::SessionConfig::role_change_window)
//! after the change that set it (10 minutes by default, far longer than any login): a login
//! still in flight after that is treated as if it began after the change.

use rand::Rng as _;

/// A user's session epoch as a login read it before checking the credentials
/// ([`SessionStore::login_epoch`](crate::SessionStore::login_epoch)); hand it to
/// [`NewSession::with_login_epoch`](crate::NewSession::with_login_epoch).
///
/// The value is opaque: 0 means that no account change is recorded for the user; every change
/// records a new random value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginEpoch {
    user_id: String,
    value: u64,
}

impl LoginEpoch {
    /// The epoch `value` of `user_id`, as a store read it (0: none recorded).
    pub(crate) fn new(user_id: impl Into<String>, value: u64) -> Self {
        Self {
            user_id: user_id.into(),
            value,
        }
    }

    /// A new epoch value for a store to record when it ends a user's sessions: random and
    /// never 0, so it differs from every value a login can hold with overwhelming probability.
    pub(crate) fn next_value() -> u64 {
        rand::rng().random_range(1..=u64::MAX)
    }

    /// The user it was read for.
    pub(crate) fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The value read.
    pub(crate) fn value(&self) -> u64 {
        self.value
    }
}
