//! The operations that touch a session and its user's index (or the user's markers) together,
//! behind one interface with one implementation per topology, chosen once when the store is
//! made:
//!
//! - [`Single`](super::single::Single), one server or Sentinel's primary: every key in one
//!   place, so each operation is one atomic script or `MULTI`;
//! - [`Cluster`](super::cluster::Cluster), Redis Cluster: the session key and the index lie in
//!   different hash slots, so each operation is a sequence of single-slot steps, ordered so
//!   that stopping half-way never leaves a usable session that the index cannot revoke.
//!
//! Both reach Redis only through a [`Link`] (reads, or writes with what every write owes).

use async_trait::async_trait;

use super::conn::Topology;
use super::keys::KeyLayout;
use super::replies::ListedEntry;
use super::writes::Link;
use crate::config::SessionConfig;
use crate::ended::EndReason;
use crate::epoch::LoginEpoch;
use crate::error::Result;
use crate::record::{EncodedParts, Record};
use crate::token::SessionKey;

/// One topology's way of running the cross-slot operations.
#[async_trait]
pub(super) trait Engine: Send + Sync {
    /// For `Debug`: `"single"` or `"cluster"`.
    fn name(&self) -> &'static str;

    /// Writes a login's session and indexes it, unless the login was superseded
    /// ([`Error::LoginSuperseded`](crate::Error::LoginSuperseded): the user's sessions were
    /// ended after it read its epoch); takes the roles of a role change made while the login
    /// was in flight; ends the oldest sessions beyond the per-user limit
    /// ([`EndReason::Evicted`]).
    async fn create(&self, io: &Link, login: Login<'_>) -> Result<Created>;

    /// Moves the session under `old` to `new`, with its TTL and its place in the index, and
    /// with a proof `(auth time, method)` sets both (a re-authentication); returns the record
    /// as moved.
    /// `now` (ms) is when the index must live until the session's deadline from.
    async fn rotate(
        &self,
        io: &Link,
        old: SessionKey,
        new: SessionKey,
        now: u64,
        proof: Option<(u64, &str)>,
    ) -> Result<Vec<u8>>;

    /// Ends one session (a logout: [`EndReason::LoggedOut`] is kept) and un-indexes it; true
    /// when there was one.
    async fn delete(&self, io: &Link, key: SessionKey) -> Result<bool>;

    /// The user's live records with their TTLs, pruning index entries whose session ended.
    async fn list(&self, io: &Link, user_id: &str) -> Result<Vec<ListedEntry>>;

    /// Ends the user's session `only`, or (`None`) all of them after giving the user a new
    /// login epoch, keeping `why` for each; returns how many were live.
    async fn delete_members(
        &self,
        io: &Link,
        user_id: &str,
        only: Option<SessionKey>,
        why: EndReason,
    ) -> Result<usize>;

    /// Gives the user a new login epoch and ends every session of the user but `keep`,
    /// keeping `why` for each; returns how many were live.
    async fn delete_others(
        &self,
        io: &Link,
        user_id: &str,
        keep: SessionKey,
        why: EndReason,
    ) -> Result<usize>;

    /// Records the roles block for the logins in flight and splices it into every live
    /// session of the user; returns how many changed.
    async fn set_authz(&self, io: &Link, user_id: &str, block: &[u8]) -> Result<usize>;
}

/// The engine for `topology`.
pub(super) fn for_topology(
    topology: Topology,
    keys: &KeyLayout,
    config: &SessionConfig,
) -> Box<dyn Engine> {
    match topology {
        Topology::Single | Topology::Sentinel => {
            Box::new(super::single::Single::new(keys.clone(), config.clone()))
        }
        Topology::Cluster => Box::new(super::cluster::Cluster::new(keys.clone(), config.clone())),
    }
}

/// A login's session, encoded, for [`Engine::create`].
pub(super) struct Login<'a> {
    pub(super) key: SessionKey,
    pub(super) parts: EncodedParts,
    /// The session key's TTL (ms).
    pub(super) ttl_ms: u64,
    pub(super) record: &'a Record,
    /// How long the index must live at least (ms): the absolute timeout.
    pub(super) index_ttl_ms: u64,
    /// The epoch the login read, if it read one.
    pub(super) epoch: Option<&'a LoginEpoch>,
}

/// What [`Engine::create`] did besides writing the session.
pub(super) struct Created {
    /// How many older sessions were ended to keep within the per-user limit.
    pub(super) evicted: usize,
    /// The roles block of a role change made while the login was in flight, which the session
    /// was stored with instead of the login's.
    pub(super) role_change: Option<Vec<u8>>,
}

/// A login's epoch as the scripts take it: its value, or `''` for a login that read none (then
/// nothing is checked).
pub(super) fn epoch_arg(epoch: Option<&LoginEpoch>) -> String {
    epoch.map(|e| e.value().to_string()).unwrap_or_default()
}
