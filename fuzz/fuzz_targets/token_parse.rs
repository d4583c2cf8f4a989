//! `Token::parse` and its byte form (`__fuzz::token_parse_bytes`, the cookie scan's) on
//! arbitrary client bytes: never a panic; whatever parses is canonical (prints back to the same 51 characters) and any one-byte change of it is
//! refused or names another token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::{session_key, token_parse_bytes};
use session_core::Token;

fuzz_target!(|data: &[u8]| {
    let from_bytes = token_parse_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            Token::parse(text).is_ok(),
            from_bytes.is_some(),
            "parse and parse_bytes disagree"
        );
    }
    let Some(token) = from_bytes else { return };
    let printed = token.as_cookie_value();
    assert_eq!(
        printed.as_bytes(),
        data,
        "a parsed token prints differently"
    );
    let again = Token::parse(&printed).expect("a printed token parses");
    assert_eq!(session_key(&again), session_key(&token));
    // Flip one bit chosen by the input: the result must not name the same session.
    let at = usize::from(data[0]) % data.len();
    let mut changed = data.to_vec();
    changed[at] ^= 1 << (data[1] % 8);
    if let Some(other) = token_parse_bytes(&changed) {
        assert_ne!(session_key(&other), session_key(&token), "two texts name one session");
    }
});
