//! Test support, public behind the `test-suite` feature: the conformance suite every
//! [`SessionStore`](crate::SessionStore) must pass.
//!
//! Writing another store? Run the suite on it:
//!
//! ```no_run
//! # async fn demo() {
//! use session_core::{testing, MemoryStore};
//!
//! testing::conformance::run(|config| async move { MemoryStore::new(config) }).await;
//! # }
//! ```
//!
//! The suite needs no Redis of its own: it runs against whatever store the factory makes (the
//! workspace's tests start throwaway `redis-server`s with an unpublished harness crate).

pub mod conformance;
#[cfg(feature = "dbsc")]
pub mod dbsc;
