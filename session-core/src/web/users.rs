//! The application's own user type in one extractor: [`UserLoader`] (the small trait the
//! application implements, loading its user for a login session from its own storage) and
//! [`Authenticated<L>`] (the extractor of `L`'s user, loading it at most once per request).
//!
//! The loader is found by type, where each framework keeps application state: axum's router
//! state (`L: FromRef<S>`, so a handler asking for a user whose loader the router's state does
//! not provide **does not compile**), actix-web's `app_data` (`web::Data<L>`, looked up at run
//! time, as actix-web does for every `Data`).

use std::future::Future;

use crate::error::Error;
use crate::logging::log_safe;
use crate::record::Session;
use crate::web::context::RequestSession;
use crate::web::rejection::Rejection;

/// Loads the application's user for a login session, from the application's own storage (a
/// database, a directory, ...); the [`Authenticated<L>`] extractor then hands handlers the
/// user.
///
/// The session is what the library knows ([`CurrentUser`](crate::web::CurrentUser): user id,
/// roles, data); the user is what the application knows (name, email, plan, ...).
///
/// Give it to the framework as application state: on axum, the router's state or a part of it
/// (`Router::with_state(loader)`, or a field of a state struct with `FromRef`); on actix-web,
/// `App::app_data(web::Data::new(loader))`. It is cloned per request on axum: keep it cheap to
/// clone (a pool handle, an `Arc`).
///
/// ```
/// use session_core::web::UserLoader;
/// use session_core::{Error, Session};
///
/// #[derive(Clone)]
/// struct Account {
///     id: String,
///     display_name: String,
/// }
///
/// #[derive(Clone)]
/// struct Accounts; // your database pool, say
///
/// impl UserLoader for Accounts {
///     type User = Account;
///
///     async fn load_user(&self, session: &Session) -> Result<Option<Account>, Error> {
///         // SELECT ... WHERE id = session.user_id()
///         Ok(Some(Account {
///             id: session.user_id().to_owned(),
///             display_name: "Alice".to_owned(),
///         }))
///     }
/// }
/// ```
pub trait UserLoader: Send + Sync + 'static {
    /// The application's user type.
    type User: Clone + Send + Sync + 'static;

    /// The user of `session` (a live login session, never an anonymous one); `Ok(None)` when
    /// the user no longer exists (the request is then refused with 401, as without a login).
    ///
    /// # Errors
    /// Whatever [`Error`] fits: [`Error::Unavailable`] when the application's storage cannot
    /// be reached answers 503, like a store outage (fail closed).
    /// Implement it as an `async fn` (no attribute needed).
    fn load_user(
        &self,
        session: &Session,
    ) -> impl Future<Output = Result<Option<Self::User>, Error>> + Send;
}

/// The logged-in user as the application knows them: the user `L` loads for the request's
/// login session, at most once per request (guards, other extractors and later extractions of
/// `Authenticated<L>` reuse the session and the user). Requests without a login session are
/// refused with 401 before the handler runs, as with [`CurrentUser`](crate::web::CurrentUser)
/// (which a handler can take as well, for the session).
///
/// ```
/// # use session_core::web::UserLoader;
/// # use session_core::{Error, Session};
/// # #[derive(Clone)] struct Account { display_name: String }
/// # #[derive(Clone)] struct Accounts;
/// # impl UserLoader for Accounts { type User = Account;
/// #     async fn load_user(&self, _: &Session) -> Result<Option<Account>, Error> { Ok(None) } }
/// use session_core::prelude::*;
/// use session_core::web::Authenticated;
///
/// #[has_role("ADMIN")]
/// async fn hello(Authenticated(account): Authenticated<Accounts>) -> String {
///     format!("hello, {}", account.display_name)
/// }
///
/// # fn app(store: std::sync::Arc<dyn session_core::SessionStore>) -> axum::Router {
/// axum::Router::new()
///     .route("/hello", axum::routing::get(hello))
///     .layer(SessionLayer::new(store))
///     .with_state(Accounts) // without it, `hello` is no handler of this router: a compile error
/// # }
/// ```
///
/// Refusals: 401 without a login session or when the loader finds no user; 503 when the store
/// or the loader's storage is unavailable; on actix-web, 500 (logged) when no `web::Data<L>` is
/// registered.
pub struct Authenticated<L: UserLoader>(pub L::User);

impl<L: UserLoader> std::fmt::Debug for Authenticated<L>
where
    L::User: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Authenticated").field(&self.0).finish()
    }
}

impl<L: UserLoader> std::ops::Deref for Authenticated<L> {
    type Target = L::User;

    fn deref(&self) -> &L::User {
        &self.0
    }
}

impl<L: UserLoader> Authenticated<L> {
    /// The extractor over the request's state, with the application's loader.
    pub(crate) async fn load(ctx: RequestSession, loader: &L) -> Result<Self, Rejection> {
        let Some(session) = ctx.session().await? else {
            return Err(ctx.unauthenticated().await);
        };
        if let Some(user) = ctx.cached_user::<L::User>(session.key()) {
            return Ok(Self(user));
        }
        match loader.load_user(&session).await {
            Ok(Some(user)) => {
                ctx.cache_user(session.key(), user.clone());
                Ok(Self(user))
            }
            Ok(None) => {
                tracing::info!(
                    target: "session_audit",
                    event = "unknown_user",
                    user = %log_safe(session.user_id()),
                    session = %session.key().log_tag(),
                    "the session's user no longer exists; request refused"
                );
                Err(Rejection::UNAUTHENTICATED)
            }
            Err(e) => Err(Rejection::from(e)),
        }
    }
}
