//! The DBSC header fields, as RFC 9651 structured fields: the two a server sends are built here,
//! the two a browser sends are parsed here (with `sfv`, so that parameters of any type, which
//! the spec says to ignore, are skipped exactly as the RFC defines them).

use http::{HeaderName, HeaderValue};
use sfv::{BareItem, Item, KeyRef, ListSerializer, Parser, StringRef, TokenRef};

use super::{Algorithm, Challenge, DbscError};

/// `Secure-Session-Registration` (response): asks the browser to start a bound session; built by
/// [`registration_header`].
pub const SECURE_SESSION_REGISTRATION: HeaderName =
    HeaderName::from_static("secure-session-registration");

/// `Secure-Session-Challenge` (response): a challenge for the next proof of a session; built by
/// [`challenge_header`].
pub const SECURE_SESSION_CHALLENGE: HeaderName =
    HeaderName::from_static("secure-session-challenge");

/// `Secure-Session-Response` (request): the browser's proof; read by [`parse_response_header`].
pub const SECURE_SESSION_RESPONSE: HeaderName = HeaderName::from_static("secure-session-response");

/// `Sec-Secure-Session-Id` (request): the session a refresh is for; read by
/// [`parse_session_id_header`].
pub const SEC_SECURE_SESSION_ID: HeaderName = HeaderName::from_static("sec-secure-session-id");

const PATH: &KeyRef = KeyRef::constant("path");
const CHALLENGE: &KeyRef = KeyRef::constant("challenge");
const ID: &KeyRef = KeyRef::constant("id");

/// The `Secure-Session-Registration` value that asks a browser to register a bound session at
/// `path` (relative to the answered URL, or absolute), signing `challenge`:
/// `(ES256 RS256);path="…";challenge="…"` (an inner list of the algorithms this module verifies,
/// in order of preference).
///
/// ```
/// use session_core::dbsc::{registration_header, Challenge};
///
/// let challenge = Challenge::generate()?;
/// let value = registration_header("/dbsc/register", &challenge)?;
/// assert_eq!(
///     value.to_str().unwrap(),
///     format!(r#"(ES256 RS256);path="/dbsc/register";challenge="{challenge}""#),
/// );
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
///
/// # Errors
/// [`DbscError::Unsendable`] if `path` is not printable ASCII (a structured-field string holds
/// nothing else; percent-encode the path).
pub fn registration_header(path: &str, challenge: &Challenge) -> Result<HeaderValue, DbscError> {
    let path = StringRef::from_str(path).map_err(|_| DbscError::Unsendable("registration path"))?;
    let challenge = sf_string(challenge.as_str(), "challenge")?;
    let mut list = ListSerializer::new();
    let mut algorithms = list.inner_list();
    for algorithm in Algorithm::ALL {
        let _ = algorithms.bare_item(algorithm.token());
    }
    let _ = algorithms
        .finish()
        .parameter(PATH, path)
        .parameter(CHALLENGE, challenge);
    // A list with one member always serializes.
    let text = list.finish().unwrap_or_default();
    header_value(text)
}

/// The `Secure-Session-Challenge` value that gives the browser `challenge` for its next proof
/// for the session `session_id`: `"<challenge>";id="<session id>"`. Send it on a refresh answered
/// 403 (the browser signs it and retries at once) or on any answer, for the next refresh.
///
/// ```
/// use session_core::dbsc::{challenge_header, Challenge};
///
/// let challenge = Challenge::generate()?;
/// let value = challenge_header(&challenge, "session 1")?;
/// assert_eq!(value.to_str().unwrap(), format!(r#""{challenge}";id="session 1""#));
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
///
/// # Errors
/// [`DbscError::Unsendable`] if `session_id` is not printable ASCII.
pub fn challenge_header(challenge: &Challenge, session_id: &str) -> Result<HeaderValue, DbscError> {
    let challenge = sf_string(challenge.as_str(), "challenge")?;
    let id = sf_string(session_id, "session identifier")?;
    let text = sfv::ItemSerializer::new()
        .bare_item(challenge)
        .parameter(ID, id)
        .finish();
    header_value(text)
}

/// The proof (a compact JWS) in a `Secure-Session-Response` value: one structured-field string,
/// or a token as Chromium sends it (its parameters are ignored, as the spec says). The proof itself is
/// checked by [`verify_registration`](super::verify_registration) or
/// [`verify_refresh`](super::verify_refresh).
///
/// Pass the header's only value; a request with several lines of it, combined with `, `, is a
/// list and refused.
///
/// ```
/// use session_core::dbsc::{parse_response_header, DbscError};
///
/// assert_eq!(parse_response_header(r#""eyJ.eyJ.sig";p=1"#)?, "eyJ.eyJ.sig");
/// // Bare, as Chromium sends it (a structured-field token).
/// assert_eq!(parse_response_header("eyJ.eyJ.sig")?, "eyJ.eyJ.sig");
/// assert!(matches!(parse_response_header("\"eyJ"), Err(DbscError::MalformedHeader(_))));
/// # Ok::<(), DbscError>(())
/// ```
///
/// # Errors
/// [`DbscError::MalformedHeader`] if the value is not a structured-field string item.
pub fn parse_response_header(value: impl AsRef<[u8]>) -> Result<String, DbscError> {
    parse_string_item(value.as_ref(), "Secure-Session-Response")
}

/// The session identifier in a `Sec-Secure-Session-Id` value (one structured-field string; its
/// parameters are ignored).
///
/// ```
/// use session_core::dbsc::parse_session_id_header;
///
/// assert_eq!(parse_session_id_header(r#""session 1""#)?, "session 1");
/// assert_eq!(parse_session_id_header("s1")?, "s1"); // bare, as Chromium sends it
/// // Bare, and no structured-field token (a thumbprint may start with a digit, `-` or `_`).
/// assert_eq!(parse_session_id_header("4NFV-_x")?, "4NFV-_x");
/// assert!(parse_session_id_header("1 2").is_err());
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
///
/// # Errors
/// [`DbscError::MalformedHeader`] if the value is not a structured-field string item.
pub fn parse_session_id_header(value: impl AsRef<[u8]>) -> Result<String, DbscError> {
    parse_string_item(value.as_ref(), "Sec-Secure-Session-Id")
}

fn parse_string_item(value: &[u8], header: &'static str) -> Result<String, DbscError> {
    let item: Item = match Parser::new(value).parse() {
        Ok(item) => item,
        Err(_) => return bare_base64url(value, header),
    };
    match item.bare_item {
        BareItem::String(text) => Ok(text.into()),
        // Chromium (156, observed) sends the proof and the session identifier bare, as
        // structured-field tokens (a JWS is one: it starts with a letter and holds only
        // base64url characters and dots); the spec's examples quote them. Both are read.
        BareItem::Token(token) => Ok(token.as_str().to_owned()),
        _ => Err(DbscError::MalformedHeader(header)),
    }
}

/// A bare value that is no structured field at all: Chromium sends the session identifier
/// unquoted whatever it is, and a key thumbprint (base64url, 43 characters) starts with a
/// digit, `-` or `_` about one time in five, which no token does (a digit makes it a malformed
/// number). Read as it is when it is base64url (with the dots of a JWS), nothing else. (A
/// value that parses as another item, a number say, is still refused: no thumbprint does.)
fn bare_base64url(value: &[u8], header: &'static str) -> Result<String, DbscError> {
    let value = value.trim_ascii();
    let base64url = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if value.is_empty() || !value.iter().all(base64url) {
        return Err(DbscError::MalformedHeader(header));
    }
    // ASCII only, checked above.
    Ok(String::from_utf8_lossy(value).into_owned())
}

fn sf_string<'a>(text: &'a str, what: &'static str) -> Result<&'a StringRef, DbscError> {
    StringRef::from_str(text).map_err(|_| DbscError::Unsendable(what))
}

fn header_value(text: String) -> Result<HeaderValue, DbscError> {
    // Structured fields serialize to printable ASCII, which is always a valid header value.
    HeaderValue::try_from(text).map_err(|_| DbscError::Unsendable("header value"))
}

impl Algorithm {
    fn token(self) -> &'static TokenRef {
        match self {
            Algorithm::Es256 => TokenRef::constant("ES256"),
            Algorithm::Rs256 => TokenRef::constant("RS256"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_thumbprint_that_is_no_token_is_read_as_it_is() {
        // Session identifiers Chromium 156 sent to demo-web, unquoted.
        for id in [
            "4NFVJ25tQxRWrzQ48eZTzcF2IUdJOblWMwUkG1M1BpU",
            "-RXNN_85iZgL9Zi4V0tQ-C1V9M5pA7paZb0hl4B18c",
            "_0RXNN_85iZgL9Zi4V0tQ-C1V9M5pA7paZb0hl4B18c",
            "9a",
        ] {
            assert_eq!(parse_session_id_header(id).unwrap(), id);
            assert_eq!(parse_session_id_header(format!(" {id} ")).unwrap(), id);
        }
        for bad in ["", " ", "4a b", "4a;p=1", "4a\"", "4a,5b", "é"] {
            assert!(parse_session_id_header(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registration_header_lists_both_algorithms_and_quotes_parameters() {
        let challenge = Challenge("c".repeat(43));
        let value = registration_header("/a \"b\"\\c", &challenge).unwrap();
        assert_eq!(
            value.to_str().unwrap(),
            format!(
                r#"(ES256 RS256);path="/a \"b\"\\c";challenge="{}""#,
                "c".repeat(43)
            )
        );
    }

    #[test]
    fn unsendable_values_are_refused() {
        let challenge = Challenge("c".into());
        assert_eq!(
            registration_header("/é", &challenge),
            Err(DbscError::Unsendable("registration path"))
        );
        assert_eq!(
            challenge_header(&challenge, "a\nb"),
            Err(DbscError::Unsendable("session identifier"))
        );
    }

    #[test]
    fn string_and_token_items_parse_and_everything_else_is_refused() {
        assert_eq!(parse_session_id_header(r#" "a\"b" "#).unwrap(), "a\"b");
        assert_eq!(parse_response_header("a").unwrap(), "a");
        assert_eq!(
            parse_response_header("eyJ-_.eyJ.x_-").unwrap(),
            "eyJ-_.eyJ.x_-"
        );
        assert_eq!(
            parse_session_id_header(r#""a";x=?1;y=:AQ==:;z=@1"#).unwrap(),
            "a"
        );
        for bad in [
            "",
            "1",
            "?1",
            ":AQ==:",
            r#""a", "b""#,
            r#"("a")"#,
            r#""a"#,
            r#""a\x""#,
            "\"\u{e9}\"",
            r#""a";"#,
        ] {
            assert_eq!(
                parse_response_header(bad),
                Err(DbscError::MalformedHeader("Secure-Session-Response")),
                "{bad:?}"
            );
        }
        assert!(parse_response_header([b'"', 0xff, b'"']).is_err());
    }
}
