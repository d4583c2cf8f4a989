//! A test store shared by the router tests of both adapters.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use session_core::prelude::*;
use session_core::{DeviceBinding, HistoryEntry, SessionHandle, SessionInfo, UnavailableKind};

/// A memory store that counts loads and can be switched "down" (every call unavailable).
#[derive(Default)]
pub struct Switchable {
    inner: MemoryStoreDefault,
    /// How many loads reached the store.
    pub loads: AtomicUsize,
    /// Every call fails as unavailable while set.
    pub down: AtomicBool,
    /// Loads yield to the runtime once before answering (as a network store does).
    pub slow: AtomicBool,
}

struct MemoryStoreDefault(MemoryStore);

impl Default for MemoryStoreDefault {
    fn default() -> Self {
        Self(MemoryStore::new(SessionConfig::default()))
    }
}

impl Switchable {
    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Unavailable {
                kind: UnavailableKind::Connection,
                detail: "switched off by the test".to_owned(),
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SessionStore for Switchable {
    fn config(&self) -> &SessionConfig {
        self.inner.0.config()
    }
    fn backend_name(&self) -> &'static str {
        "switchable"
    }
    async fn ping(&self) -> Result<(), Error> {
        self.check()
    }
    async fn create(&self, new: NewSession) -> Result<(Token, Session), Error> {
        self.check()?;
        self.inner.0.create(new).await
    }
    async fn new_login(&self, user_id: &str) -> Result<NewSession, Error> {
        self.check()?;
        self.inner.0.new_login(user_id).await
    }
    async fn load(&self, token: &Token) -> Result<Option<Session>, Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.slow.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        self.check()?;
        self.inner.0.load(token).await
    }
    async fn save_data(&self, token: &Token, data: &SessionData) -> Result<(), Error> {
        self.check()?;
        self.inner.0.save_data(token, data).await
    }
    async fn update_data(
        &self,
        token: &Token,
        changes: &session_core::DataChanges,
    ) -> Result<SessionData, Error> {
        self.check()?;
        self.inner.0.update_data(token, changes).await
    }
    async fn rotate(&self, token: &Token) -> Result<Token, Error> {
        self.check()?;
        self.inner.0.rotate(token).await
    }
    async fn delete(&self, token: &Token) -> Result<bool, Error> {
        self.check()?;
        self.inner.0.delete(token).await
    }
    async fn end_reason(&self, token: &Token) -> Result<Option<EndReason>, Error> {
        self.check()?;
        self.inner.0.end_reason(token).await
    }
    async fn bind_device(
        &self,
        token: &Token,
        read: &Session,
        binding: &DeviceBinding,
    ) -> Result<bool, Error> {
        self.check()?;
        self.inner.0.bind_device(token, read, binding).await
    }
    async fn list_user_sessions(&self, user: &str) -> Result<Vec<SessionInfo>, Error> {
        self.check()?;
        self.inner.0.list_user_sessions(user).await
    }
    async fn record_event(&self, user: &str, entry: HistoryEntry) -> Result<(), Error> {
        self.check()?;
        self.inner.0.record_event(user, entry).await
    }
    async fn login_history(&self, user: &str) -> Result<Vec<HistoryEntry>, Error> {
        self.check()?;
        self.inner.0.login_history(user).await
    }
    async fn delete_user_session(&self, user: &str, h: &SessionHandle) -> Result<bool, Error> {
        self.check()?;
        self.inner.0.delete_user_session(user, h).await
    }
    async fn delete_user_sessions(&self, user: &str, why: EndReason) -> Result<usize, Error> {
        self.check()?;
        self.inner.0.delete_user_sessions(user, why).await
    }
    async fn set_user_authz(&self, user: &str, r: &[String], p: &[String]) -> Result<usize, Error> {
        self.check()?;
        self.inner.0.set_user_authz(user, r, p).await
    }
    async fn reauthenticate(&self, token: &Token, how: &str) -> Result<(Token, Session), Error> {
        self.check()?;
        self.inner.0.reauthenticate(token, how).await
    }
    async fn delete_other_user_sessions(
        &self,
        user: &str,
        keep: &Token,
        why: EndReason,
    ) -> Result<usize, Error> {
        self.check()?;
        self.inner
            .0
            .delete_other_user_sessions(user, keep, why)
            .await
    }
}
