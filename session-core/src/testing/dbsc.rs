//! A software DBSC client, for tests of servers that use [`crate::dbsc`]: a [`Device`] holding a
//! P-256 key in memory signs the proofs a browser would (exactly the shapes the spec and
//! Chromium send), forges the bad ones a test needs, and the browser's reading of the server's
//! headers ([`Registration::from_header`], [`challenges_from_header`]).
//!
//! A real browser keeps its key in a TPM or secure enclave; this one keeps it in memory, so it
//! is for tests only.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use rand::rngs::OsRng;
use rand::TryRngCore as _;
use serde_json::{json, Value};
use sfv::{BareItem, List, ListEntry, Parser};

use crate::dbsc::{BoundKey, PROOF_TYPE};

/// A browser's session key, in software: signs registration and refresh proofs with ES256.
///
/// ```
/// use session_core::dbsc::{verify_refresh, verify_registration, Challenge, DbscError};
/// use session_core::testing::dbsc::Device;
///
/// let device = Device::new();
/// let challenge = Challenge::generate()?;
/// let key = verify_registration(&device.registration_proof(challenge.as_str()), challenge.as_str())?;
/// assert_eq!(key, device.bound_key());
///
/// let next = Challenge::generate()?;
/// verify_refresh(&device.refresh_proof(next.as_str()), &key, next.as_str())?;
///
/// // Another device cannot refresh this session.
/// let thief = Device::new();
/// assert_eq!(
///     verify_refresh(&thief.refresh_proof(next.as_str()), &key, next.as_str()),
///     Err(DbscError::BadSignature)
/// );
/// # Ok::<(), DbscError>(())
/// ```
pub struct Device {
    key: SigningKey,
}

impl Device {
    /// A device with a new P-256 key from the OS random generator.
    ///
    /// # Panics
    /// If the OS random generator fails (test support: there is nothing better to do).
    pub fn new() -> Self {
        loop {
            let mut secret = [0u8; 32];
            OsRng
                .try_fill_bytes(&mut secret)
                .expect("the OS random generator failed");
            // Fails only for 0 or a value at or above the group order (odds about 2^-32).
            if let Ok(key) = SigningKey::from_slice(&secret) {
                return Self { key };
            }
        }
    }

    /// The key a server binds the session to when this device registers.
    pub fn bound_key(&self) -> BoundKey {
        let mut bytes = vec![1];
        bytes.extend_from_slice(self.point().as_bytes());
        BoundKey::from_bytes(&bytes).expect("a P-256 key's own point is valid")
    }

    /// The public key as the JWK a registration proof carries:
    /// `{"kty":"EC","crv":"P-256","x":…,"y":…}`.
    pub fn jwk(&self) -> Value {
        let point = self.point();
        let xy = &point.as_bytes()[1..];
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&xy[..32]),
            "y": URL_SAFE_NO_PAD.encode(&xy[32..]),
        })
    }

    /// The proof sent to the registration endpoint: header
    /// `{"alg":"ES256","typ":"dbsc+jwt","jwk":{…}}`, payload `{"jti":"<challenge>"}`.
    pub fn registration_proof(&self, challenge: &str) -> String {
        self.registration_proof_with_typ(challenge, PROOF_TYPE)
    }

    /// The proof sent to the refresh endpoint: header `{"alg":"ES256","typ":"dbsc+jwt"}` (no
    /// `jwk`), payload `{"jti":"<challenge>"}`.
    pub fn refresh_proof(&self, challenge: &str) -> String {
        self.sign(
            &json!({"alg": "ES256", "typ": PROOF_TYPE}),
            &json!({"jti": challenge}),
        )
    }

    /// A registration proof whose `typ` is `typ` (a forgery unless it is `dbsc+jwt`).
    pub fn registration_proof_with_typ(&self, challenge: &str, typ: &str) -> String {
        self.sign(
            &json!({"alg": "ES256", "typ": typ, "jwk": self.jwk()}),
            &json!({"jti": challenge}),
        )
    }

    /// A forgery: a registration proof that names this device's key in its `jwk` but is
    /// signed by `signer`'s.
    pub fn registration_proof_signed_by(&self, signer: &Device, challenge: &str) -> String {
        signer.sign(
            &json!({"alg": "ES256", "typ": PROOF_TYPE, "jwk": self.jwk()}),
            &json!({"jti": challenge}),
        )
    }

    /// A forgery: an unsigned proof, `alg` `none` and an empty signature (with this device's
    /// `jwk` when `with_jwk`, as a registration would carry it).
    pub fn unsigned_proof(&self, challenge: &str, with_jwk: bool) -> String {
        let mut header = json!({"alg": "none", "typ": PROOF_TYPE});
        if with_jwk {
            header["jwk"] = self.jwk();
        }
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(json!({"jti": challenge}).to_string())
        )
    }

    /// `header` and `payload` as JSON, signed with ES256 by this device, whatever they say (for
    /// proofs of any shape, well formed or not).
    pub fn sign(&self, header: &Value, payload: &Value) -> String {
        self.sign_raw(
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
        )
    }

    /// `header` and `payload` bytes (JSON or not), base64url-encoded and signed with ES256 by
    /// this device.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        // ES256 in JWS: `r || s`, 64 bytes, not DER.
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn point(&self) -> p256::Sec1Point {
        self.key.verifying_key().to_sec1_point(false)
    }
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("key", &self.bound_key())
            .finish_non_exhaustive()
    }
}

/// `text` as a structured-field string (quoted, `"` and `\` escaped): the form of the
/// `Secure-Session-Response` and `Sec-Secure-Session-Id` values a browser sends.
///
/// ```
/// use session_core::dbsc::parse_session_id_header;
/// use session_core::testing::dbsc::sf_string;
///
/// assert_eq!(sf_string(r#"a"b"#), r#""a\"b""#);
/// assert_eq!(parse_session_id_header(sf_string("session 1"))?, "session 1");
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
pub fn sf_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// One registration a `Secure-Session-Registration` header asks for, as a browser reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registration {
    /// The algorithms offered (the inner list's tokens), in order.
    pub algorithms: Vec<String>,
    /// Where to register (the `path` parameter).
    pub path: String,
    /// The challenge to sign (the `challenge` parameter), if any.
    pub challenge: Option<String>,
}

impl Registration {
    /// The registrations in a `Secure-Session-Registration` value, read as the spec's "process
    /// a session registration" does: an entry that is not an inner list, or lacks a string
    /// `path`, or has a non-string `challenge`, is skipped; an unparsable value gives none.
    ///
    /// ```
    /// use session_core::dbsc::{registration_header, Challenge};
    /// use session_core::testing::dbsc::Registration;
    ///
    /// let challenge = Challenge::generate()?;
    /// let value = registration_header("/dbsc/register", &challenge)?;
    /// let read = Registration::from_header(&value);
    /// assert_eq!(read.len(), 1);
    /// assert_eq!(read[0].algorithms, ["ES256", "RS256"]);
    /// assert_eq!(read[0].path, "/dbsc/register");
    /// assert_eq!(read[0].challenge.as_deref(), Some(challenge.as_str()));
    /// # Ok::<(), session_core::dbsc::DbscError>(())
    /// ```
    pub fn from_header(value: impl AsRef<[u8]>) -> Vec<Registration> {
        let Ok(list) = Parser::new(value.as_ref()).parse::<List>() else {
            return Vec::new();
        };
        list.into_iter()
            .filter_map(|entry| {
                let ListEntry::InnerList(inner) = entry else {
                    return None;
                };
                let path = match inner.params.get("path") {
                    Some(BareItem::String(path)) => path.as_str().to_owned(),
                    _ => return None,
                };
                let challenge = match inner.params.get("challenge") {
                    Some(BareItem::String(challenge)) => Some(challenge.as_str().to_owned()),
                    Some(_) => return None,
                    None => None,
                };
                let algorithms = inner
                    .items
                    .iter()
                    .filter_map(|item| match &item.bare_item {
                        BareItem::Token(token) => Some(token.as_str().to_owned()),
                        _ => None,
                    })
                    .collect();
                Some(Registration {
                    algorithms,
                    path,
                    challenge,
                })
            })
            .collect()
    }
}

/// The `(challenge, session identifier)` pairs in a `Secure-Session-Challenge` value, read as
/// the spec's "process a challenge" does: members that are not strings or lack a string `id`
/// are skipped; an unparsable value gives none.
///
/// ```
/// use session_core::dbsc::{challenge_header, Challenge};
/// use session_core::testing::dbsc::challenges_from_header;
///
/// let challenge = Challenge::generate()?;
/// let value = challenge_header(&challenge, "session 1")?;
/// assert_eq!(
///     challenges_from_header(&value),
///     [(challenge.as_str().to_owned(), "session 1".to_owned())]
/// );
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
pub fn challenges_from_header(value: impl AsRef<[u8]>) -> Vec<(String, String)> {
    let Ok(list) = Parser::new(value.as_ref()).parse::<List>() else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|entry| {
            let ListEntry::Item(item) = entry else {
                return None;
            };
            let BareItem::String(challenge) = item.bare_item else {
                return None;
            };
            match item.params.get("id") {
                Some(BareItem::String(id)) => {
                    Some((challenge.as_str().to_owned(), id.as_str().to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}
