//! A `SessionStore` written outside `session-core`, with nothing but its public API, passes the
//! public conformance suite: the trait is implementable by other crates (a database, another
//! cache), not only by the two stores that ship with it.
//!
//! The store is deliberately plain: one mutex over a map of sessions and maps of per-user role
//! changes and login epochs, every rule of the trait kept by hand. It reads "now" from its
//! configuration's clock (`SessionConfig::clock`), so the suite runs it on a manual clock,
//! without sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use session_core::testing::conformance;
use session_core::{
    DataChanges, DataUpdate, Error, LoginEpoch, NewSession, Result, Session, SessionConfig,
    SessionData, SessionHandle, SessionInfo, SessionKey, SessionStore, Token,
};

/// Sessions by key, and the roles last set per user (with when that stops applying to logins).
#[derive(Default)]
struct State {
    sessions: HashMap<SessionKey, Session>,
    role_changes: HashMap<String, (Vec<String>, Vec<String>, SystemTime)>,
    /// Each user's login epoch, replaced whenever the user's sessions are ended.
    epochs: HashMap<String, u64>,
}

struct LockedMapStore {
    config: SessionConfig,
    state: Mutex<State>,
}

impl LockedMapStore {
    fn new(config: SessionConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now, by the configuration's clock (the suite moves a manual one instead of sleeping).
    fn now(&self) -> SystemTime {
        self.config.clock().now()
    }

    /// Live: before its deadline and used within the idle timeout.
    fn live(&self, session: &Session, now: SystemTime) -> bool {
        now < session.expires_at() && now < session.last_seen_at() + self.config.idle_timeout()
    }

    /// The user's live sessions, oldest first; ended ones are dropped on the way.
    fn user_sessions(&self, state: &mut State, user_id: &str, now: SystemTime) -> Vec<Session> {
        state
            .sessions
            .retain(|_, s| s.user_id() != user_id || self.live(s, now));
        let mut mine: Vec<Session> = state
            .sessions
            .values()
            .filter(|s| s.user_id() == user_id)
            .cloned()
            .collect();
        mine.sort_by_key(|s| (s.created_at(), s.key().as_bytes().to_vec()));
        mine
    }

    /// The live session of `token`, or `NotFound`.
    fn live_session(&self, state: &State, token: &Token, now: SystemTime) -> Result<Session> {
        state
            .sessions
            .get(&token.key())
            .filter(|s| self.live(s, now))
            .cloned()
            .ok_or(Error::NotFound)
    }

    /// Replaces the session under `key` with `change` applied to its parts.
    fn change(
        &self,
        token: &Token,
        change: impl FnOnce(&mut session_core::SessionParts),
    ) -> Result<Session> {
        let now = self.now();
        let mut state = self.state();
        let current = self.live_session(&state, token, now)?;
        let (key, mut parts) = current.into_parts();
        change(&mut parts);
        let changed = Session::from_parts(key, parts)?;
        state.sessions.insert(key, changed.clone());
        Ok(changed)
    }

    /// Moves the session of `token` under a new token, applying `change` on the way.
    fn move_to_new_token(
        &self,
        token: &Token,
        change: impl FnOnce(&mut session_core::SessionParts),
    ) -> Result<(Token, Session)> {
        let now = self.now();
        let mut state = self.state();
        let current = self.live_session(&state, token, now)?;
        let new_token = Token::generate(current.expires_at())?;
        let (_, mut parts) = current.into_parts();
        change(&mut parts);
        let moved = Session::from_parts(new_token.key(), parts)?;
        state.sessions.remove(&token.key());
        state.sessions.insert(new_token.key(), moved.clone());
        Ok((new_token, moved))
    }
}

/// Refuses the empty user id: it names no user (anonymous sessions have it, and must never be
/// listed or ended as one user's sessions).
fn named(user_id: &str) -> Result<()> {
    if user_id.is_empty() {
        return Err(Error::InvalidInput("a user id is 1-255 bytes".to_owned()));
    }
    Ok(())
}

#[async_trait]
impl SessionStore for LockedMapStore {
    fn config(&self) -> &SessionConfig {
        &self.config
    }

    fn backend_name(&self) -> &'static str {
        "locked-map"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn create(&self, new: NewSession) -> Result<(Token, Session)> {
        let now = self.now();
        let token = Token::generate(now + self.config.absolute_timeout())?;
        let epoch = new.login_epoch().map(LoginEpoch::value);
        let mut session = new.start(token.key(), now, token.deadline())?;
        let mut state = self.state();
        // The user's sessions were ended after this login began: no session.
        if epoch.is_some_and(|e| e != state.epochs.get(session.user_id()).copied().unwrap_or(0)) {
            return Err(Error::LoginSuperseded);
        }
        // A login that read the roles before a role change must not keep the old ones.
        if let Some((roles, permissions, until)) = state.role_changes.get(session.user_id()) {
            if now < *until {
                let (key, mut parts) = session.into_parts();
                parts.roles = roles.clone();
                parts.permissions = permissions.clone();
                session = Session::from_parts(key, parts)?;
            }
        }
        state.sessions.insert(token.key(), session.clone());
        // An anonymous session has no user, so no limit to keep.
        if let Some(limit) = self
            .config
            .max_sessions_per_user()
            .filter(|_| !session.is_anonymous())
        {
            let mine = self.user_sessions(&mut state, session.user_id(), now);
            let over = mine.len().saturating_sub(limit);
            for old in mine.iter().filter(|s| s.key() != token.key()).take(over) {
                state.sessions.remove(&old.key());
            }
        }
        Ok((token, session))
    }

    async fn login_epoch(&self, user_id: &str) -> Result<LoginEpoch> {
        named(user_id)?;
        let value = self.state().epochs.get(user_id).copied().unwrap_or(0);
        Ok(LoginEpoch::new(user_id, value))
    }

    async fn load(&self, token: &Token) -> Result<Option<Session>> {
        let now = self.now();
        let mut state = self.state();
        let Some(current) = state.sessions.get(&token.key()).cloned() else {
            return Ok(None);
        };
        if !self.live(&current, now) {
            state.sessions.remove(&token.key());
            return Ok(None);
        }
        let (key, mut parts) = current.into_parts();
        parts.last_seen_at = now;
        let touched = Session::from_parts(key, parts)?;
        state.sessions.insert(key, touched.clone());
        Ok(Some(touched))
    }

    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
        self.change(token, |parts| parts.data = data.clone())
            .map(drop)
    }

    async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<DataUpdate> {
        let now = self.now();
        // Under the store's lock: no other write of this session comes in between.
        let mut state = self.state();
        let current = self.live_session(&state, token, now)?;
        let (key, mut parts) = current.into_parts();
        if !changes.apply_to(&mut parts.data)? {
            return Ok(DataUpdate::Conflict(parts.data));
        }
        let data = parts.data.clone();
        state.sessions.insert(key, Session::from_parts(key, parts)?);
        Ok(DataUpdate::Applied(data))
    }

    async fn rotate(&self, token: &Token) -> Result<Token> {
        self.move_to_new_token(token, |_| {}).map(|(t, _)| t)
    }

    async fn reauthenticate(&self, token: &Token) -> Result<(Token, Session)> {
        let now = self.now();
        self.move_to_new_token(token, |parts| parts.auth_time = now)
    }

    async fn delete(&self, token: &Token) -> Result<bool> {
        let now = self.now();
        let gone = self.state().sessions.remove(&token.key());
        Ok(gone.is_some_and(|s| self.live(&s, now)))
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        named(user_id)?;
        let now = self.now();
        let mut state = self.state();
        Ok(self
            .user_sessions(&mut state, user_id, now)
            .iter()
            .map(Session::info)
            .collect())
    }

    async fn delete_user_session(&self, user_id: &str, handle: &SessionHandle) -> Result<bool> {
        named(user_id)?;
        let now = self.now();
        let mut state = self.state();
        let found = self
            .user_sessions(&mut state, user_id, now)
            .into_iter()
            .find(|s| s.handle() == *handle);
        Ok(found.is_some_and(|s| state.sessions.remove(&s.key()).is_some()))
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize> {
        named(user_id)?;
        let now = self.now();
        let mut state = self.state();
        state
            .epochs
            .insert(user_id.to_owned(), LoginEpoch::next_value());
        let mine = self.user_sessions(&mut state, user_id, now);
        for s in &mine {
            state.sessions.remove(&s.key());
        }
        Ok(mine.len())
    }

    async fn delete_other_user_sessions(&self, user_id: &str, keep: &Token) -> Result<usize> {
        let now = self.now();
        NewSession::new(user_id).start(keep.key(), now, keep.deadline())?;
        let mut state = self.state();
        state
            .epochs
            .insert(user_id.to_owned(), LoginEpoch::next_value());
        let others: Vec<Session> = self
            .user_sessions(&mut state, user_id, now)
            .into_iter()
            .filter(|s| s.key() != keep.key())
            .collect();
        for s in &others {
            state.sessions.remove(&s.key());
        }
        Ok(others.len())
    }

    async fn set_user_authz(
        &self,
        user_id: &str,
        roles: &[String],
        permissions: &[String],
    ) -> Result<usize> {
        named(user_id)?;
        let now = self.now();
        let mut state = self.state();
        let mine = self.user_sessions(&mut state, user_id, now);
        let mut changed = Vec::with_capacity(mine.len());
        for s in mine {
            let (key, mut parts) = s.into_parts();
            parts.roles = roles.to_vec();
            parts.permissions = permissions.to_vec();
            // Checked before anything is written: oversized lists change nothing.
            changed.push(Session::from_parts(key, parts)?);
        }
        let count = changed.len();
        for s in changed {
            state.sessions.insert(s.key(), s);
        }
        state.role_changes.insert(
            user_id.to_owned(),
            (
                roles.to_vec(),
                permissions.to_vec(),
                now + self.config.role_change_window(),
            ),
        );
        Ok(count)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_outside_session_core_passes_the_conformance_suite() {
    conformance::run(|config| async move { LockedMapStore::new(config) }).await;
}

/// The suite is not a rubber stamp for this store either: one rule broken (deleted sessions
/// still load) and it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_refuses_this_store_with_one_rule_broken() {
    struct Forgetful(LockedMapStore);

    #[async_trait]
    impl SessionStore for Forgetful {
        fn config(&self) -> &SessionConfig {
            self.0.config()
        }
        fn backend_name(&self) -> &'static str {
            "forgetful"
        }
        async fn ping(&self) -> Result<()> {
            Ok(())
        }
        async fn create(&self, new: NewSession) -> Result<(Token, Session)> {
            self.0.create(new).await
        }
        async fn login_epoch(&self, user_id: &str) -> Result<LoginEpoch> {
            self.0.login_epoch(user_id).await
        }
        async fn load(&self, token: &Token) -> Result<Option<Session>> {
            self.0.load(token).await
        }
        async fn save_data(&self, token: &Token, data: &SessionData) -> Result<()> {
            self.0.save_data(token, data).await
        }
        async fn update_data(&self, token: &Token, changes: &DataChanges) -> Result<DataUpdate> {
            self.0.update_data(token, changes).await
        }
        async fn rotate(&self, token: &Token) -> Result<Token> {
            self.0.rotate(token).await
        }
        async fn reauthenticate(&self, token: &Token) -> Result<(Token, Session)> {
            self.0.reauthenticate(token).await
        }
        /// Broken: logout reports success and ends nothing.
        async fn delete(&self, _token: &Token) -> Result<bool> {
            Ok(true)
        }
        async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
            self.0.list_user_sessions(user_id).await
        }
        async fn delete_user_session(&self, user: &str, handle: &SessionHandle) -> Result<bool> {
            self.0.delete_user_session(user, handle).await
        }
        async fn delete_user_sessions(&self, user_id: &str) -> Result<usize> {
            self.0.delete_user_sessions(user_id).await
        }
        async fn delete_other_user_sessions(&self, user_id: &str, keep: &Token) -> Result<usize> {
            self.0.delete_other_user_sessions(user_id, keep).await
        }
        async fn set_user_authz(
            &self,
            user: &str,
            roles: &[String],
            perms: &[String],
        ) -> Result<usize> {
            self.0.set_user_authz(user, roles, perms).await
        }
    }

    let run = tokio::spawn(conformance::run(|config| async move {
        Forgetful(LockedMapStore::new(config))
    }));
    let outcome = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the suite finished");
    assert!(
        outcome.is_err_and(|e| e.is_panic()),
        "the conformance suite passed a store whose logout ends nothing"
    );
}
