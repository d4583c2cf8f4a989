//! [`LoginThrottle`]: failed-login counting kept in the store, so a lockout earned on one app
//! server holds on all of them.
//!
//! The rule: after `max_failures` failed logins for one username within `window`
//! ([`ThrottleConfig::new`]; counted from the first attempt), the username is locked for a
//! whole window from the last of them, even for the right password. A successful login clears
//! the count.
//!
//! Each attempt is counted when it *begins* ([`LoginThrottle::begin_login`]), before the
//! password is checked, so an attacker sending many guesses at once gets no more than
//! `max_failures` of them checked per window. While `max_failures` attempts are still being
//! checked (and fewer have failed), one more is asked to wait a moment (a wait
//! with a `retry_after` of at most a second), not locked out: a right password among those
//! in flight clears the count, so parallel logins of the rightful user do not lock them out.
//!
//! # The trade-off: lockout as a weapon
//! Locking a *username* stops guessing one account's password, but anyone who knows a username
//! can lock its owner out, again and again (a denial of service), and an attacker who tries one
//! password against many usernames (password spraying) never reaches any username's limit.
//! The library cannot tell a client's address by itself (behind a proxy only the application
//! knows which header to trust), so it offers counting **per client address** with the address
//! supplied by the application: [`LoginThrottle::begin_login_from`],
//! [`LoginThrottle::record_failure_from`] and [`LoginThrottle::release_attempt_from`], with a
//! [`ThrottleConfig`] of its own (usually a much higher limit: many users share an address
//! behind NAT). An IPv6 address is counted by its /64, which one host usually holds whole.
//! Use both: the per-username limit bounds guesses at one account, the per-address limit
//! bounds what one client tries across accounts. Per-address counting does not stop an
//! attacker with many addresses (a botnet); a per-username lock is then still the last line,
//! and its length is the price of it. Alternatives an application may prefer to a hard lock:
//! a lock that lets through logins from addresses that logged in successfully before, or a
//! CAPTCHA after the limit instead of a refusal.
//!
//! ```
//! use std::time::Duration;
//! use session_core::throttle::{LoginThrottle, ThrottleConfig};
//! use session_core::{MemoryStore, SessionConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new(SessionConfig::default());
//! let limits = ThrottleConfig::new(3, Duration::from_secs(900));
//! for _ in 0..3 {
//!     assert_eq!(store.begin_login("alice", &limits).await?, None);
//!     // ... the password was wrong:
//!     store.record_failure("alice", &limits).await?;
//! }
//! assert!(store.begin_login("alice", &limits).await?.is_some());
//! # Ok::<(), session_core::Error>(())
//! # }).unwrap();
//! ```

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;

/// How long [`LoginThrottle::begin_login`] asks a client to wait, at most, when the limit is
/// reached by attempts that are still being checked rather than by failures: such a wait is
/// short, because a right password among them clears the count.
pub(crate) const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);

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
    pub(crate) fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// The counting window, and the length of a lock.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

/// Failed-login counting per username, kept where the sessions are.
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Call before checking a password: refuses the attempt while `username` is locked, and
    /// otherwise counts it (as a failure until [`LoginThrottle::clear_failures`] says it
    /// succeeded).
    ///
    /// `None`: check the password. `Some(wait)`: refuse without checking it, and answer 429
    /// with a `Retry-After` of `wait` in whole seconds, rounded up (never 0: `wait` can be
    /// shorter than a second when the limit is taken by attempts still being checked).
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable): deny the login (503).
    async fn begin_login(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>>;

    /// Call after a wrong password (or an unknown username) for an attempt that
    /// [`LoginThrottle::begin_login`] allowed. Returns `Some(wait)` when the failures reached
    /// the limit: the lock then lasts a whole window (`wait`) from now.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn record_failure(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>>;

    /// Call after a successful login: forgets the failures.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn clear_failures(&self, username: &str) -> Result<()>;

    /// Un-counts one attempt that [`LoginThrottle::begin_login`] counted for `subject` and that
    /// succeeded, without forgetting the others (unlike
    /// [`clear_failures`](LoginThrottle::clear_failures)). For per-address counting: a
    /// client's successful logins must not count against it, but must not wipe its failures
    /// either (else one valid account would reset an attacker's count).
    ///
    /// The default does nothing (successes then count as attempts); both shipped stores
    /// implement it.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn release_attempt(&self, subject: &str) -> Result<()> {
        let _ = subject;
        Ok(())
    }

    /// [`LoginThrottle::begin_login`] for a client address instead of a username, counted
    /// apart from every username (the subject is `"\u{1}ip:"` and the address, an IPv6 address
    /// cut to its /64, which one host usually holds whole). Call it next to the per-username
    /// check, with a `config` of its own.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use std::time::Duration;
    /// use session_core::throttle::{LoginThrottle, ThrottleConfig};
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let per_address = ThrottleConfig::new(2, Duration::from_secs(900));
    /// let client: IpAddr = "203.0.113.7".parse().unwrap();
    /// // Password spraying: one guess at each of many usernames, from one address.
    /// for user in ["ann", "ben"] {
    ///     assert_eq!(store.begin_login_from(client, &per_address).await?, None);
    ///     store.record_failure_from(client, &per_address).await?;
    /// }
    /// assert!(store.begin_login_from(client, &per_address).await?.is_some());
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable): deny the login (503).
    async fn begin_login_from(
        &self,
        address: IpAddr,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.begin_login(&address_subject(address), config).await
    }

    /// [`LoginThrottle::record_failure`] for a client address.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn record_failure_from(
        &self,
        address: IpAddr,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        self.record_failure(&address_subject(address), config).await
    }

    /// [`LoginThrottle::release_attempt`] for a client address: call it after a successful
    /// login from `address`.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn release_attempt_from(&self, address: IpAddr) -> Result<()> {
        self.release_attempt(&address_subject(address)).await
    }
}

/// The throttle subject of a client address: `"\u{1}ip:"` and the address, IPv6 cut to its
/// /64. The control character keeps it apart from every username an application accepts
/// (usernames with control characters should be refused anyway).
pub(crate) fn address_subject(address: IpAddr) -> String {
    let shown = match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    };
    format!("\u{1}ip:{shown}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_its_own_subject_and_an_ipv6_host_is_its_64() {
        let subject = |a: &str| address_subject(a.parse().expect("an address"));
        assert_eq!(subject("203.0.113.7"), "\u{1}ip:203.0.113.7");
        assert_eq!(subject("::ffff:203.0.113.7"), subject("203.0.113.7"));
        assert_eq!(
            subject("2001:db8:1:2:aaaa::1"),
            subject("2001:db8:1:2:bbbb::9")
        );
        assert_ne!(subject("2001:db8:1:2::1"), subject("2001:db8:1:3::1"));
    }
}
