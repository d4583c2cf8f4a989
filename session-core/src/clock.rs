//! [`Clock`]: where the stores and the request core read "now", so that time is an input:
//! the system clock in production, a manual one ([`Clock::manual`]) that a test moves by hand.
//!
//! Every time rule of the crate (idle and absolute expiry, the auth time and freshness guards,
//! last seen, the order of a user's sessions, the throttle windows, the role-change and
//! login-epoch windows of [`MemoryStore`](crate::MemoryStore)) reads the clock of its store's
//! [`SessionConfig`](crate::SessionConfig). A test that moves a manual clock checks those rules
//! exactly and at once, instead of sleeping past them.
//!
//! **What a manual clock does not move:** time that a server keeps by itself.
//! [`RedisStore`](crate::RedisStore) takes "now" from the clock (deadlines, auth time, last
//! seen, creation order), but Redis expires keys on its own timer: a session's idle expiry and
//! the throttle, role-change and epoch windows are key TTLs there, which pass in real time
//! whatever the clock says. Nor does it move timeouts of I/O
//! ([`RedisStore::with_operation_timeout`](crate::RedisStore::with_operation_timeout)) or the
//! cache's heartbeat, which are about the network, not about sessions.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::record::{duration_ms, system_time_ms, to_system_time};

/// The source of "now" for a store and the request core: [`Clock::system`] (the default), or
/// [`Clock::manual`], which stands still until a test moves it. Cheap to clone: the clones of
/// a manual clock are handles of the same clock. Set it with
/// [`SessionConfigBuilder::clock`](crate::SessionConfigBuilder::clock).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use session_core::{Clock, MemoryStore, NewSession, SessionConfig, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let clock = Clock::manual(SystemTime::now());
/// let config = SessionConfig::builder()
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .clock(clock.clone())
///     .build()?;
/// let store = MemoryStore::new(config);
/// let (token, _) = store.create(NewSession::new("alice")).await?;
///
/// clock.advance(Duration::from_secs(29 * 60))?;
/// assert!(store.load(&token).await?.is_some(), "used within the idle timeout");
/// clock.advance(Duration::from_secs(30 * 60))?;
/// assert!(store.load(&token).await?.is_none(), "unused for 30 minutes: ended");
/// # Ok::<(), session_core::Error>(())
/// # }).unwrap();
/// ```
///
/// **Security:** a manual clock is for tests only. In production time would stand still:
/// sessions would never reach their idle or absolute timeout (in
/// [`MemoryStore`](crate::MemoryStore)) and a login would stay fresh for ever.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Clock(Source);

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(ManualClock),
}

impl PartialEq for Source {
    /// Two manual clocks are equal when they are handles of the same clock.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Source::System, Source::System) => true,
            (Source::Manual(a), Source::Manual(b)) => Arc::ptr_eq(&a.0, &b.0),
            _ => false,
        }
    }
}

impl Eq for Source {}

impl Clock {
    /// This machine's clock (`SystemTime::now()`).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use session_core::Clock;
    ///
    /// let before = SystemTime::now();
    /// assert!(Clock::system().now() >= before);
    /// assert_eq!(Clock::system(), Clock::default());
    /// ```
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that reads `start` (to the millisecond, the resolution of the records) until
    /// [`advance`](Clock::advance) moves it. For tests (see the security note on [`Clock`]).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use session_core::Clock;
    ///
    /// let clock = Clock::manual(UNIX_EPOCH + Duration::from_micros(1_500));
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_millis(1));
    /// ```
    pub fn manual(start: SystemTime) -> Self {
        Self(Source::Manual(ManualClock::new(start)))
    }

    /// Now, by this clock.
    pub fn now(&self) -> SystemTime {
        match &self.0 {
            Source::System => SystemTime::now(),
            Source::Manual(manual) => manual.now(),
        }
    }

    /// Moves a manual clock forward by `by` (whole milliseconds; it never goes back), for every
    /// handle of it.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use session_core::Clock;
    ///
    /// let clock = Clock::manual(UNIX_EPOCH);
    /// let handle = clock.clone();
    /// clock.advance(Duration::from_millis(1500))?;
    /// assert_eq!(handle.now(), UNIX_EPOCH + Duration::from_millis(1500));
    /// assert!(Clock::system().advance(Duration::from_secs(1)).is_err());
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on the system clock, which nobody can move: a test that means
    /// to move time needs a [`Clock::manual`] in its configuration.
    pub fn advance(&self, by: Duration) -> Result<(), Error> {
        match &self.0 {
            Source::Manual(manual) => {
                manual.advance(by);
                Ok(())
            }
            Source::System => Err(Error::InvalidInput(
                "the system clock cannot be advanced; give the configuration a \
                 Clock::manual(start) to move time in a test"
                    .to_owned(),
            )),
        }
    }

    /// Now in ms since the Unix epoch, as the records hold it.
    pub(crate) fn now_ms(&self) -> u64 {
        match &self.0 {
            Source::System => system_time_ms(SystemTime::now()),
            Source::Manual(manual) => manual.0.load(Ordering::Acquire),
        }
    }

    /// The manual clock behind this one, if it is one (for the conformance suite, which moves
    /// a manual clock and sleeps on the system clock).
    #[cfg_attr(not(feature = "test-suite"), allow(dead_code))]
    pub(crate) fn as_manual(&self) -> Option<&ManualClock> {
        match &self.0 {
            Source::System => None,
            Source::Manual(manual) => Some(manual),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::System"),
            Source::Manual(manual) => manual.fmt(f),
        }
    }
}

/// What a [`Clock::manual`] holds: the time in ms, shared by its clones.
///
#[derive(Clone)]
pub(crate) struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock that reads `start` (to the millisecond) until it is moved.
    pub(crate) fn new(start: SystemTime) -> Self {
        Self(Arc::new(AtomicU64::new(system_time_ms(start))))
    }

    /// Now, by this clock.
    pub(crate) fn now(&self) -> SystemTime {
        to_system_time(self.0.load(Ordering::Acquire))
    }

    /// Moves the clock forward by `by` (whole milliseconds).
    pub(crate) fn advance(&self, by: Duration) {
        self.0.fetch_add(duration_ms(by), Ordering::AcqRel);
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Self(Source::Manual(manual))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock({} ms)", self.0.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_its_clones_move_with_it() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let clock = Clock::manual(start);
        let handle = clock.clone();
        assert_eq!(clock.now(), start);
        assert_eq!(clock.now_ms(), 1_700_000_000_123);
        handle.advance(Duration::from_secs(90)).unwrap();
        assert_eq!(clock.now(), start + Duration::from_secs(90));
        assert_eq!(clock, handle);
        assert_ne!(clock, Clock::manual(start));
        assert_ne!(clock, Clock::system());
    }

    #[test]
    fn the_system_clock_refuses_to_be_advanced() {
        let clock = Clock::system();
        assert!(matches!(
            clock.advance(Duration::from_secs(1)),
            Err(Error::InvalidInput(_))
        ));
        assert!(clock.as_manual().is_none());
    }
}
