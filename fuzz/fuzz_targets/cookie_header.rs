//! The layer's scan of `Cookie` headers for the session cookie, on arbitrary header bytes (split
//! into up to four headers at `\n`): never a panic, and a token is only ever found when exactly
//! one cookie of our name is present and parses.
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::{session_key, token_from_cookie_headers, token_parse_bytes};
use session_core::web::CookieConfig;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(4) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    for config in [
        CookieConfig::default(),
        CookieConfig::default().secure(false),
    ] {
        let found = token_from_cookie_headers(&config, &headers);
        // An independent, naive reading of the same headers.
        let name = config.cookie_name().as_bytes();
        let values: Vec<&[u8]> = headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .filter_map(|pair| {
                let eq = pair.iter().position(|b| *b == b'=')?;
                (pair[..eq].trim_ascii() == name).then(|| pair[eq + 1..].trim_ascii())
            })
            .collect();
        let expected = match values.as_slice() {
            [one] => token_parse_bytes(one),
            _ => None,
        };
        assert_eq!(
            found.as_ref().map(session_key),
            expected.as_ref().map(session_key),
            "the scan disagrees with a naive reading"
        );
    }
});
