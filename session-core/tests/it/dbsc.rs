//! Device Bound Session Credentials, the protocol layer (`session_core::dbsc`), driven by the
//! software browser (`testing::dbsc::Device`): a registration and its refreshes go through, and
//! every forgery the spec's threat model names is refused with the error that says why, without
//! a panic and without the proof in the message.

use std::cell::Cell;

use proptest::prelude::*;
use serde_json::json;
use session_core::dbsc::{
    self, challenge_header, parse_response_header, parse_session_id_header, registration_header,
    verify_refresh, verify_refresh_with, verify_registration, verify_registration_with, Algorithm,
    BoundKey, Challenge, DbscError,
};
use session_core::testing::dbsc::{challenges_from_header, sf_string, Device, Registration};

fn challenge() -> Challenge {
    Challenge::generate().unwrap()
}

/// `result` is the error `expected`, and its message quotes no part of `proof`.
#[track_caller]
fn refused<T: std::fmt::Debug>(proof: &str, result: Result<T, DbscError>, expected: DbscError) {
    let err = result.unwrap_err();
    assert_eq!(err, expected);
    let message = err.to_string();
    for part in proof.split('.').filter(|part| part.len() >= 8) {
        assert!(!message.contains(part), "{message:?} quotes the proof");
    }
}

/// The registration proof's header as a JSON value, with `edit` applied, signed by `device`.
fn registration_with(
    device: &Device,
    c: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut header = json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk()});
    edit(&mut header);
    device.sign(&header, &json!({"jti": c}))
}

#[test]
fn registration_then_refreshes_round_trip_through_the_headers() {
    let device = Device::new();
    let c = challenge();

    let offered = registration_header("/dbsc/register", &c).unwrap();
    let read = Registration::from_header(offered.as_bytes());
    assert_eq!(read[0].algorithms, ["ES256", "RS256"]);
    assert_eq!(read[0].path, "/dbsc/register");
    let signed = read[0].challenge.clone().unwrap();

    let sent = sf_string(&device.registration_proof(&signed));
    let key = verify_registration(&parse_response_header(&sent).unwrap(), c.as_str()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Es256);
    assert_eq!(key, device.bound_key());

    let stored = key.to_bytes();
    assert_eq!(stored.len(), 66);
    for _ in 0..3 {
        let next = challenge();
        let offered = challenge_header(&next, "session 1").unwrap();
        let [(signed, id)] = &challenges_from_header(offered.as_bytes())[..] else {
            panic!("one challenge expected");
        };
        assert_eq!(parse_session_id_header(sf_string(id)).unwrap(), "session 1");
        let proof = parse_response_header(sf_string(&device.refresh_proof(signed))).unwrap();
        let key = BoundKey::from_bytes(&stored).unwrap();
        verify_refresh(&proof, &key, next.as_str()).unwrap();
    }
}

#[test]
fn thumbprint_is_stable_and_debug_shows_no_more_than_the_public_key() {
    let device = Device::new();
    let key = device.bound_key();
    let again = BoundKey::from_bytes(&key.to_bytes()).unwrap();
    assert_eq!(key.thumbprint(), again.thumbprint());
    assert_eq!(key.thumbprint().len(), 43);
    assert_ne!(key.thumbprint(), Device::new().bound_key().thumbprint());
    assert_eq!(
        format!("{key:?}"),
        format!(
            r#"BoundKey {{ alg: ES256, thumbprint: "{}" }}"#,
            key.thumbprint()
        )
    );
}

#[test]
fn a_proof_for_another_challenge_is_refused() {
    let device = Device::new();
    let (first, second) = (challenge(), challenge());
    let proof = device.registration_proof(first.as_str());
    refused(
        &proof,
        verify_registration(&proof, second.as_str()),
        DbscError::ChallengeMismatch,
    );
    let key = verify_registration(&proof, first.as_str()).unwrap();

    // A refresh proof replayed against the next challenge.
    let used = device.refresh_proof(first.as_str());
    verify_refresh(&used, &key, first.as_str()).unwrap();
    refused(
        &used,
        verify_refresh(&used, &key, second.as_str()),
        DbscError::ChallengeMismatch,
    );
    // An empty jti answers nothing, even to a caller that expects "".
    let empty = device.refresh_proof("");
    refused(
        &empty,
        verify_refresh(&empty, &key, ""),
        DbscError::ChallengeMismatch,
    );
}

#[test]
fn the_challenge_is_checked_only_once_the_signature_holds() {
    let device = Device::new();
    let asked = Cell::new(None);
    let forged = device.registration_proof_signed_by(&Device::new(), "c");
    let result = verify_registration_with(&forged, |jti| {
        asked.set(Some(jti.to_owned()));
        true
    });
    refused(&forged, result, DbscError::BadSignature);
    assert_eq!(asked.take(), None);

    let key = verify_registration_with(&device.registration_proof("c"), |jti| {
        asked.set(Some(jti.to_owned()));
        true
    })
    .unwrap();
    assert_eq!(asked.take().as_deref(), Some("c"));

    // Several outstanding challenges (a late proof for the previous one still counts).
    let recent = ["old", "new"];
    verify_refresh_with(&device.refresh_proof("old"), &key, |jti| {
        recent.contains(&jti)
    })
    .unwrap();
    let stale = device.refresh_proof("older");
    refused(
        &stale,
        verify_refresh_with(&stale, &key, |jti| recent.contains(&jti)),
        DbscError::ChallengeMismatch,
    );
}

#[test]
fn a_proof_signed_by_another_key_is_refused() {
    let (device, thief) = (Device::new(), Device::new());
    let c = challenge();
    // Registration naming the victim's key, signed by another.
    let forged = device.registration_proof_signed_by(&thief, c.as_str());
    refused(
        &forged,
        verify_registration(&forged, c.as_str()),
        DbscError::BadSignature,
    );

    // Refresh of the victim's session by another device.
    let key = device.bound_key();
    let stolen = thief.refresh_proof(c.as_str());
    refused(
        &stolen,
        verify_refresh(&stolen, &key, c.as_str()),
        DbscError::BadSignature,
    );

    // A refresh that brings its own key along is refused before any signature is checked,
    // and so is one that names the session's own key (the spec forbids a jwk there).
    for jwk in [thief.jwk(), device.jwk()] {
        let swapped = thief.sign(
            &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk}),
            &json!({"jti": c.as_str()}),
        );
        refused(
            &swapped,
            verify_refresh(&swapped, &key, c.as_str()),
            DbscError::UnexpectedKey,
        );
    }

    // Another payload (another challenge) under a genuine header and signature.
    let genuine = device.refresh_proof(c.as_str());
    let parts: Vec<&str> = genuine.split('.').collect();
    let other = device.refresh_proof("another");
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    refused(
        &spliced,
        verify_refresh(&spliced, &key, "another"),
        DbscError::BadSignature,
    );
}

#[test]
fn alg_none_is_refused_with_or_without_a_key() {
    let device = Device::new();
    let key = device.bound_key();
    for with_jwk in [true, false] {
        let unsigned = device.unsigned_proof("c", with_jwk);
        assert!(unsigned.ends_with('.'));
        refused(
            &unsigned,
            verify_registration(&unsigned, "c"),
            DbscError::UnsupportedAlgorithm,
        );
        refused(
            &unsigned,
            verify_refresh(&unsigned, &key, "c"),
            DbscError::UnsupportedAlgorithm,
        );
    }
    // Any spelling, and every other algorithm name, signed or not.
    for alg in [
        "None", "NONE", "es256", "HS256", "PS256", "ES384", "EdDSA", "",
    ] {
        let proof = device.sign(
            &json!({"alg": alg, "typ": "dbsc+jwt"}),
            &json!({"jti": "c"}),
        );
        refused(
            &proof,
            verify_refresh(&proof, &key, "c"),
            DbscError::UnsupportedAlgorithm,
        );
        let proof = registration_with(&device, "c", |h| h["alg"] = json!(alg));
        refused(
            &proof,
            verify_registration(&proof, "c"),
            DbscError::UnsupportedAlgorithm,
        );
    }
}

#[test]
fn a_refresh_signed_with_another_algorithm_than_the_key_is_refused() {
    let device = Device::new();
    let key = device.bound_key();
    let proof = device.sign(
        &json!({"alg": "RS256", "typ": "dbsc+jwt"}),
        &json!({"jti": "c"}),
    );
    refused(
        &proof,
        verify_refresh(&proof, &key, "c"),
        DbscError::AlgorithmMismatch {
            expected: Algorithm::Es256,
            got: Algorithm::Rs256,
        },
    );
    // An RS256 registration with an EC key.
    let proof = registration_with(&device, "c", |h| h["alg"] = json!("RS256"));
    refused(
        &proof,
        verify_registration(&proof, "c"),
        DbscError::InvalidKey("an RS256 jwk must have kty RSA"),
    );
}

#[test]
fn a_wrong_or_missing_typ_is_refused() {
    let device = Device::new();
    for typ in ["JWT", "dbsc+JWT", "application/dbsc+jwt", "dbsc+jwt ", ""] {
        let proof = device.registration_proof_with_typ("c", typ);
        refused(
            &proof,
            verify_registration(&proof, "c"),
            DbscError::WrongType,
        );
    }
    let untyped = registration_with(&device, "c", |h| {
        h.as_object_mut().unwrap().remove("typ");
    });
    refused(
        &untyped,
        verify_registration(&untyped, "c"),
        DbscError::WrongType,
    );
    let untyped = device.sign(&json!({"alg": "ES256"}), &json!({"jti": "c"}));
    refused(
        &untyped,
        verify_refresh(&untyped, &device.bound_key(), "c"),
        DbscError::WrongType,
    );
}

#[test]
fn malformed_proofs_are_refused_as_malformed() {
    let device = Device::new();
    let good = device.registration_proof("c");
    let parts: Vec<&str> = good.split('.').collect();
    let non_json_header = device.sign_raw(b"not json", br#"{"jti":"c"}"#);
    let non_json_payload = device.sign_raw(
        json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk()})
            .to_string()
            .as_bytes(),
        b"not json",
    );
    let array_payload = device.sign_raw(
        json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk()})
            .to_string()
            .as_bytes(),
        br#"["c"]"#,
    );
    let cases = [
        String::new(),
        ".".into(),
        "..".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0].replace('e', "+"), parts[1], parts[2]),
        format!(" {good}"),
        non_json_header,
        non_json_payload,
        array_payload,
        device.sign(
            &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk()}),
            &json!({}),
        ),
        device.sign(
            &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk()}),
            &json!({"jti": 7}),
        ),
        device.sign(
            &json!({"typ": "dbsc+jwt", "jwk": device.jwk()}),
            &json!({"jti": "c"}),
        ),
        device.sign(
            &json!({"alg": ["ES256"], "typ": "dbsc+jwt", "jwk": device.jwk()}),
            &json!({"jti": "c"}),
        ),
        format!(
            "{}.{}.{}",
            parts[0],
            "A".repeat(dbsc::MAX_PROOF_LEN),
            parts[2]
        ),
    ];
    for proof in cases {
        match verify_registration(&proof, "c") {
            Err(DbscError::Malformed(_)) => {}
            other => panic!("{proof:?} gave {other:?}"),
        }
    }
}

/// A change to a registration proof's header.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn malformed_keys_are_refused_as_invalid_keys() {
    let device = Device::new();
    let jwk = device.jwk();
    let x = jwk["x"].as_str().unwrap().to_owned();
    let mut off_curve = x.clone().into_bytes();
    // Flip a bit in the middle of x: (x', y) is then almost surely not on the curve.
    off_curve[20] = if off_curve[20] == b'A' { b'B' } else { b'A' };
    let off_curve = String::from_utf8(off_curve).unwrap();
    let cases: [(Edit, &str); 9] = [
        (
            Box::new(|h| h["jwk"]["crv"] = json!("P-384")),
            "an ES256 jwk must have crv P-256",
        ),
        (
            Box::new(|h| h["jwk"]["kty"] = json!("OKP")),
            "an ES256 jwk must have kty EC",
        ),
        (
            Box::new(|h| {
                h["jwk"].as_object_mut().unwrap().remove("kty");
            }),
            "an ES256 jwk must have kty EC",
        ),
        (
            Box::new(|h| {
                h["jwk"].as_object_mut().unwrap().remove("y");
            }),
            "an EC jwk needs x and y",
        ),
        (
            Box::new(move |h| h["jwk"]["x"] = json!(off_curve)),
            "the point is not on P-256",
        ),
        (
            Box::new(|h| h["jwk"]["x"] = json!("AAAA")),
            "P-256 coordinates must be 32 bytes each",
        ),
        (
            Box::new(|h| h["jwk"]["y"] = json!("not base64!")),
            "a jwk member is not base64url without padding",
        ),
        (
            Box::new(|h| h["jwk"]["d"] = json!("AAAA")),
            "the jwk carries a private key",
        ),
        (
            Box::new(|h| h["jwk"]["x"] = json!(1)),
            "the jwk's members are not all strings",
        ),
    ];
    for (edit, reason) in cases {
        let proof = registration_with(&device, "c", edit);
        refused(
            &proof,
            verify_registration(&proof, "c"),
            DbscError::InvalidKey(reason),
        );
    }
    let keyless = device.refresh_proof("c");
    refused(
        &keyless,
        verify_registration(&keyless, "c"),
        DbscError::MissingKey,
    );
    let not_an_object = registration_with(&device, "c", |h| h["jwk"] = json!("key"));
    assert!(matches!(
        verify_registration(&not_an_object, "c"),
        Err(DbscError::Malformed(_))
    ));
}

#[test]
fn headers_refuse_what_is_not_a_string_or_token_item() {
    let proof = Device::new().refresh_proof("c");
    // Bare, as Chromium 156 sends it: a structured-field token.
    assert_eq!(parse_response_header(&proof).unwrap(), proof);
    for bad in [
        format!("\"{proof}\", \"{proof}\""),
        format!("{proof} {proof}"),
        format!("({proof})"),
    ] {
        refused(
            &proof,
            parse_response_header(&bad),
            DbscError::MalformedHeader("Secure-Session-Response"),
        );
    }
    assert_eq!(
        parse_response_header(format!("\"{proof}\";extra=1;more=?0")).unwrap(),
        proof
    );
}

/// One device for the whole run: key generation is not what is under test.
fn device() -> &'static Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE.get_or_init(Device::new)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics_the_parsers(text in any::<String>(), bytes in any::<Vec<u8>>()) {
        let key = BoundKey::from_bytes(&[
            1, 4, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63,
            0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39,
            0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e,
            0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e,
            0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
        ]).unwrap();
        let _ = parse_response_header(&text);
        let _ = parse_response_header(&bytes);
        let _ = parse_session_id_header(&text);
        let _ = Registration::from_header(&bytes);
        let _ = challenges_from_header(text.as_bytes());
        prop_assert!(verify_registration(&text, "c").is_err());
        prop_assert!(verify_refresh(&text, &key, "c").is_err());
        if let Ok(key) = BoundKey::from_bytes(&bytes) {
            prop_assert_eq!(key.to_bytes(), bytes);
        }
    }

    #[test]
    fn arbitrary_dot_separated_base64_never_panics(parts in proptest::collection::vec("[A-Za-z0-9_=+/-]{0,80}", 0..5)) {
        let text = parts.join(".");
        prop_assert!(verify_registration(&text, "c").is_err());
    }

    #[test]
    fn any_one_byte_change_to_a_valid_proof_is_refused(
        c in "[a-zA-Z0-9_-]{1,43}",
        at in any::<prop::sample::Index>(),
        to in proptest::char::range('+', 'z'),
    ) {
        let key = device().bound_key();
        for (proof, registration) in [
            (device().registration_proof(&c), true),
            (device().refresh_proof(&c), false),
        ] {
            let mut bytes = proof.into_bytes();
            let at = at.index(bytes.len());
            if bytes[at] == to as u8 {
                continue;
            }
            bytes[at] = to as u8;
            let changed = String::from_utf8(bytes).unwrap();
            // Whatever challenge it claims, it is refused.
            if registration {
                prop_assert!(verify_registration_with(&changed, |_| true).is_err());
            } else {
                prop_assert!(verify_refresh_with(&changed, &key, |_| true).is_err());
            }
        }
    }
}
