//! [`LoginThrottle`]: failed-login counting kept in the store, so a lockout earned on one app
//! server holds on all of them.
//!
//! The rule: after [`ThrottleConfig::max_failures`] failed logins for one username within
//! [`ThrottleConfig::window`] (counted from the first attempt), the username is locked for a
//! whole window from the last of them, even for the right password. A successful login clears
//! the count.
//!
//! Each attempt is counted when it *begins* ([`LoginThrottle::begin_login`]), before the
//! password is checked, so an attacker sending many guesses at once gets no more than
//! `max_failures` of them checked per window.
//!
//! ```
//! use std::time::Duration;
//! use session_core::throttle::{Attempt, LoginThrottle, ThrottleConfig};
//! use session_core::{MemoryStore, SessionConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new(SessionConfig::default());
//! let limits = ThrottleConfig::new(3, Duration::from_secs(900));
//! for _ in 0..3 {
//!     assert_eq!(store.begin_login("alice", &limits).await?, Attempt::Allowed);
//!     // ... the password was wrong:
//!     store.record_failure("alice", &limits).await?;
//! }
//! assert!(matches!(store.begin_login("alice", &limits).await?, Attempt::Locked { .. }));
//! # Ok::<(), session_core::Error>(())
//! # }).unwrap();
//! ```

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;

/// How many failures lock a username, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    max_failures: u32,
    window: Duration,
}

impl Default for ThrottleConfig {
    /// 5 failures within 15 minutes lock the username for 15 minutes.
    fn default() -> Self {
        Self::new(5, Duration::from_secs(900))
    }
}

impl ThrottleConfig {
    /// `max_failures` (at least 1) within `window` (at least 1 ms) lock a username for `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window: window.max(Duration::from_millis(1)),
        }
    }

    /// Failures that lock a username.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// The counting window, and the length of a lock.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// Whether a login attempt may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Check the password.
    Allowed,
    /// Refuse without checking the password; answer 429 with `Retry-After`.
    Locked {
        /// When the lock ends (rounded up to whole seconds for `Retry-After`).
        retry_after: Duration,
    },
}

/// Failed-login counting per username, kept where the sessions are.
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Call before checking a password: refuses the attempt while `username` is locked, and
    /// otherwise counts it (as a failure until [`LoginThrottle::clear_failures`] says it
    /// succeeded).
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable): deny the login (503).
    async fn begin_login(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt>;

    /// Call after a wrong password (or an unknown username) for an attempt that
    /// [`LoginThrottle::begin_login`] allowed. Returns [`Attempt::Locked`] when the failures
    /// reached the limit: the lock then lasts a whole window from now.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn record_failure(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt>;

    /// Call after a successful login: forgets the failures.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn clear_failures(&self, username: &str) -> Result<()>;
}

/// `Retry-After` seconds for a lock: never 0 while locked.
pub fn retry_after_secs(retry_after: Duration) -> u64 {
    retry_after.as_millis().div_ceil(1000).max(1) as u64
}
