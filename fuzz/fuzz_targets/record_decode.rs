//! `Record::decode` on arbitrary stored bytes: never a panic, and a record that decodes encodes
//! back to the same bytes, else the decoder accepted a form the encoder never writes. The one
//! allowance: the application data is JSON, accepted in any spelling (whitespace, key order,
//! `{}`) and written compactly, so there it is the decoded record that must come back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::__fuzz::record_reencode;

fuzz_target!(|data: &[u8]| {
    let again = match record_reencode(data) {
        None => return,
        Some(Ok(again)) => again,
        Some(Err(e)) => panic!("a decoded record does not encode: {e}"),
    };
    assert!(
        again.same_record,
        "the re-encoding decodes to another record"
    );
    assert_eq!(
        again.bytes[..again.data_at],
        data[..again.data_at.min(data.len())],
        "header or authorization encodes differently"
    );
});
