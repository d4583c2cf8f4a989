//! [`BearerConfig`]: the session's token carried in a request header instead of the cookie,
//! `Authorization: Bearer <token>` (RFC 6750 §2.1) by default, for clients without a cookie jar
//! (mobile apps, other servers, command-line tools); reading it from raw header bytes, and the
//! `WWW-Authenticate` challenge a 401 carries for such clients (RFC 6750 §3).

use crate::error::Error;
use crate::token::Token;

/// The challenge of a 401 on an app that accepts header tokens, when the request's token (if
/// any) was not found wanting.
pub(crate) const CHALLENGE: &str = "Bearer";

/// The challenge of a 401 for a request whose bearer token names no live session, or is
/// malformed (RFC 6750 §3.1).
pub(crate) const CHALLENGE_INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";

/// Where a session layer also looks for the session's token: a request header carrying
/// `Bearer <token>`, for API and mobile clients. Hand it to the layer with
/// `SessionLayer::with_bearer` (axum) or `SessionMiddleware::with_bearer` (actix-web); without
/// it, a layer reads the cookie only.
///
/// The token is the cookie's (the same format, store, expiry, rotation, guards, revocation,
/// limits and device list): only the way it travels differs. Per request:
///
/// | the request carries | its session | CSRF check |
/// |---|---|---|
/// | the session cookie | the cookie's | yes |
/// | `Bearer <token>` in the header | the header's; the answer never sets the cookie | no: a browser never adds the header on its own, so another site cannot make it send one |
/// | both | refused: 400 `bad_request`, before any handler (never a guess which one is meant) | — |
/// | neither (or a malformed one) | none | yes |
///
/// The scheme is matched without case (`bearer`, `BEARER`); another scheme (`Basic …`) is not
/// ours and is ignored. A malformed value, or two such headers, count as no token (401 on a
/// guarded route, never a 5xx). A 401 on the layer carries `WWW-Authenticate: Bearer`, with
/// `error="invalid_token"` when the request's bearer token named no live session.
///
/// A handler hands a token issued for a header client (at login, rotation, re-authentication)
/// to the client in its answer's body: see
/// [`AuthSession::issued_token`](crate::web::AuthSession::issued_token) and
/// [`AuthSession::use_header_transport`](crate::web::AuthSession::use_header_transport).
///
/// ```
/// use session_core::web::BearerConfig;
///
/// // `Authorization: Bearer <token>`
/// let standard = BearerConfig::default();
/// // `X-Session: Bearer <token>`, when `Authorization` belongs to something else (a gateway).
/// let own = BearerConfig::default().header("X-Session")?;
/// assert!(BearerConfig::default().header("no spaces allowed").is_err());
/// # Ok::<(), session_core::Error>(())
/// ```
///
/// **Security:** a header token is kept by the client where its own code can read it (unlike
/// the `HttpOnly` cookie, which no script can), so a script injected into a web page that keeps
/// one can take it away; keep header tokens to clients that are not web pages. Proxies and
/// servers that log request headers log the token: keep `Authorization` out of such logs, as
/// you keep `Cookie` out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerConfig {
    /// The header's name as given (HTTP header names are compared without case).
    header: String,
}

impl Default for BearerConfig {
    /// `Authorization: Bearer <token>`.
    fn default() -> Self {
        Self {
            header: "Authorization".to_owned(),
        }
    }
}

impl BearerConfig {
    /// Reads `Bearer <token>` from the header `name` instead of `Authorization`, for an app
    /// whose `Authorization` header belongs to something else (a gateway's own token). The
    /// value keeps the `Bearer ` scheme, so one client code path serves both.
    ///
    /// # Errors
    /// [`Error::Config`] when `name` is not an HTTP header name, or is `Cookie` (a header every
    /// browser adds on its own: the CSRF check would be skipped for the cookie's requests).
    pub fn header(mut self, name: &str) -> Result<Self, Error> {
        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
        if !valid || name.eq_ignore_ascii_case("cookie") {
            return Err(Error::Config(format!(
                "bearer header {name:?}: expected an HTTP header name other than Cookie, \
                 e.g. Authorization or X-Session"
            )));
        }
        self.header = name.to_owned();
        Ok(self)
    }

    /// The header's name.
    pub(crate) fn header_name(&self) -> &str {
        &self.header
    }

    /// What the request's headers of our name carry (`values`: the raw value of each, in
    /// order; each framework adapter hands them over as bytes). Only `Bearer`-scheme values
    /// are ours: none gives [`Bearer::Absent`], one well-formed token [`Bearer::Token`], and a
    /// malformed one, or two (whichever is live), [`Bearer::Malformed`], without any store
    /// access.
    pub(crate) fn token_from<'a>(&self, values: impl IntoIterator<Item = &'a [u8]>) -> Bearer {
        let mut ours = values.into_iter().filter_map(bearer_credentials);
        let Some(credentials) = ours.next() else {
            return Bearer::Absent;
        };
        if ours.next().is_some() {
            return Bearer::Malformed;
        }
        match Token::parse_bytes(credentials) {
            Ok(token) => Bearer::Token(token),
            Err(_) => Bearer::Malformed,
        }
    }
}

/// What a request's bearer header carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bearer {
    /// No `Bearer` credentials (no header, or another scheme).
    Absent,
    /// `Bearer` credentials that are no token of ours: a malformed one, or two.
    Malformed,
    /// One well-formed token (live or not: the store decides).
    Token(Token),
}

/// The credentials of a `Bearer`-scheme value (`"Bearer" 1*SP token`, the scheme in any case),
/// or `None` for another scheme. Surrounding whitespace is ignored, as HTTP parsers do.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let end = value
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(value.len());
    let (scheme, credentials) = value.split_at(end);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| credentials.trim_ascii_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token::issue(1_800_000_000_000, false).unwrap()
    }

    fn read(values: &[&[u8]]) -> Bearer {
        BearerConfig::default().token_from(values.iter().copied())
    }

    #[test]
    fn the_scheme_is_matched_without_case() {
        let token = token();
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let value = format!("{scheme} {}", token.as_cookie_value());
            assert_eq!(
                read(&[value.as_bytes()]),
                Bearer::Token(token.clone()),
                "{scheme}"
            );
        }
        // Several spaces after the scheme (1*SP), and whitespace around the value.
        let spaced = format!("  Bearer   {} ", token.as_cookie_value());
        assert_eq!(read(&[spaced.as_bytes()]), Bearer::Token(token));
    }

    #[test]
    fn malformed_bearer_values_give_no_token() {
        let good = token().as_cookie_value();
        let long = format!("Bearer {}", "A".repeat(8192));
        let inner_space = format!("Bearer {} {}", &good[..10], &good[10..]);
        let with_comma = format!("Bearer {good}, Bearer {good}");
        let quoted = format!("Bearer \"{good}\"");
        let bad: Vec<&[u8]> = vec![
            b"Bearer",
            b"Bearer ",
            b"Bearer garbage",
            b"Bearer \xff\xfe\xfd",
            b"Bearer ++++++++++++++++++++++++++++++++++++++++++++++++++8",
            long.as_bytes(),
            inner_space.as_bytes(),
            with_comma.as_bytes(),
            quoted.as_bytes(),
        ];
        for value in bad {
            assert_eq!(read(&[value]), Bearer::Malformed, "{value:?}");
        }
    }

    #[test]
    fn other_schemes_and_no_header_are_absent() {
        let good = token().as_cookie_value();
        let basic = format!("Basic {good}");
        let glued = format!("Bearer{good}");
        for values in [
            vec![],
            vec![basic.as_bytes()],
            vec![glued.as_bytes()],
            vec![good.as_bytes()],
            vec![&b""[..]],
        ] {
            assert_eq!(read(&values), Bearer::Absent, "{values:?}");
        }
    }

    #[test]
    fn two_bearer_headers_give_no_token() {
        let (a, b) = (token(), token());
        let a = format!("Bearer {}", a.as_cookie_value());
        let b = format!("Bearer {}", b.as_cookie_value());
        assert_eq!(read(&[a.as_bytes(), b.as_bytes()]), Bearer::Malformed);
        assert_eq!(read(&[a.as_bytes(), a.as_bytes()]), Bearer::Malformed);
        // Another scheme next to ours leaves ours alone.
        let token = match read(&[b"Basic dXNlcjpwYXNz", a.as_bytes()]) {
            Bearer::Token(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(format!("Bearer {}", token.as_cookie_value()), a);
    }

    #[test]
    fn the_header_name_must_be_one() {
        assert_eq!(
            BearerConfig::default()
                .header("X-Session")
                .unwrap()
                .header_name(),
            "X-Session"
        );
        for bad in ["", "two words", "x:y", "Cookie", "cookie", "é"] {
            assert!(
                matches!(BearerConfig::default().header(bad), Err(Error::Config(_))),
                "{bad:?}"
            );
        }
    }
}
