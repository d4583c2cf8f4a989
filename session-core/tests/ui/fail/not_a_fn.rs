// The attributes only go on functions.
use session_core::{has_role, login_required};

#[login_required]
struct Handler;

#[has_role("ADMIN")]
pub const ADMIN: &str = "ADMIN";

fn main() {}
