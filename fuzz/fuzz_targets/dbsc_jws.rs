//! DBSC's readers of what a browser (or anyone) sends, on arbitrary bytes: the request headers,
//! proofs (registration and refresh), `jwk`s and stored key bytes. Never a panic; a proof is
//! accepted only with its `jti` handed to the challenge check; whatever key is read encodes
//! back to bytes that read as the same key, and stored bytes are accepted only in the exact
//! form `to_bytes` writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::dbsc_key_from_jwk;
use session_core::dbsc::{
    parse_response_header, parse_session_id_header, verify_refresh_with, verify_registration_with,
    Algorithm, BoundKey,
};

/// A session bound to the P-256 base point (private key 1: the seed corpus holds a refresh
/// proof it signed, for the fuzzer to mutate).
const STORED: [u8; 66] = [
    1, 4, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
    0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
    0xf5,
];

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn same_key_again(key: &BoundKey) {
    let bytes = key.to_bytes();
    let again = BoundKey::from_bytes(&bytes).expect("a key's own bytes read back");
    assert_eq!(&again, key, "stored bytes name another key");
    assert_eq!(again.thumbprint(), key.thumbprint());
    assert_eq!(key.thumbprint().len(), 43);
}

fuzz_target!(|data: &[u8]| {
    // The request headers: a string read out quotes back to a value that reads the same.
    for text in [parse_response_header(data), parse_session_id_header(data)]
        .into_iter()
        .flatten()
    {
        assert_eq!(
            parse_session_id_header(quoted(&text)).as_deref(),
            Ok(text.as_str())
        );
    }

    // Proofs, as sent in the header or bare.
    let text = String::from_utf8_lossy(data);
    let proofs = [parse_response_header(data).ok(), Some(text.into_owned())];
    let session = BoundKey::from_bytes(&STORED).expect("the base point is a valid key");
    for proof in proofs.iter().flatten() {
        let mut asked = None;
        if let Ok(key) = verify_registration_with(proof, |jti| {
            asked = Some(jti.to_owned());
            true
        }) {
            assert!(asked.is_some_and(|jti| !jti.is_empty()));
            same_key_again(&key);
        }
        let mut asked = None;
        if verify_refresh_with(proof, &session, |jti| {
            asked = Some(jti.to_owned());
            true
        })
        .is_ok()
        {
            assert!(asked.is_some_and(|jti| !jti.is_empty()));
        }
        // A refusing challenge check refuses every proof.
        assert!(verify_refresh_with(proof, &session, |_| false).is_err());
    }

    // A `jwk` on its own.
    for alg in Algorithm::ALL {
        if let Some(key) = dbsc_key_from_jwk(data, alg) {
            assert_eq!(key.algorithm(), alg);
            same_key_again(&key);
        }
    }

    // Stored key bytes: only the canonical encoding reads.
    if let Ok(key) = BoundKey::from_bytes(data) {
        assert_eq!(
            key.to_bytes(),
            data,
            "non-canonical stored bytes were accepted"
        );
        same_key_again(&key);
    }
});
