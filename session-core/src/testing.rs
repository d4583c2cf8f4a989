//! Test support, public behind the `test-suite` feature: the conformance suite every
//! [`SessionStore`](crate::SessionStore) must pass, and a throwaway `redis-server`.
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

pub mod conformance;
pub mod redis_server;

pub use redis_server::{HarnessError, RedisServer};
pub mod cluster;
mod node;
mod ports;
pub mod sentinel;

pub use ports::free_port;

pub use cluster::RedisCluster;
pub use sentinel::RedisSentinelGroup;
