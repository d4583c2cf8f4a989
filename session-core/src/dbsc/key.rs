//! The public key a session is bound to: read from a registration proof's `jwk`, kept as compact
//! bytes in the session record, and used to verify every later proof.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use rsa::BoxedUint;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::DbscError;

/// A proof's signature algorithm: the two of the spec's three that sign (`none` does not, and
/// is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256 (what browsers use, keys in a TPM or secure enclave).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for 2048- to 4096-bit keys (for TPMs without P-256).
    Rs256,
}

impl Algorithm {
    /// Every algorithm this module verifies, in the order a registration header offers them.
    pub const ALL: [Algorithm; 2] = [Algorithm::Es256, Algorithm::Rs256];

    /// The JOSE name (`ES256`, `RS256`), as in a proof's `alg` and the registration header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// The algorithm a proof's `alg` names, exactly (case-sensitive, as JOSE is).
    pub(super) fn from_jose(alg: &str) -> Option<Self> {
        match alg {
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tag bytes of [`BoundKey::to_bytes`]: one per algorithm, never reused.
const TAG_ES256: u8 = 1;
const TAG_RS256: u8 = 2;
/// A SEC1 uncompressed P-256 point: `04 || x || y`.
const P256_POINT_LEN: usize = 65;
const P256_COORDINATE_LEN: usize = 32;
/// RSA moduli accepted, in bits: 2048 is the smallest key still considered safe; 4096 bounds
/// the work an attacker's registration can cost us.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;
/// The largest public exponent `rsa` accepts (2^33 - 1) fits in five bytes.
const RSA_MAX_EXPONENT_LEN: usize = 5;

/// The public key a DBSC session is bound to, with its algorithm.
///
/// It comes from a verified registration proof
/// ([`verify_registration`](super::verify_registration)), is stored with the session as
/// [`to_bytes`](Self::to_bytes) (66 bytes for ES256, about 260 to 520 for RS256) and read back with
/// [`from_bytes`](Self::from_bytes), which checks the bytes as thoroughly as a `jwk` from the
/// network: stored bytes are not trusted to be well formed.
///
/// `Debug` shows the algorithm and the [thumbprint](Self::thumbprint); a public key is not a
/// secret.
///
/// ```
/// use session_core::dbsc::{Algorithm, BoundKey};
///
/// // The P-256 base point as a stored key (a real one comes from a registration proof).
/// let mut bytes = vec![1, 4];
/// bytes.extend_from_slice(&[
///     0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
///     0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98,
///     0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c,
///     0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68,
///     0x37, 0xbf, 0x51, 0xf5,
/// ]);
/// let key = BoundKey::from_bytes(&bytes)?;
/// assert_eq!(key.algorithm(), Algorithm::Es256);
/// assert_eq!(key.to_bytes(), bytes);
/// assert_eq!(key.thumbprint().len(), 43);
///
/// bytes[10] ^= 1; // no longer a point on the curve
/// assert!(BoundKey::from_bytes(&bytes).is_err());
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BoundKey(Inner);

#[derive(Clone, PartialEq, Eq)]
enum Inner {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(rsa::PublicKey),
}

impl BoundKey {
    /// The algorithm every proof of this session must be signed with.
    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            Inner::Es256(_) => Algorithm::Es256,
            Inner::Rs256(_) => Algorithm::Rs256,
        }
    }

    /// The key's compact encoding, to store with the session: a tag byte (1 for ES256, 2 for
    /// RS256), then for ES256 the SEC1 uncompressed point (`04 || x || y`), for RS256 the
    /// modulus' length (2 bytes, big-endian), the modulus and the exponent (big-endian, without
    /// leading zeros).
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.0 {
            Inner::Es256(key) => {
                let point = key.to_sec1_point(false);
                let mut bytes = Vec::with_capacity(1 + P256_POINT_LEN);
                bytes.push(TAG_ES256);
                bytes.extend_from_slice(point.as_bytes());
                bytes
            }
            Inner::Rs256(key) => {
                let (n, e) = (key.n_bytes(), key.e_bytes());
                let mut bytes = Vec::with_capacity(3 + n.len() + e.len());
                bytes.push(TAG_RS256);
                // At most 512 bytes (4096 bits), checked when the key was made.
                bytes.extend_from_slice(&u16::try_from(n.len()).unwrap_or(u16::MAX).to_be_bytes());
                bytes.extend_from_slice(&n);
                bytes.extend_from_slice(&e);
                bytes
            }
        }
    }

    /// Reads a key stored with [`to_bytes`](Self::to_bytes). Only the exact encoding `to_bytes`
    /// writes is accepted (so that `from_bytes(b)?.to_bytes() == b`).
    ///
    /// # Errors
    /// [`DbscError::InvalidKey`] for an unknown tag, a wrong length, a point not on P-256, an
    /// RSA key outside 2048 to 4096 bits or with a bad exponent, or non-canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DbscError> {
        match bytes.split_first() {
            Some((&TAG_ES256, point)) => {
                if point.len() != P256_POINT_LEN || point[0] != 4 {
                    return Err(DbscError::InvalidKey(
                        "a stored P-256 key must be an uncompressed point",
                    ));
                }
                p256_from_sec1(point)
            }
            Some((&TAG_RS256, rest)) => {
                let Some((len, rest)) = rest.split_first_chunk::<2>() else {
                    return Err(DbscError::InvalidKey("a stored RSA key is truncated"));
                };
                let n_len = usize::from(u16::from_be_bytes(*len));
                if rest.len() <= n_len {
                    return Err(DbscError::InvalidKey("a stored RSA key is truncated"));
                }
                let (n, e) = rest.split_at(n_len);
                rsa_from_parts(n, e)
            }
            _ => Err(DbscError::InvalidKey("unknown stored key type")),
        }
    }

    /// The key's JWK thumbprint (RFC 7638: SHA-256 of its required members, base64url without
    /// padding, 43 characters): the same value a browser computes, stable across encodings, and
    /// safe to log next to the session identifier.
    pub fn thumbprint(&self) -> String {
        // The required members in lexicographic order, no whitespace (RFC 7638 § 3.2); the
        // base64url values need no JSON escaping.
        let canonical = match &self.0 {
            Inner::Es256(key) => {
                let point = key.to_sec1_point(false);
                let xy = &point.as_bytes()[1..];
                let (x, y) = xy.split_at(xy.len() / 2);
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(x),
                    URL_SAFE_NO_PAD.encode(y)
                )
            }
            Inner::Rs256(key) => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(key.e_bytes()),
                URL_SAFE_NO_PAD.encode(key.n_bytes())
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The key a registration proof's `jwk` names, for a proof signed with `alg`.
    pub(super) fn from_jwk(jwk: &Jwk, alg: Algorithm) -> Result<Self, DbscError> {
        if jwk.d.is_some() {
            return Err(DbscError::InvalidKey("the jwk carries a private key"));
        }
        if jwk.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return Err(DbscError::InvalidKey("the jwk's alg is not the proof's"));
        }
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(DbscError::InvalidKey("the jwk is not a signing key (use)"));
        }
        match alg {
            Algorithm::Es256 => {
                if jwk.kty.as_deref() != Some("EC") {
                    return Err(DbscError::InvalidKey("an ES256 jwk must have kty EC"));
                }
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err(DbscError::InvalidKey("an ES256 jwk must have crv P-256"));
                }
                let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
                    return Err(DbscError::InvalidKey("an EC jwk needs x and y"));
                };
                let (x, y) = (b64(x)?, b64(y)?);
                if x.len() != P256_COORDINATE_LEN || y.len() != P256_COORDINATE_LEN {
                    return Err(DbscError::InvalidKey(
                        "P-256 coordinates must be 32 bytes each",
                    ));
                }
                let mut point = Vec::with_capacity(P256_POINT_LEN);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                p256_from_sec1(&point)
            }
            Algorithm::Rs256 => {
                if jwk.kty.as_deref() != Some("RSA") {
                    return Err(DbscError::InvalidKey("an RS256 jwk must have kty RSA"));
                }
                let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
                    return Err(DbscError::InvalidKey("an RSA jwk needs n and e"));
                };
                rsa_from_parts(&b64(n)?, &b64(e)?)
            }
        }
    }

    /// Checks `signature` over `message` (a JWS signing input) under this key.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), DbscError> {
        match &self.0 {
            Inner::Es256(key) => {
                // JWS ES256 signatures are `r || s`, 32 bytes each (RFC 7518 § 3.4), not DER.
                let signature = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| DbscError::BadSignature)?;
                key.verify(message, &signature)
                    .map_err(|_| DbscError::BadSignature)
            }
            Inner::Rs256(key) => key
                .pkcs1v15_verify::<rsa::sha2::Sha256>(message, signature)
                .map_err(|_| DbscError::BadSignature),
        }
    }
}

impl fmt::Debug for BoundKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundKey")
            .field("alg", &format_args!("{}", self.algorithm()))
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

/// A `jwk` header member as sent: every member optional here, so that a missing one is reported
/// as a bad key rather than a malformed proof.
#[derive(Deserialize)]
pub(super) struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    /// A private key's member: its presence alone is refused.
    d: Option<serde::de::IgnoredAny>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
}

fn b64(text: &str) -> Result<Vec<u8>, DbscError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| DbscError::InvalidKey("a jwk member is not base64url without padding"))
}

fn p256_from_sec1(point: &[u8]) -> Result<BoundKey, DbscError> {
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map(|key| BoundKey(Inner::Es256(key)))
        .map_err(|_| DbscError::InvalidKey("the point is not on P-256"))
}

fn rsa_from_parts(n: &[u8], e: &[u8]) -> Result<BoundKey, DbscError> {
    if n.first().is_none_or(|&b| b == 0) || e.first().is_none_or(|&b| b == 0) {
        return Err(DbscError::InvalidKey(
            "RSA n and e must be unsigned big-endian without leading zeros",
        ));
    }
    if n.len() > RSA_MAX_BITS / 8 || e.len() > RSA_MAX_EXPONENT_LEN {
        return Err(DbscError::InvalidKey(
            "RSA keys above 4096 bits or exponents above 2^33 are refused",
        ));
    }
    rsa::PublicKey::new_with_size_limits(
        BoxedUint::from_be_slice_vartime(n),
        BoxedUint::from_be_slice_vartime(e),
        RSA_MIN_BITS..=RSA_MAX_BITS,
    )
    .map(|key| BoundKey(Inner::Rs256(key)))
    .map_err(|err| {
        DbscError::InvalidKey(match err {
            rsa::Error::ModulusTooSmall => "RSA keys below 2048 bits are refused",
            rsa::Error::ModulusTooLarge => "RSA keys above 4096 bits are refused",
            _ => "not a valid RSA public key (n must be odd, e odd and from 3 to 2^33 - 1)",
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(json: &str) -> Jwk {
        serde_json::from_str(json).unwrap()
    }

    /// The RFC 7638 § 3.1 example key and its thumbprint.
    #[test]
    fn rsa_thumbprint_matches_rfc_7638() {
        let key = BoundKey::from_jwk(
            &jwk(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#),
            Algorithm::Rs256,
        )
        .unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(BoundKey::from_bytes(&key.to_bytes()).unwrap(), key);
    }

    #[test]
    fn stored_keys_must_be_canonical() {
        let rsa = BoundKey::from_jwk(
            &jwk(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}"#),
            Algorithm::Rs256,
        )
        .unwrap();
        let bytes = rsa.to_bytes();
        assert_eq!(&bytes[..3], &[2, 1, 0]);
        // A leading zero on the exponent: the same number, another encoding.
        let mut padded = bytes.clone();
        padded.insert(3 + 256, 0);
        assert!(BoundKey::from_bytes(&padded).is_err());
        // Truncations of every length are refused, never a panic.
        for len in 0..bytes.len() {
            assert!(BoundKey::from_bytes(&bytes[..len]).is_err(), "{len}");
        }
        assert!(BoundKey::from_bytes(&[3, 4]).is_err());
    }

    #[test]
    fn bad_jwks_say_what_is_wrong() {
        let g = r#""x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU""#;
        let cases = [
            (
                format!(r#"{{"kty":"EC","crv":"P-256",{g},"d":"AA"}}"#),
                "the jwk carries a private key",
            ),
            (
                format!(r#"{{"kty":"EC","crv":"P-384",{g}}}"#),
                "an ES256 jwk must have crv P-256",
            ),
            (
                format!(r#"{{"kty":"RSA","crv":"P-256",{g}}}"#),
                "an ES256 jwk must have kty EC",
            ),
            (
                format!(r#"{{"kty":"EC","crv":"P-256",{g},"alg":"RS256"}}"#),
                "the jwk's alg is not the proof's",
            ),
            (
                format!(r#"{{"kty":"EC","crv":"P-256",{g},"use":"enc"}}"#),
                "the jwk is not a signing key (use)",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY"}"#
                    .to_string(),
                "an EC jwk needs x and y",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#.to_string(),
                "P-256 coordinates must be 32 bytes each",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfQ"}"#.to_string(),
                "the point is not on P-256",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY=","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}"#.to_string(),
                "a jwk member is not base64url without padding",
            ),
        ];
        for (json, reason) in cases {
            assert_eq!(
                BoundKey::from_jwk(&jwk(&json), Algorithm::Es256),
                Err(DbscError::InvalidKey(reason)),
                "{json}"
            );
        }
        assert!(BoundKey::from_jwk(
            &jwk(&format!(r#"{{"kty":"EC","crv":"P-256",{g}}}"#)),
            Algorithm::Es256
        )
        .is_ok());
        assert_eq!(
            BoundKey::from_jwk(
                &jwk(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#),
                Algorithm::Rs256
            ),
            Err(DbscError::InvalidKey(
                "RSA keys below 2048 bits are refused"
            ))
        );
        assert_eq!(
            BoundKey::from_jwk(&jwk(r#"{"kty":"RSA","e":"AQAB"}"#), Algorithm::Rs256),
            Err(DbscError::InvalidKey("an RSA jwk needs n and e"))
        );
    }
}
