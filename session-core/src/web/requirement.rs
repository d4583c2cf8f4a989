//! Guards: "logged in", "has role", "has permission", "logged in recently", checked before a
//! handler's body runs.
//!
//! Two forms of the same checks:
//! - [`Guard<R>`](crate::web::Guard), an extractor whose type names the requirement. The
//!   attribute macros (`#[login_required]`, `#[has_role("ADMIN")]`, ...) add one as a handler's
//!   first argument; the role names are spelled in the type, one `char` at a time ([`Ch`],
//!   [`Nil`], [`LCons`], [`LNil`]), because a `&str` cannot be a const generic on stable Rust.
//! - [`Require`], a value: an axum route layer (`.route_layer(Require::role("ADMIN"))`) or a
//!   check inside a handler ([`Require::check`], any framework), for code without macros.
//!
//! Both answer 401 without a live session (also for role checks: anonymous is never 403),
//! 403 without the role or permission, 401 `reauthentication_required` when a freshness
//! requirement (`#[fresh_login(max_age = "5m")]`, [`Require::fresh`]) is not met, and 503 when
//! the store is unavailable.
//!
//! "Now", for freshness, is the store's clock
//! ([`SessionConfigBuilder::clock`](crate::SessionConfigBuilder::clock)), read once per check and handed to
//! [`Requirement::check`]: a test moves a [`Clock::manual`](crate::Clock::manual) past `max_age`
//! instead of sleeping.

use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::logging::log_safe;
use crate::record::Session;
use crate::web::context::RequestSession;
use crate::web::rejection::Rejection;

/// A requirement a [`Guard`](crate::web::Guard) enforces on the request's session.
pub trait Requirement: Send + Sync + 'static {
    /// True when `session` meets the requirement at `now` (by the store's
    /// [`Clock`](crate::Clock); only requirements on time, such as [`FreshLogin`], look at it).
    fn check(session: &Session, now: SystemTime) -> bool;

    /// What is required, for the 403 message and the audit log (for example `role ADMIN`).
    fn describe() -> String;

    /// How a live session that fails [`Requirement::check`] is refused: by default 403
    /// [`Rejection::Forbidden`] naming [`Requirement::describe`].
    fn refusal() -> Rejection {
        Rejection::Forbidden {
            requirement: Self::describe(),
        }
    }
}

/// Loads the request's session (once) and applies `check` at now, by the store's clock; a
/// refusal is audit-logged.
pub(crate) async fn enforce(
    ctx: &RequestSession,
    check: impl FnOnce(&Session, SystemTime) -> Result<(), Rejection>,
    describe: impl FnOnce() -> String,
) -> Result<(), Rejection> {
    let Some(session) = ctx.session().await? else {
        return Err(ctx.unauthenticated().await);
    };
    let Err(refusal) = check(&session, ctx.store().config().clock().now()) else {
        return Ok(());
    };
    let requirement = describe();
    tracing::info!(
        target: "session_audit",
        event = "denied",
        user = %log_safe(session.user_id()),
        session = %session.key().log_tag(),
        requirement = %requirement,
        "request refused"
    );
    Err(refusal)
}

/// True when the session's password was entered at most `max_age` before `now` (an auth time
/// in the future, from clock skew between app servers, counts as now).
/// An impersonation session is never fresh: the admin's proof is not the user's.
pub(crate) fn fresh(session: &Session, max_age: Duration, now: SystemTime) -> bool {
    session.impersonated_by().is_none()
        && now
            .duration_since(session.auth_time())
            .map_or(true, |age| age <= max_age)
}

/// Requirement: a live session whose user proved who they are at most `SECS` seconds ago
/// ([`Session::auth_time`]: at login or the last re-authentication), by one of the methods in
/// the type-level list `M` ([`Session::auth_method`]; `LNil`, the default: by any). Refused
/// with 401 [`Rejection::ReauthenticationRequired`], so the client can ask for the proof again
/// instead of sending the user to the login page.
#[derive(Debug)]
pub struct FreshLogin<const SECS: u64, M = LNil>(PhantomData<fn() -> M>);

impl<const SECS: u64, M: TypeStrList> Requirement for FreshLogin<SECS, M> {
    fn check(session: &Session, now: SystemTime) -> bool {
        fresh(session, Duration::from_secs(SECS), now)
            && (M::is_empty() || M::contains(session.auth_method()))
    }
    fn describe() -> String {
        describe(Kind::Fresh(Duration::from_secs(SECS), M::to_vec()))
    }
    fn refusal() -> Rejection {
        Rejection::ReauthenticationRequired {
            max_age: Duration::from_secs(SECS),
            methods: M::to_vec(),
        }
    }
}

/// Requirement: a live session.
#[derive(Debug)]
pub struct Login;

impl Requirement for Login {
    fn check(_: &Session, _: SystemTime) -> bool {
        true
    }
    fn describe() -> String {
        "a login".to_owned()
    }
}

/// Requirement: a live session bound to its device (DBSC, [`Session::is_device_bound`]);
/// refused with 403 [`Rejection::DeviceBindingRequired`]. A bound session without its current
/// credential is no session at all (401), as on every route.
#[derive(Debug)]
pub struct DeviceBound;

impl Requirement for DeviceBound {
    fn check(session: &Session, _: SystemTime) -> bool {
        session.is_device_bound()
    }
    fn describe() -> String {
        describe(Kind::DeviceBound)
    }
    fn refusal() -> Rejection {
        Rejection::DeviceBindingRequired
    }
}

/// Requirement: at least one of the roles in the type-level list `L`.
#[derive(Debug)]
pub struct AnyRole<L>(PhantomData<fn() -> L>);
/// Requirement: every role in the type-level list `L`.
#[derive(Debug)]
pub struct AllRoles<L>(PhantomData<fn() -> L>);
/// Requirement: at least one of the permissions in the type-level list `L`.
#[derive(Debug)]
pub struct AnyPermission<L>(PhantomData<fn() -> L>);
/// Requirement: every permission in the type-level list `L`.
#[derive(Debug)]
pub struct AllPermissions<L>(PhantomData<fn() -> L>);

impl<L: TypeStrList> Requirement for AnyRole<L> {
    fn check(session: &Session, _: SystemTime) -> bool {
        L::any_in(session.roles())
    }
    fn describe() -> String {
        describe(Kind::AnyRole(L::to_vec()))
    }
}

impl<L: TypeStrList> Requirement for AllRoles<L> {
    fn check(session: &Session, _: SystemTime) -> bool {
        L::all_in(session.roles())
    }
    fn describe() -> String {
        describe(Kind::AllRoles(L::to_vec()))
    }
}

impl<L: TypeStrList> Requirement for AnyPermission<L> {
    fn check(session: &Session, _: SystemTime) -> bool {
        L::any_in(session.permissions())
    }
    fn describe() -> String {
        describe(Kind::AnyPermission(L::to_vec()))
    }
}

impl<L: TypeStrList> Requirement for AllPermissions<L> {
    fn check(session: &Session, _: SystemTime) -> bool {
        L::all_in(session.permissions())
    }
    fn describe() -> String {
        describe(Kind::AllPermissions(L::to_vec()))
    }
}

/// End of a type-level string.
#[derive(Debug)]
pub struct Nil;

/// A type-level string: the `char` `C` followed by the string `Rest`.
#[derive(Debug)]
pub struct Ch<const C: char, Rest>(PhantomData<fn() -> Rest>);

/// A string spelled in a type ([`Ch`] ... [`Nil`]), compared without allocating.
pub trait TypeStr: 'static {
    /// True when `s` is exactly this string.
    fn matches(s: &str) -> bool;
    /// Appends this string to `out`.
    fn write(out: &mut String);
}

impl TypeStr for Nil {
    fn matches(s: &str) -> bool {
        s.is_empty()
    }
    fn write(_: &mut String) {}
}

impl<const C: char, Rest: TypeStr> TypeStr for Ch<C, Rest> {
    fn matches(s: &str) -> bool {
        let mut chars = s.chars();
        chars.next() == Some(C) && Rest::matches(chars.as_str())
    }
    fn write(out: &mut String) {
        out.push(C);
        Rest::write(out);
    }
}

/// End of a type-level list of strings.
#[derive(Debug)]
pub struct LNil;

/// A type-level list: the string `H` followed by the list `T`.
#[derive(Debug)]
pub struct LCons<H, T>(PhantomData<fn() -> (H, T)>);

/// A list of type-level strings ([`LCons`] ... [`LNil`]).
pub trait TypeStrList: 'static {
    /// True when any string of the list is in `have`.
    fn any_in(have: &[String]) -> bool;
    /// True when every string of the list is in `have`.
    fn all_in(have: &[String]) -> bool;
    /// The strings, for messages.
    fn to_vec() -> Vec<String>;
    /// True when `s` is one of the strings.
    fn contains(s: &str) -> bool;
    /// True for the empty list.
    fn is_empty() -> bool;
}

impl TypeStrList for LNil {
    fn any_in(_: &[String]) -> bool {
        false
    }
    fn contains(_: &str) -> bool {
        false
    }
    fn is_empty() -> bool {
        true
    }
    fn all_in(_: &[String]) -> bool {
        true
    }
    fn to_vec() -> Vec<String> {
        Vec::new()
    }
}

impl<H: TypeStr, T: TypeStrList> TypeStrList for LCons<H, T> {
    fn any_in(have: &[String]) -> bool {
        have.iter().any(|s| H::matches(s)) || T::any_in(have)
    }
    fn contains(s: &str) -> bool {
        H::matches(s) || T::contains(s)
    }
    fn is_empty() -> bool {
        false
    }
    fn all_in(have: &[String]) -> bool {
        have.iter().any(|s| H::matches(s)) && T::all_in(have)
    }
    fn to_vec() -> Vec<String> {
        let mut head = String::new();
        H::write(&mut head);
        let mut v = vec![head];
        v.extend(T::to_vec());
        v
    }
}

/// A requirement as a value: the guards without macros.
///
/// As a route layer (checked before the handler; add it with `route_layer` so unknown paths
/// still answer 404):
///
/// ```
/// use axum::{routing::get, Router};
/// use session_core::web::Require;
///
/// let admin: Router = Router::new()
///     .route("/admin", get(|| async { "secret" }))
///     .route_layer(Require::role("ADMIN"));
/// ```
///
/// Or inside a handler, on the [`CurrentUser`](crate::web::CurrentUser):
///
/// ```
/// use session_core::web::{CurrentUser, Rejection, Require};
///
/// async fn tickets(user: CurrentUser) -> Result<&'static str, Rejection> {
///     Require::any_role(["ADMIN", "SUPPORT"]).check(&user)?;
///     Ok("tickets")
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Login,
    AnyRole(Vec<String>),
    AllRoles(Vec<String>),
    AnyPermission(Vec<String>),
    AllPermissions(Vec<String>),
    /// The user's own session, not an impersonation.
    NotImpersonated,
    /// A session bound to its device (DBSC).
    DeviceBound,
    /// Fresh within the duration, by one of the methods (none: by any).
    Fresh(Duration, Vec<String>),
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl Require {
    /// A live session.
    pub fn login() -> Self {
        Self { kind: Kind::Login }
    }

    /// The role `role`.
    pub fn role(role: impl Into<String>) -> Self {
        Self {
            kind: Kind::AnyRole(vec![role.into()]),
        }
    }

    /// At least one of `roles`.
    pub fn any_role<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self {
            kind: Kind::AnyRole(strings(roles)),
        }
    }

    /// Every one of `roles`.
    pub fn all_roles<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self {
            kind: Kind::AllRoles(strings(roles)),
        }
    }

    /// The permission `permission`.
    pub fn permission(permission: impl Into<String>) -> Self {
        Self {
            kind: Kind::AnyPermission(vec![permission.into()]),
        }
    }

    /// At least one of `permissions`.
    pub fn any_permission<I: IntoIterator<Item = S>, S: Into<String>>(permissions: I) -> Self {
        Self {
            kind: Kind::AnyPermission(strings(permissions)),
        }
    }

    /// Every one of `permissions`.
    pub fn all_permissions<I: IntoIterator<Item = S>, S: Into<String>>(permissions: I) -> Self {
        Self {
            kind: Kind::AllPermissions(strings(permissions)),
        }
    }

    /// A live session whose user entered the password at most `max_age` ago (at login or
    /// re-authentication, [`Session::auth_time`]); for sensitive operations such as a password
    /// change (ASVS 7.5). Refused with 401 [`Rejection::ReauthenticationRequired`] (distinct
    /// from 401 `unauthenticated`: the client asks for the password again, see
    /// [`SessionStore::reauthenticate`](crate::SessionStore::reauthenticate)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::{routing::put, Router};
    /// use session_core::web::Require;
    ///
    /// let account: Router = Router::new()
    ///     .route("/password", put(|| async { "changed" }))
    ///     .route_layer(Require::fresh(Duration::from_secs(300)));
    /// ```
    pub fn fresh(max_age: Duration) -> Self {
        Self {
            kind: Kind::Fresh(max_age, Vec::new()),
        }
    }

    /// The user's own session: an impersonation session
    /// ([`AuthSession::impersonate`](crate::web::AuthSession::impersonate)) is refused with 403,
    /// for routes an admin acting as the user must not use (a password change, a payment).
    ///
    /// ```
    /// use session_core::web::{CurrentUser, Rejection, Require};
    ///
    /// async fn pay(user: CurrentUser) -> Result<&'static str, Rejection> {
    ///     Require::not_impersonated().check(&user)?;
    ///     Ok("paid")
    /// }
    /// ```
    pub fn not_impersonated() -> Self {
        Self {
            kind: Kind::NotImpersonated,
        }
    }

    /// A session bound to its device (DBSC: [`Session::is_device_bound`]), as
    /// `#[device_bound]` requires; refused with 403 [`Rejection::DeviceBindingRequired`].
    ///
    /// ```
    /// use session_core::web::{CurrentUser, Rejection, Require};
    ///
    /// async fn transfer(user: CurrentUser) -> Result<&'static str, Rejection> {
    ///     Require::device_bound().check(&user)?;
    ///     Ok("sent")
    /// }
    /// ```
    pub fn device_bound() -> Self {
        Self {
            kind: Kind::DeviceBound,
        }
    }

    /// As [`Require::fresh`], and the last proof must have been by one of `methods`
    /// ([`Session::auth_method`]: the method named at login or at the last
    /// [`SessionStore::reauthenticate`](crate::SessionStore::reauthenticate)): a password
    /// re-authentication does not open a route that asks for a passkey. The refusal's
    /// [`Rejection::ReauthenticationRequired`] lists the methods, so the client can offer the
    /// right form.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::web::{Rejection, Require};
    /// use session_core::{MemoryStore, NewSession, SessionConfig, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(SessionConfig::default());
    /// let vault = Require::fresh_by(Duration::from_secs(300), ["passkey"]);
    /// let (token, session) = store.create(NewSession::new("alice").with_method("password")).await?;
    /// assert!(matches!(
    ///     vault.check(&session),
    ///     Err(Rejection::ReauthenticationRequired { methods, .. }) if methods == ["passkey"]
    /// ));
    /// let (_, session) = store.reauthenticate(&token, "passkey").await?;
    /// assert!(vault.check(&session).is_ok());
    /// # Ok::<(), session_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn fresh_by<I: IntoIterator<Item = S>, S: Into<String>>(
        max_age: Duration,
        methods: I,
    ) -> Self {
        Self {
            kind: Kind::Fresh(max_age, strings(methods)),
        }
    }

    fn met_by(&self, session: &Session, now: SystemTime) -> bool {
        let contains = |have: &[String], want: &String| have.contains(want);
        match &self.kind {
            Kind::Login => true,
            Kind::NotImpersonated => session.impersonated_by().is_none(),
            Kind::DeviceBound => session.is_device_bound(),
            Kind::Fresh(max_age, methods) => {
                fresh(session, *max_age, now)
                    && (methods.is_empty() || methods.iter().any(|m| m == session.auth_method()))
            }
            Kind::AnyRole(w) => w.iter().any(|r| contains(session.roles(), r)),
            Kind::AllRoles(w) => w.iter().all(|r| contains(session.roles(), r)),
            Kind::AnyPermission(w) => w.iter().any(|p| contains(session.permissions(), p)),
            Kind::AllPermissions(w) => w.iter().all(|p| contains(session.permissions(), p)),
        }
    }

    /// What is required, for messages and the audit log (for example `role ADMIN`).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // the route layer's audit log
    pub(crate) fn describe(&self) -> String {
        describe(self.kind.clone())
    }

    /// Checks the request's session against the requirement, loading it (once per request)
    /// if no extractor did yet, and audit-logs a refusal: what a route layer or middleware
    /// does.
    ///
    /// # Errors
    /// [`Rejection::Unauthenticated`] without a live session, [`Rejection::StoreUnavailable`],
    /// or the refusal of [`Require::check`].
    #[cfg(feature = "axum")]
    pub(crate) async fn enforce(&self, ctx: &RequestSession) -> Result<(), Rejection> {
        enforce(ctx, |s, now| self.check_at(s, now), || self.describe()).await
    }

    /// Checks `session` against the requirement.
    ///
    /// [`Require::fresh`] is judged here by the system clock (a session alone does not know
    /// its store's clock); as a route layer, by the store's
    /// [`SessionConfigBuilder::clock`](crate::SessionConfigBuilder::clock).
    ///
    /// # Errors
    /// [`Rejection::Forbidden`] naming the requirement when it is not met;
    /// [`Rejection::ReauthenticationRequired`] for [`Require::fresh`].
    pub fn check(&self, session: &Session) -> Result<(), Rejection> {
        self.check_at(session, SystemTime::now())
    }

    /// [`Require::check`] at `now`.
    fn check_at(&self, session: &Session, now: SystemTime) -> Result<(), Rejection> {
        if self.met_by(session, now) {
            return Ok(());
        }
        Err(match &self.kind {
            Kind::Fresh(max_age, methods) => Rejection::ReauthenticationRequired {
                max_age: *max_age,
                methods: methods.clone(),
            },
            Kind::DeviceBound => Rejection::DeviceBindingRequired,
            kind => Rejection::Forbidden {
                requirement: describe(kind.clone()),
            },
        })
    }
}

fn describe(kind: Kind) -> String {
    let list = |names: Vec<String>| names.join(", ");
    match kind {
        Kind::Login => "a login".to_owned(),
        Kind::NotImpersonated => "a session that is not an impersonation".to_owned(),
        Kind::DeviceBound => "a device-bound session".to_owned(),
        Kind::AnyRole(r) if r.len() == 1 => format!("role {}", list(r)),
        Kind::AnyRole(r) => format!("one of the roles {}", list(r)),
        Kind::AllRoles(r) => format!("all of the roles {}", list(r)),
        Kind::AnyPermission(p) if p.len() == 1 => format!("permission {}", list(p)),
        Kind::AnyPermission(p) => format!("one of the permissions {}", list(p)),
        Kind::AllPermissions(p) => format!("all of the permissions {}", list(p)),
        Kind::Fresh(max_age, m) if m.is_empty() => {
            format!("a login within the last {} s", max_age.as_secs())
        }
        Kind::Fresh(max_age, m) => format!(
            "a login within the last {} s by {}",
            max_age.as_secs(),
            m.join(" or ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Passkey = Ch<'p', Ch<'k', Nil>>;

    #[test]
    fn a_fresh_login_by_method_needs_that_method() {
        use crate::{NewSession, SessionConfig, SessionStore};
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = crate::MemoryStore::new(SessionConfig::default());
            let new = NewSession::new("alice").with_method("password");
            let (token, by_password) = store.create(new).await.unwrap();
            let now = SystemTime::now();
            type ByPk = FreshLogin<300, LCons<Passkey, LNil>>;
            assert!(FreshLogin::<300>::check(&by_password, now));
            assert!(!ByPk::check(&by_password, now));
            assert_eq!(
                ByPk::refusal(),
                Rejection::ReauthenticationRequired {
                    max_age: Duration::from_secs(300),
                    methods: vec!["pk".into()],
                }
            );
            let (_, by_pk) = store.reauthenticate(&token, "pk").await.unwrap();
            assert!(ByPk::check(&by_pk, now));
            let later = now + Duration::from_secs(301);
            assert!(
                !ByPk::check(&by_pk, later),
                "fresh by the method, not for ever"
            );
            let runtime = Require::fresh_by(Duration::from_secs(300), ["pk"]);
            assert!(runtime.check_at(&by_pk, now).is_ok());
            assert!(runtime.check_at(&by_password, now).is_err());
            assert_eq!(ByPk::describe(), "a login within the last 300 s by pk");
        });
    }

    type Admin = Ch<'A', Ch<'D', Ch<'M', Ch<'I', Ch<'N', Nil>>>>>;
    type Ops = Ch<'O', Ch<'p', Ch<'s', Nil>>>;
    type AdminOrOps = LCons<Admin, LCons<Ops, LNil>>;

    #[test]
    fn type_level_strings_match_exactly() {
        assert!(Admin::matches("ADMIN"));
        for other in ["", "ADMI", "ADMINS", "admin", "ADMIN\0"] {
            assert!(!Admin::matches(other), "{other:?}");
        }
        type Accent = Ch<'é', Ch<'ß', Nil>>;
        assert!(Accent::matches("éß"));
    }

    #[test]
    fn type_level_lists_any_and_all() {
        let roles = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(AdminOrOps::any_in(&roles(&["Ops"])));
        assert!(!AdminOrOps::any_in(&roles(&["USER"])));
        assert!(AdminOrOps::all_in(&roles(&["USER", "Ops", "ADMIN"])));
        assert!(!AdminOrOps::all_in(&roles(&["ADMIN"])));
        assert_eq!(AdminOrOps::to_vec(), ["ADMIN", "Ops"]);
        assert_eq!(
            <AllRoles<AdminOrOps> as Requirement>::describe(),
            "all of the roles ADMIN, Ops"
        );
        assert_eq!(
            <AnyRole<LCons<Admin, LNil>> as Requirement>::describe(),
            "role ADMIN"
        );
    }
}
