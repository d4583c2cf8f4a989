//! Device Bound Session Credentials (DBSC), the protocol layer: what a server sends and checks,
//! with no storage of its own (feature `dbsc`).
//!
//! DBSC binds a session to a private key the browser keeps in hardware: the session's cookie is
//! short-lived, and the browser earns each new one by signing a fresh challenge. A stolen cookie
//! then works only until it expires, and the key it would take to refresh it cannot be copied
//! off the device.
//!
//! This module follows the W3C WebAppSec draft (`w3c/webappsec-dbsc`, `spec.bs` as of commit
//! `d346811`, 2026-02-17) and holds its parts, each usable alone:
//! - [`Challenge`]: 256 random bits for a proof to sign;
//! - the headers, as RFC 9651 structured fields: [`registration_header`] and
//!   [`challenge_header`] build what the server sends, [`parse_response_header`] and
//!   [`parse_session_id_header`] read what the browser sends;
//! - proofs: [`verify_registration`] checks the browser's self-signed registration JWS and
//!   returns the [`BoundKey`] to keep with the session; [`verify_refresh`] checks each later
//!   proof against that key;
//! - [`SessionInstructions`]: the JSON a registration or refresh answers with.
//!
//! It does not keep anything: which challenges were issued to which session and whether one was
//! used already, the key bytes, and the cookie's lifetime are the caller's (the store's) to keep.
//! A challenge must be accepted once and for a short while only: the proofs carry no time of
//! their own.
//!
//! # Register, then refresh
//! What a server does, with `session_core::testing::dbsc::Device` (a software browser, feature
//! `test-suite`) in the browser's place:
#![cfg_attr(feature = "test-suite", doc = "```")]
#![cfg_attr(not(feature = "test-suite"), doc = "```ignore")]
//! use session_core::dbsc::{self, BoundKey, Challenge, Credential, Scope, SessionInstructions};
//! use session_core::testing::dbsc::{sf_string, Device};
//!
//! let device = Device::new();
//!
//! // The login answer asks the browser to register; the challenge is kept with the session.
//! let challenge = Challenge::generate()?;
//! let registration = dbsc::registration_header("/dbsc/register", &challenge)?;
//!
//! // The browser posts its proof to /dbsc/register, in `Secure-Session-Response`.
//! let response = sf_string(&device.registration_proof(challenge.as_str()));
//! let proof = dbsc::parse_response_header(&response)?;
//! let key = dbsc::verify_registration(&proof, challenge.as_str())?;
//! let stored: Vec<u8> = key.to_bytes(); // kept with the session; the challenge is used up
//! let body = serde_json::to_string(&SessionInstructions::new(
//!     "session 1",
//!     Scope::origin("https://example.com"),
//!     vec![Credential::cookie("bound", "Path=/; Secure; HttpOnly")],
//! ).with_refresh_url("/dbsc/refresh"))
//! .unwrap();
//!
//! // The bound cookie expired: the browser posts to /dbsc/refresh with
//! // `Sec-Secure-Session-Id: "session 1"` and no proof, and gets 403 with a new challenge.
//! assert_eq!(dbsc::parse_session_id_header(sf_string("session 1"))?, "session 1");
//! let next = Challenge::generate()?;
//! let retry = dbsc::challenge_header(&next, "session 1")?;
//!
//! // It retries at once with a proof over the new challenge, signed by the registered key.
//! let proof = device.refresh_proof(next.as_str());
//! dbsc::verify_refresh(&proof, &BoundKey::from_bytes(&stored)?, next.as_str())?;
//!
//! // The same proof again, or one from another device, is refused.
//! let next_again = Challenge::generate()?;
//! assert!(dbsc::verify_refresh(&proof, &key, next_again.as_str()).is_err());
//! let thief = Device::new().refresh_proof(next.as_str());
//! assert!(dbsc::verify_refresh(&thief, &key, next.as_str()).is_err());
//! # let _ = (registration, body, retry);
//! # Ok::<(), dbsc::DbscError>(())
//! ```
//!
//! # What is verified, and what is not
//! - Proofs: `alg` ES256 or RS256 only (never `none` or an HMAC), `typ` exactly `dbsc+jwt`,
//!   no `crit`, a `jwk` on registration only, a valid key of the algorithm's type, the signature
//!   (with RustCrypto's `p256` and `rsa`), and the `jti` against the expected challenge, read
//!   only once the signature holds. Other claims are ignored.
//! - Not here: the `authorization` claim (we never send the registration header's
//!   `authorization` parameter), federated sessions (`provider_key`, `provider_session_id`,
//!   `provider_url`, the `.well-known` files), `Secure-Session-Skipped`, and algorithm `none`,
//!   which the spec allows a site to ask for but which binds nothing.

mod challenge;
mod error;
mod header;
mod instructions;
mod key;
mod proof;

pub use challenge::{Challenge, CHALLENGE_BYTES};
pub use error::DbscError;
pub use header::{
    challenge_header, parse_response_header, parse_session_id_header, registration_header,
    SECURE_SESSION_CHALLENGE, SECURE_SESSION_REGISTRATION, SECURE_SESSION_RESPONSE,
    SEC_SECURE_SESSION_ID,
};
pub use instructions::{
    Credential, CredentialType, RuleType, Scope, ScopeRule, SessionInstructions,
};
pub use key::{Algorithm, BoundKey};
pub use proof::{
    verify_refresh, verify_refresh_with, verify_registration, verify_registration_with,
    MAX_PROOF_LEN, PROOF_TYPE,
};

/// Fuzzing hooks: the `jwk` reading on its own.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_key_from_jwk(json: &[u8], alg: Algorithm) -> Option<BoundKey> {
    let jwk: key::Jwk = serde_json::from_slice(json).ok()?;
    BoundKey::from_jwk(&jwk, alg).ok()
}
