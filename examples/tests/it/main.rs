//! The end-to-end and router tests of the examples, compiled into one test binary: each module
//! is what was a file of its own in `tests/`. Linking axum, actix-web and Redis into a binary
//! per file cost `cargo test` most of its time; the tests themselves are unchanged.
//!
//! `.ci/run` runs part of them a second time against `demo-actix` (`DEMO_BIN=actix`), selected
//! by module path (`cargo test --test it -- contract:: routes:: ...`).

// The harness: demo processes on free ports, an HTTP client, Redis helpers.
mod support;

mod browser;
mod browser_dbsc;
mod cache;
mod contract;
mod cross_framework;
mod dbsc;
mod devices;
mod ended;
mod expiry;
mod external_store;
mod failover;
mod impersonation;
mod lockout;
mod multi_server;
mod network;
mod ops;
mod outage;
mod role_change_failure;
mod routes;
mod security;
mod stepup;
mod topologies;
mod transport;
mod web;
