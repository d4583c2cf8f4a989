//! Property tests of tokens: every token prints to one text that parses back to it, and any
//! change of one byte of that text is refused or names another session.

use proptest::prelude::*;

use super::*;

fn token() -> impl Strategy<Value = Token> {
    any::<[u8; TOKEN_BYTES]>().prop_map(Token)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_token_round_trips(token in token()) {
        let text = token.as_cookie_value();
        prop_assert_eq!(text.len(), TOKEN_LEN);
        let back = Token::parse(&text).unwrap();
        prop_assert_eq!(back.0, token.0);
        prop_assert_eq!(back.key(), token.key());
        prop_assert_eq!(back.deadline_ms(), token.deadline_ms());
    }

    #[test]
    fn generated_tokens_round_trip(deadline in 0u64..(1 << 47), remembered in any::<bool>()) {
        let token = Token::issue(deadline, remembered).unwrap();
        prop_assert_eq!(token.deadline_ms(), deadline);
        prop_assert_eq!(token.remembered(), remembered);
        let back = Token::parse(&token.as_cookie_value()).unwrap();
        prop_assert_eq!(back.key(), token.key());
        let next = token.successor().unwrap();
        prop_assert_eq!((next.deadline_ms(), next.remembered()), (deadline, remembered));
        prop_assert_ne!(next.key(), token.key());
    }

    /// Every position, every byte value: 51 x 255 changed texts per token. (A sampled change
    /// hardly ever hits the last character's two spare bits, where a lenient decoder would
    /// accept a second spelling of the same token.)
    #[test]
    fn any_single_byte_change_is_refused(token in token()) {
        let text = token.as_cookie_value().into_bytes();
        for at in 0..text.len() {
            for byte in 0..=u8::MAX {
                if byte == text[at] {
                    continue;
                }
                let mut changed = text.clone();
                changed[at] = byte;
                // Refused outright, or (another base64url letter) a different token: never this one.
                if let Ok(other) = Token::parse_bytes(&changed) {
                    prop_assert_ne!(other.0, token.0, "byte {} at {} still parses to the token", byte, at);
                }
            }
        }
    }
}
