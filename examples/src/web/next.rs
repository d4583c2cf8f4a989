//! Where to send the browser after login (or a password confirmation): the `next` parameter,
//! accepted only as a path on this site, so a crafted link (`/login?next=https://evil.example`)
//! cannot turn the login form into an open redirect.

/// Longest `next` accepted, in bytes; a longer one is dropped (the user lands on the default
/// page).
pub const MAX_NEXT_LEN: usize = 512;

/// `next` when it is a same-site relative path: it starts with exactly one `/` and holds
/// printable ASCII only (no spaces, no control characters), and no backslash. `None` otherwise.
///
/// Why each rule: `//evil.example` is a scheme-relative URL (another host); browsers read `\` as
/// `/` in http URLs, so `/\evil.example` is `//evil.example` too; they also drop tabs and
/// newlines from URLs (`/\t/evil.example`); and `https://evil.example` does not start with `/`.
/// Non-ASCII text could not go into a `Location` header as is.
///
/// ```
/// use demo::web::next::safe_next;
///
/// assert_eq!(safe_next("/sessions?page=2"), Some("/sessions?page=2"));
/// assert_eq!(safe_next("//evil.example"), None);
/// ```
pub fn safe_next(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    let ok = bytes.len() <= MAX_NEXT_LEN
        && bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\');
    ok.then_some(next)
}

/// The login page's URL that comes back to `target` (a request's path and query) after login;
/// plain `/login` when `target` is not a [`safe_next`] path.
pub fn login_url(target: &str) -> String {
    with_next("/login", target)
}

/// The password confirmation page's URL (`/reauth`) that comes back to `target` once the
/// password is confirmed; plain `/reauth` when `target` is not a [`safe_next`] path.
pub fn reauth_url(target: &str) -> String {
    with_next("/reauth", target)
}

/// `page?next=<target, encoded>`, or `page` alone when `target` is `/` or not [`safe_next`].
fn with_next(page: &str, target: &str) -> String {
    match safe_next(target) {
        Some(next) if next != "/" => format!("{page}?next={}", percent_encode(next)),
        _ => page.to_owned(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `/` (kept readable).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_site_paths_are_accepted() {
        for next in [
            "/",
            "/account",
            "/sessions?x=1&y=%2F%2Fevil",
            "/a/b/../c",
            "/admin#top",
            "/%5Cevil",
        ] {
            assert_eq!(safe_next(next), Some(next), "{next:?} was refused");
        }
        assert!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT_LEN - 1))).is_some());
    }

    #[test]
    fn off_site_and_malformed_targets_are_refused() {
        for next in [
            "",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/a\\b",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "account",
            " /account",
            "/\t/evil.example",
            "/\n/evil.example",
            "/account\r\nSet-Cookie: x=1",
            "/a b",
            "/\u{7f}",
            "/\0",
            "/caf\u{e9}",
            "/\u{ff0f}evil.example",
        ] {
            assert_eq!(safe_next(next), None, "{next:?} was accepted");
        }
        assert!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT_LEN))).is_none());
    }

    #[test]
    fn the_login_url_carries_only_safe_targets_encoded() {
        assert_eq!(login_url("/sessions"), "/login?next=/sessions");
        assert_eq!(
            login_url("/account?tab=a&b=c"),
            "/login?next=/account%3Ftab%3Da%26b%3Dc"
        );
        assert_eq!(login_url("/"), "/login");
        assert_eq!(login_url("//evil.example"), "/login");
        assert_eq!(login_url("/\\evil.example"), "/login");
        assert_eq!(reauth_url("/password"), "/reauth?next=/password");
        assert_eq!(reauth_url("//evil.example"), "/reauth");
    }
}
