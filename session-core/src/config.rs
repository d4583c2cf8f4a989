//! [`SessionConfig`]: timeouts, limits and the clock that every store and the request core
//! share, with defaults and a builder. (What only Redis needs, its connections, is set on
//! `RedisStore`, feature `redis`.)

use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};

/// How sessions live and where they are kept. Build one with [`SessionConfig::builder`], or take
/// [`SessionConfig::default`]. The stores and the request core read it; the settings are
/// described on the builder's methods ([`SessionConfigBuilder`]).
///
/// | setting | default |
/// |---|---|
/// | key prefix | `"session"` |
/// | idle timeout (sliding) | 30 minutes |
/// | absolute timeout | 12 hours |
/// | a remembered session's idle / absolute timeout | 14 days / 30 days |
/// | login history per user | 100 entries, none older than 90 days |
/// | sessions per user | 10 (the oldest is evicted) |
/// | last-seen granularity | 1% of the idle timeout, between 1 s and 60 s |
/// | clock | the system clock ([`Clock::system`]) |
///
/// ```
/// use std::time::Duration;
/// use session_core::SessionConfig;
///
/// let config = SessionConfig::builder()
///     .key_prefix("shop")
///     .idle_timeout(Duration::from_secs(15 * 60))
///     .absolute_timeout(Duration::from_secs(8 * 3600))
///     .max_sessions_per_user(Some(5))
///     .build()?;
/// assert_ne!(config, SessionConfig::default());
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    key_prefix: String,
    idle_timeout: Duration,
    absolute_timeout: Duration,
    remember_idle_timeout: Duration,
    remember_absolute_timeout: Duration,
    impersonation_timeout: Duration,
    max_sessions_per_user: Option<usize>,
    touch_interval: Option<Duration>,
    role_change_window: Duration,
    history_max: usize,
    history_max_age: Duration,
    clock: Clock,
}

/// Most entries a login history keeps.
const MAX_HISTORY: usize = 10_000;

/// Longest timeout the record format holds (100 years); anything longer
/// is certainly a unit mistake.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            key_prefix: "session".to_owned(),
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            remember_idle_timeout: Duration::from_secs(14 * 24 * 3600),
            remember_absolute_timeout: Duration::from_secs(30 * 24 * 3600),
            impersonation_timeout: Duration::from_secs(15 * 60),
            max_sessions_per_user: Some(10),
            touch_interval: None,
            role_change_window: Duration::from_secs(10 * 60),
            history_max: 100,
            history_max_age: Duration::from_secs(90 * 24 * 3600),
            clock: Clock::system(),
        }
    }
}

impl SessionConfig {
    /// Starts from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder {
            config: Self::default(),
        }
    }

    /// Prefix of every key the store writes, so several applications can share one Redis.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the Redis store's key names
    pub(crate) fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The idle timeout of a session, remembered ([`NewSession::with_remember`](crate::NewSession::with_remember)) or not, in ms.
    pub(crate) fn idle_ms(&self, remembered: bool) -> u64 {
        crate::record::duration_ms(if remembered {
            self.remember_idle_timeout
        } else {
            self.idle_timeout
        })
    }

    /// The absolute timeout of a session, remembered or not, in ms.
    pub(crate) fn absolute_ms(&self, remembered: bool) -> u64 {
        crate::record::duration_ms(if remembered {
            self.remember_absolute_timeout
        } else {
            self.absolute_timeout
        })
    }

    /// The absolute timeout of a session created from `device`'s login, in ms: an impersonation
    /// session's own, else a remembered or an ordinary session's.
    pub(crate) fn lifetime_ms(&self, device: &crate::device::Device) -> u64 {
        if device.impersonator.is_empty() {
            self.absolute_ms(device.remembered)
        } else {
            crate::record::duration_ms(self.impersonation_timeout)
        }
    }

    /// Entries kept in each user's login history (0: none kept).
    pub(crate) fn history_max(&self) -> usize {
        self.history_max
    }

    /// Oldest entry kept in a login history, in ms.
    pub(crate) fn history_max_age_ms(&self) -> u64 {
        crate::record::duration_ms(self.history_max_age)
    }

    /// How many live sessions one user may have; a further login evicts the oldest. `None`: no
    /// limit.
    pub(crate) fn max_sessions_per_user(&self) -> Option<usize> {
        self.max_sessions_per_user
    }

    /// How far "last seen" may lag behind the truth on Redis: a load in a session's last idle
    /// period rewrites the record's last-seen time only when it moved by more than this (before
    /// that Redis keeps "last seen" exactly, as the key's expiry). Other stores keep it exactly.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the Redis store's touch
    pub(crate) fn touch_interval(&self) -> Duration {
        self.touch_interval.unwrap_or_else(|| {
            (self.idle_timeout / 100).clamp(Duration::from_millis(1), Duration::from_secs(60))
        })
    }
}

impl SessionConfig {
    /// How long a role change also applies to the user's new sessions (see
    /// [`SessionConfigBuilder::role_change_window`]).
    pub(crate) fn role_change_window(&self) -> Duration {
        self.role_change_window
    }

    /// Where the store and the request core read "now" (see [`SessionConfigBuilder::clock`]).
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// Builder for [`SessionConfig`]; every setting starts at its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionConfigBuilder {
    config: SessionConfig,
}

impl SessionConfigBuilder {
    /// Prefix of every key the store writes (default `"session"`), so several applications can
    /// share one Redis: 1–64 characters, no `{` or `}` (those are Redis Cluster hash tags).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// A session unused for this long ends (default 30 minutes, at least 1 ms). Each load
    /// slides it.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// A session ends this long after it was created, however active it is (default 12 hours,
    /// at least 1 ms).
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.absolute_timeout = timeout;
        self
    }

    /// The idle timeout of a remembered session ("keep me signed in",
    /// [`NewSession::with_remember`](crate::NewSession::with_remember); default 14 days, at
    /// least 1 ms).
    pub fn remember_idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.remember_idle_timeout = timeout;
        self
    }

    /// The absolute lifetime of a remembered session (default 30 days, at least 1 ms); its
    /// cookie's `Max-Age` never reaches past it.
    pub fn remember_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.remember_absolute_timeout = timeout;
        self
    }

    /// The absolute lifetime of an impersonation session
    /// ([`AuthSession::impersonate`](crate::web::AuthSession::impersonate); default 15 minutes,
    /// at least 1 ms): an admin acting as another user is time-boxed, however active.
    pub fn impersonation_timeout(mut self, timeout: Duration) -> Self {
        self.config.impersonation_timeout = timeout;
        self
    }

    /// Entries kept in each user's login history ([`SessionStore::login_history`](crate::SessionStore::login_history);
    /// default 100, at most 10 000; 0 keeps none and turns new-device detection off): each
    /// login, failure, lockout, logout, revocation and eviction adds one, and the oldest go
    /// first.
    pub fn history_max(mut self, entries: usize) -> Self {
        self.config.history_max = entries;
        self
    }

    /// Oldest entry a login history keeps (default 90 days, at least 1 ms); a user's whole
    /// history is gone this long after its last entry.
    pub fn history_max_age(mut self, age: Duration) -> Self {
        self.config.history_max_age = age;
        self
    }

    /// Live sessions per user (default 10); a further login evicts the oldest. `None` turns the
    /// limit off.
    ///
    /// **Security:** without a limit, a user (or a stolen password) can create sessions without
    /// bound, and listing them gets slower with each one.
    pub fn max_sessions_per_user(mut self, limit: Option<usize>) -> Self {
        self.config.max_sessions_per_user = limit;
        self
    }

    /// Granularity of the "last seen" time on Redis (a load in a session's last idle period
    /// rewrites it only when it moved by more than this; before that Redis keeps "last seen"
    /// exactly, as the key's expiry), and how often a cached session's idle expiry is slid
    /// (default: 1% of the idle timeout, between 1 ms and 60 s). Other stores keep it exactly.
    pub fn touch_interval(mut self, interval: Duration) -> Self {
        self.config.touch_interval = Some(interval);
        self
    }

    /// How long the roles and permissions given to
    /// [`SessionStore::set_user_authz`](crate::SessionStore::set_user_authz) also apply to the
    /// user's *new* sessions, whatever their [`NewSession`](crate::NewSession) says (default
    /// 10 minutes).
    ///
    /// Why: a login reads the user's roles, checks the password, then creates the session. If
    /// an admin removes a role in between, the login would otherwise create a session with the
    /// role that was just removed, after `set_user_authz` had already rewritten every existing
    /// session. The store remembers each role change for this long and applies it to every
    /// session created meanwhile, atomically with the creation, so a login in flight cannot
    /// bring a removed role back. It must be longer than any login can take.
    ///
    /// **Security:** a login that takes longer than this from reading the user's roles to
    /// creating the session can bring back a role removed meanwhile.
    pub fn role_change_window(mut self, window: Duration) -> Self {
        self.config.role_change_window = window;
        self
    }

    /// The clock the store and the request core read "now" from (default: [`Clock::system`]).
    /// Every time rule reads it: expiry, auth time and the freshness guards, last seen, the
    /// throttle and role-change windows; except where Redis keeps time itself (key TTLs, which
    /// pass in real time).
    ///
    /// Tests pass a [`Clock::manual`] and move it, instead of sleeping past timeouts:
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use session_core::{Clock, SessionConfig};
    ///
    /// let clock = Clock::manual(SystemTime::now());
    /// let config = SessionConfig::builder().clock(clock.clone()).build()?;
    /// clock.advance(Duration::from_secs(60))?;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// **Security:** a manual clock stands still in production: sessions would not reach their
    /// timeouts (in [`MemoryStore`](crate::MemoryStore)) and a login would stay fresh for ever.
    /// Use one only in tests.
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.config.clock = clock.into();
        self
    }

    /// Checks the settings and returns the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first setting that is out of range.
    pub fn build(self) -> Result<SessionConfig> {
        let c = self.config;
        let prefix_ok = !c.key_prefix.is_empty()
            && c.key_prefix.len() <= 64
            && !c.key_prefix.contains(['{', '}']);
        if !prefix_ok {
            return Err(Error::Config(format!(
                "key_prefix {:?} must be 1-64 bytes without '{{' or '}}'",
                c.key_prefix
            )));
        }
        for (name, value) in [
            ("idle_timeout", c.idle_timeout),
            ("absolute_timeout", c.absolute_timeout),
            ("remember_idle_timeout", c.remember_idle_timeout),
            ("remember_absolute_timeout", c.remember_absolute_timeout),
            ("impersonation_timeout", c.impersonation_timeout),
            ("role_change_window", c.role_change_window),
            ("history_max_age", c.history_max_age),
        ] {
            if value < Duration::from_millis(1) || value > MAX_TIMEOUT {
                return Err(Error::Config(format!(
                    "{name} must be between 1 ms and 100 years, got {value:?}"
                )));
            }
        }
        if c.history_max > MAX_HISTORY {
            return Err(Error::Config(format!(
                "history_max must be at most {MAX_HISTORY}, got {}",
                c.history_max
            )));
        }
        if c.max_sessions_per_user == Some(0) {
            return Err(Error::Config(
                "max_sessions_per_user must be at least 1 (use None for no limit)".to_owned(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let built = SessionConfig::builder().build().unwrap();
        assert_eq!(built, SessionConfig::default());
        assert_eq!(built.touch_interval(), Duration::from_secs(18));
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let err = SessionConfig::builder()
            .key_prefix("a{b}")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("key_prefix"));
        let err = SessionConfig::builder()
            .idle_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("idle_timeout"));
        let err = SessionConfig::builder()
            .max_sessions_per_user(Some(0))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_sessions_per_user"));
    }
}
