//! [`MemoryStore`]: sessions in this process's memory, with the same rules as the Redis store.
//!
//! For tests and for running without Redis. Sessions vanish when the process ends and are not
//! shared between processes, which is exactly what a real deployment must not have: use
//! `RedisStore` (feature `redis`) there.
//!
//! Every time rule here (expiry, last seen, auth time, the throttle, role-change and epoch
//! windows) reads the configuration's [`Clock`](crate::Clock), so a test that moves a
//! [`Clock::manual`](crate::Clock::manual) checks them all without waiting.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(feature = "throttle")]
use std::time::Duration;

#[cfg(feature = "throttle")]
use async_trait::async_trait;

use crate::config::SessionConfig;
#[cfg(test)]
use crate::ended::EndReason;
use crate::error::Result;
#[cfg(feature = "throttle")]
use crate::record::{check_user_id, duration_ms};
use crate::record::{Record, Session};
use crate::store::is_kept;
use crate::store::rules::Marks;
use crate::store::storage::Storage;
#[cfg(feature = "throttle")]
use crate::throttle::{LoginThrottle, ThrottleConfig, IN_FLIGHT_WAIT};
use crate::token::SessionKey;

/// How many writes between full sweeps of ended sessions that nobody asked for again.
const SWEEP_EVERY: usize = 1024;

/// Sessions in memory. Cheap to create; share it behind an `Arc`. A [`Storage`]: the rules
/// of every store are session-core's, this type only keeps what they write.
///
/// ```
/// use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore};
///
/// # tokio_test_block(async {
/// let store = MemoryStore::new(SessionConfig::default());
/// let (token, _) = store.create(NewSession::new("alice").with_roles(["USER"])).await?;
/// let session = store.load(&token).await?.expect("just created");
/// assert!(session.has_role("USER"));
/// # Ok::<(), session_core::Error>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    config: SessionConfig,
    inner: Mutex<Inner>,
    /// Login attempts per username (or address).
    #[cfg(feature = "throttle")]
    failures: Mutex<HashMap<String, Attempts>>,
}

/// [`SessionKey`]s hash themselves from 8 uniformly random bytes, so the map needs no
/// SipHash on top.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by SessionKey; a fallback that still mixes every byte.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<SessionKey, Arc<Record>, BuildHasherDefault<KeyHasher>>,
    /// Each user's session keys.
    users: HashMap<String, Vec<SessionKey>>,
    /// Each user's opaque value ([`Storage::user`]).
    values: HashMap<String, Vec<u8>>,
    writes_since_sweep: usize,
}

/// Login attempts of one username or address within the window (see `throttle_check.lua`).
#[cfg(feature = "throttle")]
#[derive(Debug, Default)]
struct Attempts {
    /// Begun and not released (in flight, or failed).
    begun: u32,
    failed: u32,
    /// End of the window, or of the lock (ms).
    until: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
            #[cfg(feature = "throttle")]
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Now (ms), by the configuration's clock.
    #[cfg(feature = "throttle")]
    fn now(&self) -> u64 {
        self.config.clock().now_ms()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing every session, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(feature = "throttle")]
    fn failures(&self) -> MutexGuard<'_, HashMap<String, Attempts>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a write, and every [`SWEEP_EVERY`] writes drops what has ended.
    fn count_write(&self, inner: &mut Inner) {
        inner.writes_since_sweep += 1;
        if inner.writes_since_sweep < SWEEP_EVERY {
            return;
        }
        let now = self.config.clock().now_ms();
        inner.sessions.retain(|_, r| is_kept(r, now, &self.config));
        let config = &self.config;
        inner.values = std::mem::take(&mut inner.values)
            .into_iter()
            .filter_map(|(user, v)| Some((user, Marks::sweep(&v, now, config)?)))
            .collect();
        let sessions = &inner.sessions;
        inner.users.retain(|_, keys| {
            keys.retain(|k| sessions.contains_key(k));
            !keys.is_empty()
        });
        inner.writes_since_sweep = 0;
    }
}

impl Inner {
    fn session(&self, key: &SessionKey) -> Option<Session> {
        self.sessions.get(key).map(|record| Session {
            key: *key,
            record: Arc::clone(record),
        })
    }

    fn remove(&mut self, key: &SessionKey) {
        let Some(record) = self.sessions.remove(key) else {
            return;
        };
        if let Some(keys) = self.users.get_mut(&record.user_id) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.users.remove(&record.user_id);
            }
        }
    }

    /// Writes back what a change left of the sessions under `handed_out` (see [`Storage`]).
    fn write_back(&mut self, handed_out: &[SessionKey], list: Vec<Session>) {
        for gone in handed_out
            .iter()
            .filter(|k| !list.iter().any(|s| s.key == **k))
        {
            self.remove(gone);
        }
        for session in list {
            let is_new = self.sessions.insert(session.key, session.record).is_none();
            let user_id = &self.sessions[&session.key].user_id;
            if is_new && !user_id.is_empty() {
                self.users
                    .entry(user_id.clone())
                    .or_default()
                    .push(session.key);
            }
        }
    }
}

impl Storage for MemoryStore {
    fn config(&self) -> &SessionConfig {
        &self.config
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn session(
        &self,
        key: &SessionKey,
        change: &mut (dyn FnMut(&mut Vec<Session>) -> Result<()> + Send),
    ) -> Result<()> {
        let mut inner = self.lock();
        let mut list: Vec<Session> = inner.session(key).into_iter().collect();
        change(&mut list)?;
        inner.write_back(&[*key], list);
        self.count_write(&mut inner);
        Ok(())
    }

    async fn user(
        &self,
        user_id: &str,
        change: &mut (dyn FnMut(&mut Vec<Session>, &mut Vec<u8>) -> Result<()> + Send),
    ) -> Result<()> {
        let mut inner = self.lock();
        let handed_out = inner.users.get(user_id).cloned().unwrap_or_default();
        let mut list: Vec<Session> = handed_out.iter().filter_map(|k| inner.session(k)).collect();
        let mut value = inner.values.get(user_id).cloned().unwrap_or_default();
        change(&mut list, &mut value)?;
        inner.write_back(&handed_out, list);
        if value.is_empty() {
            inner.values.remove(user_id);
        } else {
            inner.values.insert(user_id.to_owned(), value);
        }
        self.count_write(&mut inner);
        Ok(())
    }
}

#[cfg(feature = "throttle")]
#[async_trait]
impl LoginThrottle for MemoryStore {
    async fn begin_login(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        check_user_id(username)?;
        let now = self.now();
        let mut failures = self.failures();
        if failures.len() > 10_000 {
            failures.retain(|_, a| a.until > now);
        }
        let entry = failures.entry(username.to_owned()).or_default();
        if entry.until <= now {
            *entry = Attempts {
                until: now + duration_ms(config.window()),
                ..Attempts::default()
            };
        }
        let left = Duration::from_millis(entry.until - now);
        if entry.failed >= config.max_failures() {
            return Ok(Some(left));
        }
        if entry.begun >= config.max_failures() {
            // The limit is taken by attempts still being checked: a short wait, no lock.
            return Ok(Some(left.min(IN_FLIGHT_WAIT)));
        }
        entry.begun += 1;
        Ok(None)
    }

    async fn record_failure(
        &self,
        username: &str,
        config: &ThrottleConfig,
    ) -> Result<Option<Duration>> {
        check_user_id(username)?;
        let now = self.now();
        let mut failures = self.failures();
        match failures.get_mut(username) {
            Some(entry) if entry.until > now => {
                entry.failed += 1;
                if entry.failed < config.max_failures() {
                    return Ok(None);
                }
                entry.until = now + duration_ms(config.window());
                Ok(Some(config.window()))
            }
            _ => Ok(None),
        }
    }

    async fn clear_failures(&self, username: &str) -> Result<()> {
        self.failures().remove(username);
        Ok(())
    }

    async fn release_attempt(&self, subject: &str) -> Result<()> {
        check_user_id(subject)?;
        if let Some(entry) = self.failures().get_mut(subject) {
            entry.begun = entry.begun.saturating_sub(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The time rules on a manual clock: exact, and without waiting.

    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::clock::ManualClock;
    use crate::{Error, NewSession, SessionStore};

    fn store(clock: &ManualClock) -> MemoryStore {
        MemoryStore::new(
            SessionConfig::builder()
                .idle_timeout(Duration::from_secs(30 * 60))
                .absolute_timeout(Duration::from_secs(8 * 3600))
                .role_change_window(Duration::from_secs(10 * 60))
                .clock(clock.clone())
                .build()
                .unwrap(),
        )
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// A sweep forgets a user whose marks have lapsed and whose history is past its age bound,
    /// and keeps one whose history is not.
    #[test]
    fn a_sweep_forgets_a_history_past_its_age_bound() {
        use crate::{HistoryEntry, LoginEvent};
        let clock = ManualClock::new(SystemTime::now());
        let config = SessionConfig::builder()
            .history_max_age(Duration::from_secs(60))
            .clock(clock.clone())
            .build()
            .unwrap();
        let store = MemoryStore::new(config);
        for user in ["old", "new"] {
            let entry = HistoryEntry::new(LoginEvent::LoginFailed);
            block_on(store.record_event(user, entry)).unwrap();
            clock.advance(Duration::from_secs(50));
        }
        // 100 s after "old"'s entry, 50 s after "new"'s: a sweep's worth of writes.
        let mut inner = store.lock();
        inner.writes_since_sweep = SWEEP_EVERY - 1;
        store.count_write(&mut inner);
        assert!(
            !inner.values.contains_key("old"),
            "a history past its age was kept"
        );
        assert!(
            inner.values.contains_key("new"),
            "a current history was dropped"
        );
    }

    #[test]
    fn a_session_ends_exactly_at_its_idle_timeout_and_its_deadline() {
        block_on(async {
            let clock = ManualClock::new(SystemTime::now());
            let store = store(&clock);
            let (token, created) = store.create(NewSession::new("ann")).await.unwrap();
            assert_eq!(created.created_at(), clock.now());
            assert_eq!(
                created.expires_at(),
                clock.now() + Duration::from_secs(8 * 3600)
            );
            // Used every 29 minutes: live until the deadline, not a millisecond longer.
            let step = Duration::from_secs(29 * 60);
            let mut used = Duration::ZERO;
            while used + step < Duration::from_secs(8 * 3600) {
                clock.advance(step);
                used += step;
                let session = store.load(&token).await.unwrap().expect("used in time");
                assert_eq!(session.last_seen_at(), clock.now());
            }
            clock.advance(Duration::from_secs(8 * 3600) - used - Duration::from_millis(1));
            assert!(store.load(&token).await.unwrap().is_some());
            clock.advance(Duration::from_millis(1));
            assert!(
                store.load(&token).await.unwrap().is_none(),
                "past the deadline"
            );

            let (token, _) = store.create(NewSession::new("ann")).await.unwrap();
            clock.advance(Duration::from_secs(30 * 60) - Duration::from_millis(1));
            assert!(store.load(&token).await.unwrap().is_some());
            clock.advance(Duration::from_secs(30 * 60));
            assert!(store.load(&token).await.unwrap().is_none(), "idle too long");
            assert!(store.list_user_sessions("ann").await.unwrap().is_empty());
        });
    }

    #[test]
    fn reauthentication_sets_the_auth_time_to_the_clocks_now() {
        block_on(async {
            let clock = ManualClock::new(SystemTime::now());
            let store = store(&clock);
            let (token, created) = store.create(NewSession::new("bo")).await.unwrap();
            assert_eq!(created.auth_time(), clock.now());
            clock.advance(Duration::from_secs(600));
            let (_, session) = store.reauthenticate(&token, "password").await.unwrap();
            assert_eq!(session.auth_time(), clock.now());
            assert_eq!(session.created_at(), created.created_at());
        });
    }

    #[test]
    fn role_changes_and_epochs_apply_to_new_logins_for_their_window_only() {
        block_on(async {
            let clock = ManualClock::new(SystemTime::now());
            let store = store(&clock);
            let admin = || NewSession::new("cy").with_roles(["ADMIN"]);
            store
                .set_user_authz("cy", &["USER".to_owned()], &[])
                .await
                .unwrap();
            let epoch = store.new_login("cy").await.unwrap();
            store
                .delete_user_sessions("cy", EndReason::Revoked)
                .await
                .unwrap();
            let changed = store.new_login("cy").await.unwrap();
            assert_ne!(changed, epoch);

            clock.advance(Duration::from_secs(10 * 60) - Duration::from_millis(1));
            let (_, late) = store.create(admin()).await.unwrap();
            assert_eq!(
                late.roles(),
                ["USER"],
                "the role change applies in its window"
            );
            assert!(matches!(
                store.create(epoch.clone().with_roles(["ADMIN"])).await,
                Err(Error::LoginSuperseded)
            ));

            clock.advance(Duration::from_millis(1));
            let (_, later) = store.create(admin()).await.unwrap();
            assert_eq!(later.roles(), ["ADMIN"], "the window is over");
            let login = store.new_login("cy").await.unwrap();
            assert_eq!(login.login_epoch.map(|e| e.value()), Some(0));
        });
    }

    #[cfg(feature = "throttle")]
    #[test]
    fn a_throttle_lock_lasts_exactly_one_window_from_the_last_failure() {
        block_on(async {
            let clock = ManualClock::new(SystemTime::now());
            let store = store(&clock);
            let window = Duration::from_secs(900);
            let limits = ThrottleConfig::new(2, window);
            for _ in 0..2 {
                store.begin_login("di", &limits).await.unwrap();
                clock.advance(Duration::from_secs(60));
                store.record_failure("di", &limits).await.unwrap();
            }
            clock.advance(window - Duration::from_millis(1));
            assert_eq!(
                store.begin_login("di", &limits).await.unwrap(),
                Some(Duration::from_millis(1))
            );
            clock.advance(Duration::from_millis(1));
            assert_eq!(store.begin_login("di", &limits).await.unwrap(), None);
        });
    }
}
