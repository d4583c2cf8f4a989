//! What can go wrong in the DBSC protocol layer.

use super::Algorithm;

/// Why a DBSC header, proof or key was refused (or a challenge could not be issued).
///
/// Every variant but [`Entropy`](Self::Entropy) and [`Unsendable`](Self::Unsendable) is the
/// client's fault: answer it with a 4xx (the spec's refresh flow expects 403 with a new
/// challenge). Messages name what was wrong and never quote the proof, a key or any other text
/// the client sent, so they are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbscError {
    /// The operating system's random generator failed, so no challenge was issued.
    #[error("the operating system's random generator failed ({0}); no DBSC challenge was issued")]
    Entropy(String),
    /// A value we were asked to send (a path, a session identifier) cannot be a structured-field
    /// string: those hold printable ASCII only.
    #[error("the DBSC {0} cannot be sent in a structured header: only printable ASCII is allowed")]
    Unsendable(&'static str),
    /// A request header (named here) is not one structured-field string.
    #[error("malformed {0} header: expected one structured-field string")]
    MalformedHeader(&'static str),
    /// The proof is not a well-formed compact JWS with JSON header and payload (the reason says
    /// which part).
    #[error("malformed DBSC proof: {0}")]
    Malformed(&'static str),
    /// The proof's `alg` is not ES256 or RS256: `none`, the HMAC family and everything else are
    /// refused.
    #[error("the DBSC proof's algorithm is not accepted (only ES256 and RS256 are)")]
    UnsupportedAlgorithm,
    /// The proof's `typ` is missing or not exactly `dbsc+jwt`.
    #[error("the DBSC proof's typ is not \"dbsc+jwt\"")]
    WrongType,
    /// A registration proof without the public key (`jwk`) it is signed with.
    #[error("the DBSC registration proof carries no jwk (the client's public key)")]
    MissingKey,
    /// A refresh proof with a `jwk`: the spec forbids it, the session's key is the one registered.
    #[error(
        "a DBSC refresh proof must not carry a jwk; the session is bound to its registered key"
    )]
    UnexpectedKey,
    /// The public key is unusable: wrong type or curve for the algorithm, a point not on the
    /// curve, a too small RSA modulus, missing members, or undecodable stored bytes.
    #[error("invalid DBSC public key: {0}")]
    InvalidKey(&'static str),
    /// A refresh proof signed with another algorithm than the session's key.
    #[error("the DBSC proof is signed with {got}, but the session is bound to an {expected} key")]
    AlgorithmMismatch {
        /// The bound key's algorithm.
        expected: Algorithm,
        /// The proof's `alg`.
        got: Algorithm,
    },
    /// The signature does not verify under the key (another key signed it, or it was altered).
    #[error("the DBSC proof's signature does not verify under the key")]
    BadSignature,
    /// The proof answers another challenge than the one expected (replayed, stale or foreign).
    #[error("the DBSC proof answers another challenge (jti) than the one issued")]
    ChallengeMismatch,
}
