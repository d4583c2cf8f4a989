//! Throwaway Redis for tests: a `redis-server` of the test's own on a free port
//! ([`RedisServer`]), a Redis Cluster ([`RedisCluster`]) and a Sentinel group
//! ([`RedisSentinelGroup`]), each started from `redis-server` on `PATH` in a temporary
//! directory and killed when dropped.
//!
//! Used as a dev-dependency by the workspace's crates; not published. The conformance suite
//! for `SessionStore` implementations is in `session-core` (`session_core::testing`).
//!
//! ```no_run
//! use redis_harness::RedisServer;
//!
//! let server = RedisServer::start()?; // REDIS_URL, or a server of this test's own
//! println!("test Redis at {}", server.url());
//! # Ok::<(), redis_harness::HarnessError>(())
//! ```
#![deny(missing_docs)]

pub mod cluster;
mod node;
mod ports;
pub mod redis_server;
pub mod sentinel;

pub use cluster::RedisCluster;
pub use ports::free_port;
pub use redis_server::{HarnessError, RedisServer};
pub use sentinel::RedisSentinelGroup;
