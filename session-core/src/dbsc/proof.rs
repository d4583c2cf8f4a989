//! Proofs: the compact JWS a browser signs with its session key (`Secure-Session-Response`),
//! split and decoded here, its header and claims checked against the spec, and its signature
//! verified with RustCrypto (`p256`, `rsa`); no JOSE or signature arithmetic of our own.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::key::Jwk;
use super::{Algorithm, BoundKey, DbscError};

/// The `typ` every DBSC proof carries, exactly.
pub const PROOF_TYPE: &str = "dbsc+jwt";

/// The longest proof read, in bytes: an RS256 registration with a 4096-bit key is under 2 KiB.
/// Anything longer is refused before it is decoded.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The JOSE header members the spec defines (others are ignored, as JWS allows).
#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    jwk: Option<Map<String, Value>>,
    crit: Option<IgnoredAny>,
}

/// The claims checked. `authorization` (a copy of the registration header's parameter, which
/// we never send) and anything else are ignored.
#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
}

/// A proof split and decoded, its header checked for what both flows require; not yet verified.
struct Decoded<'a> {
    signing_input: &'a [u8],
    alg: Algorithm,
    jwk: Option<Map<String, Value>>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Verifies a registration proof: the JWS a browser sends (in `Secure-Session-Response`) to
/// the registration endpoint, and returns the key the session is to be bound to.
///
/// Checked, in this order: at most [`MAX_PROOF_LEN`] bytes, three base64url parts (no
/// padding), a JSON object header with `alg` ES256 or RS256 (`none`, `HS256` and all else are
/// refused), `typ` exactly `dbsc+jwt`, no `crit`, a `jwk` that is a public key of the
/// algorithm's type (EC P-256 on the curve for ES256, RSA of 2048 to 4096 bits for RS256), the
/// signature under that key, then a JSON object payload whose `jti` is `expected_challenge`.
/// The spec defines no `aud`, `iat` or `exp` claim, so none is required or checked: a proof is
/// only as fresh as its challenge, which the caller must issue per session, accept once, and
/// forget after a short while.
///
/// The [module documentation](super) shows a whole registration; a proof that is not signed at
/// all is refused before anything else is read:
///
/// ```
/// use session_core::dbsc::{verify_registration, DbscError};
///
/// // {"alg":"none","typ":"dbsc+jwt"} . {"jti":"c"} . (no signature)
/// let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiZGJzYytqd3QifQ.eyJqdGkiOiJjIn0.";
/// assert_eq!(verify_registration(unsigned, "c"), Err(DbscError::UnsupportedAlgorithm));
/// ```
///
/// # Errors
/// [`DbscError::Malformed`], [`DbscError::UnsupportedAlgorithm`], [`DbscError::WrongType`],
/// [`DbscError::MissingKey`], [`DbscError::InvalidKey`], [`DbscError::BadSignature`] or
/// [`DbscError::ChallengeMismatch`]: whichever check failed first.
pub fn verify_registration(jws: &str, expected_challenge: &str) -> Result<BoundKey, DbscError> {
    verify_registration_with(jws, |jti| jti == expected_challenge)
}

/// [`verify_registration`], with the challenge check left to `accept`: it is called with the
/// proof's `jti` once the signature is verified, and refuses the proof by returning `false`
/// (for a caller that keeps several outstanding challenges, or consumes one as it checks it).
///
#[cfg_attr(feature = "test-suite", doc = "```")]
#[cfg_attr(not(feature = "test-suite"), doc = "```ignore")]
/// use std::collections::HashSet;
/// use session_core::dbsc::{verify_registration_with, DbscError};
/// use session_core::testing::dbsc::Device;
///
/// let mut outstanding: HashSet<String> = ["c1".into(), "c2".into()].into();
/// let proof = Device::new().registration_proof("c2");
/// // Each challenge is good for one proof: it is taken out as it is accepted.
/// verify_registration_with(&proof, |jti| outstanding.remove(jti))?;
/// assert_eq!(
///     verify_registration_with(&proof, |jti| outstanding.remove(jti)),
///     Err(DbscError::ChallengeMismatch)
/// );
/// # Ok::<(), DbscError>(())
/// ```
///
/// # Errors
/// As [`verify_registration`]; [`DbscError::ChallengeMismatch`] when `accept` says no.
pub fn verify_registration_with(
    jws: &str,
    accept: impl FnOnce(&str) -> bool,
) -> Result<BoundKey, DbscError> {
    let proof = decode(jws)?;
    let Some(jwk) = proof.jwk else {
        return Err(DbscError::MissingKey);
    };
    let jwk: Jwk = serde_json::from_value(Value::Object(jwk))
        .map_err(|_| DbscError::InvalidKey("the jwk's members are not all strings"))?;
    let key = BoundKey::from_jwk(&jwk, proof.alg)?;
    key.verify(proof.signing_input, &proof.signature)?;
    check_claims(&proof.payload, accept)?;
    Ok(key)
}

/// Verifies a refresh proof: the JWS a browser sends to the refresh endpoint, which must be
/// signed by the session's registered `key` with the key's algorithm, carry no `jwk` (the spec
/// forbids one there, so no key can be swapped in), and answer `expected_challenge`.
///
/// The header and payload checks are those of [`verify_registration`].
///
#[cfg_attr(feature = "test-suite", doc = "```")]
#[cfg_attr(not(feature = "test-suite"), doc = "```ignore")]
/// use session_core::dbsc::{verify_refresh, DbscError};
/// use session_core::testing::dbsc::Device;
///
/// let (device, other) = (Device::new(), Device::new());
/// let key = device.bound_key(); // as registered
/// verify_refresh(&device.refresh_proof("c"), &key, "c")?;
/// assert_eq!(
///     verify_refresh(&other.refresh_proof("c"), &key, "c"),
///     Err(DbscError::BadSignature)
/// );
/// // A registration proof (it carries a jwk) is no refresh proof, even with the right key.
/// assert_eq!(
///     verify_refresh(&device.registration_proof("c"), &key, "c"),
///     Err(DbscError::UnexpectedKey)
/// );
/// # Ok::<(), DbscError>(())
/// ```
///
/// # Errors
/// [`DbscError::Malformed`], [`DbscError::UnsupportedAlgorithm`], [`DbscError::WrongType`],
/// [`DbscError::UnexpectedKey`], [`DbscError::AlgorithmMismatch`], [`DbscError::BadSignature`]
/// or [`DbscError::ChallengeMismatch`]: whichever check failed first.
pub fn verify_refresh(
    jws: &str,
    key: &BoundKey,
    expected_challenge: &str,
) -> Result<(), DbscError> {
    verify_refresh_with(jws, key, |jti| jti == expected_challenge)
}

/// [`verify_refresh`], with the challenge check left to `accept` (called with the proof's
/// `jti` once the signature is verified). The spec warns that a proof for an older challenge
/// may arrive after a newer one was issued: a caller that keeps the few most recent challenges
/// of a session checks against all of them here.
///
#[cfg_attr(feature = "test-suite", doc = "```")]
#[cfg_attr(not(feature = "test-suite"), doc = "```ignore")]
/// use session_core::dbsc::verify_refresh_with;
/// use session_core::testing::dbsc::Device;
///
/// let device = Device::new();
/// let recent = ["previous", "latest"];
/// let late = device.refresh_proof("previous");
/// verify_refresh_with(&late, &device.bound_key(), |jti| recent.contains(&jti))?;
/// # Ok::<(), session_core::dbsc::DbscError>(())
/// ```
///
/// # Errors
/// As [`verify_refresh`]; [`DbscError::ChallengeMismatch`] when `accept` says no.
pub fn verify_refresh_with(
    jws: &str,
    key: &BoundKey,
    accept: impl FnOnce(&str) -> bool,
) -> Result<(), DbscError> {
    let proof = decode(jws)?;
    if proof.jwk.is_some() {
        return Err(DbscError::UnexpectedKey);
    }
    if proof.alg != key.algorithm() {
        return Err(DbscError::AlgorithmMismatch {
            expected: key.algorithm(),
            got: proof.alg,
        });
    }
    key.verify(proof.signing_input, &proof.signature)?;
    check_claims(&proof.payload, accept)
}

fn decode(jws: &str) -> Result<Decoded<'_>, DbscError> {
    if jws.len() > MAX_PROOF_LEN {
        return Err(DbscError::Malformed("longer than 8 KiB"));
    }
    let mut parts = jws.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DbscError::Malformed(
            "not a compact JWS (three base64url parts joined by dots)",
        ));
    };
    // The JWS signing input: the first two parts as sent, with the dot between them.
    let signing_input = &jws.as_bytes()[..header.len() + 1 + payload.len()];
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| DbscError::Malformed("the header is not base64url without padding"))?;
    let header: Header = json_object(&header).ok_or(DbscError::Malformed(
        "the header is not a JSON object with a string alg",
    ))?;
    let alg = Algorithm::from_jose(&header.alg).ok_or(DbscError::UnsupportedAlgorithm)?;
    if header.typ.as_deref() != Some(PROOF_TYPE) {
        return Err(DbscError::WrongType);
    }
    // RFC 7515 § 4.1.11: extensions named critical must be understood; we understand none.
    if header.crit.is_some() {
        return Err(DbscError::Malformed(
            "critical header extensions (crit) are not supported",
        ));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| DbscError::Malformed("the payload is not base64url without padding"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| DbscError::Malformed("the signature is not base64url without padding"))?;
    Ok(Decoded {
        signing_input,
        alg,
        jwk: header.jwk,
        payload,
        signature,
    })
}

/// The payload's claims, read only once the signature is verified.
fn check_claims(payload: &[u8], accept: impl FnOnce(&str) -> bool) -> Result<(), DbscError> {
    let claims: Claims = json_object(payload).ok_or(DbscError::Malformed(
        "the payload is not a JSON object with a string jti",
    ))?;
    let jti = claims
        .jti
        .ok_or(DbscError::Malformed("the payload has no jti claim"))?;
    // An empty jti answers no challenge, whatever `accept` would say.
    if !jti.is_empty() && accept(&jti) {
        Ok(())
    } else {
        Err(DbscError::ChallengeMismatch)
    }
}

/// `bytes` as `T` if they are one JSON object: serde's derived structs also accept an array
/// (fields by position), which is no JOSE header or claims set.
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let first = bytes.iter().find(|b| !b" \t\n\r".contains(b));
    if first != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use sha2::{Digest as _, Sha256};

    use super::*;

    /// A 2048-bit RSA key for these tests only (PKCS#1 DER, base64).
    const RSA_TEST_KEY: &[&str] = &[
        "MIIEowIBAAKCAQEAqOWiUNrR0v2c67CljEhaTXQzunR5wkcNUO0u+r7MhBOMPBUwZRUt6vZ6dABMTSAWiO7lH5Qm",
        "Z4hyG//GfyO8a4V/ncFwxdCPwGWdGSb4mrt1wGu7Vae9RPs/drh415g/SEpQxP2eprAR8yWE5LPvQoxsqrmREHMp",
        "j2Rxh7l1NeAbfHPPtufAqAXBSM+Dy2yNxIh/1D8rPixH3gdOYrRK7UlSDy9kFZpEjE5mPqLhE9UEFuon7uAwlTpz",
        "P6joQvaT9RuEIy7E9lOyPeBQez6oGOev2tVpZs33mm0aIVKjw05Iq4Agiue0K1I6QUZmS6C46ahX/XGk5+NXqbat",
        "KLL+lQIDAQABAoIBAASxZMI0YlIng920qdTtCb1PNkS/CccRLFiMTprfBFXDKUleGVslrIHz2VEx1OzrsFSbtrga",
        "6LpFu0313HEZ8BlYu0QJ5PVKJ0RkTmotgAjkno/7Llhh8cth49CLrafn7hI3Jmli1q6xA76q0zd7nHFP75EK2PIJ",
        "ESWP1+u6hnw5s1qo+82hkG/V9PbVcXTTNNVMlCBw70ZJ07tQnGfqHtShp4bIbq7ALGEWGNaWtz6yEhe8q0TPYlTb",
        "9o68QhE7Ww9zEw+rL9Cpz3oX76n1sCVsRflFRbCWgfBJt8ZC5ZT0Ym6AqZLhb5GDReWpd8i1Di0w+50swUgQ9BDM",
        "rLF+GEECgYEA1TlxAQe/uvajRF4rD89OZ2BYphGh4bG4+sJAo+eYUttiNpeD2mAy2YqT0bSgFmLs4RdNJGXj4+Nb",
        "DFUnzVzvKN4Mhfq5M4DbtWKkfEarzN3te/QpIjyL+qz4UEFncDdOq59bIGFY7MzPd5N9z5GpTPYpJF4c33z4ODhj",
        "ZaeeKAUCgYEAysesSMN9NJdSWWD0i0ikUDa4k79fVJ+OJkmyvhao3jzaSsg6ucMPiTIFqWOx1wEigg8cYWBn9y/K",
        "9YI347izuxvRxI40sRxkbVXnX4lvji0AMSdOX+1bo/fEWWl0SnuOHAJKYn5Tz8+zoBrS7dzaemV8jtaHLQ1B++j/",
        "SFMAEVECgYEAlE+FE7NhIFnHjJl3mGKY5Xz1jGW9VPA6e2k8bwV7RT7FnLVdCDtbg0dJtFbP92JN4+9CQCwDDJMq",
        "1HQy4DxhOerhiRuxUGqz6AG56Zt6imBffJWDOwYkU3OWsLQdj8dYmDWau/YaVXPMZx8XJpbpzNd4HIy9xpH1UZ2f",
        "PakOcEUCgYAxym2HQFkR/MX/pErnmGKgP49619a0lKj2xcnZ2v6D8zU2f4vL6RV7fojdWtlkDadHgCZb0qw0icuw",
        "FNVcWRHos6ACP1i41FvkbN9vGfQGWQ5fA2O/Miz6SfAwdDBVyZjPT9Cr9pDlyf41JeD8/um2fAzllc+DRGobTM7C",
        "F39AwQKBgH3XACGtYr2ysOnNunuXggybkmOXojRyN0sDV58ezGpF/aSZEVz1oglS6qo2T5fc2tyNp4SGdldVP7K5",
        "eWOSNS2/ULj7REOhqrpBPZ3cZBzsQqnC22EP6htHhiwUM1D1njs7rMDalMvxQ1jhrKnNJ1fj4gzIzv4VYJS2x9uV",
        "1c4f",
    ];

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_key() -> rsa::PrivateKey {
        let der = base64::engine::general_purpose::STANDARD
            .decode(RSA_TEST_KEY.concat())
            .unwrap();
        rsa::PrivateKey::from_pkcs1_der(&der).unwrap()
    }

    fn rsa_jwk(key: &rsa::PrivateKey) -> Value {
        use rsa::traits::PublicKeyParts as _;
        serde_json::json!({"kty": "RSA", "n": b64(&key.n_bytes()), "e": b64(&key.e_bytes())})
    }

    fn rs256(key: &rsa::PrivateKey, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let signature = key
            .pkcs1v15_sign::<rsa::sha2::Sha256>(input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(&signature))
    }

    fn hs256(secret: &[u8], header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        // HMAC-SHA256 (RFC 2104), spelled out: the forgery needs no crate of its own.
        let mut block = [0u8; 64];
        if secret.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<_>>();
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(input.as_bytes())
            .finalize();
        let mac = Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize();
        format!("{input}.{}", b64(&mac))
    }

    #[test]
    fn rs256_registration_and_refresh_round_trip() {
        let private = rsa_key();
        let header =
            serde_json::json!({"alg": "RS256", "typ": "dbsc+jwt", "jwk": rsa_jwk(&private)});
        let proof = rs256(&private, &header, &serde_json::json!({"jti": "c1"}));
        let key = verify_registration(&proof, "c1").unwrap();
        assert_eq!(key.algorithm(), Algorithm::Rs256);
        assert_eq!(BoundKey::from_bytes(&key.to_bytes()).unwrap(), key);

        let refresh = rs256(
            &private,
            &serde_json::json!({"alg": "RS256", "typ": "dbsc+jwt"}),
            &serde_json::json!({"jti": "c2"}),
        );
        assert_eq!(verify_refresh(&refresh, &key, "c2"), Ok(()));
        assert_eq!(
            verify_refresh(&refresh, &key, "c1"),
            Err(DbscError::ChallengeMismatch)
        );
    }

    #[test]
    fn rs256_proof_with_an_ec_jwk_or_altered_signature_is_refused() {
        let private = rsa_key();
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
            "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"});
        let proof = rs256(
            &private,
            &serde_json::json!({"alg": "RS256", "typ": "dbsc+jwt", "jwk": ec}),
            &serde_json::json!({"jti": "c"}),
        );
        assert_eq!(
            verify_registration(&proof, "c"),
            Err(DbscError::InvalidKey("an RS256 jwk must have kty RSA"))
        );

        let proof = rs256(
            &private,
            &serde_json::json!({"alg": "RS256", "typ": "dbsc+jwt", "jwk": rsa_jwk(&private)}),
            &serde_json::json!({"jti": "c"}),
        );
        let (input, signature) = proof.rsplit_once('.').unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        signature[100] ^= 1;
        let altered = format!("{input}.{}", b64(&signature));
        assert_eq!(
            verify_registration(&altered, "c"),
            Err(DbscError::BadSignature)
        );
        let short = format!("{input}.{}", b64(&signature[1..]));
        assert_eq!(
            verify_registration(&short, "c"),
            Err(DbscError::BadSignature)
        );
    }

    /// The classic JWT confusion: the public key, known to the attacker, used as an HMAC
    /// secret. Refused on the algorithm alone, before any key is looked at.
    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        let private = rsa_key();
        let key = verify_registration(
            &rs256(
                &private,
                &serde_json::json!({"alg": "RS256", "typ": "dbsc+jwt", "jwk": rsa_jwk(&private)}),
                &serde_json::json!({"jti": "c"}),
            ),
            "c",
        )
        .unwrap();
        for secret in [key.to_bytes(), rsa_jwk(&private).to_string().into_bytes()] {
            let forged = hs256(
                &secret,
                &serde_json::json!({"alg": "HS256", "typ": "dbsc+jwt"}),
                &serde_json::json!({"jti": "c"}),
            );
            assert_eq!(
                verify_refresh(&forged, &key, "c"),
                Err(DbscError::UnsupportedAlgorithm)
            );
            let forged = hs256(
                &secret,
                &serde_json::json!({"alg": "HS256", "typ": "dbsc+jwt", "jwk": rsa_jwk(&private)}),
                &serde_json::json!({"jti": "c"}),
            );
            assert_eq!(
                verify_registration(&forged, "c"),
                Err(DbscError::UnsupportedAlgorithm)
            );
        }
    }

    #[test]
    fn hs256_signed_with_an_ec_public_key_is_refused() {
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
            "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"});
        let jwk_struct: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = BoundKey::from_jwk(&jwk_struct, Algorithm::Es256).unwrap();
        for secret in [
            key.to_bytes(),
            key.to_bytes()[1..].to_vec(),
            jwk.to_string().into_bytes(),
        ] {
            let forged = hs256(
                &secret,
                &serde_json::json!({"alg": "HS256", "typ": "dbsc+jwt"}),
                &serde_json::json!({"jti": "c"}),
            );
            assert_eq!(
                verify_refresh(&forged, &key, "c"),
                Err(DbscError::UnsupportedAlgorithm)
            );
        }
    }

    #[test]
    fn headers_and_payloads_must_be_json_objects() {
        let array = format!("{}.{}.AA", b64(br#"["ES256","dbsc+jwt"]"#), b64(b"{}"));
        assert!(matches!(
            verify_registration(&array, "c"),
            Err(DbscError::Malformed(_))
        ));
        let dup = format!(
            "{}.{}.AA",
            b64(br#"{"alg":"none","alg":"ES256","typ":"dbsc+jwt"}"#),
            b64(b"{}")
        );
        assert!(matches!(
            verify_registration(&dup, "c"),
            Err(DbscError::Malformed(_))
        ));
        let crit = format!(
            "{}.{}.AA",
            b64(br#"{"alg":"ES256","typ":"dbsc+jwt","crit":["exp"]}"#),
            b64(b"{}")
        );
        assert_eq!(
            verify_registration(&crit, "c"),
            Err(DbscError::Malformed(
                "critical header extensions (crit) are not supported"
            ))
        );
        assert!(json_object::<Claims>(b" \n{\"jti\":\"a\"}").is_some());
        assert!(json_object::<Claims>(b"[\"a\"]").is_none());
        assert!(json_object::<Claims>(b"").is_none());
    }
}
