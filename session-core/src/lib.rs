//! Server-side login sessions kept in Redis, so any number of app servers share them, and
//! annotation-style guards for axum and actix-web handlers (one request core, [`web`], and a
//! thin adapter per framework).
//!
//! HTTP is stateless, so a login has to be remembered somewhere. Kept in one server's memory,
//! it is lost when that server dies and is unknown to every other server. This crate keeps
//! sessions in Redis: the client holds only an opaque [`Token`] (in a cookie), and every request
//! turns it back into the [`Session`] (user, roles, permissions, data) with **one Redis round
//! trip**, or is refused.
//!
//! # Quick start
//! ```
//! use std::time::Duration;
//! use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = SessionConfig::builder()
//!     .idle_timeout(Duration::from_secs(30 * 60))
//!     .absolute_timeout(Duration::from_secs(12 * 3600))
//!     .build()?;
//! // In production: `RedisStore::connect("redis://127.0.0.1:6379", config).await?`
//! let store = MemoryStore::new(config);
//!
//! // At login: create a session and put the token in a cookie.
//! let (token, _) = store.create(NewSession::new("alice").with_roles(["USER"])).await?;
//! let cookie_value = token.as_cookie_value();
//!
//! // On each later request: parse the cookie (garbage stops here, without a store call) and
//! // load the session (this also slides its idle timeout).
//! let token = session_core::Token::parse(&cookie_value)?;
//! let session = store.load(&token).await?.expect("live session");
//! assert_eq!(session.user_id(), "alice");
//! assert!(session.has_role("USER"));
//!
//! // At logout:
//! store.delete(&token).await?;
//! assert!(store.load(&token).await?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Security properties
//! - Tokens are 256 secret bits from the OS random generator, after the session's absolute
//!   deadline. The store keys sessions by the SHA-256 of the whole token, so neither a Redis dump
//!   nor a replica holds a usable token, and a changed deadline names no session. A token's
//!   `Debug` is redacted and it has no `Display`.
//! - A malformed token is refused by [`Token::parse`] before any store access; a store refuses a
//!   token past its deadline without a round trip.
//! - A session ends after its idle timeout (sliding) and at its absolute deadline (fixed at
//!   creation); Redis expires it itself, and an ended session is never returned.
//! - A store that cannot be reached gives [`Error::Unavailable`], never "no session" and never
//!   a session: callers deny access (503).
//!
//! # Features
// Each link below resolves only with its feature on: without it, a plain name (so that docs
// built with some features only still build).
#![cfg_attr(feature = "redis", doc = "- `redis` (default): [`RedisStore`].")]
#![cfg_attr(not(feature = "redis"), doc = "- `redis` (default): `RedisStore`.")]
//! - `axum` (default): the axum integration (layer, extractors, guards).
//! - `actix`: the actix-web 4 integration (middleware, the same extractors and guards).
//! - `throttle` (default): `session_core::throttle`: login throttling kept in the store (per
//!   username and per client address), on both stores; without it, nothing of it is compiled
//!   (nor the Redis store's throttle scripts).
//! - `password`: `session_core::password`: Argon2id password hashing.
//! - `dbsc`: `session_core::dbsc`: the Device Bound Session Credentials protocol (challenges,
//!   headers, proof verification, session instructions); with `test-suite`, a software device.
//! - `macros` (default): `#[login_required]`, `#[has_role(..)]`, `#[fresh_login(max_age = "5m")]`
//!   and friends.
#![cfg_attr(
    feature = "metrics",
    doc = "- `metrics`: [`metrics`]: metrics through the `metrics` facade and tracing spans for \
           store calls ([`metrics::Metered`])."
)]
#![cfg_attr(
    not(feature = "metrics"),
    doc = "- `metrics`: `session_core::metrics`: metrics through the `metrics` facade and \
           tracing spans for store calls (`Metered`)."
)]
#![cfg_attr(
    feature = "test-suite",
    doc = "- `test-suite`: [`testing`]: the conformance suite every store must pass."
)]
#![cfg_attr(
    not(feature = "test-suite"),
    doc = "- `test-suite`: `session_core::testing`: the conformance suite every store must pass."
)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
mod binding;
pub mod changes;
mod clock;
pub mod config;
#[cfg(feature = "dbsc")]
pub mod dbsc;
mod device;
mod ended;
mod epoch;
pub mod error;
pub mod history;
pub mod logging;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "password")]
pub mod password;
pub mod record;
pub mod store;
#[cfg(feature = "throttle")]
pub mod throttle;
pub mod token;
pub mod web;

#[cfg(feature = "test-suite")]
pub mod testing;

/// Hooks for the fuzz targets in `fuzz/`. Not public API: it may change in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;

pub use binding::DeviceBinding;
pub use changes::DataChanges;
pub use clock::Clock;
#[doc(hidden)]
pub use config::{SessionConfig, SessionConfigBuilder};
pub use device::{MAX_LABEL_CHARS, MAX_METHOD_LEN};
pub use ended::EndReason;
pub use error::{Error, Result, UnavailableKind};
pub use history::{HistoryEntry, LoginEvent};
pub use record::{NewSession, Session, SessionData, SessionInfo, MAX_DATA_LEN, MAX_USER_ID_LEN};
pub use store::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use store::redis::{CacheConfig, RedisStore, RedisTarget};
pub use store::storage::Storage;
pub use store::SessionStore;
pub use token::{SessionHandle, SessionKey, Token, SESSION_KEY_BYTES};

#[cfg(feature = "macros")]
pub use session_macros::{
    device_bound, fresh_login, has_all_permissions, has_all_roles, has_any_permission,
    has_any_role, has_permission, has_role, login_required,
};

/// The names most applications need: `use session_core::prelude::*;`. Each is documented at
/// its own path (the prelude's re-exports are not inlined, as std's prelude's are not).
pub mod prelude {
    #[cfg(feature = "actix")]
    #[doc(no_inline)]
    pub use crate::actix::SessionMiddleware;
    #[cfg(feature = "axum")]
    #[doc(no_inline)]
    pub use crate::axum::SessionLayer;
    #[doc(no_inline)]
    pub use crate::web::{AuthSession, CurrentUser, Rejection, Require};
    #[cfg(feature = "redis")]
    #[doc(no_inline)]
    pub use crate::RedisStore;
    #[cfg(feature = "macros")]
    #[doc(no_inline)]
    pub use crate::{
        device_bound, fresh_login, has_all_permissions, has_all_roles, has_any_permission,
        has_any_role, has_permission, has_role, login_required,
    };
    #[doc(no_inline)]
    pub use crate::{
        EndReason, Error, MemoryStore, NewSession, Session, SessionConfig, SessionData,
        SessionStore, Token,
    };
}

/// What the attribute macros expand to. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::web::guard::Guard;
    pub use crate::web::requirement::{
        AllPermissions, AllRoles, AnyPermission, AnyRole, Ch, DeviceBound, FreshLogin, LCons, LNil,
        Login, Nil, Requirement, TypeStr, TypeStrList,
    };
}

/// The README's examples, compiled as doctests so they stay true.
#[cfg(all(doctest, feature = "redis", feature = "macros"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
