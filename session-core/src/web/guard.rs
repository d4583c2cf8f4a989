//! [`Guard<R>`]: the extractor the attribute macros add as a handler's first argument. One
//! type for every framework: it implements axum's `FromRequestParts` (feature `axum`) and
//! actix-web's `FromRequest` (feature `actix`), so the macros need no framework argument.

use std::marker::PhantomData;
use std::time::SystemTime;

use crate::record::Session;
use crate::web::context::RequestSession;
use crate::web::rejection::Rejection;
use crate::web::requirement::{enforce, Requirement};

/// An extractor that refuses the request unless its session meets `R`: 401 without a live
/// session, 403 when `R` is not met, 503 when the store is unavailable.
///
/// The loaded session is kept for the request, so a [`CurrentUser`](crate::web::CurrentUser)
/// in the same handler costs no second lookup.
pub struct Guard<R>(PhantomData<fn() -> R>);

impl<R> std::fmt::Debug for Guard<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

impl<R: Requirement> Guard<R> {
    fn check(session: &Session, now: SystemTime) -> Result<(), Rejection> {
        if R::check(session, now) {
            Ok(())
        } else {
            Err(R::refusal())
        }
    }

    /// Applies `R` to the request's session, loading it (once per request) if needed.
    pub(crate) async fn from_context(ctx: &RequestSession) -> Result<Self, Rejection> {
        enforce(ctx, Self::check, R::describe).await?;
        Ok(Guard(PhantomData))
    }

    /// The outcome without waiting, when the session is already known (no cookie, or loaded
    /// by an earlier extractor); `None` when a store call is needed.
    #[cfg_attr(not(feature = "actix"), allow(dead_code))]
    pub(crate) fn now(ctx: &RequestSession) -> Option<Result<Self, Rejection>> {
        let now = || ctx.store().config().clock().now();
        match ctx.session_now()? {
            Ok(Some(session)) if R::check(&session, now()) => Some(Ok(Guard(PhantomData))),
            // A refusal goes through `enforce`, which audit-logs it.
            Ok(Some(_)) => None,
            // A session cookie that names no live session: why it ended takes a store call.
            Ok(None) if ctx.carries_session() => None,
            Ok(None) => Some(Err(Rejection::UNAUTHENTICATED)),
            Err(rejection) => Some(Err(rejection)),
        }
    }
}
