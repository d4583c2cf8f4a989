//! The application's own user type in one extractor: [`UserLoader`] (the small trait the
//! application implements, loading its user for a login session from its own storage) and
//! [`Authenticated<U>`] (the extractor, loading it at most once per request).

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Error;
use crate::logging::log_safe;
use crate::record::Session;
use crate::web::context::RequestSession;
use crate::web::rejection::Rejection;

/// Loads the application's user for a login session, from the application's own storage (a
/// database, a directory, ...). Register it once with the session layer
/// (`SessionLayer::with_user_loader` on axum, `SessionMiddleware::with_user_loader` on
/// actix-web); the [`Authenticated<U>`] extractor then hands handlers the user.
///
/// The session is what the library knows ([`CurrentUser`](crate::web::CurrentUser): user id,
/// roles, data); the user is what the application knows (name, email, plan, ...).
///
/// ```
/// use session_core::async_trait;
/// use session_core::web::UserLoader;
/// use session_core::{Error, Session};
///
/// #[derive(Clone)]
/// struct Account {
///     id: String,
///     display_name: String,
/// }
///
/// struct Accounts; // your database pool, say
///
/// #[async_trait]
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
#[async_trait]
pub trait UserLoader: Send + Sync + 'static {
    /// The application's user type.
    type User: Clone + Send + Sync + 'static;

    /// The user of `session` (a live login session, never an anonymous one); `Ok(None)` when
    /// the user no longer exists (the request is then refused with 401, as without a login).
    ///
    /// # Errors
    /// Whatever [`Error`] fits: [`Error::Unavailable`] when the application's storage cannot
    /// be reached answers 503, like a store outage (fail closed).
    async fn load_user(&self, session: &Session) -> Result<Option<Self::User>, Error>;
}

/// A registered [`UserLoader`], its user type erased (the layer holds one for any `U`).
#[derive(Clone)]
pub(crate) struct Users(Arc<dyn Any + Send + Sync>);

impl Users {
    pub(crate) fn new<L: UserLoader>(loader: L) -> Self {
        let loader: Arc<dyn UserLoader<User = L::User>> = Arc::new(loader);
        Self(Arc::new(loader))
    }

    /// The loader, when it loads `U`s.
    fn loader<U: 'static>(&self) -> Option<&Arc<dyn UserLoader<User = U>>> {
        self.0.downcast_ref()
    }
}

/// The logged-in user as the application knows them: the `U` its [`UserLoader`] loads for the
/// request's login session, at most once per request (guards, other extractors and later
/// extractions of `Authenticated<U>` reuse the session and the user). Requests without a login
/// session are refused with 401 before the handler runs, as with
/// [`CurrentUser`](crate::web::CurrentUser) (which a handler can take as well, for the session).
///
/// ```
/// # use async_trait::async_trait;
/// # use session_core::web::UserLoader;
/// # use session_core::{Error, Session};
/// # #[derive(Clone)] struct Account { display_name: String }
/// # struct Accounts;
/// # #[async_trait] impl UserLoader for Accounts { type User = Account;
/// #     async fn load_user(&self, _: &Session) -> Result<Option<Account>, Error> { Ok(None) } }
/// use session_core::prelude::*;
/// use session_core::web::Authenticated;
///
/// #[has_role("ADMIN")]
/// async fn hello(Authenticated(account): Authenticated<Account>) -> String {
///     format!("hello, {}", account.display_name)
/// }
///
/// # fn app(store: std::sync::Arc<dyn session_core::SessionStore>) -> axum::Router {
/// axum::Router::new()
///     .route("/hello", axum::routing::get(hello))
///     .layer(SessionLayer::new(store).with_user_loader(Accounts))
/// # }
/// ```
///
/// Refusals: 401 without a login session or when the loader finds no user; 503 when the store
/// or the loader's storage is unavailable; 500 when no loader of `U`s is registered (logged:
/// a programming error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated<U>(pub U);

impl<U> std::ops::Deref for Authenticated<U> {
    type Target = U;

    fn deref(&self) -> &U {
        &self.0
    }
}

impl<U: Clone + Send + Sync + 'static> Authenticated<U> {
    /// The extractor over the request's state.
    pub(crate) async fn from_context(ctx: RequestSession) -> Result<Self, Rejection> {
        let session = ctx.session().await?.ok_or(Rejection::Unauthenticated)?;
        if let Some(user) = ctx.cached_user::<U>(session.key()) {
            return Ok(Self(user));
        }
        let Some(loader) = ctx.users().and_then(Users::loader::<U>) else {
            tracing::error!(
                user_type = std::any::type_name::<U>(),
                "Authenticated<U> without a UserLoader of that type: register one with \
                 with_user_loader on the session layer or middleware"
            );
            return Err(Rejection::MissingLayer);
        };
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
                Err(Rejection::Unauthenticated)
            }
            Err(e) => Err(Rejection::from(e)),
        }
    }
}
