// Guards are async extractors: the handler must be an `async fn`.
use session_core::{has_role, login_required};

#[has_role("ADMIN")]
fn admin() -> &'static str {
    "ok"
}

#[login_required]
pub fn me() -> &'static str {
    "me"
}

fn main() {}
