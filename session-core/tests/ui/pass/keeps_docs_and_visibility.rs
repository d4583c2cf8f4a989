// The function is emitted as written: attributes, docs, visibility, generics, `where` clause,
// return type and body. Only the guard argument is added (as `_`, so no name leaks).
#![deny(unused_variables)]

use axum::routing::get;

pub mod api {
    use axum::extract::Path;
    use session_core::{has_role, login_required};

    /// Documented, public, and callable from outside this module.
    #[login_required]
    pub async fn me() -> &'static str {
        "me"
    }

    /// Crate-visible, with an attribute of its own that must survive the expansion.
    #[has_role("ADMIN")]
    #[allow(unused_variables)]
    pub(crate) async fn lenient(Path(id): Path<u32>) -> &'static str {
        let unused = id;
        "ok"
    }

    /// Generic, with a `where` clause and an explicit return type.
    #[has_role("ADMIN")]
    pub async fn generic<T>(Path(id): Path<u32>) -> String
    where
        T: Default + std::fmt::Debug + Send + 'static,
    {
        format!("{id} {:?}", T::default())
    }

    /// `_` is the guard's pattern, so a parameter of the handler's own may be called anything.
    #[has_role("ADMIN")]
    pub async fn names(Path(guard): Path<String>) -> String {
        guard
    }
}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/me", get(api::me))
        .route("/lenient/{id}", get(api::lenient))
        .route("/generic/{id}", get(api::generic::<u8>))
        .route("/names/{guard}", get(api::names));
}
