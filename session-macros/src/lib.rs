//! Attribute macros that guard async axum and actix-web handlers: `#[login_required]`,
//! `#[has_role("ADMIN")]` and friends.
//!
//! **Use them through `session-core`** (feature `macros`, on by default), which provides the
//! guard types the expansion names and documents how a request is checked:
//!
//! ```rust,ignore
//! use axum::extract::Path;
//! use session_core::prelude::*;
//!
//! #[has_role("ADMIN")]
//! async fn delete_user(Path(id): Path<u32>) -> String {
//!     // only reached with a live session holding the role ADMIN
//!     format!("deleted user {id}")
//! }
//! ```
//!
//! (The examples here are not compiled: this crate cannot depend on `session-core`. The
//! `session-core` documentation has the tested ones, including the layer the guards need.)
//!
//! # What they expand to
//! The function is emitted unchanged (attributes, docs, visibility, generics, `where` clause,
//! return type and body) except that one argument is inserted **first**:
//! `_: session_core::__private::Guard<..>`, an extractor (axum's `FromRequestParts` with
//! session-core's feature `axum`, actix-web's `FromRequest` with feature `actix`; the same
//! type, so the attribute needs no framework argument) that rejects the request unless its
//! session satisfies the attribute. It goes first because axum wants
//! the body extractor (`Json`, `String`, ...) last. Its pattern is `_`, so no name appears in
//! the handler's scope. Role and permission names are encoded in the guard's type (one type
//! per character), so a guard costs no allocation and no lookup table.
//!
//! | attribute | the request passes when the session |
//! |---|---|
//! | `#[login_required]` | exists (the user is logged in) |
//! | `#[fresh_login(max_age = "5m")]` | exists and its user entered the password at most `max_age` ago (else 401 `reauthentication_required`) |
//! | `#[fresh_login(max_age = "5m", method = "passkey")]` | the same, and that proof was by `passkey` (`method = ["passkey", "totp"]`: one of them; else 401 `reauthentication_required` listing the methods) |
//! | `#[has_role("A")]` | has the role `A` |
//! | `#[has_any_role("A", "B")]` | has at least one of the roles |
//! | `#[has_all_roles("A", "B")]` | has every one of the roles |
//! | `#[has_permission("p")]` | has the permission `p` |
//! | `#[has_any_permission("p", "q")]` | has at least one of the permissions |
//! | `#[has_all_permissions("p", "q")]` | has every one of the permissions |
//!
//! # The `crate` option
//! The expansion names `::session_core`. If you renamed the dependency or re-export it from
//! another crate, say where it is: `#[has_role("ADMIN", crate = "my_app::deps::session_core")]`,
//! `#[login_required(crate = "sc")]`. It is the only option.
//!
//! # Compile-time checks
//! Each of these is a compile error pointing at the offending token: the attribute on anything
//! but an `async fn` (or on a method taking `self`); a missing, empty, duplicated or non-string
//! name; more than one name for `#[has_role]`/`#[has_permission]`; any argument to
//! `#[login_required]`; an unknown option; a `crate` value that is not a path in a string;
//! names longer than 100 characters or holding control characters. On error the function is
//! still emitted as written, so the rest of the crate keeps compiling (and your IDE keeps
//! working).
//!
//! Each guard is one more extractor: axum handlers take at most 16 (actix-web's too).
//!
//! # With `#[axum::debug_handler]`
//! Put the guard attribute **above** `#[axum::debug_handler]`:
//!
//! ```ignore
//! #[login_required]
//! #[axum::debug_handler]
//! async fn me(user: CurrentUser) -> String { user.user_id().to_owned() }
//! ```
//!
//! Attributes expand from the top down, so `debug_handler` then checks the handler with its
//! guard argument in place. In the other order `debug_handler` rewrites the function first and
//! the guard attribute no longer sees the handler as written.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod args;
mod encode;
mod expand;
mod handler;
mod kind;

use kind::Kind;

fn run(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(kind, args.into(), item.into()).into()
}

/// Rejects the request unless it carries a live session.
///
/// Takes no arguments (except the [`crate` option](crate#the-crate-option)). See the
/// `session-core` documentation for what the rejection looks like and how the session is
/// found.
///
/// ```rust,ignore
/// use session_core::web::CurrentUser;
/// use session_core::prelude::*;
///
/// #[login_required]
/// async fn me(user: CurrentUser) -> String {
///     user.user_id().to_owned()
/// }
/// ```
#[proc_macro_attribute]
pub fn login_required(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::LoginRequired, args, item)
}

/// Rejects the request unless its session is **bound to its device** (Device Bound Session
/// Credentials: the browser keeps the session's key in hardware, so a copied cookie stops
/// working within minutes): 403 with `device_binding_required` for a session that is not
/// (a browser without DBSC: the route refuses it, every other route keeps working), 401
/// without a live session or a bound session without its current credential. Needs
/// `SessionLayer::with_dbsc` / `SessionMiddleware::with_dbsc` for sessions to get bound.
///
/// Takes no arguments (except the [`crate` option](crate#the-crate-option)).
///
/// ```rust,ignore
/// use session_core::web::CurrentUser;
/// use session_core::prelude::*;
///
/// #[device_bound]
/// async fn transfer(user: CurrentUser) -> String {
///     format!("{} sent the money", user.user_id())
/// }
/// ```
#[proc_macro_attribute]
pub fn device_bound(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::DeviceBound, args, item)
}

/// Rejects the request unless its session's user entered the password at most `max_age` ago
/// (at login or at the last re-authentication): for sensitive operations such as a password
/// change (ASVS 7.5). The refusal is 401 with `reauthentication_required`, distinct from the 401
/// `unauthenticated` of a request without a live session, so the client can ask for the
/// password again instead of sending the user to the login page.
///
/// `max_age` is whole numbers of hours, minutes and seconds, largest first: `"90s"`, `"5m"`,
/// `"1h30m"`. Stack it with a role guard when both are needed.
///
/// `method = "passkey"` (or `method = ["passkey", "totp"]`) also requires the last proof to
/// have been by that method (or one of them): the method the application named at login or at
/// the last re-authentication (`AuthSession::reauthenticate(method)`). A session whose last
/// proof was a password then gets 401 `reauthentication_required` with `"methods":
/// ["passkey"]`, so the client offers the right form.
///
/// ```rust,ignore
/// use session_core::prelude::*;
///
/// #[fresh_login(max_age = "5m")]
/// async fn delete_account() -> &'static str {
///     "deleted"
/// }
///
/// #[fresh_login(max_age = "5m", method = "passkey")]
/// async fn open_vault() -> &'static str {
///     "open"
/// }
/// ```
#[proc_macro_attribute]
pub fn fresh_login(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::FreshLogin, args, item)
}

/// Rejects the request unless its session has the given role.
///
/// Takes exactly one role; for several, use [`macro@has_any_role`] or
/// [`macro@has_all_roles`].
///
/// ```rust,ignore
/// use axum::extract::Path;
/// use session_core::prelude::*;
///
/// #[has_role("ADMIN")]
/// async fn delete_user(Path(id): Path<u32>) -> String {
///     format!("deleted user {id}")
/// }
/// ```
#[proc_macro_attribute]
pub fn has_role(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::HasRole, args, item)
}

/// Rejects the request unless its session has at least one of the given roles.
///
/// ```rust,ignore
/// use axum::extract::Path;
/// use session_core::prelude::*;
///
/// #[has_any_role("ADMIN", "SUPPORT")]
/// async fn ticket(Path(id): Path<u32>) -> String {
///     format!("ticket {id}")
/// }
/// ```
#[proc_macro_attribute]
pub fn has_any_role(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::HasAnyRole, args, item)
}

/// Rejects the request unless its session has every one of the given roles.
///
/// ```rust,ignore
/// use session_core::prelude::*;
///
/// #[has_all_roles("ADMIN", "AUDITOR")]
/// async fn audit_log() -> &'static str {
///     "..."
/// }
/// ```
#[proc_macro_attribute]
pub fn has_all_roles(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::HasAllRoles, args, item)
}

/// Rejects the request unless its session has the given permission.
///
/// Takes exactly one permission; for several, use [`macro@has_any_permission`] or
/// [`macro@has_all_permissions`].
///
/// ```rust,ignore
/// use axum::extract::Path;
/// use session_core::prelude::*;
///
/// #[has_permission("orders:read")]
/// async fn order(Path(id): Path<u32>) -> String {
///     format!("order {id}")
/// }
/// ```
#[proc_macro_attribute]
pub fn has_permission(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::HasPermission, args, item)
}

/// Rejects the request unless its session has at least one of the given permissions.
///
/// ```rust,ignore
/// use axum::extract::Path;
/// use session_core::prelude::*;
///
/// #[has_any_permission("orders:read", "orders:admin")]
/// async fn order(Path(id): Path<u32>) -> String {
///     format!("order {id}")
/// }
/// ```
#[proc_macro_attribute]
pub fn has_any_permission(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::HasAnyPermission, args, item)
}

/// Rejects the request unless its session has every one of the given permissions.
///
/// ```rust,ignore
/// use axum::extract::Path;
/// use session_core::prelude::*;
///
/// #[has_all_permissions("orders:read", "orders:write")]
/// async fn update_order(Path(id): Path<u32>, body: String) -> String {
///     format!("order {id}: {body}")
/// }
/// ```
#[proc_macro_attribute]
pub fn has_all_permissions(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::HasAllPermissions, args, item)
}
