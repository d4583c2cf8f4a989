//! [`CookieConfig`]: how the session cookie is named and which attributes it carries; reading
//! the token from a request's `Cookie` headers and writing `Set-Cookie`.

use std::time::Duration;

use cookie::{Cookie, SameSite as CookieSameSite};

use crate::token::Token;

/// What the bound credential's cookie adds to the session cookie's name.
const BOUND_SUFFIX: &str = "-bound";

/// A bound credential as a request presented it: 22 characters (128 bits of base64url).
pub(crate) type BoundCredential = [u8; 22];

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on same-site requests and top-level navigations (links from other sites). The
    /// default: logins survive following a link, and cross-site POSTs carry no cookie.
    #[default]
    Lax,
    /// Sent on same-site requests only; following a link from another site arrives logged out.
    Strict,
}

/// Attributes of the session cookie.
///
/// Defaults: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure`, named `__Host-session` (the
/// `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no `Domain`, so a sibling
/// subdomain cannot plant a session cookie). With [`CookieConfig::secure`] off the default name
/// is `session`, because browsers refuse `__Host-` cookies without `Secure`.
///
/// ```
/// use session_core::web::{CookieConfig, SameSite};
///
/// let cookie = CookieConfig::default().same_site(SameSite::Strict);
/// assert_eq!(cookie.cookie_name(), "__Host-session");
/// let dev = CookieConfig::default().secure(false);
/// assert_eq!(dev.cookie_name(), "session");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    name: Option<String>,
    secure: bool,
    same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: None,
            secure: true,
            same_site: SameSite::Lax,
        }
    }
}

impl CookieConfig {
    /// Sets the cookie's name (default `__Host-session`, or `session` without `Secure`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Turns the `Secure` attribute on (default) or off.
    ///
    /// **Security:** without `Secure` the browser also sends the cookie over plain HTTP, where
    /// anyone on the network path can read it and take over the session. Turn it off only for
    /// local development over `http://`.
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `SameSite` (default [`SameSite::Lax`]).
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The cookie name in effect.
    pub fn cookie_name(&self) -> &str {
        match &self.name {
            Some(name) => name,
            None if self.secure => "__Host-session",
            None => "session",
        }
    }

    /// The token of the request's one cookie of our name, if it is well-formed. Malformed values
    /// (wrong length or alphabet, non-UTF-8 bytes) give none, without any store access.
    ///
    /// Two or more cookies of our name (in one `Cookie` header or several, well-formed or not)
    /// give none as well, whichever of them is live: a second cookie of the name is what a
    /// sibling subdomain or a plain-http page planting its own would produce ("cookie
    /// tossing"), and the order in which a browser sends them is no basis for picking one.
    ///
    /// `cookie_lines` are the raw values of the request's `Cookie` headers, in order; each
    /// framework adapter hands them over as bytes.
    ///
    /// A plain byte scan of `name=value; ...` (it runs on every request, so no allocation and
    /// no general-purpose cookie parser).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn token_from<'a>(
        &self,
        cookie_lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<Token> {
        self.read(cookie_lines).0
    }

    /// [`token_from`](Self::token_from), and in the same scan the bound credential of a
    /// device-bound session (DBSC): the value of the cookie named [`bound_name`](Self::bound_name),
    /// if there is exactly one of the credential's length.
    pub(crate) fn read<'a>(
        &self,
        cookie_lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Option<Token>, Option<BoundCredential>) {
        let name = self.cookie_name().as_bytes();
        let (mut token, mut tokens) = (None, 0);
        let (mut bound, mut bounds) = (None, 0);
        for pair in cookie_lines
            .into_iter()
            .flat_map(|line| line.split(|b| *b == b';'))
        {
            let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (key, value) = pair.split_at(eq);
            let (key, value) = (key.trim_ascii(), value[1..].trim_ascii());
            if key == name {
                tokens += 1;
                token = Some(value);
            } else if key.len() == name.len() + BOUND_SUFFIX.len()
                && key.starts_with(name)
                && key.ends_with(BOUND_SUFFIX.as_bytes())
            {
                bounds += 1;
                bound = value.try_into().ok();
            }
        }
        let token = token
            .filter(|_| tokens == 1)
            .and_then(|v| Token::parse_bytes(v).ok());
        (token, bound.filter(|_| bounds == 1))
    }

    /// The name of the bound credential's cookie (DBSC): the session cookie's name and
    /// `-bound` (`__Host-session-bound` by default).
    #[cfg(feature = "dbsc")]
    pub(crate) fn bound_name(&self) -> String {
        format!("{}{BOUND_SUFFIX}", self.cookie_name())
    }

    /// The attributes of the bound credential's cookie, as the DBSC session instructions
    /// name them (those of the session cookie).
    #[cfg(feature = "dbsc")]
    pub(crate) fn bound_attributes(&self) -> String {
        let mut text = String::from("Path=/; HttpOnly");
        if self.secure {
            text.push_str("; Secure");
        }
        text.push_str(match self.same_site {
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
        });
        text
    }

    /// The `Set-Cookie` value of a bound credential, counting for `max_age`.
    #[cfg(feature = "dbsc")]
    pub(crate) fn set_bound(&self, value: &str, max_age: Duration) -> String {
        let secs = i64::try_from(max_age.as_secs().max(1)).unwrap_or(i64::MAX);
        self.base_named(self.bound_name(), value.to_owned())
            .max_age(cookie::time::Duration::seconds(secs))
            .build()
            .to_string()
    }

    /// The `Set-Cookie` value carrying `token`: with `max_age` a persistent cookie, without
    /// one a browser-session cookie (no `Max-Age`, no `Expires`).
    pub(crate) fn set(&self, token: &Token, max_age: Option<Duration>) -> String {
        let mut cookie = self.base(token.as_cookie_value());
        if let Some(max_age) = max_age {
            // At least a second: a `Max-Age` of 0 would delete the cookie at once.
            let secs = i64::try_from(max_age.as_secs().max(1)).unwrap_or(i64::MAX);
            cookie = cookie.max_age(cookie::time::Duration::seconds(secs));
        }
        cookie.build().to_string()
    }

    /// The `Set-Cookie` value that makes the browser drop the cookie.
    pub(crate) fn expire(&self) -> String {
        let cookie = self
            .base(String::new())
            .max_age(cookie::time::Duration::ZERO)
            .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
            .build();
        cookie.to_string()
    }

    fn base(&self, value: String) -> cookie::CookieBuilder<'static> {
        self.base_named(self.cookie_name().to_owned(), value)
    }

    fn base_named(&self, name: String, value: String) -> cookie::CookieBuilder<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(match self.same_site {
                SameSite::Lax => CookieSameSite::Lax,
                SameSite::Strict => CookieSameSite::Strict,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(values: &'a [&'a [u8]]) -> impl Iterator<Item = &'a [u8]> + 'a {
        values.iter().copied()
    }

    #[test]
    fn finds_the_token_among_other_cookies() {
        let config = CookieConfig::default();
        let token = Token::issue(1_800_000_000_000, false).unwrap();
        let line = format!("a=1; __Host-session={}; b=2", token.as_cookie_value());
        assert_eq!(config.token_from(headers(&[line.as_bytes()])), Some(token));
    }

    #[test]
    fn finds_the_token_next_to_odd_cookies_and_in_a_second_header() {
        let config = CookieConfig::default();
        let token = Token::issue(1_800_000_000_000, false).unwrap();
        let good = format!("__Host-session={}", token.as_cookie_value());
        let odd: &[u8] = b"x=\xff\xfe; novalue; =; __Host-sessionx=short";
        assert_eq!(
            config.token_from(headers(&[odd, good.as_bytes()])),
            Some(token.clone())
        );
        let spaced = format!("a=1;{} ;b=2", good);
        assert_eq!(
            config.token_from(headers(&[spaced.as_bytes()])),
            Some(token)
        );
        assert_eq!(config.token_from(headers(&[])), None);
    }

    #[test]
    fn malformed_cookies_give_no_token() {
        let config = CookieConfig::default();
        let long = format!("__Host-session={}", "A".repeat(8192));
        for bad in [
            &b"__Host-session=garbage"[..],
            long.as_bytes(),
            b"__Host-session=\xff\xfe\xfd",
            b"__Host-session=++++++++++++++++++++++++++++++++++++++++++8",
            b"session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            b";;;==;",
        ] {
            assert_eq!(config.token_from(headers(&[bad])), None, "{bad:?}");
        }
    }

    #[test]
    fn set_cookie_carries_the_secure_defaults() {
        let token = Token::issue(1_800_000_000_000, false).unwrap();
        let set = CookieConfig::default().set(&token, Some(Duration::from_secs(3600)));
        assert!(set.starts_with(&format!("__Host-session={}", token.as_cookie_value())));
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(set.contains(attr), "{set} lacks {attr}");
        }
        assert!(!set.contains("Domain"));
        let expired = CookieConfig::default().expire();
        assert!(expired.contains("Max-Age=0"));
        let dev = CookieConfig::default()
            .secure(false)
            .same_site(SameSite::Strict)
            .set(&token, None);
        assert!(dev.starts_with("session=") && !dev.contains("Secure") && dev.contains("Strict"));
        // Without a lifetime, a browser-session cookie: neither Max-Age nor Expires.
        assert!(
            !dev.contains("Max-Age") && !dev.contains("Expires"),
            "{dev}"
        );
    }

    #[test]
    fn two_cookies_of_our_name_give_no_token() {
        let config = CookieConfig::default();
        let a = Token::issue(1_800_000_000_000, false).unwrap();
        let b = Token::issue(1_800_000_000_000, false).unwrap();
        let (a, b) = (a.as_cookie_value(), b.as_cookie_value());
        for lines in [
            vec![format!("__Host-session={a}; __Host-session={b}")],
            vec![format!("__Host-session={a}; x=1; __Host-session={a}")],
            vec![format!("__Host-session=short; __Host-session={a}")],
            vec![format!("__Host-session={a}; __Host-session=")],
            vec![format!("__Host-session={a}"), format!("__Host-session={b}")],
        ] {
            let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            assert_eq!(config.token_from(headers(&lines)), None, "{lines:?}");
        }
    }
}
