//! The framework-neutral request core: everything a request needs from sessions, whichever web
//! framework serves it. The adapters (`session_core::axum`, feature `axum`;
//! `session_core::actix`, feature `actix`) only move bytes between their request and response
//! types and this core.
//!
//! | module | its one job |
//! |---|---|
//! | `cookie` | [`CookieConfig`]: the cookie's name and attributes; reading the token from `Cookie` headers (one cookie of the name or none), writing `Set-Cookie` |
//! | `bearer` | [`BearerConfig`]: the token in a request header (`Authorization: Bearer <token>`) for API and mobile clients; reading it, the `WWW-Authenticate` challenge |
//! | `context` | the per-request state: store, token and how it came (cookie or header, never both), the session loaded at most once, what the answer carries (cookie change, caching, challenge) |
//! | `handle` | [`AuthSession`], the request's one session handle (state, data, login, logout, rotation, the user's sessions), and [`CurrentUser`], its read-only logged-in view |
//! | `users` | [`UserLoader`] (the application loads its user for a session) and [`Authenticated<L>`], the extractor of that user |
//! | `guard` | `Guard<R>`, the extractor the attribute macros insert (reached only through `__private`) |
//! | `requirement` | [`Requirement`], the policies, [`Require`] (requirements as values), freshness |
//! | `rejection` | [`Rejection`] (status, code, message, JSON body) and the one mapping of [`Error`](crate::Error) to HTTP |
//! | `csrf` | [`CsrfPolicy`]: the whole-origin rules for state-changing requests |
//! | `dbsc` | `DbscConfig` (feature `dbsc`): device binding offered at login, the registration and refresh endpoints the adapters answer |
// Without an adapter, the request state has no one to serve.
#![cfg_attr(
    not(any(feature = "axum", feature = "actix")),
    allow(dead_code, unused_imports)
)]

mod bearer;
mod context;
mod cookie;
mod csrf;
#[cfg(feature = "dbsc")]
pub(crate) mod dbsc;
pub(crate) mod guard;
mod handle;
mod rejection;
pub(crate) mod requirement;
mod users;

pub use self::bearer::BearerConfig;
pub(crate) use self::context::{Outgoing, RequestSession, Shared};
pub use self::cookie::{CookieConfig, SameSite};
pub use self::csrf::CsrfPolicy;
pub(crate) use self::csrf::CsrfRequest;
#[cfg(feature = "dbsc")]
pub use self::dbsc::DbscConfig;
pub(crate) use self::guard::Guard;
pub use self::handle::{AuthSession, CurrentUser};
pub use self::rejection::Rejection;
pub(crate) use self::rejection::{count as count_rejection, in_rejection_handler};
pub use self::requirement::Require;
pub(crate) use self::requirement::Requirement;
pub use self::users::{Authenticated, UserLoader};
