//! The integration tests of `session-core`, compiled into one test binary: each module is what
//! was a file of its own in `tests/`. Linking axum, actix-web and Redis into a binary per file
//! cost `cargo test` most of its time; the tests themselves are unchanged. The trybuild suite
//! (`tests/macros_ui.rs`) stays a target of its own.
//!
//! The modules share one process and run in parallel: whatever a test counts or installs must be
//! its own (a thread-local counter, a metrics recorder local to the test's thread), never
//! process-wide.

// Helpers shared by several modules.
mod common;
mod switchable;

mod actix_guards;
mod anonymous;
mod app_user;
mod axum_data;
mod axum_guards;
mod bearer;
mod conformance;
mod dbsc;
mod metrics;
mod redis_acl;
mod redis_cache;
mod redis_cache_cluster;
mod redis_cache_sentinel;
mod redis_store;
mod store_model;
mod topology;
mod topology_harness;
