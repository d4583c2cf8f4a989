// Guards belong on free-standing handler functions, not on methods.
use session_core::has_role;

struct Api;

impl Api {
    #[has_role("ADMIN")]
    async fn admin(&self) -> &'static str {
        "ok"
    }
}

fn main() {}
