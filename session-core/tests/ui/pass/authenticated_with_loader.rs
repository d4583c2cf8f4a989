// The same handler on a router whose state provides the loader compiles.
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use session_core::axum::SessionLayer;
use session_core::web::{Authenticated, UserLoader};
use session_core::{Error, MemoryStore, Session, SessionConfig};

#[derive(Clone)]
struct Account {
    name: String,
}

#[derive(Clone)]
struct Accounts;

impl UserLoader for Accounts {
    type User = Account;
    async fn load_user(&self, session: &Session) -> Result<Option<Account>, Error> {
        Ok(Some(Account { name: session.user_id().to_owned() }))
    }
}

async fn hello(Authenticated(account): Authenticated<Accounts>) -> String {
    account.name
}

fn main() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let _app: Router = Router::new()
        .route("/hello", get(hello))
        .layer(SessionLayer::new(store))
        .with_state(Accounts);
}
