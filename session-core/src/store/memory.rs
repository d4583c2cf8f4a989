//! [`MemoryStore`]: sessions in this process's memory, with the same rules as the Redis store.
//!
//! For tests and for running without Redis. Sessions vanish when the process ends and are not
//! shared between processes, which is exactly what a real deployment must not have: use
//! `RedisStore` (feature `redis`) there.
//!
//! Every time rule here (expiry, last seen, auth time, the throttle, role-change and epoch
//! windows) reads the configuration's [`Clock`](crate::Clock), so a test that moves a
//! [`ManualClock`](crate::ManualClock) checks them all without waiting.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(feature = "throttle")]
use std::time::Duration;

use async_trait::async_trait;

use crate::changes::{DataChanges, DataUpdate};
use crate::config::SessionConfig;
use crate::epoch::LoginEpoch;
use crate::error::{Error, Result};
use crate::record::{
    check_user_id, duration_ms, normalized, Authz, NewSession, Record, Session, SessionData,
    SessionInfo,
};
use crate::store::SessionStore;
#[cfg(feature = "throttle")]
use crate::throttle::{Attempt, LoginThrottle, ThrottleConfig, IN_FLIGHT_WAIT};
use crate::token::{SessionHandle, SessionKey, Token};

/// How many creates between full sweeps of ended sessions that nobody asked for again.
const SWEEP_EVERY: usize = 1024;

/// Sessions in memory. Cheap to create; share it behind an `Arc`.
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
    sessions: HashMap<SessionKey, Entry, BuildHasherDefault<KeyHasher>>,
    /// Each user's session keys in creation order (oldest first).
    users: HashMap<String, Vec<SessionKey>>,
    /// The last role change of each user, applied to the user's new sessions until the
    /// deadline ([`SessionConfig::role_change_window`]).
    role_changes: HashMap<String, (Authz, u64)>,
    /// Each user's login epoch ([`LoginEpoch`]) and until when it is kept (the same window).
    epochs: HashMap<String, (u64, u64)>,
    creates_since_sweep: usize,
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

#[derive(Debug)]
struct Entry {
    record: Arc<Record>,
    idle_deadline_ms: u64,
}

impl Entry {
    fn live(&self, now: u64) -> bool {
        now < self.record.deadline_ms && now < self.idle_deadline_ms
    }
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

    /// Number of sessions held, live or not yet swept (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Now (ms), by the configuration's clock: every rule of this store reads time here.
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
}

impl Inner {
    /// Drops the user's ended sessions (and their index entries); returns their live keys.
    fn prune_user(&mut self, user_id: &str, now: u64) -> Vec<SessionKey> {
        let Some(keys) = self.users.get_mut(user_id) else {
            return Vec::new();
        };
        let sessions = &mut self.sessions;
        keys.retain(|k| match sessions.get(k) {
            Some(e) if e.live(now) => true,
            Some(_) => {
                sessions.remove(k);
                false
            }
            None => false,
        });
        let live = keys.clone();
        if live.is_empty() {
            self.users.remove(user_id);
        }
        live
    }

    fn remove_session(&mut self, key: &SessionKey) -> Option<Entry> {
        let entry = self.sessions.remove(key)?;
        if let Some(keys) = self.users.get_mut(&entry.record.user_id) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.users.remove(&entry.record.user_id);
            }
        }
        Some(entry)
    }

    /// The live entry under `key`, removing it when it has ended.
    fn live_entry(&mut self, key: &SessionKey, now: u64) -> Option<&mut Entry> {
        if !self.sessions.get(key)?.live(now) {
            self.remove_session(key);
            return None;
        }
        self.sessions.get_mut(key)
    }

    /// The user's login epoch at `now` (0: none recorded, or its window has passed).
    fn epoch(&self, user_id: &str, now: u64) -> u64 {
        match self.epochs.get(user_id) {
            Some((value, until)) if now < *until => *value,
            _ => 0,
        }
    }

    /// Gives the user a new login epoch: logins that began before now get no session.
    fn new_epoch(&mut self, user_id: &str, now: u64, config: &SessionConfig) {
        if user_id.is_empty() {
            return; // anonymous sessions have no user, so no epoch
        }
        let until = now + duration_ms(config.role_change_window());
        self.epochs
            .insert(user_id.to_owned(), (LoginEpoch::next_value(), until));
    }

    fn sweep(&mut self, now: u64) {
        self.sessions.retain(|_, e| e.live(now));
        self.role_changes.retain(|_, (_, until)| now < *until);
        self.epochs.retain(|_, (_, until)| now < *until);
        let sessions = &self.sessions;
        self.users.retain(|_, keys| {
            keys.retain(|k| sessions.contains_key(k));
            !keys.is_empty()
        });
        self.creates_since_sweep = 0;
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn config(&self) -> &SessionConfig {
        &self.config
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn create(&self, mut new: NewSession) -> Result<(Token, Session)> {
        new.check_owner()?;
        let epoch = new.login_epoch.take();
        let now = self.now();
        let mut record = Record::created(new, now, duration_ms(self.config.absolute_timeout()));
        // Same size limits as at rest in Redis.
        record.encode()?;
        let token = Token::generate_until(record.deadline_ms)?;
        let key = token.key();

        let mut inner = self.lock();
        inner.creates_since_sweep += 1;
        if inner.creates_since_sweep >= SWEEP_EVERY {
            inner.sweep(now);
        }
        // An anonymous session has no user: no role change to pick up, no index, no limit.
        if !record.is_anonymous() {
            // The user's sessions were ended after this login began: no session.
            if epoch.is_some_and(|e| e.value() != inner.epoch(&record.user_id, now)) {
                return Err(Error::LoginSuperseded);
            }
            // A role change made while this login was in flight wins over the roles it read.
            if let Some((authz, until)) = inner.role_changes.get(&record.user_id) {
                if now < *until {
                    record.authz = authz.clone();
                }
            }
            let mut live = inner.prune_user(&record.user_id, now);
            live.push(key);
            if let Some(limit) = self.config.max_sessions_per_user() {
                let excess = live.len().saturating_sub(limit);
                for old in live.drain(..excess) {
                    inner.sessions.remove(&old);
                }
            }
            inner.users.insert(record.user_id.clone(), live);
        }
        let record = Arc::new(record);
        inner.sessions.insert(
            key,
            Entry {
                record: Arc::clone(&record),
                idle_deadline_ms: now + duration_ms(self.config.idle_timeout()),
            },
        );
        let session = Session { key, record };
        Ok((token, session))
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        let now = self.now();
        let key = token.key();
        let idle = duration_ms(self.config.idle_timeout());
        let touch = duration_ms(self.config.touch_interval());
        if token.deadline_ms() <= now {
            return Ok(None);
        }
        let mut inner = self.lock();
        let Some(entry) = inner.live_entry(&key, now) else {
            return Ok(None);
        };
        entry.idle_deadline_ms = now + idle;
        if now.saturating_sub(entry.record.last_seen_ms) >= touch {
            Arc::make_mut(&mut entry.record).last_seen_ms = now;
        }
        Ok(Some(Session {
            key,
            record: Arc::clone(&entry.record),
        }))
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        data.encode()?;
        let mut inner = self.lock();
        let entry = inner
            .live_entry(&token.key(), self.now())
            .ok_or(Error::NotFound)?;
        Arc::make_mut(&mut entry.record).data = data.clone();
        Ok(())
    }

    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<DataUpdate> {
        let mut inner = self.lock();
        let entry = inner
            .live_entry(&token.key(), self.now())
            .ok_or(Error::NotFound)?;
        // Under the store's lock: no other write of this session can come in between.
        let mut data = entry.record.data.clone();
        if !changes.apply_to(&mut data)? {
            return Ok(DataUpdate::Conflict(data));
        }
        Arc::make_mut(&mut entry.record).data = data.clone();
        Ok(DataUpdate::Applied(data))
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        let now = self.now();
        let old = token.key();
        // The same session, so the same deadline (the old token carries it).
        let new_token = Token::generate_until(token.deadline_ms())?;
        let new = new_token.key();
        let mut inner = self.lock();
        inner.live_entry(&old, now).ok_or(Error::NotFound)?;
        let entry = inner.sessions.remove(&old).ok_or(Error::NotFound)?;
        if let Some(keys) = inner.users.get_mut(&entry.record.user_id) {
            for k in keys.iter_mut().filter(|k| **k == old) {
                *k = new;
            }
        }
        inner.sessions.insert(new, entry);
        Ok(new_token)
    }

    async fn reauthenticate(&self, token: &Token) -> Result<(Token, Session)> {
        let now = self.now();
        let old = token.key();
        // The same session, so the same deadline (the old token carries it).
        let new_token = Token::generate_until(token.deadline_ms())?;
        let new = new_token.key();
        let mut inner = self.lock();
        inner.live_entry(&old, now).ok_or(Error::NotFound)?;
        let mut entry = inner.sessions.remove(&old).ok_or(Error::NotFound)?;
        Arc::make_mut(&mut entry.record).auth_time_ms = now;
        if let Some(keys) = inner.users.get_mut(&entry.record.user_id) {
            for k in keys.iter_mut().filter(|k| **k == old) {
                *k = new;
            }
        }
        let session = Session {
            key: new,
            record: Arc::clone(&entry.record),
        };
        inner.sessions.insert(new, entry);
        Ok((new_token, session))
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        let now = self.now();
        let mut inner = self.lock();
        Ok(inner
            .remove_session(&token.key())
            .is_some_and(|e| e.live(now)))
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        let now = self.now();
        let mut inner = self.lock();
        let live = inner.prune_user(user_id, now);
        Ok(live
            .into_iter()
            .filter_map(|key| {
                inner.sessions.get(&key).map(|e| {
                    Session {
                        key,
                        record: Arc::clone(&e.record),
                    }
                    .info()
                })
            })
            .collect())
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        let now = self.now();
        let mut inner = self.lock();
        let live = inner.prune_user(user_id, now);
        match live.into_iter().find(|k| k.handle() == *handle) {
            Some(key) => Ok(inner.remove_session(&key).is_some()),
            None => Ok(false),
        }
    }

    async fn login_epoch(&self, user_id: &str) -> Result<LoginEpoch> {
        check_user_id(user_id)?;
        let value = self.lock().epoch(user_id, self.now());
        Ok(LoginEpoch::new(user_id, value))
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize> {
        let now = self.now();
        let mut inner = self.lock();
        inner.new_epoch(user_id, now, &self.config);
        let live = inner.prune_user(user_id, now);
        for key in &live {
            inner.sessions.remove(key);
        }
        inner.users.remove(user_id);
        Ok(live.len())
    }

    async fn delete_other_user_sessions(&self, user_id: &str, keep: &Token) -> Result<usize> {
        check_user_id(user_id)?;
        let now = self.now();
        let keep = keep.key();
        let mut inner = self.lock();
        inner.new_epoch(user_id, now, &self.config);
        let live = inner.prune_user(user_id, now);
        let mut ended = 0;
        for key in live.iter().filter(|k| **k != keep) {
            if inner.remove_session(key).is_some() {
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn set_user_authz(
        &self,
        user_id: &str,
        roles: &[String],
        permissions: &[String],
    ) -> Result<usize> {
        check_user_id(user_id)?;
        let authz = Authz {
            roles: normalized(roles.iter().cloned()),
            permissions: normalized(permissions.iter().cloned()),
        };
        authz.encode_block()?;
        let now = self.now();
        let mut inner = self.lock();
        let until = now + duration_ms(self.config.role_change_window());
        inner
            .role_changes
            .insert(user_id.to_owned(), (authz.clone(), until));
        let live = inner.prune_user(user_id, now);
        for key in &live {
            if let Some(e) = inner.sessions.get_mut(key) {
                Arc::make_mut(&mut e.record).authz = authz.clone();
            }
        }
        Ok(live.len())
    }
}

#[cfg(feature = "throttle")]
#[async_trait]
impl LoginThrottle for MemoryStore {
    async fn begin_login(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt> {
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
            return Ok(Attempt::Locked { retry_after: left });
        }
        if entry.begun >= config.max_failures() {
            // The limit is taken by attempts still being checked: a short wait, no lock.
            return Ok(Attempt::Locked {
                retry_after: left.min(IN_FLIGHT_WAIT),
            });
        }
        entry.begun += 1;
        Ok(Attempt::Allowed)
    }

    async fn record_failure(&self, username: &str, config: &ThrottleConfig) -> Result<Attempt> {
        check_user_id(username)?;
        let now = self.now();
        let mut failures = self.failures();
        match failures.get_mut(username) {
            Some(entry) if entry.until > now => {
                entry.failed += 1;
                if entry.failed < config.max_failures() {
                    return Ok(Attempt::Allowed);
                }
                entry.until = now + duration_ms(config.window());
                Ok(Attempt::Locked {
                    retry_after: config.window(),
                })
            }
            _ => Ok(Attempt::Allowed),
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
    use crate::ManualClock;

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
            let (_, session) = store.reauthenticate(&token).await.unwrap();
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
            let epoch = store.login_epoch("cy").await.unwrap();
            store.delete_user_sessions("cy").await.unwrap();
            let changed = store.login_epoch("cy").await.unwrap();
            assert_ne!(changed, epoch);

            clock.advance(Duration::from_secs(10 * 60) - Duration::from_millis(1));
            let (_, late) = store.create(admin()).await.unwrap();
            assert_eq!(
                late.roles(),
                ["USER"],
                "the role change applies in its window"
            );
            assert!(matches!(
                store.create(admin().with_login_epoch(epoch.clone())).await,
                Err(Error::LoginSuperseded)
            ));

            clock.advance(Duration::from_millis(1));
            let (_, later) = store.create(admin()).await.unwrap();
            assert_eq!(later.roles(), ["ADMIN"], "the window is over");
            assert_eq!(store.login_epoch("cy").await.unwrap().value(), 0);
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
                Attempt::Locked {
                    retry_after: Duration::from_millis(1)
                }
            );
            clock.advance(Duration::from_millis(1));
            assert_eq!(
                store.begin_login("di", &limits).await.unwrap(),
                Attempt::Allowed
            );
        });
    }
}
