//! `LoginEpoch`: what a login saw of its user's sessions before it checked the credentials,
//! so that an account change made meanwhile (a password change, "sign out everywhere", an
//! account disabled) also refuses the logins that were in flight. Crate-internal: a login gets
//! it inside the [`NewSession`](crate::NewSession) that
//! [`SessionStore::new_login`](crate::SessionStore::new_login) hands out.
//!
//! A login reads the password hash, spends tens of milliseconds in the hash, then creates the
//! session. A password change that ends the user's other sessions in between cannot end a
//! session that does not exist yet, so without more the login's session, made with the old
//! password, would outlive the change. Therefore every store keeps, per user, an **epoch**
//! that [`delete_user_sessions`](crate::SessionStore::delete_user_sessions) and
//! [`delete_other_user_sessions`](crate::SessionStore::delete_other_user_sessions) replace with
//! a new value, and [`create`](crate::SessionStore::create) refuses a session whose
//! [`NewSession`](crate::NewSession) (from
//! [`SessionStore::new_login`](crate::SessionStore::new_login)) carries an epoch that no longer
//! matches, checked atomically with the write
//! ([`Error::LoginSuperseded`](crate::Error::LoginSuperseded)).
//!
//! The order that makes it work: `new_login` (which reads the epoch) **before** reading what
//! the credentials are checked against (see `SessionStore::new_login` for an example).
//!
//! The epoch is kept for [`SessionConfig::role_change_window`](crate::SessionConfig::role_change_window)
//! after the change that set it (10 minutes by default, far longer than any login): a login
//! still in flight after that is treated as if it began after the change.

use rand::Rng as _;

/// A user's session epoch as a login read it before checking the credentials, carried by the
/// [`NewSession`](crate::NewSession) of [`SessionStore::new_login`](crate::SessionStore::new_login).
///
/// The value is opaque: 0 means that no account change is recorded for the user; every change
/// records a new random value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginEpoch {
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
