//! A session backend written outside `session-core`, with nothing but its public API, passes the
//! public conformance suite: `Storage` is implementable by other crates (a database, another
//! cache), not only by the stores that ship with it.
//!
//! It keeps what a database table would: each session as bytes (`Session::to_bytes`) in a row
//! with its user id, and one opaque value per user, under one lock. It keeps no rule of its own
//! (expiry, limits, role changes, login epochs are session-core's, above `Storage`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use session_core::testing::conformance;
use session_core::{Result, Session, SessionConfig, SessionKey, Storage};

/// The "tables": sessions by key (user id, record bytes) and each user's value.
#[derive(Default)]
struct Tables {
    sessions: HashMap<SessionKey, (String, Vec<u8>)>,
    users: HashMap<String, Vec<u8>>,
}

struct TableStorage {
    config: SessionConfig,
    tables: Mutex<Tables>,
    /// A broken copy for the test below: handed-out sessions left out of the list stay stored.
    never_deletes: bool,
}

impl TableStorage {
    fn new(config: SessionConfig) -> Self {
        Self {
            config,
            tables: Mutex::default(),
            never_deletes: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The end of every transaction: handed-out rows that the change dropped are deleted, every
    /// session it left is written under its key.
    fn write(
        &self,
        tables: &mut Tables,
        handed_out: &[SessionKey],
        list: &[Session],
    ) -> Result<()> {
        for gone in handed_out
            .iter()
            .filter(|k| !list.iter().any(|s| s.key() == **k))
        {
            if !self.never_deletes {
                tables.sessions.remove(gone);
            }
        }
        for session in list {
            let row = (session.user_id().to_owned(), session.to_bytes()?);
            tables.sessions.insert(session.key(), row);
        }
        Ok(())
    }
}

/// The rows as sessions.
fn read(rows: &[(SessionKey, &[u8])]) -> Result<Vec<Session>> {
    rows.iter()
        .map(|(key, bytes)| Session::from_bytes(*key, bytes))
        .collect()
}

impl Storage for TableStorage {
    fn config(&self) -> &SessionConfig {
        &self.config
    }

    async fn session(
        &self,
        key: &SessionKey,
        change: &mut (dyn FnMut(&mut Vec<Session>) -> Result<()> + Send),
    ) -> Result<()> {
        let mut tables = self.lock();
        let rows: Vec<_> = tables
            .sessions
            .get(key)
            .map(|(_, b)| (*key, b.as_slice()))
            .into_iter()
            .collect();
        let mut list = read(&rows)?;
        change(&mut list)?;
        self.write(&mut tables, &[*key], &list)
    }

    async fn user(
        &self,
        user_id: &str,
        change: &mut (dyn FnMut(&mut Vec<Session>, &mut Vec<u8>) -> Result<()> + Send),
    ) -> Result<()> {
        let mut tables = self.lock();
        let rows: Vec<_> = tables
            .sessions
            .iter()
            .filter(|(_, (user, _))| user == user_id)
            .map(|(key, (_, bytes))| (*key, bytes.as_slice()))
            .collect();
        let mut list = read(&rows)?;
        let handed_out: Vec<SessionKey> = list.iter().map(Session::key).collect();
        let mut value = tables.users.get(user_id).cloned().unwrap_or_default();
        change(&mut list, &mut value)?;
        self.write(&mut tables, &handed_out, &list)?;
        tables.users.insert(user_id.to_owned(), value);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_outside_session_core_passes_the_conformance_suite() {
    conformance::run(|config| async move { TableStorage::new(config) }).await;
}

/// The suite is not a rubber stamp for this store either: one rule broken (what a change
/// dropped stays stored, so logout ends nothing) and it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_refuses_this_store_with_one_rule_broken() {
    let run = tokio::spawn(conformance::run(|config| async move {
        TableStorage {
            never_deletes: true,
            ..TableStorage::new(config)
        }
    }));
    let outcome = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the suite finished");
    assert!(
        outcome.is_err_and(|e| e.is_panic()),
        "the conformance suite passed a store that never deletes"
    );
}
